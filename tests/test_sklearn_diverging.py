"""A diverging fit of cprop.sklearn's estimators ends as scikit-learn's does: with
early_stopping=True no exception and the best weights restored; without it, scikit-learn's
ValueError. Every test runs scikit-learn's estimator on the same data and compares."""

import re
import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

from cprop.sklearn import MLPClassifier, MLPRegressor
from parity import rel_err

OURS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
SKLEARN_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain "
                      "large values and need to be preprocessed.")


def _fit(est, X, y, **fit_params):
    """Fit; return (exception or None, the warnings' categories and messages). Diverging
    scikit-learn fits warn about overflows (RuntimeWarning) and max_iter."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est.fit(X, y, **fit_params)
            error = None
        except ValueError as exc:
            error = exc
    return error, [(w.category, str(w.message)) for w in caught]


def _same_list(ours, ref, tol=1e-10):
    """Equal lists of floats: NaN where the other has NaN, else equal to ``tol``."""
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.array_equal(ours[np.isinf(ref)], ref[np.isinf(ref)])
    ok = np.isfinite(ref)
    assert rel_err(ours[ok], ref[ok]) <= tol


# -- a diverging fit --------------------------------------------------------------------------

def _iris():
    X, y = load_iris(return_X_y=True)
    return X, y.astype(float)


def _regression():
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    return X, y


def _classification():
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3, n_classes=3,
                               random_state=0)
    return X * 100, y


# (name, estimator, data, parameters): each diverges under scikit-learn (its losses reach
# inf/NaN, or its weights grow without bound) with early_stopping=True.
DIVERGING = {
    # scikit-learn's own test_mlp_diverging_loss (sklearn/neural_network/tests/test_mlp.py)
    "sklearn-test": ("MLPRegressor", _iris, dict(
        hidden_layer_sizes=100, activation="identity", solver="sgd", alpha=0.0001,
        learning_rate="constant", learning_rate_init=1, shuffle=True, max_iter=20,
        n_iter_no_change=10, random_state=0)),
    "regressor-lr1": ("MLPRegressor", _regression, dict(
        hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=1.0, max_iter=30,
        random_state=0)),
    "regressor-lr1000": ("MLPRegressor", _regression, dict(
        hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=1e3, max_iter=30,
        random_state=0)),
    "classifier-lr1e4": ("MLPClassifier", _classification, dict(
        hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=1e4, max_iter=30,
        random_state=0)),
}


@pytest.mark.parametrize("case", sorted(DIVERGING))
def test_diverging_fit_with_early_stopping_ends_as_sklearn(case):
    name, data, params = DIVERGING[case]
    X, y = data()
    ref = getattr(neural_network, name)(early_stopping=True, **params)
    ours = OURS[name](early_stopping=True, **params)
    ref_error, _ = _fit(ref, X, y)
    error, caught = _fit(ours, X, y)
    # no exception, for either
    assert ref_error is None and error is None
    # the best weights restored: scikit-learn's, the same validation score
    assert ours.best_validation_score_ == pytest.approx(ref.best_validation_score_, rel=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert np.isfinite(a).all() and rel_err(a, b) <= 1e-10
    assert rel_err(ours.predict(X), ref.predict(X)) <= 1e-10
    # n_iter_, loss_curve_ and validation_scores_: scikit-learn's epochs up to the one in
    # which cprop stopped; that epoch's loss and score are NaN; scikit-learn trains on (with
    # NaN or ever larger weights) until max_iter or its stopping rule, cprop does not.
    n = ours.n_iter_
    assert 1 <= n <= ref.n_iter_
    assert len(ours.loss_curve_) == len(ours.validation_scores_) == n
    assert ours.t_ == n * round(X.shape[0] * (1 - params.get("validation_fraction", 0.1)))
    if name == "MLPRegressor":
        _same_list(ours.loss_curve_[:-1], ref.loss_curve_[:n - 1])
    else:
        # the diverging logits saturate the probabilities: cprop's log-loss, computed from the
        # logits, is then larger than scikit-learn's, from probabilities clipped to
        # [1e-16, 1 - 1e-16] (README: Differences); the weights and scores are the same
        assert np.all(np.array(ours.loss_curve_[:-1]) >= np.array(ref.loss_curve_[:n - 1]))
    scores, ref_scores = np.array(ours.validation_scores_[:-1]), ref.validation_scores_[:n - 1]
    if name == "MLPRegressor":
        _same_list(scores, ref_scores)
    else:
        # a validation forward whose outputs overflow scores NaN here; scikit-learn's
        # classifier turns its NaN probabilities into labels (the first class) and scores them
        finite = ~np.isnan(scores)
        _same_list(scores[finite], np.array(ref_scores)[finite])
    assert np.isnan(ours.loss_curve_[-1]) and np.isnan(ours.loss_)
    # as scikit-learn's test asserts of its own estimator
    assert str(ours.validation_scores_[-1]) == str(np.nan)
    assert isinstance(ours.validation_scores_[-1], float)
    # and it says so
    diverged = [m for c, m in caught if c is ConvergenceWarning and "diverged" in m]
    assert len(diverged) == 1
    assert re.search(r"Training diverged in epoch \d+: batch loss .* with learning rate",
                     diverged[0])
    assert "restored" in diverged[0]


def test_diverging_from_the_first_epoch_restores_the_starting_weights():
    # Inputs so large that the first step already overflows: scikit-learn's validation scores
    # are all NaN, so its best weights stay the initial ones; cprop stops after that epoch.
    rng = np.random.RandomState(0)
    X = 1e200 * rng.uniform(size=(40, 2))
    y = rng.standard_normal(40)
    for solver in ("sgd", "adam"):
        kw = dict(hidden_layer_sizes=(5,), solver=solver, early_stopping=True, max_iter=15,
                  random_state=0)
        ref, ours = neural_network.MLPRegressor(**kw), MLPRegressor(**kw)
        assert _fit(ref, X, y)[0] is None
        error, caught = _fit(ours, X, y)
        assert error is None
        assert np.isneginf(ref.best_validation_score_) and np.isneginf(
            ours.best_validation_score_)
        for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
            assert np.array_equal(a, b)
        assert ours.n_iter_ == 1 and np.isnan(ours.loss_curve_[0])
        assert np.isnan(ours.validation_scores_[0]) and np.isnan(ref.validation_scores_[0])
        assert any("starting weights were restored" in m for _, m in caught)


@pytest.mark.parametrize("case", sorted(DIVERGING))
def test_diverging_fit_without_early_stopping_raises_as_sklearn(case):
    # scikit-learn (test_nonfinite_params) raises ValueError when the weights end non-finite;
    # cprop raises the same error, with where it happened, at the step that would make them so
    # (not at the end of fit), and keeps the last finite weights.
    name, data, params = DIVERGING[case]
    X, y = data()
    ref = getattr(neural_network, name)(**params)
    ours = OURS[name](**params)
    ref_error, _ = _fit(ref, X, y)
    error, _ = _fit(ours, X, y)
    if ref_error is None:
        # scikit-learn's weights grew but stayed finite, and its stopping rule ended the fit
        assert error is None
        assert ours.n_iter_ == ref.n_iter_
        assert all(np.isfinite(c).all() for c in ref.coefs_ + ours.coefs_)
        return
    assert str(ref_error) == SKLEARN_NON_FINITE
    assert error is not None and str(error).startswith(SKLEARN_NON_FINITE)
    assert re.search(r"\(epoch \d+: batch loss .*; that step was not applied\)", str(error))
    assert all(np.isfinite(c).all() for c in ours.coefs_ + ours.intercepts_)
    # the epochs before it are scikit-learn's
    _same_list(ours.loss_curve_, ref.loss_curve_[:len(ours.loss_curve_)])


def test_diverging_partial_fit_raises_as_sklearn():
    X, y = _regression()
    kw = dict(hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=1e3, random_state=0)
    ref, ours = neural_network.MLPRegressor(**kw), MLPRegressor(**kw)
    outcomes = []
    for est in (ref, ours):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflows
            for epoch in range(10):
                try:
                    est.partial_fit(X, y)
                except ValueError as exc:
                    outcomes.append((epoch, str(exc)))
                    break
    (ref_epoch, ref_msg), (epoch, msg) = outcomes
    assert ref_msg == SKLEARN_NON_FINITE and msg.startswith(SKLEARN_NON_FINITE)
    # scikit-learn raises after the epoch that made the weights non-finite; cprop refuses the
    # step that would, in that epoch or earlier, and keeps the last finite weights
    assert epoch <= ref_epoch
    assert all(np.isfinite(c).all() for c in ours.coefs_)


def test_early_stopping_scores_overflowing_predictions_as_nan():
    # A validation forward that overflows scores NaN (scikit-learn's _score_with_function) and
    # training goes on, as scikit-learn's does: the iris case reaches it one epoch before the
    # training step itself fails.
    X, y = _iris()
    params = DIVERGING["sklearn-test"][2]
    ref = neural_network.MLPRegressor(early_stopping=True, **params)
    ours = MLPRegressor(early_stopping=True, **params)
    _fit(ref, X, y)
    _fit(ours, X, y)
    scores = np.array(ours.validation_scores_)
    assert np.isnan(scores[-2:]).all() and np.isfinite(ours.loss_curve_[-2])
    assert np.isnan(ref.validation_scores_[len(scores) - 2])
