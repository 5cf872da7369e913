"""Fuzzing ``cprop train``, ``cprop predict`` and ``cprop export`` with hostile CSV files.

Hypothesis writes hostile CSV files - ragged rows, empty and duplicate names, NaN/inf/huge and
non-numeric cells, quotes, NUL bytes, text that is not UTF-8, no header, header only, other
delimiters - and picks random options (``--delimiter`` and ``--categorical`` too). Whatever
comes in, ``cli.main`` must return an exit status (0 success, 2 bad input, 1 a failure such as a
diverging fit), never raise or print a traceback; an error is one last line ``cprop <command>:
error: ...``; and nothing half-written may stay behind: on failure neither the ``--save`` model
nor the ``--plot`` image nor the ``--output`` file exists. On success the saved model loads,
predicts and is evaluated on its own file.

As in test_fuzz.py: a crash (segfault) kills pytest (faulthandler prints where), examples are
fixed (derandomize) unless CPROP_FUZZ_SEED is set, and CPROP_FUZZ_SCALE multiplies the budget.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import numpy as np
from hypothesis import given, strategies as st

import cprop
from cprop import cli
from test_fuzz import RUNS, _report_counts, fuzz_settings  # noqa: F401 (the fixture)

CELLS = st.one_of(
    st.sampled_from(["0", "1", "2", "-1", "0.5", "1e308", "-1e308", "1e309", "nan", "inf",
                     "-inf", "", " ", "x", "a", "b", "1,5", '"3"', '"', "\x00", "é", "0x10",
                     "1_000", "+2", "3.", ".5", "1e-320", "9" * 400, ";", "1;2", "\t"]),
    st.floats(-1e3, 1e3, allow_nan=False).map(repr),
    st.integers(-3, 3).map(str),
)
NAMES = st.sampled_from(["a", "b", "y", "target", "", "a", "é", " x ", '"q"', "1"])


NUMBERS = st.one_of(st.integers(-3, 3).map(str),
                    st.floats(-1e3, 1e3, allow_nan=False).map(repr),
                    st.sampled_from(["0.5", "1e-320", "1e300", "-0", "3.", ".5", "+2"]))


@st.composite
def csv_text(draw):
    # Half the files are clean (a valid header, numeric cells, equal widths) with at most one
    # hostile edit, so that training, prediction and export run too; the rest are anything.
    n_cols = draw(st.integers(1, 5))
    clean = draw(st.booleans())
    if clean or draw(st.booleans()):
        header = [f"c{k}" for k in range(n_cols - 1)] + ["y"]
    else:
        header = [draw(NAMES) for _ in range(n_cols)]
    rows = []
    for _ in range(draw(st.integers(0 if not clean else 2, 12))):
        if clean:
            rows.append([draw(NUMBERS) for _ in range(n_cols)])
            continue
        width = n_cols if draw(st.integers(0, 9)) else draw(st.integers(0, n_cols + 2))
        rows.append([draw(CELLS) for _ in range(width)])
    if clean and rows and draw(st.integers(0, 2)) == 0:  # one hostile cell
        r = draw(st.integers(0, len(rows) - 1))
        rows[r][draw(st.integers(0, n_cols - 1))] = draw(CELLS)
    sep = draw(st.sampled_from([",", ",", ";", "\t"]))
    lines = [sep.join(header)] if (clean or draw(st.integers(0, 7))) else []
    lines += [sep.join(r) for r in rows]
    text = "\n".join(lines) + ("\n" if draw(st.booleans()) else "")
    return text


CSV_BYTES = st.one_of(csv_text().map(lambda s: s.encode("utf-8", "surrogatepass")),
                      st.binary(max_size=200))

GOOD_OPTIONS = [
    ["--task", "classify"], ["--task", "regress"], ["--layers", "3"], ["--layers", ""],
    ["--lr", "0.1"], ["--batch-size", "1"], ["--optimizer", "sgd"], ["--optimizer", "rprop"],
    ["--momentum", "0.9"], ["--validation-fraction", "0.5"], ["--early-stopping"],
    ["--no-scale"], ["--no-shuffle"], ["--seed", "3"], ["--dtype", "float32"],
    ["--hidden", "leaky_relu"], ["--lr-schedule", "cosine"], ["--init", "he_normal"],
    ["--plot", "PLOT"], ["--target", "-1"], ["--delimiter", ";"], ["--delimiter", ","],
    ["--categorical", "c0"], ["--categorical", "c1"],
]
BAD_OPTIONS = [
    ["--target", "0"], ["--target", "zz"], ["--target", "9"], ["--layers", "0"],
    ["--layers", "2,x"], ["--epochs", "0"], ["--epochs", "-1"], ["--lr", "1e308"],
    ["--lr", "nan"], ["--batch-size", "0"], ["--momentum", "2"], ["--alpha", "-1"],
    ["--validation-fraction", "1"], ["--patience", "0"], ["--seed", "-1"],
    ["--negative-slope", "-1"], ["--ignore", "c0"], ["--ignore", "y"], ["--delimiter", "xx"],
    ["--categorical", "y"], ["--categorical", "zz"],
]
TRAIN_OPTIONS = st.one_of(
    st.lists(st.sampled_from(GOOD_OPTIONS), max_size=5),
    st.lists(st.sampled_from(GOOD_OPTIONS + BAD_OPTIONS), max_size=6),
).map(lambda opts: [tok for opt in opts for tok in opt])


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)  # returns argparse's status too
    if status != 0:  # the one error format: the last line of stderr
        assert err.getvalue().splitlines()[-1].startswith(f"cprop {argv[0]}: error: "), (
            err.getvalue())
    return status, out.getvalue(), err.getvalue()


@fuzz_settings(300)
@given(data=CSV_BYTES, options=TRAIN_OPTIONS,
       plot_ext=st.sampled_from(["png", "png", "svg", "txt"]))
def test_fuzz_train_predict_export(data, options, plot_ext):
    RUNS["cli_train"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "data.csv")
        model = os.path.join(tmp, "model.npz")
        plot = os.path.join(tmp, f"loss.{plot_ext}")
        with open(src, "wb") as f:
            f.write(data)
        options = [plot if tok == "PLOT" else tok for tok in options]
        if "--target" not in options:
            options = ["--target", "y"] + options
        if "--epochs" not in options:
            options += ["--epochs", "2"]
        status, out, err = _run(["train", src, *options, "--save", model])
        assert status in (0, 1, 2), (status, err)
        assert "Traceback" not in err, err
        assert out == "", out  # train writes its summary to stderr only
        if status != 0:
            assert err.strip(), "a failure must say why"
            assert not os.path.exists(model), "a failed train left a model file"
            assert not os.path.exists(plot), "a failed train left a plot file"
            assert sorted(os.listdir(tmp)) == ["data.csv"], os.listdir(tmp)  # no temp files
            RUNS[f"cli_train_exit_{status}"] += 1
            return
        RUNS["cli_train_trained"] += 1
        net = cprop.load(model)  # a saved model is a valid model
        assert np.isfinite(net.params).all()

        # predict on the same file (and on a corrupted copy of it)
        pred_out = os.path.join(tmp, "pred.csv")
        status, out, err = _run(["predict", model, src, "-o", pred_out])
        assert status in (0, 2), (status, err)
        assert "Traceback" not in err and out == ""
        if status == 0:
            assert os.path.getsize(pred_out) > 0
        else:
            assert not os.path.exists(pred_out)
        bad = os.path.join(tmp, "bad.csv")
        with open(bad, "wb") as f:
            f.write(data[: len(data) // 2] + b"\n,,x,\xff\n")
        status, out, err = _run(["predict", model, bad])
        assert status in (0, 2), (status, err)
        assert "Traceback" not in err
        if status == 2:
            assert out == "", "predict printed predictions and then failed"
            assert err.strip()

        status, out, err = _run(["evaluate", model, src])
        assert status in (0, 2), (status, err)
        assert "Traceback" not in err
        if status == 0:
            assert out.strip()

        # export (onnx is a test dependency)
        onnx_path = os.path.join(tmp, "m.onnx")
        status, out, err = _run(["export", model, onnx_path])
        assert status == 0, err
        assert os.path.getsize(onnx_path) > 0


@fuzz_settings(60)
@given(blob=st.binary(max_size=300), command=st.sampled_from(["predict", "export"]))
def test_fuzz_model_file_given_to_predict_and_export(blob, command):
    # Any bytes as the model: exit 2 with a message naming the file, nothing written.
    RUNS["cli_model_bytes"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.npz")
        with open(model, "wb") as f:
            f.write(blob)
        data = os.path.join(tmp, "data.csv")
        with open(data, "w") as f:
            f.write("c0,y\n1,0\n")
        target = os.path.join(tmp, "out.onnx")
        argv = ["predict", model, data] if command == "predict" else ["export", model, target]
        status, out, err = _run(argv)
        assert status == 2, (status, err)
        assert "Traceback" not in err and "model.npz" in err, err
        assert out == ""
        assert not os.path.exists(target)


def test_standardizer_survives_huge_finite_columns():
    # Found by the fuzzer: a column holding 1e300 overflowed np.std (inf scale, a warning).
    from cprop import _tabular

    X = np.array([[0.0, 1e300, -1e308], [0.0, 0.0, 1e308], [0.0, 0.0, 1e308]])
    mean, scale = _tabular.standardizer(X)
    assert np.isfinite(mean).all() and np.isfinite(scale).all()
    np.testing.assert_allclose(mean, [0.0, 1e300 / 3, 1e308 / 3], rtol=1e-12)
    np.testing.assert_allclose(scale[1:], [np.sqrt(2) / 3 * 1e300, np.sqrt(8) / 3 * 1e308],
                               rtol=1e-12)
    assert scale[0] == 1.0  # constant column: only centred


def test_subnormal_spread_column_is_only_centred(tmp_path):
    # Found by the fuzzer: a column whose spread is subnormal (0 and 1e-320) got scale 5e-321,
    # and folding 1/scale into the weights overflowed (a RuntimeWarning, then an error).
    src = tmp_path / "d.csv"
    src.write_text("c0,c1,y\n0,1,0.5\n1e-320,2,0\n0,3,1\n")
    status, out, err = _run(["train", str(src), "--target", "y", "--epochs", "2",
                             "--save", str(tmp_path / "m.npz")])
    assert status == 0, err
    net = cprop.load(tmp_path / "m.npz")
    assert np.isfinite(net.params).all()


def test_standardizing_that_overflows_is_an_input_error(tmp_path):
    # Found by the fuzzer: the training rows' target spread was 4e-122, and a validation row
    # of 1e300, standardized, overflowed (a RuntimeWarning, then a failure after training
    # began). Now it is found with the other checks: status 2, nothing printed before.
    src = tmp_path / "d.csv"
    src.write_text("c0,y\n0,0\n0,0\n0,1e300\n1,8.463761796207735e-122\n")
    fresh = cprop.MLP([1, 32, 1], seed=3)
    train, val = fresh.validation_split(4, 0.5)
    assert 2 in val and 2 not in train  # seed 3 holds out the 1e300 row
    status, out, err = _run(["train", str(src), "--target", "y", "--validation-fraction",
                             "0.5", "--epochs", "2", "--seed", "3"])
    assert status == 2 and out == ""
    assert err == (f"cprop train: error: {src}: standardized with the training rows' mean and "
                   "spread, the validation rows of column 'y' overflow (values far outside the "
                   "training rows' range); check those rows, or hold out others (another "
                   "--seed)\n")
    status, _, err = _run(["train", str(src), "--target", "y", "--validation-fraction", "0.5",
                           "--epochs", "2", "--seed", "3", "--no-scale"])
    assert status in (0, 1), err  # (unscaled, 1e300 may well diverge: a failure, status 1)
    src.write_text("x,y\n1.7e308,1\n-1.7e308,2\n-1.7e308,3\n-1.7e308,4\n-1.7e308,5\n")
    status, _, err = _run(["train", str(src), "--target", "y", "--task", "regress"])
    assert status == 2 and err == (f"cprop train: error: {src}: column 'x' cannot be "
                                   "standardized: its values span more than the float range; "
                                   "use --no-scale\n")
