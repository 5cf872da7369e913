"""cprop.sklearn: scikit-learn's estimator checks, equivalence with sklearn.neural_network,
and the scikit-learn tooling (Pipeline, GridSearchCV, cross_val_score, pickle, clone)."""

import json
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.base import clone
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from cprop.sklearn import MLPClassifier, MLPRegressor
from parity import rel_err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- scikit-learn's own estimator checks, every one a test -------------------------------------

def _expected_failed_checks(estimator):
    # Every check passes; nothing is expected to fail. (Kept as the place to list a check with
    # the reason, should a future scikit-learn add one that cannot pass.)
    return {}


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    if _check_name(check) == "check_array_api_input":
        # scikit-learn runs this check only when SCIPY_ARRAY_API=1 was set before SciPy was
        # imported, so it runs in a fresh interpreter with the variable set.
        _run_array_api_check(type(estimator).__name__, dict(check.keywords))
    else:
        with warnings.catch_warnings():
            # The checks fit with the default max_iter=200 on toy data, where the stochastic
            # solvers (scikit-learn's own MLP too) stop at max_iter with a ConvergenceWarning.
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            check(estimator)


def _run_array_api_check(name, keywords):
    code = (
        "import json, sys, warnings\n"
        "from sklearn.exceptions import ConvergenceWarning\n"
        "warnings.simplefilter('error')  # as pytest's filterwarnings, but see below\n"
        "warnings.filterwarnings('ignore', category=ConvergenceWarning)\n"
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        "import cprop.sklearn as cs\n"
        "name, kw = sys.argv[1], json.loads(sys.argv[2])\n"
        "check_array_api_input(name, getattr(cs, name)(), **kw)\n"
        "print('passed')\n")
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    proc = subprocess.run([sys.executable, "-c", code, name, json.dumps(keywords)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "passed", (proc.stdout, proc.stderr[-2000:])


# -- the same training as scikit-learn's MLP, step for step ------------------------------------

@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    # 300 rows: batch_size 64 leaves a short last batch (300 = 4 * 64 + 44)
    return X[:300] / 16.0, y[:300]


def _fit_both(cls_sk, cls_cp, X, y, **params):
    with warnings.catch_warnings():
        # max_iter is kept small on purpose: both emit "Maximum iterations reached"
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        ref = cls_sk(**params).fit(X, y)
        ours = cls_cp(**params).fit(X, y)
    return ref, ours


def _assert_same_training(ref, ours, tol=1e-10):
    assert ours.n_iter_ == ref.n_iter_
    assert ours.t_ == ref.t_
    if hasattr(ref, "loss_curve_"):
        assert len(ours.loss_curve_) == len(ref.loss_curve_)
        assert rel_err(ours.loss_curve_, ref.loss_curve_) <= tol
        assert ours.best_loss_ == pytest.approx(ref.best_loss_, rel=tol, abs=0) \
            if ref.best_loss_ is not None else ours.best_loss_ is None
    assert ours.loss_ == pytest.approx(ref.loss_, rel=tol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert rel_err(a, b) <= tol


SGD = dict(solver="sgd", learning_rate_init=0.1, momentum=0.0, alpha=0.0)
CASES = {
    "sgd": SGD,
    "sgd-l2": dict(SGD, alpha=1e-3),
    "sgd-momentum": dict(SGD, momentum=0.9, nesterovs_momentum=False, alpha=1e-4),
    "sgd-nesterov": dict(SGD, momentum=0.9, nesterovs_momentum=True, alpha=1e-4),
    "sgd-nesterov-no-l2": dict(SGD, momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam", learning_rate_init=0.01, alpha=1e-4),
    "adam-betas": dict(solver="adam", learning_rate_init=0.005, beta_1=0.8, beta_2=0.99,
                       epsilon=1e-6, alpha=0.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_classifier_matches_sklearn_constant_lr_no_shuffle(digits, case):
    X, y = digits
    ref, ours = _fit_both(neural_network.MLPClassifier, MLPClassifier, X, y,
                          hidden_layer_sizes=(16,), activation="tanh", batch_size=64,
                          shuffle=False, max_iter=12, random_state=0, **CASES[case])
    _assert_same_training(ref, ours)
    assert np.array_equal(ours.predict(X), ref.predict(X))
    assert rel_err(ours.predict_proba(X), ref.predict_proba(X)) <= 1e-10


@pytest.mark.parametrize("params", [
    dict(solver="sgd", learning_rate="invscaling", power_t=0.25, learning_rate_init=0.5,
         momentum=0.9, activation="logistic"),
    # alpha=0 with sgd: each epoch is one kernel call (and the momentum buffer is rescaled
    # between epochs as the rate falls)
    dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, alpha=0.0,
         momentum=0.9, activation="tanh"),
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.2, momentum=0.5,
         tol=1e-2, n_iter_no_change=2, activation="relu"),
    dict(solver="adam", learning_rate_init=0.01, early_stopping=True, validation_fraction=0.2,
         n_iter_no_change=3, tol=1e-2, activation="relu"),
    dict(solver="adam", learning_rate_init=0.01, hidden_layer_sizes=(12, 9), activation="identity",
         batch_size=7),
], ids=["invscaling-momentum", "invscaling-nesterov-whole-epoch-kernel", "adaptive",
        "early-stopping", "two-layers-identity-batch7"])
def test_classifier_matches_sklearn_schedules_shuffle_stopping(digits, params):
    X, y = digits
    params = dict(dict(hidden_layer_sizes=(16,), batch_size=50, max_iter=25, random_state=3),
                  **params)
    ref, ours = _fit_both(neural_network.MLPClassifier, MLPClassifier, X, y, **params)
    _assert_same_training(ref, ours)
    if params.get("early_stopping"):
        assert ours.validation_scores_ == ref.validation_scores_
        assert ours.best_validation_score_ == ref.best_validation_score_
        assert ours.n_iter_ < 25  # it stopped early, and restored the best weights as sklearn


def test_adaptive_schedule_actually_divides_the_rate(digits):
    X, y = digits
    ref, est = _fit_both(neural_network.MLPClassifier, MLPClassifier, X, y,
                         hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                         learning_rate_init=0.5, tol=10.0, n_iter_no_change=1, max_iter=6,
                         random_state=0)
    # tol=10: no epoch counts as progress, so from epoch 2 on the count grows by one per epoch
    # and passes n_iter_no_change=1 at epochs 3 and 5: the rate is divided by 5 twice
    assert est._solver.lr == ref._optimizer.learning_rate == pytest.approx(0.5 / 25)
    _assert_same_training(ref, est)


def test_binary_and_multilabel_match_sklearn(digits):
    X, y = digits
    ref, ours = _fit_both(neural_network.MLPClassifier, MLPClassifier, X, y % 2,
                          hidden_layer_sizes=(10,), solver="adam", learning_rate_init=0.01,
                          max_iter=10, random_state=1)
    assert ours.out_activation_ == ref.out_activation_ == "logistic"
    _assert_same_training(ref, ours)
    Xm, Ym = make_multilabel_classification(n_samples=120, n_features=8, n_classes=4,
                                            random_state=0)
    ref, ours = _fit_both(neural_network.MLPClassifier, MLPClassifier, Xm, Ym,
                          hidden_layer_sizes=(10,), solver="sgd", momentum=0.9,
                          learning_rate_init=0.01, max_iter=10, random_state=1)
    _assert_same_training(ref, ours)
    assert np.array_equal(ours.predict(Xm), ref.predict(Xm))


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_tiny_network_one_row_batches_with_l2_match_sklearn(batch_size, shuffle):
    # A tiny network with plain SGD takes the kernel's whole-step route for one-row batches,
    # which runs many rows per call; scikit-learn's L2 term must still be reported per batch.
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (20, 2))
    y = rng.uniform(-1, 1, 20)
    ref, ours = _fit_both(neural_network.MLPRegressor, MLPRegressor, X, y,
                          hidden_layer_sizes=(3,), solver="sgd", momentum=0.0, alpha=1e-2,
                          batch_size=batch_size, shuffle=shuffle, max_iter=5,
                          learning_rate_init=0.05, random_state=0)
    _assert_same_training(ref, ours)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regressor_matches_sklearn(n_outputs, solver):
    # Multi-output: scikit-learn reports the loss averaged over outputs, but its gradient is
    # that of the sum over outputs; matching coefs_ and loss_curve_ shows cprop does both.
    X, Y = make_regression(n_samples=90, n_features=5, n_targets=n_outputs, noise=0.1,
                           random_state=0)
    Y = Y / np.abs(Y).max()
    ref, ours = _fit_both(neural_network.MLPRegressor, MLPRegressor, X, Y,
                          hidden_layer_sizes=(12,), solver=solver, learning_rate_init=0.01,
                          alpha=1e-3, batch_size=20, max_iter=15, random_state=2)
    _assert_same_training(ref, ours)
    assert rel_err(ours.predict(X), ref.predict(X)) <= 1e-10
    assert ours.score(X, Y) == pytest.approx(ref.score(X, Y), rel=1e-10)


def test_lbfgs_matches_sklearn(digits):
    X, y = digits
    ref, ours = _fit_both(neural_network.MLPClassifier, MLPClassifier, X, y,
                          hidden_layer_sizes=(10,), solver="lbfgs", max_iter=20,
                          random_state=0)
    # L-BFGS-B's line search amplifies rounding a little more than plain steps do
    _assert_same_training(ref, ours, tol=1e-8)
    Xr, yr = make_regression(n_samples=60, n_features=4, noise=0.1, random_state=1)
    ref, ours = _fit_both(neural_network.MLPRegressor, MLPRegressor, Xr, yr / 100,
                          hidden_layer_sizes=(6,), solver="lbfgs", max_iter=15, random_state=0)
    _assert_same_training(ref, ours, tol=1e-8)


def test_partial_fit_and_warm_start_match_sklearn(digits):
    X, y = digits
    params = dict(hidden_layer_sizes=(12,), solver="sgd", momentum=0.9,
                  learning_rate_init=0.05, random_state=4)
    ref, ours = neural_network.MLPClassifier(**params), MLPClassifier(**params)
    for start in (0, 100, 200):
        ref.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(10))
        ours.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(10))
    _assert_same_training(ref, ours)
    assert len(ours.loss_curve_) == 3

    params = dict(hidden_layer_sizes=(12,), solver="adam", warm_start=True, max_iter=4,
                  random_state=4)
    ref, ours = _fit_both(neural_network.MLPClassifier, MLPClassifier, X, y, **params)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=4
        ref.fit(X, y)
        ours.fit(X, y)
    _assert_same_training(ref, ours)
    assert len(ours.loss_curve_) == 8


def test_same_training_from_weights_copied_from_sklearn(digits):
    # Independent of the initialisation: start cprop from sklearn's weights via coefs_ and
    # intercepts_, then train both on (warm_start: the weights stay, the optimizer is fresh).
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", momentum=0.9, learning_rate_init=0.05,
              batch_size=64, shuffle=False, warm_start=True, max_iter=1)
    ref = neural_network.MLPClassifier(random_state=5, **kw)
    ours = MLPClassifier(random_state=6, **kw)  # other initial weights
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=1, then 10
        ref.fit(X, y)
        ours.fit(X, y)
        assert rel_err(ours.coefs_[0], ref.coefs_[0]) > 0.1
        ours.coefs_ = ref.coefs_
        ours.intercepts_ = ref.intercepts_
        ref.set_params(max_iter=10).fit(X, y)
        ours.set_params(max_iter=10).fit(X, y)
    assert len(ours.loss_curve_) == len(ref.loss_curve_) == 11
    assert rel_err(ours.loss_curve_[1:], ref.loss_curve_[1:]) <= 1e-10
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert rel_err(a, b) <= 1e-10


def test_float32_trains_in_float32_and_tracks_float64(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), solver="adam", learning_rate_init=0.01, max_iter=8,
              random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=8
        e32 = MLPClassifier(**kw).fit(X.astype(np.float32), y)
        e64 = MLPClassifier(**kw).fit(X, y)
        forced = MLPClassifier(dtype="float32", **kw).fit(X, y)
    assert e32.coefs_[0].dtype == np.float32 and forced.coefs_[0].dtype == np.float32
    assert e64.coefs_[0].dtype == np.float64
    assert e32.predict_proba(X).dtype == np.float32
    assert rel_err(e32.loss_curve_, e64.loss_curve_) < 1e-4
    assert np.array_equal(e32.coefs_[0], forced.coefs_[0])


# -- attributes, errors ---------------------------------------------------------------------

def test_coefs_are_views_of_the_network(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=3
        est = MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    assert est.net_.layer_sizes == [64, 8, 10]
    before = est.predict_proba(X[:5])
    est.coefs_[1][:] = 0.0
    est.intercepts_[1][:] = 0.0
    # zero output layer: every class equally likely
    assert np.allclose(est.predict_proba(X[:5]), 0.1, rtol=0, atol=1e-15)
    est.coefs_ = [np.ones((64, 8)), np.zeros((8, 10))]
    assert np.all(est.net_.weights[0] == 1.0)
    with pytest.raises(ValueError, match=r"coefs_\[1\]: expected shape \(8, 10\)"):
        est.coefs_ = [np.ones((64, 8)), np.zeros((8, 9))]
    assert not np.allclose(before, 0.1)


def test_bad_parameters_name_the_parameter(digits):
    X, y = digits
    with pytest.raises(ValueError, match="'alpha' parameter of MLPClassifier"):
        MLPClassifier(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="'solver' parameter of MLPRegressor"):
        MLPRegressor(solver="rprop").fit(X, y)
    with pytest.raises(ValueError, match="'loss' parameter of MLPRegressor"):
        MLPRegressor(loss="huber").fit(X, y)
    with pytest.raises(ValueError, match="'dtype' parameter of MLPClassifier"):
        MLPClassifier(dtype="float16").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(4, 0)).fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.arange(10))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


def test_diverging_sgd_raises_and_keeps_finite_weights():
    X = np.array([[1e3, -1e3], [2e3, 1e3], [-1e3, 5e2]])
    y = np.array([1e6, -1e6, 3e5])
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1e3,
                       momentum=0.0, max_iter=50, random_state=0)
    with pytest.raises(ValueError, match="non-finite parameter weights.*epoch"):
        est.fit(X, y)
    assert all(np.isfinite(c).all() for c in est.coefs_)


def test_import_cprop_does_not_import_sklearn():
    code = ("import sys, cprop\n"
            "assert not any(m == 'sklearn' or m.startswith('sklearn.') for m in sys.modules)\n"
            "import cprop.sklearn\n"
            "assert 'sklearn' in sys.modules\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_missing_sklearn_names_the_extra():
    # A meta-path finder that refuses scikit-learn makes the import fail as it would without it.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sklearn' or name.startswith('sklearn.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "import cprop\n"
        "try:\n"
        "    import cprop.sklearn\n"
        "except ImportError as e:\n"
        "    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "cprop[sklearn]"' in proc.stdout


# -- scikit-learn's tooling --------------------------------------------------------------------

def test_pipeline_grid_search_cross_val_score(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier((16,), solver="lbfgs", max_iter=200,
                                                         random_state=0))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # lbfgs on tiny folds
        scores = cross_val_score(pipe, X, y, cv=3)
        search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1],
                                     "mlpclassifier__hidden_layer_sizes": [(8,), (16,)]},
                              cv=3).fit(X, y)
    assert scores.shape == (3,) and scores.min() > 0.8
    assert search.best_score_ > 0.85
    assert search.best_estimator_.score(X, y) > 0.95
    assert set(search.cv_results_["params"][0]) == {"mlpclassifier__alpha",
                                                      "mlpclassifier__hidden_layer_sizes"}


def test_pickle_round_trip_and_clone(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=5
        est = MLPClassifier((16,), solver="sgd", momentum=0.9, max_iter=5,
                            random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    assert np.array_equal(again.predict(X), est.predict(X))
    assert again.loss_curve_ == est.loss_curve_
    # the optimizer state travels too: partial_fit continues identically on both
    est.partial_fit(X, y)
    again.partial_fit(X, y)
    assert np.array_equal(again.net_.params, est.net_.params)

    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "coefs_") and not hasattr(twin, "net_")

    # MLPRegressor's first positional parameter is loss, as in scikit-learn >= 1.7
    reg = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=20
        reg.fit(X[:, :10], X[:, 10])
    reg2 = pickle.loads(pickle.dumps(reg))
    assert np.array_equal(reg2.predict(X[:, :10]), reg.predict(X[:, :10]))
