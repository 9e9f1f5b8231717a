"""Lowering to pure functions and the jitted steps: values against references, one trace per signature."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.runtime import steps as steps_lib

from conftest import numpy_mlp


def _compiled_mlp(mlp, optimizer="sgd"):
    mlp.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    return mlp


def test_forward_matches_numpy(mlp):
    x = np.random.rand(5, 784).astype("float32")
    np.testing.assert_allclose(mlp.predict(x, verbose=0), numpy_mlp(mlp, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(mlp(x)), numpy_mlp(mlp, x), rtol=1e-5, atol=1e-5)
    compiled = keras.compile_model(mlp)
    np.testing.assert_allclose(np.asarray(compiled(x)), numpy_mlp(mlp, x), rtol=1e-5, atol=1e-5)


def test_train_step_equals_sgd_on_reference_gradient(mlp):
    _compiled_mlp(mlp, keras.optimizers.SGD(learning_rate=0.1))
    x = np.random.rand(8, 784).astype("float32")
    y = np.random.randint(0, 10, 8).astype("int32")
    before = [jnp.asarray(w) for w in mlp.get_weights()]

    def ref_loss(ws):
        h = x
        for i in range(0, 6, 2):
            h = h @ ws[i] + ws[i + 1]
            if i < 4:
                h = jnp.maximum(h, 0)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(logp[jnp.arange(8), y])
    loss, grads = jax.value_and_grad(ref_loss)(before)
    logs = mlp.train_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(float(loss), rel=1e-5)
    for w0, g, w1 in zip(before, grads, mlp.get_weights()):
        np.testing.assert_allclose(w1, np.asarray(w0 - 0.1 * g), rtol=1e-5, atol=1e-6)


def test_one_trace_per_signature_across_epochs(mlp):
    _compiled_mlp(mlp)
    x = np.random.rand(100, 784).astype("float32")
    y = np.random.randint(0, 10, 100)
    mlp.fit(x, y, batch_size=32, epochs=3, verbose=0)      # batches of 32, 32, 32, 4
    counts = mlp._trainer.compiled.trace_counts
    assert counts["train"] == 2                             # full batch + the last partial batch, once each
    mlp.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert counts["train"] == 2
    mlp.evaluate(x, y, batch_size=50, verbose=0)
    mlp.evaluate(x, y, batch_size=50, verbose=0)
    assert counts["eval"] == 1
    mlp.predict(x[:7], verbose=0)
    mlp.predict(x[7:14], verbose=0)
    assert counts["predict"] == 1


def test_eager_mode_computes_what_jit_computes(mlp):
    _compiled_mlp(mlp, "rmsprop")
    x = [jnp.asarray(np.random.rand(16, 784).astype("float32"))]
    y = [jnp.asarray(np.random.randint(0, 10, 16).astype("int32"))]
    results = {}
    for mode in ("jit", "eager"):
        cm = keras.compile_model(mlp, mode=mode)
        low = cm.lowered("train")
        state = steps_lib.initial_train_state([jnp.array(v.value) for v in low.trainable],
                                              [jnp.array(v.value) for v in low.non_trainable], mlp._compile_config, 0)
        for _ in range(3):
            state = cm.step("train")(state, x, y, None)
        results[mode] = state
        assert cm.trace_counts["train"] == (1 if mode == "jit" else 3)
    for a, b in zip(results["jit"][0], results["eager"][0]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_as_text_is_stablehlo_of_one_function(mlp):
    _compiled_mlp(mlp)
    compiled = keras.compile_model(mlp)
    text = compiled.as_text("predict", batch_size=4)
    assert "func.func public @main" in text and "stablehlo.dot_general" in text
    assert "tensor<4x784xf32>" in text
    train = compiled.as_text("train", batch_size=4)
    assert train.count("func.func public @main") == 1 and "stablehlo" in train


def test_lower_sequence_model_needs_and_takes_input_shapes():
    """Inputs with unknown lengths: lowering asks for `input_shapes=` (naming an example), and takes them as a
    list in input order, a dict by name, or one input's shape on its own; a shape that contradicts the
    declared one is refused."""
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    tags = keras.Input(shape=(3,), name="tags")
    h = layers.GlobalAveragePooling1D()(layers.Embedding(20, 4)(tokens))
    model = keras.Model([tokens, tags], layers.Dense(2)(layers.concatenate([h, tags])))
    compiled = keras.compile_model(model)
    with pytest.raises(ValueError, match=r"input_shapes=\[\(8,\), \(3,\)\]"):
        compiled.as_text("predict", batch_size=2)
    by_list = compiled.as_text("predict", batch_size=2, input_shapes=[(7,), (3,)])
    by_name = compiled.as_text("predict", batch_size=2, input_shapes={"tokens": (7,)})
    assert "tensor<2x7xi32>" in by_list and by_list == by_name
    with pytest.raises(ValueError, match="does not fit the input's declared shape"):
        compiled.as_text("predict", input_shapes=[(7,), (4,)])
    with pytest.raises(ValueError, match=r"not inputs of model"):
        compiled.as_text("predict", input_shapes={"words": (7,)})
    with pytest.raises(ValueError, match="2 inputs"):
        compiled.as_text("predict", input_shapes=[(7,)])
    single = keras.Model(tokens, h)
    text = keras.compile_model(single).as_text("predict", batch_size=3, input_shapes=(5,))
    assert "tensor<3x5xi32>" in text


def test_lower_train_of_a_sequence_model_derives_its_targets_from_the_inputs():
    """A seq2seq model with unknown lengths: lower("train", input_shapes=...) gives its per-step target the
    decoder input's length (the outputs' shapes for those inputs), and the lowered step computes the loss a
    NumPy reference computes at the same weights."""
    enc_in = keras.Input(shape=(None, 5), name="source")
    dec_in = keras.Input(shape=(None, 5), name="target_in")
    _, h, c = layers.LSTM(6, return_state=True, name="encoder")(enc_in)
    seq = layers.LSTM(6, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    model = keras.Model([enc_in, dec_in], layers.Dense(5, activation="softmax", name="probs")(seq))
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    compiled = keras.compile_model(model, compile_config=model._compile_config)
    text = compiled.as_text("train", batch_size=2, input_shapes=[(7, 5), (4, 5)])
    assert "tensor<2x7x5xf32>" in text and "tensor<2x4x5xf32>" in text
    state, specs, ys, _ = compiled.example_args("train", 2, [(7, 5), (4, 5)])
    assert [tuple(t.shape) for t in ys] == [(2, 4, 5)]
    rng = np.random.default_rng(0)
    xs = [rng.random((2, 7, 5)).astype("float32"), rng.random((2, 4, 5)).astype("float32")]
    target = np.eye(5, dtype="float32")[rng.integers(0, 5, (2, 4))]
    probs = model.predict(xs, verbose=0)
    expected = float(np.mean(-np.sum(target * np.log(np.clip(probs, 1e-7, 1.0)), axis=-1)))
    # the step lowered at those shapes, compiled and run: its loss metric holds the reference loss
    low = compiled.lowered("train")
    executable = compiled.lower("train", 2, [(7, 5), (4, 5)]).compile()
    state0 = steps_lib.initial_train_state([jnp.array(v.value) for v in low.trainable],
                                           [jnp.array(v.value) for v in low.non_trainable], model._compile_config, 0)
    new_state = executable(state0, [jnp.asarray(a) for a in xs], [jnp.asarray(target)], None)
    loss_sum, count = new_state[3][0]
    np.testing.assert_allclose(float(loss_sum) / float(count), expected, rtol=1e-5)


def test_dropout_is_active_only_in_training():
    inp = keras.Input(shape=(1000,))
    out = layers.Dropout(0.5)(inp)
    model = keras.Model(inp, out)
    x = np.ones((2, 1000), "float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    low = keras.compile_model(model).lowered("train")
    y, _, _ = low.forward([], [], [jnp.asarray(x)], jax.random.key(0), True)
    y = np.asarray(y[0])
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.4 < (y == 0).mean() < 0.6


def _spe_model(spe):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(20,))
    h = layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, layers.Dense(3)(h))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="rmsprop",
                  metrics=["accuracy"], steps_per_execution=spe)
    return model


def test_steps_per_execution_scan_matches_per_step(tmp_path, monkeypatch):
    monkeypatch.setenv("FNCOMPILER_CACHE_DIR", str(tmp_path))
    x = np.random.default_rng(0).random((1000, 20), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 3, 1000)
    results = {}
    for spe in (1, 4):              # "auto": tests/test_fit_tuning.py
        model = _spe_model(spe)
        history = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        results[spe] = (model.get_weights(), history.history, model._trainer.compiled.trace_counts)
    for w1, w4 in zip(results[1][0], results[4][0]):
        np.testing.assert_allclose(w1, w4, rtol=1e-5, atol=1e-6)
    assert results[4][1]["loss"] == pytest.approx(results[1][1]["loss"], rel=1e-5)
    assert results[4][2]["train_multi"] == 1          # 31 full batches: 7 groups of 4 + 3 single + the last 8


def test_steps_per_execution_is_validated():
    with pytest.raises(ValueError, match="steps_per_execution must be a positive int or 'auto'"):
        _spe_model(0)
