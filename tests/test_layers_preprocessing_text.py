"""Host (NumPy) preprocessing layers: Hashing, StringLookup, TextVectorization, vs Keras's documented values and
NumPy references; and the host prefix of models whose inputs are strings (fit / predict / evaluate / save)."""
import math
import re

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers as L
from layer_config_check import round_trip
from fncompiler.models.host_prefix import HostPrefixError


LETTERS = np.array([["A"], ["B"], ["C"], ["D"], ["E"]])


# ------------------------------------------------------------------ Hashing
def test_hashing_matches_keras_documented_bins():
    pytest.importorskip("farmhash")
    np.testing.assert_array_equal(L.Hashing(num_bins=3)(LETTERS), [[1], [0], [1], [1], [2]])
    np.testing.assert_array_equal(L.Hashing(num_bins=3, mask_value="")(np.array([["A"], ["B"], [""], ["C"], ["D"]])),
                                  [[1], [1], [0], [2], [2]])
    # integers hash as their decimal strings, as Keras's tf.strings.as_string
    np.testing.assert_array_equal(L.Hashing(num_bins=3)(np.array([[65], [66]])),
                                  L.Hashing(num_bins=3)(np.array([["65"], ["66"]])))


def test_hashing_salt_siphash_and_output_modes():
    np.testing.assert_array_equal(L.Hashing(num_bins=3, salt=[133, 137])(LETTERS), [[1], [2], [1], [0], [2]])
    np.testing.assert_array_equal(L.Hashing(num_bins=3, salt=133)(LETTERS),
                                  L.Hashing(num_bins=3, salt=[133, 133])(LETTERS))
    bins = np.asarray(L.Hashing(num_bins=3, salt=[133, 137])(LETTERS)).ravel()
    hot = np.asarray(L.Hashing(num_bins=3, salt=[133, 137], output_mode="one_hot")(LETTERS))
    np.testing.assert_array_equal(hot, np.eye(3)[bins])
    counts = np.asarray(L.Hashing(num_bins=3, salt=[133, 137], output_mode="count")(LETTERS.reshape(1, 5)))
    np.testing.assert_array_equal(counts, [np.bincount(bins, minlength=3)])
    layer = round_trip(L.Hashing(num_bins=4, salt=[1, 2], output_mode="multi_hot"))
    assert layer.salt == [1, 2]
    sym = L.Hashing(num_bins=4, salt=1)(keras.Input(shape=(1,), dtype="string"))
    assert sym.shape == (None, 1) and sym.dtype == "int32"


# ------------------------------------------------------------------ StringLookup
VOCAB = ["a", "b", "c", "d"]


def test_string_lookup_keras_examples():
    data = np.array([["a", "c", "d"], ["d", "z", "b"]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=VOCAB)(data), [[1, 3, 4], [4, 0, 2]])
    adapted = L.StringLookup()
    adapted.adapt(data)
    assert adapted.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    four = np.array([["a", "c", "d", "d"], ["d", "z", "b", "z"]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=VOCAB, output_mode="multi_hot")(four),
                                  [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=VOCAB, output_mode="count")(four),
                                  [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]])
    tfidf = L.StringLookup(vocabulary=VOCAB, idf_weights=[0.25, 0.75, 0.6, 0.4], output_mode="tf_idf")(four)
    np.testing.assert_allclose(tfidf, [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6)
    inverse = L.StringLookup(vocabulary=VOCAB, invert=True)(np.array([[1, 3, 4], [4, 0, 2]]))
    np.testing.assert_array_equal(inverse, [["a", "c", "d"], ["d", "[UNK]", "b"]])
    masked = L.StringLookup(vocabulary=VOCAB, mask_token="[MASK]")
    np.testing.assert_array_equal(masked(np.array([["a", "[MASK]", "q"]])), [[2, 0, 1]])
    assert masked.get_vocabulary()[:2] == ["[MASK]", "[UNK]"]
    np.testing.assert_array_equal(L.StringLookup(vocabulary=VOCAB)(np.array([[b"a", b"d"]])), [[1, 4]])


def test_string_lookup_two_oov_buckets_match_keras():
    pytest.importorskip("farmhash")
    data = np.array([["a", "c", "d"], ["m", "z", "b"]])
    np.testing.assert_array_equal(L.StringLookup(vocabulary=VOCAB, num_oov_indices=2)(data),
                                  [[2, 4, 5], [0, 1, 3]])


def test_string_lookup_adapt_tf_idf_max_tokens_and_config():
    docs = np.array([["x", "y", "y"], ["y", "z", "z"], ["z", "z", "w"]])
    layer = L.StringLookup(output_mode="tf_idf", max_tokens=4)
    layer.adapt(docs)
    counts = {"z": 4, "y": 3, "x": 1, "w": 1}
    assert layer.get_vocabulary() == ["[UNK]", "z", "y", "x"]          # tie x/w: the larger string first
    assert counts["x"] == counts["w"]
    df = np.array([2, 2, 1])                   # documents holding z, y, x
    idf = np.log(1 + 3 / (1 + df))
    idf = np.concatenate([[idf.mean()], idf])
    tf = np.array([[0, 0, 2, 1], [1, 0, 0, 0]])  # "y y x", "w"
    out = layer(np.array([["y", "y", "x"], ["w", "w", "w"]])[:, :3])
    np.testing.assert_allclose(out[0], tf[0] * idf, rtol=1e-5)
    np.testing.assert_allclose(out[1], np.array([3, 0, 0, 0]) * idf, rtol=1e-5)
    clone = round_trip(layer)
    np.testing.assert_allclose(clone(docs), layer(docs), rtol=1e-6)
    with pytest.raises(ValueError, match="max_tokens"):
        L.StringLookup(vocabulary=["a", "b", "c"], max_tokens=3)


# ------------------------------------------------------------------ TextVectorization
def np_tokens(text):
    text = re.sub(r'[!"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~\']', "", text.lower())
    return text.split()


CORPUS = np.array(["The cat sat on the mat.", "The dog ATE my homework!", "A cat, a dog; the end?"])


def test_text_vectorization_int_mode():
    layer = L.TextVectorization(output_sequence_length=6)
    layer.adapt(CORPUS)
    tokens = [t for d in CORPUS for t in np_tokens(d)]
    counts = {t: tokens.count(t) for t in set(tokens)}
    expected = sorted(counts, key=lambda t: (-counts[t], tuple(-ord(c) for c in t)))
    assert layer.get_vocabulary() == ["", "[UNK]"] + expected
    index = {t: i for i, t in enumerate(layer.get_vocabulary())}
    out = layer(np.array(["the dog sat by the cat, again and again", "mat"]))
    first = [index.get(t, 1) for t in np_tokens("the dog sat by the cat, again and again")][:6]
    np.testing.assert_array_equal(out, [first, [index["mat"], 0, 0, 0, 0, 0]])
    assert out.dtype == np.int32
    ragged = L.TextVectorization(vocabulary=["cat", "dog"])(np.array([["cat dog cat"], ["dog"]]))
    np.testing.assert_array_equal(ragged, [[2, 3, 2], [3, 0, 0]])     # padded to the longest of the batch
    sym = layer(keras.Input(shape=(1,), dtype="string"))
    assert sym.shape == (None, 6) and sym.dtype == "int32"
    assert L.TextVectorization()(keras.Input(shape=(), dtype="string")).shape == (None, None)


def test_text_vectorization_split_standardize_ngrams_and_modes():
    chars = L.TextVectorization(split="character", standardize="lower", vocabulary=["a", "b"])
    np.testing.assert_array_equal(chars(np.array(["AbC"])), [[2, 3, 1]])
    bigrams = L.TextVectorization(ngrams=2, vocabulary=["a", "b", "a b"], output_mode="multi_hot")
    np.testing.assert_array_equal(bigrams(np.array(["a b", "b c"])), [[0, 1, 1, 1], [1, 0, 1, 0]])
    counts = L.TextVectorization(vocabulary=["x", "y"], output_mode="count", standardize=None)
    np.testing.assert_array_equal(counts(np.array(["x x Y", "y"])), [[1, 2, 0], [0, 0, 1]])
    tfidf = L.TextVectorization(output_mode="tf_idf")
    tfidf.adapt(CORPUS)
    vocab = tfidf.get_vocabulary()
    docs = [set(np_tokens(d)) for d in CORPUS]
    idf = np.array([math.log(1 + 3 / (1 + sum(t in d for d in docs))) for t in vocab[1:]])
    out = tfidf(np.array(["the the cat zebra"]))[0]
    tf = np.array([np_tokens("the the cat zebra").count(t) for t in vocab[1:]])
    np.testing.assert_allclose(out[1:], tf * idf, rtol=1e-5)
    np.testing.assert_allclose(out[0], 1 * idf.mean(), rtol=1e-5)          # one OOV token, the mean idf
    clone = round_trip(tfidf)
    np.testing.assert_allclose(clone(CORPUS), tfidf(CORPUS), rtol=1e-6)
    capped = L.TextVectorization(max_tokens=5, output_mode="multi_hot")
    capped.adapt(CORPUS)
    assert capped.get_vocabulary() == ["[UNK]", "the", "dog", "cat", "a"] and capped(CORPUS).shape == (3, 5)
    padded = L.TextVectorization(max_tokens=40, output_mode="multi_hot", pad_to_max_tokens=True)
    padded.adapt(CORPUS)
    assert padded(CORPUS).shape == (3, 40) and padded(keras.Input(shape=(1,), dtype="string")).shape == (None, 40)
    with pytest.raises(ValueError, match="callable `standardize` cannot be saved"):
        L.TextVectorization(standardize=str.lower).get_config()


# ------------------------------------------------------------------ host prefix in models
def _text_model():
    texts = np.array(["good movie great", "bad film awful", "great great good", "awful bad"] * 4)
    labels = np.array([1, 0, 1, 0] * 4, "float32")
    vectorize = L.TextVectorization(max_tokens=20, output_sequence_length=5)
    vectorize.adapt(texts)
    inp = keras.Input(shape=(1,), dtype="string")
    h = L.GlobalAveragePooling1D()(L.Embedding(20, 3)(vectorize(inp)))
    model = keras.Model(inp, L.Dense(1, activation="sigmoid")(h))
    return model, vectorize, texts, labels


def test_string_model_fit_predict_evaluate_save(tmp_path):
    model, vectorize, texts, labels = _text_model()
    (first,) = model.graph.graph["inputs"]           # the compiled graph starts at the vectorized ids
    assert model.graph.nodes[first]["output_specs"][0].dtype == "int32"
    assert all(d["op"] != "TextVectorization" for _, d in model.graph.nodes(data=True))
    model.compile("adam", "binary_crossentropy")
    model.fit(texts[:, None], labels, batch_size=8, epochs=2, verbose=0)
    assert model._trainer.compiled.trace_counts["train"] == 1
    ids = vectorize(texts[:, None])
    emb, dense = model.layers[2], model.layers[-1]
    h = np.asarray(emb.embeddings.value)[ids].mean(axis=1)
    ref = 1 / (1 + np.exp(-(h @ np.asarray(dense.kernel.value) + np.asarray(dense.bias.value))))
    np.testing.assert_allclose(model.predict(texts[:, None], verbose=0), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(texts[:, None])), ref, rtol=1e-5, atol=1e-6)
    loss = model.evaluate(texts[:, None], labels, verbose=0)
    bce = -np.mean(labels * np.log(ref[:, 0]) + (1 - labels) * np.log(1 - ref[:, 0]))
    assert abs(loss - bce) < 1e-4
    model.save(tmp_path / "text.keras")
    loaded = keras.models.load_model(tmp_path / "text.keras")
    assert loaded.layers[1].get_vocabulary() == vectorize.get_vocabulary()
    np.testing.assert_allclose(loaded.predict(texts[:, None], verbose=0), ref, rtol=1e-5, atol=1e-6)


def test_structured_model_with_dict_inputs_and_a_generator():
    city = keras.Input(shape=(1,), name="city", dtype="string")
    age = keras.Input(shape=(1,), name="age")
    lookup = L.StringLookup(output_mode="one_hot")
    lookup.adapt(np.array([["paris"], ["rome"], ["oslo"]]))
    norm = L.Normalization()
    norm.adapt(np.array([[20.0], [40.0], [60.0]]))
    features = L.concatenate([lookup(city), norm(age)])
    model = keras.Model({"city": city, "age": age}, L.Dense(1)(features))
    model.compile("sgd", "mse")
    x = {"city": np.array([["rome"], ["oslo"], ["lima"]]), "age": np.array([[20.0], [40.0], [60.0]], "float32")}

    def batches():
        for _ in range(3):
            yield x, np.ones((3, 1), "float32")
    model.fit(batches(), epochs=1, verbose=0)
    dense = model.layers[-1]
    onehot = np.eye(4)[[lookup.get_vocabulary().index(c) if c in lookup.get_vocabulary() else 0
                        for c in x["city"].ravel()]]
    z = (x["age"] - 40.0) / np.sqrt(800.0 / 3)
    ref = np.concatenate([onehot, z], 1) @ np.asarray(dense.kernel.value) + np.asarray(dense.bias.value)
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, rtol=1e-4, atol=1e-5)


def test_host_layer_placement_errors():
    inp = keras.Input(shape=(1,), dtype="string")
    with pytest.raises(HostPrefixError, match="only host preprocessing layers"):
        keras.Model(inp, L.Dense(2)(inp))
    num = keras.Input(shape=(1,))
    with pytest.raises(HostPrefixError, match="runs on the host"):
        keras.Model(num, L.Hashing(4, salt=1)(L.Dense(1)(num)))
    ids = keras.Input(shape=(1,), dtype="int32")
    with pytest.raises(HostPrefixError, match="string data"):
        keras.Model(ids, L.StringLookup(vocabulary=["a"], invert=True)(ids))
