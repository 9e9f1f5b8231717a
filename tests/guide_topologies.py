"""The guide's model topologies, written once for both libraries.

Each builder takes the library's top-level module (`keras` or `fncompiler`) and returns a model. The same
code builds the Keras model that tests/keras_reference/record_order.py recorded and the fncompiler model that
tests/test_keras_order.py compares with that record, so the two cannot drift apart. Nothing here imports
either library.
"""


def mlp(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")


def _encoder_layers(layers, encoder_input):
    x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    return layers.GlobalMaxPooling2D()(x)


def _decoder_layers(layers, x):
    x = layers.Reshape((4, 4, 1))(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
    x = layers.UpSampling2D(3)(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
    return layers.Conv2DTranspose(1, 3, activation="relu")(x)


def encoder_autoencoder(keras):
    """The encoder and the autoencoder sharing its layers (guide: "the same graph of layers")."""
    encoder_input = keras.Input(shape=(28, 28, 1), name="img")
    encoder_output = _encoder_layers(keras.layers, encoder_input)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    decoder_output = _decoder_layers(keras.layers, encoder_output)
    return encoder, keras.Model(encoder_input, decoder_output, name="autoencoder")


def nested(keras):
    """An autoencoder made of an encoder model and a decoder model, and an ensemble of 3 models."""
    layers = keras.layers
    encoder_input = keras.Input(shape=(28, 28, 1), name="original_img")
    encoder = keras.Model(encoder_input, _encoder_layers(layers, encoder_input), name="encoder")
    decoder_input = keras.Input(shape=(16,), name="encoded_img")
    decoder = keras.Model(decoder_input, _decoder_layers(layers, decoder_input), name="decoder")
    autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
    autoencoder = keras.Model(autoencoder_input, decoder(encoder(autoencoder_input)), name="autoencoder")

    def get_model():
        inputs = keras.Input(shape=(128,))
        return keras.Model(inputs, layers.Dense(1)(inputs))
    members = [get_model(), get_model(), get_model()]
    inputs = keras.Input(shape=(128,))
    outputs = layers.average([m(inputs) for m in members])
    return autoencoder, keras.Model(inputs=inputs, outputs=outputs, name="ensemble")


def ticket(keras):
    """The multi-input, multi-output ticket model with dict outputs."""
    layers = keras.layers
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(12,), name="tags")
    title_features = layers.Embedding(10000, 64)(title_input)
    body_features = layers.Embedding(10000, 64)(body_input)
    title_features = layers.LSTM(128)(title_features)
    body_features = layers.LSTM(32)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(4, name="department")(x)
    return keras.Model(inputs=[title_input, body_input, tags_input],
                       outputs={"priority": priority_pred, "department": department_pred}, name="ticket_model")


def toy_resnet(keras):
    layers = keras.layers
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(3)(x)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="toy_resnet")


def shared(keras):
    """A shared Embedding with two inputs, and a siamese model sharing Embedding + LSTM, with ops."""
    layers, ops = keras.layers, keras.ops
    shared_embedding = layers.Embedding(1000, 128, name="shared_embedding")
    a = keras.Input(shape=(None,), dtype="int32", name="text_a")
    b = keras.Input(shape=(None,), dtype="int32", name="text_b")
    both = keras.Model([a, b], [shared_embedding(a), shared_embedding(b)], name="shared_embedding_model")
    embed = layers.Embedding(50, 16, name="embed")
    encode = layers.LSTM(16, name="encode")
    a = keras.Input(shape=(None,), dtype="int32", name="a")
    b = keras.Input(shape=(None,), dtype="int32", name="b")
    distance = ops.abs(encode(embed(a)) - encode(embed(b)))
    same = layers.Dense(1, activation="sigmoid", name="same")(distance)
    return both, keras.Model([a, b], same, name="siamese")


def unet(keras):
    """keras.io's U-Net-like segmentation model, narrowed: residual branches through UpSampling2D."""
    layers = keras.layers
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    for filters in [16, 32]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        previous = x
    for filters in [32, 16, 8]:
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        residual = layers.UpSampling2D(2)(previous)
        residual = layers.Conv2D(filters, 1, padding="same")(residual)
        x = layers.add([x, residual])
        previous = x
    outputs = layers.Conv2D(3, 3, activation="softmax", padding="same")(x)
    return keras.Model(inputs, outputs, name="unet")


def op_names(keras):
    """Operators and ops on symbolic tensors: Keras names each node after its op."""
    layers, ops = keras.layers, keras.ops
    inputs = keras.Input(shape=(4, 8))
    x = layers.Dense(8)(inputs)
    y = x + inputs
    y = y - x
    y = y * 2.0
    y = y / 3.0
    y = ops.abs(y)
    y = y[:, 0]
    z = layers.Dense(8)(y)
    return keras.Model(inputs, z + y)


def attention_block(keras):
    """MultiHeadAttention (which takes the name "dropout" for its own Dropout) followed by Dropout layers."""
    layers = keras.layers
    inputs = keras.Input(shape=(5, 8))
    att = layers.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1)(inputs, inputs)
    x = layers.Dropout(0.1)(att)
    x = x + inputs
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    x = layers.Dense(8)(x)
    x = layers.Dropout(0.2)(x)
    return keras.Model(inputs, x)


def layer_zoo(keras):
    """Many layer kinds in a row: default names (Bidirectional takes "lstm"/"gru" for its copies in both)."""
    layers = keras.layers
    inp = keras.Input((6, 4))
    x = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(inp)
    x = layers.Bidirectional(layers.GRU(4, return_sequences=True))(x)
    x = layers.LSTM(4, return_sequences=True)(x)
    x = layers.GRU(4, return_sequences=True)(x)
    x = layers.SimpleRNN(4, return_sequences=True)(x)
    x = layers.RNN(layers.LSTMCell(4), return_sequences=True)(x)
    x = layers.Attention()([x, x])
    x = layers.LayerNormalization()(x)
    x = layers.BatchNormalization()(x)
    x = layers.Conv1D(4, 3, padding="same")(x)
    x = layers.SeparableConv1D(4, 3, padding="same")(x)
    x = layers.DepthwiseConv1D(3, padding="same")(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(4)(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Softmax()(x)
    x = layers.ReLU()(x)
    x = layers.PReLU()(x)
    return keras.Model(inp, layers.Dense(4)(x))


def image_zoo(keras):
    layers = keras.layers
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(2, 3)(inp)
    x = layers.UpSampling2D()(x)
    x = layers.ZeroPadding2D()(x)
    x = layers.Cropping2D()(x)
    x = layers.GroupNormalization(groups=2)(x)
    x = layers.GaussianNoise(0.1)(x)
    x = layers.SpatialDropout2D(0.1)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(3)(x)
    x = layers.Rescaling(2.0)(x)
    x = layers.Activation("relu")(x)
    x = layers.LeakyReLU()(x)
    x = layers.ELU()(x)
    x = layers.UnitNormalization()(x)
    x = layers.ActivityRegularization()(x)
    x = layers.RepeatVector(2)(x)
    x = layers.Permute((2, 1))(x)
    return keras.Model(inp, layers.Dense(3)(x))


GROUPS = [(("mlp",), mlp), (("encoder", "autoencoder"), encoder_autoencoder),
          (("nested_autoencoder", "ensemble"), nested), (("ticket",), ticket), (("toy_resnet",), toy_resnet),
          (("shared", "siamese"), shared), (("unet",), unet), (("op_names",), op_names), (("mha",), attention_block),
          (("layer_zoo",), layer_zoo), (("image_zoo",), image_zoo)]


def all_models(keras, reset):
    """{key: model}, each group built after `reset()` (Keras: clear_session) so default names start afresh."""
    out = {}
    for keys, build in GROUPS:
        reset()
        models = build(keras)
        out.update(zip(keys, models if len(keys) > 1 else (models,)))
    return out
