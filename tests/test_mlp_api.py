"""The public API contract of cprop.MLP (DESIGN.md "Public API" and "Training semantics")."""

from __future__ import annotations

import math
import re
import threading

import numpy as np
import pytest

import cprop
from cprop import oracle
from cprop.mlp import History
from parity import same_bits

SIZES = [3, 5, 4, 2]
_rng = np.random.default_rng(2024)
X = _rng.normal(size=(7, 3))
T = _rng.uniform(size=(7, 2))

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_T = np.array([0, 1, 1, 0], dtype=np.float64)


def np_act(name, z):
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    return z


def np_dact(name, a):
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


def np_forward_all(net, X):
    acts = [np.asarray(X, dtype=np.float64)]
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        acts.append(np_act(net.activations[l], acts[-1] @ W + b))
    return acts


def np_gradients(net, X, T):
    acts = np_forward_all(net, X)
    n = X.shape[0]
    L = len(net.weights)
    delta = (acts[-1] - T) * np_dact(net.activations[-1], acts[-1])
    gw, gb = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        gw[l] = acts[l].T @ delta / n
        gb[l] = delta.sum(axis=0) / n
        if l > 0:
            delta = (delta @ net.weights[l].T) * np_dact(net.activations[l - 1], acts[l])
    return gw, gb


def flat_grad(gw, gb):
    return np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(gw, gb)])


# ------------------------------------------------------------------------------------------------
# parameters: one buffer, views into it
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_params_is_one_contiguous_buffer_with_views(dtype):
    net = cprop.MLP(SIZES, seed=1, dtype=dtype)
    p = net.params
    assert isinstance(p, np.ndarray) and p.ndim == 1 and p.flags.c_contiguous
    assert p.flags.writeable
    n_params = sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:]))
    assert p.size == n_params == net.n_params == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2
    assert p.dtype == np.dtype(dtype)
    assert len(net.weights) == len(net.biases) == 3
    for l, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        W, b = net.weights[l], net.biases[l]
        assert W.shape == (n_in, n_out) and b.shape == (n_out,)
        assert np.shares_memory(W, p) and np.shares_memory(b, p)
        assert W.flags.writeable and b.flags.writeable
    # the layout: per layer, W row-major, then b
    expected = np.concatenate([np.concatenate([W.ravel(), b])
                               for W, b in zip(net.weights, net.biases)])
    assert same_bits(expected, p)


def test_writing_views_changes_the_network():
    net = cprop.MLP([2, 3, 1], seed=1)
    W0 = np.array([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]])
    net.weights[0][:] = W0
    net.biases[0][:] = [0.01, 0.02, 0.03]
    net.weights[1][:] = [[1.0], [-1.0], [2.0]]
    net.biases[1][:] = -0.5
    x = np.array([[0.3, -0.7]])
    h = 1 / (1 + np.exp(-(x @ W0 + [0.01, 0.02, 0.03])))
    y = 1 / (1 + np.exp(-(h @ [[1.0], [-1.0], [2.0]] - 0.5)))
    np.testing.assert_allclose(net.forward(x), y, rtol=1e-14)
    # the flat buffer sees the same numbers
    np.testing.assert_array_equal(net.params[:6], W0.ravel())
    np.testing.assert_array_equal(net.params[6:9], [0.01, 0.02, 0.03])
    # and writing through params changes weights
    net.params[0] = 9.0
    assert net.weights[0][0, 0] == 9.0
    assert net.forward(x)[0, 0] != y[0, 0]


def test_single_element_write_changes_forward():
    net = cprop.MLP(SIZES, seed=3)
    y0 = net.forward(X)
    net.weights[2][1, 0] += 0.25
    y1 = net.forward(X)
    assert not np.array_equal(y0[:, 0], y1[:, 0])
    np.testing.assert_array_equal(y0[:, 1], y1[:, 1])     # column 1 does not use W[:, 0]
    net.weights[2][1, 0] -= 0.25
    np.testing.assert_array_equal(net.forward(X), y0)


def test_item_assignment_on_weights_raises():
    net = cprop.MLP(SIZES, seed=1)
    before = net.params.copy()
    with pytest.raises(TypeError):
        net.weights[0] = np.zeros((3, 5))
    with pytest.raises(TypeError):
        net.biases[0] = np.zeros(5)
    assert same_bits(net.params, before)
    np.testing.assert_array_equal(net.weights[0], before[:15].reshape(3, 5))


def test_views_survive_training():
    net = cprop.MLP(SIZES, seed=1)
    W, b, p = net.weights[1], net.biases[2], net.params
    net.fit(X, T, epochs=3, lr=0.3)
    net.train_step(X, T, 0.3)
    assert net.params is p or np.shares_memory(net.params, p)
    np.testing.assert_array_equal(W, net.weights[1])
    np.testing.assert_array_equal(b, net.biases[2])
    assert np.shares_memory(W, net.params)


# ------------------------------------------------------------------------------------------------
# forward, loss, gradients
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("output", ["sigmoid", "identity"])
def test_forward_matches_numpy(hidden, output):
    net = cprop.MLP(SIZES, hidden=hidden, output=output, seed=7)
    y = net.forward(X)
    assert y.shape == (7, 2) and y.dtype == np.float64
    np.testing.assert_allclose(y, np_forward_all(net, X)[-1], rtol=0, atol=1e-12)


def test_there_is_no_predict_alias_of_forward():
    # MLP.predict returned probabilities (an alias of forward) where scikit-learn users expect
    # labels; it was removed (CHANGELOG), in the oracle too. The estimators' predict stays.
    from cprop import oracle
    from cprop.sklearn import MLPClassifier

    assert not hasattr(cprop.MLP, "predict") and not hasattr(oracle.MLP, "predict")
    with pytest.raises(AttributeError):
        cprop.MLP(SIZES, seed=1).predict(X)
    assert callable(MLPClassifier.predict)


def test_forward_2d_equals_row_by_row_across_blocks():
    # 600 rows: more than one block of rows inside the kernel
    rng = np.random.default_rng(5)
    Xb = rng.normal(size=(600, 3))
    net = cprop.MLP(SIZES, hidden="tanh", seed=2)
    Y = net.forward(Xb)
    rows = np.stack([net.forward(x) for x in Xb])
    # Blocks big enough for BLAS gemm sum in BLAS's own order, so batch and row-by-row results
    # may differ in the last bit (they are bit-identical on the tight-loop path).
    np.testing.assert_allclose(Y, rows, rtol=1e-15, atol=0)
    np.testing.assert_allclose(Y, np_forward_all(net, Xb)[-1], rtol=0, atol=1e-12)


def test_no_hidden_layer():
    net = cprop.MLP([3, 2], output="identity", seed=0)
    np.testing.assert_allclose(net.forward(X), X @ net.weights[0] + net.biases[0],
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", [1, 7, 600])
def test_loss_is_mean_of_half_squared_error_sum(n):
    rng = np.random.default_rng(n)
    Xn, Tn = rng.normal(size=(n, 3)), rng.uniform(size=(n, 2))
    net = cprop.MLP(SIZES, hidden="tanh", seed=3)
    Y = np_forward_all(net, Xn)[-1]
    expected = np.mean(np.sum(0.5 * (Tn - Y) ** 2, axis=1))
    loss = net.loss(Xn, Tn)
    assert isinstance(loss, float)
    assert loss == pytest.approx(expected, rel=1e-12)
    # not divided by the number of outputs (scikit-learn's convention differs)
    assert loss != pytest.approx(expected / 2, rel=1e-3)


def test_loss_on_the_seed_example():
    net = cprop.MLP([2, 2, 2], seed=0)
    net.weights[0][:] = [[0.15, 0.20], [0.25, 0.30]]
    net.biases[0][:] = 0.30
    net.weights[1][:] = [[0.40, 0.50], [0.45, 0.50]]
    net.biases[1][:] = 0.70
    y = net.forward([0.05, 0.10])
    assert y.shape == (2,)
    assert round(float(y[1]), 4) == 0.7830
    t = np.array([0.01, 0.99])
    assert net.loss([0.05, 0.10], t) == pytest.approx(float(np.sum(0.5 * (t - y) ** 2)),
                                                     rel=1e-15)


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "identity"])
def test_gradients_match_numpy_backprop(hidden):
    net = cprop.MLP(SIZES, hidden=hidden, seed=4)
    gw, gb = net.gradients(X, T)
    assert isinstance(gw, list) and isinstance(gb, list)
    rw, rb = np_gradients(net, X, T)
    for g, r, W in zip(gw, rw, net.weights):
        assert g.shape == W.shape
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-15)
    for g, r, b in zip(gb, rb, net.biases):
        assert g.shape == b.shape
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-15)


def test_gradients_are_fresh_arrays():
    net = cprop.MLP(SIZES, seed=4)
    gw1, gb1 = net.gradients(X, T)
    keep = flat_grad(gw1, gb1).copy()
    net.gradients(X[:3] * 2, T[:3])
    net.fit(X, T, epochs=2)
    assert same_bits(flat_grad(gw1, gb1), keep)
    assert not any(np.shares_memory(g, net.params) for g in gw1 + gb1)


# ------------------------------------------------------------------------------------------------
# train_step
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("lr", [0.5, 0.03])
def test_train_step_is_exactly_one_sgd_step(dtype, lr):
    net = cprop.MLP(SIZES, hidden="tanh", seed=8, dtype=dtype)
    p0 = net.params.copy()
    loss0 = net.loss(X, T)
    g = flat_grad(*net.gradients(X, T))
    returned = net.train_step(X, T, lr)
    assert isinstance(returned, float)
    assert returned == loss0                               # the loss BEFORE the step
    assert net.params.dtype == np.dtype(dtype)
    assert same_bits(net.params, p0 - np.dtype(dtype).type(lr) * g)
    assert net.loss(X, T) < loss0


def test_train_step_without_biases():
    net = cprop.MLP(SIZES, seed=8, train_biases=False)
    b0 = [b.copy() for b in net.biases]
    W0 = [W.copy() for W in net.weights]
    gw, gb = net.gradients(X, T)
    assert all(np.abs(g).max() > 1e-6 for g in gb)          # biases still get gradients
    net.train_step(X, T, 0.5)
    for b, b_old in zip(net.biases, b0):
        assert same_bits(b, b_old)
    for W, W_old, g in zip(net.weights, W0, gw):
        assert same_bits(W, W_old - 0.5 * g)
    net.fit(X, T, epochs=3, lr=0.5)
    for b, b_old in zip(net.biases, b0):
        assert same_bits(b, b_old)
    gw2, gb2 = net.gradients(X, T)
    assert all(np.abs(g).max() > 1e-6 for g in gb2)


# ------------------------------------------------------------------------------------------------
# fit
# ------------------------------------------------------------------------------------------------

def test_fit_returns_history():
    net = cprop.MLP(SIZES, seed=2)
    h = net.fit(X, T, epochs=5, lr=0.2)
    assert isinstance(h, History)
    assert h.epochs == 5 and len(h.loss) == 5
    assert all(isinstance(v, float) and math.isfinite(v) for v in h.loss)
    h1 = net.fit(X, T)                                     # defaults: one epoch
    assert h1.epochs == 1


def test_fit_defaults_are_per_sample_sgd():
    # fit(X, T) == fit(X, T, epochs=1, lr=0.1, batch_size=1, shuffle=True, seed=None)
    a, b = cprop.MLP(SIZES, seed=9), cprop.MLP(SIZES, seed=9)
    ha = a.fit(X, T)
    hb = b.fit(X, T, epochs=1, lr=0.1, batch_size=1, shuffle=True, seed=None)
    assert ha.loss == hb.loss and same_bits(a.params, b.params)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7])
def test_fit_equals_train_steps_in_order(batch_size):
    # shuffle=False: batches of consecutive rows, the last one smaller with its own mean; the
    # history is the batch losses weighted by batch size, over n.
    fitted = cprop.MLP(SIZES, seed=5)
    stepped = cprop.MLP(SIZES, seed=5)
    h = fitted.fit(X, T, epochs=2, lr=0.4, batch_size=batch_size, shuffle=False)
    n = len(X)
    for e in range(2):
        total = 0.0
        for s in range(0, n, batch_size):
            count = min(batch_size, n - s)
            total += stepped.train_step(X[s:s + count], T[s:s + count], 0.4) * count
        assert h.loss[e] == total / n
    assert same_bits(fitted.params, stepped.params)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_fit_shuffle_order_is_splitmix_fisher_yates(batch_size):
    # fit(seed=k) reseeds; each epoch's order is a fresh Fisher-Yates shuffle from SplitMix64.
    fitted = cprop.MLP(SIZES, seed=5)
    stepped = cprop.MLP(SIZES, seed=5)
    h = fitted.fit(X, T, epochs=3, lr=0.4, batch_size=batch_size, seed=123)
    rng = oracle.SplitMix64(123)
    n = len(X)
    for e in range(3):
        order = rng.shuffled_order(n)
        total = 0.0
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            total += stepped.train_step(X[idx], T[idx], 0.4) * len(idx)
        assert h.loss[e] == total / n
    assert same_bits(fitted.params, stepped.params)


def test_fit_same_seed_is_bit_identical():
    a, b = cprop.MLP(SIZES, seed=77), cprop.MLP(SIZES, seed=77)
    ha = a.fit(X, T, epochs=20, lr=0.3, batch_size=2)
    hb = b.fit(X, T, epochs=20, lr=0.3, batch_size=2)
    assert ha.loss == hb.loss
    assert same_bits(a.params, b.params)
    # and a different seed gives a different run (so the comparison above can fail)
    c = cprop.MLP(SIZES, seed=78)
    hc = c.fit(X, T, epochs=20, lr=0.3, batch_size=2)
    assert hc.loss != ha.loss


def test_seed_none_is_kept_and_reproducible():
    net = cprop.MLP(SIZES)
    assert isinstance(net.seed, int) and 0 <= net.seed < 2**64
    again = cprop.MLP(SIZES, seed=net.seed)
    assert same_bits(net.params, again.params)
    h1 = net.fit(X, T, epochs=4, lr=0.3)
    h2 = again.fit(X, T, epochs=4, lr=0.3)
    assert h1.loss == h2.loss and same_bits(net.params, again.params)
    seeds = {cprop.MLP(SIZES).seed for _ in range(4)}
    assert len(seeds) == 4                                 # drawn from the OS each time


def test_fit_seed_reseeds_the_generator():
    a = cprop.MLP(SIZES, seed=1)
    b = cprop.MLP(SIZES, seed=2)
    b.params[:] = a.params                                  # same start, different generators
    ha = a.fit(X, T, epochs=5, lr=0.3, seed=42)
    hb = b.fit(X, T, epochs=5, lr=0.3, seed=42)
    assert ha.loss == hb.loss and same_bits(a.params, b.params)
    # without a seed their generators (consumed identically since the reseed) still agree
    assert a.fit(X, T, epochs=2).loss == b.fit(X, T, epochs=2).loss
    # while two unseeded generators from different construction seeds disagree
    c, d = cprop.MLP(SIZES, seed=1), cprop.MLP(SIZES, seed=2)
    d.params[:] = c.params
    c.fit(X, T, epochs=5, lr=0.3)
    d.fit(X, T, epochs=5, lr=0.3)
    assert not same_bits(c.params, d.params)


def test_fit_matches_oracle_initial_weights_and_shuffles():
    net = cprop.MLP(SIZES, hidden="tanh", seed=31)
    o = oracle.MLP(SIZES, hidden="tanh", seed=31)
    assert net.params.tolist() == o.params_flat()
    h = net.fit(X.tolist(), T.tolist(), epochs=3, lr=0.2, batch_size=2)
    ho = o.fit(X.tolist(), T.tolist(), epochs=3, lr=0.2, batch_size=2)
    np.testing.assert_allclose(h.loss, ho.loss, rtol=1e-13)
    np.testing.assert_allclose(net.params, o.params_flat(), rtol=1e-12, atol=1e-15)


def test_fit_in_pieces_equals_one_fit():
    a, b = cprop.MLP(SIZES, seed=6), cprop.MLP(SIZES, seed=6)
    h1 = a.fit(X, T, epochs=1, lr=0.3, batch_size=2, shuffle=False)
    h2 = a.fit(X, T, epochs=1, lr=0.3, batch_size=2, shuffle=False)
    hb = b.fit(X, T, epochs=2, lr=0.3, batch_size=2, shuffle=False)
    assert h1.loss + h2.loss == hb.loss
    assert same_bits(a.params, b.params)
    # with shuffling too: the generator carries over between fit calls
    c, d = cprop.MLP(SIZES, seed=6), cprop.MLP(SIZES, seed=6)
    hc = c.fit(X, T, epochs=1, lr=0.3, seed=4).loss + c.fit(X, T, epochs=2, lr=0.3).loss
    hd = d.fit(X, T, epochs=3, lr=0.3, seed=4).loss
    assert hc == hd and same_bits(c.params, d.params)


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
def test_fit_learns_xor(hidden):
    # seed 0 reaches loss < 0.01 for both hidden activations (tanh ~2e-4, sigmoid ~1e-3)
    net = cprop.MLP([2, 4, 1], hidden=hidden, output="sigmoid", seed=0)
    before = net.loss(XOR_X, XOR_T)
    h = net.fit(XOR_X, XOR_T, epochs=2000, lr=0.5, seed=0)
    assert h.epochs == 2000
    assert before > 0.1
    assert h.loss[-1] < 0.01
    assert net.loss(XOR_X, XOR_T) < 0.01
    assert h.loss[-1] < h.loss[100] < h.loss[0]
    y = net.forward(XOR_X).ravel()
    assert np.all((y > 0.5) == (XOR_T > 0.5)), y


def test_batch_size_larger_than_data():
    a, b, c = (cprop.MLP(SIZES, seed=6) for _ in range(3))
    ha = a.fit(X, T, epochs=3, lr=0.3, batch_size=1000, shuffle=False)
    hb = b.fit(X, T, epochs=3, lr=0.3, batch_size=len(X), shuffle=False)
    assert ha.loss == hb.loss and same_bits(a.params, b.params)
    losses = [c.train_step(X, T, 0.3) for _ in range(3)]
    assert ha.loss == losses and same_bits(a.params, c.params)
    # shuffled: one batch per epoch still (its mean only depends on the order of summation)
    d = cprop.MLP(SIZES, seed=6)
    hd = d.fit(X, T, epochs=3, lr=0.3, batch_size=1000, shuffle=True, seed=1)
    np.testing.assert_allclose(hd.loss, ha.loss, rtol=1e-13)
    np.testing.assert_allclose(d.params, a.params, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------------
# initialisation, dtype
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", [[2, 2, 2], [3, 5, 4, 2], [50, 30, 1], [1, 1]])
def test_glorot_uniform_init(dtype, sizes):
    net = cprop.MLP(sizes, seed=12, dtype=dtype)
    for W, b in zip(net.weights, net.biases):
        n_in, n_out = W.shape
        limit = math.sqrt(6.0 / (n_in + n_out))
        assert np.all(np.abs(W) <= np.dtype(dtype).type(limit))
        assert np.all(b == 0)
        if W.size >= 100:
            assert np.abs(W).max() > 0.9 * limit
            assert abs(W.mean()) < 0.2 * limit
    ref = np.array(oracle.MLP(sizes, seed=12).params_flat())
    assert same_bits(net.params, ref.astype(dtype))


def test_float32_network_stays_float32():
    net = cprop.MLP(SIZES, seed=3, dtype="float32")
    X32, T32 = X.astype(np.float32), T.astype(np.float32)
    assert net.params.dtype == np.float32
    assert all(W.dtype == np.float32 for W in net.weights + net.biases)
    assert net.forward(X32).dtype == np.float32
    assert net.forward(X32[0]).dtype == np.float32
    gw, gb = net.gradients(X32, T32)
    assert all(g.dtype == np.float32 for g in gw + gb)
    assert isinstance(net.loss(X32, T32), float)
    net.train_step(X32, T32, 0.1)
    net.fit(X32, T32, epochs=2)
    assert net.params.dtype == np.float32
    # and it computes the same function as the float64 network, to float32 precision
    ref = cprop.MLP(SIZES, seed=3)
    ref.params[:] = net.params
    np.testing.assert_allclose(net.forward(X32), ref.forward(X32), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# divergence
# ------------------------------------------------------------------------------------------------

def test_fit_divergence_raises_floating_point_error():
    rng = np.random.default_rng(3)
    Xd = rng.uniform(-1e3, 1e3, size=(64, 3))
    Td = rng.uniform(-1e3, 1e3, size=(64, 1))
    net = cprop.MLP([3, 8, 1], hidden="tanh", output="identity", seed=0)
    with pytest.raises(FloatingPointError) as info:
        net.fit(Xd, Td, epochs=5, lr=1e3)
    msg = str(info.value)
    assert re.search(r"epoch \d+", msg), msg
    assert re.search(r"lr\s*=?\s*1000", msg), msg


def test_train_step_divergence_leaves_network_unchanged():
    net = cprop.MLP([1, 1], output="identity", seed=0)
    net.params[:] = [1e200, 0.0]
    before = net.params.copy()
    with pytest.raises(FloatingPointError) as info:
        net.train_step([[1e200]], [[0.0]], 0.1)              # loss = 1/2 (1e400)^2 = inf
    assert "lr" in str(info.value)
    assert same_bits(net.params, before)


OVERFLOWING_STEPS = {
    # (dtype, params, x, t, lr): a finite loss whose update overflows the parameters
    "float64": ("float64", [1.0, 0.0], [[1e150]], [[0.0]], 1e10),
    "float32": ("float32", [1.0, 0.0], [[1e10]], [[0.0]], 1e30),
    "float32_lr_beyond_float32": ("float32", [0.5, 0.1], [[1.0]], [[0.0]], 1e39),
}


@pytest.mark.parametrize("case", list(OVERFLOWING_STEPS))
@pytest.mark.parametrize("method", ["train_step", "fit"])
def test_update_that_overflows_params_is_refused(case, method):
    # A step whose update turns parameters into inf/NaN must be reported (FloatingPointError,
    # or a ValueError naming lr) and not applied, instead of returning normally with a network
    # that every later call refuses ("params: ... NaN or infinity").
    dtype, params, x, t, lr = OVERFLOWING_STEPS[case]
    net = cprop.MLP([1, 1], output="identity", seed=0, dtype=dtype)
    net.params[:] = params
    before = net.params.copy()
    try:
        if method == "train_step":
            net.train_step(x, t, lr)
        else:
            net.fit(x, t, epochs=1, lr=lr)
    except FloatingPointError:
        assert same_bits(net.params, before)
        return
    except ValueError as exc:
        assert "lr" in str(exc)
        assert same_bits(net.params, before)
        return
    assert np.isfinite(net.params).all(), net.params


# ------------------------------------------------------------------------------------------------
# threads
# ------------------------------------------------------------------------------------------------

def _thread_data(seed, n=256):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 16)), rng.uniform(size=(n, 4))


def _run_threads(*targets):
    errors = []
    barrier = threading.Barrier(len(targets))

    def wrap(f):
        def run():
            try:
                barrier.wait()
                f()
            except BaseException as exc:   # pragma: no cover - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(f)) for f in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
        assert not th.is_alive()
    assert not errors, errors


def test_fit_two_networks_in_two_threads_equals_sequential():
    XA, TA = _thread_data(1)
    XB, TB = _thread_data(2)
    kw = dict(epochs=60, lr=0.05, batch_size=4)
    sa, sb = cprop.MLP([16, 32, 4], seed=1), cprop.MLP([16, 32, 4], hidden="tanh", seed=2)
    ha_seq = sa.fit(XA, TA, seed=10, **kw).loss
    hb_seq = sb.fit(XB, TB, seed=20, **kw).loss
    ta, tb = cprop.MLP([16, 32, 4], seed=1), cprop.MLP([16, 32, 4], hidden="tanh", seed=2)
    out = {}
    _run_threads(lambda: out.__setitem__("a", ta.fit(XA, TA, seed=10, **kw).loss),
                 lambda: out.__setitem__("b", tb.fit(XB, TB, seed=20, **kw).loss))
    assert out["a"] == ha_seq and out["b"] == hb_seq
    assert same_bits(ta.params, sa.params) and same_bits(tb.params, sb.params)


def test_fit_same_network_from_two_threads_is_serialised():
    XA, TA = _thread_data(3)
    XB, TB = _thread_data(4)
    kw = dict(epochs=60, lr=0.05, batch_size=4)

    def fit_a(net):
        return net.fit(XA, TA, seed=10, **kw).loss

    def fit_b(net):
        return net.fit(XB, TB, seed=20, **kw).loss

    ab = cprop.MLP([16, 32, 4], seed=5)
    ab_a, ab_b = fit_a(ab), fit_b(ab)
    ba = cprop.MLP([16, 32, 4], seed=5)
    ba_b, ba_a = fit_b(ba), fit_a(ba)
    assert not same_bits(ab.params, ba.params)

    for _ in range(3):
        shared = cprop.MLP([16, 32, 4], seed=5)
        out = {}
        _run_threads(lambda out=out, shared=shared: out.__setitem__("a", fit_a(shared)),
                     lambda out=out, shared=shared: out.__setitem__("b", fit_b(shared)),
                     lambda out=out, shared=shared: out.__setitem__("y", shared.forward(XA)))
        assert np.isfinite(out["y"]).all()
        if same_bits(shared.params, ab.params):
            assert out["a"] == ab_a and out["b"] == ab_b
        else:
            assert same_bits(shared.params, ba.params), "params match neither serial order"
            assert out["a"] == ba_a and out["b"] == ba_b


def test_forward_and_train_step_from_many_threads():
    XA, TA = _thread_data(5, n=64)
    net = cprop.MLP([16, 32, 4], seed=5)
    ref = cprop.MLP([16, 32, 4], seed=5)
    y_ref = ref.forward(XA)
    results = []
    _run_threads(*[lambda: results.append(net.forward(XA)) for _ in range(4)])
    assert all(same_bits(y, y_ref) for y in results)
    _run_threads(*[lambda: net.train_step(XA, TA, 0.01) for _ in range(4)])
    for _ in range(4):
        ref.train_step(XA, TA, 0.01)
    assert same_bits(net.params, ref.params)        # each step saw the previous one's result
