"""cprop.activations: exact limits, no warnings, agreement with cprop.oracle and with the
formulas."""

from __future__ import annotations

import math
import warnings
from decimal import Decimal, localcontext

import numpy as np
import pytest

import cprop
from cprop import activations, oracle

NAMES = ["sigmoid", "tanh", "relu", "identity"]

LIMITS = [-1e308, -1000.0, -745.0, -40.0, 0.0, 40.0, 745.0, 1000.0, 1e308]


def quiet(func, *args, **kw):
    """Call with every NumPy floating-point condition raising and every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            return func(*args, **kw)


def exact_sigmoid(z: float) -> float:
    """1 / (1 + e^-z) to 60 digits, rounded once to a double."""
    with localcontext() as ctx:
        ctx.prec = 60
        return float(1 / (1 + (-Decimal(z)).exp()))


# ------------------------------------------------------------------------------------------------
# sigmoid
# ------------------------------------------------------------------------------------------------

def test_sigmoid_limits_are_exact():
    z = np.array(LIMITS)
    s = quiet(activations.sigmoid, z)
    assert s.dtype == np.float64 and s.shape == z.shape
    assert not np.isnan(s).any()
    # exp(-1000) underflows to 0: the limits are exactly 0 and 1
    assert s[0] == 0.0 and s[1] == 0.0
    assert s[-1] == 1.0 and s[-2] == 1.0 and s[-3] == 1.0
    assert s[5] == 1.0                          # 1 / (1 + 4.2e-18) rounds to 1
    assert s[4] == 0.5
    assert s[2] == 5e-324                       # e^-745 / (1 + e^-745): the smallest subnormal
    assert s[3] == pytest.approx(4.248354255291589e-18, rel=1e-15)
    assert s.tolist() == [oracle.sigmoid(v) for v in LIMITS]
    assert np.all((s >= 0) & (s <= 1))


def test_sigmoid_of_zero_is_one_half_scalar():
    s = quiet(activations.sigmoid, 0.0)
    # a scalar in gives a scalar out (as a NumPy ufunc would), not a 1-element array
    assert np.ndim(s) == 0, np.shape(s)
    assert float(s) == 0.5
    assert quiet(activations.sigmoid, [0.0]).shape == (1,)


def test_sigmoid_against_60_digit_reference():
    grid = np.concatenate([np.linspace(-745, 745, 4001), np.linspace(-6, 6, 2401),
                           [-1e-300, 1e-300, -5e-324, 5e-324, -0.0]])
    s = quiet(activations.sigmoid, grid)
    ref = np.array([exact_sigmoid(float(v)) for v in grid])
    np.testing.assert_allclose(s, ref, rtol=1e-15, atol=0)
    # and the stable formula of cprop.oracle
    ref2 = np.array([oracle.sigmoid(float(v)) for v in grid])
    np.testing.assert_allclose(s, ref2, rtol=1e-15, atol=0)


def test_sigmoid_is_monotone_and_symmetric():
    grid = np.linspace(-40, 40, 8001)
    s = quiet(activations.sigmoid, grid)
    assert np.all(np.diff(s) >= 0)
    np.testing.assert_allclose(s + quiet(activations.sigmoid, -grid), 1.0, rtol=0,
                               atol=2 * np.finfo(np.float64).eps)


@pytest.mark.parametrize("pass_dtype", [True, False])
def test_sigmoid_float32_limits(pass_dtype):
    z = np.array([-3e38, -1000, -104, -88, 0, 88, 1000, 3e38], dtype=np.float32)
    s = quiet(activations.sigmoid, z, dtype="float32") if pass_dtype else \
        quiet(activations.sigmoid, z)
    assert s.dtype == np.float32
    assert not np.isnan(s).any()
    assert s[0] == 0.0 and s[1] == 0.0
    assert s[-1] == 1.0 and s[-2] == 1.0 and s[-3] == 1.0
    assert s[4] == np.float32(0.5)
    np.testing.assert_allclose(s[2:4], [exact_sigmoid(-104.0), exact_sigmoid(-88.0)],
                               rtol=1e-6, atol=1e-45)


def test_sigmoid_float32_from_float64_values():
    s = quiet(activations.sigmoid, [-1000.0, -1.0, 0.0, 1.0, 1000.0], dtype="float32")
    assert s.dtype == np.float32
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == np.float32(0.5)
    np.testing.assert_allclose(s[1:4], [exact_sigmoid(-1.0), 0.5, exact_sigmoid(1.0)], rtol=1e-7)


def test_sigmoid_float32_grid():
    grid = np.linspace(-80, 80, 3201).astype(np.float32)
    s = quiet(activations.sigmoid, grid)
    assert s.dtype == np.float32
    ref = np.array([exact_sigmoid(float(v)) for v in grid])
    np.testing.assert_allclose(s, ref, rtol=2e-7, atol=1e-45)


def test_sigmoid_refuses_bad_input():
    with pytest.raises(ValueError):
        activations.sigmoid([np.nan, 0.0])
    with pytest.raises(ValueError):
        activations.sigmoid([1.0, np.inf])
    with pytest.raises((TypeError, ValueError)):
        activations.sigmoid(["a"])
    with pytest.raises(ValueError, match="float32"):
        activations.sigmoid([1e300], dtype="float32")


# ------------------------------------------------------------------------------------------------
# apply / derivative vs cprop.oracle and the formulas
# ------------------------------------------------------------------------------------------------

GRID = np.concatenate([np.linspace(-30, 30, 6001), [-0.0, 5e-324, -5e-324, 1e-300, 700.0,
                                                     -700.0, 1e308, -1e308]])


@pytest.mark.parametrize("name", NAMES)
def test_apply_matches_oracle(name):
    a = quiet(activations.apply, name, GRID)
    ref = np.array([oracle.activation(name, float(z)) for z in GRID])
    assert a.dtype == np.float64 and a.shape == GRID.shape
    np.testing.assert_allclose(a, ref, rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_oracle(name):
    a = quiet(activations.apply, name, GRID)
    d = quiet(activations.derivative, name, a)
    ref = np.array([oracle.activation_derivative(name, float(v)) for v in a])
    np.testing.assert_allclose(d, ref, rtol=1e-15, atol=0)


def test_derivative_formulas_from_outputs():
    s = quiet(activations.apply, "sigmoid", GRID)
    np.testing.assert_array_equal(quiet(activations.derivative, "sigmoid", s), s * (1 - s))
    h = quiet(activations.apply, "tanh", GRID)
    np.testing.assert_array_equal(quiet(activations.derivative, "tanh", h), 1 - h * h)
    r = quiet(activations.apply, "relu", GRID)
    np.testing.assert_array_equal(quiet(activations.derivative, "relu", r),
                                  (r > 0).astype(np.float64))
    np.testing.assert_array_equal(quiet(activations.derivative, "identity", GRID),
                                  np.ones_like(GRID))


def test_specific_values():
    assert quiet(activations.apply, "relu", [-2.0, -0.0, 0.0, 3.5]).tolist() == [0, 0, 0, 3.5]
    assert quiet(activations.derivative, "relu", [0.0, 1e-300, 2.0]).tolist() == [0, 1, 1]
    assert quiet(activations.apply, "identity", [-1e308, 2.5]).tolist() == [-1e308, 2.5]
    t = quiet(activations.apply, "tanh", [-1000.0, 0.0, 1000.0, 0.5])
    assert t.tolist()[:3] == [-1.0, 0.0, 1.0]
    assert t[3] == math.tanh(0.5)
    assert quiet(activations.derivative, "sigmoid", [0.5, 0.0, 1.0]).tolist() == [0.25, 0, 0]
    assert quiet(activations.derivative, "tanh", [0.0, 1.0, -1.0, 0.5]).tolist() == \
        [1.0, 0.0, 0.0, 0.75]


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32(name):
    z = np.linspace(-10, 10, 201).astype(np.float32)
    a = quiet(activations.apply, name, z)
    assert a.dtype == np.float32
    d = quiet(activations.derivative, name, a)
    assert d.dtype == np.float32
    ref = np.array([oracle.activation(name, float(v)) for v in z])
    np.testing.assert_allclose(a, ref, rtol=3e-7, atol=1e-38)
    a64 = quiet(activations.apply, name, z, dtype="float64")
    assert a64.dtype == np.float64
    np.testing.assert_allclose(a64, ref, rtol=1e-15, atol=0)


def test_shape_is_kept():
    z = np.linspace(-2, 2, 24).reshape(2, 3, 4)
    for name in NAMES:
        a = activations.apply(name, z)
        assert a.shape == (2, 3, 4)
        np.testing.assert_array_equal(a.ravel(), activations.apply(name, z.ravel()))
        assert activations.derivative(name, a).shape == (2, 3, 4)


def test_input_not_modified_and_noncontiguous():
    z = np.linspace(-3, 3, 20)
    zc = z.copy()
    a = activations.apply("tanh", z[::2])
    np.testing.assert_array_equal(z, zc)
    np.testing.assert_array_equal(a, activations.apply("tanh", zc[::2].copy()))


@pytest.mark.parametrize("bad", ["softplus", "Sigmoid", None, 0, ""])
def test_bad_activation_name(bad):
    with pytest.raises(ValueError) as info:
        activations.apply(bad, [0.0])
    assert "name" in str(info.value)
    with pytest.raises(ValueError):
        activations.derivative(bad, [0.0])


def test_codes_table():
    assert set(activations.ACTIVATION_CODES) == set(NAMES) | {"leaky_relu", "softmax", "exp"}
    assert len(set(activations.ACTIVATION_CODES.values())) == 7
    assert activations.HIDDEN == ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
    assert activations.OUTPUT == ("sigmoid", "softmax", "identity", "exp")


# ------------------------------------------------------------------------------------------------
# exp (the output of loss="poisson")
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exp_output_activation(dtype):
    grid = np.concatenate([np.linspace(-750, 720, 2001), np.linspace(-6, 6, 241), [0.0, -0.0]])
    z = grid.astype(dtype)
    y = activations.apply("exp", z)  # inf past the range (as np.exp, without its warning)
    assert y.dtype == np.dtype(dtype)
    with np.errstate(over="ignore", under="ignore"):
        ref = np.exp(z.astype(np.float64)).astype(dtype)
    if dtype == "float64":  # libm's exp: the oracle's math.exp bits, inf where it overflows
        assert y.tolist() == [oracle.exp(float(v)) for v in z]
        np.testing.assert_allclose(y, ref, rtol=4e-16, atol=0)  # (np.exp: its own SIMD exp)
        assert np.array_equal(np.isinf(y), np.isinf(ref))
    else:  # the float32 vector kernel, as the layers compute it
        finite = np.isfinite(ref)
        np.testing.assert_allclose(y[finite], ref[finite], rtol=4e-7, atol=1e-37)
        assert np.array_equal(np.isinf(y), np.isinf(ref))
    assert not np.isnan(y).any()
    # exp' = exp, from the output
    assert np.array_equal(activations.derivative("exp", y[np.isfinite(y)]), y[np.isfinite(y)])
    assert oracle.activation_derivative("exp", 3.5) == 3.5
    assert oracle.exp(710.0) == math.inf and oracle.activation("exp", -1e4) == 0.0


# ------------------------------------------------------------------------------------------------
# a network saturated by huge inputs
# ------------------------------------------------------------------------------------------------

HUGE_X = {
    "1000": np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [1000.0, 1000.0], [-1000.0, -1000.0]]),
    "1e300": np.array([[1e300, -1e300], [-1e300, 1e300], [1e300, 1e300], [-1e300, -1e300]]),
}
TARGETS = np.array([[1.0], [0.0], [1.0], [0.0]])


def _saturated_net(hidden, scale, dtype="float64"):
    net = cprop.MLP([2, 3, 1], hidden=hidden, output="sigmoid", seed=5, dtype=dtype)
    for W in net.weights:
        W[:] = scale * np.where(W >= 0, 1.0, -1.0)
    for b in net.biases:
        b[:] = scale
    return net


SATURATED_CASES = [
    (hidden, xkind, scale)
    for hidden in ("sigmoid", "tanh", "identity", "relu")
    for xkind in HUGE_X
    for scale in (1.0, 1e3, 1e5)
    # with an unbounded hidden layer, 1e300 * 1e5 * 1e5 overflows double: see the next test
    if not (hidden in ("identity", "relu") and xkind == "1e300" and scale == 1e5)
]


@pytest.mark.parametrize("hidden,xkind,scale", SATURATED_CASES)
def test_saturated_network_is_finite(hidden, xkind, scale):
    X = HUGE_X[xkind]
    net = _saturated_net(hidden, scale)
    y = quiet(net.forward, X)
    assert np.isfinite(y).all() and np.all((y >= 0) & (y <= 1)), y
    loss = quiet(net.loss, X, TARGETS)
    assert math.isfinite(loss) and 0 <= loss <= 0.5
    np.testing.assert_allclose(loss, np.mean(0.5 * (TARGETS - y) ** 2), rtol=1e-12)
    gw, gb = quiet(net.gradients, X, TARGETS)
    assert all(np.isfinite(g).all() for g in gw + gb)
    assert quiet(net.train_step, X, TARGETS, 0.1) == loss


def test_saturated_outputs_are_exact_limits():
    net = _saturated_net("sigmoid", 1e3)
    X = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]])
    net.weights[1][:] = 1e3
    net.biases[1][:] = -1e6
    y = quiet(net.forward, X)
    assert y.tolist() == [[0.0], [0.0]]
    net.biases[1][:] = 1e6
    assert quiet(net.forward, X).tolist() == [[1.0], [1.0]]


def test_saturated_float32_network():
    net = _saturated_net("tanh", 1e3, dtype="float32")
    X = np.array([[1e30, -1e30], [-1e4, 1e4], [1e4, 1e4]], dtype=np.float32)
    y = quiet(net.forward, X)
    assert y.dtype == np.float32 and np.isfinite(y).all() and np.all((y >= 0) & (y <= 1))
    assert math.isfinite(quiet(net.loss, X, TARGETS[:3]))


# Finite inputs and finite params whose products overflow inside a layer (1e300 * 1e10 = inf,
# and inf - inf = NaN in z): every call must either give outputs in [0, 1] / a finite loss, or
# raise a clear error (FloatingPointError/ValueError); never return NaN.
OVERFLOW_CASES = {
    "sigmoid_hidden_w1e10": ("sigmoid", 1e10, "float64", HUGE_X["1e300"]),
    "identity_hidden_w1e5": ("identity", 1e5, "float64", HUGE_X["1e300"]),
    "relu_hidden_w1e5": ("relu", 1e5, "float64", HUGE_X["1e300"]),
    "float32_tanh_3e38": ("tanh", 1e3, "float32",
                          np.array([[3e38, -3e38], [-3e38, 3e38], [1.0, 1.0], [3e38, 3e38]])),
}


@pytest.mark.parametrize("case", list(OVERFLOW_CASES))
@pytest.mark.parametrize("method", ["forward", "loss", "gradients", "train_step"])
def test_overflowing_linear_layer_never_returns_nan_silently(case, method):
    hidden, scale, dtype, X = OVERFLOW_CASES[case]
    net = _saturated_net(hidden, scale, dtype=dtype)
    before = net.params.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            if method == "forward":
                out = [net.forward(X)]
            elif method == "loss":
                out = [np.array(net.loss(X, TARGETS))]
            elif method == "gradients":
                gw, gb = net.gradients(X, TARGETS)
                out = gw + gb
            else:
                out = [np.array(net.train_step(X, TARGETS, 0.1))]
    except (FloatingPointError, ValueError):
        assert net.params.tobytes() == before.tobytes()
        return
    assert not any(np.isnan(o).any() for o in out), out
    if method == "forward":
        assert np.all((out[0] >= 0) & (out[0] <= 1))
