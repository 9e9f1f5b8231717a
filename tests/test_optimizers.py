"""fncompiler.optimizers vs NumPy implementations of the Keras 3 update formulas."""

import math

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from fncompiler import optimizers
from fncompiler.optimizers import schedules

RTOL = 1e-5
SHAPES = [(3, 4), (5,)]
STEPS = 5


# ----------------------------------------------------------------------------- numpy reference
class NumpyKeras:
    """Float64 re-implementation of Keras 3 optimizer steps (one dict of slots per variable)."""

    def __init__(self, kind, lr=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, **hp):
        self.kind, self.lr, self.wd, self.hp = kind, lr, weight_decay, hp
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = 0
        self.slots = None
        self.u_product = 1.0

    def current_lr(self):
        return self.lr(self.iterations) if callable(self.lr) else self.lr

    def _clip(self, grads):
        if self.clipnorm:
            return [g * self.clipnorm / max(np.sqrt(np.sum(g * g)), self.clipnorm) for g in grads]
        if self.global_clipnorm:
            norm = np.sqrt(sum(np.sum(g * g) for g in grads))
            return [g * min(1.0, self.global_clipnorm / norm) for g in grads]
        if self.clipvalue:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def step(self, params, grads):
        hp, lr = self.hp, self.current_lr()
        if self.slots is None:
            init = hp.get("initial_accumulator_value", 0.0) if self.kind == "adagrad" else 0.0
            self.slots = [dict(a=np.full_like(p, init), b=np.zeros_like(p), c=np.zeros_like(p))
                          for p in params]
        grads = self._clip(grads)
        if self.wd:
            params = [p - p * self.wd * lr for p in params]
        t = self.iterations + 1
        if self.kind == "nadam":
            self.u_product *= hp["beta_1"] * (1 - 0.5 * 0.96 ** t)
        out = []
        for p, g, s in zip(params, grads, self.slots):
            out.append(getattr(self, "_" + self.kind)(p, g, s, lr, t))
        self.iterations += 1
        return out

    def _sgd(self, p, g, s, lr, t):
        mom = self.hp.get("momentum", 0.0)
        if mom == 0:
            return p - lr * g
        s["a"] = mom * s["a"] - lr * g
        if self.hp.get("nesterov"):
            return p + mom * s["a"] - lr * g
        return p + s["a"]

    def _rmsprop(self, p, g, s, lr, t):
        rho, mom, eps = self.hp["rho"], self.hp["momentum"], self.hp["epsilon"]
        s["a"] = rho * s["a"] + (1 - rho) * g * g
        denom = s["a"]
        if self.hp["centered"]:
            s["b"] = rho * s["b"] + (1 - rho) * g
            denom = s["a"] - s["b"] ** 2
        inc = lr * g / np.sqrt(denom + eps)
        if mom > 0:
            s["c"] = mom * s["c"] + inc
            return p - s["c"]
        return p - inc

    def _adam(self, p, g, s, lr, t):
        b1, b2, eps = self.hp["beta_1"], self.hp["beta_2"], self.hp["epsilon"]
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        s["a"] += (g - s["a"]) * (1 - b1)
        s["b"] += (g * g - s["b"]) * (1 - b2)
        v = s["b"]
        if self.hp.get("amsgrad"):
            s["c"] = np.maximum(s["c"], s["b"])
            v = s["c"]
        return p - alpha * s["a"] / (np.sqrt(v) + eps)

    def _adagrad(self, p, g, s, lr, t):
        s["a"] += g * g
        return p - lr * g / np.sqrt(s["a"] + self.hp["epsilon"])

    def _adadelta(self, p, g, s, lr, t):
        rho, eps = self.hp["rho"], self.hp["epsilon"]
        s["a"] = rho * s["a"] + (1 - rho) * g * g
        delta = -np.sqrt(s["b"] + eps) * g / np.sqrt(s["a"] + eps)
        s["b"] = rho * s["b"] + (1 - rho) * delta * delta
        return p + lr * delta

    def _adamax(self, p, g, s, lr, t):
        b1, b2, eps = self.hp["beta_1"], self.hp["beta_2"], self.hp["epsilon"]
        s["a"] += (g - s["a"]) * (1 - b1)
        s["b"] = np.maximum(b2 * s["b"], np.abs(g))
        return p - lr * s["a"] / ((1 - b1 ** t) * (s["b"] + eps))

    def _nadam(self, p, g, s, lr, t):
        b1, b2, eps = self.hp["beta_1"], self.hp["beta_2"], self.hp["epsilon"]
        u_t = b1 * (1 - 0.5 * 0.96 ** t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        up_t = self.u_product
        up_t1 = up_t * u_t1
        s["a"] += (g - s["a"]) * (1 - b1)
        s["b"] += (g * g - s["b"]) * (1 - b2)
        m_hat = u_t1 * s["a"] / (1 - up_t1) + (1 - u_t) * g / (1 - up_t)
        v_hat = s["b"] / (1 - b2 ** t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)

    def _lion(self, p, g, s, lr, t):
        b1, b2 = self.hp["beta_1"], self.hp["beta_2"]
        new = p - lr * np.sign(b1 * s["a"] + (1 - b1) * g)
        s["a"] = b2 * s["a"] + (1 - b2) * g
        return new


ADAM_HP = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-7)
RMS_HP = dict(rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)

# (id, optimizer factory, reference factory)
VARIANTS = [
    ("sgd", lambda: optimizers.SGD(), lambda: NumpyKeras("sgd", lr=0.01)),
    ("sgd_momentum", lambda: optimizers.SGD(0.05, momentum=0.9),
     lambda: NumpyKeras("sgd", lr=0.05, momentum=0.9)),
    ("sgd_nesterov", lambda: optimizers.SGD(0.05, momentum=0.8, nesterov=True),
     lambda: NumpyKeras("sgd", lr=0.05, momentum=0.8, nesterov=True)),
    ("sgd_weight_decay", lambda: optimizers.SGD(0.1, weight_decay=0.05),
     lambda: NumpyKeras("sgd", lr=0.1, weight_decay=0.05)),
    ("sgd_clipnorm", lambda: optimizers.SGD(0.1, clipnorm=0.5),
     lambda: NumpyKeras("sgd", lr=0.1, clipnorm=0.5)),
    ("sgd_clipvalue", lambda: optimizers.SGD(0.1, clipvalue=0.3),
     lambda: NumpyKeras("sgd", lr=0.1, clipvalue=0.3)),
    ("sgd_global_clipnorm", lambda: optimizers.SGD(0.1, global_clipnorm=0.7),
     lambda: NumpyKeras("sgd", lr=0.1, global_clipnorm=0.7)),
    ("rmsprop", lambda: optimizers.RMSprop(), lambda: NumpyKeras("rmsprop", **RMS_HP)),
    ("rmsprop_momentum", lambda: optimizers.RMSprop(0.01, momentum=0.5),
     lambda: NumpyKeras("rmsprop", lr=0.01, **{**RMS_HP, "momentum": 0.5})),
    ("rmsprop_centered", lambda: optimizers.RMSprop(0.01, centered=True),
     lambda: NumpyKeras("rmsprop", lr=0.01, **{**RMS_HP, "centered": True})),
    ("rmsprop_centered_momentum", lambda: optimizers.RMSprop(0.01, rho=0.8, momentum=0.3, centered=True),
     lambda: NumpyKeras("rmsprop", lr=0.01, **{**RMS_HP, "rho": 0.8, "momentum": 0.3, "centered": True})),
    ("adam", lambda: optimizers.Adam(), lambda: NumpyKeras("adam", **ADAM_HP)),
    ("adam_custom", lambda: optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
     lambda: NumpyKeras("adam", lr=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3)),
    ("adam_amsgrad", lambda: optimizers.Adam(0.01, amsgrad=True),
     lambda: NumpyKeras("adam", lr=0.01, amsgrad=True, **ADAM_HP)),
    ("adam_clipnorm", lambda: optimizers.Adam(0.01, clipnorm=0.2),
     lambda: NumpyKeras("adam", lr=0.01, clipnorm=0.2, **ADAM_HP)),
    ("adam_global_clipnorm", lambda: optimizers.Adam(0.01, global_clipnorm=0.2),
     lambda: NumpyKeras("adam", lr=0.01, global_clipnorm=0.2, **ADAM_HP)),
    ("adamw", lambda: optimizers.AdamW(), lambda: NumpyKeras("adam", weight_decay=0.004, **ADAM_HP)),
    ("adamw_strong", lambda: optimizers.AdamW(0.05, weight_decay=0.2, amsgrad=True),
     lambda: NumpyKeras("adam", lr=0.05, weight_decay=0.2, amsgrad=True, **ADAM_HP)),
    ("adagrad", lambda: optimizers.Adagrad(0.05),
     lambda: NumpyKeras("adagrad", lr=0.05, initial_accumulator_value=0.1, epsilon=1e-7)),
    ("adagrad_clipvalue", lambda: optimizers.Adagrad(0.05, initial_accumulator_value=0.5, clipvalue=0.2),
     lambda: NumpyKeras("adagrad", lr=0.05, initial_accumulator_value=0.5, epsilon=1e-7, clipvalue=0.2)),
    ("adadelta", lambda: optimizers.Adadelta(1.0),
     lambda: NumpyKeras("adadelta", lr=1.0, rho=0.95, epsilon=1e-7)),
    ("adamax", lambda: optimizers.Adamax(0.01), lambda: NumpyKeras("adamax", lr=0.01, **ADAM_HP)),
    ("nadam", lambda: optimizers.Nadam(0.01), lambda: NumpyKeras("nadam", lr=0.01, **ADAM_HP)),
    ("lion", lambda: optimizers.Lion(0.01), lambda: NumpyKeras("lion", lr=0.01, beta_1=0.9, beta_2=0.99)),
    ("lion_weight_decay", lambda: optimizers.Lion(0.01, weight_decay=0.1),
     lambda: NumpyKeras("lion", lr=0.01, weight_decay=0.1, beta_1=0.9, beta_2=0.99)),
    ("sgd_exponential_schedule",
     lambda: optimizers.SGD(schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5), momentum=0.5),
     lambda: NumpyKeras("sgd", lr=lambda it: 0.1 * 0.5 ** (it / 2), momentum=0.5)),
    ("adamw_piecewise_schedule",
     lambda: optimizers.AdamW(schedules.PiecewiseConstantDecay([1, 3], [0.1, 0.01, 0.001]), weight_decay=0.1),
     lambda: NumpyKeras("adam", lr=lambda it: 0.1 if it <= 1 else (0.01 if it <= 3 else 0.001),
                        weight_decay=0.1, **ADAM_HP)),
]
IDS = [v[0] for v in VARIANTS]


def _random_problem(seed):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_matches_keras_formula_inside_jit(variant):
    _, make_opt, make_ref = variant
    opt, ref = make_opt(), make_ref()
    params, grads = _random_problem(0)
    traces = []

    @jax.jit
    def step(state, g, p):
        traces.append(1)
        return opt.apply(state, g, p)

    state = opt.init([jnp.asarray(p) for p in params])
    p_jax = [jnp.asarray(p) for p in params]
    p_ref = [p.astype(np.float64) for p in params]
    for g in grads:
        p_jax, state = step(state, [jnp.asarray(x) for x in g], p_jax)
        p_ref = ref.step(p_ref, [x.astype(np.float64) for x in g])
        for a, b in zip(p_jax, p_ref):
            np.testing.assert_allclose(np.asarray(a), b, rtol=RTOL, atol=1e-6)
    assert len(traces) == 1
    assert opt.iterations(state) == STEPS
    assert state.iterations.dtype == jnp.int32 and state.learning_rate.dtype == jnp.float32
    np.testing.assert_allclose(opt.get_learning_rate(state), ref.current_lr(), rtol=RTOL)
    # The parameters actually moved.
    assert not np.allclose(np.asarray(p_jax[0]), params[0])


def test_apply_accepts_dict_pytrees_and_eager_mode():
    opt = optimizers.Adam(0.1)
    params = {"w": jnp.ones((2, 2)), "b": {"bias": jnp.zeros((2,))}}
    grads = {"w": jnp.full((2, 2), 0.5), "b": {"bias": jnp.ones((2,))}}
    state = opt.init(params)
    new, state = opt.apply(state, grads, params)
    # First Adam step moves every weight by ~lr against the gradient sign.
    np.testing.assert_allclose(np.asarray(new["w"]), 0.9, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(new["b"]["bias"]), -0.1, rtol=1e-4)


def test_set_learning_rate_changes_step_without_retrace():
    opt = optimizers.SGD(0.1, momentum=0.9)
    ref = NumpyKeras("sgd", lr=0.1, momentum=0.9)
    params, grads = _random_problem(1)
    traces = []

    @jax.jit
    def step(state, g, p):
        traces.append(1)
        return opt.apply(state, g, p)

    state = opt.init(params)
    p_jax, p_ref = list(params), [p.astype(np.float64) for p in params]
    for i, g in enumerate(grads):
        if i == 2:
            state = opt.set_learning_rate(state, 0.01)
            ref.lr = 0.01
            assert opt.get_learning_rate(state) == pytest.approx(0.01)
            assert opt.learning_rate == pytest.approx(0.01)
        p_jax, state = step(state, g, p_jax)
        p_ref = ref.step(p_ref, [x.astype(np.float64) for x in g])
        for a, b in zip(p_jax, p_ref):
            np.testing.assert_allclose(np.asarray(a), b, rtol=RTOL, atol=1e-6)
    assert len(traces) == 1


def test_learning_rate_property_and_schedule_guards():
    opt = optimizers.Adam(0.01)
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    assert float(opt.init([jnp.zeros(2)]).learning_rate) == 0.5
    sched = schedules.ExponentialDecay(0.1, 10, 0.9)
    sopt = optimizers.SGD(sched)
    assert sopt.learning_rate is sched
    state = sopt.init([jnp.zeros(2)])
    with pytest.raises(TypeError, match="schedule"):
        sopt.set_learning_rate(state, 0.1)
    with pytest.raises(TypeError):
        sopt.learning_rate = 0.3
    with pytest.raises(TypeError):
        opt.learning_rate = "fast"


def test_constructor_validation():
    with pytest.raises(ValueError, match="clipnorm"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="global_clipnorm"):
        optimizers.Adam(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="use_ema"):
        optimizers.Adam(use_ema=True)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)


@pytest.mark.parametrize("name,cls", [
    ("adam", optimizers.Adam), ("Adam", optimizers.Adam), ("sgd", optimizers.SGD), ("SGD", optimizers.SGD),
    ("rmsprop", optimizers.RMSprop), ("adamw", optimizers.AdamW), ("adagrad", optimizers.Adagrad),
    ("adadelta", optimizers.Adadelta), ("nadam", optimizers.Nadam), ("adamax", optimizers.Adamax),
    ("lion", optimizers.Lion),
])
def test_get_by_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls
    assert optimizers.get(opt) is opt


def test_get_unknown_name():
    with pytest.raises(ValueError) as err:
        optimizers.get("adamm")
    assert "adamm" in str(err.value) and "rmsprop" in str(err.value)
    with pytest.raises(TypeError):
        optimizers.get(0.1)


def test_default_hyperparameters_match_keras():
    assert optimizers.SGD().learning_rate == 0.01 and optimizers.SGD().name == "SGD"
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert optimizers.AdamW().weight_decay == 0.004
    rms = optimizers.RMSprop()
    assert (rms.rho, rms.momentum, rms.epsilon, rms.centered) == (0.9, 0.0, 1e-7, False)
    assert optimizers.Adagrad().initial_accumulator_value == 0.1


@pytest.mark.parametrize("make_opt", [v[1] for v in VARIANTS], ids=IDS)
def test_config_round_trip(make_opt):
    opt = make_opt()
    config = opt.get_config()
    clone = type(opt).from_config(config)
    assert type(clone) is type(opt) and clone.get_config() == config
    restored = optimizers.deserialize(optimizers.serialize(opt))
    assert type(restored) is type(opt) and restored.get_config() == config
    # The clone produces the same step.
    params, grads = _random_problem(2)
    a, _ = opt.apply(opt.init(params), grads[0], params)
    b, _ = restored.apply(restored.init(params), grads[0], params)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_deserialize_only_registry():
    with pytest.raises(ValueError, match="builtins.eval"):
        optimizers.deserialize({"class_name": "builtins.eval", "config": {}})


# ----------------------------------------------------------------------------- schedules
STEP_VALUES = np.arange(0, 61)


def _np_cosine(step, init, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
    if warmup_target is None:
        s = min(step, decay_steps)
        return init * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)
    s = min(step, decay_steps + warmup_steps)
    if s < warmup_steps:
        return (warmup_target - init) * s / warmup_steps + init
    s -= warmup_steps
    return warmup_target * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)


def _np_poly(step, init, decay_steps, end, power, cycle):
    if cycle:
        ds = decay_steps * (1 if step == 0 else math.ceil(step / decay_steps))
    else:
        ds, step = decay_steps, min(step, decay_steps)
    return (init - end) * (1 - step / ds) ** power + end


def _np_restarts(step, init, first, t_mul, m_mul, alpha):
    start, period, i = 0.0, float(first), 0
    while step >= start + period:
        start += period
        period *= t_mul
        i += 1
    frac = (step - start) / period
    return init * ((1 - alpha) * 0.5 * m_mul ** i * (1 + math.cos(math.pi * frac)) + alpha)


def _np_piecewise(step, boundaries, values):
    for b, v in zip(boundaries, values):
        if step <= b:
            return v
    return values[-1]


SCHEDULE_CASES = [
    ("exponential", lambda: schedules.ExponentialDecay(0.1, 7, 0.8),
     lambda s: 0.1 * 0.8 ** (s / 7)),
    ("exponential_staircase", lambda: schedules.ExponentialDecay(0.1, 7, 0.8, staircase=True),
     lambda s: 0.1 * 0.8 ** math.floor(s / 7)),
    ("inverse_time", lambda: schedules.InverseTimeDecay(0.5, 4, 0.3),
     lambda s: 0.5 / (1 + 0.3 * s / 4)),
    ("inverse_time_staircase", lambda: schedules.InverseTimeDecay(0.5, 4, 0.3, staircase=True),
     lambda s: 0.5 / (1 + 0.3 * math.floor(s / 4))),
    ("piecewise", lambda: schedules.PiecewiseConstantDecay([5, 20, 40], [1.0, 0.5, 0.1, 0.01]),
     lambda s: _np_piecewise(s, [5, 20, 40], [1.0, 0.5, 0.1, 0.01])),
    ("polynomial", lambda: schedules.PolynomialDecay(0.1, 30),
     lambda s: _np_poly(s, 0.1, 30, 0.0001, 1.0, False)),
    ("polynomial_power_cycle", lambda: schedules.PolynomialDecay(0.1, 13, end_learning_rate=0.01, power=2.0, cycle=True),
     lambda s: _np_poly(s, 0.1, 13, 0.01, 2.0, True)),
    ("cosine", lambda: schedules.CosineDecay(0.1, 40, alpha=0.1),
     lambda s: _np_cosine(s, 0.1, 40, 0.1)),
    ("cosine_warmup", lambda: schedules.CosineDecay(0.0, 30, warmup_target=0.2, warmup_steps=10),
     lambda s: _np_cosine(s, 0.0, 30, 0.0, 0.2, 10)),
    ("cosine_restarts", lambda: schedules.CosineDecayRestarts(0.1, 7, t_mul=2.0, m_mul=0.5, alpha=0.05),
     lambda s: _np_restarts(s, 0.1, 7, 2.0, 0.5, 0.05)),
    ("cosine_restarts_tmul1", lambda: schedules.CosineDecayRestarts(0.1, 9, t_mul=1.0, m_mul=0.8),
     lambda s: _np_restarts(s, 0.1, 9, 1.0, 0.8, 0.0)),
]
SCHEDULE_IDS = [c[0] for c in SCHEDULE_CASES]


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=SCHEDULE_IDS)
def test_schedule_matches_numpy(case):
    _, make, ref = case
    sched = make()
    jitted = jax.jit(sched)
    want = np.array([ref(int(s)) for s in STEP_VALUES])
    eager = np.array([float(sched(jnp.asarray(s, jnp.int32))) for s in STEP_VALUES])
    inside = np.array([float(jitted(jnp.asarray(s, jnp.int32))) for s in STEP_VALUES])
    np.testing.assert_allclose(eager, want, rtol=RTOL, atol=1e-7)
    np.testing.assert_allclose(inside, want, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=SCHEDULE_IDS)
def test_schedule_config_round_trip(case):
    sched = case[1]()
    config = sched.get_config()
    clone = type(sched).from_config(config)
    assert clone.get_config() == config
    restored = schedules.deserialize(schedules.serialize(sched))
    assert type(restored) is type(sched) and restored.get_config() == config
    assert float(restored(17)) == pytest.approx(float(sched(17)))


def test_schedule_validation_and_unknown():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.9)
    with pytest.raises(ValueError, match="boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NoSuchDecay"):
        schedules.deserialize({"class_name": "NoSuchDecay", "config": {}})
