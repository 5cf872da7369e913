"""The lanes kernel of populations (``_mlp.population_sgd_fit``) against ``MLP.fit`` net by net.

Every net of a population trained by the kernel must end where ``MLP.fit(X, T, epochs,
lr=lr[i], batch_size=1, shuffle=False, optimizer="sgd")`` from the same start ends, to rounding
(the kernel's vector exp against libm's: 1e-12 relative in float64 after 20 epochs, 1e-5 in
float32), with the same epoch losses; a net whose step is refused stops as ``MLP.fit`` does (its
history up to the epoch before, the parameters of its last applied step) while the others go
on. Every instruction set the machine has gives the same bits.
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
N_NETS = 37  # not a multiple of any block width (8 to 128 nets)
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
    """Relative to each net's largest value (a row: one net's parameters or epoch losses), so
    that a parameter near 0 is held to the net's scale; float32 with a floor of 1."""
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    scale = np.nanmax(np.abs(want), axis=1, keepdims=True, initial=0.0) * np.ones_like(want)
    scale = np.maximum(scale, 1.0 if tol > 1e-9 else 1e-300)
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
def test_options_pass_through(dtype):
    # train_biases=False and leaky_relu's slope reach the kernel: the biases stay bit for bit,
    # and the result is MLP.fit's with the same options.
    sizes = [3, 6, 2]
    P, X, T, lr = make_problem(sizes, "leaky_relu", "sigmoid", "binary_cross_entropy", dtype,
                               slope=0.2)
    want = reference(sizes, "leaky_relu", "sigmoid", "binary_cross_entropy", dtype, P, X, T,
                     lr, 7, train_biases=False, slope=0.2)
    got = kernel(sizes, "leaky_relu", "sigmoid", "binary_cross_entropy", P, X, T, lr, 7,
                 train_biases=False, slope=0.2)
    biases = np.r_[18:24, 36:38]  # b1 (6) after W1 (3 x 6), b2 (2) after W2 (6 x 2)
    np.testing.assert_array_equal(got[0][:, biases], P[:, biases])
    assert not np.array_equal(got[0], P)
    assert_close(got[0], want[0], TOL[dtype])
    assert_close(got[1], want[1], TOL[dtype])
    other = kernel(sizes, "leaky_relu", "sigmoid", "binary_cross_entropy", P, X, T, lr, 7,
                   train_biases=False, slope=0.01)
    assert np.max(np.abs(other[0] - got[0])) > 1e-6  # the slope changes the result


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output,loss,big", [("identity", "squared_error", 1e4),
                                             ("exp", "poisson", 3.0)])
def test_diverging_nets_stop_as_mlp_fit_does(output, loss, big, dtype):
    sizes = [4, 8, 3]
    P, X, T, lr = make_problem(sizes, "tanh", output, loss, dtype, n_nets=37, seed=3)
    lr[[3, 20, 36]] = big  # (blocks of 8 to 128 nets: in one or in several)
    want_p, want_l, want_s = reference(sizes, "tanh", output, loss, dtype, P, X, T, lr, EPOCHS)
    got_p, got_l, got_s = kernel(sizes, "tanh", output, loss, P, X, T, lr, EPOCHS)
    assert np.all(want_s[[3, 20, 36]] > 0)  # they do diverge
    assert np.sum(want_s > 0) == 3
    assert np.array_equal(got_s, want_s)
    assert np.all(np.isfinite(got_p))
    assert_close(got_p, want_p, TOL[dtype])
    assert_close(got_l, want_l, TOL[dtype])


ISAS = _mlp.population_isas()


@pytest.fixture
def each_isa():
    """Runs the kernel on one instruction set after another; restores the one in use."""
    before = _mlp.population_isa()
    yield ISAS
    _mlp.set_population_isa(before)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes,hidden,output,loss", [
    ([2, 2, 1], "sigmoid", "sigmoid", "squared_error"),
    ([4, 8, 3], "sigmoid", "softmax", "cross_entropy"),
    ([3, 5, 4, 2], "relu", "exp", "poisson"),
    ([3, 6, 2], "leaky_relu", "sigmoid", "binary_cross_entropy"),
    ([3, 4, 3], "tanh", "softmax", "squared_error"),
    ([2, 5, 2], "identity", "identity", "squared_error")])
def test_every_instruction_set_gives_the_same_bits(each_isa, sizes, hidden, output, loss,
                                                    dtype):
    P, X, T, lr = make_problem(sizes, hidden, output, loss, dtype, n_nets=150)
    lr[[5, 140]] = 1e4 if loss == "squared_error" and output == "identity" else lr[[5, 140]]
    got = {}
    for isa in each_isa:
        assert _mlp.set_population_isa(isa) in ISAS
        assert _mlp.population_isa() == isa
        got[isa] = kernel(sizes, hidden, output, loss, P, X, T, lr, 6)
    assert "scalar" in got and len(got) >= 2
    for isa, (p, l, s) in got.items():
        assert p.tobytes() == got["scalar"][0].tobytes(), isa
        assert l.tobytes() == got["scalar"][1].tobytes(), isa
        assert np.array_equal(s, got["scalar"][2]), isa


def test_the_instruction_sets_and_their_blocks(each_isa):
    assert ISAS[0] == "scalar"
    assert set(ISAS) <= set(_mlp.POPULATION_ISAS)
    if _mlp.simd_isa() in ("sse2", "avx2"):  # x86-64: SSE2 is baseline
        assert ISAS[:2] == ("scalar", "sse2")
    widths = {}
    for isa in each_isa:
        _mlp.set_population_isa(isa)
        widths[isa] = (_mlp.population_block("float64"), _mlp.population_block(np.float32))
    lanes = {"scalar": 1, "sse2": 2, "avx2": 4, "avx512": 8, "neon": 2}
    for isa, (b64, b32) in widths.items():  # eight vectors per block
        assert b64 == 8 * lanes[isa]
        assert b32 == (8 if isa == "scalar" else 2 * b64)
    with pytest.raises(ValueError, match="name: expected one of"):
        _mlp.set_population_isa("avx1024")


def test_cprop_isa_caps_the_set_at_import():
    code = "from cprop._kernels import _mlp; print(_mlp.population_isa())"
    for want in ISAS + ("bogus",):
        env = dict(os.environ, CPROP_ISA=want)
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout.strip()
        assert out == (ISAS[-1] if want == "bogus" else want)


def test_cprop_info_names_the_set():
    import json
    env = dict(os.environ, CPROP_ISA=ISAS[1] if len(ISAS) > 1 else "scalar")
    out = subprocess.run([sys.executable, "-m", "cprop", "info", "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout
    simd = json.loads(out)["simd"]
    assert simd["population"] == env["CPROP_ISA"]
    assert tuple(simd["population_sets"]) == ISAS


@pytest.mark.parametrize("dtype,ulps", [("float64", 2.0), ("float32", 1.1)])
def test_lane_sigmoid_and_exp_accuracy(each_isa, dtype, ulps):
    # Through the kernel: nets 1-1-1 with W2 = 0 and b2 = z, so the output's logit is exactly
    # z, and y = f(z) is read back from the first epoch's loss (squared error, target 0: the
    # double y^2 / 2; exact for a float32 y, within 0.75 ulp for a float64 one, hence 2 ulp
    # there for the 1.1 of the sigmoid). Error in ulps of the type against the exact value
    # (decimal, 40 digits).
    from decimal import Decimal, localcontext
    lo = -300 if dtype == "float64" else -100  # float64: y^2 must not underflow
    z = np.concatenate([np.linspace(lo, 40, 341), [-1000, 0.0, 1000]]).astype(dtype)
    for output in ("sigmoid", "exp"):
        zs = z[np.abs(z) <= (80 if dtype == "float32" else 300)] if output == "exp" else z
        n = len(zs)
        P = np.zeros((n, 4), dtype=dtype)
        P[:, 0], P[:, 3] = 1, zs
        X = np.ones((1, 1), dtype=dtype)
        T = np.zeros((1, 1), dtype=dtype)
        for isa in each_isa:
            _mlp.set_population_isa(isa)
            losses = np.empty((n, 1))
            _mlp.population_sgd_fit(P.copy(), [1, 1, 1], [ACT["identity"], ACT[output]],
                                    LOSS["squared_error"], X, T, np.full(n, 1e-30, dtype), 1,
                                    True, 0.01, losses)
            y = np.sqrt(2 * losses[:, 0])
            worst = 0.0
            for zi, yi in zip(zs.astype(float), y):
                with localcontext() as ctx:
                    ctx.prec = 40
                    e = Decimal(zi).exp()
                    exact = e / (1 + e) if output == "sigmoid" else e
                    rounded = float(np.array(float(exact), dtype=dtype))
                    if rounded in (0.0, 1.0):
                        assert yi == rounded, (isa, output, zi)
                        continue
                    ulp = float(np.spacing(np.array(rounded, dtype=dtype)))
                    worst = max(worst, float(abs(Decimal(yi) - exact)) / ulp)
            assert worst <= ulps, (isa, output, worst)
            assert worst > 0  # the check can fail: the values are not all exact


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
