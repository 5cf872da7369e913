"""`cprop evaluate MODEL CSV [--json]`, checked against scikit-learn's metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import cprop
from cprop.cli import classification_report, main
from cli_helpers import run, write_csv

metrics = pytest.importorskip("sklearn.metrics")




_rng = np.random.default_rng(5)
XC = _rng.normal(size=(400, 3))
# three overlapping classes, so the scores are not all 1
LABELS = np.array(["ant", "bee", "cat"])[np.argmax(
    np.stack([XC[:, 0], XC[:, 1], 0.3 + 0 * XC[:, 2]], axis=1) + _rng.normal(0, 0.6, (400, 3)),
    axis=1)]
XR = _rng.uniform(-2, 2, size=(400, 2))
YR = 3 * np.sin(XR[:, 0]) + XR[:, 1] ** 2 + _rng.normal(0, 0.3, 400)


@pytest.fixture
def classifier(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", ["p", "q", "r", "label"],
                      [[*map(repr, x), y] for x, y in zip(XC[:300].tolist(), LABELS[:300])])
    test = write_csv(tmp_path / "test.csv", ["label", "r", "q", "p"],  # another column order
                     [[y, *map(repr, x[::-1])] for x, y in zip(XC[300:].tolist(), LABELS[300:])])
    assert main(["train", train, "--target", "label", "--layers", "8", "--epochs", "20",
                 "--seed", "2", "--save", str(tmp_path / "c.npz")]) == 0
    capsys.readouterr()
    return str(tmp_path / "c.npz"), test


@pytest.fixture
def regressor(tmp_path, capsys):
    rows = [[*map(repr, x), repr(y)] for x, y in zip(XR.tolist(), YR.tolist())]
    train = write_csv(tmp_path / "train.csv", ["u", "v", "y"], rows[:300])
    test = write_csv(tmp_path / "test.csv", ["u", "v", "y"], rows[300:])
    assert main(["train", train, "--target", "y", "--layers", "16", "--hidden", "tanh",
                 "--epochs", "40", "--seed", "2", "--save", str(tmp_path / "r.npz")]) == 0
    capsys.readouterr()
    return str(tmp_path / "r.npz"), test


def test_classifier_scores_equal_scikit_learns(capsys, classifier):
    model, test = classifier
    code, out, err = run(capsys, "evaluate", model, test, "--json")
    assert code == 0 and err == ""
    r = json.loads(out)
    net = cprop.load(model)
    classes = net.dataset["classes"]
    assert classes == ["ant", "bee", "cat"] and r["labels"] == classes
    predicted = np.array(classes)[net.forward(XC[300:]).argmax(axis=1)]
    truth = LABELS[300:]
    assert r["rows"] == 100 and r["target"] == "label" and r["task"] == "classify"
    assert r["accuracy"] == metrics.accuracy_score(truth, predicted)
    assert 0.6 < r["accuracy"] < 1  # overlapping classes: the test means something
    assert r["correct"] == int(np.sum(truth == predicted))
    np.testing.assert_array_equal(
        r["precision"], metrics.precision_score(truth, predicted, labels=classes, average=None))
    np.testing.assert_array_equal(
        r["recall"], metrics.recall_score(truth, predicted, labels=classes, average=None))
    assert r["confusion_matrix"] == metrics.confusion_matrix(truth, predicted,
                                                             labels=classes).tolist()
    assert r["support"] == [int(np.sum(truth == c)) for c in classes]

    code, text, _ = run(capsys, "evaluate", model, test)
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"{model} on {test}: 100 rows, target 'label' (classify, 3 labels)"
    assert lines[1] == f"accuracy  {r['accuracy']:.4f} ({r['correct']} of 100)"
    assert lines[3] == "label  precision  recall  support"
    assert lines[4].split() == ["ant", f"{r['precision'][0]:.4f}", f"{r['recall'][0]:.4f}",
                                str(r["support"][0])]
    assert lines[8] == "confusion matrix (rows: true label; columns: predicted label)"
    assert lines[9].split() == classes
    for k, c in enumerate(classes):
        assert lines[10 + k].split() == [c, *map(str, r["confusion_matrix"][k])]


def test_labels_the_model_does_not_know_and_numeric_labels(tmp_path, capsys):
    # integer labels; the test data has 2.0 (class "2") and a label 7 never seen in training
    X = _rng.normal(size=(90, 2))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 1)
    train = write_csv(tmp_path / "t.csv", ["a", "b", "y"],
                      [[*map(repr, x), str(v)] for x, v in zip(X.tolist(), y)])
    assert main(["train", train, "--target", "y", "--epochs", "5", "--seed", "0",
                 "--save", str(tmp_path / "m.npz")]) == 0
    net = cprop.load(tmp_path / "m.npz")
    assert net.dataset["classes"] == ["0", "1", "2", "3"]
    cells = [f"{v}.0" if v == 2 else str(v) for v in y[:20]] + ["7"]
    test = write_csv(tmp_path / "e.csv", ["a", "b", "y"],
                     [[*map(repr, x), c] for x, c in zip(X[:21].tolist(), cells)])
    code, out, _ = run(capsys, "evaluate", tmp_path / "m.npz", test, "--json")
    assert code == 0
    r = json.loads(out)
    assert r["labels"] == ["0", "1", "2", "3", "7"]  # the model's, then the data's own
    truth = [str(v) for v in y[:20]] + ["7"]
    predicted = np.array(net.dataset["classes"])[net.forward(X[:21]).argmax(axis=1)]
    assert r["confusion_matrix"] == metrics.confusion_matrix(truth, predicted,
                                                             labels=r["labels"]).tolist()
    # 0/0 is None (null), as scikit-learn's zero_division=np.nan gives nan
    expected = metrics.precision_score(truth, predicted, labels=r["labels"], average=None,
                                       zero_division=np.nan)
    got = [math.nan if p is None else p for p in r["precision"]]
    np.testing.assert_array_equal(got, expected)
    assert r["precision"][4] is None and r["recall"][4] == 0.0
    code, text, _ = run(capsys, "evaluate", tmp_path / "m.npz", test)
    assert "n/a" in text


def test_regressor_scores_equal_scikit_learns(capsys, regressor):
    model, test = regressor
    code, out, err = run(capsys, "evaluate", model, test, "--json")
    assert code == 0 and err == ""
    r = json.loads(out)
    y = cprop.load(model).forward(XR[300:])[:, 0]
    t = YR[300:]
    assert set(r) == {"model", "data", "rows", "target", "task", "r2", "rmse", "mae"}
    assert r["task"] == "regress" and r["rows"] == 100
    assert r["r2"] == pytest.approx(metrics.r2_score(t, y), rel=1e-12)
    assert 0.5 < r["r2"] < 1
    assert r["rmse"] == pytest.approx(math.sqrt(metrics.mean_squared_error(t, y)), rel=1e-12)
    assert r["mae"] == pytest.approx(metrics.mean_absolute_error(t, y), rel=1e-12)
    code, text, _ = run(capsys, "evaluate", model, test)
    assert text.splitlines() == [f"{model} on {test}: 100 rows, target 'y' (regress)",
                                 f"R²    {r['r2']:.6f}", f"RMSE  {r['rmse']:.6g}",
                                 f"MAE   {r['mae']:.6g}"]


def test_huge_targets_do_not_overflow(tmp_path, capsys):
    net = cprop.MLP([1, 1], output="identity", seed=0)
    net.weights[0][:] = 1e300
    net.dataset = {"features": ["x"], "target": "y", "task": "regress", "classes": None}
    net.save(tmp_path / "m.npz")
    data = write_csv(tmp_path / "d.csv", ["x", "y"], [["1", "1e300"], ["2", "1e300"],
                                                       ["-1", "0"]])
    code, out, _ = run(capsys, "evaluate", tmp_path / "m.npz", data, "--json")
    r = json.loads(out)
    # predictions 1e300, 2e300, -1e300: errors 0, 1e300, 1e300 (squares beyond the floats)
    assert code == 0 and r["rmse"] == pytest.approx(1e300 * math.sqrt(2 / 3), rel=1e-12)
    assert r["mae"] == pytest.approx(2e300 / 3, rel=1e-12)


def test_evaluate_needs_cprop_trains_metadata(tmp_path, capsys):
    cprop.MLP([2, 1], seed=0).save(tmp_path / "py.npz")
    data = write_csv(tmp_path / "d.csv", ["a", "b"], [["1", "2"]])
    code, out, err = run(capsys, "evaluate", tmp_path / "py.npz", data)
    assert code == 2 and out == ""
    assert "has no column names or target (it was saved from Python" in err


def test_classification_report_counts():
    r = classification_report(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]),
                              ["a", "b", "c"])
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert r["accuracy"] == 0.6 and r["correct"] == 3
    assert r["precision"] == [0.5, 2 / 3, None] and r["recall"] == [0.5, 1.0, 0.0]
