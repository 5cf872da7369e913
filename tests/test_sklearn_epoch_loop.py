"""cprop.sklearn's epoch loop in the kernel (``_kernels/_sklearn_epochs.pxi``, issue 13): a
whole stochastic fit in one nogil call must train exactly as the per-epoch Python loop does.

* The kernel's shuffle is numpy's legacy ``RandomState.shuffle``: the same permutations and the
  same generator state after, for many lengths and seeds (``_mt19937.pxd``).
* Kernel loop against the per-epoch Python loop (forced with ``_kernel_loop_applies``): the same
  bits in ``loss_curve_``, the weights, ``best_loss_``, ``t_``, ``n_iter_``, the learning rate
  and ``_random_state.get_state()``, for Adam, SGD, the three schedules (adaptive's rate / 5
  resuming in the kernel, invscaling with momentum), ``tol`` stopping, ``shuffle=False``,
  ``sample_weight``, ``warm_start``, the regressor's loss scale, float32, a fit in a thread,
  divergence, a weight sum of 0, and an invscaling rate that overflows or underflows.
* Against scikit-learn's own estimators: ``loss_curve_`` to 1e-12 and the same ``n_iter_`` and
  RandomState state.
* Ctrl-C during a kernel-loop fit: scikit-learn's warning, the epochs done kept.
* Which loop runs: ``_kernel_loop_epochs`` counts the epochs the kernel's loop ran.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import cprop.sklearn  # noqa: E402
from cprop.mlp import SklearnEpochs  # noqa: E402
from cprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from parity import interrupt_after, rel_err  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    # 300 rows: batch_size 64 leaves a short last batch (300 = 4 * 64 + 44)
    return X[:300] / 16.0, y[:300]


def _generator_like(rs: np.random.RandomState) -> SklearnEpochs:
    loop = SklearnEpochs()
    state = rs.get_state(legacy=False)
    loop.set_mt19937(state["state"]["key"], state["state"]["pos"])
    return loop


def _same_state(a: np.random.RandomState, b: np.random.RandomState) -> bool:
    sa, sb = a.get_state(), b.get_state()
    return (sa[0] == sb[0] and np.array_equal(sa[1], sb[1]) and sa[2:] == sb[2:])


# -- the shuffle -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 255, 256, 257, 623, 624, 625, 1198, 65537])
@pytest.mark.parametrize("seed", [0, 1, 42, 2**32 - 1])
def test_kernel_shuffle_is_randomstate_shuffle(n, seed):
    rs = np.random.RandomState(seed)
    rs.standard_normal()        # a cached Gaussian: carried through untouched
    rs.randint(0, 100, size=seed % 11)  # start anywhere in the key block
    loop = _generator_like(rs)
    for _ in range(3):          # consecutive epochs (several regenerations of the keys for big n)
        perm = np.arange(n)
        rs.shuffle(perm)
        x = np.arange(n, dtype=np.intp)
        loop.shuffle_in_place(x)
        assert np.array_equal(x, perm)
    key, pos = loop.get_mt19937()
    state = rs.get_state()
    assert np.array_equal(key, state[1]) and pos == state[2]


def test_shuffling_the_index_in_place_is_indexing_by_the_permutation():
    # scikit-learn's loop does sample_idx = sample_idx[perm] with perm a shuffled arange; the
    # kernel applies the same swaps to sample_idx itself, epoch after epoch
    rs = np.random.RandomState(5)
    loop = _generator_like(rs)
    n = 1198
    idx_python = np.arange(n)
    idx_kernel = np.arange(n, dtype=np.intp)
    for _ in range(5):
        perm = np.arange(n)
        rs.shuffle(perm)
        idx_python = idx_python[perm]
        loop.shuffle_in_place(idx_kernel)
        assert np.array_equal(idx_kernel, idx_python)


@pytest.mark.parametrize("max_value", [0, 1, 6, 2**31, 2**32 - 2, 2**32 - 1, 2**32, 2**32 + 1,
                                       3 * 2**40 + 7, 2**63 + 5, 2**64 - 2])
def test_kernel_interval_draws_are_numpys(max_value):
    # random_interval's 64-bit branch (two 32-bit outputs, the first the high half) is what
    # RandomState.randint's masked rejection draws too; 700 draws cross a regeneration
    rs = np.random.RandomState(7)
    loop = _generator_like(rs)
    for _ in range(700):
        assert loop.interval(max_value) == int(rs.randint(0, max_value + 1, dtype=np.uint64))
    key, pos = loop.get_mt19937()
    assert np.array_equal(key, rs.get_state()[1]) and pos == rs.get_state()[2]


def test_generator_state_is_checked():
    loop = SklearnEpochs()
    with pytest.raises(ValueError, match="624 keys"):
        loop.set_mt19937(np.zeros(623, dtype=np.uint32), 0)
    with pytest.raises(ValueError, match="pos 625"):
        loop.set_mt19937(np.zeros(624, dtype=np.uint32), 625)


# -- the kernel's loop against the per-epoch Python loop ---------------------------------------

def _python_loop(monkeypatch):
    monkeypatch.setattr(cprop.sklearn._BaseMLP, "_kernel_loop_applies",
                        lambda self, *args: False)


def _fit_quietly(est, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit_params)


def _assert_same_bits(a, b):
    """Two fits of cprop.sklearn that must be the same training, bit for bit."""
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    assert a.loss_curve_ == b.loss_curve_
    assert all(type(v) is float for v in a.loss_curve_)
    assert a.loss_ == b.loss_ and a.best_loss_ == b.best_loss_
    assert a._no_improvement_count == b._no_improvement_count
    assert a._solver.lr == b._solver.lr
    assert np.array_equal(a.net_.params, b.net_.params)
    assert np.array_equal(a._solver.state, b._solver.state)
    assert _same_state(a._random_state, b._random_state)


SGD = dict(solver="sgd", learning_rate_init=0.1, momentum=0.0)
LOOP_CASES = {
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "sgd": SGD,
    "sgd-nesterov": dict(SGD, momentum=0.9),
    "sgd-momentum": dict(SGD, momentum=0.9, nesterovs_momentum=False),
    # tol=10: no epoch is progress; the rate is divided by 5 at every other epoch and the loop
    # resumes in the kernel until the rate is too small
    "adaptive": dict(SGD, learning_rate="adaptive", learning_rate_init=0.3, momentum=0.5,
                     tol=10.0, n_iter_no_change=1),
    "invscaling-momentum": dict(SGD, learning_rate="invscaling", learning_rate_init=0.5,
                                power_t=0.3, momentum=0.9),
    "tol-stops": dict(solver="adam", learning_rate_init=0.01, tol=0.05, n_iter_no_change=2),
    "no-shuffle": dict(solver="adam", learning_rate_init=0.01, shuffle=False),
    "no-change-inf": dict(solver="adam", learning_rate_init=0.01, n_iter_no_change=np.inf),
    "batch-1": dict(SGD, batch_size=1, learning_rate_init=0.01, max_iter=3),
}


@pytest.mark.parametrize("case", sorted(LOOP_CASES))
def test_kernel_loop_is_the_python_loop_bit_for_bit(digits, monkeypatch, case):
    X, y = digits
    params = dict(dict(hidden_layer_sizes=(16,), batch_size=64, max_iter=20, random_state=1,
                       alpha=1e-3), **LOOP_CASES[case])
    kernel = _fit_quietly(MLPClassifier(**params), X, y)
    assert kernel._kernel_loop_epochs == kernel.n_iter_ > 0
    with monkeypatch.context() as m:
        _python_loop(m)
        python = _fit_quietly(MLPClassifier(**params), X, y)
    assert python._kernel_loop_epochs == 0
    _assert_same_bits(kernel, python)
    if case == "tol-stops":
        assert kernel.n_iter_ < params["max_iter"]
    if case == "adaptive":
        assert kernel._solver.lr < params["learning_rate_init"] / 5 ** 3


@pytest.mark.parametrize("case", ["adam", "sgd-nesterov", "adaptive", "invscaling-momentum",
                                  "tol-stops", "no-shuffle"])
def test_kernel_loop_matches_sklearn(digits, case):
    X, y = digits
    params = dict(dict(hidden_layer_sizes=(16,), batch_size=64, max_iter=20, random_state=1,
                       alpha=1e-3), **LOOP_CASES[case])
    ours = _fit_quietly(MLPClassifier(**params), X, y)
    ref = _fit_quietly(neural_network.MLPClassifier(**params), X, y)
    assert ours._kernel_loop_epochs == ours.n_iter_ == ref.n_iter_
    assert ours.t_ == ref.t_
    assert rel_err(ours.loss_curve_, ref.loss_curve_) <= 1e-12
    assert ours.best_loss_ == pytest.approx(ref.best_loss_, rel=1e-12, abs=0)
    assert _same_state(ours._random_state, ref._random_state)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert rel_err(a, b) <= 1e-11


def test_sample_weight_regressor_and_float32_take_the_kernel_loop(digits, monkeypatch):
    X, y = digits
    w = np.random.default_rng(0).uniform(0, 2, X.shape[0])
    # three outputs: the loss scale 1/3 is inexact, so the order of its products shows
    Y = np.column_stack([y / 10.0, np.sin(y), np.cos(y)])
    fits = [
        (MLPClassifier, dict(solver="adam", learning_rate_init=0.01), X, y, w),
        (MLPRegressor, dict(solver="sgd", momentum=0.9, learning_rate_init=0.01), X, Y, None),
        (MLPRegressor, dict(solver="adam", learning_rate_init=0.01), X, Y, w),
        (MLPClassifier, dict(solver="adam", learning_rate_init=0.01), X.astype(np.float32), y,
         None),
    ]
    for cls, extra, Xf, yf, sw in fits:
        params = dict(hidden_layer_sizes=(9,), batch_size=50, max_iter=8, random_state=2,
                      alpha=1e-3, **extra)
        kernel = _fit_quietly(cls(**params), Xf, yf, sample_weight=sw)
        assert kernel._kernel_loop_epochs == kernel.n_iter_ == 8
        with monkeypatch.context() as m:
            _python_loop(m)
            python = _fit_quietly(cls(**params), Xf, yf, sample_weight=sw)
        _assert_same_bits(kernel, python)
        ref_cls = (neural_network.MLPClassifier if cls is MLPClassifier
                   else neural_network.MLPRegressor)
        ref = _fit_quietly(ref_cls(**params), Xf.astype(np.float64), yf, sample_weight=sw)
        tol = 1e-12 if Xf.dtype == np.float64 else 1e-5
        assert rel_err(kernel.loss_curve_, ref.loss_curve_) <= tol


def test_warm_start_continues_in_the_kernel_loop(digits, monkeypatch):
    X, y = digits
    params = dict(hidden_layer_sizes=(12,), solver="adam", warm_start=True, max_iter=4,
                  batch_size=64, random_state=4, learning_rate_init=0.01)

    def two_fits(cls):
        est = cls(**params)
        _fit_quietly(est, X, y)
        _fit_quietly(est, X, y)
        return est

    kernel = two_fits(MLPClassifier)
    assert kernel._kernel_loop_epochs == 4 and len(kernel.loss_curve_) == 8
    with monkeypatch.context() as m:
        _python_loop(m)
        python = two_fits(MLPClassifier)
    _assert_same_bits(kernel, python)
    ref = two_fits(neural_network.MLPClassifier)
    assert rel_err(kernel.loss_curve_, ref.loss_curve_) <= 1e-12
    assert _same_state(kernel._random_state, ref._random_state)
    # partial_fit (the per-epoch loop) continues from the state the kernel's loop left
    kernel.partial_fit(X[:100], y[:100])
    ref.partial_fit(X[:100], y[:100])
    assert kernel._kernel_loop_epochs == 0
    assert rel_err(kernel.loss_curve_, ref.loss_curve_) <= 1e-12
    assert _same_state(kernel._random_state, ref._random_state)


def test_many_kernel_calls_are_one(digits, monkeypatch):
    # max_iter beyond the kernel loop's buffer: several calls, the same training as one
    X, y = digits
    params = dict(hidden_layer_sizes=(8,), solver="sgd", momentum=0.9, learning_rate="invscaling",
                  learning_rate_init=0.2, max_iter=10, batch_size=100, random_state=0)
    whole = _fit_quietly(MLPClassifier(**params), X, y)
    monkeypatch.setattr(cprop.sklearn, "_KERNEL_EPOCHS", 3)
    cut = _fit_quietly(MLPClassifier(**params), X, y)
    assert cut._kernel_loop_epochs == 10
    _assert_same_bits(whole, cut)


def test_a_fit_in_another_thread_is_the_same(digits):
    # (there the kernel never polls for Ctrl-C: only the main thread can receive it)
    X, y = digits
    params = dict(hidden_layer_sizes=(16,), max_iter=6, batch_size=64, random_state=3)
    main = _fit_quietly(MLPClassifier(**params), X, y)
    out = {}
    t = threading.Thread(target=lambda: out.update(est=_fit_quietly(MLPClassifier(**params), X, y)))
    t.start()
    t.join()
    assert out["est"]._kernel_loop_epochs == 6
    _assert_same_bits(main, out["est"])


def test_which_loop_runs(digits):
    X, y = digits
    base = dict(hidden_layer_sizes=(8,), max_iter=3, batch_size=100, random_state=0)
    assert _fit_quietly(MLPClassifier(**base), X, y)._kernel_loop_epochs == 3
    for extra in (dict(early_stopping=True), dict(verbose=True)):
        est = _fit_quietly(MLPClassifier(**base, **extra), X, y)
        assert est._kernel_loop_epochs == 0 and est.n_iter_ > 0
    est = MLPClassifier(**base).partial_fit(X, y, classes=np.arange(10))
    assert est._kernel_loop_epochs == 0
    # a RandomState on another bit generator: numpy's own shuffle, per epoch
    other = np.random.RandomState(np.random.PCG64(0))
    est = _fit_quietly(MLPClassifier(**dict(base, random_state=other)), X, y)
    assert est._kernel_loop_epochs == 0 and est.n_iter_ == 3
    # ... which does not matter without shuffling
    est = _fit_quietly(MLPClassifier(**dict(base, random_state=other, shuffle=False)), X, y)
    assert est._kernel_loop_epochs == 3


# -- failures and interruptions ---------------------------------------------------------------

def _outcome(make, X, y, **fit_params):
    est = make()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X, y, **fit_params)
            error = None
        except Exception as exc:  # noqa: BLE001 - compared between the two loops
            error = (type(exc), str(exc))
    return est, error, [(w.category, str(w.message)) for w in caught]


def _both_loops(monkeypatch, make, X, y, **fit_params):
    kernel = _outcome(make, X, y, **fit_params)
    with monkeypatch.context() as m:
        _python_loop(m)
        python = _outcome(make, X, y, **fit_params)
    assert kernel[1] == python[1] and kernel[2] == python[2]
    for attr in ("n_iter_", "t_", "loss_curve_", "best_loss_", "_no_improvement_count"):
        assert getattr(kernel[0], attr) == getattr(python[0], attr), attr
    assert np.array_equal(kernel[0].net_.params, python[0].net_.params)
    assert _same_state(kernel[0]._random_state, python[0]._random_state)
    return kernel


def test_divergence_raises_as_the_python_loop(monkeypatch):
    X = np.array([[1e3, -1e3], [2e3, 1e3], [-1e3, 5e2], [5e2, 5e2]])
    y = np.array([1e6, -1e6, 3e5, 2e5])
    est, error, _ = _both_loops(
        monkeypatch, lambda: MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0,
                                          learning_rate_init=1e2, max_iter=50, batch_size=2,
                                          random_state=0), X, y)
    assert error[0] is ValueError and "non-finite parameter weights" in error[1]
    assert f"epoch {est.n_iter_ + 1}:" in error[1]
    assert est._kernel_loop_epochs == est.n_iter_
    assert np.isfinite(est.net_.params).all()


def test_zero_weight_batch_raises_as_the_python_loop(digits, monkeypatch):
    X, y = digits
    w = np.ones(X.shape[0])
    w[:64] = 0.0  # the first batch, once shuffle=False
    est, error, _ = _both_loops(
        monkeypatch, lambda: MLPClassifier(hidden_layer_sizes=(8,), batch_size=64, max_iter=5,
                                           shuffle=False, random_state=0), X, y,
        sample_weight=w)
    assert error[0] is ZeroDivisionError and "epoch 1:" in error[1]


@pytest.mark.parametrize("dtype, power_t, error", [
    (np.float64, 200.0, OverflowError),   # (t + 1) ** power_t overflows in Python's float
    (np.float32, 20.0, ValueError),       # the rate is 0 once rounded to float32
])
def test_invscaling_rate_out_of_range_as_the_python_loop(digits, monkeypatch, dtype, power_t,
                                                         error):
    X, y = digits
    est, raised, _ = _both_loops(
        monkeypatch, lambda: MLPClassifier(hidden_layer_sizes=(8,), solver="sgd",
                                           learning_rate="invscaling", power_t=power_t,
                                           learning_rate_init=0.1, max_iter=5, random_state=0),
        X.astype(dtype), y)
    assert raised[0] is error
    assert est.n_iter_ == 1 and est._kernel_loop_epochs == 1


def test_ctrl_c_keeps_the_epochs_done(digits):
    X, y = digits
    X = np.tile(X, (20, 1))  # 6000 rows: many polls per epoch
    y = np.tile(y, 20)
    params = dict(hidden_layer_sizes=(32,), solver="sgd", momentum=0.9, batch_size=32,
                  learning_rate_init=0.001, tol=0.0, n_iter_no_change=np.inf, random_state=0)
    est = MLPClassifier(max_iter=1_000_000, **params)
    with interrupt_after(0.5):
        with pytest.warns(UserWarning, match="Training interrupted by user."):
            est.fit(X, y)
    done = est.n_iter_
    assert 0 < done < 1_000_000 and est._kernel_loop_epochs == done
    assert len(est.loss_curve_) == done and est.t_ == done * X.shape[0]
    assert np.isfinite(est.net_.params).all()
    # the epochs done are those of an uninterrupted fit, and the RandomState has drawn their
    # shuffles plus the interrupted epoch's
    ref = _fit_quietly(MLPClassifier(max_iter=done, **params), X, y)
    assert est.loss_curve_ == ref.loss_curve_
    rs = np.random.RandomState(0)  # the initial weights' draws, as _initialize draws them
    for fan_in, fan_out in ((64, 32), (32, 10)):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        rs.uniform(-bound, bound, (fan_in, fan_out))
        rs.uniform(-bound, bound, fan_out)
    for _ in range(done + 1):
        rs.shuffle(np.arange(X.shape[0]))
    assert _same_state(est._random_state, rs)


def test_run_sklearn_epochs_checks_what_the_kernel_writes_into():
    # state, steps, order and losses are written by the kernel: their type, dtype and size are
    # its memory safety, checked before the call, each named in the error.
    from cprop.optimizers import check_optimizer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    T = np.eye(3)[rng.integers(0, 3, 40)]
    net = cprop.MLP([5, 8, 3], output="softmax", loss="cross_entropy", seed=0)
    opt = check_optimizer("adam")
    loop = SklearnEpochs()
    loop.lr = loop.buffer_lr = loop.lr_init = 1e-3
    good = dict(state=np.zeros(opt.slots * net.n_params), steps=np.zeros(1, np.int64),
                order=np.arange(40, dtype=np.intp), loop=loop, losses=np.zeros(3))

    def call(**changes):
        kw = {**good, **changes}
        return net.run_sklearn_epochs(X, T, 10, opt, kw["state"], kw["steps"], kw["order"],
                                      kw["loop"], kw["losses"])

    cases = [
        (dict(state=np.zeros(opt.slots * net.n_params - 1)), ValueError, "state: expected"),
        (dict(state=np.zeros(opt.slots * net.n_params, np.float32)), ValueError, "state:"),
        (dict(steps=np.zeros(2, np.int64)), ValueError, "steps: expected a one-element"),
        (dict(steps=np.zeros(1)), ValueError, "steps:"),
        (dict(order=np.arange(40)[::2]), ValueError, "order:"),
        (dict(order=np.array([0, 40], dtype=np.intp)), ValueError, "order"),
        (dict(losses=np.zeros(0)), ValueError, "losses: expected a non-empty"),
        (dict(loop=object()), TypeError, "loop: expected a cprop.mlp.SklearnEpochs"),
        (dict(loop=SklearnEpochs()), ValueError, "loop.lr: expected a finite number > 0"),
    ]
    for changes, error, message in cases:
        with pytest.raises(error, match=message):
            call(**changes)
    status, _ = call()  # (and the good arguments run)
    assert status == 0 and np.all(np.isfinite(good["losses"]))
