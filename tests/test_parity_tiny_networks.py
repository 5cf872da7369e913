"""One-sample SGD steps on tiny networks (every layer at most 4 wide, as the worked example's
2-2-2): the whole-step kernel of _tiny.h for one hidden layer in float64 (the step plan's
``tiny2_rows``), the one-row route for the others. They must give the oracle's numbers bit for
bit in float64 (same operations, same order), refuse a non-finite step whole as every other
route does, and hand a correct parameter bound to the minibatch steps that follow them in the
same epoch.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import cprop
from parity import RTOL, as_oracle, assert_rel, compiled_and_oracle, oracle_scalar

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
HEADS = (("sigmoid", "squared_error"), ("softmax", "cross_entropy"),
         ("sigmoid", "binary_cross_entropy"), ("identity", "squared_error"),
         ("softmax", "squared_error"))
TINY_SHAPES = [list(s) for s in itertools.product((1, 2, 3, 4), repeat=3)] + [
    [4, 1, 3, 2], [2, 2, 2, 2, 2], [3, 4, 4, 1], [1, 1]]


def _pair(sizes, dtype, k, train_biases):
    # k runs over 68 shapes: every hidden activation meets every output/loss pair.
    hidden = HIDDEN[k % len(HIDDEN)]
    output, loss = HEADS[(k // len(HIDDEN)) % len(HEADS)]
    if output == "softmax" and sizes[-1] == 1:
        output, loss = "sigmoid", "squared_error"
    if loss == "binary_cross_entropy" and sizes[-1] > 1 and k % 2:
        output, loss = "softmax", "cross_entropy"
    return compiled_and_oracle(sizes, dtype, hidden=hidden, output=output, loss=loss, seed=k,
                               train_biases=train_biases)


def _data(n, sizes, loss, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, size=(n, sizes[0]))
    if loss == "cross_entropy":  # soft labels: one-hot rows would hide t * (lse - z) slips
        T = rng.dirichlet(np.ones(sizes[-1]), size=n)
    else:
        T = rng.uniform(0.0, 1.0, size=(n, sizes[-1]))
    return X, T


@pytest.mark.parametrize("k, sizes", list(enumerate(TINY_SHAPES)))
def test_tiny_fit_is_the_oracle_bit_for_bit(k, sizes):
    train_biases = k % 3 != 0
    alpha = 0.01 if k % 4 == 1 else 0.0
    net, ref = _pair(sizes, "float64", k, train_biases)
    X, T = _data(9, sizes, ref.loss_name, k)
    before = net.params.copy()
    errors = []
    for run in (lambda: net.fit(X, T, epochs=3, lr=0.3, batch_size=1, shuffle=True, seed=k,
                                alpha=alpha),
                lambda: ref.fit(X.tolist(), T.tolist(), epochs=3, lr=0.3, batch_size=1,
                                shuffle=True, seed=k, alpha=alpha)):
        try:
            errors.append(run().loss)
        except FloatingPointError as exc:  # a diverging run: both refuse the same step
            errors.append(str(exc).split(":")[1].split(" with")[0])
    assert errors[0] == errors[1]
    np.testing.assert_array_equal(net.params, np.array(ref.params_flat()))
    assert np.max(np.abs(net.params - before)) > 1e-4  # it trained
    if not train_biases:
        for b0, b1 in zip(_pair(sizes, "float64", k, train_biases)[0].biases, net.biases):
            np.testing.assert_array_equal(b0, b1)


@pytest.mark.parametrize("k, sizes", list(enumerate(TINY_SHAPES))[::5])
def test_tiny_fit_float32_matches_oracle(k, sizes):
    net, ref = _pair(sizes, "float32", k, True)
    X, T = _data(9, sizes, ref.loss_name, k)
    Xd, Td = X.astype(np.float32), T.astype(np.float32)
    h = net.fit(Xd, Td, epochs=2, lr=0.3, batch_size=1, shuffle=False)
    hr = ref.fit(as_oracle(Xd, "float32"), as_oracle(Td, "float32"), epochs=2,
                 lr=oracle_scalar(0.3, "float32"), batch_size=1, shuffle=False)
    assert_rel(net.params, ref.params_flat(), RTOL["float32"], f"{sizes}: params")
    assert_rel(h.loss, hr.loss, RTOL["float32"], f"{sizes}: history")


@pytest.mark.parametrize("batch_size, n", [(2, 7), (4, 9), (3, 4)])
def test_tiny_steps_between_minibatch_steps(batch_size, n):
    # An odd last batch of one row takes the tiny step, which keeps no parameter bound; the
    # minibatch steps after it (next epoch) must take the bound afresh and stay exact.
    sizes = [3, 4, 2]
    net, ref = _pair(sizes, "float64", 2, True)
    X, T = _data(n, sizes, ref.loss_name, 11)
    h = net.fit(X, T, epochs=4, lr=0.2, batch_size=batch_size, shuffle=True, seed=3)
    hr = ref.fit(X.tolist(), T.tolist(), epochs=4, lr=0.2, batch_size=batch_size, shuffle=True,
                 seed=3)
    np.testing.assert_array_equal(net.params, np.array(ref.params_flat()))
    assert h.loss == hr.loss


@pytest.mark.parametrize("dtype, lr", [("float64", 1e308), ("float32", 3e38)])
@pytest.mark.parametrize("alpha, train_biases", [(0.0, True), (0.5, True), (0.5, False)])
def test_tiny_overflowing_update_is_refused_whole(dtype, lr, alpha, train_biases):
    net = cprop.MLP([2, 3, 1], hidden="tanh", output="identity", dtype=dtype, seed=1,
                    train_biases=train_biases)
    X = np.array([[1.0, -1.0], [0.5, 2.0], [0.1, 0.3]], dtype=dtype)
    T = np.full((3, 1), 50.0, dtype=dtype)
    # Two finite steps first, so the refused one is not the first of the epoch.
    net.fit(X[:2], T[:2], epochs=1, lr=0.01, batch_size=1, shuffle=False)
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match="update"):
        net.fit(X, T, epochs=1, lr=lr, batch_size=1, shuffle=False, alpha=alpha)
    np.testing.assert_array_equal(net.params, before)


def test_tiny_non_finite_loss_is_refused():
    # Outputs that overflow (identity output, huge weights) give an inf loss: refused, unchanged.
    net = cprop.MLP([2, 2, 1], hidden="identity", output="identity", seed=0)
    net.weights[0][:] = 1e200
    net.weights[1][:] = 1e200
    X = np.array([[1.0, 1.0]])
    T = np.array([[0.0]])
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match="loss"):
        net.fit(X, T, epochs=1, lr=0.1, batch_size=1, shuffle=False)
    np.testing.assert_array_equal(net.params, before)


EXP_HEADS = (("exp", "poisson"), ("exp", "squared_error"))


@pytest.mark.parametrize("k, sizes", list(enumerate(TINY_SHAPES))[::3])
def test_tiny_exp_output_is_the_oracle_bit_for_bit(k, sizes):
    # The exp output (loss="poisson" or squared_error) through the tiny whole-step kernel (one
    # hidden layer) and the one-row route (the others): the oracle's bits.
    output, loss = EXP_HEADS[k % 2]
    hidden = HIDDEN[k % len(HIDDEN)]
    net, ref = compiled_and_oracle(sizes, "float64", hidden=hidden, output=output, loss=loss,
                                   seed=k, train_biases=k % 3 != 0)
    rng = np.random.default_rng(k)
    X = rng.uniform(-1.0, 1.0, size=(9, sizes[0]))
    T = (rng.poisson(1.5, size=(9, sizes[-1])).astype(float) if loss == "poisson"
         else rng.uniform(0.0, 2.0, size=(9, sizes[-1])))
    h = net.fit(X, T, epochs=3, lr=0.05, batch_size=1, shuffle=True, seed=k)
    hr = ref.fit(X.tolist(), T.tolist(), epochs=3, lr=0.05, batch_size=1, shuffle=True, seed=k)
    assert h.loss == hr.loss
    np.testing.assert_array_equal(net.params, np.array(ref.params_flat()))
