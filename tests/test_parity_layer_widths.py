"""Every layer width from 1 to 70, and every SGD step kind, against the oracle: the parts of the
kernels that the random parity cases (widths 1-9) do not reach.

* ``_rows.h``'s one-sample row kernels (forward net input, the fused single-sample SGD update,
  the per-sample gradient term) process columns in blocks of 8 vectors (16 float64 / 32 float32
  columns), then pairs of vectors, then single vectors, then a scalar tail. Every width from 1 to
  70 crosses a different mix of those; each must give the oracle's numbers.
* The SGD steps skip their per-value overflow checks when a bound on |params| and |gradient|
  proves no value can pass 1e300 (1e36 in float32) - and must fall back to the checked path,
  with identical results, when the bound does not hold; a step that does overflow is refused
  whole on every step kind.
* The fused minibatch SGD step (the update folded into the weight-gradient gemm).
"""

from __future__ import annotations

import numpy as np
import pytest

import cprop
from parity import (RTOL, assert_rel, compiled_and_oracle, flat_gradient, oracle_scalar,
                    sync_oracle)

WIDTHS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 70)


def _pair(sizes, dtype, seed, hidden="sigmoid", output="softmax", loss="cross_entropy"):
    return compiled_and_oracle(sizes, dtype, hidden=hidden, output=output, loss=loss, seed=seed)


def _data(n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(n, n_in))
    T = np.eye(n_out)[rng.integers(0, n_out, size=n)]
    return X, T


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("width", WIDTHS)
def test_every_block_width_matches_oracle(width, dtype):
    # width is both a layer's output count (forward and update kernels run along it) and the
    # next layer's input count.
    sizes = [6, width, 5]
    net, ref = _pair(sizes, dtype, seed=width)
    X, T = _data(7, 6, 5, seed=100 + width)
    Xd = X.astype(dtype).astype(np.float64)  # what the compiled path sees
    tol = RTOL[dtype]

    what = f"width {width} [{dtype}]"
    assert_rel(net.forward(X.astype(dtype)), ref.forward(Xd.tolist()), tol, f"{what}: forward")
    gw, gb = net.gradients(X.astype(dtype), T.astype(dtype))
    rgw, rgb = ref.gradients(Xd.tolist(), T.tolist())
    assert_rel(flat_gradient(gw, gb), flat_gradient(rgw, rgb), tol, f"{what}: gradient")

    lr = float(np.asarray(0.05, dtype=dtype))
    for batch_size in (1, 3):
        a, b = _pair(sizes, dtype, seed=width)
        ha = a.fit(X.astype(dtype), T.astype(dtype), epochs=2, lr=lr, batch_size=batch_size,
                   shuffle=True, seed=5)
        hb = b.fit(Xd.tolist(), T.tolist(), epochs=2, lr=lr, batch_size=batch_size,
                   shuffle=True, seed=5)
        assert_rel(a.params, b.params_flat(), tol, f"{what} batch_size={batch_size}: params")
        assert_rel(ha.loss, hb.loss, tol, f"{what} batch_size={batch_size}: history")


# The SGD step kinds of fit: (path, batch_size). "loops": the fused single-row step (batch 1)
# and the minibatch step over a gradient buffer (batch 2); "blas": every layer through gemm, the
# update folded into the weight-gradient gemm.
STEP_KINDS = [("loops", 1), ("loops", 2), ("blas", 3)]


@pytest.mark.parametrize("dtype, huge", [("float64", 1e301), ("float32", 1e37)])
@pytest.mark.parametrize("path, batch_size", STEP_KINDS)
def test_step_past_the_safe_bound_takes_the_checked_path(kernel_path, dtype, huge, path,
                                                          batch_size):
    # One weight far beyond the unchecked steps' bound, on an input feature that is always 0:
    # it never reaches any output (0 * huge = 0) and its gradient is 0, so every step is finite
    # and must be applied - through the checked path, with the same numbers as the oracle.
    kernel_path("blas" if path == "blas" else "default")
    sizes = [3, 4, 2]
    net, ref = _pair(sizes, dtype, seed=3, output="sigmoid", loss="squared_error")
    net.weights[0][2, 1] = huge
    sync_oracle(net, ref)
    X, _ = _data(6, 3, 2, seed=4)
    X[:, 2] = 0.0
    T = np.random.default_rng(5).uniform(0, 1, size=(6, 2))
    Xd = X.astype(dtype).astype(np.float64)
    Td = T.astype(dtype).astype(np.float64)
    h = net.fit(X.astype(dtype), T.astype(dtype), epochs=3, lr=0.25, batch_size=batch_size,
                shuffle=False)
    hr = ref.fit(Xd.tolist(), Td.tolist(), epochs=3, lr=0.25, batch_size=batch_size,
                 shuffle=False)
    assert net.weights[0][2, 1] == np.asarray(huge, dtype=dtype)
    others = np.delete(net.params, 2 * 4 + 1)
    ref_others = np.delete(np.array(ref.params_flat()), 2 * 4 + 1)
    assert_rel(others, ref_others, RTOL[dtype], f"{path} batch_size={batch_size}: params")
    assert_rel(h.loss, hr.loss, RTOL[dtype], f"{path} batch_size={batch_size}: history")
    # ... and the weights really moved: the step was applied, not refused.
    start, _ = _pair(sizes, dtype, seed=3, output="sigmoid", loss="squared_error")
    assert np.max(np.abs(others - np.delete(start.params, 2 * 4 + 1))) > 1e-3


@pytest.mark.parametrize("dtype, lr", [("float64", 1e308), ("float32", 3e38)])
@pytest.mark.parametrize("path, batch_size", STEP_KINDS)
def test_overflowing_step_is_refused_whole(kernel_path, dtype, lr, path, batch_size):
    # A finite loss whose update overflows (lr * gradient > the dtype's max): the unchecked path's
    # bound fails, the checked path finds the inf, and the step is refused whole -
    # FloatingPointError naming the update, the parameters exactly those before the step.
    kernel_path("blas" if path == "blas" else "default")
    net = cprop.MLP([2, 3, 1], hidden="tanh", output="identity", dtype=dtype, seed=1)
    X = np.array([[1.0, -1.0], [0.5, 2.0], [0.1, 0.3]], dtype=dtype)
    T = np.full((3, 1), 50.0, dtype=dtype)
    before = net.params.copy()
    assert np.isfinite(net.loss(X, T))
    with pytest.raises(FloatingPointError, match="update"):
        net.fit(X, T, epochs=1, lr=lr, batch_size=batch_size, shuffle=False)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("alpha, train_biases", [(0.0, True), (0.05, True), (0.0, False)])
@pytest.mark.parametrize("batch_size", [2, 5, 8])
@pytest.mark.parametrize("shuffle", [True, False])  # gathered rows / the rows of X in place
def test_fused_minibatch_sgd_matches_oracle(kernel_path, dtype, alpha, train_biases,
                                             batch_size, shuffle):
    kernel_path("blas")  # the minibatch steps fold the update into the gemm
    sizes = [6, 9, 4]
    net, ref = compiled_and_oracle(sizes, dtype, seed=4, train_biases=train_biases,
                                   hidden="tanh", output="softmax", loss="cross_entropy")
    X, T = _data(23, 6, 4, seed=8)
    Xd = X.astype(dtype).astype(np.float64)
    lr = float(np.asarray(0.1, dtype=dtype))
    h = net.fit(X.astype(dtype), T.astype(dtype), epochs=3, lr=lr, batch_size=batch_size,
                alpha=alpha, seed=1, shuffle=shuffle)
    hr = ref.fit(Xd.tolist(), T.tolist(), epochs=3, lr=lr, batch_size=batch_size,
                 alpha=oracle_scalar(alpha, dtype), seed=1, shuffle=shuffle)
    what = f"batch_size={batch_size} alpha={alpha} shuffle={shuffle} [{dtype}]"
    assert_rel(net.params, ref.params_flat(), RTOL[dtype], f"{what}: params")
    assert_rel(h.loss, hr.loss, RTOL[dtype], f"{what}: history")
    if not train_biases:
        for b in net.biases:
            assert not b.any()
