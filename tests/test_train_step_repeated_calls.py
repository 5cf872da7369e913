"""Repeated ``MLP.train_step`` calls: a call that repeats the options of the last successful
step gives what the first call would give.

Such a call runs its checks in C (``_mlp.Stepper``). It must give bit-identical results to the
checked Python route, take the checked route (and so raise the same errors) for every input
that route would convert or refuse, and never change anything when it declines or when a step
is refused.
"""

from __future__ import annotations

import numpy as np
import pytest

import cprop

OPTIMIZERS = [
    dict(optimizer="sgd"),
    dict(optimizer="sgd", momentum=0.9),
    dict(optimizer="sgd", momentum=0.5, nesterov=True, alpha=0.01),
    dict(optimizer="adam"),
    dict(optimizer="adam", beta1=0.8, eps=1e-6, alpha=0.001),
    dict(optimizer="adamw", alpha=0.1),
    dict(optimizer="rprop"),
]
NETS = [
    dict(hidden="sigmoid", output="sigmoid", loss="squared_error"),
    dict(hidden="relu", output="softmax", loss="cross_entropy"),
    dict(hidden="tanh", output="sigmoid", loss="binary_cross_entropy"),
]


def checked_step(net, *args, **kwargs):
    """train_step with the fast route disarmed first: the checked route, always."""
    net._fast_step = None
    return net.train_step(*args, **kwargs)


def _data(n, n_in, n_out, loss, seed, dtype):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, n_in)).astype(dtype)
    if loss == "cross_entropy":
        T = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, size=n)]
    else:
        T = rng.uniform(0, 1, size=(n, n_out)).astype(dtype)
    return X, T


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("net_kw", NETS, ids=lambda k: k["loss"])
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=lambda k: "-".join(map(str, k.values())))
def test_fast_route_is_bit_identical_to_checked_route(opt, net_kw, dtype):
    sizes = [5, 7, 3]
    fast = cprop.MLP(sizes, dtype=dtype, seed=11, **net_kw)
    slow = cprop.MLP(sizes, dtype=dtype, seed=11, **net_kw)
    taken = 0
    for k, n in enumerate([1, 4, 4, 4, 1, 1, 300, 300, 4]):  # 300 > one block of rows
        X, T = _data(n, 5, 3, net_kw["loss"], seed=k, dtype=dtype)
        armed = fast._fast_step is not None
        loss_fast = fast.train_step(X, T, 0.05, **opt)
        loss_slow = checked_step(slow, X, T, 0.05, **opt)
        taken += armed
        assert loss_fast == loss_slow, k
        np.testing.assert_array_equal(fast.params, slow.params)
        np.testing.assert_array_equal(fast._opt_state, slow._opt_state)
        assert fast._opt_steps[0] == slow._opt_steps[0] == k + 1
    assert taken >= 6  # the fast route really ran (armed after every successful step)


def test_fast_route_is_taken_and_declines_without_side_effects(monkeypatch):
    net = cprop.MLP([2, 3, 2], seed=0)
    X, T = _data(3, 2, 2, "squared_error", 0, "float64")
    net.train_step(X, T, 0.1)
    fast = net._fast_step
    assert fast is not None
    before = net.params.copy()
    # Declined: the result is None and nothing changed.
    assert fast.step_if_same(X, T, 0.1, "adam", 0.0, False, 0.9, 0.999, 1e-8, 0.0, True) is None
    assert fast.step_if_same(X[:, :1].copy(), T, 0.1, "sgd", 0.0, False, 0.9, 0.999, 1e-8, 0.0,
                     True) is None
    assert fast.step_if_same(X, T, 1, "sgd", 0.0, False, 0.9, 0.999, 1e-8, 0.0, True) is None
    np.testing.assert_array_equal(net.params, before)
    assert net._opt_steps[0] == 1
    # Taken: a float loss, one more step.
    loss = fast.step_if_same(X, T, 0.1, "sgd", 0.0, False, 0.9, 0.999, 1e-8, 0.0, True)
    assert type(loss) is float and net._opt_steps[0] == 2
    assert not np.array_equal(net.params, before)


def _armed(dtype="float64", loss="squared_error", output="sigmoid"):
    net = cprop.MLP([3, 4, 2], output=output, loss=loss, dtype=dtype, seed=2)
    X, T = _data(5, 3, 2, loss, 1, dtype)
    net.train_step(X, T, 0.1)
    assert net._fast_step is not None
    return net, X, T


@pytest.mark.parametrize("case, exc, match", [
    ("nan_x", ValueError, "X: contains NaN"),
    ("inf_t", ValueError, "T: contains NaN"),
    ("t_shape", ValueError, "T: expected shape"),
    ("x_shape", ValueError, "X: expected shape"),
    ("empty", ValueError, "X: expected a non-empty array"),
    ("lr_negative", ValueError, "lr: expected a finite number > 0"),
    ("lr_nan", ValueError, "lr: expected a finite number > 0"),
    ("lr_str", TypeError, "lr: expected a finite number"),
    ("params_nan", ValueError, "params: the network's parameters contain NaN"),
    ("complex_x", TypeError, "X: expected real numbers"),
])
def test_fast_route_leaves_bad_input_to_the_checked_route(case, exc, match):
    net, X, T = _armed()
    lr = 0.1
    if case == "nan_x":
        X[1, 2] = np.nan
    elif case == "inf_t":
        T[0, 0] = np.inf
    elif case == "t_shape":
        T = T[:4]
    elif case == "x_shape":
        X = np.ones((5, 4))
    elif case == "empty":
        X, T = X[:0], T[:0]
    elif case == "lr_negative":
        lr = -0.1
    elif case == "lr_nan":
        lr = float("nan")
    elif case == "lr_str":
        lr = "0.1"
    elif case == "params_nan":
        net.weights[0][0, 0] = np.nan
    elif case == "complex_x":
        X = X.astype(complex)
    before = net.params.copy()
    steps = int(net._opt_steps[0])
    with pytest.raises(exc, match=match):
        net.train_step(X, T, lr)
    np.testing.assert_array_equal(net.params, before)
    assert net._opt_steps[0] == steps


@pytest.mark.parametrize("loss, output, bad, match", [
    ("cross_entropy", "softmax", "sum", "row 1 sums to"),
    ("cross_entropy", "softmax", "range", r"targets must lie in \[0, 1\]"),
    ("binary_cross_entropy", "sigmoid", "range", r"targets must lie in \[0, 1\]"),
])
def test_fast_route_leaves_invalid_targets_to_the_checked_route(loss, output, bad, match):
    net, X, T = _armed(loss=loss, output=output)
    T = T.copy()
    if bad == "sum":
        T[1] = [0.5, 0.4]
    else:
        T[2, 0] = 1.5
    with pytest.raises(ValueError, match=match):
        net.train_step(X, T, 0.1)


def test_float32_lr_that_overflows_float32_is_refused():
    net, X, T = _armed(dtype="float32")
    with pytest.raises(ValueError, match="lr: 1e\\+39 is inf in float32"):
        net.train_step(X, T, 1e39)


@pytest.mark.parametrize("variant", ["swapped", "strided", "subclass", "list", "float32_x",
                                     "int_labels", "one_sample", "column_targets"])
def test_inputs_the_fast_route_declines_still_train_identically(variant):
    # Converted by the checked route; the numbers must be those of the converted arrays.
    loss = "cross_entropy" if variant == "int_labels" else "squared_error"
    output = "softmax" if variant == "int_labels" else "sigmoid"
    n_out = 1 if variant == "column_targets" else 3
    a = cprop.MLP([4, 5, n_out], output=output, loss=loss, seed=3)
    b = cprop.MLP([4, 5, n_out], output=output, loss=loss, seed=3)
    X, T = _data(6, 4, n_out, loss, 4, "float64")
    a.train_step(X, T, 0.1)
    checked_step(b, X, T, 0.1)
    Xv, Tv = X, T
    if variant == "swapped":
        Xv = X.astype(X.dtype.newbyteorder())
    elif variant == "strided":
        Xv = np.asfortranarray(X)
    elif variant == "subclass":
        class Sub(np.ndarray):
            pass
        Xv = X.view(Sub)
    elif variant == "list":
        Xv = X.tolist()
    elif variant == "float32_x":
        Xv = X.astype(np.float32)
        X = Xv.astype(np.float64)
    elif variant == "int_labels":
        Tv = T.argmax(axis=1)
    elif variant == "one_sample":
        Xv, Tv = X[0], T[0]
        X, T = X[:1], T[:1]
    elif variant == "column_targets":
        Tv = T[:, 0].copy()
    for _ in range(2):
        assert a.train_step(Xv, Tv, 0.1) == checked_step(b, X, T, 0.1)
        np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("dtype, lr", [("float64", 1e308), ("float32", 3e38)])
def test_refused_step_on_the_fast_route_changes_nothing(dtype, lr):
    net = cprop.MLP([2, 3, 1], hidden="tanh", output="identity", dtype=dtype, seed=1)
    X = np.array([[1.0, -1.0], [0.5, 2.0]], dtype=dtype)
    T = np.full((2, 1), 50.0, dtype=dtype)
    net.train_step(X, T, 1e-3, optimizer="sgd", momentum=0.9)
    assert net._fast_step is not None
    before = (net.params.copy(), net._opt_state.copy(), int(net._opt_steps[0]))
    with pytest.raises(FloatingPointError, match="update"):
        net.train_step(X, T, lr, optimizer="sgd", momentum=0.9)
    np.testing.assert_array_equal(net.params, before[0])
    np.testing.assert_array_equal(net._opt_state, before[1])
    assert net._opt_steps[0] == before[2]


def test_option_changes_between_calls_follow_the_checked_rules():
    # Changing alpha keeps the state, changing the optimizer starts fresh, flipping
    # train_biases is honoured, and fit in between is seen - as on the checked route.
    a = cprop.MLP([3, 4, 2], seed=5)
    b = cprop.MLP([3, 4, 2], seed=5)
    X, T = _data(4, 3, 2, "squared_error", 9, "float64")
    calls = [
        dict(optimizer="sgd", momentum=0.9),
        dict(optimizer="sgd", momentum=0.9),
        dict(optimizer="sgd", momentum=0.9, alpha=0.1),
        dict(optimizer="adam"),
        dict(optimizer="adam"),
        "biases_off",
        dict(optimizer="adam"),
        "fit",
        dict(optimizer="adam"),
        dict(optimizer="rprop"),
        dict(optimizer="rprop"),
    ]
    for call in calls:
        if call == "biases_off":
            a.train_biases = b.train_biases = False
            continue
        if call == "fit":
            a.fit(X, T, epochs=2, lr=0.01, optimizer="adam", alpha=0.5, shuffle=False)
            b.fit(X, T, epochs=2, lr=0.01, optimizer="adam", alpha=0.5, shuffle=False)
            continue
        assert a.train_step(X, T, 0.05, **call) == checked_step(b, X, T, 0.05, **call)
        np.testing.assert_array_equal(a.params, b.params)
        np.testing.assert_array_equal(a._opt_state, b._opt_state)
        assert a.optimizer == b.optimizer


def test_reset_optimizer_disarms_the_fast_route():
    net, X, T = _armed()
    net.train_step(X, T, 0.1, optimizer="sgd", momentum=0.9)
    net.train_step(X, T, 0.1, optimizer="sgd", momentum=0.9)
    net.reset_optimizer()
    assert net._fast_step is None
    assert not net._opt_state.any()
