"""Training features, compiled ``cprop.MLP`` against the plain-Python ``cprop.oracle.MLP``.

Every valid combination of hidden activation (5) x (loss, output) pairing (7) x optimizer
configuration (6) is one case (210 cases), run in float64 and in float32. A case draws its
network and data from its own ``random.Random`` (:func:`make_case`): 1-3 hidden layers, widths
2-6, 3-12 samples, an initialiser, a leaky_relu slope, ``train_biases``, learning rates for the
optimizer, a schedule, batch sizes and whether L2 (``alpha=1e-3``; AdamW's decoupled decay
``alpha=0.05``) is on. Per case:

* forward, loss and gradients (:func:`test_forward_loss_gradients`);
* two ``train_step`` calls with the case's optimizer, sharing its state
  (:func:`test_train_steps`): loss, parameters, the optimizer state (``net._opt_state`` against
  ``oracle.MLP.opt_state``, the same flat layout, slot by slot) and the step counter;
* ``fit`` for 3 shuffled epochs with a schedule (:func:`test_fit`): history, parameters,
  optimizer state, step counter and generator state.

Beyond the grid: integer class labels, the four initialisers and user-given initial parameters,
validation/early stopping/callbacks, state carried over between calls (and reset when the
optimizer's options change), refused steps, and the loss/output pairing rules.

float64 results are bit-identical, Adam's included (see
:func:`test_adam_bias_correction_is_real_pow_bit_for_bit`).

Tolerances, the error measure and the float32 rules are the parity harness's (``parity.py``):
1e-12 in float64, 1e-5 in float32, where the oracle gets the float32-rounded copies of everything
the compiled path rounds on entry -- parameters, X, T, lr, momentum, alpha, the leaky_relu slope
-- and gradients are compared as one flat vector. A float32 fit is compared at the case's
learning rate halved until the exact (double) run from the float32 start is stable and
well-conditioned (:func:`float32_fit_reference`); no case is skipped. ``pytest --parity-report``
prints the worst relative error per quantity.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from dataclasses import dataclass

import numpy as np
import pytest

import cprop
from cprop import oracle
from parity import (DTYPES, FitRun, as_oracle, assert_few_float32_fits_reduced,
                    assert_rel, assert_same_params, assert_same_state, compiled_and_oracle,
                    flat_gradient, float32_fit_lr, oracle_fit_run, oracle_options,
                    oracle_scalar, state_slots)

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
PAIRINGS = (  # (loss, output)
    ("squared_error", "sigmoid"),
    ("squared_error", "softmax"),
    ("squared_error", "identity"),
    ("cross_entropy", "softmax"),
    ("binary_cross_entropy", "sigmoid"),
    ("poisson", "exp"),
    ("squared_error", "exp"),
)
OPTIMIZER_CONFIGS = {
    "sgd": dict(optimizer="sgd"),
    "momentum": dict(optimizer="sgd", momentum=0.9),
    "nesterov": dict(optimizer="sgd", momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam"),
    "rprop": dict(optimizer="rprop"),
    "adamw": dict(optimizer="adamw"),
}
# Learning-rate ranges the cases draw from, per optimizer configuration.
LR_RANGE = {"sgd": (0.05, 1.0), "momentum": (0.02, 0.3), "nesterov": (0.02, 0.3),
            "adam": (0.002, 0.05), "rprop": (0.002, 0.05), "adamw": (0.002, 0.05)}
# alpha when a case turns it on: L2, or AdamW's decoupled weight decay (lr * alpha per step).
ALPHA = {"adamw": 0.05}
INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal")
SCHEDULES = ("constant", "invscaling", "step", "cosine")
EPOCHS = 3

# Combinations added later come after the first 125, so that every case keeps its index (and
# so its data).
FIRST_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "rprop")
FIRST_PAIRINGS = PAIRINGS[:5]
COMBOS = (list(itertools.product(HIDDEN, FIRST_PAIRINGS, FIRST_OPTIMIZERS))
          + list(itertools.product(HIDDEN, FIRST_PAIRINGS, ("adamw",)))
          + list(itertools.product(HIDDEN, PAIRINGS[5:], OPTIMIZER_CONFIGS)))
N_CASES = len(COMBOS)  # 210


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    index: int
    hidden: str
    loss: str
    output: str
    opt_name: str
    sizes: tuple
    init: str
    slope: float
    train_biases: bool
    net_seed: int
    X: np.ndarray
    T: np.ndarray
    step_rows: int
    step_lr: float
    step_alpha: float
    fit_lr: float
    fit_alpha: float
    batch_size: int
    schedule: str
    fit_seed: int

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def options(self) -> dict:
        return dict(OPTIMIZER_CONFIGS[self.opt_name])

    def net_kwargs(self) -> dict:
        return dict(hidden=self.hidden, output=self.output, loss=self.loss,
                    train_biases=self.train_biases, negative_slope=self.slope, init=self.init)

    def describe(self, dtype: str) -> str:
        return (f"case {self.index} [{dtype}, sizes={list(self.sizes)}, hidden={self.hidden}, "
                f"output={self.output}, loss={self.loss}, optimizer={self.opt_name}, "
                f"init={self.init}, slope={self.slope:.3g}, train_biases={self.train_biases}, "
                f"n={self.n}]")


def make_targets(rng: random.Random, loss: str, n: int, n_out: int) -> np.ndarray:
    if loss == "cross_entropy":
        if rng.random() < 0.5:  # one-hot rows
            rows = []
            for _ in range(n):
                c = rng.randrange(n_out)
                rows.append([1.0 if k == c else 0.0 for k in range(n_out)])
            return np.array(rows)
        rows = []  # probability rows
        for _ in range(n):
            w = [rng.uniform(0.05, 1.0) for _ in range(n_out)]
            rows.append([v / sum(w) for v in w])
        return np.array(rows)
    if loss == "binary_cross_entropy":  # in [0, 1], some exactly 0 or 1
        return np.array([[rng.choice((0.0, 1.0)) if rng.random() < 0.3 else rng.uniform(0, 1)
                          for _ in range(n_out)] for _ in range(n)])
    if loss == "poisson":  # counts (zeros included) and rates
        return np.array([[float(rng.randrange(4)) if rng.random() < 0.5 else rng.uniform(0, 3)
                          for _ in range(n_out)] for _ in range(n)])
    return np.array([[rng.uniform(0.0, 1.0) for _ in range(n_out)] for _ in range(n)])


@functools.lru_cache(maxsize=None)
def make_case(index: int) -> Case:
    """Everything of case ``index`` (its combination is ``COMBOS[index]``), drawn from
    ``random.Random(4000 + index)`` in a fixed order."""
    hidden, (loss, output), opt_name = COMBOS[index]
    rng = random.Random(4000 + index)
    n_hidden = rng.randint(1, 3)
    sizes = tuple(rng.randint(2, 6) for _ in range(n_hidden + 2))
    n = rng.randint(3, 12)
    init = rng.choice(INITS)
    slope = 0.01 if rng.random() < 0.5 else rng.uniform(0.0, 0.5)
    train_biases = rng.random() < 0.7
    net_seed = rng.getrandbits(64)
    X = np.array([[rng.uniform(-2.0, 2.0) for _ in range(sizes[0])] for _ in range(n)])
    T = make_targets(rng, loss, n, sizes[-1])
    lo, hi = LR_RANGE[opt_name]
    if output == "exp":  # e^z: a tenth of the rates, so that most cases train rather than overflow
        lo, hi = lo / 10, hi / 10
    step_rows = rng.randint(1, n)
    step_lr = rng.uniform(lo, hi)
    step_alpha = ALPHA.get(opt_name, 1e-3) if rng.random() < 0.5 else 0.0
    fit_lr = rng.uniform(lo, hi)
    fit_alpha = ALPHA.get(opt_name, 1e-3) if rng.random() < 0.5 else 0.0
    batch_size = rng.randint(1, n)
    schedule = rng.choice(SCHEDULES)
    fit_seed = rng.getrandbits(64)
    if output == "exp":  # e^z amplifies z's size: smaller inputs keep it trainable in float32
        X = X / 4
    X.flags.writeable = False
    T.flags.writeable = False
    return Case(index, hidden, loss, output, opt_name, sizes, init, slope, train_biases,
                net_seed, X, T, step_rows, step_lr, step_alpha, fit_lr, fit_alpha, batch_size,
                schedule, fit_seed)


def build(case: Case, dtype: str):
    """The compiled network and the oracle, starting from the same parameters."""
    return compiled_and_oracle(case.sizes, dtype, seed=case.net_seed, **case.net_kwargs())


def case_id(index: int) -> str:
    hidden, (loss, output), opt_name = COMBOS[index]
    return f"{index}-{hidden}-{output}-{loss}-{opt_name}"


CASE_PARAMS = [pytest.param(i, d, id=f"{case_id(i)}-{d}") for d in DTYPES
               for i in range(N_CASES)]


def test_the_grid_is_every_valid_combination():
    assert N_CASES == 5 * 7 * 6 and len(set(COMBOS)) == N_CASES
    assert set(COMBOS) == set(itertools.product(HIDDEN, PAIRINGS, OPTIMIZER_CONFIGS))
    for loss, output in PAIRINGS:
        cprop.MLP([2, 3, 2], output=output, loss=loss)
        oracle.MLP([2, 3, 2], output=output, loss=loss)
    # every hidden activation is really used: each case has at least one hidden layer
    assert all(len(make_case(i).sizes) >= 3 for i in range(N_CASES))


# --------------------------------------------------------------------------------------------
# Forward, loss, gradients
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("index,dtype", CASE_PARAMS)
def test_forward_loss_gradients(index, dtype):
    case = make_case(index)
    what = case.describe(dtype)
    net, o = build(case, dtype)
    Xo, To = as_oracle(case.X, dtype), as_oracle(case.T, dtype)

    Y = net.forward(case.X)
    assert Y.dtype == np.dtype(dtype) and Y.shape == (case.n, case.sizes[-1]), what
    assert_rel(Y, o.forward(Xo), dtype, f"{what}: forward", "forward")
    y0 = net.forward(case.X[0])
    assert y0.shape == (case.sizes[-1],) and np.array_equal(y0, Y[0]), what
    if case.output == "softmax":
        assert np.allclose(Y.sum(axis=1), 1.0, rtol=0, atol=1e-6), what

    loss = net.loss(case.X, case.T)
    assert isinstance(loss, float), what
    assert_rel(loss, o.loss(Xo, To), dtype, f"{what}: loss", "loss")

    gW, gb = net.gradients(case.X, case.T)
    oW, ob = o.gradients(Xo, To)
    if dtype == "float64":
        for l in range(len(gW)):
            assert_rel(gW[l], oW[l], dtype, f"{what}: grad_weights[{l}]", "gradient")
            assert_rel(gb[l], ob[l], dtype, f"{what}: grad_biases[{l}]", "gradient")
    assert_rel(flat_gradient(gW, gb), flat_gradient(oW, ob), dtype,
               f"{what}: gradient (all weights and biases)", "gradient")


# --------------------------------------------------------------------------------------------
# train_step
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("index,dtype", CASE_PARAMS)
def test_train_steps(index, dtype):
    # Two steps with the case's optimizer: the first on the first step_rows rows, the second on
    # all rows; the second uses the state the first left (momentum buffer, Adam's t = 2, Rprop's
    # sign memory and step sizes).
    case = make_case(index)
    net, o = build(case, dtype)
    opts = dict(case.options, alpha=case.step_alpha)
    oopts = oracle_options(opts, dtype)
    lr, olr = case.step_lr, oracle_scalar(case.step_lr, dtype)
    what = f"{case.describe(dtype)} train_step(lr={lr:.4g}, {opts})"
    biases_before = [b.copy() for b in net.biases]
    batches = [(case.X[:case.step_rows], case.T[:case.step_rows]), (case.X, case.T)]
    for step, (X, T) in enumerate(batches, start=1):
        tag = f"{what}, step {step}"
        loss = net.train_step(X, T, lr, **opts)
        expected = o.train_step(as_oracle(X, dtype), as_oracle(T, dtype), olr, **oopts)
        assert isinstance(loss, float), tag
        assert_rel(loss, expected, dtype, f"{tag}: loss", "train_step loss")
        assert_same_params(net, o, dtype, tag)
        assert_same_state(net, o, dtype, tag)
        assert int(net._opt_steps[0]) == step, tag
    if not case.train_biases:
        for l, b in enumerate(net.biases):
            assert np.array_equal(b, biases_before[l]), f"{what}: biases[{l}] moved"
            assert o.biases[l] == biases_before[l].astype(np.float64).tolist(), what


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------

def run_oracle_fit(case: Case, dtype: str, start, lr: float) -> FitRun:
    """The oracle's fit of a case from the flat parameters ``start``."""
    kwargs = case.net_kwargs()
    kwargs["negative_slope"] = oracle_scalar(case.slope, dtype)
    o = oracle.MLP(list(case.sizes), dtype=dtype, seed=case.net_seed, **kwargs)
    o.set_params_flat(list(start))
    opts = oracle_options(dict(case.options, alpha=case.fit_alpha), dtype)
    run = oracle_fit_run(o, as_oracle(case.X, dtype), as_oracle(case.T, dtype), epochs=EPOCHS,
                         lr=oracle_scalar(lr, dtype), batch_size=case.batch_size, shuffle=True,
                         seed=case.fit_seed, lr_schedule=case.schedule, **opts)
    if run.loss is not None:
        h = run.history
        assert h.stop_reason == "max_epochs" and h.best_epoch is None and h.val_loss == []
    return run


def float32_start(case: Case) -> list:
    net = cprop.MLP(list(case.sizes), dtype="float32", seed=case.net_seed, **case.net_kwargs())
    return net.params.astype(np.float64).tolist()


@functools.lru_cache(maxsize=None)
def float32_fit_reference(index: int):
    """``(lr, oracle result, reasons)``: the case's fit lr, halved until the exact run from the
    float32 start is stable and well-conditioned (:func:`parity.float32_fit_lr`); ``reasons``
    says why each larger lr was passed over."""
    case = make_case(index)
    return float32_fit_lr(lambda start, lr: run_oracle_fit(case, "float32", start, lr),
                          float32_start(case), case.fit_lr, case.index)


@functools.lru_cache(maxsize=None)
def _start_params(index: int) -> tuple:
    case = make_case(index)
    return tuple(cprop.MLP(list(case.sizes), seed=case.net_seed,
                           **case.net_kwargs()).params.tolist())


def net_start_params(case: Case) -> list:
    """The case's float64 initial parameters (the compiled ones, bit-identical to the
    oracle's: test_initialisers_bit_identical)."""
    return list(_start_params(case.index))


@pytest.mark.parametrize("index,dtype", CASE_PARAMS)
def test_fit(index, dtype):
    case = make_case(index)
    if dtype == "float32":
        lr, ref, passed_over = float32_fit_reference(index)
        assert lr is not None, f"case {index}: no float32-reproducible lr: {passed_over}"
    else:
        lr = case.fit_lr
    opts = dict(case.options, alpha=case.fit_alpha)
    what = (f"{case.describe(dtype)} fit(epochs={EPOCHS}, lr={lr:.4g}, "
            f"batch_size={case.batch_size}, lr_schedule={case.schedule!r}, {opts})")
    net, o = build(case, dtype)
    try:
        hist = net.fit(case.X, case.T, epochs=EPOCHS, lr=lr, batch_size=case.batch_size,
                       shuffle=True, seed=case.fit_seed, lr_schedule=case.schedule, **opts)
    except FloatingPointError:
        hist = None
    if dtype == "float64":
        ref = run_oracle_fit(case, dtype, net_start_params(case), lr)
    assert (hist is None) == (ref.loss is None), (
        f"{what}: compiled raised: {hist is None}, oracle raised: {ref.loss is None}")
    assert int(net._rng[0]) == ref.rng_state, f"{what}: generator state differs"
    assert_rel(net.params, ref.params, dtype, f"{what}: params", "params")
    n = net.n_params
    for k, (s, rs) in enumerate(zip(state_slots(net._opt_state, n),
                                    state_slots(ref.state, n))):
        assert_rel(s, rs, dtype, f"{what}: optimizer state slot {k}", "optimizer state")
    assert len(net._opt_state) == len(ref.state), what
    assert int(net._opt_steps[0]) == ref.steps, f"{what}: step counter"
    if hist is not None:
        assert hist.epochs == EPOCHS and hist.stop_reason == "max_epochs", what
        assert hist.best_epoch is None and hist.val_loss == [], what
        assert all(isinstance(v, float) for v in hist.loss), what
        assert_rel(hist.loss, ref.loss, dtype, f"{what}: history.loss", "history")
        assert_rel(hist.lr, ref.lr, dtype, f"{what}: history.lr", "history")
        # batches per epoch: ceil(n / batch_size), one step each
        assert ref.steps == EPOCHS * math.ceil(case.n / case.batch_size), what


def test_float32_fit_learning_rate_reduced_only_for_unstable_runs():
    assert_few_float32_fits_reduced([float32_fit_reference(i) for i in range(N_CASES)], N_CASES)


# --------------------------------------------------------------------------------------------
# Integer class labels, initialisers
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_integer_labels_equal_one_hot(hidden, dtype):
    rng = random.Random(f"labels-{hidden}")
    sizes = [3, rng.randint(2, 6), 4]
    n = 9
    X = np.array([[rng.uniform(-2, 2) for _ in range(3)] for _ in range(n)])
    labels = [rng.randrange(4) for _ in range(n)]
    labels[:4] = [0, 1, 2, 3]
    one_hot = np.eye(4)[labels]
    what = f"{hidden} [{dtype}] labels {labels}"
    kw = dict(hidden=hidden, output="softmax", loss="cross_entropy", seed=17)
    for opts in ({"optimizer": "sgd", "momentum": 0.9}, {"optimizer": "adam"}):
        a = cprop.MLP(sizes, dtype=dtype, **kw)
        b = cprop.MLP(sizes, dtype=dtype, **kw)
        oa = oracle.MLP(sizes, **kw)
        ob = oracle.MLP(sizes, **kw)
        for o in (oa, ob):
            o.set_params_flat(a.params.astype(np.float64).tolist())
        Xo = as_oracle(X, dtype)
        label_arr = np.array(labels)
        # loss and gradients
        assert a.loss(X, label_arr) == a.loss(X, one_hot), what
        assert oa.loss(Xo, labels) == oa.loss(Xo, one_hot.tolist()), what
        assert_rel(a.loss(X, label_arr), oa.loss(Xo, labels), dtype, f"{what}: loss", "loss")
        ga, go = flat_gradient(*a.gradients(X, label_arr)), flat_gradient(*oa.gradients(Xo,
                                                                                        labels))
        assert np.array_equal(ga, flat_gradient(*a.gradients(X, one_hot))), what
        assert np.array_equal(go, flat_gradient(*oa.gradients(Xo, one_hot.tolist()))), what
        assert_rel(ga, go, dtype, f"{what}: gradient", "gradient")
        # one label for one sample
        assert a.loss(X[2], labels[2]) == a.loss(X[2], one_hot[2]), what
        assert oa.loss(Xo[2], labels[2]) == oa.loss(Xo[2], one_hot[2].tolist()), what
        # training with labels == training with one-hot rows
        lr = 0.05
        oopts = oracle_options(opts, dtype)
        a.train_step(X, label_arr, lr, **opts)
        b.train_step(X, one_hot, lr, **opts)
        oa.train_step(Xo, labels, oracle_scalar(lr, dtype), **oopts)
        ob.train_step(Xo, one_hot.tolist(), oracle_scalar(lr, dtype), **oopts)
        ha = a.fit(X, label_arr, epochs=2, lr=lr, batch_size=4, seed=3, **opts)
        hb = b.fit(X, one_hot, epochs=2, lr=lr, batch_size=4, seed=3, **opts)
        hoa = oa.fit(Xo, labels, epochs=2, lr=oracle_scalar(lr, dtype), batch_size=4, seed=3,
                     **oopts)
        hob = ob.fit(Xo, one_hot.tolist(), epochs=2, lr=oracle_scalar(lr, dtype),
                     batch_size=4, seed=3, **oopts)
        assert np.array_equal(a.params, b.params) and ha.loss == hb.loss, what
        assert np.array_equal(a._opt_state, b._opt_state), what
        assert oa.params_flat() == ob.params_flat() and hoa.loss == hob.loss, what
        assert oa.opt_state == ob.opt_state, what
        assert_rel(ha.loss, hoa.loss, dtype, f"{what}: history", "history")
        assert_same_params(a, oa, dtype, f"{what} {opts}")
        assert_same_state(a, oa, dtype, f"{what} {opts}")
    # labels out of range, or of the wrong count, are refused by both
    for bad in ([0, 1, 4] + [0] * (n - 3), [-1] + [0] * (n - 1), [0] * (n - 1)):
        with pytest.raises(ValueError):
            a.loss(X, np.array(bad))
        with pytest.raises(ValueError):
            oa.loss(Xo, bad)


INIT_SIZES = [[3, 4, 2], [1, 6], [5, 2, 3, 4], [6, 6, 6, 6], [2, 5, 1]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init", INITS)
def test_initialisers_bit_identical(init, dtype):
    for k, sizes in enumerate(INIT_SIZES):
        seed = random.Random(f"{init}-{k}").getrandbits(64)
        net = cprop.MLP(sizes, dtype=dtype, seed=seed, init=init)
        o = oracle.MLP(sizes, dtype=dtype, seed=seed, init=init)
        what = f"init={init} sizes={sizes} seed={seed} [{dtype}]"
        # the same SplitMix64 draws in the same order; float32 rounds each double value
        expected = np.array(o.params_flat(), dtype=dtype)
        assert np.array_equal(net.params, expected), what
        if dtype == "float64":
            assert net.params.tolist() == o.params_flat(), what
        assert int(net._rng[0]) == o.rng.state, f"{what}: draws consumed"
        for b in o.biases:
            assert b == [0.0] * len(b), what
        # the scale: uniform within the limit, normal with about the right spread
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            W = np.array(o.weights[l])
            fan = n_in + n_out if init.startswith("glorot") else n_in
            if init.endswith("uniform"):
                assert np.all(np.abs(W) <= math.sqrt(6.0 / fan)), what
            else:
                assert np.all(np.abs(W) <= 9 * math.sqrt(2.0 / fan)), what
    # uniform draws use one uniform per weight, normal draws two
    sizes = [4, 3]
    g = oracle.SplitMix64(5)
    for _ in range(12 * (1 if init.endswith("uniform") else 2)):
        g.next()
    assert oracle.MLP(sizes, seed=5, init=init).rng.state == g.state


def test_normal_initialiser_is_box_muller():
    # glorot_normal, spelled out from SplitMix64 uniforms: sqrt(-2 log(1 - u1)) cos(2 pi u2) s
    g = oracle.SplitMix64(99)
    scale = math.sqrt(2.0 / (3 + 2))
    expected = []
    for _ in range(6):
        u1, u2 = g.uniform(), g.uniform()
        expected.append(math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(6.283185307179586 * u2)
                        * scale)
    net = cprop.MLP([3, 2], seed=99, init="glorot_normal")
    assert net.weights[0].ravel().tolist() == expected
    assert oracle.MLP([3, 2], seed=99, init="glorot_normal").params_flat()[:6] == expected


@pytest.mark.parametrize("dtype", DTYPES)
def test_user_initial_params(dtype):
    rng = random.Random("user-init")
    sizes = [3, 4, 2]
    pairs = [([[rng.uniform(-1, 1) for _ in range(b)] for _ in range(a)],
              [rng.uniform(-1, 1) for _ in range(b)]) for a, b in zip(sizes[:-1], sizes[1:])]
    net = cprop.MLP(sizes, dtype=dtype, seed=8, init=[(np.array(W), np.array(b))
                                                      for W, b in pairs])
    o = oracle.MLP(sizes, dtype=dtype, seed=8, init=pairs)
    assert net.init == o.init == "user"
    assert np.array_equal(net.params, np.array(o.params_flat(), dtype=dtype))
    # no draws were made: the generator is where the seed put it
    assert int(net._rng[0]) == o.rng.state == 8
    # the oracle copies the lists (mutating the caller's lists changes nothing)
    pairs[0][0][0][0] = 123.0
    assert o.weights[0][0][0] != 123.0
    # wrong number of pairs / shapes: ValueError from both
    for bad in (pairs[:1], [pairs[0], (pairs[1][0], pairs[1][1][:1])],
                [(pairs[0][0][:2], pairs[0][1]), pairs[1]]):
        with pytest.raises(ValueError):
            cprop.MLP(sizes, dtype=dtype, init=[(np.array(W), np.array(b)) for W, b in bad])
        with pytest.raises(ValueError):
            oracle.MLP(sizes, dtype=dtype, init=bad)


# --------------------------------------------------------------------------------------------
# Validation, early stopping, callbacks
# --------------------------------------------------------------------------------------------

class Recorder:
    """A callback recording what it saw; returns ``result(epoch)``."""

    def __init__(self, result=lambda epoch: None):
        self.seen = []
        self.result = result

    def __call__(self, net, history):
        params = (net.params.astype(np.float64).tolist() if isinstance(net, cprop.MLP)
                  else net.params_flat())
        self.seen.append((history.epochs, list(history.loss), list(history.val_loss),
                          list(history.lr), params))
        return self.result(history.epochs - 1)


FIT_CONTROL_CASES = {
    # name: (sizes, net kwargs, fit kwargs, callbacks factory)
    "fraction-shuffle-early": (
        [3, 5, 2], dict(hidden="tanh", output="softmax", loss="cross_entropy"),
        dict(epochs=12, lr=0.4, batch_size=2, validation_fraction=0.3, early_stopping=True,
             patience=2, min_delta=0.0, optimizer="sgd", momentum=0.9),
        lambda: [Recorder()]),
    "fraction-noshuffle-mindelta": (
        [3, 4, 1], dict(hidden="relu", output="sigmoid", loss="binary_cross_entropy"),
        dict(epochs=10, lr=0.05, batch_size=3, shuffle=False, validation_fraction=0.25,
             early_stopping=True, patience=3, min_delta=0.05, optimizer="adam",
             lr_schedule="cosine"),
        lambda: [Recorder()]),
    "validation-data-callback-stops": (
        [3, 4, 3, 2], dict(hidden="leaky_relu", output="identity", negative_slope=0.1),
        dict(epochs=10, lr=0.1, batch_size=4, optimizer="sgd", momentum=0.5, nesterov=True,
             lr_schedule="invscaling", alpha=1e-3),
        lambda: [Recorder(), Recorder(lambda e: np.True_ if e == 3 else None), Recorder()]),
    "train-loss-monitored": (
        [3, 6, 2], dict(hidden="sigmoid", output="sigmoid"),
        dict(epochs=15, lr=0.02, batch_size=12, optimizer="rprop", early_stopping=True,
             patience=2, lr_schedule="step"),
        lambda: [Recorder()]),
    "fraction-rprop-no-early": (
        [3, 2], dict(hidden="identity", output="softmax", loss="squared_error"),
        dict(epochs=4, lr=0.01, batch_size=12, optimizer="rprop", validation_fraction=0.4,
             seed=77),
        lambda: [Recorder(lambda e: False)]),
}


def fit_control_data(name: str):
    sizes = FIT_CONTROL_CASES[name][0]
    net_kwargs = FIT_CONTROL_CASES[name][1]
    rng = random.Random(f"control-{name}")
    X = np.array([[rng.uniform(-2, 2) for _ in range(sizes[0])] for _ in range(12)])
    T = make_targets(rng, net_kwargs.get("loss", "squared_error"), 12, sizes[-1])
    Xv = np.array([[rng.uniform(-2, 2) for _ in range(sizes[0])] for _ in range(5)])
    Tv = make_targets(rng, net_kwargs.get("loss", "squared_error"), 5, sizes[-1])
    return X, T, Xv, Tv


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FIT_CONTROL_CASES))
def test_validation_early_stopping_callbacks(name, dtype):
    sizes, net_kwargs, fit_kwargs, callbacks = FIT_CONTROL_CASES[name]
    X, T, Xv, Tv = fit_control_data(name)
    what = f"{name} [{dtype}]"
    net = cprop.MLP(sizes, dtype=dtype, seed=21, **net_kwargs)
    okw = dict(net_kwargs)
    if "negative_slope" in okw:
        okw["negative_slope"] = oracle_scalar(okw["negative_slope"], dtype)
    o = oracle.MLP(sizes, dtype=dtype, seed=21, **okw)
    o.set_params_flat(net.params.astype(np.float64).tolist())
    kw = dict(fit_kwargs)
    okw = oracle_options(kw, dtype)
    okw["lr"] = oracle_scalar(kw["lr"], dtype)
    if name.startswith("validation-data"):
        kw["validation_data"] = (Xv, Tv)
        okw["validation_data"] = (as_oracle(Xv, dtype), as_oracle(Tv, dtype))
    cbs, ocbs = callbacks(), callbacks()
    h = net.fit(X, T, callbacks=cbs, progress=False, **kw)
    oh = o.fit(as_oracle(X, dtype), as_oracle(T, dtype), callbacks=ocbs, progress=False, **okw)

    assert h.stop_reason == oh.stop_reason, f"{what}: {h.stop_reason} vs {oh.stop_reason}"
    assert h.best_epoch == oh.best_epoch, what
    assert h.epochs == oh.epochs, what
    assert_rel(h.loss, oh.loss, dtype, f"{what}: history.loss", "history")
    assert_rel(h.lr, oh.lr, dtype, f"{what}: history.lr", "history")
    assert len(h.val_loss) == len(oh.val_loss), what
    if h.val_loss:
        assert_rel(h.val_loss, oh.val_loss, dtype, f"{what}: history.val_loss", "history")
    assert_same_params(net, o, dtype, what)
    assert_same_state(net, o, dtype, what)
    assert int(net._rng[0]) == o.rng.state, f"{what}: generator state"
    # the callbacks saw the same things, in the same order; a callback after one that stopped
    # training is not called for that epoch
    for k, (cb, ocb) in enumerate(zip(cbs, ocbs)):
        assert len(cb.seen) == len(ocb.seen), f"{what}: callback {k} calls"
        for (e, loss, val, lrs, params), (oe, oloss, oval, olrs, oparams) in zip(cb.seen,
                                                                                  ocb.seen):
            assert e == oe, what
            assert_rel(loss, oloss, dtype, f"{what}: callback {k} history", "history")
            assert_rel(params, oparams, dtype, f"{what}: callback {k} params", "params")
            assert len(val) == len(oval) and len(lrs) == len(olrs), what

    # what each case is there to exercise
    if name == "fraction-shuffle-early" or name == "fraction-noshuffle-mindelta":
        assert h.stop_reason == "early_stopping" and h.best_epoch is not None, (what, h)
        assert len(h.val_loss) == h.epochs, what
        # the restored parameters are those the callback saw after the best epoch
        assert_rel(net.params, cbs[0].seen[h.best_epoch][4], dtype, f"{what}: restored",
                   "params")
    if name == "validation-data-callback-stops":
        assert h.stop_reason == "callback" and h.epochs == 4, what
        # every callback runs every epoch, including the one whose true result stops training
        assert len(cbs[0].seen) == 4 and len(cbs[2].seen) == 4, what
    if name == "train-loss-monitored":
        assert h.val_loss == [] and h.best_epoch is not None, what
    if name == "fraction-rprop-no-early":
        assert h.stop_reason == "max_epochs" and h.best_epoch is None and h.epochs == 4, what


@pytest.mark.parametrize("shuffle", [True, False])
def test_validation_split_rows(shuffle):
    # The held-out rows: the tail of a fresh shuffle from the network's generator (after the
    # reseed), both parts in their original order; without shuffle, the last rows.
    n, fraction = 10, 0.3
    X = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    T = np.linspace(0, 1, n).reshape(n, 1)
    o = oracle.MLP([2, 1], seed=1)
    net = cprop.MLP([2, 1], seed=1)
    train, val = o._split_validation(X.tolist(), T.tolist(), fraction, shuffle)
    Xtr, Ttr = [X.tolist()[k] for k in train], [T.tolist()[k] for k in train]
    Xva, Tva = [X.tolist()[k] for k in val], [T.tolist()[k] for k in val]
    cX, cT, cw, cXv, cTv, cwv = net._split_validation(X, T, None, fraction, shuffle)
    assert cX.tolist() == Xtr and cT.tolist() == Ttr and cXv.tolist() == Xva
    assert cTv.tolist() == Tva and len(Xva) == 3 and cw is None and cwv is None
    # the generator as construction left it (two weights drawn)
    order = oracle.MLP([2, 1], seed=1).rng.shuffled_order(n) if shuffle else list(range(n))
    assert [int(r[0]) // 2 for r in Xva] == sorted(order[n - 3:])
    assert int(net._rng[0]) == o.rng.state


# --------------------------------------------------------------------------------------------
# Optimizer state carried over, reset, refused steps
# --------------------------------------------------------------------------------------------

CARRY_DATA = random.Random("carry")
CARRY_X = np.array([[CARRY_DATA.uniform(-2, 2) for _ in range(3)] for _ in range(7)])
CARRY_T = np.array([[CARRY_DATA.uniform(0, 1) for _ in range(2)] for _ in range(7)])
CARRY_LR = {"sgd": 0.3, "momentum": 0.1, "nesterov": 0.1, "adam": 0.02, "rprop": 0.01,
            "adamw": 0.02}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt_name", list(OPTIMIZER_CONFIGS))
def test_state_carries_over_between_fits(opt_name, dtype):
    # fit(epochs=1) twice == fit(epochs=2): the optimizer state (and the generator) carry over;
    # constant schedule, seed only at construction. Exact for each implementation; compiled vs
    # oracle within the tolerance.
    opts = dict(OPTIMIZER_CONFIGS[opt_name], alpha=1e-3)
    lr = CARRY_LR[opt_name]
    kw = dict(lr=lr, batch_size=3, shuffle=True, **opts)
    okw = dict(oracle_options(kw, dtype), lr=oracle_scalar(lr, dtype))
    sizes = [3, 4, 2]
    Xo, To = as_oracle(CARRY_X, dtype), as_oracle(CARRY_T, dtype)
    what = f"{opt_name} [{dtype}]"

    def pair():
        net = cprop.MLP(sizes, hidden="tanh", dtype=dtype, seed=3)
        o = oracle.MLP(sizes, hidden="tanh", dtype=dtype, seed=3)
        o.set_params_flat(net.params.astype(np.float64).tolist())
        return net, o

    a, oa = pair()
    b, ob = pair()
    h1, h2 = a.fit(CARRY_X, CARRY_T, epochs=1, **kw), a.fit(CARRY_X, CARRY_T, epochs=1, **kw)
    h12 = b.fit(CARRY_X, CARRY_T, epochs=2, **kw)
    assert np.array_equal(a.params, b.params), what
    assert np.array_equal(a._opt_state, b._opt_state) and a._opt_steps[0] == b._opt_steps[0]
    assert h1.loss + h2.loss == h12.loss and int(a._rng[0]) == int(b._rng[0]), what
    oh1, oh2 = oa.fit(Xo, To, epochs=1, **okw), oa.fit(Xo, To, epochs=1, **okw)
    oh12 = ob.fit(Xo, To, epochs=2, **okw)
    assert oa.params_flat() == ob.params_flat() and oa.opt_state == ob.opt_state, what
    assert oa.opt_steps == ob.opt_steps == 2 * 3 and oh1.loss + oh2.loss == oh12.loss, what
    assert oa.rng.state == ob.rng.state == int(a._rng[0]), what
    assert_rel(h12.loss, oh12.loss, dtype, f"{what}: history", "history")
    assert_same_params(a, oa, dtype, what)
    assert_same_state(a, oa, dtype, what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_state_shared_by_train_step_and_fit_and_reset_on_option_change(dtype):
    # One network through a sequence of calls; after each, the compiled state is the oracle's.
    sizes = [3, 5, 2]
    X, T = CARRY_X, CARRY_T / CARRY_T.sum(axis=1, keepdims=True)  # probability rows
    Xo, To = as_oracle(X, dtype), as_oracle(T, dtype)
    net = cprop.MLP(sizes, hidden="leaky_relu", output="softmax", loss="cross_entropy",
                    dtype=dtype, seed=4)
    o = oracle.MLP(sizes, hidden="leaky_relu", output="softmax", loss="cross_entropy",
                   dtype=dtype, seed=4, negative_slope=oracle_scalar(0.01, dtype))
    o.set_params_flat(net.params.astype(np.float64).tolist())
    calls = [  # (method, lr, options, does the state start fresh?)
        ("train_step", 0.02, dict(optimizer="adam"), True),
        ("fit", 0.02, dict(optimizer="adam", alpha=1e-3), False),       # alpha: kept
        ("train_step", 0.01, dict(optimizer="adam", beta1=0.8), True),  # beta1: fresh
        ("fit", 0.01, dict(optimizer="rprop"), True),
        ("fit", 0.5, dict(optimizer="rprop"), False),  # kept; step sizes not reset to 0.5
        ("train_step", 0.1, dict(optimizer="sgd", momentum=0.9), True),
        ("fit", 0.1, dict(optimizer="sgd", momentum=0.9), False),
        ("fit", 0.1, dict(optimizer="sgd", momentum=0.9, nesterov=True), True),
        ("train_step", 0.2, dict(optimizer="sgd"), True),
        ("fit", 0.02, dict(optimizer="adamw", alpha=0.1), True),
        ("train_step", 0.02, dict(optimizer="adamw", alpha=0.01), False),  # alpha: kept
        ("fit", 0.02, dict(optimizer="adam", alpha=0.01), True),  # adam is not adamw
    ]
    steps_before = 0
    for k, (method, lr, opts, fresh) in enumerate(calls):
        what = f"[{dtype}] call {k}: {method}(lr={lr}, {opts})"
        oopts = oracle_options(opts, dtype)
        olr = oracle_scalar(lr, dtype)
        if method == "fit":
            net.fit(X, T, epochs=2, lr=lr, batch_size=4, **opts)
            o.fit(Xo, To, epochs=2, lr=olr, batch_size=4, **oopts)
            taken = 2 * 2
        else:
            net.train_step(X, T, lr, **opts)
            o.train_step(Xo, To, olr, **oopts)
            taken = 1
        assert o.opt_steps == (0 if fresh else steps_before) + taken, what
        steps_before = o.opt_steps
        assert_same_params(net, o, dtype, what)
        assert_same_state(net, o, dtype, what)
        if opts["optimizer"] == "rprop" and not fresh:
            assert max(o.opt_state[o.n_params:]) < 0.5, what
    net.reset_optimizer()
    o.reset_optimizer()
    assert_same_state(net, o, dtype, "after reset_optimizer")


@pytest.mark.parametrize("dtype", DTYPES)
def test_rprop_step_sizes_start_at_the_lr_of_the_first_step_taken(dtype):
    # Rprop state on which no step has been taken yet -- after reset_optimizer(), or after a
    # refused first step -- takes the next call's lr as its step sizes (torch starts them at lr).
    sizes = [3, 4, 2]
    X, T = CARRY_X, CARRY_T
    Xo, To = as_oracle(X, dtype), as_oracle(T, dtype)
    bad_T = [[0.5, 1e200]] + CARRY_T[1:].tolist()  # the loss overflows (float64 only)
    net = cprop.MLP(sizes, dtype=dtype, seed=12)
    o = oracle.MLP(sizes, dtype=dtype, seed=12)
    o.set_params_flat(net.params.astype(np.float64).tolist())
    n = net.n_params
    for model, Xa, Ta in ((net, X, T), (o, Xo, To)):
        model.fit(Xa, Ta, epochs=1, lr=oracle_scalar(0.01, dtype), batch_size=7,
                  optimizer="rprop")
        model.reset_optimizer()
        model.train_step(Xa, Ta, oracle_scalar(0.03, dtype), optimizer="rprop")
    assert_same_params(net, o, dtype, "rprop after reset_optimizer")
    assert_same_state(net, o, dtype, "rprop after reset_optimizer")
    # one step from prev = 0: every step size is exactly the new lr
    assert np.all(net._opt_state[n:] == np.asarray(0.03, dtype=dtype))
    if dtype == "float64":
        for model in (net, o):
            model.reset_optimizer()
            with pytest.raises(FloatingPointError):
                model.train_step(X, bad_T, 0.05, optimizer="rprop")
            model.train_step(X, T, 0.02, optimizer="rprop")
        assert_same_params(net, o, dtype, "rprop after a refused first step")
        assert_same_state(net, o, dtype, "rprop after a refused first step")
        assert o.opt_state[n:] == [0.02] * n and o.opt_steps == 1


# A refused step is compared in float64 only: the oracle computes in double, where a float32
# overflow (values near 3.4e38) does not happen, so it cannot refuse the float32 path's steps.
REFUSALS = [(opt_name, kind) for opt_name in OPTIMIZER_CONFIGS for kind in ("loss", "update")
            if not (opt_name == "rprop" and kind == "update")]  # Rprop's steps are <= 50


def stepped_twins(opts: dict):
    """A 2-3-1 tanh/identity net and its oracle twin after two ordinary steps with ``opts`` (so
    that the optimizer state is not fresh), and the rows they took."""
    X = [[0.5, -1.0], [1.5, 0.25], [-0.5, 2.0]]
    T = [[0.2], [0.9], [0.4]]
    net = cprop.MLP([2, 3, 1], hidden="tanh", output="identity", seed=9)
    o = oracle.MLP([2, 3, 1], hidden="tanh", output="identity", seed=9)
    for _ in range(2):
        net.train_step(X, T, 0.01, **opts)
        o.train_step(X, T, 0.01, **opts)
    return net, o, X, T


@pytest.mark.parametrize("opt_name,kind", REFUSALS)
def test_refused_train_step(opt_name, kind):
    # A step whose loss is not finite, or whose update would overflow, is refused whole by both:
    # FloatingPointError; parameters, optimizer state and step counter unchanged.
    opts = OPTIMIZER_CONFIGS[opt_name]
    net, o, X, T = stepped_twins(opts)
    params, state, steps = net.params.copy(), net._opt_state.copy(), int(net._opt_steps[0])
    oparams, ostate = o.params_flat(), list(o.opt_state)
    if kind == "loss":  # (t - y)^2 / 2 overflows
        bad_T, lr = [[1e200], [0.5], [0.5]], 0.01
    else:  # lr * g (SGD) or lr / (1 - beta1^t) (Adam) overflows
        bad_T, lr = [[1e3], [1e3], [1e3]], 1e308
    for model in (net, o):
        with pytest.raises(FloatingPointError):
            model.train_step(X, bad_T, lr, **opts)
    assert np.array_equal(net.params, params) and o.params_flat() == oparams, kind
    assert np.array_equal(net._opt_state, state) and o.opt_state == ostate, kind
    assert int(net._opt_steps[0]) == o.opt_steps == steps == 2, kind
    assert net.params.tolist() == o.params_flat() and net._opt_state.tolist() == o.opt_state
    # and training goes on from there, identically
    net.train_step(X, T, 0.01, **opts)
    o.train_step(X, T, 0.01, **opts)
    assert_same_params(net, o, "float64", f"{opt_name}: after a refused step")
    assert_same_state(net, o, "float64", f"{opt_name}: after a refused step")


@pytest.mark.parametrize("opt_name", ["adam", "adamw"])
def test_adam_steps_near_the_overflow_bound_take_the_checked_pass(opt_name):
    # Adam's one-pass update runs only when bounds on |params|, |grad| and the moments prove
    # that no value can overflow; parameters near 1e300 fail that test, so those steps go
    # through the checked two-pass update, which must still give the oracle's bits (and then,
    # back at ordinary sizes, the one-pass update the same bits as the oracle again).
    opts = OPTIMIZER_CONFIGS[opt_name]
    net, o, X, T = stepped_twins(opts)
    big = np.array(o.params_flat())
    big[-1] = 5e300  # the output bias, over the bound; the outputs are then exactly 5e300, so
    net.params[:] = big  # with that target the loss is 0 and finite, and the moments move p
    o.set_params_flat(big.tolist())
    for _ in range(2):
        net.train_step(X, [[5e300]] * 3, 0.01, **opts)
        o.train_step(X, [[5e300]] * 3, 0.01, **opts)
        assert_same_params(net, o, "float64", f"{opt_name}: near the bound")
        assert_same_state(net, o, "float64", f"{opt_name}: near the bound")
    assert net.params[-1] != 5e300 or net.params[0] != big[0]  # the step did move something
    small = np.array(o.params_flat())
    small[-1] = 0.1
    net.params[:] = small
    o.set_params_flat(small.tolist())
    for _ in range(3):
        net.train_step(X, T, 0.01, **opts)
        o.train_step(X, T, 0.01, **opts)
    assert_same_params(net, o, "float64", f"{opt_name}: back to ordinary sizes")
    assert_same_state(net, o, "float64", f"{opt_name}: back to ordinary sizes")


@pytest.mark.parametrize("opt_name", list(OPTIMIZER_CONFIGS))
def test_refused_step_in_fit_names_the_epoch(opt_name):
    # The loss becomes non-finite in epoch 2: a callback writes huge weights after epoch 1.
    sizes = [2, 2, 1]
    X = [[0.5, -1.0], [1.5, 0.25], [-0.5, 2.0], [1.0, 1.0]]
    T = [[0.2], [0.9], [0.4], [0.1]]
    opts = OPTIMIZER_CONFIGS[opt_name]
    big = 1e300
    net = cprop.MLP(sizes, hidden="identity", output="identity", seed=2)
    o = oracle.MLP(sizes, hidden="identity", output="identity", seed=2)

    def blow_up(model, history):
        if isinstance(model, cprop.MLP):
            model.params[:4] = big  # the first layer's weights
        else:
            model.set_params_flat([big] * 4 + model.params_flat()[4:])

    histories = []
    for model in (net, o):
        with pytest.raises(FloatingPointError, match=r"epoch 2 of 3") as exc:
            model.fit(X, T, epochs=3, lr=0.01, batch_size=2, shuffle=False, callbacks=blow_up,
                      **opts)
        assert exc.value.history.epochs == 1, (opt_name, model)
        histories.append(exc.value.history.loss)
    assert_rel(histories[0], histories[1], "float64", f"{opt_name}: history before the error",
               "history")
    # nothing of epoch 2 was applied
    assert net.params.tolist() == o.params_flat() and net.params[0] == big, opt_name
    assert net._opt_state.tolist() == o.opt_state, opt_name
    assert int(net._opt_steps[0]) == o.opt_steps == 2, opt_name


# Regression: the kernel once computed Adam's beta ** t with Cython's complex power (cpow),
# 1 ulp off pow() at t = 4, 6, 15, ...; it now calls libc pow, like torch and the oracle.
def test_adam_bias_correction_is_real_pow_bit_for_bit():
    # Adam on one weight for 8 steps: float64 compiled and oracle are bit-identical only if
    # the kernel's beta ** t is the real power.
    compiled = cprop.MLP([1, 1], output="identity", init=[([[0.5]], [0.0])],
                         train_biases=False)
    o = oracle.MLP([1, 1], output="identity", init=[([[0.5]], [0.0])], train_biases=False)
    for t in range(1, 9):
        compiled.train_step([[1.0]], [[0.0]], 0.1, optimizer="adam")
        o.train_step([[1.0]], [[0.0]], 0.1, optimizer="adam")
        assert compiled.params.tolist() == o.params_flat(), f"Adam step t={t}"


# --------------------------------------------------------------------------------------------
# Pairing rules and argument errors
# --------------------------------------------------------------------------------------------

ALL_ACTS = ("sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax")


@pytest.mark.parametrize("loss", ["squared_error", "cross_entropy", "binary_cross_entropy",
                                  "hinge"])
def test_pairing_rules_match(loss):
    for hidden, output, n_out in itertools.product(ALL_ACTS, ALL_ACTS, (1, 2)):
        outcomes = []
        for cls in (cprop.MLP, oracle.MLP):
            try:
                cls([2, 3, n_out], hidden=hidden, output=output, loss=loss, seed=0)
                outcomes.append("ok")
            except ValueError:
                outcomes.append("ValueError")
        assert outcomes[0] == outcomes[1], (hidden, output, loss, n_out, outcomes)


def test_target_range_and_option_errors_match():
    X = [[0.1, 0.2], [0.3, 0.4]]
    for loss, output, T in (("cross_entropy", "softmax", [[0.5, 1.5], [0.0, 1.0]]),
                            ("binary_cross_entropy", "sigmoid", [[-0.1, 0.5], [0.0, 1.0]])):
        for cls in (cprop.MLP, oracle.MLP):
            with pytest.raises(ValueError):
                cls([2, 2], output=output, loss=loss, seed=0).loss(X, T)
    bad_options = [dict(optimizer="lbfgs"), dict(optimizer="adam", momentum=0.9),
                   dict(optimizer="sgd", nesterov=True), dict(momentum=1.0), dict(beta1=1.0),
                   dict(optimizer="adam", eps=0.0), dict(alpha=-1.0)]
    for opts in bad_options:
        for net in (cprop.MLP([2, 2], seed=0), oracle.MLP([2, 2], seed=0)):
            with pytest.raises(ValueError):
                net.train_step(X, [[0.0, 1.0], [1.0, 0.0]], 0.1, **opts)
    for kw in (dict(lr_schedule="linear"), dict(validation_fraction=1.0),
               dict(validation_fraction=0.5, validation_data=(X, [[0, 1], [1, 0]])),
               dict(min_delta=-1.0), dict(patience=0)):
        for net in (cprop.MLP([2, 2], seed=0), oracle.MLP([2, 2], seed=0)):
            with pytest.raises(ValueError):
                net.fit(X, [[0.0, 1.0], [1.0, 0.0]], **kw)
    for cls in (cprop.MLP, oracle.MLP):
        with pytest.raises(ValueError):
            cls([2, 2], hidden="leaky_relu", negative_slope=-0.5)
        with pytest.raises(ValueError):
            cls([2, 2], init="lecun_normal")


# --------------------------------------------------------------------------------------------
# The oracle's formulas, by hand
# --------------------------------------------------------------------------------------------

def test_oracle_formulas_by_hand():
    z = [1.0, -2.0, 0.5]
    y = oracle.softmax(z)
    e = [math.exp(v - 1.0) for v in z]
    assert y == [v / (e[0] + e[1] + e[2]) for v in e]
    assert oracle.activation("leaky_relu", -2.0, 0.1) == -0.2
    assert oracle.activation_derivative("leaky_relu", -0.2, 0.1) == 0.1
    assert oracle.activation_derivative("leaky_relu", 0.3, 0.1) == 1.0
    # cross-entropy from the logits is -sum t log y
    t = [0.2, 0.3, 0.5]
    E, delta = oracle.output_delta("cross_entropy", "softmax", y, z, t)
    assert E == pytest.approx(-sum(tk * math.log(yk) for tk, yk in zip(t, y)), rel=1e-15)
    assert delta == [yk - tk for yk, tk in zip(y, t)]
    # binary cross-entropy from the logits, and at extreme logits no log(0)
    E, _ = oracle.output_delta("binary_cross_entropy", "sigmoid", [oracle.sigmoid(2.0)], [2.0],
                               [0.25])
    s = oracle.sigmoid(2.0)
    assert E == pytest.approx(-(0.25 * math.log(s) + 0.75 * math.log(1 - s)), rel=1e-14)
    E, _ = oracle.output_delta("binary_cross_entropy", "sigmoid", [1.0], [1000.0], [0.0])
    assert E == 1000.0
    # schedules
    assert oracle.schedule_lr("invscaling", 0.1, 3, 10) == 0.1 / 2.0
    assert oracle.schedule_lr("step", 0.1, 25, 30) == 0.1 * 0.25
    assert oracle.schedule_lr("cosine", 0.1, 5, 10) == pytest.approx(0.05, rel=1e-15)
    assert oracle.schedule_lr("constant", 0.1, 5, 10) == 0.1


@pytest.mark.parametrize("impl", ["compiled", "oracle"])
def test_refused_step_keeps_the_previous_optimizer(impl):
    # Regression: a train_step with new optimizer options that is then refused used to leave a
    # fresh state of the new optimizer behind (the momentum buffer was lost).
    make = cprop.MLP if impl == "compiled" else oracle.MLP
    net = make([1, 1], output="identity", init=[([[0.5]], [0.0])], seed=0)
    for _ in range(3):
        net.train_step([[1.0]], [[0.0]], 0.1, momentum=0.9)
    state = list(net._opt_state) if impl == "compiled" else list(net.opt_state)
    with pytest.raises(FloatingPointError):
        net.train_step([[1.0], [2.0]], [[1e200], [0.0]], 0.1, optimizer="adam")
    assert net.optimizer.name == "sgd" and net.optimizer.momentum == 0.9
    after = list(net._opt_state) if impl == "compiled" else list(net.opt_state)
    assert after == state
    steps = int(net._opt_steps[0]) if impl == "compiled" else net.opt_steps
    assert steps == 3
