"""The SIMD code of _vecmath.h and _rows.h: the vectorised exp, sigmoid and softmax (float32
everywhere; float64 on the BLAS path) against a high-precision reference, the vectorised max_abs and
divide_in_place, and the AVX2/SSE2 row kernels.

* exp: within 1 ulp of the correctly rounded value over each dtype's whole finite range,
  including the gradual underflow to subnormals, exactly 0 below it and +inf above the overflow
  threshold; sigmoid within 2 ulp (measured: about 0.77 ulp and 1.1 ulp in both dtypes).
* Every row length 0..70 (each mix of vector body, shorter vectors and the padded tail) gives the
  same bits as the same values one at a time.
* The AVX2 and SSE2 builds give the same bits (a child process forced onto SSE2), for these
  functions and for whole training runs through the row kernels.
* max_abs and divide_in_place (and the max it takes in its pass): exact for every length 0..69,
  NaN and inf included.
* The float64 loop paths keep libm's exp: the branch-free sigmoid is the oracle's bit for bit.
* The gemm routes' whole-block kernels (bias and relu after a forward gemm, a bias gradient's
  column sums, the derivative times the delta, a narrow layer's delta below with its bias sums,
  a parted batch's reduction) are NumPy's elementwise IEEE operations in the same order, bit for
  bit, over many shapes, inf and -0.0 included (a NaN is any NaN: C leaves open which operand's
  NaN an addition passes on).

The reference is NumPy's long double (x87 80-bit on x86-64 Linux: 11 more bits than float64) for
float64, and float64 for float32; the float64 checks are skipped where long double is no wider
than double.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from cprop import oracle
from cprop._kernels import _mlp

LD_WIDE = np.finfo(np.longdouble).nmant >= 63
DTYPES = [
    np.float32,
    pytest.param(np.float64, marks=pytest.mark.skipif(
        not LD_WIDE, reason="np.longdouble is no wider than float64 here: no reference")),
]
# Where exp is already 0 / +inf after rounding (the kernels clamp their input there).
RANGE = {np.float32: (-104.0, 89.0), np.float64: (-746.0, 710.0)}
SIGMOID = _mlp.ACTIVATION_CODES["sigmoid"]


def ref_dtype(dtype):
    return np.float64 if dtype == np.float32 else np.longdouble


def ulps(got, ref, dtype):
    """|got - ref| in units of the last place of `dtype` at ref (subnormal ulp below the normal
    range); ref in a wider type. inf == inf and NaN == NaN count as 0."""
    fi = np.finfo(dtype)
    got_w = got.astype(ref.dtype)
    with np.errstate(over="ignore"):
        rounded = ref.astype(dtype)
    same = (got_w == ref) | (np.isnan(got_w) & np.isnan(ref)) | (np.isinf(got) & (got == rounded))
    _, e = np.frexp(np.abs(ref))
    e = np.maximum(e - 1, fi.minexp)
    ulp = np.ldexp(np.ones_like(ref), (e - fi.nmant).astype(np.int32))
    with np.errstate(invalid="ignore"):
        err = np.abs(got_w - ref) / ulp
    return np.where(same, 0.0, err)


def run(kernel, x):
    y = np.array(x, copy=True)
    kernel(y)
    return y


def ref_exp(x, dtype):
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(x.astype(ref_dtype(dtype)))


def ref_sigmoid(x, dtype):
    w = x.astype(ref_dtype(dtype))
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(-np.abs(w))
    return np.where(w >= 0, 1 / (1 + e), e / (1 + e))


def exp_grid(dtype):
    lo, hi = RANGE[dtype]
    rng = np.random.default_rng(20261129)
    fi = np.finfo(dtype)
    sub_lo = np.log(float(fi.smallest_subnormal)) - 1.0
    sub_hi = np.log(float(fi.smallest_normal)) + 1.0
    return np.concatenate([
        np.linspace(lo - 1, hi + 1, 2_000_001),        # the whole range, both clamps
        rng.uniform(-1.0, 1.0, 500_000),               # |r| < ln2 / 2 near k = 0
        rng.uniform(sub_lo, sub_hi, 500_000),          # subnormal results
        -np.exp(rng.uniform(-60, 0, 100_000)),         # tiny |x|
    ]).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_within_one_ulp_over_the_whole_range(dtype):
    x = exp_grid(dtype)
    got = run(_mlp.vector_exp, x)
    ref = ref_exp(x, dtype)
    err = ulps(got, ref, dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= 1.0, (x[worst], got[worst], ref[worst], err[worst])
    # ... and not by luck of a coarse bound: almost all values are correctly rounded (98 % for
    # both dtypes as built).
    assert np.mean(err <= 0.5) > 0.95
    with np.errstate(over="ignore"):
        rounded = ref.astype(dtype)
    # Overflow exactly where the correctly rounded value does (no inf below, no finite above).
    np.testing.assert_array_equal(np.isinf(got), np.isinf(rounded))
    assert np.all(got >= 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_underflow_edges_and_subnormals(dtype):
    fi = np.finfo(dtype)
    tiny = float(fi.smallest_subnormal)
    edges = [np.log(tiny) - np.log(2.0), np.log(tiny), np.log(1.5 * tiny),
             np.log(float(fi.smallest_normal)),
             np.log(float(fi.max))]
    x = []
    for v in edges:  # each edge and 40 neighbours on either side
        c = np.array(v, dtype=dtype)
        for _ in range(40):
            c = np.nextafter(c, dtype(-np.inf))
        for _ in range(81):
            x.append(c)
            c = np.nextafter(c, dtype(np.inf))
    x = np.concatenate([np.array(x, dtype=dtype),
                        np.linspace(edges[0] - 0.5, edges[1] + 0.5, 2001).astype(dtype)])
    got = run(_mlp.vector_exp, x)
    ref = ref_exp(x, dtype)
    assert np.max(ulps(got, ref, dtype)) <= 1.0
    # Subnormal results really are produced (gradual underflow, not a flush to zero) ...
    assert np.any((got > 0) & (got < fi.smallest_normal))
    assert np.any(got == dtype(tiny))
    # ... and below half the smallest subnormal the result is exactly 0.
    below = ref < ref.dtype.type(tiny) / 2 * (1 - ref.dtype.type(1e-6))
    assert below.any() and np.all(got[below] == 0)
    # Far below and at the type's limits: exactly 0 / +inf, with no trap on the way.
    lo = np.array([-np.inf, float(-fi.max), -1e4, -1000.0, RANGE[dtype][0] - 0.5], dtype=dtype)
    hi = np.array([np.inf, float(fi.max), 1e4, 1000.0, RANGE[dtype][1] + 0.5], dtype=dtype)
    with np.errstate(all="raise"):
        assert np.all(run(_mlp.vector_exp, lo) == 0)
        assert np.all(run(_mlp.vector_exp, hi) == np.inf)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_special_values(dtype):
    x = np.array([0.0, -0.0, np.nan, -np.nan, 1.0, -1.0, np.log(2.0)], dtype=dtype)
    got = run(_mlp.vector_exp, x)
    assert got[0] == 1 and got[1] == 1
    assert np.isnan(got[2]) and np.isnan(got[3])
    assert abs(float(got[4]) - np.e) <= float(np.spacing(dtype(np.e)))
    assert abs(float(got[5]) - 1 / np.e) <= float(np.spacing(dtype(1 / np.e)))
    assert abs(float(got[6]) - 2.0) <= float(np.spacing(dtype(2.0)))
    run(_mlp.vector_exp, np.zeros(0, dtype=dtype))  # an empty row is fine


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_within_two_ulp(dtype):
    lo, hi = RANGE[dtype]
    rng = np.random.default_rng(5)
    x = np.concatenate([
        np.linspace(lo - 2, -lo + 2, 2_000_001),
        rng.uniform(-40, 40, 500_000),
        rng.standard_normal(500_000),
    ]).astype(dtype)
    got = run(_mlp.vector_sigmoid, x)
    err = ulps(got, ref_sigmoid(x, dtype), dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= 2.0, (x[worst], err[worst])
    assert np.mean(err <= 0.5) > 0.9
    assert np.all((got >= 0) & (got <= 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_special_values_exact_and_quiet(dtype):
    fi = np.finfo(dtype)
    x = np.array([0.0, -0.0, np.inf, -np.inf, 1000.0, -1000.0, float(fi.max), float(-fi.max),
                  np.nan], dtype=dtype)
    with np.errstate(all="raise"):
        got = run(_mlp.vector_sigmoid, x)
        np.testing.assert_array_equal(got[:8], [0.5, 0.5, 1, 0, 1, 0, 1, 0])
        assert np.isnan(got[8])
    # a subnormal result, e^z / (1 + e^z) for z near the underflow, within 2 ulp
    mid = (np.log(float(fi.smallest_subnormal)) + np.log(float(fi.smallest_normal))) / 2
    z = np.array([RANGE[dtype][0] + 2.0, mid], dtype=dtype)
    if LD_WIDE or dtype == np.float32:
        got = run(_mlp.vector_sigmoid, z)
        assert np.all(got > 0) and np.all(got < fi.smallest_normal)
        assert np.max(ulps(got, ref_sigmoid(z, dtype), dtype)) <= 2.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_row_length_gives_the_values_one_at_a_time(dtype):
    # Lengths 0..70 cross every mix of the double-vector body, single vectors and the padded
    # tail (AVX2 float32: 16 / 8 / < 8 values); each value must come out as it does alone.
    rng = np.random.default_rng(70)
    lo, hi = RANGE[dtype]
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1000.0, -1000.0, lo - 1, hi + 1])
    for n in range(71):
        x = rng.uniform(lo, hi, n)
        mask = rng.random(n) < 0.15
        x[mask] = rng.choice(specials, int(mask.sum()))
        x = x.astype(dtype)
        for kernel in (_mlp.vector_exp, _mlp.vector_sigmoid):
            row = run(kernel, x)
            alone = np.array([run(kernel, x[i:i + 1])[0] for i in range(n)], dtype=dtype)
            np.testing.assert_array_equal(row.view(f"u{x.itemsize}"),
                                          alone.view(f"u{x.itemsize}"), err_msg=f"n={n}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_of_every_length(dtype):
    rng = np.random.default_rng(11)
    eps = float(np.finfo(dtype).eps)
    for n in range(1, 71):
        z = (rng.standard_normal(n) * 8).astype(dtype)
        y = z.copy()
        lse = _mlp.vector_softmax(y, True)
        w = z.astype(np.longdouble)
        m = w.max()
        e = np.exp(w - m)
        ref = e / e.sum()
        # each value: its exp (1 ulp) over a sum of n values rounded n - 1 times
        assert np.max(np.abs(y - ref) / ref) <= (n + 3) * eps, n
        assert abs(float(np.sum(y.astype(np.float64))) - 1.0) <= (n + 3) * eps, n
        ref_lse = float(m + np.log(e.sum()))
        assert abs(lse - ref_lse) <= (n + 3) * eps * max(1.0, abs(ref_lse)), n
        y2 = z.copy()
        assert _mlp.vector_softmax(y2) == 0.0
        np.testing.assert_array_equal(y2, y)
    with np.errstate(all="raise"):
        y = np.array([1000.0, -1000.0, 0.0, 999.0], dtype=dtype)
        _mlp.vector_softmax(y)
        assert y[1] == 0 and y[2] == 0 and 0 < y[3] < y[0] < 1
        y = np.array([1.0, np.nan, 2.0], dtype=dtype)
        _mlp.vector_softmax(y)
        assert np.all(np.isnan(y))
    assert _mlp.vector_softmax(np.zeros(0, dtype=dtype), True) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_block_of_rows_is_each_rows_softmax_bit_for_bit(dtype):
    # The BLAS path's block kernel (narrow rows several at a time, one row to a lane) gives each
    # row exactly what the one-row kernel gives it, log-sum-exp included: every width across the
    # narrow/wide boundary, every row count across the lane counts, and the values that take
    # other branches (+-1000, equal maxima, -0.0, NaN).
    rng = np.random.default_rng(5)
    u = f"u{np.dtype(dtype).itemsize}"
    for n in range(1, 11):
        for rows in range(0, 19):
            z = (rng.standard_normal((rows, n)) * 6).astype(dtype)
            if rows >= 3:
                z[0, :] = 1000.0
                z[1, 0] = -1000.0
                z[2, :] = -0.0
            if rows >= 5:
                z[4, n // 2] = np.nan
            block = z.copy()
            lse = _mlp.vector_softmax_rows(block, True)
            for r in range(rows):
                one = z[r].copy()
                one_lse = _mlp.vector_softmax(one, True)
                np.testing.assert_array_equal(block[r].view(u), one.view(u),
                                              err_msg=f"n={n} rows={rows} r={r}")
                assert np.asarray(lse[r], dtype=dtype).view(u) == np.asarray(
                    one_lse, dtype=dtype).view(u), (n, rows, r)
            again = z.copy()
            assert _mlp.vector_softmax_rows(again) is None
            np.testing.assert_array_equal(again.view(u), block.view(u))


def test_float64_loop_sigmoid_is_the_oracles_bit_for_bit():
    # The loop paths keep libm's exp and only lost the branch: the same bits as cprop.oracle
    # (math.exp), NaN included.
    rng = np.random.default_rng(3)
    z = np.concatenate([rng.uniform(-750, 750, 20_000), rng.standard_normal(20_000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1000.0, -1000.0, 5e-324, -5e-324,
                         1e308, -1e308, -745.1, -745.2]])
    out = np.empty_like(z)
    _mlp.activation_forward(SIGMOID, z, out)
    ref = np.array([oracle.sigmoid(float(v)) for v in z])
    np.testing.assert_array_equal(out.view(np.uint64)[~np.isnan(ref)],
                                  ref.view(np.uint64)[~np.isnan(ref)])
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    assert np.isnan(ref).sum() == 1


def test_float32_activation_is_the_vector_kernel():
    z = np.linspace(-120, 120, 100_003).astype(np.float32)
    out = np.empty_like(z)
    _mlp.activation_forward(SIGMOID, z, out)
    np.testing.assert_array_equal(out, run(_mlp.vector_sigmoid, z))


RELU = _mlp.ACTIVATION_CODES["relu"]
LEAKY_RELU = _mlp.ACTIVATION_CODES["leaky_relu"]


def assert_same_values(actual, expected, err_msg=""):
    # Bit for bit, except that every NaN counts as the same NaN (which operand's NaN an addition
    # passes on is the compiler's choice: C leaves NaN payloads open).
    u = np.uint64 if actual.dtype == np.float64 else np.uint32
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=err_msg)
    keep = ~np.isnan(expected)
    np.testing.assert_array_equal(actual[keep].view(u), expected[keep].view(u), err_msg=err_msg)


# (rows, columns) of the block kernels' tests: every width to 40 for a few rows, then a sample
BLOCK_SHAPES = [(rows, n) for rows in range(1, 21) for n in range(0, 41, 3 if rows > 4 else 1)]


def _block(rng, rows, n, dtype):
    z = (rng.standard_normal((rows, n)) * 3).astype(dtype)
    flat = z.reshape(-1)
    for k, special in enumerate((np.nan, np.inf, -np.inf, -0.0, 0.0)):
        if flat.size > 3 * k + 1:
            flat[3 * k + 1] = special
    return z


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_block_bias_rows_are_numpys_add_and_relu(dtype):
    rng = np.random.default_rng(11)
    for rows, n in BLOCK_SHAPES:
        z = _block(rng, rows, n, dtype)
        b = _block(rng, 1, n, dtype)[0][::-1].copy()
        with np.errstate(all="ignore"):  # (inf + -inf: NaN, as in the kernel)
            added = z + b
            relu = np.where(added > 0, added, dtype(0))  # NaN and -0.0 -> +0.0
        for want_relu, expected in ((False, added), (True, relu)):
            out = z.copy()
            _mlp.block_bias_rows(out, b, want_relu)
            assert_same_values(out, expected, err_msg=f"{rows}x{n} relu={want_relu}")
    with pytest.raises(ValueError, match="b: expected 3 values, got 2"):
        _mlp.block_bias_rows(np.zeros((2, 3), dtype), np.zeros(2, dtype), True)


def ordered_column_sums(d, start, first):
    # column_sums' reference: d[0] + d[1] + ... (first), else start + d[0] + ..., rows in order
    with np.errstate(all="ignore"):
        sums = d[0].copy() if first else start + d[0]
        for r in range(1, d.shape[0]):
            sums = sums + d[r]
    return sums


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_block_column_sums_add_the_rows_in_order(dtype):
    rng = np.random.default_rng(12)
    for rows, n in BLOCK_SHAPES:
        d = _block(rng, rows, n, dtype)
        start = (rng.standard_normal(n) * 1e3).astype(dtype)
        for first in (True, False):
            expected = ordered_column_sums(d, start, first)
            s = start.copy()
            _mlp.block_column_sums(d, s, first)
            assert_same_values(s, expected, err_msg=f"{rows}x{n} first={first}")
    # the order is the rows' (a pairwise or reversed sum would give 1.0 here)
    d = np.array([[1e16], [1.0], [-1e16]], dtype=np.float64)
    s = np.zeros(1)
    _mlp.block_column_sums(d, s, True)
    assert s[0] == 0.0
    with pytest.raises(ValueError, match="at least one row"):
        _mlp.block_column_sums(np.zeros((0, 3)), np.zeros(3), True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh", "identity"])
def test_block_times_derivative_is_the_row_formula(dtype, act):
    # d * f'(a), f' the row formula (activation_backward), one product per value, bit for bit
    rng = np.random.default_rng(13)
    code = _mlp.ACTIVATION_CODES[act]
    for n in range(0, 90):
        d = _block(rng, 1, n, dtype)[0]
        a = _block(rng, 1, n, dtype)[0][::-1].copy()
        fprime = np.empty_like(a)
        _mlp.activation_backward(code, a, fprime, 0.01)
        out = d.copy()
        _mlp.block_times_derivative(code, out, a, 0.01)
        with np.errstate(all="ignore"):
            expected = d * fprime
        assert_same_values(out, expected, err_msg=f"n={n}")
    with pytest.raises(ValueError, match="a: expected 3 values, got 2"):
        _mlp.block_times_derivative(code, np.zeros(3, dtype), np.zeros(2, dtype))



@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh"])
def test_block_narrow_delta_below_is_the_loop_routes_sums(dtype, act):
    # (W d_r)_i summed over j in order from 0, no FMA (the oracle's order), then times f'(a):
    # NumPy's elementwise operations in that order, bit for bit, for every width 1..8.
    rng = np.random.default_rng(14)
    code = _mlp.ACTIVATION_CODES[act]
    for n_out in range(1, 9):
        for rows, n_in in ((1, 1), (3, 7), (5, 16), (17, 37), (200, 100)):
            W = _block(rng, n_in, n_out, dtype)
            d = _block(rng, rows, n_out, dtype)
            a = _block(rng, rows, n_in, dtype)
            fprime = np.empty(rows * n_in, dtype)
            _mlp.activation_backward(code, a.reshape(-1), fprime, 0.01)
            with np.errstate(all="ignore"):
                sums = np.zeros((rows, n_in), dtype)
                for j in range(n_out):
                    sums = sums + W[:, j][None, :] * d[:, j][:, None]
                expected = sums * fprime.reshape(rows, n_in)
            out = np.full((rows, n_in), 7, dtype)
            _mlp.block_narrow_delta_below(W, d, a, out, code, 0.01)
            assert_same_values(out, expected,
                               err_msg=f"{rows}x{n_in}, n_out={n_out}")
            # with the layer below's bias sums in the same pass: column_sums' order
            start = (rng.standard_normal(n_in) * 10).astype(dtype)
            for first in (True, False):
                sums = ordered_column_sums(expected, start, first)
                colsum = start.copy()
                _mlp.block_narrow_delta_below(W, d, a, out, code, 0.01, colsum, first)
                assert_same_values(out, expected)
                assert_same_values(colsum, sums,
                                   err_msg=f"{rows}x{n_in}, first={first}")
    with pytest.raises(ValueError, match="1 to 8 columns, got 9"):
        _mlp.block_narrow_delta_below(np.zeros((3, 9)), np.zeros((2, 9)), np.zeros((2, 3)),
                                      np.zeros((2, 3)), code)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_block_sum_parts_adds_in_order_and_scales_by_the_reciprocal(dtype):
    rng = np.random.default_rng(15)
    for n_parts in (1, 2, 3, 4):
        for n in range(0, 70):
            g = (rng.standard_normal((n_parts, n)) * 10).astype(dtype)
            for divisor in (200.0, 64.0, 3.0):
                inv = dtype(1) / dtype(divisor) if dtype == np.float32 else 1.0 / divisor
                expected = g[0].copy()
                for k in range(1, n_parts):
                    expected = expected + g[k]
                expected = expected * dtype(inv)
                for out in range(n_parts):
                    # (into the first slot, or into any other: a thread's own, _team.pxi)
                    work = g.copy()
                    top = _mlp.block_sum_parts(work, divisor, out)
                    assert_same_values(work[out], expected)
                    untouched = [k for k in range(n_parts) if k != out]
                    assert_same_values(work[untouched], g[untouched])
                    assert top == (float(np.abs(expected).max()) if n else 0.0)
    g = np.ones((2, 9), dtype)
    g[1, 5] = np.nan
    assert np.isnan(_mlp.block_sum_parts(g, 2.0))
    g = np.ones((2, 9), dtype)
    g[0, 8] = -np.inf
    assert _mlp.block_sum_parts(g, 2.0) == np.inf
    with pytest.raises(ValueError, match="out: expected a row of g"):
        _mlp.block_sum_parts(g, 2.0, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_finite_finds_any_nan_or_infinity(dtype):
    # (long arrays through the vectorised max |x|, short ones in a loop: both sides of 64)
    info = np.finfo(dtype)
    for n in (0, 1, 5, 63, 64, 65, 130, 1001):
        x = np.linspace(-1, 1, n).astype(dtype)
        if n >= 4:
            x[:4] = [info.max, -info.max, info.smallest_subnormal, -0.0]
        assert _mlp.all_finite(x)
        for pos in sorted({0, n // 2, n - 1}) if n else []:
            for bad in (np.nan, np.inf, -np.inf):
                y = x.copy()
                y[pos] = bad
                assert not _mlp.all_finite(y), (n, pos, bad)
    assert not _mlp.all_finite_2d(np.full((40, 3), np.inf, dtype))
    assert _mlp.all_finite_2d(np.ones((40, 3), dtype))

_CHILD = r"""
import hashlib, sys, numpy as np
from cprop._kernels import _mlp
h = hashlib.sha256()
rng = np.random.default_rng(1)
for dtype, lo, hi in ((np.float32, -105, 90), (np.float64, -747, 711)):
    x = np.concatenate([np.linspace(lo, hi, 300_001), rng.standard_normal(100_000) * 5,
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1000.0, -1000.0]]).astype(dtype)
    for kernel in (_mlp.vector_exp, _mlp.vector_sigmoid):
        y = x.copy()
        kernel(y)
        h.update(y.tobytes())
    for n in range(1, 71):
        y = (rng.standard_normal(n) * 10).astype(dtype)
        h.update(np.float64(_mlp.vector_softmax(y, True)).tobytes())
        h.update(y.tobytes())
        z = (rng.standard_normal((7, n)) * 10).astype(dtype)
        z[0, 0] = np.nan
        b = (rng.standard_normal(n) * 10).astype(dtype)
        s = b.copy()
        _mlp.block_bias_rows(z, b, n % 2 == 0)
        _mlp.block_column_sums(z, s, n % 3 == 0)
        t = z.reshape(-1).copy()
        _mlp.block_times_derivative(_mlp.ACTIVATION_CODES["leaky_relu"], t, x[:t.size].copy())
        h.update(z.tobytes() + s.tobytes() + t.tobytes())
sys.stdout.write(_mlp.simd_isa() + "\n" + h.hexdigest())
"""


FORCED = {"default": {}, "no avx2": {"CPROP_NO_AVX2": "1"}}


def test_avx2_and_sse2_give_the_same_bits():
    runs = {}
    for label, forced in FORCED.items():
        env = {**os.environ, "CPROP_NO_AVX2": "", **forced}
        proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                              text=True, check=True)
        runs[label] = proc.stdout.split("\n")  # (the ISA name may contain a space)
    assert runs["no avx2"][0] in ("sse2", "portable vectors", "scalar")
    assert runs["default"][0] in ("avx2", "sse2", "portable vectors", "scalar")
    assert len(runs["default"][1]) == 64
    assert runs["default"][1] == runs["no avx2"][1]


def test_avx2_and_sse2_train_to_the_same_bits(tmp_path):
    # _simd.h picks AVX2 or SSE2 at import; both must produce identical results. The same
    # training in a child process forced onto SSE2 (CPROP_NO_AVX2=1), compared bit for bit:
    # small batches (the row kernels) and batches of 128+ through gemm (the block kernels: bias
    # and relu or sigmoid, their derivatives, the bias sums, a narrow output layer's delta, the
    # parts' reduction, Adam and SGD).
    script = (
        "import sys, numpy as np, cprop\n"
        "from cprop._kernels import _mlp\n"
        "out = [_mlp.simd_isa()]\n"
        "for dtype in ('float64', 'float32'):\n"
        "    rng = np.random.default_rng(0)\n"
        "    X = rng.uniform(-1, 1, (512, 37)).astype(dtype)\n"
        "    T = np.eye(5, dtype=dtype)[rng.integers(0, 5, 512)]\n"
        "    for b, hidden, opt in ((1, 'tanh', 'sgd'), (5, 'tanh', 'sgd'),\n"
        "                           (128, 'relu', 'adam'), (256, 'sigmoid', 'sgd'),\n"
        "                           (128, 'relu', 'sgd')):\n"
        "        net = cprop.MLP([37, 70, 5], hidden=hidden, output='softmax',\n"
        "                        loss='cross_entropy', dtype=dtype, seed=1)\n"
        "        net.fit(X, T, epochs=3, lr=0.05 if opt == 'sgd' else 1e-3, batch_size=b,\n"
        "                seed=2, optimizer=opt)\n"
        "        out.append(net.params.tobytes().hex())\n"
        "        out.append(net.forward(X).tobytes().hex())\n"
        "sys.stdout.write('\\n'.join(out))\n"
    )
    runs = {}
    for label, forced in FORCED.items():
        env = {**os.environ, "CPROP_NO_AVX2": "", **forced}
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, check=True)
        isa, *hexes = proc.stdout.split("\n")
        runs[label] = (isa, hexes)
    assert runs["no avx2"][0] in ("sse2", "portable vectors", "scalar")
    assert len(runs["default"][1]) == 20
    assert runs["default"][1] == runs["no avx2"][1]


def test_the_row_kernels_name_the_code_they_were_compiled_from():
    # _simd.h: vector extensions (GCC, Clang), SSE2/AVX2 intrinsics (MSVC on x64, or GCC/Clang
    # built with CPROP_MSVC_PATH=1, as CI's debug build is) or the scalar loops; `cprop info`
    # shows both names. The build record says whether the switch was set, so a CPROP_MSVC_PATH
    # build that did not take the intrinsics path fails here.
    import platform

    from cprop._config import config
    code = _mlp.simd_code()
    assert code in ("vector extensions", "intrinsics", "scalar loops")
    assert config()["simd"]["row_kernels"] == f"{_mlp.simd_isa()} ({code})"
    try:
        from cprop._build_info import BUILD_INFO
    except ImportError:
        pytest.skip("no build record (an in-place build writes it under build/)")
    x86_64 = platform.machine().lower() in ("x86_64", "amd64")
    if BUILD_INFO.get("msvc_path") or BUILD_INFO["compiler_type"] == "msvc":
        assert code == ("intrinsics" if x86_64 else "scalar loops")
    elif BUILD_INFO["compiler_type"] == "unix":
        assert code == "vector extensions"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorised_max_abs_and_divide(dtype):
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
            top = _mlp.divide_in_place(g, count)
            np.testing.assert_array_equal(g, x / dtype(count))
            assert top == (float(np.abs(g).max()) if n else 0.0)  # (the bound, same pass)
            if n:
                y = x.copy()
                y[rng.integers(0, n)] = np.nan
                assert np.isnan(_mlp.divide_in_place(y, count))
    with pytest.raises(ValueError):
        _mlp.divide_in_place(np.ones(3), 0)
