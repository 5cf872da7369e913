"""What `cprop train` and `cprop predict` write: predict's columns (never two with one name,
--proba for classifiers only), the summary's kept-model losses and "epoch k of n" (1-based,
while History.best_epoch stays 0-based), and a loss plot whose labels are never clipped."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

import cprop
from cprop import cli
from cprop.cli import main
from cli_helpers import run, write_csv




_rng = np.random.default_rng(3)
X = _rng.normal(size=(200, 3))
LABELS = np.where(X[:, 0] + 0.5 * X[:, 1] + _rng.normal(0, 0.5, 200) > 0, "yes", "no")


@pytest.fixture
def classifier(tmp_path, capsys):
    # a column named like the target's prediction and one like a probability column
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "P(yes)", "ok"],
                     [[*map(repr, x), "p", y] for x, y in zip(X.tolist(), LABELS)])
    assert main(["train", data, "--target", "ok", "--ignore", "P(yes)", "--epochs", "5",
                 "--seed", "0", "--save", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    return str(tmp_path / "m.npz"), data


def header_of(out):
    return next(csv.reader(io.StringIO(out)))


def test_keep_never_writes_two_columns_with_one_name(capsys, classifier):
    model, data = classifier
    code, out, _ = run(capsys, "predict", model, data, "--keep", "ok,P(yes),a", "--proba")
    assert code == 0
    header = header_of(out)
    assert header == ["ok", "P(yes)", "a", "predicted_ok", "P(no)", "predicted_P(yes)"]
    assert len(set(header)) == len(header)
    rows = list(csv.reader(io.StringIO(out)))[1:]
    P = cprop.load(model).forward(X)
    assert [r[0] for r in rows] == LABELS.tolist()  # the kept column as it was
    np.testing.assert_array_equal([float(r[5]) for r in rows], P[:, 1])  # P(yes)
    # a kept column literally named predicted_ok pushes the prefix once more
    path = write_csv(classifier[1].replace("d.csv", "e.csv"), ["a", "b", "c", "predicted_ok",
                                                                  "ok"],
                     [[*map(repr, x), "p", y] for x, y in zip(X.tolist(), LABELS)])
    code, out, _ = run(capsys, "predict", model, path, "--keep", "ok,predicted_ok")
    assert header_of(out) == ["ok", "predicted_ok", "predicted_predicted_ok"]
    # without a clash the names are the plain ones
    code, out, _ = run(capsys, "predict", model, data, "--keep", "a", "--proba")
    assert header_of(out) == ["a", "ok", "P(no)", "P(yes)"]


def test_proba_is_for_classifiers(tmp_path, capsys, classifier):
    model, data = classifier
    assert run(capsys, "predict", model, data, "--proba")[0] == 0
    net = cprop.MLP([3, 2], output="softmax", loss="cross_entropy", seed=0)
    net.save(tmp_path / "py.npz")  # from Python: no labels, its outputs are written as they are
    plain = write_csv(tmp_path / "p.csv", ["a", "b", "c"], [["1", "2", "3"]])
    code, out, err = run(capsys, "predict", tmp_path / "py.npz", plain, "--proba")
    assert code == 2 and out == ""
    assert err.startswith(f"cprop predict: error: --proba: {tmp_path / 'py.npz'} is a network "
                          "saved without cprop train's labels")
    code, out, _ = run(capsys, "predict", tmp_path / "py.npz", plain)
    assert code == 0 and header_of(out) == ["output_0", "output_1"]


_SUMMARY = re.compile(
    r"  (\d+) epochs \((\w+)\) in [\d.]+ s; kept the (best|last), epoch (\d+) of (\d+) \(counted "
    r"from 1\): training loss ([\d.e+-]+)(?:, validation loss ([\d.e+-]+))?")


def test_summary_reports_the_kept_model_and_counts_epochs_from_1(tmp_path, capsys,
                                                                 monkeypatch):
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "ok"],
                     [[*map(repr, x), y] for x, y in zip(X.tolist(), LABELS)])
    histories = []
    fit = cprop.MLP.fit

    def recording_fit(self, *args, **kwargs):
        histories.append(fit(self, *args, **kwargs))
        return histories[-1]
    monkeypatch.setattr(cprop.MLP, "fit", recording_fit)
    code, _, err = run(capsys, "train", data, "--target", "ok", "--layers", "64,64",
                       "--epochs", "300", "--lr", "0.03", "--seed", "1", "--validation-fraction",
                       "0.3", "--early-stopping", "--patience", "4", "--save",
                       tmp_path / "m.npz")
    assert code == 0, err
    h = histories[-1]
    assert h.stop_reason == "early_stopping" and h.best_epoch is not None
    # History.best_epoch is 0-based (Python's convention): the index of the best val_loss
    assert h.best_epoch == int(np.argmin(h.val_loss)) and h.best_epoch < h.epochs - 1
    m = _SUMMARY.search(err)
    assert m, err
    epochs, reason, which, k, n, train_loss, val_loss = m.groups()
    assert (int(epochs), reason, which) == (h.epochs, "early_stopping", "best")
    assert (int(k), int(n)) == (h.best_epoch + 1, h.epochs)  # printed 1-based
    # the losses printed are the kept (best) model's, not the last epoch's
    net = cprop.load(tmp_path / "m.npz")
    T = (LABELS == "yes").astype(int)
    fresh = cprop.MLP(net.layer_sizes, hidden=net.hidden, output=net.output,
                      loss=net.loss_name, seed=net.seed)
    train_rows, val_rows = fresh.validation_split(200, 0.3)
    assert float(val_loss) == pytest.approx(h.val_loss[h.best_epoch], rel=1e-5)
    assert float(val_loss) == pytest.approx(net.loss(X[val_rows], T[val_rows]), rel=1e-5)
    assert float(train_loss) == pytest.approx(net.loss(X[train_rows], T[train_rows]), rel=1e-5)
    assert float(val_loss) != pytest.approx(h.val_loss[-1], rel=1e-5)
    assert cli.epoch_of(h.best_epoch, h.epochs) == f"epoch {int(k)} of {h.epochs}"

    # without early stopping the last epoch is kept
    code, _, err = run(capsys, "train", data, "--target", "ok", "--epochs", "7", "--seed", "1")
    m = _SUMMARY.search(err)
    assert m.group(3, 4, 5) == ("last", "7", "7") and m.group(7) is None


def _outside(fig):
    """Texts (and axes' tick labels) drawn beyond the figure's edge."""
    from matplotlib.text import Text

    renderer = fig._get_renderer()
    box = fig.bbox
    problems = []
    ticks = set()
    for ax in fig.axes:  # tick labels: only the ticks drawn, via each axis' tight bbox
        for axis in (ax.xaxis, ax.yaxis):
            ticks.update(axis.get_ticklabels(which="both"))
            b = axis.get_tightbbox(renderer)
            if b is not None and not (box.x0 <= b.x0 and b.x1 <= box.x1 and box.y0 <= b.y0
                                      and b.y1 <= box.y1):
                problems.append((axis.__class__.__name__, b))
    texts = [t for t in fig.findobj(Text) if t not in ticks and t.get_visible()
             and t.get_text()]
    for t in texts:
        b = t.get_window_extent(renderer)
        if not (box.x0 <= b.x0 and b.x1 <= box.x1 and box.y0 <= b.y0 and b.y1 <= box.y1):
            problems.append((t.get_text(), b))
    return texts, problems


def _history(epochs=40, best=29):
    return cprop.mlp.History(loss=list(np.geomspace(1, 1e-3, epochs)),
                             val_loss=list(np.geomspace(1.2, 1e-2, epochs)),
                             stop_reason="early_stopping", best_epoch=best)


@pytest.mark.parametrize("title,label", [
    ("d.csv: [3, 32, 2] relu, adam lr=0.01", "cross-entropy (mean per row)"),
    ("a_very_long_data_file_name_from_an_export_2024-01-31_final_v2_really_final.csv: "
     "[64, 128, 128, 64, 10] leaky_relu, adam lr=0.001",
     "½ squared error (standardized target) (mean per row)"),
    ("x" * 300 + ".csv: [2, 1] relu, sgd lr=0.1", "½ squared error (mean per row)"),
    ("cost$and$price.csv: [2, 1] relu, sgd lr=0.1", "cross-entropy (mean per row)"),
])
def test_the_loss_plot_never_clips_its_labels(title, label):
    pytest.importorskip("matplotlib")
    fig = cli.plot_figure(_history(), title, label)
    texts, problems = _outside(fig)
    assert not problems, problems
    shown = [t.get_text() for t in texts]
    assert "kept: epoch 30 of 40" in shown  # best_epoch 29, 0-based, printed 1-based
    assert "epoch (counted from 1)" in shown
    ticks = fig.axes[0].get_xticks()
    assert np.array_equal(ticks, np.round(ticks))  # whole epochs only
    assert any(title.split(":")[0][:20] in s.replace("\\$", "$") for s in shown)


def test_the_old_layout_did_clip():
    # the check above can fail: the plot before this fix clipped a long title
    Figure = pytest.importorskip("matplotlib.figure").Figure
    fig = Figure(figsize=(6, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.plot(range(1, 41), _history().loss)
    ax.set_title("a_very_long_data_file_name_from_an_export_2024-01-31_final_v2.csv: "
                 "[64, 128, 128, 64, 10] leaky_relu, adam lr=0.001", fontsize=10)
    fig.draw_without_rendering()
    assert _outside(fig)[1]


def test_train_writes_a_plot_of_the_run(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data = write_csv(tmp_path / ("long_" * 20 + "name.csv"), ["a", "b", "c", "ok"],
                     [[*map(repr, x), y] for x, y in zip(X.tolist(), LABELS)])
    for ext in ("png", "svg", "pdf"):
        code, _, err = run(capsys, "train", data, "--target", "ok", "--epochs", "30", "--seed",
                           "0", "--validation-fraction", "0.2", "--early-stopping",
                           "--patience", "3", "--plot", tmp_path / f"loss.{ext}")
        assert code == 0, err
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = (tmp_path / "loss.svg").read_text()
    assert "kept: epoch" in svg  # (matplotlib keeps each text in a comment)
    assert (tmp_path / "loss.pdf").read_bytes().startswith(b"%PDF")
