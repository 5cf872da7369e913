"""Gradients against finite differences for every hidden activation x every (output, loss) pairing.

tests/test_gradcheck.py checks squared_error with sigmoid/identity outputs; this file covers the
rest of the loss kernel (``output_delta``): squared_error through a softmax output (the softmax
Jacobian), cross_entropy with softmax, binary_cross_entropy with sigmoid, poisson and
squared_error with the exp output - each behind hidden
layers of every activation (sigmoid, tanh, relu, leaky_relu with slope 0.1, identity), float64,
SEEDS random networks per combination.

``net.gradients(X, T)`` must be the exact gradient of ``net.loss(X, T)``. For every parameter we
perturb ``net.params[k]`` in place (and restore it) and take the fourth-order central difference

    g_k ~ (-E(p + 2h e_k) + 8 E(p + h e_k) - 8 E(p - h e_k) + E(p - 2h e_k)) / (12 h),  h = 1e-4,

truncation error h**4 f^(5) / 30 ~ 1e-17, rounding error ~1.5 eps |E| / h ~ 3e-12 |E|. The bound
is norm-wise relative, ``max_k |g_k - fd_k| / max_k |fd_k| <= 1e-8`` (the existing file's
GRAD_RTOL); the losses here are O(1)-O(10) and the gradients O(0.1)-O(1), so rounding stays
near 1e-10 and a wrong gradient (another loss, a sum instead of a mean) is off by far more (see
test_finite_differences_tell_the_losses_apart).

ReLU and leaky ReLU have a kink at z = 0 where a finite difference means nothing. As in
test_gradcheck.py, cases drop the sample rows with some hidden |z| < KINK_MARGIN = 0.01 (a
perturbation of 2h = 2e-4 of one parameter moves z by far less for these inputs), and the test
asserts at every perturbed point that no relu/leaky_relu unit changed sides, so an FD across a
kink fails loudly instead of passing by luck.
"""

from __future__ import annotations

import numpy as np
import pytest

import cprop
from parity import (fd_gradient as _fd_gradient, flat_gradient as flat,
                    hidden_pre_activations, rel_err)

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
PAIRINGS = (
    ("sigmoid", "squared_error"),
    ("softmax", "squared_error"),
    ("identity", "squared_error"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
    ("exp", "poisson"),
    ("exp", "squared_error"),
)
SEEDS = range(4)
H = 1e-4
GRAD_RTOL = 1e-8
KINK_MARGIN = 1e-2
LEAKY_SLOPE = 0.1
KINKED = ("relu", "leaky_relu")


def make_targets(rng, output, loss, n, n_out, seed):
    """Targets of every kind the loss accepts: soft and hard, and (cross_entropy) class labels."""
    if loss == "cross_entropy":
        kind = seed % 3
        if kind == 0:
            return rng.dirichlet(np.ones(n_out), size=n)   # probability rows
        labels = rng.integers(0, n_out, size=n)
        if kind == 1:
            return np.eye(n_out)[labels]                   # one-hot rows
        return labels                                      # integer class labels
    if loss == "binary_cross_entropy":
        if seed % 2:
            return rng.integers(0, 2, size=(n, n_out)).astype(np.float64)
        return rng.uniform(0.0, 1.0, size=(n, n_out))
    if loss == "poisson":  # counts (zeros included) or rates
        if seed % 2:
            return rng.poisson(1.5, size=(n, n_out)).astype(np.float64)
        return rng.uniform(0.0, 3.0, size=(n, n_out))
    if output == "identity":
        return rng.normal(size=(n, n_out))
    return rng.uniform(0.0, 1.0, size=(n, n_out))


def make_case(hidden, output, loss, seed):
    """A random float64 network (random biases too) and data; relu rows near a kink dropped."""
    rng = np.random.default_rng([1234, seed, HIDDEN.index(hidden),
                                 PAIRINGS.index((output, loss))])
    n_hidden = 1 + seed % 3
    n_out = int(rng.integers(2, 6)) if output == "softmax" else int(rng.integers(1, 6))
    sizes = ([int(rng.integers(1, 6))] + [int(rng.integers(2, 7)) for _ in range(n_hidden)]
             + [n_out])
    n = int(rng.integers(2, 13))
    net = cprop.MLP(sizes, hidden=hidden, output=output, loss=loss,
                    seed=int(rng.integers(2**63)), negative_slope=LEAKY_SLOPE,
                    train_biases=bool(rng.integers(2)))
    for b in net.biases:
        b[:] = rng.uniform(-0.5, 0.5, size=b.shape)
    X = rng.uniform(-2.0, 2.0, size=(n + 12, sizes[0]))
    T = make_targets(rng, output, loss, n + 12, n_out, seed)
    if hidden in KINKED:
        keep = np.all([np.all(np.abs(z) >= KINK_MARGIN, axis=1)
                       for z in hidden_pre_activations(net, X)], axis=0)
        X, T = X[keep], T[keep]
    X, T = X[:n], T[:n]  # n rows (12 spares cover the ones dropped near a kink)
    assert X.shape[0] >= 1
    return net, X, T


def kink_sides(net, X):
    if net.hidden not in KINKED:
        return None
    return [z > 0 for z in hidden_pre_activations(net, X)]


def fd_gradient(net, X, T):
    """The FD gradient of net.loss over every entry of net.params (perturbed in place)."""
    return _fd_gradient(net, X, T, kink_sides, H, f"raise KINK_MARGIN ({net.hidden})")


def case_error(hidden, output, loss, seed):
    net, X, T = make_case(hidden, output, loss, seed)
    before = net.params.copy()
    g = flat(*net.gradients(X, T))
    fd = fd_gradient(net, X, T)
    assert np.array_equal(net.params, before), f"{net!r}: params not restored"
    return net, X, g, fd


CASES = [pytest.param(h, o, lo, s, id=f"{h}-{o}-{lo}-{s}")
         for h in HIDDEN for o, lo in PAIRINGS for s in SEEDS]


@pytest.mark.parametrize("hidden,output,loss,seed", CASES)
def test_gradients_match_finite_differences(hidden, output, loss, seed):
    net, X, g, fd = case_error(hidden, output, loss, seed)
    what = f"{net!r} n={X.shape[0]}"
    assert g.dtype == np.float64
    err = rel_err(g, fd)
    worst = int(np.argmax(np.abs(g - fd)))
    assert err <= GRAD_RTOL, (
        f"{what}: gradients vs finite differences, relative error {err:.3e} > {GRAD_RTOL:g} "
        f"(worst parameter {worst}: {g[worst]!r} vs FD {fd[worst]!r})")
    # an all-zero gradient would pass trivially against an all-zero FD: not here
    assert np.max(np.abs(fd)) > 1e-6, what


def test_cases_cover_depths_and_both_sides_of_the_kinks():
    for h in KINKED:
        depths = set()
        negative = positive = 0
        for o, lo in PAIRINGS:
            for s in SEEDS:
                net, X, _ = make_case(h, o, lo, s)
                depths.add(len(net.layer_sizes) - 2)
                assert net.negative_slope == LEAKY_SLOPE
                zs = hidden_pre_activations(net, X)
                assert min(float(np.min(np.abs(z))) for z in zs) >= KINK_MARGIN
                negative += sum(int(np.sum(z < 0)) for z in zs)
                positive += sum(int(np.sum(z > 0)) for z in zs)
        assert depths == {1, 2, 3}
        # both branches occur often, so leaky_relu's slope and relu's zero are exercised
        assert negative > 50 and positive > 50, (h, negative, positive)


def test_class_label_targets_are_one_hot_rows():
    # seed 2 of cross_entropy uses integer labels; they give the loss/gradients of one-hot rows
    net, X, labels = make_case("tanh", "softmax", "cross_entropy", 2)
    assert labels.dtype.kind == "i"
    one_hot = np.eye(net.layer_sizes[-1])[labels]
    assert net.loss(X, labels) == net.loss(X, one_hot)
    assert np.array_equal(flat(*net.gradients(X, labels)), flat(*net.gradients(X, one_hot)))


@pytest.mark.parametrize("output,loss,other_output,other_loss", [
    ("softmax", "cross_entropy", "softmax", "squared_error"),
    ("softmax", "squared_error", "identity", "squared_error"),
    ("sigmoid", "binary_cross_entropy", "sigmoid", "squared_error"),
    ("exp", "poisson", "exp", "squared_error"),
], ids=["ce-vs-softmax_se", "softmax_se-vs-identity_se", "bce-vs-sigmoid_se",
        "poisson-vs-exp_se"])
def test_finite_differences_tell_the_losses_apart(output, loss, other_output, other_loss):
    # The check has teeth: the gradient of another loss on the same parameters, or of the sum
    # over samples instead of the mean, is rejected by orders of magnitude.
    net, X, g, fd = case_error("tanh", output, loss, 1)
    assert rel_err(g, fd) <= GRAD_RTOL
    other = cprop.MLP(net.layer_sizes, hidden="tanh", output=other_output, loss=other_loss,
                      init=list(zip(net.weights, net.biases)))
    T = make_case("tanh", output, loss, 1)[2]
    assert rel_err(flat(*other.gradients(X, T)), fd) > 100 * GRAD_RTOL
    assert rel_err(g * X.shape[0], fd) > 100 * GRAD_RTOL
