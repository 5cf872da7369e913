"""Gradients against finite differences of the loss, for the compiled network and the oracle.

``net.gradients(X, T)`` must be the exact gradient of ``net.loss(X, T)``. For every parameter
``p_k`` we perturb ``net.params[k]`` in place (and restore it) and take the fourth-order central
difference

    g_k ~ (-E(p + 2h e_k) + 8 E(p + h e_k) - 8 E(p - h e_k) + E(p - 2h e_k)) / (12 h),  h = 1e-4,

whose truncation error is h**4 f^(5) / 30 ~ 1e-17 and whose rounding error is about
1.5 eps |E| / h ~ 3e-12 |E| (eps = 2**-52).

Bound: the norm-wise relative error ``max_k |g_k - fd_k| / max_k |fd_k|`` must be at most
``GRAD_RTOL = 1e-8``. Measured (make_case over all 8 activation pairs): on 3000 networks the
worst was 9.6e-11 (max absolute error 1.3e-10), on this file's 40 cases 2.5e-11, so the bound
leaves a factor of 100. The plain central difference with h = 1e-6 reaches 4.9e-9 on 800 of
the same networks, too close to a useful bound, hence the fourth-order stencil. A wrong
gradient is off by orders of magnitude more (one layer's gradient scaled by 1.01, or one sample
left out: see test_finite_differences_detect_a_wrong_gradient).

ReLU: the loss has kinks where a hidden pre-activation z is 0, and a finite difference across a
kink is meaningless. Rather than skipping a case, relu cases drop the sample rows that have some
|z| < RELU_MARGIN = 0.01 in a relu layer (a perturbation of 2h = 2e-4 moves z by far less), and
the test then asserts, at every perturbed point, that no relu unit changed sides, so an FD
across a kink fails loudly instead of passing by luck.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

import cprop
from parity import fd4, fd_gradient, flat_gradient as flat, hidden_pre_activations, rel_err
from cprop import oracle

HIDDEN = ("sigmoid", "tanh", "relu", "identity")
OUTPUT = ("sigmoid", "identity")
PAIRS = list(itertools.product(HIDDEN, OUTPUT))
SEEDS_PER_PAIR = 5
H = 1e-4
GRAD_RTOL = 1e-8
RELU_MARGIN = 1e-2


def make_case(hidden, output, seed):
    """A random float64 network (random biases too) and data; relu rows near a kink dropped."""
    rng = random.Random(f"{hidden}-{output}-{seed}")
    depth = rng.randint(1, 4) if seed == 0 else rng.randint(2, 4)  # seed 0: maybe no hidden layer
    sizes = [rng.randint(1, 9) for _ in range(depth + 1)]
    n = rng.randint(1, 17)
    net = cprop.MLP(sizes, hidden=hidden, output=output, seed=rng.getrandbits(64),
                    train_biases=rng.random() < 0.5)
    for b in net.biases:
        b[:] = [rng.uniform(-0.5, 0.5) for _ in range(b.shape[0])]
    X = np.array([[rng.uniform(-2.0, 2.0) for _ in range(sizes[0])] for _ in range(n + 8)])
    T = np.array([[rng.uniform(0.0, 1.0) for _ in range(sizes[-1])] for _ in range(n + 8)])
    if hidden == "relu" and depth > 1:
        zs = hidden_pre_activations(net, X)
        keep = np.all([np.all(np.abs(z) >= RELU_MARGIN, axis=1) for z in zs], axis=0)
        X, T = X[keep], T[keep]
    # n rows (8 spares cover the ones a relu network drops)
    X, T = X[:n], T[:n]
    assert X.shape[0] >= 1
    return net, X, T


def relu_sides(net, X):
    if net.hidden != "relu":
        return None
    return [z > 0 for z in hidden_pre_activations(net, X)]


def compiled_fd_gradient(net, X, T):
    """The FD gradient of net.loss over every entry of net.params (perturbed in place)."""
    return fd_gradient(net, X, T, relu_sides, H, "raise RELU_MARGIN")


CASES = [pytest.param(h, o, s, id=f"{h}-{o}-{s}") for h, o in PAIRS for s in range(SEEDS_PER_PAIR)]


@pytest.mark.parametrize("hidden,output,seed", CASES)
def test_compiled_gradients_match_finite_differences(hidden, output, seed):
    net, X, T = make_case(hidden, output, seed)
    what = f"{net!r} n={X.shape[0]}"
    before = net.params.copy()
    gW, gb = net.gradients(X, T)
    g = flat(gW, gb)
    fd = compiled_fd_gradient(net, X, T)
    assert np.array_equal(net.params, before), f"{what}: params not restored"
    err = rel_err(g, fd)
    assert err <= GRAD_RTOL, (
        f"{what}: gradients vs finite differences, relative error {err:.3e} > {GRAD_RTOL:g} "
        f"(worst parameter {int(np.argmax(np.abs(g - fd)))}: {g[np.argmax(np.abs(g - fd))]!r} "
        f"vs FD {fd[np.argmax(np.abs(g - fd))]!r})")
    # a gradient that is all zeros would pass trivially against an all-zero FD: not here
    assert np.max(np.abs(fd)) > 1e-6, what


def test_relu_cases_are_away_from_kinks():
    # The relu cases above really are relu networks with hidden layers, and keep some rows.
    for s in range(1, SEEDS_PER_PAIR):
        net, X, T = make_case("relu", "identity", s)
        zs = hidden_pre_activations(net, X)
        assert zs and all(np.min(np.abs(z)) >= RELU_MARGIN for z in zs)
        assert any(np.any(z > 0) for z in zs) and any(np.any(z < 0) for z in zs)


ORACLE_CASES = [pytest.param(h, o, id=f"{h}-{o}") for h, o in PAIRS]


@pytest.mark.parametrize("hidden,output", ORACLE_CASES)
def test_oracle_gradients_match_finite_differences(hidden, output):
    net, X, T = make_case(hidden, output, 1)
    o = oracle.MLP(net.layer_sizes, hidden=hidden, output=output, seed=0)
    o.set_params_flat(net.params.tolist())
    Xo, To = X.tolist(), T.tolist()
    gW, gb = o.gradients(Xo, To)
    g = flat(gW, gb)
    base = o.params_flat()
    fd = np.empty(len(base))
    for k in range(len(base)):
        def loss_at(v, k=k):
            p = list(base)
            p[k] = v
            o.set_params_flat(p)
            return o.loss(Xo, To)

        fd[k] = fd4(loss_at, base[k], H)
    o.set_params_flat(base)
    err = rel_err(g, fd)
    assert err <= GRAD_RTOL, f"oracle {o!r}: gradients vs FD, relative error {err:.3e}"
    assert np.max(np.abs(fd)) > 1e-6
    # and the compiled gradient of the same network is the oracle's (the float64 parity bound)
    assert rel_err(flat(*net.gradients(X, T)), g) <= 1e-12


def test_finite_differences_detect_a_wrong_gradient():
    # The check has teeth: scaling one layer's gradient by 1.01, or dropping one sample's
    # contribution, is caught by a wide margin.
    net, X, T = make_case("tanh", "sigmoid", 2)
    fd = compiled_fd_gradient(net, X, T)
    g = flat(*net.gradients(X, T))
    assert rel_err(g, fd) <= GRAD_RTOL
    wrong = g.copy()
    n_first = net.layer_sizes[0] * net.layer_sizes[1]
    wrong[:n_first] *= 1.01
    assert rel_err(wrong, fd) > 100 * GRAD_RTOL
    if X.shape[0] > 1:
        g_short = flat(*net.gradients(X[1:], T[1:]))
        assert rel_err(g_short, fd) > 100 * GRAD_RTOL
