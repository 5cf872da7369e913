"""The step plan: which route a minibatch takes, that every route computes the general route's
step, and that a whole ``fit`` in one kernel call equals the same fit cut into per-epoch calls.

The routes and why each exists are the table in ``_kernels/_mlp.pyx``'s design block; turning
a route off (``cprop.mlp._DISABLED_ROUTES``, read when a network is built) sends its batches to
the next row of that table.
"""

from __future__ import annotations

import numpy as np
import pytest

import cprop
import cprop.mlp
import cprop.oracle
from cprop.optimizers import OptimizerOptions
from parity import BLAS_ALWAYS, BLAS_NEVER, as_oracle, oracle_options

ROUTES = ("tiny2_rows", "row_sgd", "fused_sgd")
SGD = OptimizerOptions()


def build(monkeypatch, sizes, *, disabled=(), blas=None, **kw):
    monkeypatch.setattr(cprop.mlp, "_DISABLED_ROUTES", frozenset(disabled))
    if blas is not None:
        monkeypatch.setattr(cprop.mlp, "_BLAS_MIN_WORK", BLAS_ALWAYS if blas else BLAS_NEVER)
    return cprop.MLP(sizes, **kw)


def data(sizes, n, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, sizes[0])).astype(dtype)
    T = rng.uniform(0, 1, (n, sizes[-1])).astype(dtype)
    return X, T


@pytest.mark.parametrize("sizes, rows, options, stateless, is_double, blas, expected", [
    ([2, 2, 2], 1, SGD, True, True, False, "tiny2_rows"),
    ([4, 3, 4], 1, SGD, True, True, False, "tiny2_rows"),
    ([2, 2, 2], 1, SGD, True, False, False, "row_sgd"),       # float32
    ([2, 2, 2, 2], 1, SGD, True, True, False, "row_sgd"),     # two hidden layers
    ([5, 2, 2], 1, SGD, True, True, False, "row_sgd"),        # wider than 4
    ([2, 2, 2], 1, OptimizerOptions("sgd", momentum=0.9), False, True, False, "general"),
    ([2, 2, 2], 1, OptimizerOptions("adam"), False, True, False, "general"),
    ([2, 2, 2], 3, SGD, True, True, False, "general"),
    ([30, 40, 5], 32, SGD, True, True, True, "fused_sgd"),
    ([30, 40, 5], 300, SGD, True, True, True, "general"),     # more rows than one block
    ([30, 40, 5], 32, OptimizerOptions("adam"), False, True, True, "general"),
    ([30, 40, 5], 32, SGD, True, True, False, "general"),     # not every layer through gemm
])
def test_route_table(monkeypatch, sizes, rows, options, stateless, is_double, blas, expected):
    net = build(monkeypatch, sizes, blas=blas, seed=0)
    assert net._plan.route(rows, options, stateless, is_double) == expected


@pytest.mark.parametrize("route", ROUTES)
def test_a_disabled_route_is_never_chosen(monkeypatch, route):
    sizes = {"fused_sgd": [30, 40, 5], "row_sgd": [6, 5, 3], "tiny2_rows": [2, 2, 2]}[route]
    rows = 32 if route == "fused_sgd" else 1
    on = build(monkeypatch, sizes, blas=route == "fused_sgd", seed=0)
    off = build(monkeypatch, sizes, disabled={route}, blas=route == "fused_sgd", seed=0)
    assert on._plan.route(rows, SGD, True, True) == route
    assert off._plan.route(rows, SGD, True, True) != route


ONE_ROW_CASES = [
    (sizes, act)
    for sizes in ([2, 2, 2], [3, 4, 1], [2, 3, 3, 2], [6, 5, 3])
    for act in (("sigmoid", "sigmoid", "squared_error"), ("tanh", "softmax", "cross_entropy"),
                ("leaky_relu", "sigmoid", "binary_cross_entropy"),
                ("relu", "identity", "squared_error"))
    if not (act[1] == "softmax" and sizes[-1] < 2)  # softmax needs two outputs
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, act", ONE_ROW_CASES)
def test_one_row_routes_give_the_general_routes_bits(monkeypatch, sizes, act, dtype):
    # Every one-row route against the general route, over whole fits: the same bits.
    hidden, output, loss = act
    X, T = data(sizes, 23, dtype)
    if loss == "cross_entropy":
        T = np.eye(sizes[-1], dtype=dtype)[np.arange(23) % sizes[-1]]
    kw = dict(hidden=hidden, output=output, loss=loss, dtype=dtype, seed=3,
              train_biases=sizes[0] != 3)
    nets = [build(monkeypatch, sizes, disabled=d, **kw)
            for d in ((), {"tiny2_rows"}, set(ROUTES))]
    hist = [net.fit(X, T, epochs=4, lr=0.3, batch_size=1, alpha=0.01 if sizes[0] == 6 else 0.0,
                    seed=11) for net in nets]
    for net, h in zip(nets[1:], hist[1:]):
        assert net.params.tobytes() == nets[0].params.tobytes()
        assert h.loss == hist[0].loss


def test_fused_route_agrees_with_the_general_route(monkeypatch):
    # The fused step folds the update into gemm, so it differs from the general route only by
    # rounding.
    sizes = [30, 40, 5]
    X, T = data(sizes, 200)
    a = build(monkeypatch, sizes, blas=True, seed=4)
    b = build(monkeypatch, sizes, blas=True, disabled={"fused_sgd"}, seed=4)
    ha = a.fit(X, T, epochs=3, lr=0.1, batch_size=32, seed=1)
    hb = b.fit(X, T, epochs=3, lr=0.1, batch_size=32, seed=1)
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-12)


@pytest.mark.parametrize("sizes, batch_size, optimizer", [
    ([2, 2, 1], 1, "sgd"), ([5, 7, 3], 1, "sgd"), ([5, 7, 3], 4, "adam"), ([5, 7, 3], 3, "rprop"),
    ([5, 7, 3], 2, "adamw"),
])
def test_one_call_fit_equals_per_epoch_calls(sizes, batch_size, optimizer):
    # Without callbacks the whole fit is one kernel call; with one (that never stops) the kernel
    # runs one epoch per call. Same network, same bits.
    X, T = data(sizes, 17)
    a = cprop.MLP(sizes, seed=5)
    b = cprop.MLP(sizes, seed=5)
    kw = dict(epochs=6, lr=0.2, batch_size=batch_size, optimizer=optimizer, seed=9,
              lr_schedule="invscaling")
    ha = a.fit(X, T, **kw)
    hb = b.fit(X, T, callbacks=[lambda net, history: False], **kw)
    assert a.params.tobytes() == b.params.tobytes()
    assert ha.loss == hb.loss and ha.lr == hb.lr and len(ha.loss) == 6


def test_xor_in_one_call_matches_the_oracle():
    # The README's "Ten lines" case, 4 rows x many epochs in one call, against the oracle.
    X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    T = [[0.0], [1.0], [1.0], [0.0]]
    net = cprop.MLP([2, 4, 1], hidden="tanh", output="sigmoid", seed=0)
    o = cprop.oracle.MLP([2, 4, 1], hidden="tanh", output="sigmoid", seed=0)
    h = net.fit(np.array(X), np.array(T), epochs=300, lr=0.5, batch_size=1, shuffle=True)
    ho = o.fit(X, T, epochs=300, lr=0.5, batch_size=1, shuffle=True)
    assert h.loss == ho.loss
    assert net.params.tolist() == [v for W, b in zip(o.weights, o.biases)
                                   for v in [x for row in W for x in row] + list(b)]


def test_a_schedule_error_raises_after_the_epochs_before_it():
    # lr_schedule's rate for epoch 3 overflows: epochs 1-2 train (in one call), then it raises.
    class Bad(cprop.schedules.Schedule):
        def lr(self, base_lr, epoch, epochs):
            return base_lr if epoch < 2 else float("inf")

    X, T = data([2, 2, 1], 8)
    net = cprop.MLP([2, 2, 1], seed=0)
    ref = cprop.MLP([2, 2, 1], seed=0)
    ref.fit(X, T, epochs=2, lr=0.1, seed=1)
    with pytest.raises(ValueError, match=r"lr_schedule \(epoch 3"):
        net.fit(X, T, epochs=5, lr=0.1, seed=1, lr_schedule=Bad())
    assert net.params.tobytes() == ref.params.tobytes()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("opt", [{}, {"optimizer": "sgd", "momentum": 0.9, "alpha": 1e-3},
                                 {"optimizer": "adam"}])
def test_stepper_is_train_step(dtype, opt):
    # net.stepper(lr, **options)(x, t) is train_step(x, t, lr, **options): the same bits, the
    # same optimizer state, and the oracle's numbers.
    sizes = [2, 3, 2]
    X, T = data(sizes, 9, dtype)
    a = cprop.MLP(sizes, dtype=dtype, seed=2)
    b = cprop.MLP(sizes, dtype=dtype, seed=2)
    o = cprop.oracle.MLP(sizes, dtype=dtype, seed=2)
    step = a.stepper(0.25, **opt)
    for k in range(9):
        la = step(X[k], T[k])
        lb = b.train_step(X[k], T[k], 0.25, **opt)
        lo = o.train_step(as_oracle(X[k], dtype), as_oracle(T[k], dtype), 0.25,
                          **oracle_options(opt, dtype))
        assert la == lb
        if dtype == "float64":
            assert la == lo
    assert a.params.tobytes() == b.params.tobytes()
    # continues with train_step on the same state; a whole batch's loss is the oracle's mean
    la = a.train_step(X, T, 0.25, **opt)
    assert la == b.train_step(X, T, 0.25, **opt)
    lo = o.train_step(as_oracle(X, dtype), as_oracle(T, dtype), 0.25, **oracle_options(opt, dtype))
    if dtype == "float64":
        assert la == lo


def test_stepper_falls_back_and_follows_the_network():
    net = cprop.MLP([2, 2, 1], seed=0)
    ref = cprop.MLP([2, 2, 1], seed=0)
    step = net.stepper(0.5, optimizer="sgd", momentum=0.5)
    # lists are converted by the checked route
    assert step([0.1, 0.2], [1.0]) == ref.train_step([0.1, 0.2], [1.0], 0.5, momentum=0.5)
    # a different optimizer replaces the state; the stepper switches back (fresh state) and
    # keeps working from there
    net.train_step([0.1, 0.2], [1.0], 0.5, optimizer="adam")
    ref.train_step([0.1, 0.2], [1.0], 0.5, optimizer="adam")
    assert not step.current
    x, t = np.array([0.3, -0.1]), np.array([0.0])
    assert step(x, t) == ref.train_step(x, t, 0.5, momentum=0.5)
    assert step.current
    assert step(x, t) == ref.train_step(x, t, 0.5, momentum=0.5)
    assert net.params.tobytes() == ref.params.tobytes()


def test_stepper_raises_the_checked_routes_errors():
    net = cprop.MLP([2, 2, 1], hidden="identity", output="identity", seed=0)
    step = net.stepper(0.5)
    with pytest.raises(ValueError, match="X"):
        step(np.array([0.1, np.nan]), np.array([1.0]))
    with pytest.raises(ValueError):
        step(np.zeros(3), np.array([1.0]))
    with pytest.raises(ValueError, match="lr"):
        net.stepper(-1.0)
    net.weights[0][:] = 1e200
    net.weights[1][:] = 1e200
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match="train_step"):
        step(np.array([1e150, 1e150]), np.array([1.0]))
    assert net.params.tobytes() == before.tobytes()


def test_stepper_takes_the_c_route_for_the_batch_size_it_last_saw():
    # A stepper starts sized for one row; a call with another batch size takes the checked route
    # once, then calls of that size run in C - with the bits train_step gives.
    sizes = [3, 5, 2]
    X, T = data(sizes, 12)
    a = cprop.MLP(sizes, seed=4)
    b = cprop.MLP(sizes, seed=4)
    step = a.stepper(0.1, optimizer="adam")
    assert step.step(X[:4], T[:4], 0.1) is None          # sized for 1 row: declined, no change
    assert a.params.tobytes() == b.params.tobytes()
    for k in range(3):
        batch = slice(4 * k, 4 * k + 4)
        assert step(X[batch], T[batch]) == b.train_step(X[batch], T[batch], 0.1,
                                                        optimizer="adam")
    assert step.step(X[:4], T[:4], 0.1) == b.train_step(X[:4], T[:4], 0.1, optimizer="adam")
    assert a.params.tobytes() == b.params.tobytes()


def test_run_steps_checks_its_arguments():
    net = cprop.MLP([2, 3, 1], seed=0)
    X, T = data([2, 3, 1], 6)
    sgd = OptimizerOptions()
    adam = OptimizerOptions("adam")
    ok_state = adam.fresh_state(net.n_params, net.dtype, 0.1)
    steps = np.zeros(1, dtype=np.int64)
    with pytest.raises(TypeError, match="optimizer: expected a cprop.optimizers.Optimizer"):
        net.run_steps(X, T, 0.1, 2, "adam", ok_state, steps)
    with pytest.raises(ValueError, match="state: expected a C-contiguous float64 array of 26"):
        net.run_steps(X, T, 0.1, 2, adam, ok_state[:-1], steps)
    with pytest.raises(ValueError, match="steps: expected a one-element int64 array"):
        net.run_steps(X, T, 0.1, 2, adam, ok_state, np.zeros(1))
    for order, what in [(np.array([0, 6]), "every index must be a row of X"),
                        (np.array([-1, 0]), "every index must be a row of X"),
                        (np.array([0.0, 1.0]), "non-empty 1-D array of row indices"),
                        (np.array([True, False]), "non-empty 1-D array of row indices"),
                        (np.zeros(0, dtype=int), "non-empty 1-D array of row indices"),
                        (np.zeros((2, 2), dtype=int), "non-empty 1-D array of row indices")]:
        with pytest.raises(ValueError, match=f"order: .*{what}"):
            net.run_steps(X, T, 0.1, 2, sgd, sgd.fresh_state(net.n_params, net.dtype, 0.1),
                          steps, order=order)
    with pytest.raises(ValueError, match="lr"):
        net.run_steps(X, T, -1.0, 2, adam, ok_state, steps)
    with pytest.raises(ValueError, match="batch_size"):
        net.run_steps(X, T, 0.1, 0, adam, ok_state, steps)
    # nothing above changed the network or the caller's state
    assert net.params.tobytes() == cprop.MLP([2, 3, 1], seed=0).params.tobytes()
    assert not ok_state.any() and steps[0] == 0


def test_run_steps_with_an_order_is_fit_over_those_rows():
    # run_steps(order=...) visits exactly the rows given: the same as a fit over the gathered
    # rows in order (same state, one epoch).
    sizes = [3, 4, 2]
    X, T = data(sizes, 10)
    order = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.intp)
    a = cprop.MLP(sizes, seed=6)
    b = cprop.MLP(sizes, seed=6)
    opt = OptimizerOptions("sgd", momentum=0.5)
    state = opt.fresh_state(a.n_params, a.dtype, 0.2)
    steps = np.zeros(1, dtype=np.int64)
    failure, loss, _, l2 = a.run_steps(X, T, 0.2, 3, opt, state, steps, order=order)
    h = b.fit(X[order], T[order], epochs=1, lr=0.2, batch_size=3, shuffle=False,
              optimizer="sgd", momentum=0.5)
    assert failure == 0 and l2 == 0.0 and steps[0] == 3
    assert loss == h.loss[0]
    assert a.params.tobytes() == b.params.tobytes()
