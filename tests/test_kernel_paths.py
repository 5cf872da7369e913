"""The code paths inside the kernels that the random parity cases (widths 1-9) do not reach.

* ``_dense.h``'s one-sample row kernels (forward net input, the fused single-sample SGD update,
  the per-sample gradient term) process columns in blocks of 8 vectors (16 float64 / 32 float32
  columns), then pairs of vectors, then single vectors, then a scalar tail. Every width from 1 to
  70 crosses a different mix of those; each must give the oracle's numbers.
* The SGD steps skip their per-value overflow checks when a bound on |params| and |gradient|
  proves no value can pass 1e300 (1e36 in float32) - and must fall back to the checked path,
  with identical results, when the bound does not hold.
"""

from __future__ import annotations

import numpy as np
import pytest

import cprop
from cprop import oracle
from parity import rel_err

WIDTHS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 70)
RTOL = {"float64": 1e-12, "float32": 1e-5}


def _pair(sizes, dtype, seed, hidden="sigmoid", output="softmax", loss="cross_entropy"):
    net = cprop.MLP(sizes, hidden=hidden, output=output, loss=loss, dtype=dtype, seed=seed)
    ref = oracle.MLP(sizes, hidden=hidden, output=output, loss=loss, seed=seed)
    # The oracle starts from the compiled net's (dtype-rounded) parameters.
    ref.set_params_flat([float(v) for v in net.params])
    return net, ref


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

    assert rel_err(net.forward(X.astype(dtype)), np.array(ref.forward(Xd.tolist()))) <= tol
    gw, gb = net.gradients(X.astype(dtype), T.astype(dtype))
    rgw, rgb = ref.gradients(Xd.tolist(), T.tolist())
    flat = np.concatenate([np.ravel(g) for pair in zip(gw, gb) for g in pair])
    rflat = np.concatenate([np.ravel(np.array(g)) for pair in zip(rgw, rgb) for g in pair])
    assert rel_err(flat, rflat) <= tol

    lr = float(np.asarray(0.05, dtype=dtype))
    for batch_size in (1, 3):
        a, b = _pair(sizes, dtype, seed=width)
        ha = a.fit(X.astype(dtype), T.astype(dtype), epochs=2, lr=lr, batch_size=batch_size,
                   shuffle=True, seed=5)
        hb = b.fit(Xd.tolist(), T.tolist(), epochs=2, lr=lr, batch_size=batch_size,
                   shuffle=True, seed=5)
        assert rel_err(a.params, np.array(b.params_flat())) <= tol, batch_size
        assert rel_err(ha.loss, hb.loss) <= tol, batch_size


# The SGD step kinds of fit: (path, batch_size). "loops": the fused single-row step (batch 1)
# and the minibatch step over a gradient buffer (batch 2); "blas": every layer through gemm, the
# update folded into the weight-gradient gemm.
STEP_KINDS = [("loops", 1), ("loops", 2), ("blas", 3)]


def _use_path(monkeypatch, path):
    if path == "blas":
        import cprop.mlp

        monkeypatch.setattr(cprop.mlp, "_BLAS_MIN_WORK", 0)


@pytest.mark.parametrize("dtype, huge", [("float64", 1e301), ("float32", 1e37)])
@pytest.mark.parametrize("path, batch_size", STEP_KINDS)
def test_step_past_the_safe_bound_takes_the_checked_path(monkeypatch, dtype, huge, path,
                                                          batch_size):
    # One weight far beyond the unchecked steps' bound, on an input feature that is always 0:
    # it never reaches any output (0 * huge = 0) and its gradient is 0, so every step is finite
    # and must be applied - through the checked path, with the same numbers as the oracle.
    _use_path(monkeypatch, path)
    sizes = [3, 4, 2]
    net, ref = _pair(sizes, dtype, seed=3, output="sigmoid", loss="squared_error")
    net.weights[0][2, 1] = huge
    ref.set_params_flat([float(v) for v in net.params])
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
    assert rel_err(others, ref_others) <= RTOL[dtype]
    assert rel_err(h.loss, hr.loss) <= RTOL[dtype]
    # ... and the weights really moved: the step was applied, not refused.
    start, _ = _pair(sizes, dtype, seed=3, output="sigmoid", loss="squared_error")
    assert np.max(np.abs(others - np.delete(start.params, 2 * 4 + 1))) > 1e-3


@pytest.mark.parametrize("dtype, lr", [("float64", 1e308), ("float32", 3e38)])
@pytest.mark.parametrize("path, batch_size", STEP_KINDS)
def test_overflowing_step_is_refused_whole(monkeypatch, dtype, lr, path, batch_size):
    # A finite loss whose update overflows (lr * gradient > the dtype's max): the unchecked path's
    # bound fails, the checked path finds the inf, and the step is refused whole -
    # FloatingPointError naming the update, the parameters exactly those before the step.
    _use_path(monkeypatch, path)
    net = cprop.MLP([2, 3, 1], hidden="tanh", output="identity", dtype=dtype, seed=1)
    X = np.array([[1.0, -1.0], [0.5, 2.0], [0.1, 0.3]], dtype=dtype)
    T = np.full((3, 1), 50.0, dtype=dtype)
    before = net.params.copy()
    assert np.isfinite(net.loss(X, T))
    with pytest.raises(FloatingPointError, match="update"):
        net.fit(X, T, epochs=1, lr=lr, batch_size=batch_size, shuffle=False)
    np.testing.assert_array_equal(net.params, before)


def test_avx2_and_sse2_row_kernels_give_the_same_bits(tmp_path):
    # _dense.h picks AVX2 or SSE2 at import; both must produce identical results. Run the same
    # training in a child process forced onto SSE2 (CPROP_NO_AVX2=1) and compare bit for bit.
    import os
    import subprocess
    import sys

    from cprop._kernels import _mlp

    script = (
        "import sys, numpy as np, cprop\n"
        "from cprop._kernels import _mlp\n"
        "out = [_mlp.simd_isa()]\n"
        "for dtype in ('float64', 'float32'):\n"
        "    for b in (1, 5):\n"
        "        rng = np.random.default_rng(0)\n"
        "        X = rng.uniform(-1, 1, (40, 37)).astype(dtype)\n"
        "        T = np.eye(19, dtype=dtype)[rng.integers(0, 19, 40)]\n"
        "        net = cprop.MLP([37, 70, 19], hidden='tanh', output='softmax',\n"
        "                        loss='cross_entropy', dtype=dtype, seed=1)\n"
        "        net.fit(X, T, epochs=3, lr=0.05, batch_size=b, seed=2)\n"
        "        out.append(net.params.tobytes().hex())\n"
        "        out.append(net.forward(X).tobytes().hex())\n"
        "sys.stdout.write('\\n'.join(out))\n"
    )
    runs = {}
    for forced in ("", "1"):
        env = dict(os.environ, CPROP_NO_AVX2=forced)
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, check=True)
        isa, *hexes = proc.stdout.split("\n")
        runs[forced] = (isa, hexes)
    assert runs["1"][0] in ("sse2", "portable vectors", "scalar")
    assert runs[""][0] in ("avx2", "sse2", "portable vectors", "scalar")
    assert len(runs[""][1]) == 8
    assert runs[""][1] == runs["1"][1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorised_max_abs_and_divide(dtype):
    from cprop._kernels import _mlp

    rng = np.random.default_rng(7)
    for n in range(0, 70):
        x = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(dtype)
        expected = float(np.max(np.abs(x))) if n else 0.0
        assert _mlp.max_abs(x) == expected, n
        for special in (np.inf, -np.inf, np.nan):
            if n == 0:
                continue
            y = x.copy()
            y[rng.integers(0, n)] = special
            got = _mlp.max_abs(y)
            if np.isnan(special):
                assert np.isnan(got), n
            else:
                assert got == np.inf, n
        for count in (1, 2, 3, 7, 32, 64, 100, 256, 1000):
            g = x.copy()
            _mlp.divide_in_place(g, count)
            np.testing.assert_array_equal(g, x / dtype(count))
    with pytest.raises(ValueError):
        _mlp.divide_in_place(np.ones(3), 0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("alpha, train_biases", [(0.0, True), (0.05, True), (0.0, False)])
@pytest.mark.parametrize("batch_size", [2, 5, 8])
@pytest.mark.parametrize("shuffle", [True, False])  # gathered rows / the rows of X in place
def test_fused_minibatch_sgd_matches_oracle(monkeypatch, dtype, alpha, train_biases,
                                             batch_size, shuffle):
    _use_path(monkeypatch, "blas")  # the minibatch steps fold the update into the gemm
    sizes = [6, 9, 4]
    kw = dict(hidden="tanh", output="softmax", loss="cross_entropy")
    net = cprop.MLP(sizes, dtype=dtype, seed=4, train_biases=train_biases, **kw)
    ref = oracle.MLP(sizes, seed=4, train_biases=train_biases, **kw)
    ref.set_params_flat([float(v) for v in net.params])
    X, T = _data(23, 6, 4, seed=8)
    Xd = X.astype(dtype).astype(np.float64)
    lr = float(np.asarray(0.1, dtype=dtype))
    h = net.fit(X.astype(dtype), T.astype(dtype), epochs=3, lr=lr, batch_size=batch_size,
                alpha=alpha, seed=1, shuffle=shuffle)
    hr = ref.fit(Xd.tolist(), T.tolist(), epochs=3, lr=lr, batch_size=batch_size, alpha=alpha,
                 seed=1, shuffle=shuffle)
    assert rel_err(net.params, np.array(ref.params_flat())) <= RTOL[dtype]
    assert rel_err(h.loss, hr.loss) <= RTOL[dtype]
    if not train_biases:
        for b in net.biases:
            assert not b.any()
