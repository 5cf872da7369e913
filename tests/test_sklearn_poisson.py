"""MLPRegressor(loss="poisson") beside scikit-learn's: the exponential output and half the
Poisson deviance, for every solver, several outputs, early stopping and sample weights; and its
ONNX graph through skl2onnx (an Exp after the identity output) and through net_.to_onnx."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from cprop.sklearn import MLPRegressor  # noqa: E402


def counts(n=150, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    rate = np.exp(0.6 * X[:, :1] - 0.4 * X[:, 1:2] + 0.1 * np.arange(outputs))
    return X, rng.poisson(rate).astype(float).squeeze()


def both(X, y, sample_weight=None, **params):
    base = dict(loss="poisson", hidden_layer_sizes=(6,), random_state=1, max_iter=20, tol=0.0,
                learning_rate_init=0.01, batch_size=16, alpha=1e-3)
    base.update(params)
    a, b = MLPRegressor(**base), SkRegressor(**base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y, sample_weight=sample_weight)
        b.fit(X, y, sample_weight=sample_weight)
    return a, b


def same(a, b, rtol=1e-10):
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("outputs", [1, 3])
def test_stochastic_solvers_match_scikit_learn(solver, outputs):
    X, y = counts(outputs=outputs)
    a, b = both(X, y, solver=solver)
    assert a.out_activation_ == b.out_activation_ == "exp"
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    same(a, b)
    pred = a.predict(X)
    np.testing.assert_allclose(pred, b.predict(X), rtol=1e-10)
    assert (pred > 0).all()
    assert a.score(X, y) == pytest.approx(b.score(X, y), rel=1e-10)


def test_lbfgs_matches_scikit_learn():
    X, y = counts()
    a, b = both(X, y, solver="lbfgs", max_iter=30)
    assert a.n_iter_ == b.n_iter_
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-8)
    same(a, b, rtol=1e-6)


def test_early_stopping_and_sample_weight():
    X, y = counts(n=200, seed=3)
    w = np.random.default_rng(5).uniform(0.2, 2.0, len(y))
    a, b = both(X, y, sample_weight=w, solver="adam", early_stopping=True,
                validation_fraction=0.2, n_iter_no_change=40)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-9)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)
    same(a, b)


def test_negative_targets_are_refused():
    X, y = counts()
    y = y.copy()
    y[7] = -1.0
    with pytest.raises(ValueError, match=r"^y: loss='poisson' needs targets >= 0 .* at row 7"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, y)
    # squared error takes them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPRegressor(max_iter=2).fit(X, y)


def test_pickle_and_partial_fit():
    X, y = counts()
    a, _ = both(X, y, solver="sgd", max_iter=5)
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert b.net_.output == "exp" and b.net_.loss_name == "poisson"


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("outputs", [1, 2])
def test_onnx_through_skl2onnx_and_net(tmp_path, dtype, rtol, outputs):
    skl2onnx = pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = counts(outputs=outputs)
    X = X.astype(dtype)
    pipe = make_pipeline(StandardScaler(), MLPRegressor(
        loss="poisson", hidden_layer_sizes=(5,), max_iter=30, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X, y)
    onx = skl2onnx.to_onnx(pipe, X[:1])
    assert "Exp" in [n.op_type for n in onx.graph.node]
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: X})[0]
    expected = pipe.predict(X)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=rtol)
    # the network alone, through cprop's own exporter
    net = pipe[-1].net_
    net.to_onnx(tmp_path / "net.onnx")
    sess = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    Z = pipe[0].transform(X).astype(net.dtype)
    np.testing.assert_allclose(sess.run(None, {"input": Z})[0], net.forward(Z),
                               rtol=1e-12 if net.dtype == np.float64 else 1e-6)
