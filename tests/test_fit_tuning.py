"""fit's tuning (`compile(steps_per_execution="auto")`, runtime/executor.py through runtime/tuner.py): it trains on
fit's own batches, checks every candidate strategy against the reference on the same batch from the same state,
keeps the one predicted fastest for the rest of the fit, and caches the decision."""
import json

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.runtime import executor, platform_options, strategies, tuner
from fncompiler.runtime.compiled import default_compiler_options
from fncompiler.runtime.strategies import QUICK, Strategy


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FNCOMPILER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuner, "_MEMORY", {})
    monkeypatch.setattr(executor.TuningExecutor, "PAYOFF", 0.0)     # these fits are short: tune them anyway
    return tmp_path


def _on_cpu():
    import jax
    return jax.devices()[0].platform == "cpu"


def _first_names():
    """The names the candidate list starts with on this platform (the quick compile first on CPU)."""
    return [QUICK, "per-step jit"] if _on_cpu() else ["per-step jit"]


def _traces(trainer, endpoint):
    """How often `endpoint` was traced by the trainer's CompiledModel and all its option variants (the base
    model's counts include its variants')."""
    total = trainer.compiled.trace_counts[endpoint]
    assert total >= sum(v.trace_counts[endpoint] for v in trainer.compiled._variants.values())
    return total


def _data(n=1024, features=20):
    rng = np.random.default_rng(0)
    return rng.random((n, features), dtype=np.float32), rng.integers(0, 3, n)


def _mlp(spe="auto", optimizer="rmsprop"):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(20,))
    h = layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, layers.Dense(3)(h))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer=optimizer,
                  metrics=["accuracy"], steps_per_execution=spe)
    return model


def test_update_mismatch_is_relative_to_the_update():
    before = [np.zeros(4)]
    ref = [np.array([1.0, -1.0, 1.0, -1.0])]
    assert tuner.update_mismatch(before, ref, ref) == 0.0
    assert tuner.update_mismatch(before, ref, [ref[0] * 1.001]) == pytest.approx(1e-3)
    assert tuner.update_mismatch(before, ref, [-ref[0]]) == pytest.approx(2.0)
    assert tuner.update_mismatch(before, ref, [np.array([np.nan, 0, 0, 0])]) == float("inf")
    assert tuner.update_mismatch(before, before, before) == 0.0


def _timed_tuner(step_s, compile_s=None, compiled=True):
    cands = [Strategy(name) for name in step_s]
    t = tuner.Tuner(cands)
    for c in cands:
        t.record_check(c, agrees=True)
        t.record_time(c, step_s[c.name], 10)
        if compile_s is not None:
            t.record_compile(c, compile_s[c.name])
            if not compiled:
                t.entry(c)["compiled"] = False
    return t, {c.name: c for c in cands}


def test_the_decision_keeps_the_current_strategy_unless_another_beats_the_margin():
    t, c = _timed_tuner({"ref": 1.0, "near": 0.96})
    assert t.decide(remaining_steps=100).name == "ref"             # 4% faster: not worth switching
    t, c = _timed_tuner({"ref": 1.0, "near": 0.96, "far": 0.5})
    assert t.decide(remaining_steps=100).name == "far"
    assert t.decision["remaining_steps"] == 100 and t.decision["name"] == "far"
    far = [e for e in t.decision["report"] if e["name"] == "far"][0]
    assert far["predicted_total_s"] == pytest.approx(50.0) and far["step_s"] == 0.5
    t, c = _timed_tuner({"ref": 1.0, "far": 0.5})
    assert t.decide(remaining_steps=None).name == "far"             # no known length: the step time alone
    t, c = _timed_tuner({"ref": 1.0, "far": 0.5})
    t.entry(c["far"])["agrees"] = False
    assert t.decide(remaining_steps=100).name == "ref"              # never one that computes something else


def test_the_decision_counts_compile_time_of_what_is_not_compiled_yet():
    """The whole rest of the fit: compile (if not compiled) + remaining steps x step time."""
    t, c = _timed_tuner({"ref": 1.0, "fast": 0.5}, {"ref": 0.0, "fast": 40.0}, compiled=False)
    assert t.decide(remaining_steps=50).name == "ref"               # 40 + 25 > 50
    assert t.decide(remaining_steps=100).name == "fast"             # 40 + 50 < 0.95 x 100
    fast = [e for e in t.decision["report"] if e["name"] == "fast"][0]
    assert fast["predicted_total_s"] == pytest.approx(90.0) and fast["compile_s"] == 40.0
    assert "predicted time of the rest" in t.decision["reason"]


def test_auto_trains_like_per_step_and_records_its_measurements(fresh_cache):
    x, y = _data()
    reference = _mlp(spe=1)
    h1 = reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    model = _mlp()
    h2 = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    # Tuning trains on the real batches: the same weights and losses as plain per-step training.
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert h2.history["loss"] == pytest.approx(h1.history["loss"], rel=1e-5)
    decision = model._trainer.autotune_decision
    names = [r["name"] for r in decision["report"]]
    assert names == _first_names() + ["scan x16"]            # a dense model: no conv option
    assert all(r["agrees"] and r["step_s"] > 0 and r["compile_s"] >= 0 for r in decision["report"])
    assert decision["remaining_steps"] is not None and decision["reason"]
    assert all(r["predicted_total_s"] > 0 for r in decision["report"])
    assert all(r["update_mismatch"] < 1e-3 for r in decision["report"][1:])
    stored = json.load(open(fresh_cache / "autotune.json"))
    assert list(stored.values())[0]["name"] == decision["name"]


def test_first_step_is_the_reference_and_a_cached_decision_skips_tuning(fresh_cache, monkeypatch):
    x, y = _data()
    first = _mlp()
    first.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert first._trainer.autotune_decision is not None
    # A second model of the same signature: the decision is looked up; no candidate is checked or timed.
    calls = []
    monkeypatch.setattr(tuner, "update_mismatch", lambda *a: calls.append(a) or 0.0)
    second = _mlp()
    second.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert calls == []
    assert second._trainer.autotune_decision["name"] == first._trainer.autotune_decision["name"]
    # The decision was looked up before the first step: only the decided program was traced.
    trainer = second._trainer
    counts = trainer.train_strategy.program(trainer.compiled).trace_counts
    if trainer.autotune_decision["steps_per_execution"] > 1:
        # the first batch runs per step (one program), then the scan (one program, whose body traces the
        # step once more: trace_counts["train"] counts that trace too)
        assert counts["train_multi"] == 1 and counts["train"] == 2 == _traces(trainer, "train")
    else:
        assert counts["train"] == 1 == _traces(trainer, "train")


def test_a_candidate_that_computes_something_else_is_rejected(monkeypatch):
    """A candidate whose update differs from the reference's (here: another optimizer setting behind the same
    state layout) must never be chosen, however fast."""
    x, y = _data()
    model = _mlp()
    wrong = _mlp(spe=1, optimizer=keras.optimizers.RMSprop(rho=0.5))
    from fncompiler.runtime.compiled import compile_model
    made = {}

    class Bogus(Strategy):            # a strategy whose program computes another update
        def program(self, compiled):
            return made.setdefault("bogus", compile_model(model, compile_config=wrong._compile_config))
    monkeypatch.setattr(executor, "fit_candidates", lambda *a, **k: [Strategy("per-step jit"), Bogus("bogus")])
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    decision = model._trainer.autotune_decision
    assert decision["name"] == "per-step jit"
    bogus_entry = decision["report"][1]
    assert bogus_entry["agrees"] is False and bogus_entry["update_mismatch"] > 1e-2


def test_conv_models_on_cpu_try_the_conv_option_not_the_scan():
    inputs = keras.Input(shape=(8, 8, 1))
    h = layers.Conv2D(4, 3)(inputs)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(h)))
    cpu = strategies.fit_candidates(model, "cpu", 1000)
    assert [c.name for c in cpu] == [QUICK, "per-step jit + ynn off"]
    # the first step compiles quickly, with the conv option that measured faster for conv training
    assert cpu[0].compiler_options == {**platform_options.QUICK_CPU_OPTIONS, **platform_options.CPU_CONV_OPTIONS}
    # GPU / TPU: not measured, no option sets (XLA's defaults), only the execution strategies
    gpu = strategies.fit_candidates(model, "gpu", 1000)
    assert [c.name for c in gpu] == ["per-step jit", "scan x16"] and not any(c.compiler_options for c in gpu)
    dense = strategies.fit_candidates(_mlp(), "cpu", 10)      # too few batches for a scan
    assert [c.name for c in dense] == [QUICK, "per-step jit"]
    assert dense[0].compiler_options == platform_options.QUICK_CPU_OPTIONS


def test_per_batch_callbacks_keep_one_step_per_batch():
    x, y = _data(256)
    seen = []

    class Every(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)
    model = _mlp()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[Every()])
    assert seen == list(range(16))
    assert "train_multi" not in model._trainer.compiled.trace_counts


def test_a_fit_too_short_to_pay_for_tuning_is_not_tuned(fresh_cache, monkeypatch):
    monkeypatch.setattr(executor.TuningExecutor, "PAYOFF", 1.0)        # the default
    x, y = _data(1024)
    model = _mlp()          # the default is steps_per_execution="auto"
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="rmsprop")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)   # 64 steps of ~0.1 ms: << one compile
    decision = model._trainer.autotune_decision
    assert decision["name"] == _first_names()[0] and "not tuned" in decision["reason"]
    assert _traces(model._trainer, "train") == 1 and _traces(model._trainer, "train_multi") == 0
    assert not (fresh_cache / "autotune.json").exists()       # nothing was measured worth remembering


def test_xla_options_chosen_for_training_leave_eval_and_predict_alone(monkeypatch):
    import jax
    if jax.devices()[0].platform != "cpu":
        pytest.skip("an XLA:CPU option")
    option = Strategy("per-step jit + ynn off", compiler_options=platform_options.CPU_CONV_OPTIONS)
    monkeypatch.setattr(executor, "fit_candidates", lambda *a, **k: [Strategy("per-step jit"), option])
    monkeypatch.setattr(tuner, "MARGIN", 1e9)      # take the candidate whenever it agrees
    x, y = _data()
    model = _mlp()
    reference = _mlp(spe=1)
    reference.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    trainer = model._trainer
    assert trainer.autotune_decision["name"] == option.name
    defaults = default_compiler_options()
    train_program = trainer.train_strategy.program(trainer.compiled)
    assert train_program.compiler_options == {**defaults, **option.compiler_options}
    assert trainer.compiled.compiler_options == defaults
    assert train_program.trace_counts["train"] == 1       # the rest of the fit trained with the option
    model.predict(x[:8], verbose=0)
    assert trainer.compiled.trace_counts["predict"] == 1 and "predict" not in train_program.trace_counts
    for a, b in zip(model.get_weights(), reference.get_weights()):    # same training, up to rounding
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_with_options_shares_the_lowering_and_is_made_once():
    from fncompiler.runtime.compiled import compile_model
    model = _mlp(spe=1)
    cm = compile_model(model)
    quick = cm.with_options(platform_options.QUICK_CPU_OPTIONS)
    assert cm.with_options({}) is cm and cm.with_options(dict(cm.compiler_options)) is cm
    assert cm.with_options(dict(platform_options.QUICK_CPU_OPTIONS)) is quick   # one variant per set of options
    assert quick.compiler_options == {**default_compiler_options(), **platform_options.QUICK_CPU_OPTIONS}
    assert quick._lowered is cm._lowered and quick._pipelines is cm._pipelines  # passes and lowering run once
    x = _data(8)[0]
    expected = cm.predict(x)
    if _on_cpu():   # the quick compilation computes the same values (elemental emitters vs fusion emitters)
        np.testing.assert_allclose(np.asarray(quick.predict(x)), np.asarray(expected), rtol=1e-6, atol=1e-6)
        assert quick.trace_counts["predict"] == 1 and cm.trace_counts["predict"] == 2     # cm's: the total


def test_on_cpu_the_first_step_is_the_quick_compilation_and_trains_like_per_step():
    if not _on_cpu():
        pytest.skip("the quick compilation is an XLA:CPU option")
    x, y = _data()
    reference = _mlp(spe=1)
    reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    model = _mlp()
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    trainer = model._trainer
    first = trainer.autotune_decision["report"][0]
    assert first["name"] == QUICK and first["compiler_options"] == platform_options.QUICK_CPU_OPTIONS
    quick = trainer.compiled.with_options(platform_options.QUICK_CPU_OPTIONS)
    assert quick.trace_counts["train"] == 1                # the first steps' program, traced once
    counts = trainer.compiled.trace_counts     # all of them: the quick one, then the full compilation's candidates
    assert counts["train"] == 2 + counts["train_multi"]      # once each (a scan traces the step again as its body)
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_an_xla_without_the_quick_option_starts_with_the_full_compilation(monkeypatch):
    if not _on_cpu():
        pytest.skip("the quick compilation is an XLA:CPU option")
    monkeypatch.setattr(strategies, "QUICK_CPU_OPTIONS", {"xla_cpu_no_such_option_for_this_test": True})
    x, y = _data()
    reference = _mlp(spe=1)
    reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    model = _mlp()
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    report = model._trainer.autotune_decision["report"]
    assert report[0]["name"] == QUICK and "compile option" in report[0]["error"]
    assert report[1]["name"] == "per-step jit" and report[1]["step_s"] > 0   # the new reference
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_large_train_program_starts_with_the_full_compilation(monkeypatch):
    """The quick options compile large programs slower (platform_options.QUICK_MAX_PROGRAM_NODES): past the
    limit the quick reference is skipped before anything is traced, with the train graph's size in the record,
    and the first step is the full compilation, traced once and training like steps_per_execution=1."""
    if not _on_cpu():
        pytest.skip("the quick compilation is an XLA:CPU option")
    from fncompiler.passes import scan_blocks
    x, y = _data()
    model = _mlp()
    nodes = scan_blocks.program_size(model._get_trainer().compiled.graph("train"))
    assert nodes <= platform_options.QUICK_MAX_PROGRAM_NODES      # by default this MLP starts quick
    monkeypatch.setattr(executor, "QUICK_MAX_PROGRAM_NODES", nodes - 1)     # now it counts as large
    reference = _mlp(spe=1)
    reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    report = model._trainer.autotune_decision["report"]
    assert report[0]["name"] == QUICK and report[0]["skipped"] == (
        f"the train graph has {nodes} nodes (> {nodes - 1}), where the quick options compile slower, not faster")
    assert report[1]["name"] == "per-step jit" and report[1]["step_s"] > 0      # the reference, compiled first
    assert model._trainer.compiled.with_options(platform_options.QUICK_CPU_OPTIONS).trace_counts["train"] == 0
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_decision_counts_the_compile_of_a_last_batch_shape_a_candidate_has_not_met():
    """An epoch that ends with a smaller batch: switching to another program costs its compile for that shape
    too, so with a few batches left a slightly faster candidate does not pay (the reference met the shape at the
    first epoch's end)."""
    steps, compiles = {"per-step jit": 0.0100, "scan x16": 0.0090}, {"per-step jit": 1.0, "scan x16": 1.0}
    t, c = _timed_tuner(steps, compiles)
    plain = t.decide(remaining_steps=20, current=c["per-step jit"])
    assert plain.name == "scan x16"                    # 20 x 1 ms saved; both already compiled for full batches
    t, c = _timed_tuner(steps, compiles)
    chosen = t.decide(remaining_steps=20, current=c["per-step jit"], shape_compiles={"scan x16": 1, "per-step jit": 0})
    assert chosen.name == "per-step jit"
    entry = t.decision["report"][1]
    assert entry["shape_compiles"] == 1 and entry["predicted_total_s"] == pytest.approx(1.0 + 20 * 0.009)


def test_a_fit_with_a_smaller_last_batch_tells_the_executor(monkeypatch):
    seen = {}
    real = executor.TuningExecutor.__init__

    def spy(self, *args, **kwargs):
        seen.update(partial=kwargs.get("partial_last_batch"))
        real(self, *args, **kwargs)
    monkeypatch.setattr(executor.TuningExecutor, "__init__", spy)
    x, y = _data(100)
    for n, partial in ((100, True), (96, False)):
        _mlp().fit(x[:n], y[:n], batch_size=16, epochs=1, shuffle=False, verbose=0)
        assert seen["partial"] is partial


def test_a_fit_of_unknown_length_is_not_tuned_and_compiles_fully():
    x, y = _data(256)

    def batches():
        for i in range(0, 256, 32):
            yield x[i:i + 32], y[i:i + 32]
    model = _mlp()
    model.fit(batches(), epochs=1, verbose=0)
    trainer = model._trainer
    assert trainer.autotune_decision["name"] == "per-step jit"
    assert trainer.compiled.trace_counts["train"] == 1 and _traces(trainer, "train") == 1


def test_repeated_short_fits_reuse_the_first_steps_program(monkeypatch):
    monkeypatch.setattr(executor.TuningExecutor, "PAYOFF", 1.0)        # the default: these fits are not tuned
    x, y = _data(256)
    model = _mlp()
    for _ in range(3):
        model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert _traces(model._trainer, "train") == 1            # one program for the three fits


def test_signature_ignores_names_and_drawn_seeds():
    """Two models built alike share decisions: a Dropout built with seed=None draws its own seed (in its config),
    which must not change the key (it did, so a ResNet with dropout was tuned again in every process)."""
    def build(units):
        inputs = keras.Input(shape=(20,))
        h = layers.Dropout(0.5)(layers.Dense(units)(inputs))
        return keras.Model(inputs, layers.Dense(3)(h))
    a, b = build(16), build(16)
    seeds = {layer.get_config()["seed"] for m in (a, b) for layer in m.layers if isinstance(layer, layers.Dropout)}
    assert len(seeds) == 2          # the premise: two different drawn seeds
    batch = [np.zeros((8, 20), np.float32)]
    assert tuner.signature(a, batch) == tuner.signature(b, batch)
    assert tuner.signature(a, batch) != tuner.signature(build(17), batch)
    assert tuner.signature(a, batch) != tuner.signature(a, [np.zeros((9, 20), np.float32)])


class _Everywhere(dict):
    """A cache file whose every key holds `value`."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def get(self, key, default=None):
        return self.value


@pytest.mark.parametrize("entry", [
    "not a decision",
    ["per-step jit"],
    {"name": "per-step jit"},                                                      # fields missing
    {"name": "per-step jit", "steps_per_execution": 1, "compiler_options": {"xla_dump_to": "/tmp/fnc-dump"}},
    {"name": "scan x16", "steps_per_execution": 1000, "compiler_options": {}},    # not a candidate's
])
def test_a_cached_entry_that_is_not_a_candidate_is_ignored(monkeypatch, entry):
    """The cache file is the user's: a damaged or edited entry must neither crash fit nor apply options or
    strategies the tuner would not try; fit tunes as if nothing were cached."""
    monkeypatch.setattr(tuner, "_load", lambda: _Everywhere(entry))
    x, y = _data()
    model = _mlp()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    decision = model._trainer.autotune_decision
    assert decision is not entry and decision["report"]        # measured here, not read back
    names = [t.name for t in strategies.fit_candidates(model, "cpu" if _on_cpu() else "gpu", 1024 // 16)]
    assert decision["name"] in names
    assert "xla_dump_to" not in decision["compiler_options"]


def test_a_cached_decision_applies_only_to_a_candidate_with_its_settings():
    a, b = Strategy("a"), Strategy("b", compiler_options={"opt": ""})
    tuner.store("k", {"name": "b", **b.describe(), "report": [1]})
    found = tuner.Tuner([a, b], "k")
    assert found.cached() is b and found.decision["report"] == [1] and found.decision["cached"]
    assert tuner.Tuner([a], "k").cached() is None
    assert tuner.Tuner([a, Strategy("b", compiler_options={"other": ""})], "k").cached() is None
    assert tuner.Tuner([a, b], "missing").cached() is None


def _blocks(depth=16, spe="auto", pass_options=None):
    """A stack of `depth` identical residual Dense blocks (a run of repeated blocks for scan_blocks)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8,))
    h = layers.Dense(8)(inputs)
    for _ in range(depth):
        h = layers.Add()([h, layers.Dense(8, activation="relu")(h)])
    model = keras.Model(inputs, layers.Dense(2)(h))
    model.compile(optimizer="adam", loss="mse", steps_per_execution=spe)
    if pass_options is not None:        # fit through a program compiled with these pass options
        model._get_trainer().compiled = keras.compile_model(model, compile_config=model._compile_config,
                                                            pass_options=pass_options)
    return model


def _block_data(n=256):
    rng = np.random.default_rng(0)
    return rng.random((n, 8), dtype=np.float32), rng.random((n, 2), dtype=np.float32)


def test_a_16_block_fit_starts_with_the_scanned_program_and_records_why(monkeypatch):
    """A default fit of a 16-block model: its own train program scans the blocks (scan_repeated_blocks "auto":
    compile time flat in depth), the unrolled program is a candidate, and the decision record names the strategy
    and the numbers it was chosen on."""
    monkeypatch.setattr(executor.TuningExecutor, "PAYOFF", 1.0)        # the default
    model = _blocks()
    report, scanned = model._get_trainer().compiled.repeated_block_runs("train")
    assert scanned and "1 runs of repeated blocks (16 x" in report
    x, y = _block_data()
    seen = []
    real = executor.fit_candidates
    monkeypatch.setattr(executor, "fit_candidates", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    names = [c.name for c in seen[0]]
    assert names[0].endswith("(scanned blocks)") and names[-1] == "per-step jit (unrolled blocks)"
    assert seen[0][-1].pass_options == {"scan_blocks": "never"}
    decision = model._trainer.autotune_decision
    assert decision["name"] == names[0] and decision["reason"]
    assert decision["remaining_steps"] == 16 - decision["report"][0]["timed_steps"] - 1
    first = decision["report"][0]
    assert first["name"] == decision["name"] and first["compile_s"] > 0 and first["step_s"] > 0
    assert first["predicted_total_s"] == pytest.approx(decision["remaining_steps"] * first["step_s"])
    # the unrolled program's compile was estimated from its size (16 blocks unrolled against one scanned) and
    # skipped: this fit is too short to pay for it
    unrolled = next(e for e in decision["report"] if e["name"] == "per-step jit (unrolled blocks)")
    assert "skipped" in unrolled and unrolled["estimated_compile_s"] > 2 * first["compile_s"]
    # the scanned program trained (one trace); the unrolled one was not compiled: this fit is too short
    assert model._trainer.compiled.trace_counts["train"] == 1
    assert model._trainer.compiled.with_options({}, strategies.UNROLLED_BLOCKS).trace_counts["train"] == 0
    ref = _blocks(spe=1, pass_options={"scan_blocks": "never"})
    ref.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(ref.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_program_size_counts_a_scanned_run_as_one_block():
    from fncompiler.passes import scan_blocks
    compiled = _blocks()._get_trainer().compiled
    scanned = compiled.graph("train")
    unrolled = compiled.with_options({}, strategies.UNROLLED_BLOCKS).graph("train")
    assert any(d["op"] == "ScanBlocks" for _, d in scanned.nodes(data=True))
    assert scan_blocks.program_size(unrolled) == unrolled.number_of_nodes()
    # 16 blocks of (Dense, Add): unrolled 32 block nodes; scanned one block's 2 (+ its block-input node)
    assert scan_blocks.program_size(unrolled) - scan_blocks.program_size(scanned) in (29, 30)


def test_the_tuner_decides_between_the_scanned_and_the_unrolled_program_on_measurements(monkeypatch):
    """The scanned program (stacked weights) and the unrolled one (a weight per block) hold the train state in
    different layouts: the check compares them in one, and whichever wins trains on from the converted state."""
    model = _blocks()
    monkeypatch.setattr(executor, "fit_candidates", lambda *a, **k: [
        Strategy("scanned blocks, per-step jit", pass_options=strategies.SCANNED_BLOCKS),
        Strategy("per-step jit", pass_options=strategies.UNROLLED_BLOCKS)])
    x, y = _block_data(512)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    decision = model._trainer.autotune_decision
    assert decision["name"] in ("scanned blocks, per-step jit", "per-step jit")
    scanned, unrolled = decision["report"]
    assert unrolled["agrees"] and unrolled["update_mismatch"] <= 1e-2
    for entry in (scanned, unrolled):
        assert entry["compile_s"] >= 0 and entry["step_s"] > 0
        assert entry["remaining_steps"] == decision["remaining_steps"] > 0
        assert entry["predicted_total_s"] == pytest.approx(entry["remaining_steps"] * entry["step_s"])   # compiled
    best = min((scanned, unrolled), key=lambda e: e["predicted_total_s"])
    if best is unrolled and unrolled["predicted_total_s"] < 0.95 * scanned["predicted_total_s"]:
        assert decision["name"] == "per-step jit"
    else:
        assert decision["name"] == "scanned blocks, per-step jit"
    ref = _blocks(spe=1, pass_options={"scan_blocks": "never"})
    ref.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(ref.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(ref.evaluate(x, y, verbose=0), rel=1e-4)
