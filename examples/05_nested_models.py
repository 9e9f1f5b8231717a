"""Section "All models are callable, just like layers": nested models and ensembling.

A model can be called on an `Input` or on the output of another layer, like a layer. Calling it reuses both
its architecture and its weights. Here an autoencoder is made by chaining an encoder model and a decoder
model, and three small models are averaged into one ensemble model.

Run: python examples/05_nested_models.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

encoder_input = keras.Input(shape=(28, 28, 1), name="original_img")
x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.MaxPooling2D(3)(x)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.Conv2D(16, 3, activation="relu")(x)
encoder_output = layers.GlobalMaxPooling2D()(x)
encoder = keras.Model(encoder_input, encoder_output, name="encoder")
encoder.summary()

decoder_input = keras.Input(shape=(16,), name="encoded_img")
x = layers.Reshape((4, 4, 1))(decoder_input)
x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
x = layers.UpSampling2D(3)(x)
x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)
decoder = keras.Model(decoder_input, decoder_output, name="decoder")
decoder.summary()

# Models called like layers: each one becomes a single node of the new graph.
autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
encoded_img = encoder(autoencoder_input)
decoded_img = decoder(encoded_img)
autoencoder = keras.Model(autoencoder_input, decoded_img, name="autoencoder")
autoencoder.summary()

assert [layer.name for layer in autoencoder.layers] == ["img", "encoder", "decoder"]
assert decoder.count_params() == 9_569
assert autoencoder.count_params() == encoder.count_params() + decoder.count_params() == 28_241

# Calling a model reuses its weights: the nested encoder computes exactly what the standalone one does, and
# the autoencoder is the decoder applied to the encoder's output.
imgs = rng.random((4, 28, 28, 1), dtype=np.float32)
nested_encoder = keras.Model(autoencoder_input, encoded_img)
codes = encoder.predict(imgs, verbose=0)
np.testing.assert_allclose(nested_encoder.predict(imgs, verbose=0), codes, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(autoencoder.predict(imgs, verbose=0), decoder.predict(codes, verbose=0),
                           rtol=1e-5, atol=1e-6)
print("nested encoder == standalone encoder; autoencoder(x) == decoder(encoder(x))")


# Ensembling: average the predictions of several models in one model.
def get_model():
    inputs = keras.Input(shape=(128,))
    outputs = layers.Dense(1)(inputs)
    return keras.Model(inputs, outputs)


model1 = get_model()
model2 = get_model()
model3 = get_model()

inputs = keras.Input(shape=(128,))
y1 = model1(inputs)
y2 = model2(inputs)
y3 = model3(inputs)
outputs = layers.average([y1, y2, y3])
ensemble_model = keras.Model(inputs=inputs, outputs=outputs, name="ensemble")
ensemble_model.summary()

data = rng.random((8, 128), dtype=np.float32)
members = [m.predict(data, verbose=0) for m in (model1, model2, model3)]
ensemble = ensemble_model.predict(data, verbose=0)
np.testing.assert_allclose(ensemble, np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
print("ensemble output (first 3):", ensemble[:3, 0].round(4), "= mean of the three members")

print("OK 05_nested_models")
