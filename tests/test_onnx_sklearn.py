"""skl2onnx converts cprop.sklearn's estimators, alone and in a Pipeline, once cprop.sklearn is
imported: the same outputs as scikit-learn's own converter gives for sklearn.neural_network's
estimators, and onnxruntime agrees with predict / predict_proba (labels equal; probabilities
<= 1e-6 in float32, <= 1e-12 in float64)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

# skl2onnx is in the test extra; the wheel builds' test environments lack it (and onnxruntime)
skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx (test extra) is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime (test extra) is not installed")

from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from cprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

TOL = {np.float32: 1e-6, np.float64: 1e-12}


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _run(est, X, dtype, **options):
    """to_onnx(est) for ``dtype`` input; returns (outputs, [(name, type, shape)])."""
    model = skl2onnx.to_onnx(est, X[:1].astype(dtype), **options)
    session = _session(model)
    outputs = session.run(None, {session.get_inputs()[0].name: X.astype(dtype)})
    return outputs, [(o.name, o.type, o.shape) for o in session.get_outputs()]


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # small max_iter
        return est.fit(X, y)


def _max_diff(got, want):
    """max |got - want| / max(1, max |want|): absolute for values <= 1 (probabilities)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.abs(got - want).max() / max(1.0, float(np.abs(want).max())))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


CLF = dict(hidden_layer_sizes=(32,), solver="adam", learning_rate_init=0.01, max_iter=20,
           random_state=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pipeline_classifier_agrees_with_predict_and_sklearns_converter(digits, dtype):
    X, y = digits
    ours = _fit(make_pipeline(StandardScaler(), MLPClassifier(**CLF)), X, y)
    ref = _fit(make_pipeline(StandardScaler(), neural_network.MLPClassifier(**CLF)), X, y)
    (label, proba), names = _run(ours, X, dtype, options={"zipmap": False})
    (ref_label, ref_proba), ref_names = _run(ref, X, dtype, options={"zipmap": False})
    # the outputs of scikit-learn's own converter: names, element types, shapes
    assert names == ref_names
    assert names[0][:2] == ("label", "tensor(int64)")
    assert names[1][1] == ("tensor(float)" if dtype is np.float32 else "tensor(double)")
    # onnxruntime agrees with cprop's predict and predict_proba
    assert np.array_equal(label, ours.predict(X))
    assert _max_diff(proba, ours.predict_proba(X)) <= TOL[dtype]
    # (and the two trainings are the same, so the two graphs compute the same)
    assert np.array_equal(label, ref_label)
    assert _max_diff(proba, ref_proba) <= 10 * TOL[dtype]


def test_classifier_zipmap_and_options_as_sklearns(digits):
    X, y = digits
    ours = _fit(make_pipeline(StandardScaler(), MLPClassifier(**CLF)), X, y)
    ref = _fit(make_pipeline(StandardScaler(), neural_network.MLPClassifier(**CLF)), X, y)
    # default: skl2onnx's ZipMap, a list of {class: probability}
    (label, dicts), names = _run(ours, X, np.float32)
    assert names == _run(ref, X, np.float32)[1]
    proba = ours.predict_proba(X)
    assert np.array_equal(label, ours.predict(X))
    assert sorted(dicts[0]) == ours.classes_.tolist()
    got = np.array([[d[c] for c in ours.classes_] for d in dicts])
    assert _max_diff(got, proba) <= 1e-6
    # the converter's other options, as registered for scikit-learn's MLPClassifier
    for options in ({"zipmap": "columns"}, {"nocl": True, "zipmap": False},
                    {"output_class_labels": True, "zipmap": False}):
        assert _run(ours, X, np.float32, options=options)[1] == \
            _run(ref, X, np.float32, options=options)[1]


def _label_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    k = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, k


LABELS = {
    "int": lambda k: np.array([3, 7, 9])[k],
    "float": lambda k: np.array([1.0, 2.0, 5.0])[k],
    "str": lambda k: np.array(["a", "bb", "ccc"])[k],
    "bool": lambda k: k > 0,
    "binary-str": lambda k: np.where(k > 0, "yes", "no"),
    "binary-int": lambda k: np.where(k > 0, 4, -2),
    "multilabel": lambda k: np.c_[k > 0, k == 2, k != 1].astype(int),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", sorted(LABELS))
def test_every_kind_of_label_as_sklearns_converter(kind, dtype):
    X, k = _label_data()
    y = LABELS[kind](k)
    kw = dict(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    ours = _fit(MLPClassifier(**kw), X, y)
    ref = _fit(neural_network.MLPClassifier(**kw), X, y)
    if kind == "multilabel" and dtype is np.float64:
        # skl2onnx thresholds multilabel probabilities with ai.onnx.ml's Binarizer, which
        # onnxruntime implements for float only: a double graph fails to load, for
        # scikit-learn's estimator and cprop's alike
        for est in (ref, ours):
            with pytest.raises(Exception, match="Binarizer"):
                _run(est, X, dtype, options={"zipmap": False})
        return
    (label, proba), names = _run(ours, X, dtype, options={"zipmap": False})
    (ref_label, _), ref_names = _run(ref, X, dtype, options={"zipmap": False})
    assert names == ref_names
    # skl2onnx's label output: strings for str labels, int64 for int, float and bool labels
    # (its MLP converter casts float and bool classes to integers); equal to predict either way
    assert label.dtype == ref_label.dtype
    assert label.shape == ours.predict(X).shape
    assert np.array_equal(label, ours.predict(X))
    assert _max_diff(proba, ours.predict_proba(X)) <= TOL[dtype]


REG = dict(hidden_layer_sizes=(16, 8), solver="adam", learning_rate_init=0.01, max_iter=30,
           random_state=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_pipeline_regressor_agrees_with_predict(n_outputs, dtype):
    X, Y = make_regression(n_samples=200, n_features=6, n_targets=n_outputs, noise=0.5,
                           random_state=0)
    Y = Y / np.abs(Y).max() * 5  # outputs up to ~5: the comparison is relative above 1
    ours = _fit(make_pipeline(StandardScaler(), MLPRegressor(**REG)), X, Y)
    ref = _fit(make_pipeline(StandardScaler(), neural_network.MLPRegressor(**REG)), X, Y)
    (pred,), names = _run(ours, X, dtype)
    (ref_pred,), ref_names = _run(ref, X, dtype)
    assert names[0][0] == ref_names[0][0] == "variable"
    assert names[0][1] == ref_names[0][1]
    want = ours.predict(X).reshape(len(X), n_outputs)
    assert pred.shape == (len(X), n_outputs)
    assert _max_diff(pred, want) <= TOL[dtype]
    if n_outputs == 1:
        assert names == ref_names  # [None, 1], as scikit-learn's converter
    else:
        # scikit-learn's converter flattens (N, k) predictions to (N * k, 1); cprop's keeps
        # them (N, k): the same numbers
        assert ref_pred.shape == (len(X) * n_outputs, 1) and names[0][2] == [None, n_outputs]
        assert _max_diff(pred, ref_pred.reshape(len(X), n_outputs)) <= 10 * TOL[dtype]


def test_float32_estimator_and_plain_estimator(digits):
    X, y = digits
    X = (X / 16.0).astype(np.float32)
    est = _fit(MLPClassifier(**CLF), X, y)  # trains in float32 (scikit-learn's rule)
    assert est.coefs_[0].dtype == np.float32
    (label, proba), _ = _run(est, X, np.float32, options={"zipmap": False})
    assert np.array_equal(label, est.predict(X))
    assert _max_diff(proba, est.predict_proba(X)) <= 1e-6


def test_an_activation_skl2onnx_lacks_is_named(digits):
    X, y = digits
    est = _fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0), X, y)
    est.activation = "softplus"  # set by hand: not in skl2onnx's table
    with pytest.raises(NotImplementedError, match=r"activation='softplus'.*net_\.to_onnx"):
        skl2onnx.to_onnx(est, X[:1].astype(np.float32))


# -- registration: lazily, without importing skl2onnx -------------------------------------------

_CONVERT = (
    "import numpy as np, warnings\n"
    "from sklearn.exceptions import ConvergenceWarning\n"
    "warnings.simplefilter('ignore', ConvergenceWarning)\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "X = np.random.default_rng(0).normal(size=(30, 3)); y = (X[:, 0] > 0).astype(int)\n"
    "pipe = make_pipeline(StandardScaler(),\n"
    "                     cprop.sklearn.MLPClassifier((4,), max_iter=5, random_state=0))\n"
    "model = skl2onnx.to_onnx(pipe.fit(X, y), X[:1].astype(np.float32))\n"
    "print('converted', [o.name for o in model.graph.output])\n"
)


def _python(code):
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("order", ["cprop-first", "skl2onnx-first", "probe-first"])
def test_registered_in_any_import_order(order):
    before = {
        "cprop-first": "import cprop.sklearn\n"
                       "assert 'skl2onnx' not in sys.modules and 'onnx' not in sys.modules\n"
                       "import skl2onnx\n",
        "skl2onnx-first": "import skl2onnx\nimport cprop.sklearn\n",
        # a find_spec probe (as libraries test for optional packages) does not use up the hook
        "probe-first": "import cprop.sklearn, importlib.util\n"
                       "assert importlib.util.find_spec('skl2onnx') is not None\n"
                       "assert 'skl2onnx' not in sys.modules\n"
                       "import skl2onnx\n",
    }[order]
    out = _python("import sys\n" + before + "import cprop.sklearn\n" + _CONVERT
                  + "assert not any(type(f).__name__ == '_Finder' for f in sys.meta_path)\n"
                  "assert skl2onnx.__spec__.loader.__class__.__name__ != '_Loader'\n")
    assert "converted ['output_label', 'output_probability']" in out


def test_without_skl2onnx_nothing_is_installed():
    # A meta-path finder that refuses skl2onnx makes it absent, as when it is not installed.
    out = _python(
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'skl2onnx' or name.startswith('skl2onnx.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "import cprop.sklearn\n"
        "assert not any(type(f).__name__ == '_Finder' for f in sys.meta_path)\n"
        "print('ok')\n")
    assert out.strip() == "ok"
