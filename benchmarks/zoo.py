"""Models past the guide, written once against a Keras-like module `K` (fncompiler, or keras when installed).

Shared by benchmarks/fit.py (the table of seven models) and benchmarks/depth.py (the transformer at depths
2..32). Each builder takes `K` and returns an uncompiled model; `compile_kwargs_*` gives its compile
arguments and `make_data_*` synthetic data of its shapes from `numpy.random.default_rng(seed)`.

| model | what it is |
|---|---|
| transformer | keras.io's "text classification with Transformer": token + position embeddings, `depth` encoder blocks (MultiHeadAttention, residual + LayerNormalization, a relu FFN, residual + LayerNormalization), GlobalAveragePooling1D, Dense(2) |
| resnet20 | He et al.'s CIFAR ResNet-20: Conv 16, three stages of three basic blocks (16, 32, 64 filters; Conv-BN-relu-Conv-BN + shortcut, a strided 1x1 conv + BN where the shape changes), GlobalAveragePooling2D, Dense(10) |
| seq2seq | keras.io's character-level LSTM encoder/decoder with teacher forcing: the encoder LSTM's final states start the decoder LSTM, a softmax over the target vocabulary at each step |
"""
import numpy as np

TRANSFORMER = dict(vocab=2000, length=64, embed_dim=64, heads=4, ff_dim=128, classes=2)
SEQ2SEQ = dict(source_vocab=64, target_vocab=64, source_length=24, target_length=24, units=128)


def position_embedding_class(K):
    """A learned position embedding added to the token embedding (a subclassed layer, as on keras.io)."""
    class PositionEmbedding(K.layers.Layer):
        def __init__(self, length, dim, **kwargs):
            super().__init__(**kwargs)
            self.length, self.dim = length, dim

        def build(self, input_shape):
            self.positions = self.add_weight(name="embeddings", shape=(self.length, self.dim),
                                             initializer="glorot_uniform")

        def call(self, x):
            return x + K.ops.expand_dims(self.positions, 0)

        def get_config(self):
            return {**super().get_config(), "length": self.length, "dim": self.dim}
    return PositionEmbedding


def build_transformer(K, depth=4, **sizes):
    s = {**TRANSFORMER, **sizes}
    L = K.layers
    tokens = K.Input(shape=(s["length"],), dtype="int32", name="tokens")
    x = L.Embedding(s["vocab"], s["embed_dim"], name="token_embedding")(tokens)
    x = position_embedding_class(K)(s["length"], s["embed_dim"], name="position_embedding")(x)
    for i in range(depth):
        attention = L.MultiHeadAttention(s["heads"], s["embed_dim"] // s["heads"], name=f"block{i}_attention")(x, x)
        x = L.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm_1")(L.add([x, attention], name=f"block{i}_add_1"))
        ffn = L.Dense(s["ff_dim"], activation="relu", name=f"block{i}_ffn_1")(x)
        ffn = L.Dense(s["embed_dim"], name=f"block{i}_ffn_2")(ffn)
        x = L.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm_2")(L.add([x, ffn], name=f"block{i}_add_2"))
    x = L.GlobalAveragePooling1D(name="pool")(x)
    outputs = L.Dense(s["classes"], name="logits")(x)
    return K.Model(tokens, outputs, name=f"transformer_{depth}")


def compile_kwargs_transformer(K, lr=1e-3):
    return dict(optimizer=K.optimizers.Adam(lr), loss=K.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])


def make_data_transformer(n, seed=0, **sizes):
    s = {**TRANSFORMER, **sizes}
    rng = np.random.default_rng(seed)
    x = rng.integers(0, s["vocab"], size=(n, s["length"])).astype(np.int32)
    y = rng.integers(0, s["classes"], size=(n,)).astype(np.int32)
    return x, y, [x], [y]


def build_resnet20(K):
    L = K.layers

    def conv_bn(x, filters, strides, name, relu=True, kernel=3):
        x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        return L.Activation("relu", name=f"{name}_relu")(x) if relu else x

    inputs = K.Input(shape=(32, 32, 3), name="img")
    x = conv_bn(inputs, 16, 1, "stem")
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            name = f"stage{stage + 1}_block{block + 1}"
            strides = 2 if stage > 0 and block == 0 else 1
            y = conv_bn(x, filters, strides, f"{name}_1")
            y = conv_bn(y, filters, 1, f"{name}_2", relu=False)
            shortcut = x if strides == 1 else conv_bn(x, filters, strides, f"{name}_shortcut", relu=False, kernel=1)
            x = L.Activation("relu", name=f"{name}_out")(L.add([y, shortcut], name=f"{name}_add"))
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = L.Dense(10, name="logits")(x)
    return K.Model(inputs, outputs, name="resnet20")


def compile_kwargs_resnet20(K, lr=1e-3):
    return dict(optimizer=K.optimizers.Adam(lr), loss=K.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])


def make_data_resnet20(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, size=(n,)).astype(np.int32)
    return x, y, [x], [y]


def build_seq2seq(K, **sizes):
    s = {**SEQ2SEQ, **sizes}
    L = K.layers
    encoder_inputs = K.Input(shape=(None, s["source_vocab"]), name="encoder_inputs")
    _, state_h, state_c = L.LSTM(s["units"], return_state=True, name="encoder")(encoder_inputs)
    decoder_inputs = K.Input(shape=(None, s["target_vocab"]), name="decoder_inputs")
    decoded = L.LSTM(s["units"], return_sequences=True, name="decoder")(decoder_inputs,
                                                                          initial_state=[state_h, state_c])
    outputs = L.Dense(s["target_vocab"], activation="softmax", name="next_char")(decoded)
    return K.Model([encoder_inputs, decoder_inputs], outputs, name="seq2seq")


def compile_kwargs_seq2seq(K, lr=1e-3):
    return dict(optimizer=K.optimizers.RMSprop(lr), loss="categorical_crossentropy", metrics=["accuracy"])


def make_data_seq2seq(n, seed=0, **sizes):
    """One-hot source and target sequences; the decoder input is the target shifted right by one step."""
    s = {**SEQ2SEQ, **sizes}
    rng = np.random.default_rng(seed)
    source = np.eye(s["source_vocab"], dtype=np.float32)[rng.integers(0, s["source_vocab"],
                                                                      size=(n, s["source_length"]))]
    target_ids = rng.integers(0, s["target_vocab"], size=(n, s["target_length"]))
    target = np.eye(s["target_vocab"], dtype=np.float32)[target_ids]
    decoder_in = np.concatenate([np.zeros_like(target[:, :1]), target[:, :-1]], axis=1)
    return [source, decoder_in], target, [source, decoder_in], [target]


BUILDERS = {"transformer": build_transformer, "resnet20": build_resnet20, "seq2seq": build_seq2seq}
COMPILE_KWARGS = {"transformer": compile_kwargs_transformer, "resnet20": compile_kwargs_resnet20,
                  "seq2seq": compile_kwargs_seq2seq}
MAKE_DATA = {"transformer": make_data_transformer, "resnet20": make_data_resnet20, "seq2seq": make_data_seq2seq}
