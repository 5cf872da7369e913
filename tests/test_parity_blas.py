"""The BLAS (gemm) path of the kernels for wide layers, against the tight loops and the oracle.

A layer block of rows * n_in * n_out >= cprop.mlp._BLAS_MIN_WORK multiply-adds goes through
gemm; the random-network parity tests use narrow layers (the loop path), so this file forces
each path on wide networks and compares both with the plain-Python oracle.
"""

import numpy as np
import pytest

import cprop
from cprop import oracle
from parity import RTOL, assert_rel, flat_gradient, oracle_scalar, sync_oracle


def build(kernel_path, path, sizes, dtype, **kw):
    kernel_path(path)
    return cprop.MLP(sizes, dtype=dtype, **kw)


CASES = [
    # sizes, hidden, output, loss, n, batch
    ([40, 32, 20], "tanh", "sigmoid", "squared_error", 70, 64),
    ([33, 17, 9, 5], "relu", "softmax", "cross_entropy", 300, 300),
    ([24, 48, 6], "leaky_relu", "sigmoid", "binary_cross_entropy", 50, 7),
    ([20, 20, 20, 20], "sigmoid", "identity", "squared_error", 260, 260),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_blas_and_loops_agree_with_oracle(kernel_path, case, dtype):
    sizes, hidden, output, loss, n, batch = CASES[case]
    rng = np.random.default_rng(case)
    X = rng.normal(size=(n, sizes[0]))
    if output == "softmax":
        T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    else:
        T = rng.uniform(size=(n, sizes[-1]))
    kw = dict(hidden=hidden, output=output, loss=loss, seed=case + 10)
    blas = build(kernel_path, "blas", sizes, dtype, **kw)
    loops = build(kernel_path, "loops", sizes, dtype, **kw)
    o = oracle.MLP(sizes, **kw)
    sync_oracle(blas, o)
    Xo = X.astype(dtype).astype(np.float64).tolist()
    To = T.astype(dtype).astype(np.float64).tolist()
    tol = RTOL[dtype]
    paths = {"blas": blas, "loops": loops}

    y_o = o.forward(Xo)
    for path, net in paths.items():
        assert_rel(net.forward(X), y_o, tol, f"{path} [{dtype}]: forward")
        assert_rel(net.loss(X, T), o.loss(Xo, To), tol, f"{path} [{dtype}]: loss")
    flat_o = flat_gradient(*o.gradients(Xo, To))
    for path, net in paths.items():
        assert_rel(flat_gradient(*net.gradients(X, T)), flat_o, tol,
                   f"{path} [{dtype}]: gradient")
    # training: a shuffled fit with minibatches (blocks of `batch` rows) and Adam
    lr = 0.01
    h_o = o.fit(Xo, To, epochs=2, lr=oracle_scalar(lr, dtype), batch_size=batch,
                optimizer="adam", seed=3)
    for path, net in paths.items():
        h = net.fit(X, T, epochs=2, lr=lr, batch_size=batch, optimizer="adam", seed=3)
        assert_rel(net.params, o.params_flat(), tol, f"{path} [{dtype}]: params after fit")
        assert_rel(h.loss, h_o.loss, tol, f"{path} [{dtype}]: history")
    if dtype == "float64":
        # the two compiled paths differ only in the order of additions
        assert_rel(blas.params, loops.params, 1e-13, "blas vs loops: params after fit")


def test_threshold_selects_the_path(kernel_path):
    # The same network gives bit-identical results to the loops when BLAS is never used, and
    # (in general) results that differ in the last bits when every block goes through gemm:
    # proof that the threshold really switches paths.
    X = np.random.default_rng(0).normal(size=(64, 50))
    default = build(kernel_path, "default", [50, 40, 3], "float64", seed=1)
    loops = build(kernel_path, "loops", [50, 40, 3], "float64", seed=1)
    blas = build(kernel_path, "blas", [50, 40, 3], "float64", seed=1)
    y_default, y_loops, y_blas = default.forward(X), loops.forward(X), blas.forward(X)
    assert not np.array_equal(y_loops, y_blas)
    np.testing.assert_array_equal(y_default, y_blas)  # 64*50*40 >= 4096: the default uses gemm
    np.testing.assert_allclose(y_loops, y_blas, rtol=1e-14)
    # one row: 1 * 50 * 40 < 4096 multiply-adds per layer, so the default uses the loops
    np.testing.assert_array_equal(default.forward(X[0]), loops.forward(X[0]))
