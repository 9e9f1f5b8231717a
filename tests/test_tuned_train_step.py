"""`compile_model(model, autotune=True)` (runtime/tuned_steps.py): the train step called directly runs with the XLA
options measured fastest for its inputs, after checking that every candidate computes the same update."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.runtime import strategies, steps, tuned_steps, tuner
from fncompiler.runtime.strategies import Strategy
from fncompiler.runtime.compiled import compile_model


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FNCOMPILER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuner, "_MEMORY", {})
    return tmp_path


def _conv_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8, 8, 1))
    h = layers.Conv2D(4, 3, activation="relu")(inputs)
    model = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(h)))
    model.compile(optimizer="rmsprop", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _batch(n=16):
    rng = np.random.default_rng(0)
    return [rng.random((n, 8, 8, 1), dtype=np.float32)], [rng.integers(0, 3, n).astype(np.int32)]


def _state(cm):
    low = cm.lowered("train")
    return steps.initial_train_state([jnp.array(v.value) for v in low.trainable],
                                     [jnp.array(v.value) for v in low.non_trainable], cm.compile_config, 0)


def _train(cm, n_steps=3):
    x, y = _batch()
    state = _state(cm)
    for _ in range(n_steps):
        state = cm.step("train")(state, x, y, None)
    return state


def _on_cpu():
    return jax.devices()[0].platform == "cpu"


def test_candidates_per_platform():
    model = _conv_model()
    names = [c.name for c in strategies.option_candidates(model, "cpu")]
    assert names == ["default options", "conv option (ynn off)"]
    assert [c.name for c in strategies.option_candidates(model, "gpu")] == ["default options"]
    dense = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(2)])
    assert [c.name for c in strategies.option_candidates(dense, "cpu")] == ["default options"]


def test_tuned_step_trains_like_the_plain_step_and_records_its_measurements(fresh_cache):
    model = _conv_model()
    tuned = compile_model(model, autotune=True)
    plain = compile_model(model)
    got, expected = _train(tuned), _train(plain)
    for a, b in zip(got[0], expected[0]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    decision = tuned.step("train").last_decision
    if not _on_cpu():
        # one candidate off CPU: nothing measured, the plain options chosen, the step traced once for every call
        platform = jax.devices()[0].platform
        assert [c.name for c in strategies.option_candidates(model, platform)] == ["default options"]
        assert [r["name"] for r in decision["report"]] == ["default options"] and decision["name"] == "default options"
        assert decision["compiler_options"] == {} and tuned.trace_counts["train"] == 1
        return
    report = decision["report"]
    assert [r["name"] for r in report] == ["default options", "conv option (ynn off)"]
    assert all(r["agrees"] and r["step_s"] > 0 and r["timed_steps"] >= 3 and r["compile_s"] >= 0 for r in report)
    assert report[1]["update_mismatch"] <= 1e-2
    chosen = tuned.with_options(decision["compiler_options"])
    variants = sum(v.trace_counts["train"] for v in tuned._variants.values())
    own = tuned.trace_counts["train"] - variants      # (the base model's counts include its variants')
    assert (own if chosen is tuned else chosen.trace_counts["train"]) == 1   # traced once, for every call
    assert tuned.trace_counts["train"] == 2           # and each candidate once
    assert (fresh_cache / "autotune.json").exists()


def test_a_cached_decision_compiles_only_the_chosen_step(monkeypatch):
    if not _on_cpu():
        pytest.skip("one candidate off CPU")
    model = _conv_model()
    _train(compile_model(model, autotune=True))
    calls = []
    monkeypatch.setattr(tuner, "update_mismatch", lambda *a: calls.append(a) or 0.0)
    again = compile_model(model, autotune=True)
    _train(again)
    assert calls == []
    assert again.trace_counts["train"] == 1       # the chosen program only (variants count in the total)


def test_a_candidate_that_computes_something_else_is_never_chosen(monkeypatch):
    if not _on_cpu():
        pytest.skip("one candidate off CPU")
    model = _conv_model()
    wrong = _conv_model()
    wrong.compile(optimizer=keras.optimizers.RMSprop(rho=0.5),      # (the learning rate lives in the state)
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tuned = compile_model(model, autotune=True)
    real = type(tuned).with_options

    def with_options(self, options, pass_options=None):   # the conv option's program: another optimizer's update
        if options:
            return compile_model(model, compile_config=wrong._compile_config, compiler_options=options)
        return real(self, options, pass_options)
    monkeypatch.setattr(type(tuned), "with_options", with_options)
    monkeypatch.setattr(tuner, "MARGIN", 1e9)       # it would win on time
    x, y = _batch()
    tuned.step("train")(_state(tuned), x, y, None)
    report = tuned.step("train").last_decision["report"]
    assert report[1]["agrees"] is False and report[1]["update_mismatch"] > 1e-2
    assert tuned.step("train").last_decision["name"] == "default options"


def test_an_unknown_option_is_skipped(monkeypatch):
    monkeypatch.setattr(tuned_steps, "option_candidates", lambda model, platform: [
        Strategy("default options"), Strategy("bogus", compiler_options={"xla_no_such_option_for_this_test": True})])
    tuned = compile_model(_conv_model(), autotune=True)
    state = _train(tuned, n_steps=2)
    report = tuned.step("train").last_decision["report"]
    assert report[1]["name"] == "bogus" and "error" in report[1]
    assert tuned.step("train").last_decision["name"] == "default options"
    assert all(np.all(np.isfinite(np.asarray(w))) for w in state[0])


def test_tuned_model_still_lowers_and_refuses_eager():
    tuned = compile_model(_conv_model(), autotune=True)
    assert "stablehlo" in tuned.as_text("train", batch_size=4) or "func.func" in tuned.as_text("train", batch_size=4)
    with pytest.raises(ValueError, match="autotune=True .* mode='jit'"):
        compile_model(_conv_model(), mode="eager", autotune=True)
