"""The ``cprop`` command line (also ``python -m cprop``).

    cprop demo [--network seed|canonical] [--steps N] [--json] [--figures DIR] [--html FILE]
    cprop explain --layers 3,4,2 [--seed 0] [--hidden sigmoid] [--output sigmoid]
                  [--loss squared_error] [--negative-slope 0.01]
                  [--x 0.1,0.2,0.3] [--t 0,1] [--lr 0.5] [--json] [--html FILE]
    cprop info [--json]
    cprop train data.csv --target COL [--ignore COLS] [--categorical COLS] [--delimiter ';']
                [--layers 32,16] [--epochs 50] [--task auto] [--progress] [--plot loss.png]
                [--save model.npz] [fit options...]
    cprop predict model.npz new.csv [--proba] [--keep COLS] [--output predictions.csv]
    cprop evaluate model.npz test.csv [--json]
    cprop export model.npz model.onnx

Errors: every command reports a usage or input error as ``cprop <command>: error: <message>``
on stderr (the last line, after argparse's usage for a malformed command line), naming the
option as typed (``--layers``), and exits with status 2. Each command first checks everything
it was given - every option, the input files, the directories it will write to, the optional
packages it needs - and only then prints or writes anything (:func:`main` runs a command as a
check that returns the work, then the work). Status 1 is for failures after the input was
accepted: training that diverged, a file that cannot be written, a missing optional package.
130 on Ctrl-C, 0 on success. ``train``, ``predict``, ``evaluate`` and ``export`` write every
file atomically, and ``predict`` writes to stdout only once all predictions are computed, so a
failure leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import textwrap
import time

import numpy as np

__all__ = ["main"]


# -- the parser: every message is "cprop <command>: error: <message>", status 2 -----------------

class _Parser(argparse.ArgumentParser):
    """argparse, with the error line in cprop's format (the option first, as typed)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {_usage_message(message)}\n")


def _usage_message(message: str) -> str:
    """argparse's message in cprop's words: ``--lr: ...`` for ``argument --lr: ...``."""
    m = re.match(r"argument ([^:]+): (.*)", message, re.S)
    if m is None:
        if message.startswith("the following arguments are required: command"):
            return f"expected a command: {', '.join(COMMANDS)} (cprop --help says more)"
        return message
    name, rest = m.groups()
    if name == "command":
        rest = rest.replace("invalid choice: ", "unknown command ")
        return rest
    return f"{name.split('/')[0]}: {rest}"


def _type(function):
    """An argparse type whose ArgumentTypeError is the whole message after the option."""
    function.__name__ = function.__name__.strip("_").replace("_", " ")
    return function


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


@_type
def _positive_number(text: str) -> float:
    v = _float(text)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return v


@_type
def _nonnegative_number(text: str) -> float:
    v = _float(text)
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


@_type
def _fraction(text: str) -> float:
    v = _float(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


@_type
def _nonnegative_int(text: str) -> int:
    n = _integer(text, "an integer >= 0")
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {n}")
    return n


@_type
def _positive_int(text: str) -> int:
    n = _integer(text, "an integer >= 1")
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {n}")
    return n


@_type
def _seed(text: str) -> int:
    n = _integer(text, "an integer in [0, 2**64)")
    if not 0 <= n < 2**64:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**64), got {n}")
    return n


def _widths(minimum: int):
    """Comma-separated layer widths, each an integer >= 1, at least ``minimum`` of them."""
    @_type
    def _layer_widths(text: str) -> list[int]:
        parts = [v.strip() for v in text.split(",")]
        parts = [] if parts == [""] else parts
        widths = []
        for v in parts:
            try:
                widths.append(int(v))
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected comma-separated layer widths (integers >= 1) such as 3,4,2, "
                    f"got {text!r}") from None
            if widths[-1] < 1:
                raise argparse.ArgumentTypeError(f"a layer width must be an integer >= 1, got "
                                                 f"{widths[-1]} in {text!r}")
        if len(widths) < minimum:
            raise argparse.ArgumentTypeError(
                f"expected at least {minimum} widths (the inputs and the outputs) such as 3,4,2, "
                f"got {text!r}")
        return widths
    return _layer_widths


@_type
def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}") from None


@_type
def _columns(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


@_type
def _delimiter(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|",
             "space": " "}
    d = named.get(text.lower(), text)
    if len(d) != 1 or d in "\"\r\n" or d.isalnum() or d in ".+-":
        raise argparse.ArgumentTypeError(
            f"expected one character such as ',' ';' '|' or tab ('\\t'), got {text!r}")
    return d


COMMANDS = ("demo", "explain", "info", "train", "predict", "evaluate", "export")


def _parser() -> argparse.ArgumentParser:
    from cprop import __version__
    from cprop._registry import DTYPES, HIDDEN, INITS, LOSSES, OPTIMIZERS, OUTPUT, SCHEDULES

    p = _Parser(prog="cprop", description="Backpropagation at C speed.")
    p.add_argument("--version", action="version", version=f"cprop {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="command",
                           help=", ".join(COMMANDS))
    p.commands = {}

    def command(name, **kwargs):
        p.commands[name] = sub.add_parser(name, **kwargs)
        return p.commands[name]

    d = command("demo", help="the worked example, step by step")
    d.add_argument("--network", choices=["seed", "canonical"], default="seed",
                   help="seed: the project's seed text (default); canonical: Mazur's variant")
    d.add_argument("--steps", type=_nonnegative_int, default=0,
                   help="also train N SGD steps on the sample and show the loss")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.add_argument("--figures", metavar="DIR",
                   help="write the example's figures to DIR (created if missing): network.svg, "
                        "forward.svg, backward.svg, update.svg")
    d.add_argument("--html", metavar="FILE",
                   help="write the derivation beside the figures as one self-contained page")

    e = command("explain", help="the derivation of one SGD step on a random network")
    e.add_argument("--layers", type=_widths(2), required=True,
                   help="layer widths, e.g. 3,4,2")
    e.add_argument("--seed", type=_seed, default=0,
                   help="seeds the weights, x and t (default 0)")
    e.add_argument("--hidden", choices=HIDDEN, default="sigmoid")
    e.add_argument("--output", choices=OUTPUT, default="sigmoid")
    e.add_argument("--loss", choices=LOSSES, default="squared_error")
    e.add_argument("--negative-slope", type=_nonnegative_number, default=0.01,
                   help="slope of leaky_relu for negative inputs (default 0.01)")
    e.add_argument("--x", type=_numbers, help="the input (default: uniform in [-1, 1))")
    e.add_argument("--t", type=_numbers,
                   help="the target: one value per output, or for --loss cross_entropy a class "
                        "label such as 2 (default: uniform in [0, 1); for cross_entropy a random "
                        "class)")
    e.add_argument("--lr", type=_positive_number, default=0.5,
                   help="learning rate (default 0.5)")
    e.add_argument("--json", action="store_true", help="print the trace as one JSON object")
    e.add_argument("--html", metavar="FILE",
                   help="write the derivation beside figures of the network as one "
                        "self-contained page (instead of printing it)")

    i = command("info", help="how cprop was built and what it runs on (show_config)")
    i.add_argument("--json", action="store_true", help="print one JSON object")

    delimiter = dict(type=_delimiter, default=None,
                     help="the character between fields: , ; | tab ... (default: sniffed from "
                          "the file's first lines, among , ; tab |)")
    t = command(
        "train", help="train a network on a CSV file",
        description="Train an MLP on a CSV file with a header row. Every column but the target "
        "(and --ignore) is an input; inputs are standardized for training and the scaling is "
        "folded into the saved model, which takes the raw columns (one-hot encoded for "
        "--categorical). A summary goes to stderr.")
    t.add_argument("data", help="CSV file with a header row naming the columns")
    t.add_argument("--target", required=True,
                   help="the column to predict: a header name, or a 0-based index (-1: last)")
    t.add_argument("--ignore", type=_columns, default=[],
                   help="comma-separated columns that are not inputs (e.g. an id)")
    t.add_argument("--categorical", type=_columns, default=[], metavar="COLS",
                   help="comma-separated text columns to one-hot encode: one 0/1 input per "
                   "distinct value; the category lists are kept in the model")
    t.add_argument("--delimiter", **delimiter)
    t.add_argument("--task", choices=["auto", "classify", "regress"], default="auto",
                   help="classify: softmax + cross_entropy on the labels; regress: identity + "
                   "squared_error on the (standardized) number; auto (default): classify if "
                   "some target value is not a number, or all are integers with at most 20 "
                   "distinct values; else regress")
    t.add_argument("--layers", type=_widths(0), default=[32],
                   help="hidden layer widths, e.g. 32,16 (default 32; '' for none)")
    t.add_argument("--hidden", choices=HIDDEN, default="relu",
                   help="hidden activation (default relu)")
    t.add_argument("--negative-slope", type=_nonnegative_number, default=0.01,
                   help="slope of leaky_relu for negative inputs (default 0.01)")
    t.add_argument("--init", choices=INITS, default="glorot_uniform")
    t.add_argument("--dtype", choices=DTYPES, default="float64")
    t.add_argument("--epochs", type=_positive_int, default=50, help="default 50")
    t.add_argument("--lr", type=_positive_number, default=0.01,
                   help="learning rate (default 0.01)")
    t.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    t.add_argument("--threads", type=_positive_int, default=None,
                   help="threads sharing each large batch, as MLP.fit(n_threads=...): the same "
                   "result for any count (default: $CPROP_NUM_THREADS, else 1)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="default adam")
    t.add_argument("--momentum", type=_fraction, default=0.0,
                   help="sgd momentum, in [0, 1) (default 0)")
    t.add_argument("--nesterov", action="store_true", help="sgd: Nesterov momentum")
    t.add_argument("--alpha", type=_nonnegative_number, default=0.0,
                   help="L2 on the weights (default 0)")
    t.add_argument("--lr-schedule", choices=SCHEDULES, default="constant")
    t.add_argument("--no-shuffle", dest="shuffle", action="store_false",
                   help="keep the file's row order in every epoch")
    t.add_argument("--seed", type=_seed, default=None,
                   help="seeds the weights, the validation split and the shuffles (default: "
                   "drawn from the OS and printed)")
    t.add_argument("--validation-fraction", type=_fraction, default=0.0,
                   help="hold out this fraction of the rows to validate: chosen by a shuffle "
                   "from the network's generator, as MLP.fit(validation_fraction=...) does "
                   "(with --no-shuffle: the last rows)")
    t.add_argument("--early-stopping", action="store_true",
                   help="stop when the validation (else training) loss stops improving and "
                   "keep the best epoch")
    t.add_argument("--patience", type=_positive_int, default=10,
                   help="epochs without improvement before early stopping (default 10)")
    t.add_argument("--no-scale", dest="scale", action="store_false",
                   help="train on the raw columns (no standardization)")
    t.add_argument("--progress", action="store_true",
                   help='show a progress bar on stderr (tqdm: pip install "cprop[progress]")')
    t.add_argument("--plot", metavar="FILE",
                   help='write the loss curve (PNG, SVG or PDF by extension; matplotlib: pip '
                   'install "cprop[plot]")')
    t.add_argument("--save", metavar="FILE", help="write the trained model (.npz)")

    r = command(
        "predict", help="predict the target of every row of a CSV file",
        description="Write predictions as CSV (a header, one row per input row) to stdout. "
        "The input columns are found by header name; the target and other columns are ignored.")
    r.add_argument("model", help="a model saved by cprop train --save (or net.save)")
    r.add_argument("data", help="CSV file with a header row")
    r.add_argument("--proba", action="store_true",
                   help="classifiers: also write each class's probability, P(label)")
    r.add_argument("--keep", type=_columns, default=[],
                   help="comma-separated columns to copy into the output first (e.g. an id); "
                   "a prediction column whose name is taken gets the prefix predicted_")
    r.add_argument("--delimiter", **delimiter)
    r.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")

    v = command(
        "evaluate", help="score a saved model on labelled data",
        description="Score a model saved by cprop train on a CSV file that holds its input "
        "columns and its target: accuracy, per-class precision and recall and the confusion "
        "matrix for a classifier; R², RMSE and MAE for a regressor.")
    v.add_argument("model", help="a model saved by cprop train --save")
    v.add_argument("data", help="CSV file with a header row, holding the target column")
    v.add_argument("--delimiter", **delimiter)
    v.add_argument("--json", action="store_true", help="print one JSON object")

    x = command("export", help="convert a saved model to ONNX")
    x.add_argument("model", help="a model saved by cprop train --save (or net.save)")
    x.add_argument("onnx", help='the .onnx file to write (onnx: pip install "cprop[onnx]")')
    return p


# -- helpers -----------------------------------------------------------------------------------

_CORE_NAME = re.compile(r"(\w+)(?:\[[^\]]*\])*: ")


@contextlib.contextmanager
def _options(**names):
    """Rename the Python argument a cprop error starts with (``lr: ...``) to the option the
    user typed (``--lr: ...``)."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        m = _CORE_NAME.match(str(exc))
        if m is None or m.group(1) not in names:
            raise
        raise ValueError(f"{names[m.group(1)]}: {str(exc)[m.end():]}") from None


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"  # as GNU tools say it
    return str(exc)


def _output_path(path, option: str) -> str:
    """``path`` after checking that its directory exists (an input error if not)."""
    from cprop._atomic import check_writable_dir

    return check_writable_dir(path, option)


def _list(items, limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _input_path(path: str, name: str) -> str:
    if not path:
        raise ValueError(f"{name}: expected a file name, got ''")
    return path


def _load_model(path):
    from cprop.io import _load_network  # a population file is refused, saying so

    return _load_network(_input_path(path, "model"))


# -- demo, explain, info -----------------------------------------------------------------------

def _check_file_options(args, conflicting) -> None:
    """--figures / --html write files instead of printing: check them (and that nothing
    they replace was asked for) before any work."""
    given = [opt for opt in ("--figures", "--html")
             if getattr(args, opt[2:].replace("-", "_"), None) is not None]
    for opt in conflicting:
        value = getattr(args, opt[2:].replace("-", "_"))
        if value:
            raise ValueError(f"{opt}: not used with {' and '.join(given)}, which write files "
                             "instead of printing")
    if getattr(args, "html", None) is not None:
        _output_path(args.html, "--html")
    figures = getattr(args, "figures", None)
    if figures is not None:
        if not figures:
            raise ValueError("--figures: expected a directory name, got ''")
        if os.path.exists(figures) and not os.path.isdir(figures):
            raise ValueError(f"--figures: {figures!r} exists and is not a directory")
        parent = os.path.dirname(os.path.abspath(figures))
        if not os.path.isdir(parent):
            raise ValueError(f"--figures: the directory {parent!r} of {figures!r} does not exist")


def _write_text(path: str, text: str) -> None:
    from cprop._atomic import write_bytes

    write_bytes(path, text.encode("utf-8"))


def _demo(args):
    from cprop.demo import demo_data, format_demo

    if args.figures is not None or args.html is not None:
        _check_file_options(args, ("--json", "--steps"))
        return lambda: _demo_files(args)
    if args.json:
        return lambda: json.dumps(demo_data(args.network, args.steps)[0], indent=2,
                                  ensure_ascii=False)
    return lambda: format_demo(args.network, args.steps)


def _demo_files(args) -> None:
    """cprop demo --figures DIR / --html FILE: the example's figures and its explain page."""
    from cprop.demo import demo_data
    from cprop.examples import EXAMPLES
    from cprop.page import explain_page, figures_table

    example = EXAMPLES[args.network]
    net = example.network()
    x, t, lr = example.x, example.t, example.lr
    names = example.weight_names
    if args.figures is not None:
        os.makedirs(args.figures, exist_ok=True)
        stages = (("network.svg", "weights", {}), ("forward.svg", "forward", {"x": x, "t": t}),
                  ("backward.svg", "backward", {"x": x, "t": t}),
                  ("update.svg", "update", {"x": x, "t": t, "lr": lr}))
        for filename, stage, kwargs in stages:
            path = os.path.join(args.figures, filename)
            net.draw(path, stage=stage, weight_names=names, **kwargs)
            _say(f"cprop demo: wrote {path}")
    if args.html is not None:
        data, _ = demo_data(args.network)
        weights = ", ".join(f"{n} = W{layer + 1}[{i + 1},{j + 1}]"
                            for n, (layer, i, j) in names.items())
        intro = (f"Source: {example.source}.",
                 f"The weights carry the source text's names ({weights} in cprop's layout "
                 "weights[layer][i, j], from unit i below to unit j); the biases are not trained, "
                 "as in the text.")
        page = explain_page(net, x, t, lr, weight_names=names, title=example.title,
                            intro=intro, extra_html=figures_table(data["figures"]))
        _write_text(args.html, page)
        _say(f"cprop demo: wrote {args.html}")


def _explain(args):
    from cprop._registry import LOSS_OUTPUT, LOSS_TARGETS
    from cprop.mlp import MLP

    if args.html is not None:
        _check_file_options(args, ("--json",))
    needed = LOSS_OUTPUT[args.loss]
    if needed is not None and args.output != needed:
        raise ValueError(f"--loss: {args.loss} needs --output {needed}, got --output "
                         f"{args.output}")
    if args.output == "softmax" and args.layers[-1] < 2:
        raise ValueError(f"--output: softmax needs at least 2 outputs (the last of --layers), "
                         f"got {args.layers[-1]}")
    with _options(layer_sizes="--layers", negative_slope="--negative-slope"):
        net = MLP(args.layers, hidden=args.hidden, output=args.output, loss=args.loss,
                  seed=args.seed, negative_slope=args.negative_slope)

    # x and t come from the same seed (NumPy's generator), so a command line repeats exactly.
    # The default t is valid for the loss: for cross-entropy (targets are distributions) a
    # class label; --t takes one too, as net.explain does.
    rng = np.random.default_rng(args.seed)
    n_out = net.layer_sizes[-1]
    labels = LOSS_TARGETS[args.loss] == "distribution"
    x = args.x if args.x is not None else rng.uniform(-1, 1, net.layer_sizes[0]).round(4)
    if args.t is None:
        t = int(rng.integers(n_out)) if labels else rng.uniform(0, 1, n_out).round(4)
    elif labels and n_out > 1 and len(args.t) == 1:
        if not float(args.t[0]).is_integer() or not 0 <= args.t[0] < n_out:
            raise ValueError(f"--t: a class label for cross_entropy must be an integer in "
                             f"[0, {n_out}), got {args.t[0]:g}")
        t = int(args.t[0])
    else:
        t = args.t
    # The trace is computed here, with the checks: a bad --x or --t (or one that overflows)
    # is an input error.
    with _options(x="--x", t="--t", lr="--lr"):
        trace = net.explain(x, t, args.lr)
    if args.html is not None:
        def write_page():
            from cprop.page import explain_page

            _write_text(args.html, explain_page(net, x, t, args.lr))
            _say(f"cprop explain: wrote {args.html}")
        return write_page
    if args.json:
        return lambda: json.dumps(trace.to_dict(), indent=2)
    return lambda: f"{net!r}\n\n{trace.format()}"


def _info(args):
    from cprop._config import config, format_config

    cfg = config()
    return lambda: json.dumps(cfg, indent=2) if args.json else format_config(cfg)


# -- train ---------------------------------------------------------------------------------------

def _import_plotting():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('--plot needs matplotlib: pip install "cprop[plot]"') from None
    return Figure


def _plot_format(path: str) -> str:
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"--plot: expected a file name ending in .png, .svg or .pdf, "
                         f"got {path!r}")
    return fmt


def epoch_of(k: int, n: int) -> str:
    """``epoch k+1 of n``: a 0-based epoch index (``History.best_epoch``) as the CLI prints it,
    counted from 1."""
    return f"epoch {k + 1} of {n}"


def plot_figure(history, title: str, loss_label: str):
    """The loss curve as a matplotlib Figure (drawn, so every text has its final place).

    Long titles and labels are wrapped, and the constrained layout makes room for them, so no
    label is clipped by the figure's edge."""
    Figure = _import_plotting()
    fig = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    ax = fig.subplots()
    epochs = np.arange(1, history.epochs + 1)
    ax.plot(epochs, history.loss, label="training (mean during the epoch)")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, label="validation (after the epoch)")
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch + 1, color="0.6", linestyle=":",
                   label=f"kept: {epoch_of(history.best_epoch, history.epochs)}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch (counted from 1)")
    ax.set_ylabel("\n".join(textwrap.wrap(loss_label, 36)))
    # A "$" in a file name would start matplotlib's math text: escaped, it is a dollar sign.
    title = "\n".join(textwrap.wrap(title, 64, break_on_hyphens=False)).replace("$", r"\$")
    ax.set_title(title, fontsize=10)
    if min(history.loss + history.val_loss) > 0:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    fig.draw_without_rendering()
    return fig


def _render_plot(history, title: str, loss_label: str, fmt: str) -> bytes:
    import io

    fig = plot_figure(history, title, loss_label)
    buf = io.BytesIO()
    # fixed metadata: the same run gives the same file
    meta = {"Software": None} if fmt == "png" else {}
    fig.savefig(buf, format=fmt, metadata=meta)
    return buf.getvalue()


def _regression_scores(t: np.ndarray, y: np.ndarray) -> dict:
    """R² (None for a constant target), RMSE and MAE of predictions ``y`` of targets ``t``.

    Computed on values divided by the largest magnitude, so no square overflows (targets up
    to 1e308 are valid input); R² is scale-free, RMSE and MAE are scaled back in floats."""
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    big = max(float(np.max(np.abs(t))), float(np.max(np.abs(y))))
    big = big if big > 0 else 1.0
    tn, yn = t / big, y / big
    resid = float(np.sum((tn - yn) ** 2))
    total = float(np.sum((tn - tn.mean()) ** 2))
    return {"r2": 1 - resid / total if total > 0 else None,
            "rmse": math.sqrt(resid / len(t)) * big,
            "mae": float(np.mean(np.abs(tn - yn))) * big}


def _table_note(table) -> str:
    from cprop._csv import describe_delimiter

    notes = []
    if table.delimiter != ",":
        notes.append(f"{describe_delimiter(table.delimiter)}-separated"
                     + (", sniffed" if table.sniffed else ""))
    if table.index_column:
        notes.append("its unnamed first column (a pandas index) is not used")
    return f" ({'; '.join(notes)})" if notes else ""


def _train(args):
    from cprop import _tabular
    from cprop._csv import read_table
    from cprop._fileformat import MAX_NAME, check_dataset
    from cprop._validation import check_learning_rate, memory_limit_bytes
    from cprop.mlp import MLP
    from cprop.optimizers import check_optimizer

    # Everything is checked before anything is printed or trained: first the options ...
    if args.momentum and args.optimizer != "sgd":
        raise ValueError(f"--momentum: only --optimizer sgd takes momentum, got --optimizer "
                         f"{args.optimizer}")
    if args.nesterov and (args.optimizer != "sgd" or not args.momentum):
        raise ValueError("--nesterov: needs --optimizer sgd and --momentum > 0")
    with _options(momentum="--momentum", alpha="--alpha", nesterov="--nesterov",
                  optimizer="--optimizer"):
        check_optimizer(args.optimizer, args.momentum, args.nesterov, alpha=args.alpha)
    check_learning_rate(args.lr, np.dtype(args.dtype), "--lr")
    if args.epochs * 24 > memory_limit_bytes():  # what MLP.fit refuses: the history alone
        raise ValueError(f"--epochs: {args.epochs} epochs would not fit this machine's memory")
    if args.plot is not None:
        _output_path(args.plot, "--plot")
        fmt = _plot_format(args.plot)
        _import_plotting()
    if args.save is not None:
        _output_path(args.save, "--save")
    if args.progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            raise ImportError('--progress needs tqdm: pip install "cprop[progress]"') from None

    # ... then the data and the columns
    table = read_table(_input_path(args.data, "data"), args.delimiter)
    target = table.column(args.target, "--target")
    ignored = [table.column(c, "--ignore") for c in args.ignore]
    categorical = [table.column(c, "--categorical") for c in args.categorical]
    if target in ignored:
        raise ValueError(f"--ignore: the target {table.header[target]!r} cannot be ignored")
    if target in categorical:
        raise ValueError(f"--categorical: {table.header[target]!r} is the target; only input "
                         "columns are one-hot encoded (a text target is classified as it is)")
    for option, columns in (("--ignore", ignored), ("--categorical", categorical)):
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise ValueError(f"{option}: column {table.header[twice[0]]!r} is given twice")
    both = [c for c in categorical if c in ignored]
    if both:
        raise ValueError(f"--categorical: column {table.header[both[0]]!r} is also in --ignore")
    features = [k for k in range(len(table.header)) if k != target and k not in ignored]
    if not features:
        raise ValueError(f"{args.data}: no input columns left besides the target")
    for k in features + [target]:
        if len(table.header[k]) > MAX_NAME:
            raise ValueError(f"{args.data}: a column name is {len(table.header[k])} characters "
                             f"long; a model keeps names of at most {MAX_NAME}")
    categories = _tabular.find_categories(table, categorical, MAX_NAME)
    X = _tabular.encode(table, features, categories, text_hint=True)
    task, why, T, classes = _tabular.target_values(table, target, args.task)
    classify = task == "classify"
    if classify and max(map(len, classes)) > MAX_NAME:
        raise ValueError(f"--target: a class label of {table.header[target]!r} is longer than "
                         f"the {MAX_NAME} characters a model keeps")
    n_out = len(classes) if classify else 1
    with _options(layer_sizes="--layers", seed="--seed", negative_slope="--negative-slope"):
        net = MLP([X.shape[1], *args.layers, n_out], hidden=args.hidden,
                  output="softmax" if classify else "identity",
                  loss="cross_entropy" if classify else "squared_error", dtype=args.dtype,
                  seed=args.seed, negative_slope=args.negative_slope, init=args.init)
    dataset = {"features": [table.header[k] for k in features],
               "target": table.header[target], "task": task, "classes": classes}
    if categories:
        dataset["categories"] = {table.header[c]: cats for c, cats in categories.items()}
    try:
        check_dataset(dataset, net.layer_sizes)  # what saving would refuse after training
    except ValueError as exc:
        raise ValueError(f"{args.data}: the model file could not keep its column names "
                         f"({exc})") from None

    # The validation rows: MLP.fit's rule (cprop.validation_split) on the network's generator,
    # so `--seed S` holds out the rows MLP(..., seed=S).fit(..., validation_fraction=f) would,
    # and the epochs' shuffles that follow are that fit's too.
    n = len(table)
    n_val = int(np.ceil(args.validation_fraction * n))
    if args.validation_fraction and not 1 <= n_val < n:
        raise ValueError(f"--validation-fraction: {args.validation_fraction} of {n} rows "
                         f"leaves {n - n_val} to train on and {n_val} to validate")
    train, val = (net.validation_split(n, args.validation_fraction, shuffle=args.shuffle)
                  if n_val else (None, None))

    # The standardization (from the training rows) and the data as training sees it: a value
    # it would turn into infinity is an input error too, found before anything is printed.
    classify = task == "classify"
    X_train, T_train = (X[train], T[train]) if n_val else (X, T)
    if args.scale:
        x_mean, x_scale = _tabular.standardizer(X_train)
    else:
        x_mean, x_scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    if args.scale and not classify:
        t_mean, t_scale = _tabular.standardizer(T_train)
    else:
        t_mean, t_scale = np.zeros(1), np.ones(1)
    names = _tabular.encoded_names(dataset["features"], dataset.get("categories", {}))

    def scaled(X_, T_, rows):
        with np.errstate(over="ignore", invalid="ignore"):
            X_ = (X_ - x_mean) / x_scale
            T_ = T_ if classify else (T_ - t_mean) / t_scale
        # Beyond 1e150 standard deviations a squared error (or the network's sums) would
        # overflow; the training rows themselves lie within sqrt(n) of their mean.
        with np.errstate(invalid="ignore"):
            far = ~(np.abs(X_) <= 1e150)
        bad = [names[j] for j in np.flatnonzero(far.any(axis=0))] if args.scale else []
        if args.scale and not classify and not (np.abs(T_) <= 1e150).all():
            bad.append(dataset["target"])
        if bad and rows == "training":
            raise ValueError(f"{args.data}: column {bad[0]!r} cannot be standardized: its "
                             "values span more than the float range; use --no-scale")
        if bad:
            raise ValueError(
                f"{args.data}: standardized with the training rows' mean and spread, the "
                f"validation rows of column {bad[0]!r} overflow (values far outside the "
                "training rows' range); check those rows, or hold out others (another --seed)")
        return X_, T_

    training = scaled(X_train, T_train, "training")
    validation = scaled(X[val], T[val], "validation") if n_val else None
    scaling = (x_mean, x_scale, t_mean, t_scale)

    def work():
        _fit_and_save(args, table, net, X, T, features, target, categories, task, why,
                      classes, train, val, dataset, fmt if args.plot is not None else None,
                      scaling, training, validation)
    return work


def _fit_and_save(args, table, net, X, T, features, target, categories, task, why, classes,
                  train, val, dataset, fmt, scaling, training, validation) -> None:
    from cprop import _tabular
    from cprop._atomic import write_bytes

    classify = task == "classify"
    n, n_val = len(table), 0 if val is None else len(val)
    x_mean, x_scale, t_mean, t_scale = scaling
    columns = f"{len(features)} input columns"
    if categories:
        described = ", ".join(f"{table.header[c]!r}: {len(cats)}"
                              for c, cats in categories.items())
        columns += (f" ({len(categories)} categorical, one-hot encoded: {described} "
                    f"categories; {X.shape[1]} network inputs)")
    _say(f"cprop train: {args.data}{_table_note(table)}: {n} rows, {columns}, target "
         f"{table.header[target]!r}: {task} ({why})"
         + (f", {len(classes)} classes: {_list(classes)}" if classify else ""))
    _say(f"  network: {net!r}")
    _say(f"  {len(train) if n_val else n} training rows"
         + (f", {n_val} validation rows" if n_val else "")
         + f"; {args.optimizer} lr={args.lr:g} batch {args.batch_size}"
         + ("; inputs standardized" if args.scale else "; inputs not scaled")
         + ("" if classify or not args.scale else ", target standardized"))
    start = time.perf_counter()
    history = net.fit(*training, epochs=args.epochs, lr=args.lr,
                      batch_size=args.batch_size, shuffle=args.shuffle,
                      optimizer=args.optimizer, momentum=args.momentum,
                      nesterov=args.nesterov, alpha=args.alpha, lr_schedule=args.lr_schedule,
                      validation_data=validation, early_stopping=args.early_stopping,
                      patience=args.patience, progress=bool(args.progress),
                      n_threads=args.threads)
    seconds = time.perf_counter() - start
    # The kept model's losses (early stopping restored the best epoch's parameters): computed
    # on its parameters, in the units training saw.
    kept_loss = net.loss(*training)
    kept_val = net.loss(*validation) if n_val else None

    # Fold the scaling into the parameters: the saved model takes the raw columns.
    if args.scale:
        _tabular.fold_input_scaling(net, x_mean, x_scale)
        if not classify:
            _tabular.fold_output_scaling(net, t_mean, t_scale)
    net.dataset = dataset

    unit = " (standardized target)" if args.scale and not classify else ""
    kept = history.best_epoch if history.best_epoch is not None else history.epochs - 1
    which = ("the best" if history.best_epoch is not None else "the last")
    _say(f"  {history.epochs} epochs ({history.stop_reason}) in {seconds:.2f} s; kept "
         f"{which}, {epoch_of(kept, history.epochs)} (counted from 1): training loss "
         f"{kept_loss:.6g}" + (f", validation loss {kept_val:.6g}" if n_val else "") + unit)
    parts = [("training", slice(None) if not n_val else train)]
    if n_val:
        parts.append(("validation", val))
    scores = []
    for label, rows in parts:
        Y = net.forward(X[rows])
        if classify:
            scores.append(f"{label} {np.mean(Y.argmax(axis=1) == T[rows]) * 100:.1f} %")
        else:
            s = _regression_scores(T[rows][:, 0], Y[:, 0])
            r2 = f"R² {s['r2']:.4f}" if s["r2"] is not None else "R² n/a (constant target)"
            scores.append(f"{label} {r2}, RMSE {s['rmse']:.6g}")
    _say(("  accuracy: " if classify else "  ") + "; ".join(scores))

    # Write: the plot is rendered first (in memory), so a plotting error writes nothing.
    plot = None
    if args.plot is not None:
        loss_label = ("cross-entropy" if classify else "½ squared error" + unit) + \
            " (mean per row)"
        name = os.path.basename(args.data)
        if len(name) > 60:  # the middle of a very long name goes (the title stays 1-2 lines)
            name = name[:29] + "…" + name[-30:]
        title = f"{name}: {net.layer_sizes} {args.hidden}, {args.optimizer} lr={args.lr:g}"
        plot = _render_plot(history, title, loss_label, fmt)
    if args.save is not None:
        net.save(args.save)
        _say(f"  saved the model to {args.save}")
    else:
        _say("  (no --save: the model is not kept)")
    if plot is not None:
        write_bytes(args.plot, plot)
        _say(f"  wrote the loss curve to {args.plot}")


# -- predict, evaluate, export -----------------------------------------------------------------

def _format_values(Y: np.ndarray) -> list[list[str]]:
    # Shortest text that reads back as the same number in the network's dtype.
    if Y.dtype == np.float32:
        return [[str(v) for v in row] for row in Y]
    return [[repr(v) for v in row] for row in Y.tolist()]


def _model_inputs(net, table, data: str) -> np.ndarray:
    """The network's input matrix for the rows of ``table``: the model's columns by name
    (categorical ones one-hot encoded with its categories), or for a model saved from Python
    (no column names) the file's columns in order."""
    from cprop import _tabular
    from cprop._csv import CSVError

    dataset = net.dataset
    if dataset is None:
        if len(table.header) != net.layer_sizes[0]:
            raise ValueError(f"{data}: has {len(table.header)} columns, but the model "
                             f"(saved without column names) takes {net.layer_sizes[0]} inputs; "
                             "give exactly those columns, in order")
        return table.numbers(list(range(len(table.header))))
    missing = [f for f in dataset["features"] if f not in table.header]
    if missing:
        raise CSVError(data, f"no column {_list([repr(m) for m in missing])} in the "
                       f"header; the model needs {_list(dataset['features'], 20)}"
                       f"{table.delimiter_hint()}", 1)
    columns = [table.header.index(f) for f in dataset["features"]]
    categories = {table.header.index(f): cats
                  for f, cats in dataset.get("categories", {}).items()}
    return _tabular.encode(table, columns, categories)


def _unique(names: list[str], taken) -> list[str]:
    """``names``, each prefixed with ``predicted_`` until it is not taken (by a kept column)."""
    taken, out = set(taken), []
    for name in names:
        while name in taken:
            name = "predicted_" + name
        taken.add(name)
        out.append(name)
    return out


def _predict(args):
    from cprop._csv import read_table, write_rows

    net = _load_model(args.model)
    dataset = net.dataset
    classify = dataset is not None and dataset["task"] == "classify"
    if args.proba and not classify:
        what = ("a regressor" if dataset is not None else
                "a network saved without cprop train's labels (its outputs are written as "
                "they are)")
        raise ValueError(f"--proba: {args.model} is {what}; --proba writes the class "
                         "probabilities of a classifier")
    if args.output is not None:
        _output_path(args.output, "--output")
    table = read_table(_input_path(args.data, "data"), args.delimiter)
    kept = [table.column(c, "--keep") for c in args.keep]
    twice = sorted({c for c in kept if kept.count(c) > 1})
    if twice:
        raise ValueError(f"--keep: column {table.header[twice[0]]!r} is given twice")
    X = _model_inputs(net, table, args.data)

    def work():
        Y = net.forward(X)
        keep_rows = [[row[k] for k in kept] for row in table.rows]
        header = [table.header[k] for k in kept]
        if classify:
            classes = dataset["classes"]
            names = [dataset["target"]] + ([f"P({c})" for c in classes] if args.proba else [])
            labels = [[classes[k]] for k in Y.argmax(axis=1)]
            body = ([lab + p for lab, p in zip(labels, _format_values(Y))] if args.proba
                    else labels)
        else:
            names = ([dataset["target"]] if dataset is not None else
                     [f"output_{k}" for k in range(Y.shape[1])])
            body = _format_values(Y)
        text = write_rows(header + _unique(names, header),
                          [k + b for k, b in zip(keep_rows, body)])
        if args.output is None:
            return text
        from cprop._atomic import write_bytes

        write_bytes(args.output, text.encode("utf-8"))
        return None
    return work


def _evaluate(args):
    from cprop import _tabular
    from cprop._csv import CSVError, read_table

    net = _load_model(args.model)
    dataset = net.dataset
    if dataset is None:
        raise ValueError(f"{args.model} has no column names or target (it was saved from "
                         "Python, not by cprop train); evaluate needs them to read the CSV "
                         "file")
    if dataset["task"] == "regress" and net.layer_sizes[-1] != 1:
        raise ValueError(f"{args.model}: a regressor with {net.layer_sizes[-1]} outputs; "
                         "evaluate scores one target")
    table = read_table(_input_path(args.data, "data"), args.delimiter)
    name = dataset["target"]
    if name not in table.header:
        raise CSVError(args.data, f"no column {name!r} (the model's target) in the header; "
                       f"evaluate compares the predictions with it{table.delimiter_hint()}", 1)
    target = table.header.index(name)
    X = _model_inputs(net, table, args.data)
    if dataset["task"] == "classify":
        truth, labels = _tabular.target_labels(table, target, dataset["classes"])
    else:
        truth, labels = table.numbers([target])[:, 0], None

    def work():
        Y = net.forward(X)
        report = {"model": args.model, "data": args.data, "rows": len(table), "target": name,
                  "task": dataset["task"]}
        if labels is None:
            report.update(_regression_scores(truth, Y[:, 0]))
        else:
            report.update(classification_report(truth, Y.argmax(axis=1), labels))
        if args.json:  # one key per line, each value (a list, the matrix) on its line
            return "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                                       for k, v in report.items()) + "\n}"
        return _format_report(report)
    return work


def classification_report(truth: np.ndarray, predicted: np.ndarray, labels: list) -> dict:
    """Accuracy, per-label precision, recall and support, and the confusion matrix (rows: the
    true label, columns: the predicted one) of label indices into ``labels``. A precision with
    nothing predicted, or a recall with nothing to find, is None (0/0)."""
    k = len(labels)
    cm = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
    right = np.diag(cm)
    predicted_count, support = cm.sum(axis=0), cm.sum(axis=1)
    return {
        "accuracy": float(right.sum() / len(truth)),
        "correct": int(right.sum()),
        "labels": list(labels),
        "precision": [float(r / p) if p else None for r, p in zip(right, predicted_count)],
        "recall": [float(r / s) if s else None for r, s in zip(right, support)],
        "support": support.tolist(),
        "confusion_matrix": cm.tolist(),
    }


def _format_report(r: dict) -> str:
    head = f"{r['model']} on {r['data']}: {r['rows']} rows, target {r['target']!r}"
    if r["task"] == "regress":
        r2 = f"{r['r2']:.6f}" if r["r2"] is not None else "n/a (the target is constant)"
        return (f"{head} (regress)\nR²    {r2}\nRMSE  {r['rmse']:.6g}\nMAE   {r['mae']:.6g}")

    def cell(v):
        return "n/a" if v is None else f"{v:.4f}"

    labels = r["labels"]
    lines = [f"{head} (classify, {len(labels)} labels)",
             f"accuracy  {r['accuracy']:.4f} ({r['correct']} of {r['rows']})", ""]
    w = max(5, *map(len, labels))
    lines.append(f"{'label':<{w}}  precision  recall  support")
    for lab, p, rc, s in zip(labels, r["precision"], r["recall"], r["support"]):
        lines.append(f"{lab:<{w}}  {cell(p):>9}  {cell(rc):>6}  {s:>7}")
    lines += ["", "confusion matrix (rows: true label; columns: predicted label)"]
    cw = max(len(str(max(map(max, r["confusion_matrix"])))), *map(len, labels))
    lines.append(f"{'':<{w}}  " + "  ".join(f"{lab:>{cw}}" for lab in labels))
    for lab, row in zip(labels, r["confusion_matrix"]):
        lines.append(f"{lab:<{w}}  " + "  ".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)


def _export(args):
    from cprop.onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME, _import_onnx

    net = _load_model(args.model)
    _output_path(args.onnx, "the ONNX file")
    _import_onnx()  # a missing package: status 1, before anything is written

    def work():
        net.to_onnx(args.onnx)
        categories = (net.dataset or {}).get("categories")
        _say(f"cprop export: wrote {args.onnx} (ONNX opset {OPSET}, {net.dtype.name}; input "
             f"{INPUT_NAME!r} (batch, {net.layer_sizes[0]}), output {OUTPUT_NAME!r} "
             f"(batch, {net.layer_sizes[-1]}))")
        if categories:
            _say(f"  the input holds the columns with {', '.join(categories)} one-hot "
                 "encoded, as net.forward takes them; the categories are in the model's "
                 "metadata 'cprop.dataset'")
    return work


_CHECKS = {"demo": _demo, "explain": _explain, "info": _info, "train": _train,
           "predict": _predict, "evaluate": _evaluate, "export": _export}


def main(argv=None) -> int:
    """Run ``cprop`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    name = f"cprop {args.command}"
    try:
        work = _CHECKS[args.command](args)  # every check; nothing printed or written yet
    except KeyboardInterrupt:
        _say(f"{name}: interrupted")
        return 130
    except ImportError as exc:  # a missing optional package: the input itself was fine
        _say(f"{name}: error: {exc}")
        return 1
    except (ValueError, TypeError, OSError, FloatingPointError) as exc:
        _say(f"{name}: error: {_message(exc)}")
        return 2
    try:
        text = work()
    except KeyboardInterrupt:
        _say(f"{name}: interrupted")
        return 130
    except (ValueError, TypeError, OSError, ImportError, FloatingPointError) as exc:
        _say(f"{name}: error: {_message(exc)}")
        return 1
    if text is not None:
        try:  # all output at once, only after every row succeeded
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `cprop demo | head` is fine
            sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
