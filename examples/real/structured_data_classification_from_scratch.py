"""Structured data classification from scratch (keras.io example, on a local synthetic "heart disease" table).

As the keras.io program: one `keras.Input` per column (strings for the categorical `thal` column), encoded with
`StringLookup` / `IntegerLookup` (one_hot, adapted on the training data), `Normalization` for numeric columns,
`CategoryEncoding` for a column of small integer codes; all concatenated into a small classifier, trained with a
dict of columns per sample batch, and used on one new patient record.

Run: python examples/real/structured_data_classification_from_scratch.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers

keras.utils.set_random_seed(42)
rng = np.random.default_rng(42)
N = 600

# A table with the columns of the UCI heart disease data (values drawn at random, target from a rule).
columns = {
    "age": rng.integers(29, 78, N), "sex": rng.integers(0, 2, N), "cp": rng.integers(0, 5, N),
    "trestbps": rng.integers(94, 200, N), "chol": rng.integers(126, 564, N), "fbs": rng.integers(0, 2, N),
    "restecg": rng.integers(0, 3, N), "thalach": rng.integers(71, 202, N), "exang": rng.integers(0, 2, N),
    "oldpeak": rng.uniform(0, 6.2, N).round(1), "slope": rng.integers(1, 4, N), "ca": rng.integers(0, 4, N),
    "thal": rng.choice(["normal", "fixed", "reversible"], N),
}
risk = (0.04 * (columns["age"] - 50) + 0.8 * (columns["thal"] == "reversible") + 0.5 * columns["exang"]
        - 0.02 * (columns["thalach"] - 150) + 0.4 * columns["oldpeak"] + 0.3 * (columns["cp"] == 4) - 1.0)
target = (risk + rng.normal(0, 0.3, N) > 0).astype("float32")
split = int(0.8 * N)


def frame(lo, hi):
    out = {}
    for name, values in columns.items():
        values = values[lo:hi].reshape(-1, 1)
        out[name] = values.astype("float32") if values.dtype.kind == "f" else values
    return out, target[lo:hi]


x_train, y_train = frame(0, split)
x_val, y_val = frame(split, N)
print(f"Using {split} samples for training and {N - split} for validation")

# Categorical features encoded as integers
sex = keras.Input(shape=(1,), name="sex", dtype="int64")
cp = keras.Input(shape=(1,), name="cp", dtype="int64")
fbs = keras.Input(shape=(1,), name="fbs", dtype="int64")
restecg = keras.Input(shape=(1,), name="restecg", dtype="int64")
exang = keras.Input(shape=(1,), name="exang", dtype="int64")
ca = keras.Input(shape=(1,), name="ca", dtype="int64")
slope = keras.Input(shape=(1,), name="slope", dtype="int64")
# Categorical feature encoded as string
thal = keras.Input(shape=(1,), name="thal", dtype="string")
# Numerical features
age = keras.Input(shape=(1,), name="age")
trestbps = keras.Input(shape=(1,), name="trestbps")
chol = keras.Input(shape=(1,), name="chol")
thalach = keras.Input(shape=(1,), name="thalach")
oldpeak = keras.Input(shape=(1,), name="oldpeak")

all_inputs = [sex, cp, fbs, restecg, exang, ca, slope, thal, age, trestbps, chol, thalach, oldpeak]


def encode_numerical_feature(feature, name):
    normalizer = layers.Normalization()
    normalizer.adapt(x_train[name].astype("float32"))
    return normalizer(feature)


def encode_categorical_feature(feature, name, is_string):
    lookup_class = layers.StringLookup if is_string else layers.IntegerLookup
    lookup = lookup_class(output_mode="binary")      # Keras 2's name for multi_hot
    lookup.adapt(x_train[name])
    return lookup(feature)


# "slope" takes the small codes 1..3: CategoryEncoding needs no vocabulary.
slope_encoded = layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")(slope)

all_features = layers.concatenate([
    encode_categorical_feature(sex, "sex", False),
    encode_categorical_feature(cp, "cp", False),
    encode_categorical_feature(fbs, "fbs", False),
    encode_categorical_feature(restecg, "restecg", False),
    encode_categorical_feature(exang, "exang", False),
    encode_categorical_feature(ca, "ca", False),
    slope_encoded,
    encode_categorical_feature(thal, "thal", True),
    encode_numerical_feature(age, "age"),
    encode_numerical_feature(trestbps, "trestbps"),
    encode_numerical_feature(chol, "chol"),
    encode_numerical_feature(thalach, "thalach"),
    encode_numerical_feature(oldpeak, "oldpeak"),
])
x = layers.Dense(32, activation="relu")(all_features)
x = layers.Dropout(0.5)(x)
output = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(all_inputs, output)
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
print("encoded features per patient:", all_features.shape[-1])

history = model.fit(x_train, y_train, epochs=30, batch_size=32, validation_data=(x_val, y_val), verbose=0)
val_accuracy = history.history["val_accuracy"][-1]
print(f"validation accuracy after 30 epochs: {val_accuracy:.3f}")
assert val_accuracy > 0.8, val_accuracy

sample = {"age": 60, "sex": 1, "cp": 1, "trestbps": 145, "chol": 233, "fbs": 1, "restecg": 2, "thalach": 150,
          "exang": 0, "oldpeak": 2.3, "slope": 3, "ca": 0, "thal": "fixed"}
input_dict = {name: np.array([[value]]) for name, value in sample.items()}
predictions = model.predict(input_dict, verbose=0)
print(f"This particular patient had a {100 * predictions[0][0]:.1f} percent probability of having a heart disease.")
print("OK structured_data_classification_from_scratch")
