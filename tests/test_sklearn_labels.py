"""Class labels keep their type in cprop.sklearn.MLPClassifier: bool, str, float, int and
multilabel indicator targets come back from predict and classes_ as scikit-learn's
MLPClassifier returns them for the same y, and the messages show them as scikit-learn's do."""

import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.exceptions import ConvergenceWarning

from cprop.sklearn import MLPClassifier
from parity import rel_err


# -- class labels keep their type ------------------------------------------------------------

def _label_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    k = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)  # 3 classes
    return X, k


LABELS = {
    "int": lambda k: np.array([3, 7, 9])[k],
    "int8": lambda k: np.array([-3, 7, 9], dtype=np.int8)[k],
    "uint32": lambda k: np.array([3, 7, 9], dtype=np.uint32)[k],
    "float": lambda k: np.array([1.0, 2.0, 5.0])[k],
    "float32": lambda k: np.array([-1.0, 0.0, 5.0], dtype=np.float32)[k],
    "str": lambda k: np.array(["a", "bb", "ccc"])[k],
    "object-str": lambda k: np.array(["a", "bb", "ccc"], dtype=object)[k],
    "list-of-str": lambda k: list(np.array(["a", "bb", "ccc"])[k]),
    "bool": lambda k: k > 0,
    "binary-str": lambda k: np.where(k > 0, "yes", "no"),
    "binary-float": lambda k: np.where(k > 0, 3.0, -1.0),
    "binary-int": lambda k: np.where(k > 0, 4, -2),
    "multilabel-int": lambda k: np.c_[k > 0, k == 2, k != 1].astype(int),
    "multilabel-bool": lambda k: np.c_[k > 0, k == 2, k != 1],
    "multilabel-float": lambda k: np.c_[k > 0, k == 2, k != 1].astype(float),
}
SOLVERS = {
    "adam": dict(solver="adam", learning_rate_init=0.01, max_iter=8),
    "sgd-early-stopping": dict(solver="sgd", learning_rate_init=0.05, max_iter=8,
                               early_stopping=True, validation_fraction=0.2),
    "lbfgs": dict(solver="lbfgs", max_iter=8),
}


def _same_labels(ours, ref):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    assert np.array_equal(ours, ref)
    assert [type(v) for v in ours.ravel()[:5]] == [type(v) for v in ref.ravel()[:5]]


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("kind", sorted(LABELS))
def test_labels_keep_their_type_as_sklearn(kind, solver):
    X, k = _label_data()
    y = LABELS[kind](k)
    kw = dict(hidden_layer_sizes=(6,), random_state=0, **SOLVERS[solver])
    ref, ours = neural_network.MLPClassifier(**kw), MLPClassifier(**kw)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=8
        ref.fit(X, y)
        ours.fit(X, y)
    _same_labels(ours.classes_, ref.classes_)
    _same_labels(ours.predict(X), ref.predict(X))
    assert rel_err(ours.predict_proba(X), ref.predict_proba(X)) <= 1e-8
    assert ours.score(X, y) == ref.score(X, y)
    if not kind.startswith("multilabel"):
        # the labels themselves, as given
        assert set(np.asarray(y).tolist()) >= set(ours.predict(X).tolist())
        assert set(ours.classes_.tolist()) == set(np.asarray(y).tolist())


def test_non_integer_float_labels_are_refused_as_sklearn():
    # scikit-learn's classifiers take float labels only with integer values ("continuous"
    # targets are refused); the same error, word for word
    X, k = _label_data()
    y = np.array([0.5, 1.5, 2.5])[k]
    messages = []
    for cls in (neural_network.MLPClassifier, MLPClassifier):
        with pytest.raises(ValueError, match="Unknown label type") as info:
            cls(hidden_layer_sizes=(3,), max_iter=2).fit(X, y)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("kind", ["int", "float", "str", "bool", "multilabel-int"])
def test_partial_fit_and_warm_start_keep_label_types_as_sklearn(kind):
    X, k = _label_data()
    y = LABELS[kind](k)
    # (multilabel: scikit-learn wants classes too, and takes the labels from y)
    classes = np.arange(3) if kind.startswith("multilabel") else np.unique(y)
    if kind == "str":
        classes = np.array(["a", "bb", "ccc", "dddd"])  # a class not in y
    kw = dict(hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=0.05, random_state=0)
    ref, ours = neural_network.MLPClassifier(**kw), MLPClassifier(**kw)
    for est in (ref, ours):
        est.partial_fit(X[:45], y[:45], classes=classes)
        est.partial_fit(X[45:], y[45:])
    _same_labels(ours.classes_, ref.classes_)
    _same_labels(ours.predict(X), ref.predict(X))
    assert rel_err(ours.predict_proba(X), ref.predict_proba(X)) <= 1e-10

    kw = dict(kw, warm_start=True, max_iter=3)
    ref, ours = neural_network.MLPClassifier(**kw), MLPClassifier(**kw)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=3
        for est in (ref, ours):
            est.fit(X, y)
            est.fit(X, y)
    _same_labels(ours.classes_, ref.classes_)
    _same_labels(ours.predict(X), ref.predict(X))


@pytest.mark.parametrize("kind", ["int", "float", "str", "bool"])
def test_label_errors_show_the_labels_as_sklearn(kind):
    # The messages show the classes as given (scikit-learn's wording, the same text).
    X, k = _label_data()
    y = np.asarray(LABELS[kind](k))
    unseen = {"int": 42, "float": 4.5, "str": "zz", "bool": None}[kind]
    messages = []
    for cls in (neural_network.MLPClassifier, MLPClassifier):
        row = []
        est = cls(hidden_layer_sizes=(4,), random_state=0)
        est.partial_fit(X, y, classes=np.unique(y))
        if unseen is not None:
            y2 = y.copy()
            y2[0] = unseen
            with pytest.raises(ValueError) as info:
                est.partial_fit(X, y2)
            row.append(str(info.value))
        est = cls(hidden_layer_sizes=(4,), warm_start=True, max_iter=2, random_state=0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)  # max_iter=2
            est.fit(X, y)
        with pytest.raises(ValueError) as info:
            est.fit(X[k != 0], y[k != 0])
        row.append(str(info.value))
        messages.append(row)
    assert messages[0] == messages[1]
    assert f"Previously got {np.unique(y)}" in messages[1][-1]  # as NumPy prints them
