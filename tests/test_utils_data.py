"""keras.utils data helpers (pad_sequences, datasets, PyDataset, get_file) and fit's class_weight / data sources,
against NumPy references and values recorded from Keras 3.15.1."""
import hashlib
import os
import zipfile

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers, utils

# Recorded with keras.utils.pad_sequences (Keras 3.15.1) on SEQS, value=-1.
SEQS = [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10]]
KERAS_PAD = {
    "None-pre-pre": [[-1, -1, 1, 2, 3], [-1, -1, -1, 4, 5], [-1, -1, -1, -1, -1], [6, 7, 8, 9, 10]],
    "None-post-post": [[1, 2, 3, -1, -1], [4, 5, -1, -1, -1], [-1, -1, -1, -1, -1], [6, 7, 8, 9, 10]],
    "2-pre-pre": [[2, 3], [4, 5], [-1, -1], [9, 10]], "2-pre-post": [[1, 2], [4, 5], [-1, -1], [6, 7]],
    "2-post-pre": [[2, 3], [4, 5], [-1, -1], [9, 10]],
    "4-pre-pre": [[-1, 1, 2, 3], [-1, -1, 4, 5], [-1, -1, -1, -1], [7, 8, 9, 10]],
    "4-post-post": [[1, 2, 3, -1], [4, 5, -1, -1], [-1, -1, -1, -1], [6, 7, 8, 9]],
    "4-post-pre": [[1, 2, 3, -1], [4, 5, -1, -1], [-1, -1, -1, -1], [7, 8, 9, 10]],
}


@pytest.mark.parametrize("key", sorted(KERAS_PAD))
def test_pad_sequences_matches_keras(key):
    maxlen, padding, truncating = key.split("-")
    out = utils.pad_sequences(SEQS, maxlen=None if maxlen == "None" else int(maxlen), padding=padding,
                              truncating=truncating, value=-1)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, np.array(KERAS_PAD[key]))


def test_pad_sequences_dtypes_sample_shapes_and_errors():
    out = utils.pad_sequences([[1.5, 2.5], [3.25]], dtype="float32", value=0.5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.5, 2.5], [0.5, 3.25]])
    out = utils.pad_sequences([[[1, 2], [3, 4]], [[5, 6]]], maxlen=3, padding="post")
    np.testing.assert_array_equal(out, [[[1, 2], [3, 4], [0, 0]], [[5, 6], [0, 0], [0, 0]]])
    out = utils.pad_sequences([["a", "b"], ["c"]], dtype=object, value="<pad>")
    assert out.tolist() == [["a", "b"], ["<pad>", "c"]]
    assert utils.pad_sequences([[1], [2, 3]], maxlen=0).shape == (2, 0)
    with pytest.raises(ValueError, match="padding"):
        utils.pad_sequences(SEQS, padding="middle")
    with pytest.raises(ValueError, match="string padding value"):
        utils.pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError, match="element 1"):
        utils.pad_sequences([[1], 5])


def _windows(data, targets, length, stride, rate, start, end):
    """NumPy reference: Keras's documented window definition."""
    d = data[start:end]
    num = end - start - (length - 1) * rate
    if targets is not None:
        num = min(num, len(targets))
    starts = list(range(0, num, stride))
    x = np.stack([d[s:s + length * rate:rate] for s in starts])
    return x, (None if targets is None else targets[start:end][starts])


@pytest.mark.parametrize("length,stride,rate,start,end,batch", [(5, 1, 1, None, None, 4), (3, 2, 3, 4, 40, 5),
                                                              (4, 3, 2, None, 30, None)])
def test_timeseries_dataset_matches_the_window_definition(length, stride, rate, start, end, batch):
    data = np.arange(50 * 2, dtype=np.float32).reshape(50, 2)
    targets = np.arange(50) * 10
    ds = utils.timeseries_dataset_from_array(data, targets, sequence_length=length, sequence_stride=stride,
                                             sampling_rate=rate, batch_size=batch, start_index=start, end_index=end)
    xr, yr = _windows(data, targets, length, stride, rate, start or 0, end or 50)
    items = list(ds)
    if batch is None:
        xs, ys = np.stack([i[0] for i in items]), np.stack([i[1] for i in items])
        assert len(ds) == len(xr)
    else:
        xs, ys = np.concatenate([i[0] for i in items]), np.concatenate([i[1] for i in items])
        assert len(ds) == -(-len(xr) // batch) and items[0][0].shape == (batch, length, 2)
    np.testing.assert_array_equal(xs, xr)
    np.testing.assert_array_equal(ys, yr)


def test_timeseries_dataset_shuffle_is_seeded_and_complete():
    data = np.arange(30)
    a = np.concatenate(list(utils.timeseries_dataset_from_array(data, None, 4, batch_size=5, shuffle=True, seed=3)))
    b = np.concatenate(list(utils.timeseries_dataset_from_array(data, None, 4, batch_size=5, shuffle=True, seed=3)))
    np.testing.assert_array_equal(a, b)
    order = np.arange(27)
    np.random.RandomState(3).shuffle(order)      # Keras's first shuffle of the start positions
    np.testing.assert_array_equal(a[:, 0], order)
    with pytest.raises(ValueError, match="sampling_rate"):
        utils.timeseries_dataset_from_array(data, None, 4, sampling_rate=0)
    with pytest.raises(ValueError, match="end_index"):
        utils.timeseries_dataset_from_array(data, None, 4, start_index=10, end_index=5)


def test_split_dataset_sizes_order_and_seeded_shuffle():
    import random
    x, y = np.arange(10) * 2, np.arange(10)
    left, right = utils.split_dataset((x, y), left_size=0.8)
    assert len(left) == 8 and len(right) == 2
    np.testing.assert_array_equal(np.stack([s[0] for s in left]), x[:8])
    np.testing.assert_array_equal(np.stack([s[1] for s in right]), y[8:])
    left, right = utils.split_dataset(np.arange(10), left_size=3, right_size=5, shuffle=True, seed=7)
    order = list(range(10))
    random.Random(7).shuffle(order)        # what Keras's random.seed(7); random.shuffle does
    assert [int(v) for v in left] == order[:3] and [int(v) for v in right] == order[5:]
    batched = utils.split_dataset(utils.timeseries_dataset_from_array(np.arange(20), None, 2, batch_size=4),
                                  right_size=0.25)
    assert [len(d) for d in batched] == [4, 2]
    with pytest.raises(ValueError, match="neither"):
        utils.split_dataset(np.arange(4))
    with pytest.raises(ValueError, match="fraction"):
        utils.split_dataset(np.arange(4), left_size=1.5)


def _linear_model():
    inputs = keras.Input(shape=(3,))
    outputs = layers.Dense(1, use_bias=False, kernel_initializer="ones")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def _data(n=12):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (rng.integers(0, 3, size=(n, 1))).astype(np.float32)
    return x, y


def test_class_weight_weights_the_loss_like_numpy_and_multiplies_sample_weight():
    x, y = _data()
    cw = {0: 0.5, 2: 3.0}                       # class 1 missing: weight 1
    sw = np.linspace(0.5, 2.0, len(x)).astype(np.float32)
    per_sample = ((x.sum(1, keepdims=True) - y) ** 2)[:, 0]           # kernel of ones
    w = np.array([cw.get(int(c), 1.0) for c in y[:, 0]])
    model = _linear_model()
    h = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, class_weight=cw, sample_weight=sw, verbose=0)
    np.testing.assert_allclose(h.history["loss"][0], np.mean(per_sample * w * sw), rtol=1e-5)
    model = _linear_model()
    loss = model.train_on_batch(x, y, class_weight=cw)
    np.testing.assert_allclose(loss, np.mean(per_sample * w), rtol=1e-5)
    onehot = utils.to_categorical(y[:, 0].astype(int), 3)
    from fncompiler.runtime import data_sources
    np.testing.assert_array_equal(data_sources.class_weight_to_sample_weights(onehot, cw), w)
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        model.fit(x, y, class_weight=[1, 2], verbose=0)


def test_class_weight_refuses_several_outputs():
    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, [layers.Dense(1, name="a")(inputs), layers.Dense(1, name="b")(inputs)])
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    x, y = _data()
    with pytest.raises(ValueError, match="single output"):
        model.fit(x, [y, y], class_weight={0: 2.0}, verbose=0)


class Batches(utils.PyDataset):
    def __init__(self, x, y, batch_size, weights=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size, self.weights = x, y, batch_size, weights
        self.epochs_ended = 0
        self.seen = []

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        self.seen.append(i)
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        if self.y is None:
            return self.x[sl]
        return (self.x[sl], self.y[sl]) if self.weights is None else (self.x[sl], self.y[sl], self.weights[sl])

    def on_epoch_end(self):
        self.epochs_ended += 1


@pytest.mark.parametrize("workers", [1, 3])
def test_py_dataset_trains_like_the_arrays(workers):
    x, y = _data()
    sw = np.linspace(0.5, 2.0, len(x)).astype(np.float32)
    a, b = _linear_model(), _linear_model()
    ds = Batches(x, y, 4, weights=sw, workers=workers, use_multiprocessing=workers > 1, max_queue_size=2)
    ha = a.fit(ds, epochs=2, shuffle=False, verbose=0)
    hb = b.fit(x, y, sample_weight=sw, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(a.get_weights()[0], b.get_weights()[0], rtol=1e-5)
    assert ds.epochs_ended == 2 and ds.seen == [0, 1, 2] * 2
    np.testing.assert_allclose(a.evaluate(Batches(x, y, 5), verbose=0), b.evaluate(x, y, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(a.predict(Batches(x, None, 5), verbose=0), b.predict(x, verbose=0), rtol=1e-5)
    assert a.predict(Batches(x, None, 5), steps=2, verbose=0).shape == (10, 1)
    with pytest.raises(ValueError, match="`y` cannot be given"):
        a.fit(ds, y, verbose=0)


def test_fit_validation_from_a_dataset_steps_and_freq():
    x, y = _data(20)
    model = _linear_model()
    val = utils.timeseries_dataset_from_array(x, y, sequence_length=1, batch_size=5).map(lambda a, b: (a[:, 0], b))
    h = model.fit(x, y, epochs=3, validation_data=val, validation_freq=[1, 3], verbose=0)
    assert len(h.history["val_loss"]) == 2
    h = model.fit(x, y, batch_size=4, epochs=1, validation_data=(x, y), validation_steps=1, verbose=0)
    ref = model.evaluate(x[:4], y[:4], verbose=0)
    np.testing.assert_allclose(h.history["val_loss"][0], ref, rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=4, steps=2, verbose=0),
                               model.evaluate(x[:8], y[:8], verbose=0), rtol=1e-5)
    with pytest.raises(ValueError, match="validation_freq"):
        model.fit(x, y, validation_data=(x, y), validation_freq="2", verbose=0)


def _write_pngs(root, classes, per_class, size=(6, 4)):
    from PIL import Image
    rng = np.random.default_rng(0)
    arrays = {}
    for c in classes:
        os.makedirs(root / c)
        for i in range(per_class):
            arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            path = root / c / f"img{i}.png"
            Image.fromarray(arr).save(path)
            arrays[str(path)] = arr
    return arrays


def test_image_dataset_from_directory(tmp_path):
    pytest.importorskip("PIL")
    arrays = _write_pngs(tmp_path, ["cat", "dog"], 5)
    ds = utils.image_dataset_from_directory(tmp_path, image_size=(4, 6), batch_size=3, shuffle=False,
                                            verbose=False)
    assert ds.class_names == ["cat", "dog"] and len(ds) == 4
    xb, yb = next(iter(ds))
    assert xb.dtype == np.float32 and xb.shape == (3, 4, 6, 3) and yb.dtype == np.int32
    np.testing.assert_array_equal(xb[0], arrays[ds.file_paths[0]].astype(np.float32))   # same size: no resize
    np.testing.assert_array_equal(np.concatenate([b[1] for b in ds]), [0] * 5 + [1] * 5)
    train, val = utils.image_dataset_from_directory(tmp_path, image_size=(2, 3), label_mode="binary",
                                                    validation_split=0.2, subset="both", seed=1, verbose=False)
    assert len(train.file_paths) == 8 and len(val.file_paths) == 2
    assert not set(train.file_paths) & set(val.file_paths)
    paths = sorted(arrays)
    np.random.RandomState(1).shuffle(paths)
    assert val.file_paths == paths[8:]
    xb, yb = next(iter(val))
    assert xb.shape == (2, 2, 3, 3) and yb.dtype == np.float32 and yb.shape == (2, 1)
    gray = utils.image_dataset_from_directory(tmp_path, label_mode="categorical", color_mode="grayscale",
                                              image_size=(4, 6), shuffle=False, verbose=False)
    xb, yb = next(iter(gray))
    assert xb.shape[-1] == 1 and yb.shape == (10, 2)
    inputs = keras.Input(shape=(2, 3, 3))
    model = keras.Model(inputs, layers.Dense(1)(layers.Flatten()(layers.Rescaling(1 / 255)(inputs))))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(train, epochs=1, validation_data=val, verbose=0)
    assert model.predict(val, verbose=0).shape == (2, 1)
    with pytest.raises(ValueError, match="needs a seed"):
        utils.image_dataset_from_directory(tmp_path, validation_split=0.2, subset="training", verbose=False)
    with pytest.raises(ValueError, match="exactly 2 classes"):
        utils.image_dataset_from_directory(tmp_path, label_mode="binary", class_names=["cat"], verbose=False)


def test_text_dataset_from_directory(tmp_path):
    texts = {"neg": ["bad movie", "awful"], "pos": ["great film", "lovely", "so good"]}
    for c, items in texts.items():
        os.makedirs(tmp_path / c)
        for i, t in enumerate(items):
            (tmp_path / c / f"{i}.txt").write_text(t)
        (tmp_path / c / "skip.md").write_text("not a txt file")
    ds = utils.text_dataset_from_directory(tmp_path, batch_size=2, shuffle=False, max_length=5, verbose=False)
    xs = np.concatenate([b[0] for b in ds])
    ys = np.concatenate([b[1] for b in ds])
    assert ds.class_names == ["neg", "pos"] and len(ds) == 3
    assert xs.tolist() == ["bad m", "awful", "great", "lovel", "so go"] and ys.tolist() == [0, 0, 1, 1, 1]
    unlabeled = utils.text_dataset_from_directory(tmp_path, labels=None, shuffle=False, verbose=False)
    assert next(iter(unlabeled)).shape == (5,) and unlabeled.class_names is None


def test_get_file_finds_cached_files_extracts_and_refuses_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("FNCOMPILER_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "datasets" / "data.csv")):
        utils.get_file(origin="https://example.com/files/data.csv")
    os.makedirs(tmp_path / "datasets")
    (tmp_path / "datasets" / "data.csv").write_text("a,b\n")
    digest = hashlib.sha256(b"a,b\n").hexdigest()
    assert utils.get_file(origin="https://example.com/files/data.csv", file_hash=digest) == \
        str(tmp_path / "datasets" / "data.csv")
    with pytest.raises(FileNotFoundError, match="hash"):
        utils.get_file("data.csv", origin="x", file_hash="0" * 64)
    with zipfile.ZipFile(tmp_path / "datasets" / "pack.zip", "w") as zf:
        zf.writestr("pack/readme.txt", "hi")
    out = utils.get_file("pack.zip", origin="https://example.com/pack.zip", extract=True)
    assert out == str(tmp_path / "datasets" / "pack_extracted")
    assert (tmp_path / "datasets" / "pack_extracted" / "pack" / "readme.txt").read_text() == "hi"
    with pytest.raises(FileNotFoundError, match="never downloads"):
        utils.get_file("data.csv", origin="x", force_download=True)


def test_per_output_sample_weight_is_refused_clearly_and_one_entry_unwrapped():
    import fncompiler as keras
    from fncompiler import layers
    i = keras.Input((3,))
    m = keras.Model(i, {"a": layers.Dense(1, name="a")(i), "b": layers.Dense(1, name="b")(i)})
    m.compile(loss="mse", optimizer="sgd")
    x, y = np.ones((4, 3), "float32"), {"a": np.ones((4, 1)), "b": np.ones((4, 1))}
    with pytest.raises(ValueError, match=r"sample_weight: a dict of per-output weights.*outputs \['a', 'b'\]"):
        m.fit(x, y, sample_weight={"a": np.ones(4), "b": np.zeros(4)}, epochs=1, verbose=0)
    single = keras.Model(i, layers.Dense(1)(i))
    single.compile(loss="mse", optimizer="sgd")
    w = np.array([1.0, 0.0, 2.0, 1.0], "float32")
    ref = single.evaluate(x, np.zeros((4, 1)), sample_weight=w, verbose=0)
    assert single.evaluate(x, np.zeros((4, 1)), sample_weight=[w], verbose=0) == pytest.approx(ref)
