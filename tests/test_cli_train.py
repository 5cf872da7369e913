"""`cprop train` / `cprop predict` on CSV files, and the optional "dataset" header field.

The saved model takes the raw columns (the scaling is folded in), so `cprop predict` and
`cprop.load(...).forward` agree exactly; bad values are reported as FILE:LINE:COLUMN with
nothing written; the task rule, the options and the summary on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cprop
import cprop.io
from cprop import _tabular
from cli_helpers import run, write_csv


# -- helpers --------------------------------------------------------------------------------------



def read_out(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


_rng = np.random.default_rng(1234)
# Three classes separated by two of four columns with very different scales and offsets.
XC = _rng.normal(size=(240, 4)) * [1.0, 200.0, 0.001, 5.0] + [10.0, -500.0, 0.0, 3.0]
_score = np.stack([XC[:, 0] - 10, (XC[:, 1] + 500) / 200, -(XC[:, 0] - 10)], axis=1)
LABELS = np.array(["cat", "dog", "emu"])[np.argmax(_score, axis=1)]
# A smooth regression target in "large" units.
XR = _rng.uniform(-1, 1, size=(200, 3)) * [1.0, 30.0, 0.1] + [0.0, 100.0, 5.0]
YR = 1000 + 300 * np.tanh(XR[:, 0]) + 4 * (XR[:, 1] - 100) + 500 * (XR[:, 2] - 5)


@pytest.fixture
def class_csv(tmp_path):
    rows = [[*map(repr, x), lab] for x, lab in zip(XC.tolist(), LABELS)]
    return write_csv(tmp_path / "animals.csv", ["a", "b", "c", "d", "kind"], rows)


@pytest.fixture
def reg_csv(tmp_path):
    rows = [[*map(repr, x), repr(y)] for x, y in zip(XR.tolist(), YR.tolist())]
    return write_csv(tmp_path / "reg.csv", ["u", "v", "w", "y"], rows)


# -- predict == load().forward, with the scaling folded in ----------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_classifier_predict_agrees_with_forward(tmp_path, capsys, class_csv, dtype):
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", class_csv, "--target", "kind", "--layers", "16,8",
                         "--epochs", "40", "--seed", "3", "--dtype", dtype,
                         "--validation-fraction", "0.25", "--save", model)
    assert code == 0 and out == ""
    assert "classify (auto: some values are not numbers), 3 classes: cat, dog, emu" in err
    assert "180 training rows, 60 validation rows" in err
    net = cprop.load(model)
    assert net.layer_sizes == [4, 16, 8, 3] and net.dtype == np.dtype(dtype)
    assert (net.output, net.loss_name) == ("softmax", "cross_entropy")
    assert net.dataset == {"features": ["a", "b", "c", "d"], "target": "kind",
                           "task": "classify", "classes": ["cat", "dog", "emu"]}
    P = net.forward(XC)  # raw columns: the standardization is inside the first layer
    right = np.array(net.dataset["classes"])[P.argmax(1)] == LABELS
    assert right.mean() >= 0.95
    assert f"validation {right[_val(net, 240, 0.25)].mean() * 100:.1f} %" in err

    code, out, err = run(capsys, "predict", model, class_csv, "--proba")
    assert code == 0 and err == ""
    header, rows = read_out(out)
    assert header == ["kind", "P(cat)", "P(dog)", "P(emu)"]
    assert [r[0] for r in rows] == np.array(["cat", "dog", "emu"])[P.argmax(1)].tolist()
    got = np.array([[float(v) for v in r[1:]] for r in rows]).astype(dtype)
    np.testing.assert_array_equal(got, P)  # printed digits read back bit for bit


def _val(net, n, fraction):
    """The validation rows cprop train held out (its documented rule: MLP.fit's split, drawn
    from the generator of a network built with the same seed)."""
    fresh = cprop.MLP(net.layer_sizes, hidden=net.hidden, output=net.output,
                      loss=net.loss_name, dtype=net.dtype, seed=net.seed, init=net.init)
    return fresh.validation_split(n, fraction)[1]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_regressor_predict_agrees_with_forward(tmp_path, capsys, reg_csv, dtype):
    model = tmp_path / "r.npz"
    code, out, err = run(capsys, "train", reg_csv, "--target", "y", "--layers", "32",
                         "--hidden", "tanh", "--epochs", "150", "--seed", "0", "--dtype", dtype,
                         "--save", model)
    assert code == 0 and out == ""
    assert "regress (auto: numbers)" in err and "target standardized" in err
    net = cprop.load(model)
    assert (net.output, net.loss_name, net.layer_sizes) == ("identity", "squared_error",
                                                            [3, 32, 1])
    y = net.forward(XR)[:, 0]  # raw inputs in, the target's own units out
    r2 = 1 - np.sum((YR - y) ** 2) / np.sum((YR - YR.mean()) ** 2)
    assert r2 > 0.97
    assert f"training R² {r2:.4f}" in err
    # predict: the target column is present here and ignored; then absent, columns reordered
    code, out, _ = run(capsys, "predict", model, reg_csv)
    header, rows = read_out(out)
    assert code == 0 and header == ["y"]
    np.testing.assert_array_equal(np.array([float(r[0]) for r in rows]).astype(dtype), y)
    shuffled = write_csv(tmp_path / "new.csv", ["w", "extra", "u", "v"],
                         [[repr(x[2]), "zzz", repr(x[0]), repr(x[1])] for x in XR.tolist()])
    code, out2, _ = run(capsys, "predict", model, shuffled)
    assert code == 0 and out2 == out


def test_folding_is_exact_to_rounding():
    rng = np.random.default_rng(0)
    for output in ("identity", "sigmoid", "softmax"):
        net = cprop.MLP([5, 7, 3], hidden="tanh", output=output, seed=1)
        X = rng.normal(size=(30, 5)) * [1, 1e3, 1e-3, 7, 1] + [0, 5e3, 1, -4, 0]
        mean, scale = _tabular.standardizer(X)
        before = net.forward((X - mean) / scale)
        _tabular.fold_input_scaling(net, mean, scale)
        np.testing.assert_allclose(net.forward(X), before, rtol=1e-10, atol=1e-12)
    t_mean, t_scale = np.array([1e4, -2, 0]), np.array([300.0, 1, 1e-3])
    net = cprop.MLP([2, 4, 3], output="identity", seed=2)
    X = rng.normal(size=(9, 2))
    before = net.forward(X)
    _tabular.fold_output_scaling(net, t_mean, t_scale)
    np.testing.assert_allclose(net.forward(X), before * t_scale + t_mean, rtol=1e-13)
    # a constant column is centred, not divided by zero
    mean, scale = _tabular.standardizer(np.array([[1.0, 5.0], [2.0, 5.0]]))
    assert scale.tolist() == [0.5, 1.0] and mean.tolist() == [1.5, 5.0]


def test_same_seed_same_model_and_no_scale(tmp_path, capsys, class_csv):
    for k in (1, 2):
        assert run(capsys, "train", class_csv, "--target", "-1", "--epochs", "3", "--seed",
                   "9", "--save", tmp_path / f"m{k}.npz")[0] == 0
    a, b = cprop.load(tmp_path / "m1.npz"), cprop.load(tmp_path / "m2.npz")
    assert np.array_equal(a.params, b.params) and a.dataset["target"] == "kind"
    code, _, err = run(capsys, "train", class_csv, "--target", "kind", "--epochs", "3",
                       "--seed", "9", "--no-scale", "--save", tmp_path / "m3.npz")
    assert code == 0 and "inputs not scaled" in err
    # unscaled, the first layer is exactly what training left: compare with a Python run
    net = cprop.MLP([4, 32, 3], hidden="relu", output="softmax", loss="cross_entropy", seed=9)
    T = np.searchsorted(["cat", "dog", "emu"], LABELS)
    net.fit(XC, T, epochs=3, lr=0.01, batch_size=32, optimizer="adam")
    assert np.array_equal(cprop.load(tmp_path / "m3.npz").params, net.params)


# -- the task rule --------------------------------------------------------------------------------

@pytest.mark.parametrize("values,flag,task,classes", [
    (["yes", "no", "yes", "no"], "auto", "classify", ["no", "yes"]),
    (["1", "0", "2.0", "10"], "auto", "classify", ["0", "1", "2", "10"]),
    ([str(v) for v in range(25)], "auto", "regress", None),
    (["0.5", "1", "2", "3"], "auto", "regress", None),
    (["1", "0", "1", "0"], "regress", "regress", None),
    (["0.5", "1", "0.5", "1"], "classify", "classify", ["0.5", "1"]),
])
def test_task_rule(tmp_path, capsys, values, flag, task, classes):
    n = len(values)
    path = write_csv(tmp_path / "t.csv", ["x", "t"], [[str(i), v] for i, v in enumerate(values)])
    code, _, err = run(capsys, "train", path, "--target", "t", "--epochs", "1", "--seed", "0",
                       "--task", flag, "--batch-size", str(n), "--save", tmp_path / "m.npz")
    assert code == 0, err
    net = cprop.load(tmp_path / "m.npz")
    assert net.dataset["task"] == task and net.dataset["classes"] == classes
    assert net.layer_sizes[-1] == (len(classes) if classes else 1)


def test_one_class_is_refused(tmp_path, capsys):
    path = write_csv(tmp_path / "t.csv", ["x", "t"], [["1", "a"], ["2", "a"]])
    code, out, err = run(capsys, "train", path, "--target", "t", "--task", "classify")
    assert code == 2 and out == "" and "one class only ('a')" in err


# -- errors: FILE:LINE:COLUMN, nothing written ----------------------------------------------------

BAD_FILES = [
    ("not-a-number", "x,y,t\n1,2,a\n3,oops,b\n",
     ":3:2: expected a number in column 'y', got 'oops'"),
    ("empty-field", "x,y,t\n1,2,a\n3,,b\n", ":3:2: missing value in column 'y'"),
    ("nan", "x,y,t\n1,2,a\nnan,4,b\n", ":3:1: expected a finite number in column 'x', got 'nan'"),
    ("overflow", "x,y,t\n1,2,a\n3,1e999,b\n", ":3:2: expected a finite number"),
    ("field-count", "x,y,t\n1,2,a\n3,4\n", ":3: expected 3 fields as in the header, got 2"),
    ("blank-lines-counted", "x,y,t\n\n1,2,a\n\n3,x,b\n", ":5:2: expected a number"),
    ("first-bad-line-wins", "x,y,t\n1,2,a\n3,?,b\n!,4,c\n", ":3:2: expected a number"),
    ("then-leftmost", "x,y,t\n1,2,a\n3,?,b\n!,4,c\n".replace("3,?", "#,?"),
     ":3:1: column 'x' holds text ('#' and 1 more), not numbers; use --ignore x or "
     "--categorical x"),
    ("quoted-newline", 'x,y,t\n1,2,"a\nb"\n3,?,b\n', ":4:2: expected a number"),
    ("target-missing", "x,y,t\n1,2,a\n3,4,\n", ":3:3: missing value in the target column 't'"),
    ("no-header", "1,2,3\n4,5,6\n", ":1: the first row holds only numbers"),
    ("duplicate-name", "x,x,t\n1,2,a\n", ":1:2: column name 'x' appears twice"),
    ("empty-name", "x,,t\n1,2,a\n", ":1:2: empty column name"),
    ("empty", "", ": the file is empty; expected a header row"),
    ("header-only", "x,y,t\n", ": no data rows after the header"),
    ("bad-quote", 'x,y,t\n1,2,a\n3,"4"5,b\n', ":3: malformed CSV"),
]


@pytest.mark.parametrize("text,message", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_train_errors_name_file_line_column(tmp_path, capsys, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    code, out, err = run(capsys, "train", path, "--target", "t", "--epochs", "1",
                         "--save", tmp_path / "m.npz", "--plot", tmp_path / "p.png")
    assert code == 2 and out == ""
    assert err.startswith(f"cprop train: error: {path}{message}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # nothing written


def test_not_utf8_and_missing_file(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes("x,t\n1,a\n2,caf\xe9\n".encode("latin-1"))
    code, _, err = run(capsys, "train", path, "--target", "t")
    assert code == 2 and err.startswith(
        f"cprop train: error: {path}:3:2: not UTF-8 text (byte 0xe9, byte 6 of the line)")
    code, out, err = run(capsys, "train", tmp_path / "none.csv", "--target", "t")
    assert code == 2 and out == ""  # the input was not accepted
    assert err == f"cprop train: error: {tmp_path / 'none.csv'}: No such file or directory\n"
    code, _, err = run(capsys, "train", tmp_path, "--target", "t")
    assert code == 2 and "is a directory" in err


def test_bad_options_fail_before_training(tmp_path, capsys, class_csv):
    base = ["train", class_csv, "--epochs", "1"]
    cases = [
        (["--target", "nope"], "--target: ", "has no column 'nope'; its columns are 'a', 'b'"),
        (["--target", "7"], "--target: ", "out of range for 5 columns"),
        (["--target", "kind", "--ignore", "kind"], "--ignore: ", "cannot be ignored"),
        (["--target", "kind", "--plot", tmp_path / "p.jpg"], "--plot: ", "ending in .png"),
        (["--target", "kind", "--save", tmp_path / "no" / "m.npz"], "--save: ",
         "does not exist"),
        (["--target", "kind", "--lr", "-1"], "--lr: ", "expected a finite number > 0"),
        (["--target", "kind", "--validation-fraction", "0.999"], "--validation-fraction: ",
         "leaves 0 to train on"),
        (["--target", "kind", "--validation-fraction", "1"], "--validation-fraction: ",
         "expected a number in [0, 1)"),
    ]
    for extra, prefix, message in cases:
        code, out, err = run(capsys, *base, *extra)
        assert code == 2 and out == "", (extra, err)
        assert f"cprop train: error: {prefix}" in err.splitlines()[-1] and message in err, err
        assert "network:" not in err  # nothing was printed before the error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animals.csv"]


def test_missing_matplotlib_or_tqdm_is_reported_before_training(tmp_path, capsys, class_csv,
                                                               monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, _, err = run(capsys, "train", class_csv, "--target", "kind", "--plot",
                       tmp_path / "p.png", "--save", tmp_path / "m.npz")
    assert code == 1 and 'needs matplotlib: pip install "cprop[plot]"' in err
    assert "network:" not in err
    monkeypatch.setitem(sys.modules, "tqdm", None)
    code, _, err = run(capsys, "train", class_csv, "--target", "kind", "--progress")
    assert code == 1 and 'needs tqdm: pip install "cprop[progress]"' in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animals.csv"]


def test_failed_or_interrupted_training_writes_nothing(tmp_path, capsys, class_csv,
                                                       monkeypatch):
    outputs = ["--save", tmp_path / "m.npz", "--plot", tmp_path / "p.png"]
    code, _, err = run(capsys, "train", class_csv, "--target", "kind", "--optimizer", "sgd",
                       "--lr", "1e300", *outputs)
    assert code == 1 and "FloatingPointError" not in err and "learning rate" in err
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cprop.MLP, "fit", interrupt)
    code, _, err = run(capsys, "train", class_csv, "--target", "kind", *outputs)
    assert code == 130 and "interrupted" in err
    monkeypatch.undo()

    def full_disk(self, path):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cprop.MLP, "save", full_disk)
    code, _, err = run(capsys, "train", class_csv, "--target", "kind", "--epochs", "2",
                       *outputs)
    assert code == 1 and "No space left" in err
    # the plot was rendered, but it is written only after the model, so neither exists
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animals.csv"]


def test_predict_errors_write_nothing_to_stdout(tmp_path, capsys, reg_csv):
    model = tmp_path / "r.npz"
    assert run(capsys, "train", reg_csv, "--target", "y", "--epochs", "2", "--seed", "0",
               "--save", model)[0] == 0
    rows = [[repr(x) for x in r] for r in XR[:50].tolist()]
    rows[41][1] = "12,5"
    bad = write_csv(tmp_path / "new.csv", ["u", "v", "w"], rows)
    code, out, err = run(capsys, "predict", model, bad, "--output", tmp_path / "pred.csv")
    assert code == 2 and out == ""
    assert err.startswith(f"cprop predict: error: {bad}:43:2: expected a number in column 'v', "
                          "got '12,5'")
    assert not (tmp_path / "pred.csv").exists()
    missing = write_csv(tmp_path / "m.csv", ["u", "w"], [r[::2] for r in rows])
    code, out, err = run(capsys, "predict", model, missing)
    assert code == 2 and out == ""
    assert err.startswith(f"cprop predict: error: {missing}:1: no column 'v' in the header")
    code, out, err = run(capsys, "predict", tmp_path / "nothing.npz", reg_csv)
    assert code == 2 and out == ""  # a missing model is an input error
    assert err == (f"cprop predict: error: {tmp_path / 'nothing.npz'}: No such file or "
                   "directory\n")
    # the real program: exit status and an empty stdout
    proc = subprocess.run([sys.executable, "-m", "cprop", "predict", str(model), bad],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"cprop predict: error: {bad}:43:2: ")


def test_predict_output_file_keep_and_python_models(tmp_path, capsys, class_csv):
    model = tmp_path / "m.npz"
    assert run(capsys, "train", class_csv, "--target", "kind", "--epochs", "5", "--seed", "1",
               "--save", model)[0] == 0
    code, out, err = run(capsys, "predict", model, class_csv, "--keep", "d,kind",
                         "--output", tmp_path / "pred.csv")
    assert code == 0 and out == "" and err == ""
    header, rows = read_out((tmp_path / "pred.csv").read_text())
    # the kept column keeps its name; the prediction's is prefixed, never a second 'kind'
    assert header == ["d", "kind", "predicted_kind"] and len(rows) == 240
    assert [r[1] for r in rows] == LABELS.tolist()
    assert [r[0] for r in rows] == [repr(v) for v in XC[:, 3].tolist()]
    # a network saved from Python has no column names: the columns are its inputs, in order
    net = cprop.MLP([2, 3, 2], seed=0)
    net.save(tmp_path / "py.npz")
    plain = write_csv(tmp_path / "plain.csv", ["p", "q"], [["0.5", "-1"], ["2", "0"]])
    code, out, _ = run(capsys, "predict", tmp_path / "py.npz", plain)
    header, rows = read_out(out)
    assert code == 0 and header == ["output_0", "output_1"]
    np.testing.assert_array_equal([[float(v) for v in r] for r in rows],
                                  net.forward([[0.5, -1], [2, 0]]))
    code, _, err = run(capsys, "predict", tmp_path / "py.npz", class_csv)
    assert code == 2 and "takes 2 inputs" in err


def test_progress_plot_and_early_stopping(tmp_path, capsys, class_csv):
    code, out, err = run(capsys, "train", class_csv, "--target", "kind", "--epochs", "300",
                         "--seed", "0", "--validation-fraction", "0.3", "--early-stopping",
                         "--patience", "3", "--progress", "--plot", tmp_path / "loss.png",
                         "--save", tmp_path / "m.npz")
    assert code == 0 and out == ""
    assert "epoch" in err and "fit:" in err  # the tqdm bar, on stderr
    assert "(early_stopping)" in err and "kept" in err
    png = (tmp_path / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and 5_000 < len(png) < 200_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animals.csv", "loss.png", "m.npz"]


# -- the optional "dataset" header field of cprop-mlp v1 ------------------------------------------

def _parts(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _with_header(src, dst, change):
    parts = _parts(src)
    header = json.loads(parts["header"].tobytes())
    change(header)
    parts["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **parts)


GOOD = {"features": ["a", "b"], "target": "t", "task": "classify", "classes": ["x", "y", "z"]}

BAD_DATASETS = [
    ("not-object", ["a"], "'dataset' must be an object"),
    ("extra-key", {**GOOD, "more": 1}, "exactly the keys"),
    ("missing-key", {k: v for k, v in GOOD.items() if k != "classes"}, "exactly the keys"),
    ("feature-count", {**GOOD, "features": ["a"]}, "'dataset.features' must be a list of 2"),
    ("feature-type", {**GOOD, "features": ["a", 3]}, r"'dataset.features'\[1\] must be a non"),
    ("feature-empty", {**GOOD, "features": ["a", ""]}, "non-empty string"),
    ("feature-long", {**GOOD, "features": ["a", "b" * 1025]}, "at most 1024"),
    ("feature-dup", {**GOOD, "features": ["a", "a"]}, "names 'a' more than once"),
    ("target-type", {**GOOD, "target": None}, "'dataset.target'"),
    ("target-is-feature", {**GOOD, "target": "a"}, "is also a feature"),
    ("task", {**GOOD, "task": "cluster"}, "'dataset.task' is 'cluster'"),
    ("class-count", {**GOOD, "classes": ["x", "y"]}, "'dataset.classes' must be a list of 3"),
    ("class-dup", {**GOOD, "classes": ["x", "y", "x"]}, "names 'x' more than once"),
    ("classes-null", {**GOOD, "classes": None}, "'dataset.classes' must be a list"),
    ("regress-classes", {**GOOD, "task": "regress"}, "must be null for task 'regress'"),
]


@pytest.mark.parametrize("dataset,pattern", [b[1:] for b in BAD_DATASETS],
                         ids=[b[0] for b in BAD_DATASETS])
def test_hostile_dataset_fields_are_refused(tmp_path, dataset, pattern):
    net = cprop.MLP([2, 4, 3], output="softmax", loss="cross_entropy", seed=0)
    net.save(tmp_path / "ok.npz")
    _with_header(tmp_path / "ok.npz", tmp_path / "bad.npz",
                 lambda h: h.__setitem__("dataset", dataset))
    with pytest.raises(ValueError, match=pattern) as info:
        cprop.load(tmp_path / "bad.npz")
    assert "bad.npz" in str(info.value)
    net.dataset = dataset  # and save refuses it: it would not load back
    with pytest.raises(ValueError, match="save: net.dataset is not valid"):
        net.save(tmp_path / "never.npz")
    assert not (tmp_path / "never.npz").exists()


def test_dataset_round_trip_and_old_files(tmp_path):
    net = cprop.MLP([2, 4, 3], output="softmax", loss="cross_entropy", seed=0)
    assert net.dataset is None
    net.save(tmp_path / "old.npz")  # no dataset: the header is exactly the old one
    header = json.loads(_parts(tmp_path / "old.npz")["header"].tobytes())
    assert "dataset" not in header and list(header) == list(cprop.io._HEADER_KEYS)
    assert cprop.load(tmp_path / "old.npz").dataset is None
    net.dataset = GOOD
    net.save(tmp_path / "new.npz")
    back = cprop.load(tmp_path / "new.npz")
    assert back.dataset == GOOD and np.array_equal(back.params, net.params)
    reg = cprop.MLP([2, 1], output="identity", seed=0)
    reg.dataset = {"features": ["é", "名前"], "target": "y", "task": "regress", "classes": None}
    reg.save(tmp_path / "reg.npz")
    assert cprop.load(tmp_path / "reg.npz").dataset == reg.dataset
    one = cprop.MLP([2, 1], output="sigmoid", seed=0)
    one.dataset = {**GOOD, "classes": ["x"]}
    with pytest.raises(ValueError, match="a classifier needs one per class"):
        one.save(tmp_path / "one.npz")


def test_threads_give_the_same_model(tmp_path, capsys):
    # 300 rows, batch 256 through a 64-wide layer: the batches are cut into parts (MLP.fit's
    # n_threads), so --threads 2 shares them, with the same bits as --threads 1
    rng = np.random.default_rng(0)
    rows = [[f"{v:.6f}" for v in rng.normal(size=20)] + [str(int(rng.integers(0, 8)))]
            for _ in range(300)]
    path = write_csv(tmp_path / "t.csv", [f"x{i}" for i in range(20)] + ["t"], rows)
    models = []
    for threads in ("1", "2"):
        out = tmp_path / f"m{threads}.npz"
        code, _, err = run(capsys, "train", path, "--target", "t", "--epochs", "3", "--seed",
                           "0", "--layers", "64", "--batch-size", "256", "--threads", threads,
                           "--save", out)
        assert code == 0, err
        models.append(cprop.load(out))
    assert models[0]._plan.parts(256) == 4
    assert np.array_equal(models[0].params, models[1].params)
    code, _, err = run(capsys, "train", path, "--target", "t", "--threads", "0")
    assert code == 2 and "--threads" in err
