"""Argument checking of cprop.MLP: bad input never crashes, every error names the argument.

Every error test also checks that the refused call left the network exactly as it was: the
parameters bit for bit, and the generator (a following ``fit`` with a shuffle agrees with a twin
network that never saw the bad call).
"""

from __future__ import annotations

import re
import tracemalloc
import warnings

import numpy as np
import pytest

import cprop

SIZES = [2, 3, 2]
SEED = 11

_rng = np.random.default_rng(1234)
X = _rng.normal(size=(5, 2))
T = _rng.uniform(size=(5, 2))
x1 = X[0].copy()
t1 = T[0].copy()

METHODS = ["forward", "loss", "gradients", "train_step", "fit", "explain"]
XT_METHODS = ["loss", "gradients", "train_step", "fit"]


def make(**kw):
    return cprop.MLP(SIZES, seed=SEED, **kw)


class Guard:
    """A network plus an untouched twin; ``intact()`` checks nothing changed and all still works."""

    def __init__(self, **kw):
        self.net = make(**kw)
        self.twin = make(**kw)

    def intact(self):
        net, twin = self.net, self.twin
        assert net.params.tobytes() == twin.params.tobytes()
        np.testing.assert_array_equal(net.forward(X), twin.forward(X))
        assert net.loss(X, T) == twin.loss(X, T)
        # fit with a shuffle and no seed: also checks the generator state is untouched
        h1 = net.fit(X, T, epochs=2, lr=0.3)
        h2 = twin.fit(X, T, epochs=2, lr=0.3)
        assert h1.loss == h2.loss
        assert net.params.tobytes() == twin.params.tobytes()
        assert np.isfinite(net.params).all()


def call(net, method, a, b=None, **kw):
    """Call `method`; `a`/`b` are (X, T), or (x, t) for explain."""
    if method == "forward":
        return net.forward(a)
    if method == "loss":
        return net.loss(a, b)
    if method == "gradients":
        return net.gradients(a, b)
    if method == "train_step":
        return net.train_step(a, b, **kw)
    if method == "fit":
        return net.fit(a, b, **kw)
    if method == "explain":
        return net.explain(a, b, **kw)
    raise AssertionError(method)


def names_arg(message: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z_]){re.escape(name)}(?![A-Za-z_])", message) is not None


def assert_raises_naming(exc_types, name, func, *args, **kw):
    with pytest.raises(exc_types) as info:
        func(*args, **kw)
    msg = str(info.value)
    assert names_arg(msg, name), f"error does not name {name!r}: {msg!r}"
    return msg


# ------------------------------------------------------------------------------------------------
# wrong shapes
# ------------------------------------------------------------------------------------------------

# bad X for a (5, 2)-sample call: (value, regex of the expected shape that the message must show)
X_EXPECTED = r"\((n_samples|\d+), 2\)|\(2,\)"
BAD_X = {
    "wrong_n_in": np.zeros((5, 3)),
    "wrong_n_in_1d": np.zeros(3),
    "one_column": np.zeros((5, 1)),
    "3d": np.zeros((5, 2, 1)),
    "3d_single": np.zeros((1, 1, 2)),
    "0d": np.float64(0.5),
    "python_scalar": 0.5,
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", list(BAD_X))
def test_bad_x_shape(method, kind):
    g = Guard()
    name = "x" if method == "explain" else "X"
    t = t1 if method == "explain" else T
    msg = assert_raises_naming(ValueError, name, call, g.net, method, BAD_X[kind], t)
    expected = r"\(2,\)" if method == "explain" else X_EXPECTED
    assert re.search(expected, msg), msg
    g.intact()


def test_bad_x_shape_reports_the_shape_given():
    g = Guard()
    with pytest.raises(ValueError) as info:
        g.net.forward(np.zeros((4, 3)))
    assert "(4, 3)" in str(info.value)
    with pytest.raises(ValueError) as info:
        g.net.forward(np.zeros((4, 2, 1)))
    assert "(4, 2, 1)" in str(info.value)
    g.intact()


def test_zero_d_x_message_reports_shape_of_the_argument():
    # A 0-d X must be reported as what it is (shape ()), not as the (1,) it was converted to.
    net = make()
    with pytest.raises(ValueError) as info:
        net.forward(np.float64(0.5))
    msg = str(info.value)
    assert "X" in msg
    assert "got shape ()" in msg, msg


def test_zero_d_x_refused_even_for_one_input():
    # A scalar is not a sample, even when the network has one input (scikit-learn and PyTorch
    # refuse it too); a (1,)-shaped x is the single-sample form.
    net = cprop.MLP([1, 2, 1], seed=0)
    assert net.forward(np.array([0.5])).shape == (1,)
    before = net.params.copy()
    with pytest.raises(ValueError, match="X"):
        net.forward(0.5)
    with pytest.raises(ValueError, match="X"):
        net.loss(np.float64(0.5), [0.3])
    assert net.params.tobytes() == before.tobytes()


# bad T for X of shape (5, 2): (value) ; the message must show the expected shape (5, 2)
BAD_T = {
    "wrong_n_out": np.zeros((5, 3)),
    "fewer_samples": np.zeros((4, 2)),
    "more_samples": np.zeros((6, 2)),
    "3d": np.zeros((5, 2, 1)),
    "1d_with_two_outputs": np.zeros(5),
    "1d_n_out": np.zeros(2),
    "0d": 0.5,
}


@pytest.mark.parametrize("method", XT_METHODS)
@pytest.mark.parametrize("kind", list(BAD_T))
def test_bad_t_shape(method, kind):
    g = Guard()
    msg = assert_raises_naming(ValueError, "T", call, g.net, method, X, BAD_T[kind])
    assert "(5, 2)" in msg, msg
    g.intact()


@pytest.mark.parametrize("method", XT_METHODS)
def test_bad_t_for_single_sample(method):
    g = Guard()
    for bad in (np.zeros(3), np.zeros(1), np.zeros((2, 2)), np.zeros((1, 3))):
        msg = assert_raises_naming(ValueError, "T", call, g.net, method, x1, bad)
        assert re.search(r"\(2,\)|\(1, 2\)", msg), msg
    g.intact()


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 2)), np.zeros((1, 3)), 0.5])
def test_explain_bad_t_shape(bad):
    g = Guard()
    msg = assert_raises_naming(ValueError, "t", g.net.explain, x1, bad)
    assert "(2,)" in msg, msg
    g.intact()


def test_explain_refuses_more_than_one_sample():
    g = Guard()
    msg = assert_raises_naming(ValueError, "x", g.net.explain, X, T)
    assert "(2,)" in msg
    g.intact()


# ------------------------------------------------------------------------------------------------
# layer sizes, names, dtype, seed
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "sizes",
    [[], [2], [2, 0], [0, 2], [2, -1], [2, 2.5], [2, True], "2,2", None, [2, None], 5, [2, "3"],
     [2.0, 2], [2, 2, 0, 2]],
    ids=repr,
)
def test_bad_layer_sizes(sizes):
    with pytest.raises((ValueError, TypeError)) as info:
        cprop.MLP(sizes, seed=0)
    assert "layer_sizes" in str(info.value)


@pytest.mark.parametrize("arg,values", [
    ("hidden", ["softmax", "Sigmoid", None, 1, "", "sigmoid "]),
    ("output", ["relu", "tanh", "leaky_relu", None, 1]),
    ("loss", ["cross_entropy", "mse", None, "squared error", 0]),
])
def test_bad_names(arg, values):
    for v in values:
        with pytest.raises(ValueError) as info:
            cprop.MLP(SIZES, seed=0, **{arg: v})
        assert arg in str(info.value)


@pytest.mark.parametrize("dtype", ["int32", "float16", "complex64", "complex128", "int64",
                                   "foo", object, 3, "U8", np.int8])
def test_bad_dtype(dtype):
    with pytest.raises((ValueError, TypeError)) as info:
        cprop.MLP(SIZES, seed=0, dtype=dtype)
    assert "dtype" in str(info.value)


@pytest.mark.parametrize("dtype,expected", [("float64", np.float64), ("float32", np.float32),
                                            (np.float32, np.float32), ("f8", np.float64)])
def test_good_dtype(dtype, expected):
    net = cprop.MLP(SIZES, seed=0, dtype=dtype)
    assert net.params.dtype == expected
    assert net.forward(X).dtype == expected


@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_non_native_byte_order_dtype(dtype):
    # A byte-swapped float dtype is either used as the native one or refused naming dtype; it
    # must not reach the kernel and fail with a message that does not name the argument.
    try:
        net = cprop.MLP(SIZES, seed=0, dtype=dtype)
    except (ValueError, TypeError) as exc:
        assert "dtype" in str(exc), str(exc)
        return
    assert net.params.dtype.isnative
    assert net.params.dtype == np.dtype(dtype).newbyteorder("=")
    ref = cprop.MLP(SIZES, seed=0, dtype=np.dtype(dtype).newbyteorder("="))
    np.testing.assert_array_equal(net.forward(X), ref.forward(X))


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "1", True, np.int64(-1), 2**70, [1]], ids=repr)
def test_bad_seed_constructor(seed):
    with pytest.raises(ValueError) as info:
        cprop.MLP(SIZES, seed=seed)
    assert "seed" in str(info.value)


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "1", True, np.int64(-1)], ids=repr)
def test_bad_seed_fit(seed):
    g = Guard()
    msg = assert_raises_naming(ValueError, "seed", g.net.fit, X, T, seed=seed)
    assert "seed" in msg
    g.intact()


@pytest.mark.parametrize("seed", [0, 2**64 - 1, np.uint64(2**64 - 1), np.int64(5)], ids=repr)
def test_good_seed_edges(seed):
    a = cprop.MLP(SIZES, seed=seed)
    b = cprop.MLP(SIZES, seed=int(seed))
    assert a.seed == int(seed)
    assert a.params.tobytes() == b.params.tobytes()
    a.fit(X, T, epochs=2, seed=seed)
    b.fit(X, T, epochs=2, seed=int(seed))
    assert a.params.tobytes() == b.params.tobytes()


@pytest.mark.parametrize("tb", [1, 0, None, "True"], ids=repr)
def test_bad_train_biases(tb):
    with pytest.raises((TypeError, ValueError)) as info:
        cprop.MLP(SIZES, seed=0, train_biases=tb)
    assert "train_biases" in str(info.value)


# ------------------------------------------------------------------------------------------------
# non-numeric data
# ------------------------------------------------------------------------------------------------

def _bad_values(shape):
    """Non-numeric/complex/ragged variants of an array of `shape` ((5, 2) or (2,))."""
    obj = np.full(shape, 0.5, dtype=object)
    obj[(0,) * len(shape)] = None
    ragged = [[0.1, 0.2], [0.3]] if len(shape) == 1 else [[0.1, 0.2]] * 4 + [[0.3]]
    return {
        "strings": np.full(shape, "a"),
        "python_str": "0.1,0.2",
        "bytes": b"ab",
        "object_none": obj,
        "none": None,
        "complex128": np.full(shape, 0.5 + 0j),
        "complex_real_valued_list": np.full(shape, 0.5, dtype=complex).tolist(),
        "ragged": ragged,
        "datetime": np.zeros(shape, dtype="datetime64[s]"),
        "structured": np.zeros(shape[0], dtype=[("a", "f8"), ("b", "f8")]),
        "dict": {0: 1.0, 1: 2.0},
    }


BAD_KINDS = list(_bad_values((2,)))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_non_numeric_x(method, kind):
    g = Guard()
    if method == "explain":
        bad, name, t = _bad_values((2,))[kind], "x", t1
    else:
        bad, name, t = _bad_values((5, 2))[kind], "X", T
    assert_raises_naming((TypeError, ValueError), name, call, g.net, method, bad, t)
    g.intact()


@pytest.mark.parametrize("method", XT_METHODS + ["explain"])
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_non_numeric_t(method, kind):
    g = Guard()
    if method == "explain":
        bad, name, x = _bad_values((2,))[kind], "t", x1
    else:
        bad, name, x = _bad_values((5, 2))[kind], "T", X
    assert_raises_naming((TypeError, ValueError), name, call, g.net, method, x, bad)
    g.intact()


@pytest.mark.parametrize("value", [None, np.nan])
def test_object_array_message_is_not_about_size(value):
    # An object array holding None (or NaN) is not "too large": the message must say what is
    # actually wrong (not a number / NaN), not blame the magnitude of the values.
    g = Guard()
    bad = np.array([[value, 0.5], [0.1, 0.2]], dtype=object)
    with pytest.raises((TypeError, ValueError)) as info:
        g.net.forward(bad)
    msg = str(info.value)
    assert "X" in msg
    assert "too large" not in msg, msg
    g.intact()


def test_huge_python_int_is_refused_naming_the_argument():
    # 10**400 does not fit any float: a ValueError naming X/T, not a bare OverflowError.
    g = Guard()
    assert_raises_naming(ValueError, "X", g.net.forward, [[10**400, 1], [0, 1]])
    assert_raises_naming(ValueError, "T", g.net.loss, [[0, 1]], [[10**400, 1]])
    g.intact()


@pytest.mark.skipif(np.finfo(np.longdouble).max <= np.finfo(np.float64).max,
                    reason="long double is double on this platform")
def test_longdouble_too_large_for_float64():
    g = Guard()
    big = np.array([[np.longdouble("1e400"), 1.0]], dtype=np.longdouble)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError) as info:
            g.net.forward(big)
    assert names_arg(str(info.value), "X")
    assert caught == [], [str(w.message) for w in caught]
    g.intact()


# ------------------------------------------------------------------------------------------------
# non-finite values
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_x(method, value):
    g = Guard()
    if method == "explain":
        bad, name, t = x1.copy(), "x", t1
        bad[1] = value
    else:
        bad, name, t = X.copy(), "X", T
        bad[3, 1] = value
    assert_raises_naming(ValueError, name, call, g.net, method, bad, t)
    g.intact()


@pytest.mark.parametrize("method", XT_METHODS + ["explain"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_t(method, value):
    g = Guard()
    if method == "explain":
        bad, name, x = t1.copy(), "t", x1
        bad[0] = value
    else:
        bad, name, x = T.copy(), "T", X
        bad[4, 0] = value
    assert_raises_naming(ValueError, name, call, g.net, method, x, bad)
    g.intact()


@pytest.mark.parametrize("method,which", [(m, w) for w in ("X", "T") for m in METHODS
                                          if not (w == "T" and m == "forward")])
def test_too_large_for_float32(method, which):
    g = Guard(dtype="float32")
    if method == "explain":
        a, b = x1.copy(), t1.copy()
        name = which.lower()
        (a if which == "X" else b)[0] = 1e300
    else:
        a, b = X.copy(), T.copy()
        name = which
        (a if which == "X" else b)[2, 1] = -1e300
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(all="raise"):
            with pytest.raises(ValueError) as info:
                call(g.net, method, a, b)
    assert names_arg(str(info.value), name), str(info.value)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], \
        [str(w.message) for w in caught]
    g.intact()


def test_float32_limit_values_are_accepted():
    # The largest float32 itself fits; it must not be refused as "too large".
    net = make(dtype="float32")
    big = np.array([[np.finfo(np.float32).max, 0.0]], dtype=np.float64)
    y = net.forward(big)
    assert y.dtype == np.float32 and np.isfinite(y).all()


# ------------------------------------------------------------------------------------------------
# empty arrays
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(0, 2), (0,), (0, 0), (5, 0)])
def test_empty_x(method, shape):
    g = Guard()
    name = "x" if method == "explain" else "X"
    t = t1 if method == "explain" else T
    assert_raises_naming(ValueError, name, call, g.net, method, np.zeros(shape), t)
    assert_raises_naming(ValueError, name, call, g.net, method, np.zeros(shape).tolist(), t)
    g.intact()


@pytest.mark.parametrize("method", XT_METHODS + ["explain"])
@pytest.mark.parametrize("shape", [(0, 2), (0,)])
def test_empty_t(method, shape):
    g = Guard()
    name, x = ("t", x1) if method == "explain" else ("T", X)
    assert_raises_naming(ValueError, name, call, g.net, method, x, np.zeros(shape))
    g.intact()


def test_empty_x_and_t_together():
    g = Guard()
    with pytest.raises(ValueError, match="X"):
        g.net.fit(np.zeros((0, 2)), np.zeros((0, 2)))
    g.intact()


# ------------------------------------------------------------------------------------------------
# scalar options
# ------------------------------------------------------------------------------------------------

BAD_LR = [0, 0.0, -1, -1e-300, -0.0, np.nan, np.inf, -np.inf, "0.1", None, True, False,
          np.bool_(True), [0.1], 0.1 + 0j]


@pytest.mark.parametrize("method", ["train_step", "fit", "explain"])
@pytest.mark.parametrize("lr", BAD_LR, ids=repr)
def test_bad_lr(method, lr):
    g = Guard()
    a, b = (x1, t1) if method == "explain" else (X, T)
    assert_raises_naming((ValueError, TypeError), "lr", call, g.net, method, a, b, lr=lr)
    g.intact()


@pytest.mark.parametrize("method", ["train_step", "fit", "explain"])
def test_lr_too_large_for_a_float(method):
    g = Guard()
    a, b = (x1, t1) if method == "explain" else (X, T)
    assert_raises_naming((ValueError, TypeError), "lr", call, g.net, method, a, b, lr=10**400)
    g.intact()


@pytest.mark.parametrize("lr", [np.float32(0.25), np.float64(0.25), 1, np.int64(1)], ids=repr)
def test_good_lr_types(lr):
    a, b = make(), make()
    a.train_step(X, T, lr)
    b.train_step(X, T, float(lr))
    assert a.params.tobytes() == b.params.tobytes()


@pytest.mark.parametrize("arg", ["epochs", "batch_size"])
@pytest.mark.parametrize("value", [0, -1, 1.5, 2.0, True, False, "3", None, np.float64(2.0)],
                         ids=repr)
def test_bad_epochs_batch_size(arg, value):
    g = Guard()
    msg = assert_raises_naming((ValueError, TypeError), arg, g.net.fit, X, T, **{arg: value})
    assert arg in msg
    g.intact()


def test_absurd_epochs_refused_naming_epochs():
    g = Guard()
    assert_raises_naming((ValueError, OverflowError, MemoryError), "epochs", g.net.fit, X, T,
                         epochs=2**70)
    g.intact()


def test_huge_batch_size_means_one_batch():
    # DESIGN: "batch_size larger than the data means one batch per epoch" - for any int.
    a, b = make(), make()
    ha = a.fit(X, T, epochs=2, lr=0.3, batch_size=2**70, shuffle=False)
    hb = b.fit(X, T, epochs=2, lr=0.3, batch_size=len(X), shuffle=False)
    assert ha.loss == hb.loss
    assert a.params.tobytes() == b.params.tobytes()


@pytest.mark.parametrize("arg", ["epochs", "batch_size"])
def test_numpy_int_options_accepted(arg):
    a, b = make(), make()
    a.fit(X, T, seed=3, **{arg: np.int64(2)})
    b.fit(X, T, seed=3, **{arg: 2})
    assert a.params.tobytes() == b.params.tobytes()


@pytest.mark.parametrize("value", [1, 0, None, "True", "False", 1.0], ids=repr)
def test_bad_shuffle(value):
    g = Guard()
    assert_raises_naming((TypeError, ValueError), "shuffle", g.net.fit, X, T, shuffle=value)
    g.intact()


# ------------------------------------------------------------------------------------------------
# conversions that must work and agree with clean input
# ------------------------------------------------------------------------------------------------

XI = np.array([[0, 1], [2, -1], [1, 1], [-3, 0], [1, 0]], dtype=np.int64)
TI = np.array([[0, 1], [1, 0], [1, 1], [0, 0], [1, 0]], dtype=np.int64)


def _results(a, b, dtype="float64"):
    """Every method's result on (a, b) with fresh networks, as comparable numbers."""
    out = {}
    net = make(dtype=dtype)
    out["forward"] = net.forward(a)
    out["loss"] = net.loss(a, b)
    gw, gb = net.gradients(a, b)
    out["gradients"] = np.concatenate([np.concatenate([w.ravel(), v]) for w, v in zip(gw, gb)])
    net = make(dtype=dtype)
    out["train_step"] = (net.train_step(a, b, 0.5), net.params.copy())
    net = make(dtype=dtype)
    out["fit"] = (net.fit(a, b, epochs=3, lr=0.5, batch_size=2).loss, net.params.copy())
    return out


def _assert_same(got, ref):
    assert got.keys() == ref.keys()
    for k in ref:
        g, r = got[k], ref[k]
        if isinstance(r, tuple):
            assert g[0] == r[0], k
            assert g[1].dtype == r[1].dtype and g[1].tobytes() == r[1].tobytes(), k
        elif isinstance(r, np.ndarray):
            assert g.dtype == r.dtype and g.shape == r.shape, k
            assert g.tobytes() == r.tobytes(), k
        else:
            assert g == r, k


def _ro(arr):
    arr = np.array(arr)
    arr.setflags(write=False)
    return arr


CONVERSIONS = {
    "column_sliced": lambda a: np.repeat(a, 2, axis=1)[:, ::2],
    "row_strided": lambda a: np.repeat(a, 2, axis=0)[::2],
    "transposed": lambda a: np.ascontiguousarray(a.T).T,
    "fortran": np.asfortranarray,
    "big_endian": lambda a: a.astype(np.dtype(">f8")),
    "read_only": _ro,
    "list": lambda a: a.tolist(),
    "tuple_of_tuples": lambda a: tuple(tuple(r) for r in a),
    "list_of_arrays": lambda a: list(a),
    "float32_exact": lambda a: a.astype(np.float32),
    "int64": lambda a: a.astype(np.int64),
    "int8": lambda a: a.astype(np.int8),
    "uint8_nonneg": None,  # handled below (needs non-negative values)
}


@pytest.mark.parametrize("conv", [c for c in CONVERSIONS if CONVERSIONS[c] is not None])
@pytest.mark.parametrize("which", ["X", "T", "both"])
def test_conversions_give_same_results(conv, which):
    f = CONVERSIONS[conv]
    Xc, Tc = XI.astype(np.float64), TI.astype(np.float64)   # exactly representable values
    a = f(Xc) if which in ("X", "both") else Xc
    b = f(Tc) if which in ("T", "both") else Tc
    _assert_same(_results(a, b), _results(Xc, Tc))


def test_integer_and_bool_inputs():
    Xc, Tc = XI.astype(np.float64), TI.astype(np.float64)
    ref = _results(Xc, Tc)
    _assert_same(_results(XI, TI), ref)
    _assert_same(_results(XI.astype(np.int8), TI.astype(np.int8)), ref)
    _assert_same(_results(XI.astype(np.int32), TI.astype(np.uint8)), ref)
    B = XI > 0
    _assert_same(_results(B, TI.astype(bool)), _results(B.astype(np.float64), Tc))


def test_real_valued_noncontiguous_float_inputs():
    # Non-integer values through the same conversions (bit-identical results).
    big = np.zeros((5, 6))
    big[:, 1:5:3] = X
    Xs = big[:, 1:5:3]
    assert not Xs.flags.c_contiguous
    _assert_same(_results(Xs, T), _results(X, T))
    _assert_same(_results(np.asfortranarray(X), np.asfortranarray(T)), _results(X, T))
    _assert_same(_results(X.astype(">f8"), T.astype(">f8")), _results(X, T))
    _assert_same(_results(_ro(X), _ro(T)), _results(X, T))


def test_inputs_are_not_modified():
    Xf = np.asfortranarray(X.copy())
    Tb = T.astype(">f8")
    Xs, Ts = Xf.copy(), Tb.copy()
    net = make()
    net.fit(Xf, Tb, epochs=2)
    net.train_step(Xf, Tb, 0.1)
    np.testing.assert_array_equal(Xf, Xs)
    np.testing.assert_array_equal(Tb, Ts)


def test_float64_input_to_float32_network():
    net = make(dtype="float32")
    X32, T32 = X.astype(np.float32), T.astype(np.float32)
    y = net.forward(X)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, net.forward(X32))
    assert net.forward(x1).dtype == np.float32
    assert net.loss(X, T) == net.loss(X32, T32)
    gw, gb = net.gradients(X, T)
    assert all(g.dtype == np.float32 for g in gw + gb)
    _assert_same(_results(X, T, "float32"), _results(X32, T32, "float32"))
    assert net.params.dtype == np.float32


def test_t_1d_when_one_output():
    net = cprop.MLP([2, 3, 1], seed=4)
    t = T[:, 0].copy()
    assert net.loss(X, t) == net.loss(X, t[:, None])
    gw1, gb1 = net.gradients(X, t)
    gw2, gb2 = net.gradients(X, t[:, None])
    for a, b in zip(gw1 + gb1, gw2 + gb2):
        np.testing.assert_array_equal(a, b)
    a, b = cprop.MLP([2, 3, 1], seed=4), cprop.MLP([2, 3, 1], seed=4)
    assert a.fit(X, t, epochs=2, batch_size=2).loss == b.fit(X, t[:, None], epochs=2,
                                                             batch_size=2).loss
    assert a.params.tobytes() == b.params.tobytes()
    assert a.train_step(X, t.tolist(), 0.2) == b.train_step(X, t[:, None], 0.2)
    assert a.params.tobytes() == b.params.tobytes()


def test_single_sample_gives_1d_output():
    net = make()
    y = net.forward(x1)
    assert y.shape == (2,)
    np.testing.assert_array_equal(y, net.forward(x1[None, :])[0])
    np.testing.assert_array_equal(net.forward(x1.tolist()), y)
    assert net.forward(x1[None, :]).shape == (1, 2)
    assert net.loss(x1, t1) == net.loss(x1[None], t1[None])
    gw1, gb1 = net.gradients(x1, t1)
    gw2, gb2 = net.gradients(x1[None], t1[None])
    for a, b in zip(gw1 + gb1, gw2 + gb2):
        np.testing.assert_array_equal(a, b)
    a, b = make(), make()
    assert a.train_step(x1, t1, 0.5) == b.train_step(x1[None], t1[None], 0.5)
    assert a.params.tobytes() == b.params.tobytes()


def test_explain_accepts_conversions():
    net = make()
    ref = net.explain(x1, t1, 0.5).to_dict()
    for xx, tt in [(x1.tolist(), t1.tolist()), (x1.astype(">f8"), _ro(t1)),
                   (np.repeat(x1, 2)[::2], t1[None, :])]:
        assert net.explain(xx, tt, 0.5).to_dict() == ref


# ------------------------------------------------------------------------------------------------
# non-finite parameters written by the user
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("where", ["weight", "bias", "last_weight"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_params_refused(method, where, value):
    net = make()
    if where == "weight":
        net.weights[0][0, 0] = value
    elif where == "bias":
        net.biases[1][1] = value
    else:
        net.weights[-1][-1, -1] = value
    before = net.params.copy()
    a, b = (x1, t1) if method == "explain" else (X, T)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_raises_naming(ValueError, "params", call, net, method, a, b)
    np.testing.assert_array_equal(net.params, before)   # (NaN == NaN here)
    # repaired, it works again
    ref = make()
    net.params[:] = ref.params
    np.testing.assert_array_equal(net.forward(X), ref.forward(X))
    assert net.fit(X, T, epochs=1, seed=1).loss == ref.fit(X, T, epochs=1, seed=1).loss


def test_non_finite_params_via_params_buffer():
    net = make()
    net.params[-1] = np.nan
    with pytest.raises(ValueError, match="params"):
        net.forward(X)
    with pytest.raises(ValueError, match="params"):
        net.fit(X, T)


# ------------------------------------------------------------------------------------------------
# memory refusal
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes,dtype", [
    ([10**6, 10**6, 10**6], "float64"),
    ([10**6, 10**6, 10**6], "float32"),
    ([2**40, 2**40], "float64"),
    ([2**62, 2**62, 3], "float64"),
    ([3, 10**12, 3], "float32"),
])
def test_memory_refusal(sizes, dtype):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(ValueError) as info:
            cprop.MLP(sizes, dtype=dtype, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert "memory" in msg, msg
    assert "layer_sizes" in msg, msg
    # nothing the size of the network was allocated before refusing
    assert peak < 16 * 2**20, peak


def test_memory_refusal_counts_parameters():
    with pytest.raises(ValueError) as info:
        cprop.MLP([10**6, 10**6, 10**6], seed=0)
    # 2 * (10**12 + 10**6) parameters
    assert "2000002000000" in str(info.value).replace(",", "").replace("_", "")


# -- class labels for cross-entropy must be integers ---------------------------------------------

@pytest.mark.parametrize("labels, hint", [
    (np.array([0.0, 2.0, 1.0, 1.0, 0.0]), r"got floats \(convert them: T.astype\(int\)\)"),
    ([0.5, 2, 1, 1, 0], r"got floats; or give"),
    (np.array([True, False, True, True, False]), r"got booleans"),
])
@pytest.mark.parametrize("method", XT_METHODS)
def test_float_class_labels_are_refused_saying_labels_must_be_integers(method, labels, hint):
    # (before: a shape error, "expected shape (5, 3) ... got shape (5,)")
    net = cprop.MLP([2, 4, 3], output="softmax", loss="cross_entropy", seed=SEED)
    before = net.params.copy()
    args = (X, labels, 0.1) if method == "train_step" else (X, labels)
    with pytest.raises(ValueError, match=r"^T: cross_entropy class labels must be integers in "
                                         r"\[0, 3\), " + hint):
        getattr(net, method)(*args)
    assert np.array_equal(net.params, before)
    # one sample, one float label
    with pytest.raises(ValueError, match=r"class labels must be integers.*rows of shape \(3,\)"):
        net.loss(X[0], 2.0)
    with pytest.raises(ValueError, match=r"class labels must be integers in \[0, 3\), got True"):
        net.loss(X[0], True)
    # integer labels, and float one-hot rows, are fine
    assert net.loss(X, np.array([0, 2, 1, 1, 0])) == net.loss(X, np.eye(3)[[0, 2, 1, 1, 0]])


def test_oracle_refuses_float_class_labels_too():
    from cprop import oracle

    o = oracle.MLP([2, 4, 3], output="softmax", loss="cross_entropy", seed=SEED)
    for labels in ([0.0, 2.0, 1.0, 1.0, 0.0], [True, False, True, True, False]):
        with pytest.raises(ValueError, match=r"T: cross_entropy class labels must be integers"):
            o.loss(X.tolist(), labels)
    with pytest.raises(ValueError, match=r"class labels must be integers"):
        o.loss(X[0].tolist(), 2.0)
    assert o.loss(X.tolist(), [0, 2, 1, 1, 0]) == o.loss(X.tolist(),
                                                         np.eye(3)[[0, 2, 1, 1, 0]].tolist())
