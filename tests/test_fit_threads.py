"""``MLP.fit(n_threads=...)``: one network's large batches shared by threads.

A batch of 128+ rows whose layers all go through gemm is cut into 2 or 4 fixed parts
(``Plan.parts``) whatever the thread count, the parts' gradients added in part order: so every
thread count gives the same bits (DESIGN), and a parted batch still computes the gradient of the
batch's mean loss (checked against the plain-Python oracle). Also: the threads really run (their
names are seen from a callback), the checks of ``n_threads`` and ``CPROP_NUM_THREADS``, refused
steps, Ctrl-C, and the checks that keep the kernels' buffers in bounds.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from parity import RTOL, assert_rel, interrupt_after, same_bits

import cprop
from cprop import oracle
from cprop._kernels import _mlp
from cprop.optimizers import check_optimizer

WIDE = [20, 64, 8]       # every layer through gemm at 64 rows (64 * 20 * 64, 64 * 64 * 8 >= 4096)
NARROW = [4, 8, 3]       # never cut: the loop routes, bit-identical to the oracle


def data(n=600, sizes=WIDE, seed=0, dtype="float64", targets="softmax"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    if targets == "softmax":
        T = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    else:
        T = rng.uniform(size=(n, sizes[-1])).astype(dtype)
    return X, T


def team_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("cprop-team-"))


# ------------------------------------------------------------------------------------------------
# the rule
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, parts", [(1, 1), (64, 1), (127, 1), (128, 2), (200, 2),
                                         (255, 2), (256, 4), (257, 4), (5000, 4)])
def test_a_wide_batch_is_cut_into_power_of_two_parts_of_64_rows_or_more(rows, parts):
    net = cprop.MLP(WIDE)
    assert net._plan.parts(rows) == parts
    assert _mlp.MAX_PARTS == 4 and _mlp.PART_ROWS == 64


def test_a_batch_with_a_layer_off_gemm_is_never_cut():
    assert cprop.MLP(NARROW)._plan.parts(10_000) == 1
    # one narrow layer is enough: a 64-row block of 32 -> 1 is 2048 multiply-adds (< 4096)
    assert cprop.MLP([64, 32, 1])._plan.parts(10_000) == 1
    assert cprop.MLP([64, 32, 2])._plan.parts(10_000) == 4


# ------------------------------------------------------------------------------------------------
# the same bits for every thread count
# ------------------------------------------------------------------------------------------------

FIT_CASES = {
    # name: (net kwargs, fit kwargs, targets)
    "adam batch 200": (dict(hidden="relu", output="softmax", loss="cross_entropy"),
                       dict(optimizer="adam", lr=1e-2, batch_size=200), "softmax"),
    "adam l2, shuffled": (dict(hidden="tanh", output="softmax", loss="cross_entropy"),
                          dict(optimizer="adam", lr=1e-2, batch_size=256, alpha=1e-3,
                               shuffle=True, seed=5), "softmax"),
    "adamw": (dict(hidden="relu", output="softmax", loss="cross_entropy"),
              dict(optimizer="adamw", lr=1e-2, batch_size=300, alpha=0.05), "softmax"),
    "sgd momentum": (dict(hidden="sigmoid"), dict(lr=0.5, momentum=0.9, batch_size=128),
                     "uniform"),
    "plain sgd, batch over one block": (dict(hidden="leaky_relu"),
                                        dict(lr=0.1, batch_size=600), "uniform"),
    "rprop, full batch": (dict(hidden="tanh", output="sigmoid", loss="binary_cross_entropy"),
                          dict(optimizer="rprop", lr=0.01, batch_size=600), "uniform"),
    "poisson": (dict(hidden="relu", output="exp", loss="poisson"),
                dict(optimizer="adam", lr=1e-3, batch_size=256), "uniform"),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(FIT_CASES))
def test_every_thread_count_gives_the_same_bits(case, dtype):
    net_kw, fit_kw, targets = FIT_CASES[case]
    X, T = data(dtype=dtype, targets=targets)
    fit_kw = dict(fit_kw)
    fit_kw.setdefault("shuffle", False)
    results = []
    for n_threads in (1, 2, 3, 4, 8):
        net = cprop.MLP(WIDE, dtype=dtype, seed=1, **net_kw)
        history = net.fit(X, T, epochs=3, n_threads=n_threads, **fit_kw)
        results.append((net.params.copy(), history.loss, net._opt_state.copy()))
    p1, h1, s1 = results[0]
    assert np.isfinite(p1).all() and h1[-1] < h1[0]  # it trained
    for params, history, state in results[1:]:
        assert same_bits(params, p1)
        assert history == h1
        assert same_bits(state, s1)


def test_same_bits_with_sample_weights_validation_and_callbacks():
    X, T = data()
    w = np.random.default_rng(2).uniform(0, 2, size=X.shape[0])
    runs = []
    for n_threads in (1, 2):
        seen = []
        net = cprop.MLP(WIDE, hidden="relu", output="softmax", loss="cross_entropy", seed=4)
        history = net.fit(X, T, epochs=4, optimizer="adam", lr=1e-2, batch_size=256,
                          sample_weight=w, validation_fraction=0.2,
                          callbacks=[lambda net, h, seen=seen: seen.append(team_threads())],
                          n_threads=n_threads)
        runs.append((net.params.copy(), history.loss, history.val_loss, seen))
    assert same_bits(runs[0][0], runs[1][0])
    assert runs[0][1:3] == runs[1][1:3]
    # the threads really ran: a team of two lives for the whole fit, and none without it
    assert runs[0][3] == [[]] * 4
    assert runs[1][3] == [["cprop-team-1"]] * 4
    assert team_threads() == []  # joined when fit returned


def test_cprop_num_threads_is_the_default(monkeypatch):
    X, T = data()
    seen = []
    monkeypatch.setenv("CPROP_NUM_THREADS", "4")
    net = cprop.MLP(WIDE, seed=0)
    net.fit(X, T, epochs=1, batch_size=256, lr=0.1, momentum=0.5,
            callbacks=[lambda net, h: seen.append(team_threads())])
    # 4 threads for 4 parts: the caller's and three workers
    assert seen == [["cprop-team-1", "cprop-team-2", "cprop-team-3"]]
    seen.clear()
    net.fit(X, T, epochs=1, batch_size=256, lr=0.1, momentum=0.5, n_threads=1,
            callbacks=[lambda net, h: seen.append(team_threads())])
    assert seen == [[]]  # an explicit n_threads wins
    seen.clear()
    net.fit(X, T, epochs=1, batch_size=200, lr=0.1, momentum=0.5,
            callbacks=[lambda net, h: seen.append(team_threads())])
    assert seen == [["cprop-team-1"]]  # 2 parts: no more than 2 threads


def test_narrow_networks_and_small_batches_start_no_threads():
    seen = []
    X, T = data(sizes=NARROW)
    cprop.MLP(NARROW).fit(X, T, epochs=1, batch_size=300, n_threads=4,
                          callbacks=[lambda net, h: seen.append(team_threads())])
    X, T = data()
    cprop.MLP(WIDE).fit(X, T, epochs=1, batch_size=100, n_threads=4,
                        callbacks=[lambda net, h: seen.append(team_threads())])
    assert seen == [[], []]


def test_train_step_and_the_stepper_cut_a_batch_as_fit_does():
    X, T = data(n=256)
    kw = dict(hidden="relu", output="softmax", loss="cross_entropy", seed=7)
    a, b, c = cprop.MLP(WIDE, **kw), cprop.MLP(WIDE, **kw), cprop.MLP(WIDE, **kw)
    a.fit(X, T, epochs=2, batch_size=256, shuffle=False, optimizer="adam", lr=1e-2, n_threads=2)
    for _ in range(2):
        b.train_step(X, T, optimizer="adam", lr=1e-2)
    step = c.stepper(optimizer="adam", lr=1e-2)
    for _ in range(2):
        step(X, T)
    assert same_bits(a.params, b.params) and same_bits(a.params, c.params)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_threads, alpha", [(1, 0.0), (2, 0.0), (1, 0.5), (2, 0.5)])
def test_adams_carried_bounds_give_the_steps_taken_one_call_at_a_time(n_threads, alpha, dtype):
    # Within a fit, Adam's safety test reads bounds on params, m and v carried from the last
    # step; one train_step call per batch takes them exactly every time. The same bits either
    # way. alpha 0.5 makes the carried bound on |params| grow ~1e5-fold a step, past the safety
    # limit within about 60 steps in float64 (1e300) and 7 in float32 (1e36): the exact maxima
    # are then taken again.
    X, T = data(n=12_800, dtype=dtype)
    kw = dict(hidden="relu", output="softmax", loss="cross_entropy", seed=3, dtype=dtype)
    a, b = cprop.MLP(WIDE, **kw), cprop.MLP(WIDE, **kw)
    opt = dict(optimizer="adam", lr=1e-3, alpha=alpha)
    a.fit(X, T, epochs=2, batch_size=128, shuffle=False, n_threads=n_threads, **opt)
    for _ in range(2):
        for s in range(0, 12_800, 128):
            b.train_step(X[s:s + 128], T[s:s + 128], **opt)
    assert a.state_dict()["optimizer_steps"] == b.state_dict()["optimizer_steps"] == 200
    assert same_bits(a.params, b.params)


# ------------------------------------------------------------------------------------------------
# a parted batch computes the batch's gradient
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rows", [128, 200, 256, 1000])
def test_a_parted_gradient_is_the_oracles(rows, dtype):
    X, T = data(n=rows, dtype=dtype)
    net = cprop.MLP(WIDE, hidden="tanh", output="softmax", loss="cross_entropy", seed=3,
                    dtype=dtype)
    assert net._plan.parts(rows) > 1
    loss, grad = net.loss_and_gradient(X, T)
    assert grad.shape == (net.n_params,)
    o = oracle.MLP(WIDE, hidden="tanh", output="softmax", loss="cross_entropy")
    o.set_params_flat(net.params.astype(np.float64).tolist())
    gw, gb = o.gradients(X.astype(np.float64).tolist(), T.astype(np.float64).tolist())
    ref = np.concatenate([np.concatenate([np.ravel(w), b]) for w, b in zip(gw, gb)])
    # (gemm's blocking, not the parts, sets the float64 error: 1e-12 is the parity tolerance)
    assert_rel(grad, ref, RTOL[dtype], "parted gradient")
    assert loss == pytest.approx(o.loss(X.astype(np.float64).tolist(),
                                        T.astype(np.float64).tolist()), rel=RTOL[dtype])


def test_a_parted_batch_adds_its_parts_in_order():
    # The gradient of a 256-row batch (4 parts of 64) is ((g0 + g1) + g2) + g3 over the parts'
    # gradient sums, then / 256: rebuilt here from each part's own (whole, uncut) gradient.
    X, T = data(n=256)
    net = cprop.MLP(WIDE, hidden="relu", seed=9)
    _, grad = net.loss_and_gradient(X, T)
    parts = [net.loss_and_gradient(X[k * 64:(k + 1) * 64], T[k * 64:(k + 1) * 64])[1] * 64
             for k in range(4)]
    # (64 is a power of two: mean * 64 is the part's sum exactly)
    total = ((parts[0] + parts[1]) + parts[2]) + parts[3]
    assert same_bits(grad, total / 256)


def test_a_parted_batch_scales_its_sum_by_the_reciprocal():
    # The parts' sum times 1 / (the batch's weight sum), not divided by it: the gemm routes'
    # rounding (within 1 ulp of the division), so that the divider is Adam's alone. Weights make
    # each part's sum a power of two (so mean * sum is exact) and the batch's 320.
    X, T = data(n=256)
    w = np.ones(256)
    w[128:192] = 2.0
    net = cprop.MLP(WIDE, hidden="relu", seed=9)
    _, grad = net.loss_and_gradient(X, T, sample_weight=w)
    cuts = [slice(k * 64, (k + 1) * 64) for k in range(4)]
    parts = [net.loss_and_gradient(X[c], T[c], sample_weight=w[c])[1] * w[c].sum()
             for c in cuts]
    total = ((parts[0] + parts[1]) + parts[2]) + parts[3]
    assert same_bits(grad, total * (1.0 / 320))
    assert not same_bits(grad, total / 320)  # (the two roundings differ somewhere here)


# ------------------------------------------------------------------------------------------------
# refused steps, Ctrl-C
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale, kw", [
    (1e3, dict(lr=1e6, momentum=0.9)),               # overflows: the step is refused
    (1e146, dict(optimizer="adam", lr=1e-3)),        # past Adam's bounds: the checked passes
    (1e170, dict(optimizer="adam", lr=1e-3)),        # the loss overflows: refused, no step
])
def test_a_step_near_overflow_goes_the_same_way_on_every_thread_count(scale, kw):
    X, T = data(targets="uniform")
    outcomes = []
    for n_threads in (1, 2):
        net = cprop.MLP(WIDE, hidden="relu", output="identity", seed=0)
        try:
            history = net.fit(X * scale, T, epochs=20, batch_size=200, shuffle=False,
                              n_threads=n_threads, **kw)
            outcome = ("trained", history.loss)
        except FloatingPointError as exc:
            outcome = (str(exc), exc.history.loss)
        outcomes.append((outcome, net.params.copy(), int(net._opt_steps[0])))
        assert np.isfinite(net.params).all()
    assert outcomes[0][0] == outcomes[1][0]
    assert same_bits(outcomes[0][1], outcomes[1][1])
    assert outcomes[0][2] == outcomes[1][2]
    assert team_threads() == []


def test_ctrl_c_stops_a_threaded_fit_and_joins_its_threads():
    X, T = data(n=20_000)
    net = cprop.MLP(WIDE, hidden="relu", output="softmax", loss="cross_entropy", seed=0)
    with interrupt_after(0.3):
        with pytest.raises(KeyboardInterrupt):
            net.fit(X, T, epochs=10**6, batch_size=256, optimizer="adam", lr=1e-3,
                    n_threads=2)
    assert team_threads() == []
    assert np.isfinite(net.params).all()
    assert math.isfinite(net.loss(X[:100], T[:100]))
    net.fit(X[:512], T[:512], epochs=1, batch_size=256, optimizer="adam", lr=1e-3, n_threads=2)


# ------------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, exc, match", [
    (0, ValueError, "n_threads: expected an integer >= 1, got 0"),
    (-2, ValueError, "n_threads: expected an integer >= 1"),
    (True, TypeError, "n_threads: expected an integer >= 1, got bool"),
    (1.5, TypeError, "n_threads: expected an integer >= 1, got float"),
    ("2", TypeError, "n_threads: expected an integer >= 1, got str"),
])
def test_bad_n_threads_is_refused(bad, exc, match):
    X, T = data(n=10)
    net = cprop.MLP(WIDE)
    p0 = net.params.copy()
    with pytest.raises(exc, match=match):
        net.fit(X, T, n_threads=bad)
    assert same_bits(net.params, p0)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_cprop_num_threads_is_refused(monkeypatch, value):
    monkeypatch.setenv("CPROP_NUM_THREADS", value)
    X, T = data(n=10)
    with pytest.raises(ValueError, match="CPROP_NUM_THREADS.*integer >= 1"):
        cprop.MLP(WIDE).fit(X, T)
    cprop.MLP(WIDE).fit(X, T, n_threads=1)  # an explicit value does not read it


def test_team_and_grad_checks_keep_the_kernels_in_bounds():
    net = cprop.MLP(WIDE)
    plan = net._plan
    X, T = data(n=256)
    A, D, grad = net._workspace(256)
    assert grad.shape == (4 * net.n_params,)
    with pytest.raises(ValueError, match=r"n_threads: expected 1 to 4"):
        _mlp.Team(plan, 5, 256, "float64")
    with pytest.raises(ValueError, match="dtype"):
        _mlp.Team(plan, 2, 256, "int32")
    opt = check_optimizer("sgd", momentum=0.5)
    state = np.zeros(net.n_params)
    args = lambda g, team: (net.params, X, T, np.array([0.1]), 256, False, net._rng,  # noqa: E731
                            opt, True, state, np.zeros(1, dtype=np.int64),
                            np.empty(256, dtype=np.intp), g, A, D, np.empty(1))
    with pytest.raises(ValueError, match=r"grad: expected at least \d+ values \(4 slot"):
        plan.fit(*args(np.empty(net.n_params), None))
    with pytest.raises(ValueError, match="grad: expected at least"):
        plan.gradient(net.params, X, T, np.empty(net.n_params), A, D)
    with pytest.raises(ValueError, match="team: built for workspaces of 128 rows"):
        with _mlp.Team(plan, 2, 128, "float64") as team:
            plan.fit(*args(grad, None), team=team)
    with pytest.raises(RuntimeError, match="not started"):
        plan.fit(*args(grad, None), team=_mlp.Team(plan, 2, 256, "float64"))
    with pytest.raises(ValueError, match="team: built for float32"):
        with _mlp.Team(plan, 2, 256, "float32") as team:
            plan.fit(*args(grad, None), team=team)
    p0 = net.params.copy()
    with _mlp.Team(plan, 2, 256, "float64") as team:
        assert team_threads() == ["cprop-team-1"]
        plan.fit(*args(grad, None), team=team)
    assert team_threads() == []
    assert not same_bits(net.params, p0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_sklearn_estimators_follow_cprop_num_threads_with_the_same_bits(monkeypatch):
    from cprop.sklearn import MLPClassifier

    teams = []
    real_team = _mlp.Team
    monkeypatch.setattr(_mlp, "Team", lambda *a: teams.append(a[1]) or real_team(*a))

    rng = np.random.default_rng(0)
    X = rng.normal(size=(700, 20))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0.5)
    fits = []
    for value in ("1", "2"):
        monkeypatch.setenv("CPROP_NUM_THREADS", value)
        clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=5, random_state=0, batch_size=256,
                            tol=0.0)
        clf.fit(X, y)
        fits.append((clf.loss_curve_, [c.copy() for c in clf.coefs_]))
    # one team of two threads with CPROP_NUM_THREADS=2, for the kernel's epoch loop: the whole
    # fit is one call (the per-epoch Python loop makes one per epoch)
    assert teams == [2]
    assert fits[0][0] == fits[1][0]
    assert all(same_bits(a, b) for a, b in zip(fits[0][1], fits[1][1]))


def test_a_callback_that_raises_leaves_no_threads_behind():
    X, T = data()
    net = cprop.MLP(WIDE, seed=0)

    def boom(net, history):
        assert team_threads() == ["cprop-team-1"]
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        net.fit(X, T, epochs=5, batch_size=256, lr=0.1, momentum=0.5, n_threads=2,
                callbacks=[boom])
    assert team_threads() == []
    assert len(net.fit(X, T, epochs=1, batch_size=256, lr=0.1, n_threads=2).loss) == 1
