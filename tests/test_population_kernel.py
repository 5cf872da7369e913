"""The lanes kernel of populations (``_mlp.population_sgd_fit``) against ``MLP.fit`` net by net.

Every net of a population trained by the kernel must end where ``MLP.fit(X, T, epochs,
lr=lr[i], batch_size=1, shuffle=False, optimizer="sgd")`` from the same start ends, with the same
epoch losses; a net whose step is refused stops as ``MLP.fit`` does (its history up to the epoch
before, the parameters of its last applied step) while the others go on.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import cprop
from cprop._kernels import _mlp

ACT = _mlp.ACTIVATION_CODES
LOSS = _mlp.LOSS_CODES
N_NETS = 37  # not a multiple of either block width (16 float64, 32 float32)
EPOCHS = 20
TOL = {"float64": 1e-12, "float32": 1e-5}

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
PAIRINGS = (("sigmoid", "squared_error"), ("identity", "squared_error"),
            ("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"),
            ("softmax", "squared_error"), ("exp", "poisson"))
SHAPES = ([2, 2, 1], [4, 8, 3], [3, 5, 4, 2])
CASES = ([(s, h, "sigmoid", "squared_error") for s in SHAPES for h in HIDDEN]
         + [(s, "tanh", o, loss) for s in SHAPES for o, loss in PAIRINGS
            if not (o == "softmax" and s[-1] < 2)])


def make_problem(sizes, hidden, output, loss, dtype, n_nets=N_NETS, seed=0, n_rows=12,
                 slope=0.01):
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**32, n_nets)
    P = np.stack([cprop.MLP(sizes, hidden=hidden, output=output, loss=loss, dtype=dtype,
                            negative_slope=slope, seed=int(s)).params for s in seeds])
    X = rng.normal(size=(n_rows, sizes[0]))
    if loss == "cross_entropy":
        T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n_rows)]
    elif loss == "binary_cross_entropy":
        T = rng.uniform(size=(n_rows, sizes[-1]))
    elif loss == "poisson":
        T = rng.poisson(1.0, size=(n_rows, sizes[-1])).astype(float)
    else:
        T = rng.normal(size=(n_rows, sizes[-1]))
    lr = rng.uniform(0.01, 0.3, n_nets) / (10 if loss == "poisson" else 1)  # (exp output)
    return (np.ascontiguousarray(P, dtype=dtype), X.astype(dtype), T.astype(dtype),
            lr.astype(dtype))


def reference(sizes, hidden, output, loss, dtype, P, X, T, lr, epochs, train_biases=True,
              slope=0.01):
    """Each net trained alone by MLP.fit: final params, epoch losses (NaN after a refused
    step), status (0, or e + 1 when a step of epoch e was refused)."""
    out = P.copy()
    losses = np.full((len(P), epochs), np.nan)
    status = np.zeros(len(P), dtype=np.int32)
    for i in range(len(P)):
        net = cprop.MLP(sizes, hidden=hidden, output=output, loss=loss, dtype=dtype, seed=0,
                        train_biases=train_biases, negative_slope=slope)
        net.params[:] = P[i]
        try:
            history = net.fit(X, T, epochs=epochs, lr=float(lr[i]), batch_size=1,
                              shuffle=False, optimizer="sgd")
            losses[i] = history.loss
        except (ValueError, ArithmeticError) as exc:
            done = exc.history.loss
            losses[i, :len(done)] = done
            status[i] = len(done) + 1
        out[i] = net.params
    return out, losses, status


def kernel(sizes, hidden, output, loss, P, X, T, lr, epochs, train_biases=True, slope=0.01):
    Q = P.copy()
    losses = np.empty((len(P), epochs))
    codes = [ACT[hidden]] * (len(sizes) - 2) + [ACT[output]]
    status = _mlp.population_sgd_fit(Q, sizes, codes, LOSS[loss], X, T, lr, epochs,
                                     train_biases, slope, losses)
    return Q, losses, status


def assert_close(got, want, tol):
    # relative, with a floor of tol itself for values at or near 0
    scale = np.maximum(np.abs(want), 1.0 if tol > 1e-9 else 1e-3)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.all(np.abs(got[ok] - want[ok]) <= tol * scale[ok]), np.max(
        np.abs(got[ok] - want[ok]) / scale[ok])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes,hidden,output,loss", CASES)
def test_matches_mlp_fit(sizes, hidden, output, loss, dtype):
    P, X, T, lr = make_problem(sizes, hidden, output, loss, dtype)
    want_p, want_l, want_s = reference(sizes, hidden, output, loss, dtype, P, X, T, lr, EPOCHS)
    got_p, got_l, got_s = kernel(sizes, hidden, output, loss, P, X, T, lr, EPOCHS)
    assert got_p.dtype == P.dtype
    assert np.array_equal(got_s, want_s)
    assert np.all(got_s == 0)
    assert_close(got_p, want_p, TOL[dtype])
    assert_close(got_l, want_l, TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_float64_is_bit_identical_and_options(dtype):
    # libm's exp per lane in float64 and the same vector kernels in float32: the same bits as
    # MLP.fit; train_biases=False and leaky_relu's slope pass through.
    sizes = [3, 6, 2]
    P, X, T, lr = make_problem(sizes, "leaky_relu", "sigmoid", "binary_cross_entropy", dtype,
                               slope=0.2)
    want = reference(sizes, "leaky_relu", "sigmoid", "binary_cross_entropy", dtype, P, X, T,
                     lr, 7, train_biases=False, slope=0.2)
    got = kernel(sizes, "leaky_relu", "sigmoid", "binary_cross_entropy", P, X, T, lr, 7,
                 train_biases=False, slope=0.2)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output,loss,big", [("identity", "squared_error", 1e4),
                                             ("exp", "poisson", 3.0)])
def test_diverging_nets_stop_as_mlp_fit_does(output, loss, big, dtype):
    sizes = [4, 8, 3]
    P, X, T, lr = make_problem(sizes, "tanh", output, loss, dtype, n_nets=37, seed=3)
    lr[[3, 20, 36]] = big  # in the first block, the second, and the last (partial) one
    want_p, want_l, want_s = reference(sizes, "tanh", output, loss, dtype, P, X, T, lr, EPOCHS)
    got_p, got_l, got_s = kernel(sizes, "tanh", output, loss, P, X, T, lr, EPOCHS)
    assert np.all(want_s[[3, 20, 36]] > 0)  # they do diverge
    assert np.sum(want_s > 0) == 3
    assert np.array_equal(got_s, want_s)
    assert np.all(np.isfinite(got_p))
    assert_close(got_p, want_p, TOL[dtype])
    assert_close(got_l, want_l, TOL[dtype])


def test_sse2_build_gives_the_same_bits():
    # The portable (SSE2) build, forced by CPROP_NO_AVX2=1, against this process's build.
    code = (
        "import numpy as np, sys\n"
        "sys.path[:0] = [%r]\n"
        "from test_population_kernel import make_problem, kernel\n"
        "for dt in ('float64', 'float32'):\n"
        "    P, X, T, lr = make_problem([3, 5, 4, 2], 'tanh', 'softmax', 'cross_entropy', dt)\n"
        "    p, l, s = kernel([3, 5, 4, 2], 'tanh', 'softmax', 'cross_entropy', P, X, T, lr, 5)\n"
        "    sys.stdout.write(p.tobytes().hex() + l.tobytes().hex())\n"
    ) % os.path.dirname(os.path.abspath(__file__))
    outs = []
    for off in ("1", "0"):
        env = dict(os.environ, CPROP_NO_AVX2=off)
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert outs[0] == outs[1]


def good_args(dtype="float64"):
    sizes = [2, 3, 2]
    P, X, T, lr = make_problem(sizes, "tanh", "softmax", "cross_entropy", dtype, n_nets=5)
    return dict(params=P, layer_sizes=sizes, activations=[ACT["tanh"], ACT["softmax"]],
                loss=LOSS["cross_entropy"], X=X, T=T, lr=lr, epochs=3, train_biases=True,
                negative_slope=0.01, losses=np.empty((5, 3)))


@pytest.mark.parametrize("change,exc,match", [
    (lambda a: a.update(params=a["params"].astype(np.float16)), TypeError, "params"),
    (lambda a: a.update(params=list(a["params"])), TypeError, "params"),
    (lambda a: a.update(params=np.asfortranarray(a["params"])), ValueError, "params"),
    (lambda a: a.update(params=a["params"][:, :-1].copy()), ValueError, "params"),
    (lambda a: a.update(params=a["params"][:0]), ValueError, "params"),
    (lambda a: a["params"].__setitem__((0, 0), np.nan), ValueError, "params"),
    (lambda a: a.update(X=a["X"].astype(np.float32)), TypeError, "X"),
    (lambda a: a.update(X=a["X"][:, :1].copy()), ValueError, "X"),
    (lambda a: a.update(X=a["X"][::2]), ValueError, "X"),
    (lambda a: a.update(T=a["T"][:-1].copy()), ValueError, "T"),
    (lambda a: a["T"].__setitem__((0, 0), np.inf), ValueError, "T"),
    (lambda a: a["T"].__setitem__((0, 0), 2.0), ValueError, "T"),
    (lambda a: a["T"].__setitem__((0, 0), 0.5), ValueError, "T"),
    (lambda a: a["lr"].__setitem__(1, np.nan), ValueError, "lr"),
    (lambda a: a["lr"].__setitem__(1, 0.0), ValueError, "lr"),
    (lambda a: a.update(lr=a["lr"][:-1].copy()), ValueError, "lr"),
    (lambda a: a.update(lr=a["lr"].astype(np.float32)), TypeError, "lr"),
    (lambda a: a.update(losses=np.empty((5, 2))), ValueError, "losses"),
    (lambda a: a.update(losses=np.empty((5, 3), np.float32)), TypeError, "losses"),
    (lambda a: a.update(epochs=0), ValueError, "epochs"),
    (lambda a: a.update(epochs=2.0), TypeError, "epochs"),
    (lambda a: a.update(layer_sizes=[2]), ValueError, "layer_sizes"),
    (lambda a: a.update(activations=[ACT["tanh"]]), ValueError, "activations"),
    (lambda a: a.update(activations=[ACT["softmax"], ACT["softmax"]]), ValueError,
     r"activations\[0\]"),
    (lambda a: a.update(activations=[ACT["tanh"], ACT["sigmoid"]]), ValueError,
     r"activations\[1\]"),
    (lambda a: a.update(loss=99), ValueError, "loss"),
    (lambda a: a.update(train_biases=1), TypeError, "train_biases"),
    (lambda a: a.update(negative_slope=-1.0), ValueError, "negative_slope"),
])
def test_bad_arguments_are_refused(change, exc, match):
    args = good_args()
    change(args)
    with pytest.raises(exc, match=match):
        _mlp.population_sgd_fit(**args)


def test_softmax_needs_two_outputs():
    args = good_args()
    args.update(layer_sizes=[2, 3, 1], params=np.zeros((5, 13)), T=np.zeros((12, 1)))
    with pytest.raises(ValueError, match="layer_sizes"):
        _mlp.population_sgd_fit(**args)
