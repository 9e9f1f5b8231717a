"""Make the Keras-written fixtures the Keras-format tests read (run once, by hand, with Keras 3 installed):

    KERAS_BACKEND=jax python tests/data/keras_fixtures/make_fixtures.py

For each model kind it builds a tiny model in Keras, trains it for a couple of steps, and writes
<kind>.keras (model.save), <kind>.weights.h5 (model.save_weights) and <kind>.npz (an input batch under
"x:<input name>" and Keras's predictions under "y:<output key or index>"). The tests never import Keras.
Keras 3.15.1 made the committed files.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)


def mlp():
    inputs = keras.Input(shape=(6,), name="features")
    x = layers.Dense(8, activation="relu")(inputs)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(8, activation="relu")(x)
    outputs = layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="mlp")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.integers(0, 3, size=(16,))
    return model, {"features": x}, y


def cnn():
    inputs = keras.Input(shape=(8, 8, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.SeparableConv2D(6, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(2)(x)
    model = keras.Model(inputs, outputs, name="cnn")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    x = rng.normal(size=(8, 8, 8, 3)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    return model, {"image": x}, y


def ticket():
    num_tags, num_words, num_departments = 5, 50, 3
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Embedding(num_words, 8)(title_input)
    body_features = layers.Embedding(num_words, 8)(body_input)
    title_features = layers.LSTM(6)(title_features)
    body_features = layers.GRU(4)(body_features)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    model = keras.Model(inputs={"title": title_input, "body": body_input, "tags": tags_input},
                        outputs={"priority": priority_pred, "department": department_pred}, name="ticket")
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
                        "department": keras.losses.CategoricalCrossentropy(from_logits=True)},
                  loss_weights={"priority": 1.0, "department": 0.2})
    n = 8
    x = {"title": rng.integers(0, num_words, size=(n, 7)).astype("int32"),
         "body": rng.integers(0, num_words, size=(n, 9)).astype("int32"),
         "tags": rng.integers(0, 2, size=(n, num_tags)).astype("float32")}
    y = {"priority": rng.random(size=(n, 1)).astype("float32"),
         "department": np.eye(num_departments)[rng.integers(0, num_departments, size=n)].astype("float32")}
    return model, x, y


def autoencoder():
    enc_in = keras.Input(shape=(12,), name="enc_in")
    h = layers.Dense(6, activation="relu")(enc_in)
    code = layers.Dense(3, activation="relu")(h)
    encoder = keras.Model(enc_in, code, name="encoder")
    dec_in = keras.Input(shape=(3,), name="dec_in")
    h = layers.Dense(6, activation="relu")(dec_in)
    out = layers.Dense(12, activation="sigmoid")(h)
    decoder = keras.Model(dec_in, out, name="decoder")
    ae_in = keras.Input(shape=(12,), name="img")
    model = keras.Model(ae_in, decoder(encoder(ae_in)), name="autoencoder")
    model.compile(optimizer="adam", loss="mse")
    x = rng.random(size=(8, 12)).astype("float32")
    return model, {"img": x}, x


def attention():
    inputs = keras.Input(shape=(5, 8), name="seq")
    attn = layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
    x = layers.Add()([inputs, attn])
    x = layers.LayerNormalization()(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(2)(x)
    model = keras.Model(inputs, outputs, name="attention")
    model.compile(optimizer="adam", loss="mse")
    x = rng.normal(size=(4, 5, 8)).astype("float32")
    y = rng.normal(size=(4, 2)).astype("float32")
    return model, {"seq": x}, y


def sequential():
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(5, activation="tanh"),
                              layers.Dense(2)], name="seq_model")
    model.compile(optimizer="sgd", loss="mse")
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    return model, {"input": x}, y


KINDS = {"mlp": mlp, "cnn": cnn, "ticket": ticket, "autoencoder": autoencoder, "attention": attention,
         "sequential": sequential}


def main():
    for kind, make in KINDS.items():
        model, x, y = make()
        feed = x["input"] if kind == "sequential" else (x if len(x) > 1 else next(iter(x.values())))
        model.fit(feed, y, batch_size=4, epochs=1, verbose=0)
        pred = model.predict(feed, verbose=0)
        arrays = {f"x:{k}": v for k, v in x.items()}
        if isinstance(pred, dict):
            arrays.update({f"y:{k}": np.asarray(v) for k, v in pred.items()})
        elif isinstance(pred, (list, tuple)):
            arrays.update({f"y:{i}": np.asarray(v) for i, v in enumerate(pred)})
        else:
            arrays["y:0"] = np.asarray(pred)
        model.save(os.path.join(HERE, f"{kind}.keras"))
        model.save_weights(os.path.join(HERE, f"{kind}.weights.h5"))
        np.savez(os.path.join(HERE, f"{kind}.npz"), **arrays)
        print(kind, "written")


if __name__ == "__main__":
    main()
