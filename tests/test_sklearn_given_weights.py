"""Weights set by hand on a new cprop.sklearn estimator (coefs_ and intercepts_, as
scikit-learn's own worked-example test sets them) are where the first partial_fit (or a fit with
warm_start=True) starts, as in scikit-learn; they are checked with errors that name them."""

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from cprop.sklearn import MLPClassifier, MLPRegressor
from parity import rel_err

OURS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}


# -- weights set by hand before the first partial_fit ------------------------------------------

def _sklearn_worked_example_setup(mlp):
    """scikit-learn's test_fit (sklearn/neural_network/tests/test_mlp.py), verbatim: the weights
    and the attributes its own estimator needs set by hand."""
    mlp.coefs_ = [0] * 2
    mlp.intercepts_ = [0] * 2
    mlp.n_outputs_ = 1
    mlp.coefs_[0] = np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]])
    mlp.coefs_[1] = np.array([[0.1], [0.2]])
    mlp.intercepts_[0] = np.array([0.1, 0.1])
    mlp.intercepts_[1] = np.array([1.0])
    mlp._coef_grads = [] * 2
    mlp._intercept_grads = [] * 2
    mlp.n_features_in_ = 3
    mlp.n_iter_ = 0
    mlp.learning_rate_ = 0.1
    mlp.n_layers_ = 3
    mlp._coef_grads = [0] * (mlp.n_layers_ - 1)
    mlp._intercept_grads = [0] * (mlp.n_layers_ - 1)
    mlp.out_activation_ = "logistic"
    mlp.t_ = 0
    mlp.best_loss_ = np.inf
    mlp.loss_curve_ = []
    mlp._no_improvement_count = 0
    mlp._intercept_velocity = [np.zeros_like(intercepts) for intercepts in mlp.intercepts_]
    mlp._coef_velocity = [np.zeros_like(coefs) for coefs in mlp.coefs_]


WORKED = dict(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
              random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0)
WORKED_X = np.array([[0.6, 0.8, 0.7]])
WORKED_Y = np.array([0])


def _same_weights(ours, ref, tol=1e-12):
    assert len(ours.coefs_) == len(ref.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.shape == b.shape and rel_err(a, b) <= tol


def test_sklearn_worked_example_runs_unchanged():
    # scikit-learn's own worked example, the same code on both estimators
    ref, ours = neural_network.MLPClassifier(**WORKED), MLPClassifier(**WORKED)
    for est in (ref, ours):
        _sklearn_worked_example_setup(est)
        est.partial_fit(WORKED_X, WORKED_Y, classes=[0, 1])
    _same_weights(ours, ref)
    assert ours.predict_proba(WORKED_X) == pytest.approx(ref.predict_proba(WORKED_X), rel=1e-12)
    assert ours.loss_curve_ == pytest.approx(ref.loss_curve_, rel=1e-12)
    assert (ours.n_iter_, ours.t_) == (ref.n_iter_, ref.t_)
    # and the step moved the weights (they were the starting point, not replaced)
    assert ours.coefs_[1][0, 0] != 0.1


def test_only_coefs_and_intercepts_are_needed():
    ref, ours = neural_network.MLPClassifier(**WORKED), MLPClassifier(**WORKED)
    _sklearn_worked_example_setup(ref)
    ours.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])]
    ours.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    assert ours.coefs_[1].tolist() == [[0.1], [0.2]]  # readable before the fit
    for est in (ref, ours):
        est.partial_fit(WORKED_X, WORKED_Y, classes=[0, 1])
    _same_weights(ours, ref)
    assert ours.n_features_in_ == 3 and ours.out_activation_ == "logistic"


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_partial_fit_continues_from_weights_set_by_hand(name, solver):
    # Several partial_fit calls from weights taken from another fitted network, multiclass and
    # multi-output: scikit-learn's training from the same starting point, step for step.
    if name == "MLPClassifier":
        X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                                   random_state=1)
        extra = dict(classes=np.unique(y))
    else:
        X, y = make_regression(n_samples=120, n_features=6, n_targets=2, random_state=1)
        y = y / np.abs(y).max()
        extra = {}
    donor = getattr(neural_network, name)(hidden_layer_sizes=(7, 5), max_iter=3,
                                          random_state=3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=3
        donor.fit(X, y)
    kw = dict(hidden_layer_sizes=(7, 5), solver=solver, learning_rate_init=0.01,
              momentum=0.9, batch_size=32, random_state=0)
    ref = getattr(neural_network, name)(**kw)
    ref.coefs_ = [c.copy() for c in donor.coefs_]
    ref.intercepts_ = [b.copy() for b in donor.intercepts_]
    # what scikit-learn's partial_fit needs besides the weights (cprop needs none of it)
    ref.n_layers_, ref.n_iter_, ref.t_ = 4, 0, 0
    ref.out_activation_ = donor.out_activation_
    ref.loss_curve_, ref.best_loss_, ref._no_improvement_count = [], np.inf, 0
    ours = OURS[name](**kw)
    ours.coefs_ = [c.copy() for c in donor.coefs_]
    ours.intercepts_ = [b.copy() for b in donor.intercepts_]
    for start in (0, 40, 80):
        ref.partial_fit(X[start:start + 40], y[start:start + 40], **extra)
        ours.partial_fit(X[start:start + 40], y[start:start + 40], **extra)
        extra = {}
    _same_weights(ours, ref, tol=1e-10)
    assert rel_err(ours.loss_curve_, ref.loss_curve_) <= 1e-10
    assert ours.t_ == ref.t_ == 120


def test_fit_uses_weights_set_by_hand_only_with_warm_start():
    # scikit-learn: fit(warm_start=True) starts from them; a plain fit draws fresh weights
    X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    y = y / np.abs(y).max()
    W = [np.full((3, 4), 0.1), np.full((4, 1), -0.2)]
    b = [np.zeros(4), np.ones(1)]
    for warm_start in (True, False):
        kw = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=0.01,
                  warm_start=warm_start, max_iter=3, random_state=0)
        ref, ours = neural_network.MLPRegressor(**kw), MLPRegressor(**kw)
        for est in (ref, ours):
            est.coefs_ = [w.copy() for w in W]
            est.intercepts_ = [v.copy() for v in b]
        ref.n_layers_, ref.out_activation_ = 3, "identity"
        ref.loss_curve_, ref.best_loss_, ref._no_improvement_count, ref.t_ = [], np.inf, 0, 0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=3
            ref.fit(X, y)
            ours.fit(X, y)
        _same_weights(ours, ref, tol=1e-10)
        assert rel_err(ours.loss_curve_, ref.loss_curve_) <= 1e-10


def test_weights_set_by_hand_are_checked_by_name():
    def start(coefs=None, intercepts=None, **kw):
        est = MLPClassifier(hidden_layer_sizes=2, **kw)
        if coefs is not None:
            est.coefs_ = coefs
        if intercepts is not None:
            est.intercepts_ = intercepts
        est.partial_fit(WORKED_X, WORKED_Y, classes=[0, 1])
        return est

    W = [np.zeros((3, 2)), np.zeros((2, 1))]
    b = [np.zeros(2), np.zeros(1)]
    assert start(W, b).coefs_[0].shape == (3, 2)
    with pytest.raises(ValueError, match=re.escape(
            "coefs_[1]: expected shape (2, 1), got (2, 2) (the network here has layer sizes "
            "[3, 2, 1]: n_features_in_=3, hidden_layer_sizes=(2,), n_outputs_=1)")):
        start([W[0], np.zeros((2, 2))], b)
    with pytest.raises(ValueError, match=r"intercepts_\[0\]: expected shape \(2,\), got \(1, 2\)"):
        start(W, [np.zeros((1, 2)), b[1]])
    with pytest.raises(ValueError, match=r"coefs_: expected 2 arrays, one per layer, got 3"):
        start(W + [np.zeros((1, 1))], b)
    with pytest.raises(ValueError, match="coefs_ was set by hand but intercepts_ was not"):
        start(W)
    with pytest.raises(ValueError, match="intercepts_ was set by hand but coefs_ was not"):
        start(intercepts=b)
    with pytest.raises(TypeError, match=r"coefs_\[1\]: expected an array of real numbers, "
                                        r"got dtype <U1"):
        start([W[0], np.array([["a"], ["b"]])], b)
    with pytest.raises(TypeError, match=r"intercepts_\[0\]: expected real numbers, got complex"):
        start(W, [np.zeros(2, dtype=complex), b[1]])
    with pytest.raises(ValueError, match=r"coefs_\[0\]: contains NaN or infinity"):
        start([np.full((3, 2), np.nan), W[1]], b)
    with pytest.raises(ValueError, match=r"coefs_\[0\]: expected shape \(3, 2\), got \(\)"):
        start([0, W[1]], b)  # scikit-learn's placeholder, never replaced
    with pytest.raises(TypeError, match="coefs_: expected a list of arrays, one per layer"):
        MLPClassifier().coefs_ = 3.0
    with pytest.raises(ValueError, match="out_activation_ was set to 'softmax', but these "
                                         "targets need 'logistic'"):
        est = MLPClassifier(hidden_layer_sizes=2)
        est.coefs_, est.intercepts_, est.out_activation_ = W, b, "softmax"
        est.partial_fit(WORKED_X, WORKED_Y, classes=[0, 1])
    # float32 training converts them (and refuses values beyond float32's range)
    assert start(W, b, dtype="float32").coefs_[0].dtype == np.float32
    with pytest.raises(ValueError, match=r"coefs_\[0\]: has values too large for float32"):
        start([np.full((3, 2), 1e300), W[1]], b, dtype="float32")


def test_weights_set_by_hand_survive_pickle_and_are_not_fitted():
    est = MLPRegressor(hidden_layer_sizes=(2,))
    est.coefs_ = [np.ones((3, 2)), np.ones((2, 1))]
    est.intercepts_ = [np.zeros(2), np.zeros(1)]
    with pytest.raises(Exception, match="not fitted"):
        est.predict(WORKED_X)
    again = pickle.loads(pickle.dumps(est))
    assert [c.tolist() for c in again.coefs_] == [c.tolist() for c in est.coefs_]
    again.partial_fit(WORKED_X, np.array([1.0]))
    est.partial_fit(WORKED_X, np.array([1.0]))
    assert np.array_equal(again.net_.params, est.net_.params)


def test_item_assignment_after_fit_changes_the_network_as_in_sklearn():
    # est.coefs_[l] = W replaces layer l of scikit-learn's list; here it is copied into the
    # network (before, it changed a temporary list and nothing else).
    X, y = make_regression(n_samples=30, n_features=3, random_state=0)
    kw = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5, random_state=0)
    ref, ours = neural_network.MLPRegressor(**kw), MLPRegressor(**kw)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=5
        ref.fit(X, y)
        ours.fit(X, y)
    for est in (ref, ours):
        est.coefs_[1] = np.full((4, 1), 0.5)
        est.intercepts_[-1] = np.array([2.0])
    assert rel_err(ours.predict(X), ref.predict(X)) <= 1e-10
    assert np.all(ours.net_.weights[1] == 0.5) and ours.net_.biases[1][0] == 2.0
    with pytest.raises(ValueError, match=r"coefs_\[0\]: expected shape \(3, 4\), got \(4, 3\)"):
        ours.coefs_[0] = np.zeros((4, 3))
    with pytest.raises(IndexError):
        ours.coefs_[2] = np.zeros((1, 1))
    assert pickle.loads(pickle.dumps(ours.coefs_))[1].tolist() == [[0.5]] * 4
