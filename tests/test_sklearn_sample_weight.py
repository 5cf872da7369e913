"""sample_weight in cprop.sklearn's fit and partial_fit, side by side with scikit-learn's own
MLPClassifier / MLPRegressor (which take it since 1.7): the same loss curves, weights,
validation scores and predictions, for every solver and with early stopping."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from cprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

RTOL = 1e-10


def data(kind, n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    if kind == "classifier":
        y = (X[:, 0] + 0.5 * X[:, 1] ** 2 > 0.3).astype(int) + (X[:, 2] > 1)
    else:
        y = np.column_stack([X[:, 0] - X[:, 1] * X[:, 2], np.sin(X[:, 3])])
    w = rng.uniform(0, 3, n)
    w[::7] = 0.0  # zero weights inside batches (no batch sums to 0)
    return X, y, w


def pair(kind, **params):
    ours, ref = (MLPClassifier, SkClassifier) if kind == "classifier" else (
        MLPRegressor, SkRegressor)
    base = dict(hidden_layer_sizes=(7,), random_state=3, max_iter=15, tol=0.0,
                learning_rate_init=0.01, alpha=1e-3)
    base.update(params)
    return ours(**base), ref(**base)


def fit_both(kind, X, y, w, **params):
    a, b = pair(kind, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y, sample_weight=w)
        b.fit(X, y, sample_weight=w)
    return a, b


def assert_same_model(a, b, rtol=RTOL):
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(ca, cb, rtol=rtol, atol=1e-13)
    for ia, ib in zip(a.intercepts_, b.intercepts_):
        np.testing.assert_allclose(ia, ib, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("solver, extra", [
    ("sgd", {"momentum": 0.9, "batch_size": 16}),
    ("sgd", {"momentum": 0.0, "batch_size": 10, "learning_rate": "invscaling"}),
    ("adam", {"batch_size": 32}),
    ("adam", {"batch_size": 120}),
])
def test_stochastic_solvers_match_scikit_learn(kind, solver, extra):
    X, y, w = data(kind)
    a, b = fit_both(kind, X, y, w, solver=solver, **extra)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=RTOL)
    assert a.n_iter_ == b.n_iter_ >= 10
    assert_same_model(a, b)
    np.testing.assert_array_equal(a.predict(X), b.predict(X)) if kind == "classifier" else \
        np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-9)
    # the weights matter: unweighted training ends elsewhere
    c, _ = pair(kind, solver=solver, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        c.fit(X, y)
    assert abs(c.loss_curve_[-1] - a.loss_curve_[-1]) > 1e-6


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_lbfgs_matches_scikit_learn(kind):
    X, y, w = data(kind)
    if kind == "regressor":  # one output (README: scikit-learn's L-BFGS objective differs
        y = y[:, 0]          # for several outputs, weighted or not)
    a, b = fit_both(kind, X, y, w, solver="lbfgs", max_iter=40)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.loss_, b.loss_, rtol=1e-8)
    assert_same_model(a, b, rtol=1e-6)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_early_stopping_splits_and_scores_with_the_weights(kind):
    X, y, w = data(kind, n=200, seed=1)
    a, b = fit_both(kind, X, y, w, solver="adam", early_stopping=True,
                    validation_fraction=0.25, max_iter=25, n_iter_no_change=50,
                    batch_size=20)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-9)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=RTOL)
    assert a.best_validation_score_ == pytest.approx(b.best_validation_score_, rel=1e-9)
    assert_same_model(a, b)


def test_partial_fit_with_weights_in_scikit_learns_argument_order():
    X, y, w = data("classifier")
    a, b = pair("classifier", solver="sgd", batch_size=12)
    for start in range(0, 120, 40):
        sl = slice(start, start + 40)
        a.partial_fit(X[sl], y[sl], w[sl], classes=[0, 1, 2])
        b.partial_fit(X[sl], y[sl], w[sl], classes=[0, 1, 2])
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=RTOL)
    assert_same_model(a, b)
    r, s = pair("regressor", solver="adam", batch_size=12)
    Xr, yr, wr = data("regressor")
    for _ in range(3):
        r.partial_fit(Xr, yr, sample_weight=wr)
        s.partial_fit(Xr, yr, sample_weight=wr)
    np.testing.assert_allclose(r.loss_curve_, s.loss_curve_, rtol=RTOL)
    assert_same_model(r, s)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_weight_two_equals_the_row_repeated_within_its_batch(solver):
    """One batch holding all the rows: weight 2 on row k is row k twice in that batch."""
    X, y, _ = data("regressor", n=30, seed=2)
    w = np.ones(30)
    w[4] = 2.0
    X2 = np.vstack([X, X[4:5]])
    y2 = np.vstack([y, y[4:5]])
    a, _ = pair("regressor", solver=solver, batch_size=30, shuffle=False, max_iter=10)
    c, _ = pair("regressor", solver=solver, batch_size=31, shuffle=False, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y, sample_weight=w)
        c.fit(X2, y2)
    # the L2 term divides by the weight sum, 31, in both
    assert_same_model(a, c, rtol=1e-12)


def test_unit_weights_change_nothing():
    X, y, _ = data("classifier")
    a, _ = pair("classifier", solver="adam", batch_size=16)
    b, _ = pair("classifier", solver="adam", batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y, sample_weight=np.ones(len(X)))
        b.fit(X, y)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    assert_same_model(a, b, rtol=1e-12)


def test_bad_weights():
    X, y, w = data("classifier")
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(119,\), expected \(120,\)"):
        est.fit(X, y, sample_weight=w[:-1])
    bad = w.copy()
    bad[3] = -1.0
    with pytest.raises(ValueError, match="sample_weight"):
        est.fit(X, y, sample_weight=bad)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="sample_weight|NaN"):
        est.fit(X, y, sample_weight=bad)
    # a batch whose weights sum to 0: scikit-learn's ZeroDivisionError (np.average), in both
    zero = np.zeros(len(X))
    zero[50:] = 1.0
    for cls in (MLPClassifier, SkClassifier):
        with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
            cls(hidden_layer_sizes=(4,), batch_size=10, shuffle=False, max_iter=2,
                solver="sgd").fit(X, y, sample_weight=zero)
