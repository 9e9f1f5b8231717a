"""The inference steps' XLA-option tuner (runtime/tuned_steps.py): a batch shape is tuned only once it is
hot, every candidate's outputs are checked against the model's own program on the caller's batch, the decision
is kept per shape and cached, and predict's and evaluate's results are the model's results throughout."""
import jax
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.runtime import platform_options, strategies, tuned_steps, tuner as tuner_lib
from fncompiler.runtime.strategies import Strategy

pytestmark = pytest.mark.skipif(jax.devices()[0].platform != "cpu",
                                reason="the candidates (a conv option) are XLA:CPU's")


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FNCOMPILER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuner_lib, "_MEMORY", {})
    return tmp_path


@pytest.fixture
def eager_tuning(monkeypatch):
    """Check the candidates at the third call of a shape (first, one counted call, check) and time each contender
    for MIN_CALLS calls after a warm-up turn: decided after CALLS_TO_DECIDE calls with two contenders."""
    monkeypatch.setattr(tuned_steps.TunedInferenceStep, "PAYBACK", 0.0)
    monkeypatch.setattr(tuned_steps.TunedInferenceStep, "MIN_COUNTED_CALLS", 1)
    monkeypatch.setattr(tuned_steps.TunedInferenceStep, "MIN_SECONDS", 0.0)


CALLS_TO_DECIDE = 3 + 2 * (1 + tuned_steps.TunedInferenceStep.MIN_CALLS)


def _conv_model(spe="auto", compile=True):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8, 8, 3))
    h = layers.Conv2D(4, 3, activation="relu")(inputs)
    h = layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, layers.Dense(2)(h))
    if compile:
        model.compile(loss="mse", optimizer="sgd", steps_per_execution=spe)
    return model


def _reference(model, x):
    """The model's forward pass in NumPy: valid 3x3 conv + bias + relu, spatial mean, dense."""
    k, b, w, c = model.get_weights()
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))   # (n, 6, 6, 3, 3, 3)
    h = np.maximum(np.einsum("nhwcij,ijcf->nhwf", windows, k) + b, 0.0)
    return h.mean(axis=(1, 2)) @ w + c


def _predict_checked(model, x, calls):
    """`calls` predicts of `x` at batch 16, each checked against the NumPy reference; then the tuner's decision
    for that shape (None if undecided)."""
    for _ in range(calls):
        np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), _reference(model, x),
                                   rtol=1e-4, atol=1e-5)
    return model._trainer.inference_tuners["predict"].decisions().get(((x.shape, "float32"),))


def _x(n=16, seed=0):
    return np.random.default_rng(seed).random((n, 8, 8, 3), dtype=np.float32)


def test_outputs_agree_is_relative_to_the_output_scale():
    r = [np.array([100.0, 1e-6, -3.0], np.float32)]
    assert tuner_lib.outputs_agree(r, [r[0] + 0.05], 1e-3)            # 5e-4 of the largest magnitude
    assert not tuner_lib.outputs_agree(r, [r[0] + 0.5], 1e-3)
    assert not tuner_lib.outputs_agree(r, [r[0][:2]], 1e-3)           # another shape
    nan = [np.array([np.nan, 1.0])]
    assert tuner_lib.outputs_agree(nan, [np.array([np.nan, 1.0])], 1e-3)
    assert not tuner_lib.outputs_agree(nan, [np.array([0.0, 1.0])], 1e-3)
    assert not tuner_lib.outputs_agree([np.array([1, 2])], [np.array([1, 3])], 1e-3)   # integers: exact


def test_a_hot_shape_is_tuned_checked_decided_and_cached(eager_tuning):
    model = _conv_model()
    x = _x()
    expected = _reference(model, x)
    tuner = None
    for i in range(CALLS_TO_DECIDE):
        assert not (tuner and tuner.decisions())      # not decided before the last of these calls
        np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), expected, rtol=1e-4, atol=1e-5)
        tuner = model._trainer.inference_tuners["predict"]
    decision = tuner.decisions()[(((16, 8, 8, 3), "float32"),)]
    names = {t.name for t in tuner.candidates}
    assert decision["name"] in names
    timed = [r for r in decision["report"] if "step_s" in r]
    assert [r["name"] for r in timed] == [t.name for t in tuner.candidates]
    assert all(r["timed_steps"] == tuner.MIN_CALLS for r in timed)
    # One program per candidate, each traced once for the shape; the base counts include the variants'.
    assert model._trainer.compiled.trace_counts["predict"] == 2
    # Another model built alike (another process, in effect) looks the decision up: one program, no tuning.
    again = _conv_model()
    again.set_weights(model.get_weights())
    for _ in range(4):
        np.testing.assert_allclose(again.predict(x, batch_size=16, verbose=0), expected, rtol=1e-4, atol=1e-5)
    assert again._trainer.compiled.trace_counts["predict"] == 1
    assert again._trainer.inference_tuners["predict"].decisions()[(((16, 8, 8, 3), "float32"),)]["name"] == decision["name"]


def test_a_cold_shape_is_not_tuned_and_each_bucket_keeps_its_own_state():
    """With the default payback a shape run a few times is never tuned: one program per bucket, no candidate
    compiled, and each bucket (16; 5 padded to 8) has its own state."""
    model = _conv_model()
    for n in (16, 16, 16, 5, 5):
        x = _x(n)
        np.testing.assert_allclose(model.predict(x, verbose=0), _reference(model, x), rtol=1e-4, atol=1e-5)
    tuner = model._trainer.inference_tuners["predict"]
    assert tuner.decisions() == {}
    assert {s.phase for s in tuner.shapes.values()} == {"count"}
    assert model._trainer.compiled.trace_counts["predict"] == 2       # the two buckets (16 and 8), default only
    assert len(tuner.shapes) == 2


def test_a_candidate_that_computes_something_else_is_rejected(eager_tuning, monkeypatch):
    real = tuned_steps.TunedInferenceStep._step

    def step(self, candidate):
        fn = real(self, candidate)
        if candidate.compiler_options:      # the candidate: a wrong program, however fast
            return lambda tv, ntv, batch: [o * 1.01 for o in fn(tv, ntv, batch)]
        return fn
    monkeypatch.setattr(tuned_steps.TunedInferenceStep, "_step", step)
    decision = _predict_checked(_conv_model(), _x(), 6)
    assert decision["name"] == "default options"
    assert [r.get("agrees") for r in decision["report"]] == [True, False]


def test_an_option_this_xla_lacks_is_skipped(eager_tuning, monkeypatch):
    bogus = Strategy("bogus", compiler_options={"xla_no_such_option_anywhere": True})
    monkeypatch.setattr(tuned_steps, "option_candidates", lambda model, platform: [Strategy("default options"), bogus])
    decision = _predict_checked(_conv_model(), _x(), 4)
    assert decision["name"] == "default options"
    assert decision["report"][1]["name"] == "bogus" and "error" in decision["report"][1]


def test_a_cached_decision_for_options_not_tried_is_ignored(eager_tuning, fresh_cache):
    """The cache file is the user's; a decision naming options this tuner would not try is not applied."""
    x = _x()
    key = tuned_steps.TunedInferenceStep(_conv_model()._get_trainer().compiled)._key([x])
    conv = Strategy("conv option (ynn off)", compiler_options=platform_options.CPU_CONV_OPTIONS)
    tuner_lib.store(key, {"name": conv.name, **conv.describe()})
    model = _conv_model()
    model.predict(x, batch_size=16, verbose=0)
    shape = model._trainer.inference_tuners["predict"].shapes[(((16, 8, 8, 3), "float32"),)]
    assert shape.decision["compiler_options"] == platform_options.CPU_CONV_OPTIONS     # the key is the tuner's
    assert model._trainer.compiled.trace_counts["predict"] == 1
    tuner_lib.store(key, {"name": conv.name, **conv.describe(), "compiler_options": {"xla_dump_to": "/tmp/evil"}})
    model = _conv_model()
    model.predict(x, batch_size=16, verbose=0)
    shape = model._trainer.inference_tuners["predict"].shapes[(((16, 8, 8, 3), "float32"),)]
    assert shape.decision is None and shape.phase == "count"


def test_the_tuner_is_off_with_a_fixed_steps_per_execution_and_for_models_without_candidates():
    assert _conv_model(spe=1)._get_trainer().inference_tuner("predict") is None
    inputs = keras.Input(shape=(4,))
    dense = keras.Model(inputs, layers.Dense(2)(inputs))
    dense.compile(loss="mse")
    assert dense._get_trainer().inference_tuner("predict") is None
    assert [c.name for c in strategies.option_candidates(dense, "cpu")] == ["default options"]
    assert strategies.option_candidates(dense, "cpu")[0].compiler_options == {}
    assert len(strategies.option_candidates(_conv_model(), "cpu")) == 2
    assert len(strategies.option_candidates(_conv_model(), "gpu")) == 1      # not measured off CPU: none


def test_an_uncompiled_model_is_tuned(eager_tuning):
    model = _conv_model(compile=False)
    x = _x()
    for _ in range(CALLS_TO_DECIDE):
        np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), _reference(model, x),
                                   rtol=1e-4, atol=1e-5)
    trainer = model._predict_trainer
    assert trainer.inference_tuners["predict"].decisions()


def test_evaluate_is_tuned_and_fit_validation_is_not(eager_tuning):
    """evaluate's eval step donates its metric states: the check runs the candidate on a copy, and every call's
    loss is the NumPy reference's. fit's validation never tunes (tuning would land inside fit's epochs)."""
    model = _conv_model()
    x, y = _x(), np.random.default_rng(1).random((16, 2), dtype=np.float32)
    model.fit(x, y, batch_size=16, epochs=CALLS_TO_DECIDE, validation_data=(x, y), verbose=0)
    trainer = model._trainer
    assert "eval" not in trainer.inference_tuners
    assert trainer.compiled.trace_counts["eval"] == 1
    expected = float(np.mean((_reference(model, x) - y) ** 2))
    for _ in range(CALLS_TO_DECIDE):
        assert model.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx(expected, rel=1e-4)
    decision = trainer.inference_tuners["eval"].decisions()[(((16, 8, 8, 3), "float32"), ((16, 2), "float32"))]
    assert [r["name"] for r in decision["report"]] == [t.name for t in trainer.inference_tuners["eval"].candidates]
    assert trainer.compiled.trace_counts["eval"] == 2          # one program per candidate for the shape
    assert model.test_on_batch(x, y) == pytest.approx(expected, rel=1e-4)     # the same shape: decided
    assert trainer.compiled.trace_counts["eval"] == 2


def test_the_tuner_tunes_inference_steps_only():
    with pytest.raises(ValueError, match="'predict' or 'eval'"):
        tuned_steps.TunedInferenceStep(None, "train")


def test_compile_model_autotune_tunes_the_predict_and_eval_steps_called_directly(eager_tuning):
    """compile_model(model, autotune=True).step("predict") / ("eval"): the same tuner, for code that calls the
    steps itself; `lower` and friends reach the model's own step; a model without candidates gets its plain step."""
    import jax.numpy as jnp
    from fncompiler.runtime.compiled import compile_model
    model = _conv_model()
    cm = compile_model(model, autotune=True)
    step = cm.step("predict")
    assert isinstance(step, tuned_steps.TunedInferenceStep) and step is cm.step("predict")
    tv, ntv = cm.weights("predict")
    x = _x()
    for _ in range(CALLS_TO_DECIDE):
        np.testing.assert_allclose(np.asarray(step(tv, ntv, [jnp.asarray(x)])[0]), _reference(model, x),
                                   rtol=1e-4, atol=1e-5)
    assert step.decisions()
    assert cm.trace_counts["predict"] == 2
    assert "stablehlo" in cm.as_text("predict", batch_size=2)       # through __getattr__: the model's step
    model.compile(loss="mse", optimizer="sgd")
    cm = compile_model(model, autotune=True)
    eval_step = cm.step("eval")
    assert isinstance(eval_step, tuned_steps.TunedInferenceStep)
    trainer = model._get_trainer()
    y = np.random.default_rng(1).random((16, 2), dtype=np.float32)
    expected = float(np.mean((_reference(model, x) - y) ** 2))
    for _ in range(CALLS_TO_DECIDE):
        states = eval_step(*cm.weights("eval"), trainer._fresh_metric_states(), [jnp.asarray(x)], [jnp.asarray(y)],
                           None)
        assert trainer._logs(states)["loss"] == pytest.approx(expected, rel=1e-4)
    assert eval_step.decisions()
    inputs = keras.Input(shape=(4,))
    dense = keras.Model(inputs, layers.Dense(2)(inputs))
    plain = compile_model(dense, autotune=True)
    assert plain.step("predict") is plain.untuned_step("predict")


def test_a_first_call_that_compiled_nothing_counts_as_a_compilation(monkeypatch):
    """fit's validation compiles the eval step; evaluate's first call of that shape then compiles nothing and is
    fast, and must not make the shape hot after two more calls (the tuner would compile its candidate inside a
    one-off evaluate): its cost counts as at least MIN_COST_S."""
    model = _conv_model()
    x, y = _x(64), np.random.default_rng(1).random((64, 2), dtype=np.float32)
    model.fit(x, y, batch_size=16, epochs=1, validation_data=(x, y), verbose=0)
    assert model._trainer.compiled.trace_counts["eval"] == 1
    model.evaluate(x, y, batch_size=16, verbose=0)                          # 4 calls of one shape
    shape = model._trainer.inference_tuners["eval"].shapes[(((16, 8, 8, 3), "float32"), ((16, 2), "float32"))]
    assert shape.first_s >= tuned_steps.TunedInferenceStep.MIN_COST_S and shape.phase == "count"
    assert model._trainer.compiled.trace_counts["eval"] == 1


def test_counting_waits_for_results_only_while_it_times_calls(monkeypatch):
    """After the first call and MIN_COUNTED_CALLS timed ones, counting calls does not wait for their results
    (predict's batches overlap again); their time is estimated from the timed ones."""
    timed = []
    real = tuned_steps.TunedInferenceStep._timed
    monkeypatch.setattr(tuned_steps.TunedInferenceStep, "_timed",
                        staticmethod(lambda step, args: timed.append(1) or real(step, args)))
    model = _conv_model()
    x = _x(16 * 10)
    model.predict(x, batch_size=16, verbose=0)                              # 10 calls of one shape
    shape = model._trainer.inference_tuners["predict"].shapes[(((16, 8, 8, 3), "float32"),)]
    assert shape.phase == "count" and shape.counted == 9
    assert len(timed) == 1 + tuned_steps.TunedInferenceStep.MIN_COUNTED_CALLS


def test_eval_decisions_are_kept_per_compile_arguments_and_predict_decisions_are_not():
    model = _conv_model()
    batch = [_x(), np.zeros((16, 2), np.float32)]
    keys = {}
    for loss in ("mse", "mae"):
        model.compile(loss=loss, optimizer="sgd")
        trainer = model._get_trainer()
        keys[loss] = [tuned_steps.TunedInferenceStep(trainer.compiled, e)._key(batch[:1] if e == "predict" else batch)
                      for e in ("predict", "eval")]
    assert keys["mse"][0] == keys["mae"][0]
    assert keys["mse"][1] != keys["mae"][1]
    from fncompiler.runtime.compiled import compile_model
    other = compile_model(model, compiler_options={"xla_backend_optimization_level": 2})
    assert tuned_steps.TunedInferenceStep(other, "predict")._key(batch[:1]) != keys["mae"][0]


def test_low_precision_outputs_are_compared_at_their_own_precision():
    import jax.numpy as jnp
    r = [np.array([1.0, 2.0, np.nan], jnp.bfloat16)]
    one_ulp = [np.array([1.0078125, 2.0, np.nan], jnp.bfloat16)]
    assert tuner_lib.outputs_agree(r, one_ulp, 1e-3)                 # rounding, not a different program
    assert not tuner_lib.outputs_agree(r, [np.array([1.5, 2.0, np.nan], jnp.bfloat16)], 1e-3)
    assert not tuner_lib.outputs_agree(r, [np.array([1.0, 2.0, 0.0], jnp.bfloat16)], 1e-3)
    assert not tuner_lib.outputs_agree(r, [r[0].astype(np.float32)], 1e-3)   # another dtype


def test_a_subclassed_model_with_a_convolution_has_candidates():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(4, 3)
            self.pool = layers.GlobalAveragePooling2D()

        def call(self, x):
            return self.pool(self.conv(x))

    class Plain(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)
    net, plain = Net(), Plain()
    net(_x(2))
    plain(np.zeros((2, 3), np.float32))
    assert platform_options.has_conv(net) and not platform_options.has_conv(plain)
    assert len(strategies.option_candidates(net, "cpu")) == 2
    np.testing.assert_allclose(net.predict(_x(4), verbose=0).shape, (4, 4))
