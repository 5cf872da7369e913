"""Fuzzing every public entry point with hypothesis: a result or a documented error, never a crash.

The kernels run with bounds checks off, so the Python layer must turn *any* argument into either
a correct result or one of the documented exceptions:

- ``ValueError`` / ``TypeError`` whose message starts with the name of the argument at fault
  (``"X: expected ..."``, ``"layer_sizes[1]: ..."``, ``"lr_schedule: ..."``);
- ``FloatingPointError`` when finite numbers overflow inside the network or a training step
  would (the step is then not applied: the parameters stay finite);
- for the command line, exit status 2 with a one-line error (argparse's or cprop's).

Crashes: a segfault or abort inside a kernel must fail the run loudly. pytest's faulthandler
plugin (on by default; ``test_faulthandler_is_on`` checks it) prints the Python traceback of the
crashing call, and the pytest process dies by the signal (exit status 139 / -11), which fails CI.
Running each example in a subprocess would cost ~1 s of imports per example, so the in-process
budget here stays small and ``tools/fuzz.py`` runs these same tests with a larger budget in a
child process, counting the examples run and any crash.

Determinism: ``derandomize=True`` (unless tools/fuzz.py sets a seed) and no example database,
so CI runs the same examples every time. ``CPROP_FUZZ_SCALE`` (default 1) multiplies every
``max_examples``; ``CPROP_FUZZ_REPORT`` names a file that receives the examples each test ran.
"""

from __future__ import annotations

import contextlib
import faulthandler
import fractions
import io
import json
import math
import os
import re
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cprop
from cprop import cli, schedules

SCALE = float(os.environ.get("CPROP_FUZZ_SCALE", "1"))
# tools/fuzz.py sets a seed (with pytest --hypothesis-seed) to explore other examples;
# without it the examples are fixed (derandomize), so CI is deterministic.
DERANDOMIZE = "CPROP_FUZZ_SEED" not in os.environ
RUNS: Counter = Counter()


def fuzz_settings(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=DERANDOMIZE,
                    database=None,
                    deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    path = os.environ.get("CPROP_FUZZ_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"file": __name__, "runs": dict(RUNS)}) + "\n")


def test_faulthandler_is_on():
    # The crash contract above relies on it (pytest enables it unless -p no:faulthandler).
    assert faulthandler.is_enabled()


# ------------------------------------------------------------------------------------------------
# what may come out
# ------------------------------------------------------------------------------------------------

_LEADING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def names_argument(exc: BaseException, names) -> bool:
    """Whether the message starts with one of the argument names (``name:``, ``name[k]``...)."""
    m = _LEADING_NAME.match(str(exc))
    return m is not None and m.group(0) in names


def call(fn, names, *args, **kwargs):
    """fn(*args, **kwargs), or None if it raised a documented exception (checked here)."""
    # (pytest's filterwarnings=error also turns any NumPy RuntimeWarning in cprop into a failure)
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        assert names_argument(exc, names), f"{type(exc).__name__} does not name the argument " \
                                           f"({sorted(names)}): {exc}"
        return None
    except FloatingPointError as exc:
        # cprop's own overflow/refused-step errors, not a NumPy errstate trap in cprop's code
        assert "overflow" in str(exc) or "was not applied" in str(exc), str(exc)
        return None
    except ZeroDivisionError as exc:
        # a minibatch whose sample weights sum to 0 (scikit-learn's error there)
        assert "sample_weight" in str(exc) and "was not applied" in str(exc), str(exc)
        return None


# ------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------

SPECIAL = [math.nan, math.inf, -math.inf, 5e-324, -5e-324, 2.2250738585072014e-308, 1e308,
           -1e308, 3.4e38, 1e-45, 0.0, -0.0, 1.0, -1.0]
values = st.one_of(st.sampled_from(SPECIAL), st.floats(-3, 3, allow_nan=False))
tame = st.floats(-2, 2, allow_nan=False, allow_infinity=False)

DTYPES = ["float64", "float32", "float16", "longdouble", ">f8", ">f4", "<f8", "int8", "int64",
          "uint64", "bool", "complex128", "object", "U3", "S3", "M8[s]", "m8[s]", "V8",
          [("a", "f8")], [("a", "f8"), ("b", "i4")]]
WEIRD_OBJECTS = [None, "a", b"x", 10**400, -(10**400), fractions.Fraction(1, 3), complex(1, 2),
                 [1.0, 2.0], {"k": 1}, object(), np.float32(1.5), np.int64(3), True, math.nan]


@st.composite
def arrays(draw, n_rows_hint=None, n_cols_hint=None, tame_values=False):
    """An array-like in any form a user might pass: list or ndarray, any dtype, any layout."""
    ndim = draw(st.sampled_from([0, 1, 2, 2, 2, 3]))
    dims = []
    for k in range(ndim):
        hint = n_cols_hint if k == ndim - 1 else n_rows_hint
        choices = [st.integers(0, 5)]
        if hint is not None:
            choices.append(st.just(hint))
        dims.append(draw(st.one_of(*choices)))
    shape = tuple(dims)
    size = int(np.prod(shape)) if shape else 1
    elems = draw(st.lists(tame if tame_values else values, min_size=size, max_size=size))
    base = np.array(elems, dtype=np.float64).reshape(shape)

    form = draw(st.sampled_from(["ndarray", "ndarray", "list", "dtype", "layout", "scalar"]))
    if form == "list":
        return base.tolist()
    if form == "scalar":
        return draw(st.sampled_from([0.5, 1, True, None, "1.0", math.nan, 10**400,
                                     complex(1, 1), np.float64(2.0)]))
    if form == "dtype":
        dt = draw(st.sampled_from(DTYPES))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # NaN -> int casts warn; the value is what matters
            try:
                arr = base.astype(dt)
            except (TypeError, ValueError):
                arr = np.zeros(shape, dtype=dt)
        if arr.dtype == object and arr.size and draw(st.booleans()):
            flat = arr.reshape(-1)
            flat[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from(WEIRD_OBJECTS))
        return arr
    if form == "layout":
        how = draw(st.sampled_from(["readonly", "fortran", "strided", "broadcast", "float32"]))
        if how == "readonly":
            base.setflags(write=False)
            return base
        if how == "fortran":
            return np.asfortranarray(base)
        if how == "float32":
            with np.errstate(all="ignore"):
                return base.astype(np.float32)[..., ::-1] if base.ndim else base.astype(np.float32)
        if how == "strided":
            wide = np.repeat(base, 2, axis=-1) if base.ndim else base
            return wide[..., ::2] if base.ndim else wide
        # huge: a zero-stride view describing more values than memory holds, or a modest one
        rows = draw(st.sampled_from([3, 10**5, 10**12]))
        cols = n_cols_hint if n_cols_hint is not None else 2
        return np.broadcast_to(np.float64(draw(tame)), (rows, cols))
    return base


CONFIGS = st.fixed_dictionaries({
    "n_in": st.integers(1, 4), "hidden_widths": st.lists(st.integers(1, 5), max_size=2),
    "n_out": st.integers(1, 4),
    "hidden": st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "identity"]),
    "head": st.sampled_from([("sigmoid", "squared_error"), ("identity", "squared_error"),
                             ("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"),
                             ("softmax", "squared_error"), ("exp", "poisson"),
                             ("exp", "squared_error")]),
    "dtype": st.sampled_from(["float64", "float32"]),
    "seed": st.integers(0, 2**64 - 1),
})


def build(cfg) -> cprop.MLP:
    output, loss = cfg["head"]
    n_out = max(cfg["n_out"], 2) if output == "softmax" else cfg["n_out"]
    return cprop.MLP([cfg["n_in"], *cfg["hidden_widths"], n_out], hidden=cfg["hidden"],
                     output=output, loss=loss, dtype=cfg["dtype"], seed=cfg["seed"])


@st.composite
def net_and_data(draw):
    net = build(draw(CONFIGS))
    n_in, n_out = net.layer_sizes[0], net.layer_sizes[-1]
    n = draw(st.integers(1, 6))
    if draw(st.booleans()):   # well-formed data, so the kernels actually run
        X = np.array(draw(st.lists(tame, min_size=n * n_in, max_size=n * n_in))).reshape(n, n_in)
        if net.loss_name == "cross_entropy":
            T = np.eye(n_out)[draw(st.lists(st.integers(0, n_out - 1), min_size=n, max_size=n))]
        else:
            T = np.array(draw(st.lists(st.floats(0, 1), min_size=n * n_out,
                                       max_size=n * n_out))).reshape(n, n_out)
        if draw(st.booleans()):   # then damage one of them
            X = draw(st.one_of(st.just(X), arrays(n, n_in)))
            T = draw(st.one_of(st.just(T), arrays(n, n_out)))
    else:
        X = draw(arrays(n, n_in))
        T = draw(arrays(n, n_out))
    return net, X, T


def check_network_intact(net):
    # whatever happened, the network holds finite parameters and still computes (or reports
    # that finite but huge weights, e.g. after lr=1e30, overflow inside the network)
    assert np.isfinite(net.params).all()
    y = call(net.forward, set(), np.zeros(net.layer_sizes[0]))
    if y is not None:
        assert y.shape == (net.layer_sizes[-1],) and np.isfinite(y).all()


# ------------------------------------------------------------------------------------------------
# constructor
# ------------------------------------------------------------------------------------------------

WEIRD = st.sampled_from([None, "x", "", -1, 0, 1, 2**64, 2**70, -(2**63), 1.5, math.nan, math.inf,
                         1e308, True, False, [1], (), {}, b"ab", complex(1, 1), np.float32(0.5),
                         np.int64(2), np.array([1, 2]), np.array(3), fractions.Fraction(1, 2)])
width = st.one_of(st.integers(-2, 6), st.sampled_from([2**40, 2**70, 1.0, True, "3", None,
                                                       np.int32(2), np.uint64(3), np.float64(2)]))


@fuzz_settings(400)
@given(layer_sizes=st.one_of(st.lists(width, max_size=5), WEIRD, st.text(max_size=3),
                             st.tuples(st.integers(1, 4), st.integers(1, 4))),
       hidden=st.one_of(st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "identity",
                                         "softmax"]), WEIRD),
       output=st.one_of(st.sampled_from(["sigmoid", "softmax", "identity", "tanh", "exp"]),
                        WEIRD),
       loss=st.one_of(st.sampled_from(["squared_error", "cross_entropy",
                                       "binary_cross_entropy", "poisson"]), WEIRD),
       dtype=st.one_of(st.sampled_from(["float64", "float32", np.float32, ">f8", "f2", "i8",
                                        "complex64", object, "float128"]), WEIRD),
       seed=st.one_of(st.integers(-5, 2**65), WEIRD),
       train_biases=st.one_of(st.booleans(), WEIRD),
       negative_slope=st.one_of(st.floats(), WEIRD),
       init=st.one_of(st.sampled_from(["glorot_uniform", "glorot_normal", "he_uniform",
                                       "he_normal", "zeros"]), WEIRD))
def test_fuzz_constructor(layer_sizes, hidden, output, loss, dtype, seed, train_biases,
                          negative_slope, init):
    RUNS["constructor"] += 1
    names = {"layer_sizes", "hidden", "output", "loss", "dtype", "seed", "train_biases",
             "negative_slope", "init"}
    net = call(cprop.MLP, names, layer_sizes, hidden=hidden, output=output, loss=loss,
               dtype=dtype, seed=seed, train_biases=train_biases, negative_slope=negative_slope,
               init=init)
    if net is not None:
        assert net.params.dtype in (np.float64, np.float32)
        assert net.n_params == sum(a * b + b for a, b in zip(net.layer_sizes[:-1],
                                                             net.layer_sizes[1:]))
        check_network_intact(net)


@fuzz_settings(150)
@given(cfg=CONFIGS, data=st.data())
def test_fuzz_constructor_init_pairs(cfg, data):
    RUNS["constructor init=(W, b) pairs"] += 1
    sizes = [cfg["n_in"], *cfg["hidden_widths"], cfg["n_out"]]
    pairs = [(data.draw(arrays(a, b)), data.draw(arrays(None, b)))
             for a, b in zip(sizes[:-1], sizes[1:])]
    pairs = data.draw(st.one_of(st.just(pairs), st.just(pairs[:-1]), st.just(pairs * 2),
                                st.just([p[0] for p in pairs]), st.just(iter(pairs)), WEIRD))
    net = call(cprop.MLP, {"init", "layer_sizes"}, sizes, dtype=cfg["dtype"], init=pairs)
    if net is not None:
        check_network_intact(net)


# ------------------------------------------------------------------------------------------------
# forward, loss, gradients, train_step
# ------------------------------------------------------------------------------------------------

@fuzz_settings(500)
@given(case=net_and_data(), transpose=st.booleans())
def test_fuzz_forward(case, transpose):
    RUNS["forward"] += 1
    net, X, _ = case
    if transpose and isinstance(X, np.ndarray) and X.ndim == 2:
        X = X.T
    y = call(net.forward, {"X"}, X)
    if y is not None:
        assert y.dtype == net.dtype and np.isfinite(y).all()
        n_out = net.layer_sizes[-1]
        assert y.shape[-1] == n_out and y.ndim in (1, 2)
        if net.output == "softmax":
            np.testing.assert_allclose(np.sum(y, axis=-1), 1.0, rtol=1e-5)
    check_network_intact(net)


@fuzz_settings(400)
@given(case=net_and_data(), data=st.data())
def test_fuzz_loss_and_gradients(case, data):
    RUNS["loss + gradients"] += 1
    net, X, T = case
    kw = {}
    if data.draw(st.booleans(), label="weighted"):
        kw["sample_weight"] = data.draw(sample_weights(np.shape(X)), label="sample_weight")
    loss = call(net.loss, {"X", "T", *kw}, X, T, **kw)
    grads = call(net.gradients, {"X", "T", *kw}, X, T, **kw)
    if loss is not None:
        assert isinstance(loss, float) and math.isfinite(loss) and loss >= -1e-12
    if grads is not None:
        gw, gb = grads
        assert [g.shape for g in gw] == [w.shape for w in net.weights]
        assert [g.shape for g in gb] == [b.shape for b in net.biases]
        assert all(np.isfinite(g).all() for g in gw + gb)
    check_network_intact(net)


def sample_weights(x_shape):
    """Weights a user might pass: valid ones (some 0) for the rows of X, or anything."""
    n = x_shape[0] if len(x_shape) == 2 else 1
    if n > 64:  # X is a broadcast view of very many rows: so are its weights
        return st.one_of(st.just(np.broadcast_to(1.0, (n,))), arrays(), WEIRD)
    return st.one_of(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=n, max_size=n),
                     arrays(n), WEIRD)


OPT_KW = {
    "optimizer": st.one_of(st.sampled_from(["sgd", "adam", "adamw", "rprop"]), WEIRD),
    "momentum": st.one_of(st.sampled_from([0.0, 0.5, 0.99]), WEIRD),
    "nesterov": st.one_of(st.booleans(), WEIRD),
    "beta1": st.one_of(st.sampled_from([0.0, 0.9]), WEIRD),
    "beta2": st.one_of(st.sampled_from([0.5, 0.999]), WEIRD),
    "eps": st.one_of(st.sampled_from([1e-8, 1e-300, 1.0]), WEIRD),
    "alpha": st.one_of(st.sampled_from([0.0, 1e-4, 1e300]), WEIRD),
}
LR = st.one_of(st.sampled_from([0.5, 0.01, 1e-45, 1e-320, 1e30, 1e39, 1e308]), WEIRD)


def kwargs_subset(pool):
    return st.fixed_dictionaries({}, optional=pool)


@fuzz_settings(400)
@given(case=net_and_data(), lr=LR, kw=kwargs_subset(OPT_KW))
def test_fuzz_train_step(case, lr, kw):
    RUNS["train_step"] += 1
    net, X, T = case
    before = net.params.copy()
    loss = call(net.train_step, {"X", "T", "lr", *kw}, X, T, lr, **kw)
    if loss is None:
        assert np.array_equal(net.params, before)    # a refused call changes nothing
    else:
        assert math.isfinite(loss)
    check_network_intact(net)


@given(case=net_and_data(), lr=LR, kw=kwargs_subset(OPT_KW), data=st.data())
def test_fuzz_stepper(case, lr, kw, data):
    # net.stepper(lr, **options) checks its options once; each call on any X, T steps in C or
    # takes train_step's checked route, which raises as train_step does.
    RUNS["stepper"] += 1
    net, X, T = case
    step = call(net.stepper, {"lr", *kw}, lr, **kw)
    if step is None:
        check_network_intact(net)
        return
    for _ in range(data.draw(st.integers(1, 3), label="calls")):
        before = net.params.copy()
        loss = call(step, {"X", "T", "lr", *kw}, X, T)
        if loss is None:
            assert np.array_equal(net.params, before)    # a refused call changes nothing
        else:
            assert math.isfinite(loss)
    check_network_intact(net)


@given(case=net_and_data(), lr=LR, batch_size=st.one_of(st.integers(-1, 5), WEIRD),
       order=st.one_of(st.none(), arrays()), data=st.data())
def test_fuzz_run_steps(case, lr, batch_size, order, data):
    RUNS["run_steps"] += 1
    net, X, T = case
    from cprop.optimizers import OptimizerOptions

    opt = data.draw(st.sampled_from([OptimizerOptions(), OptimizerOptions("adam"),
                                     OptimizerOptions("sgd", momentum=0.9), "sgd", None]),
                    label="optimizer")
    slots = opt.slots if isinstance(opt, OptimizerOptions) else 0
    state = data.draw(st.one_of(
        st.just(np.zeros(slots * net.n_params, dtype=net.dtype)),
        arrays()), label="state")
    steps = data.draw(st.one_of(st.just(np.zeros(1, dtype=np.int64)), arrays()), label="steps")
    before = net.params.copy()
    kw = {}
    if data.draw(st.booleans(), label="weighted"):
        kw["sample_weight"] = data.draw(sample_weights(np.shape(X)), label="sample_weight")
    out = call(net.run_steps, {"X", "T", "lr", "batch_size", "optimizer", "state", "steps",
                               "order", "sklearn_conventions", *kw},
               X, T, lr, batch_size, opt, state, steps, order=order,
               sklearn_conventions=data.draw(st.booleans(), label="sklearn_conventions"), **kw)
    if out is None:
        assert np.array_equal(net.params, before)
    check_network_intact(net)


# ------------------------------------------------------------------------------------------------
# fit and every keyword
# ------------------------------------------------------------------------------------------------

def _schedule(kind, value):
    try:
        return {"inv": lambda: schedules.InverseScaling(power_t=value),
                "step": lambda: schedules.Step(step_size=1, gamma=value),
                "cos": lambda: schedules.Cosine(lr_min=value)}[kind]()
    except (ValueError, TypeError, OverflowError):
        return "constant"


SCHEDULES = st.one_of(
    st.sampled_from(["constant", "invscaling", "step", "cosine", "Constant", ""]), WEIRD,
    st.builds(_schedule, st.sampled_from(["inv", "step", "cos"]),
              st.sampled_from([0.0, 0.5, 1.0, 1e-300, 1e308, 2**70, 10**400, 1e3])))

FIT_KW = dict(OPT_KW, **{
    "epochs": st.one_of(st.integers(1, 3), st.sampled_from([0, -1, 2**70, 1.5, "2", True, None,
                                                             np.int64(2)])),
    "lr": LR,
    "batch_size": st.one_of(st.integers(1, 8), st.sampled_from([2**70, 0, -3]), WEIRD),
    "shuffle": st.one_of(st.booleans(), WEIRD),
    "seed": st.one_of(st.integers(0, 2**64 - 1), WEIRD),
    "lr_schedule": SCHEDULES,
    "validation_fraction": st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.99, 1.0]), WEIRD),
    "early_stopping": st.one_of(st.booleans(), WEIRD),
    "patience": st.one_of(st.integers(1, 3), st.sampled_from([2**70]), WEIRD),
    "min_delta": st.one_of(st.sampled_from([0.0, 1e-3, 1e308]), WEIRD),
    "callbacks": st.one_of(st.sampled_from([(), (lambda net, h: None,), (lambda net, h: True,),
                                            lambda net, h: 0, ("x",), (None,)]), WEIRD),
    "progress": st.one_of(st.sampled_from([None, False]), WEIRD),
})


@fuzz_settings(250)
@given(case=net_and_data(), kw=kwargs_subset(FIT_KW), val=st.sampled_from(["none", "ok", "bad"]),
       data=st.data())
def test_fuzz_fit(case, kw, val, data):
    RUNS["fit"] += 1
    net, X, T = case
    if val == "ok":
        kw["validation_data"] = (X, T)
    elif val == "bad":
        kw["validation_data"] = data.draw(st.one_of(
            WEIRD, st.tuples(arrays(3, net.layer_sizes[0])),
            st.tuples(arrays(3, net.layer_sizes[0]), arrays(3, net.layer_sizes[-1])),
            st.tuples(st.just(X), st.just(T), st.just(T))))
    if data.draw(st.booleans(), label="weighted"):
        kw["sample_weight"] = data.draw(sample_weights(np.shape(X)), label="sample_weight")
    names = {"X", "T", "lr_schedule", *kw}
    before = net.params.copy()
    history = call(net.fit, names, X, T, **kw)
    if history is None:
        assert np.isfinite(net.params).all()
    else:
        assert 1 <= history.epochs and all(math.isfinite(v) for v in history.loss)
        assert len(history.lr) == history.epochs
        if kw.get("validation_data") is not None or kw.get("validation_fraction"):
            assert len(history.val_loss) == history.epochs
        assert history.stop_reason in ("max_epochs", "early_stopping", "callback")
        del before
    check_network_intact(net)


# ------------------------------------------------------------------------------------------------
# cprop.load's path argument (file contents are fuzzed in test_fuzz_load.py)
# ------------------------------------------------------------------------------------------------

@fuzz_settings(100)
@given(path=st.one_of(WEIRD, st.text(max_size=8), st.binary(max_size=8),
                      st.sampled_from(["/", ".", "/dev/null", "/proc/self/status", "nonexistent",
                                       "a\x00b", "/dev/zero/x"])))
def test_fuzz_load_path(path):
    RUNS["load(path)"] += 1
    try:
        net = cprop.load(path)
    except (FileNotFoundError, PermissionError, NotADirectoryError):
        return
    except (ValueError, TypeError) as exc:
        # "path: ..." for a bad argument, "'<file>' is not ..." for a file that is not a model
        label = repr(os.fsdecode(path)) if isinstance(path, (str, bytes)) else "path"
        assert names_argument(exc, {"path"}) or str(exc).startswith(label), str(exc)
        return
    pytest.fail(f"load({path!r}) returned {net!r}")


# ------------------------------------------------------------------------------------------------
# the command line
# ------------------------------------------------------------------------------------------------

TOKENS = st.sampled_from(["--json", "--network", "seed", "canonical", "bogus", "--steps", "0", "2",
                          "-1", "x", "--layers", "3,4,2", "1,1", "0,2", "2", "", ",", "1e3,2",
                          "1099511627776,1", "--seed", "7", "-3", "18446744073709551616",
                          "--hidden", "relu", "softmax", "--output", "identity", "--loss",
                          "cross_entropy", "binary_cross_entropy", "--negative-slope", "nan",
                          "-0.5", "--x", "0.1,0.2,0.3", "1e308,1e308,1e308", "nan,1,2", "inf",
                          "--t", "0,1", "2,3", "0.5,0.5", "--lr", "0.5", "1e400", "0", "1e308",
                          "--help", "--version", "-h", "\x00", "é"])


@fuzz_settings(300)
@example(command="explain", rest=["--layers", "1,1", "--hidden", "identity", "--output",
                                  "identity", "--x", "1e308", "--t", "1"])   # overflow: exit 2
@given(command=st.sampled_from(["demo", "explain", "info", "bogus", "", "--json"]),
       rest=st.lists(TOKENS, max_size=8))
def test_fuzz_cli(command, rest):
    RUNS["cli"] += 1
    argv = ([command] if command else []) + rest
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:   # argparse: bad usage (2), --help / --version (0)
            status = exc.code
    assert status in (0, 2), (argv, status, err.getvalue())
    if status == 2:
        assert "error" in err.getvalue(), err.getvalue()
        assert "Traceback" not in err.getvalue()
    elif "--help" not in argv and "-h" not in argv and "--version" not in argv:
        assert out.getvalue(), argv
        if "--json" in argv[1:] and command in ("demo", "explain", "info"):
            json.loads(out.getvalue())
