"""The hand-written JAX baselines of the benchmarks' models past the guide (benchmarks/hand_written.py) against
fncompiler at the same weights: the loss at the initial weights (inference mode) and the weights after one
training step (Adam with Keras's formula; BatchNormalization's moving statistics). This is the correctness gate
benchmarks/fit.py relies on; nothing here is timed. Also benchmarks/memory.py's JSON."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import hand_written  # noqa: E402
import zoo  # noqa: E402
import fncompiler as K  # noqa: E402

TINY = {
    "transformer": dict(vocab=50, length=8, embed_dim=8, heads=2, ff_dim=16, classes=3),
    "seq2seq": dict(source_vocab=7, target_vocab=6, source_length=5, target_length=4, units=8),
    "resnet20": {},
}


def _build(name):
    sizes = TINY[name]
    K.utils.set_random_seed(3)
    if name == "transformer":
        model = zoo.build_transformer(K, depth=2, **sizes)
        data = zoo.make_data_transformer(8, seed=1, **sizes)
    elif name == "seq2seq":
        model = zoo.build_seq2seq(K, **sizes)
        data = zoo.make_data_seq2seq(8, seed=1, **sizes)
    else:
        model = zoo.build_resnet20(K)
        data = zoo.make_data_resnet20(4, seed=1)
    model.compile(**zoo.COMPILE_KWARGS[name](K, 1e-3), steps_per_execution=1)
    weights = {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers
               if layer.get_weights()}
    return model, weights, data


def _check(name):
    import jax
    model, weights, (x, y, xs, ys) = _build(name)
    hw = hand_written.HandWritten(name, weights, 1e-3)
    # 1. the loss at the initial weights, inference mode
    expected = float(model.evaluate(x, y, batch_size=len(ys[0]), verbose=0, return_dict=True)["loss"])
    assert abs(hw.init_loss(xs, ys) - expected) <= 1e-5 * max(1.0, abs(expected))
    # 2. one training step from the same weights: the loss it reports and every weight after it
    step = hw.make_train_step()
    params, _, _, metrics = jax.block_until_ready(step(hw.initial_state(), xs, ys))
    logs = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(float(metrics[0] / metrics[2]), logs["loss"], rtol=1e-5)
    assert hw.traces["train"] == 1
    for layer in model.layers:
        if layer.name not in weights:
            continue
        for i, (got, want) in enumerate(zip(params[layer.name], layer.get_weights())):
            _assert_after_one_step(np.asarray(got), np.asarray(want), f"{name}: {layer.name} weight {i}")
    return model, weights, params


def _assert_after_one_step(got, want, what, lr=1e-3):
    """Adam's first update is lr * g / (|g| + eps), about lr * sign(g): where a gradient is near zero (conv
    kernels before BatchNormalization have many such components) rounding can flip its sign, a 2 * lr
    difference. So: every element within 2 * lr, and all but 0.5% of them within 2e-5."""
    diff = np.abs(got - want)
    assert diff.max() <= 2 * lr + 1e-6, (what, diff.max())
    close = diff <= 2e-5 + 1e-4 * np.abs(want)
    assert close.mean() >= 0.995, (what, f"{(~close).sum()} of {close.size} differ by more than 2e-5")


def test_hand_written_transformer_matches_fncompiler():
    _check("transformer")


def test_hand_written_seq2seq_matches_fncompiler():
    _check("seq2seq")


@pytest.mark.parametrize("form", ["up_front", "in_loop", "in_loop_concat", "in_loop_remat", "up_front_dots"])
def test_hand_written_lstm_formulations_match_fncompiler(form, monkeypatch):
    """Every LSTM lowering of benchmarks/lstm_formulations.py (forced in training and inference) is the same
    math: the seq2seq loss and the weights after one step match fncompiler's; and "auto" in inference past the
    projection limit (forced to 0: in the loop)."""
    monkeypatch.setattr(hand_written, "LSTM_FORMULATION", form)
    _check("seq2seq")
    monkeypatch.setattr(hand_written, "LSTM_FORMULATION", "auto")
    monkeypatch.setattr(hand_written, "UP_FRONT_PROJECTION_MAX_BYTES", 0)
    _check("seq2seq")


@pytest.mark.slow
def test_hand_written_resnet20_matches_fncompiler():
    model, weights, params = _check("resnet20")
    # the moving statistics moved (training mode) and match fncompiler's (checked above with every weight)
    before, after = weights["stem_bn"], params["stem_bn"]
    assert not np.allclose(np.asarray(after[2]), before[2])


def test_keras_adam_is_keras_formula():
    """keras_adam against Keras 3's Adam written in NumPy (m, v moving averages; lr * sqrt(1 - b2^t) / (1 - b1^t)
    * m / (sqrt(v) + eps)), over steps with gradients small enough that where eps sits matters."""
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5,)).astype(np.float32)
    opt = hand_written.keras_adam(1e-3)
    state = opt.init(jnp.asarray(w))
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    params, ref = jnp.asarray(w), w.copy()
    for t in range(1, 5):
        g = (rng.normal(size=(5,)) * 1e-7).astype(np.float32)
        updates, state = opt.update(jnp.asarray(g), state, params)
        params = params + updates
        m = m + (g - m) * 0.1
        v = v + (g * g - v) * 0.001
        ref = ref - 1e-3 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-7)
        np.testing.assert_allclose(np.asarray(params), ref, rtol=1e-6, atol=1e-9)


def test_memory_benchmark_json(tmp_path):
    out = tmp_path / "memory.json"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "memory.py"), "--models", "mlp",
                           "--configs", "fncompiler_remat,jax_jit", "--budget-mb", "8", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["budget_mb"] == 8
    configs = report["models"]["mlp"]["configs"]
    assert set(configs) == {"fncompiler_remat", "jax_jit"}
    for name, c in configs.items():
        assert c["status"] == "ok", (name, c.get("error"))
        assert not c.get("errors"), c.get("errors")
        for key in ("xla_temp_mb", "xla_argument_mb", "xla_output_mb", "xla_peak_mb", "peak_rss_mb",
                    "step_rss_growth_mb", "largest_batch", "largest_batch_peak_mb", "batch_size"):
            assert c.get(key) is not None, (name, key)
        assert c["xla_peak_mb"] == pytest.approx(c["xla_temp_mb"] + c["xla_argument_mb"] + c["xla_output_mb"]
                                                 - (c.get("xla_alias_mb") or 0.0))
        assert c["largest_batch"] > c["batch_size"] and c["largest_batch_peak_mb"] <= 8
        # the measurements it was solved from, each a compile at that batch size
        assert [b for b, _ in c["largest_batch_measured"][:2]] == [c["batch_size"], 2 * c["batch_size"]]
    # the same weights, optimizer state and batch: the same argument bytes
    assert configs["fncompiler_remat"]["xla_argument_mb"] == pytest.approx(configs["jax_jit"]["xla_argument_mb"], rel=0.05)
    assert "| mlp | 64 | fncompiler train step + remat pass |" in proc.stdout
