"""One error format and exit status for every command of the CLI.

A usage or input error is reported as ``cprop <command>: error: <message>`` (the last line on
stderr; argparse's usage may come before it), with exit status 2, nothing on stdout and no
file written, and the message names the option as the user typed it. Every option is checked
before anything is printed. Status 1 is for failures after the input was accepted.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import cprop
from cprop.cli import main
from cli_helpers import run



def write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def assert_error(err: str, command: str, message: str, exact: bool = False) -> None:
    """``err`` is argparse's usage (if any) and then the one error line, which holds
    ``message`` (or is exactly it)."""
    lines = err.rstrip("\n").split("\n")
    last = lines[-1]
    prefix = f"cprop {command}: error: " if command else "cprop: error: "
    assert last.startswith(prefix), err
    if exact:
        assert last == prefix + message, err
    else:
        assert message in last, err
    before = lines[:-1]
    if before:  # only argparse's usage, never a summary or a partial result
        assert before[0].startswith("usage: cprop"), err
        assert all(line.startswith(" ") for line in before[1:]), err


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    data = write_csv(tmp_path / "d.csv", ["a", "b", "y"],
                     [[repr(u), repr(v), str(t)] for (u, v), t in zip(X.tolist(), y)])
    reg = write_csv(tmp_path / "r.csv", ["a", "b", "z"],
                    [[repr(u), repr(v), repr(u + 2 * v)] for u, v in X.tolist()])
    model, regressor = tmp_path / "m.npz", tmp_path / "reg.npz"
    assert main(["train", data, "--target", "y", "--epochs", "2", "--seed", "0",
                 "--save", str(model)]) == 0
    assert main(["train", reg, "--target", "z", "--epochs", "2", "--seed", "0",
                 "--save", str(regressor)]) == 0
    return {"data": data, "reg": reg, "model": str(model), "regressor": str(regressor),
            "dir": str(tmp_path), "missing": str(tmp_path / "no" / "x")}


# (argv, command, message): message is the whole text after "error: " when it starts with "="
USAGE_ERRORS = [
    ([], "", "expected a command: demo, explain, info, train, predict, evaluate, export"),
    (["bogus"], "", "unknown command 'bogus' (choose from "),  # (quotes vary by Python)
    (["demo", "--network", "x"], "demo", "--network: invalid choice: 'x'"),
    (["demo", "--steps", "-1"], "demo", "=--steps: expected an integer >= 0, got -1"),
    (["demo", "--steps", "x"], "demo", "=--steps: expected an integer >= 0, got 'x'"),
    (["demo", "surplus"], "demo", "=unrecognized arguments: surplus"),
    (["demo", "--json", "--html", "{dir}/p.html"], "demo", "--json: not used with --html"),
    (["explain"], "explain", "the following arguments are required: --layers"),
    (["explain", "--layers", "2,0,1"], "explain",
     "=--layers: a layer width must be an integer >= 1, got 0 in '2,0,1'"),
    (["explain", "--layers", "3"], "explain", "--layers: expected at least 2 widths"),
    (["explain", "--layers", "2,x"], "explain", "--layers: expected comma-separated layer"),
    (["explain", "--layers", "2,2", "--lr", "-1"], "explain",
     "=--lr: expected a finite number > 0, got '-1'"),
    (["explain", "--layers", "2,2", "--lr", "inf"], "explain", "--lr: expected a finite"),
    (["explain", "--layers", "2,2", "--seed", "-1"], "explain",
     "=--seed: expected an integer in [0, 2**64), got -1"),
    (["explain", "--layers", "2,2", "--negative-slope", "-0.5"], "explain",
     "--negative-slope: expected a finite number >= 0"),
    (["explain", "--layers", "2,2", "--x", "1,2,3"], "explain", "--x: expected shape"),
    (["explain", "--layers", "2,2", "--x", "a,b"], "explain",
     "--x: expected comma-separated numbers"),
    (["explain", "--layers", "2,2", "--t", "1,2,3"], "explain", "--t: expected shape"),
    (["explain", "--layers", "2,2", "--output", "sigmoid", "--loss", "binary_cross_entropy",
      "--t", "2,0"], "explain", "--t: binary_cross_entropy targets must lie in [0, 1]"),
    (["explain", "--layers", "2,2", "--loss", "cross_entropy"], "explain",
     "=--loss: cross_entropy needs --output softmax, got --output sigmoid"),
    (["explain", "--layers", "2,1", "--output", "softmax"], "explain",
     "--output: softmax needs at least 2 outputs"),
    (["explain", "--layers", "100000,100000,100000"], "explain",
     "--layers: a network of [100000, 100000, 100000] has"),
    (["explain", "--layers", "2,2", "--hidden", "nope"], "explain", "--hidden: invalid choice"),
    (["info", "--nope"], "info", "=unrecognized arguments: --nope"),
    (["train", "{data}"], "train", "the following arguments are required: --target"),
    (["train", "{data}", "--target", "y", "--epochs", "0"], "train",
     "=--epochs: expected an integer >= 1, got 0"),
    (["train", "{data}", "--target", "y", "--batch-size", "0"], "train", "--batch-size: "),
    (["train", "{data}", "--target", "y", "--patience", "0"], "train", "--patience: "),
    (["train", "{data}", "--target", "y", "--layers", "32,0"], "train",
     "=--layers: a layer width must be an integer >= 1, got 0 in '32,0'"),
    (["train", "{data}", "--target", "y", "--lr", "0"], "train",
     "=--lr: expected a finite number > 0, got '0'"),
    (["train", "{data}", "--target", "y", "--lr", "1e-50", "--dtype", "float32"], "train",
     "--lr: 1e-50 is 0.0 in float32"),
    (["train", "{data}", "--target", "y", "--momentum", "1"], "train",
     "=--momentum: expected a number in [0, 1), got '1'"),
    (["train", "{data}", "--target", "y", "--momentum", "0.9"], "train",
     "=--momentum: only --optimizer sgd takes momentum, got --optimizer adam"),
    (["train", "{data}", "--target", "y", "--optimizer", "sgd", "--nesterov"], "train",
     "=--nesterov: needs --optimizer sgd and --momentum > 0"),
    (["train", "{data}", "--target", "y", "--alpha", "-1"], "train", "--alpha: expected a"),
    (["train", "{data}", "--target", "y", "--seed", "18446744073709551616"], "train",
     "--seed: expected an integer in [0, 2**64)"),
    (["train", "{data}", "--target", "y", "--negative-slope", "nan"], "train",
     "--negative-slope: "),
    (["train", "{data}", "--target", "y", "--validation-fraction", "1"], "train",
     "--validation-fraction: expected a number in [0, 1)"),
    (["train", "{data}", "--target", "y", "--validation-fraction", "0.999"], "train",
     "--validation-fraction: 0.999 of 40 rows leaves 0 to train on"),
    (["train", "{data}", "--target", "y", "--task", "x"], "train", "--task: invalid choice"),
    (["train", "{data}", "--target", "q"], "train", "--target: {data} has no column 'q'"),
    (["train", "{data}", "--target", "5"], "train", "--target: {data} has no column named '5'"),
    (["train", "{data}", "--target", "y", "--ignore", "zz"], "train", "--ignore: {data} has no"),
    (["train", "{data}", "--target", "y", "--ignore", "y"], "train",
     "=--ignore: the target 'y' cannot be ignored"),
    (["train", "{data}", "--target", "y", "--ignore", "a,a"], "train",
     "=--ignore: column 'a' is given twice"),
    (["train", "{data}", "--target", "y", "--ignore", "a,b"], "train",
     "no input columns left besides the target"),
    (["train", "{data}", "--target", "y", "--categorical", "y"], "train",
     "--categorical: 'y' is the target"),
    (["train", "{data}", "--target", "y", "--categorical", "a", "--ignore", "a"], "train",
     "=--categorical: column 'a' is also in --ignore"),
    (["train", "{data}", "--target", "y", "--delimiter", "ab"], "train",
     "--delimiter: expected one character"),
    (["train", "{data}", "--target", "y", "--delimiter", ";"], "train",
     "--target: {data} has no column 'y'; its columns are 'a,b,y' (one column"),
    (["train", "{data}", "--target", "y", "--plot", "{dir}/p.gif"], "train",
     "--plot: expected a file name ending in .png, .svg or .pdf"),
    (["train", "{data}", "--target", "y", "--plot", "{missing}/p.png"], "train",
     "--plot: the directory"),
    (["train", "{data}", "--target", "y", "--save", "{missing}/m.npz"], "train",
     "--save: the directory"),
    (["train", "{data}", "--target", "y", "--save", "{dir}"], "train", "--save: "),
    (["train", "{dir}/none.csv", "--target", "y"], "train",
     "={dir}/none.csv: No such file or directory"),
    (["predict", "{model}"], "predict", "the following arguments are required: data"),
    (["predict", "{dir}/none.npz", "{data}"], "predict",
     "={dir}/none.npz: No such file or directory"),
    (["predict", "{data}", "{data}"], "predict", "is not a valid cprop model file"),
    (["predict", "{model}", "{dir}/none.csv"], "predict", "No such file or directory"),
    (["predict", "{model}", "{data}", "--keep", "q"], "predict", "--keep: {data} has no"),
    (["predict", "{model}", "{data}", "--keep", "a,0"], "predict",
     "=--keep: column 'a' is given twice"),
    (["predict", "{regressor}", "{reg}", "--proba"], "predict",
     "=--proba: {regressor} is a regressor; --proba writes the class probabilities of a "
     "classifier"),
    (["predict", "{model}", "{data}", "--output", "{missing}/p.csv"], "predict",
     "--output: the directory"),
    (["predict", "{model}", "{data}", "-o", "{missing}/p.csv"], "predict",
     "--output: the directory"),
    (["evaluate", "{model}"], "evaluate", "the following arguments are required: data"),
    (["evaluate", "{dir}/none.npz", "{data}"], "evaluate", "No such file or directory"),
    (["evaluate", "{model}", "{reg}"], "evaluate", "no column 'y' (the model's target)"),
    (["evaluate", "{model}", "{data}", "--delimiter", "tab"], "evaluate",
     "no column 'y' (the model's target) in the header; evaluate compares the predictions "
     "with it (one column: its fields are taken as separated by tab; --delimiter sets another)"),
    (["evaluate", "", "{data}"], "evaluate", "=model: expected a file name, got ''"),
    (["predict", "{model}", ""], "predict", "=data: expected a file name, got ''"),
    (["train", "", "--target", "y"], "train", "=data: expected a file name, got ''"),
    (["export", "{model}"], "export", "the following arguments are required: onnx"),
    (["export", "{model}", ""], "export", "=the ONNX file: expected a file name, got ''"),
    (["export", "{dir}/none.npz", "{dir}/m.onnx"], "export", "No such file or directory"),
    (["export", "{model}", "{missing}/m.onnx"], "export", "the directory"),
]


@pytest.mark.parametrize("argv,command,message", USAGE_ERRORS,
                         ids=[" ".join(a[:4]) for a, _, _ in USAGE_ERRORS])
def test_usage_and_input_errors(files, capsys, argv, command, message):
    before = sorted(os.listdir(files["dir"]))
    code, out, err = run(capsys, *[a.format(**files) for a in argv])
    assert code == 2, err
    assert out == ""
    exact = message.startswith("=")
    assert_error(err, command, message.lstrip("=").format(**files), exact=exact)
    assert "Traceback" not in err
    assert "layer_sizes" not in err and "negative_slope" not in err  # the options' names
    assert sorted(os.listdir(files["dir"])) == before  # nothing written


def test_known_cases_from_the_issue(files, capsys):
    # explain named layer_sizes[1] and lr:, predict of a missing model exited 1
    code, _, err = run(capsys, "explain", "--layers", "2,0,1")
    assert code == 2 and "--layers:" in err and "layer_sizes[1]" not in err
    code, _, err = run(capsys, "explain", "--layers", "2,2", "--lr", "-1")
    assert code == 2 and err.splitlines()[-1].startswith("cprop explain: error: --lr: ")
    code, _, err = run(capsys, "predict", f"{files['dir']}/missing.npz", files["data"])
    assert code == 2 and err.startswith("cprop predict: error: ")


def test_an_error_after_the_input_was_accepted_is_status_1(files, capsys, monkeypatch):
    # training that diverges: the options and data were fine
    code, out, err = run(capsys, "train", files["data"], "--target", "y", "--optimizer", "sgd",
                         "--lr", "1e300", "--save", f"{files['dir']}/never.npz")
    assert code == 1 and out == ""
    assert "network:" in err  # the summary began: the input had been accepted
    assert err.splitlines()[-1].startswith("cprop train: error: ")
    assert not os.path.exists(f"{files['dir']}/never.npz")

    def full_disk(self, path):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cprop.MLP, "to_onnx", full_disk)
    code, _, err = run(capsys, "export", files["model"], f"{files['dir']}/m.onnx")
    assert code == 1 and err == "cprop export: error: [Errno 28] No space left on device\n"


def test_a_missing_optional_package_is_status_1_before_anything(files, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, out, err = run(capsys, "export", files["model"], f"{files['dir']}/m.onnx")
    assert code == 1 and out == ""
    assert err == ('cprop export: error: ONNX export needs the onnx package: pip install '
                   '"cprop[onnx]"\n')
    assert not os.path.exists(f"{files['dir']}/m.onnx")


def test_help_and_version_return_0(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"cprop {cprop.__version__}"
    for command in ("demo", "explain", "info", "train", "predict", "evaluate", "export"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: cprop {command}")


def _python_m(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "cprop", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd)


def test_real_exit_statuses(files):
    # the program as a shell sees it: status, stdout, the last line of stderr
    cases = [
        (["explain", "--layers", "2,0,1"], 2, "cprop explain: error: --layers: "),
        (["train", files["data"], "--target", "y", "--lr", "-1"], 2,
         "cprop train: error: --lr: "),
        (["train", files["data"]], 2, "cprop train: error: the following arguments"),
        (["predict", f"{files['dir']}/missing.npz", files["data"]], 2,
         "cprop predict: error: "),
        (["predict", files["regressor"], files["reg"], "--proba"], 2,
         "cprop predict: error: --proba: "),
        (["evaluate", files["model"], files["reg"]], 2, "cprop evaluate: error: "),
        (["train", files["data"], "--target", "y", "--optimizer", "sgd", "--lr", "1e300"], 1,
         "cprop train: error: fit (epoch"),
        (["evaluate", files["model"], files["data"]], 0, None),
    ]
    for argv, status, last in cases:
        proc = _python_m(*argv)
        assert proc.returncode == status, (argv, proc.stderr)
        if last is not None:
            assert proc.stdout == ""
            assert proc.stderr.splitlines()[-1].startswith(last), proc.stderr
            assert "Traceback" not in proc.stderr
        else:
            assert proc.stdout and proc.stderr == ""
