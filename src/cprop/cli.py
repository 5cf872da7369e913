"""The ``cprop`` command line (also ``python -m cprop``).

    cprop demo [--network seed|canonical] [--steps N] [--json]
    cprop explain --layers 3,4,2 [--seed 0] [--hidden sigmoid] [--output sigmoid]
                  [--loss squared_error] [--negative-slope 0.01]
                  [--x 0.1,0.2,0.3] [--t 0,1] [--lr 0.5] [--json]
    cprop info [--json]
    cprop train data.csv --target COL [--layers 32,16] [--epochs 50] [--task auto]
                [--progress] [--plot loss.png] [--save model.npz] [fit options...]
    cprop predict model.npz new.csv [--proba] [--keep COLS] [--output predictions.csv]
    cprop export model.npz model.onnx

Exit status: 0 on success, 2 for bad input (options, data, model files), 1 for other
failures (a file that cannot be written, a missing optional dependency, training that
diverged), 130 on Ctrl-C. ``train``, ``predict`` and ``export`` write every file atomically and
``predict`` writes to stdout only once all predictions are computed, so a failure leaves nothing
half-written.
"""

from __future__ import annotations

import argparse
import math
import json
import os
import sys
import time

import numpy as np

__all__ = ["main"]


def _comma_list(convert, what: str):
    """An argparse type: a comma-separated list of `convert`-ible values ("3,4,2")."""
    def parse(text: str) -> list:
        try:
            return [convert(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what}, got {text!r}") from None

    parse.__name__ = f"comma-separated {what}"
    return parse


_floats = _comma_list(float, "numbers")
_ints = _comma_list(int, "integers")


def _nonnegative_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {n}")
    return n


def _positive_int(text: str) -> int:
    n = _nonnegative_int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {n}")
    return n


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = None
    if v is None or not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    from cprop import __version__
    from cprop._registry import DTYPES, HIDDEN, INITS, LOSSES, OPTIMIZERS, OUTPUT, SCHEDULES

    p = argparse.ArgumentParser(prog="cprop", description="Backpropagation at C speed.")
    p.add_argument("--version", action="version", version=f"cprop {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="the worked example, step by step")
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

    e = sub.add_parser("explain", help="the derivation of one SGD step on a random network")
    e.add_argument("--layers", type=_ints, required=True, help="layer widths, e.g. 3,4,2")
    e.add_argument("--seed", type=int, default=0, help="seeds the weights, x and t (default 0)")
    e.add_argument("--hidden", choices=HIDDEN, default="sigmoid")
    e.add_argument("--output", choices=OUTPUT, default="sigmoid")
    e.add_argument("--loss", choices=LOSSES, default="squared_error")
    e.add_argument("--negative-slope", type=float, default=0.01,
                   help="slope of leaky_relu for negative inputs (default 0.01)")
    e.add_argument("--x", type=_floats, help="the input (default: uniform in [-1, 1))")
    e.add_argument("--t", type=_floats,
                   help="the target: one value per output, or for --loss cross_entropy a class "
                        "label such as 2 (default: uniform in [0, 1); for cross_entropy a random "
                        "class)")
    e.add_argument("--lr", type=float, default=0.5, help="learning rate (default 0.5)")
    e.add_argument("--json", action="store_true", help="print the trace as one JSON object")
    e.add_argument("--html", metavar="FILE",
                   help="write the derivation beside figures of the network as one "
                        "self-contained page (instead of printing it)")

    i = sub.add_parser("info", help="how cprop was built and what it runs on (show_config)")
    i.add_argument("--json", action="store_true", help="print one JSON object")

    t = sub.add_parser(
        "train", help="train a network on a CSV file",
        description="Train an MLP on a CSV file with a header row. Every column but the target "
        "(and --ignore) is an input; inputs are standardized for training and the scaling is "
        "folded into the saved model, which takes the raw columns. A summary goes to stderr.")
    t.add_argument("data", help="CSV file with a header row naming the columns")
    t.add_argument("--target", required=True,
                   help="the column to predict: a header name, or a 0-based index (-1: last)")
    t.add_argument("--ignore", type=_names, default=[],
                   help="comma-separated columns that are not inputs (e.g. an id)")
    t.add_argument("--task", choices=["auto", "classify", "regress"], default="auto",
                   help="classify: softmax + cross_entropy on the labels; regress: identity + "
                   "squared_error on the (standardized) number; auto (default): classify if "
                   "some target value is not a number, or all are integers with at most 20 "
                   "distinct values; else regress")
    t.add_argument("--layers", type=_ints, default=[32],
                   help="hidden layer widths, e.g. 32,16 (default 32; '' for none)")
    t.add_argument("--hidden", choices=HIDDEN, default="relu",
                   help="hidden activation (default relu)")
    t.add_argument("--negative-slope", type=float, default=0.01,
                   help="slope of leaky_relu for negative inputs (default 0.01)")
    t.add_argument("--init", choices=INITS, default="glorot_uniform")
    t.add_argument("--dtype", choices=DTYPES, default="float64")
    t.add_argument("--epochs", type=_positive_int, default=50, help="default 50")
    t.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    t.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="default adam")
    t.add_argument("--momentum", type=float, default=0.0, help="sgd momentum (default 0)")
    t.add_argument("--nesterov", action="store_true", help="sgd: Nesterov momentum")
    t.add_argument("--alpha", type=float, default=0.0, help="L2 on the weights (default 0)")
    t.add_argument("--lr-schedule", choices=SCHEDULES, default="constant")
    t.add_argument("--no-shuffle", dest="shuffle", action="store_false",
                   help="keep the file's row order in every epoch")
    t.add_argument("--seed", type=int, default=None,
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

    r = sub.add_parser(
        "predict", help="predict the target of every row of a CSV file",
        description="Write predictions as CSV (a header, one row per input row) to stdout. "
        "The input columns are found by header name; the target and other columns are ignored.")
    r.add_argument("model", help="a model saved by cprop train --save (or net.save)")
    r.add_argument("data", help="CSV file with a header row")
    r.add_argument("--proba", action="store_true",
                   help="classifiers: also write each class's probability, P(label)")
    r.add_argument("--keep", type=_names, default=[],
                   help="comma-separated columns to copy into the output first (e.g. an id)")
    r.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")

    x = sub.add_parser("export", help="convert a saved model to ONNX")
    x.add_argument("model", help="a model saved by cprop train --save (or net.save)")
    x.add_argument("onnx", help='the .onnx file to write (onnx: pip install "cprop[onnx]")')
    return p


def _explain(args) -> str:
    from cprop.mlp import MLP

    if args.html is not None:
        _check_file_options(args, ("--json",))
    net = MLP(args.layers, hidden=args.hidden, output=args.output, loss=args.loss,
              seed=args.seed, negative_slope=args.negative_slope)
    from cprop._registry import LOSS_TARGETS

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
    if args.html is not None:
        from cprop.page import explain_page

        _write_text(args.html, explain_page(net, x, t, args.lr), "--html")
        _say(f"cprop explain: wrote {args.html}")
        return None
    trace = net.explain(x, t, args.lr)
    if args.json:
        return json.dumps(trace.to_dict(), indent=2)
    return f"{net!r}\n\n{trace.format()}"


def _check_file_options(args, conflicting) -> None:
    """--figures / --html write files instead of printing: check them (and that nothing
    they replace was asked for) before any work."""
    from cprop._atomic import check_writable_dir

    given = [opt for opt in ("--figures", "--html")
             if getattr(args, opt[2:].replace("-", "_"), None) is not None]
    for opt in conflicting:
        value = getattr(args, opt[2:].replace("-", "_"))
        if value:
            raise ValueError(f"{opt}: not used with {' and '.join(given)}, which write files "
                             "instead of printing")
    if getattr(args, "html", None) is not None:
        try:
            check_writable_dir(args.html, "--html")
        except OSError as exc:  # a missing directory is an input error (status 2)
            raise ValueError(str(exc)) from None
    figures = getattr(args, "figures", None)
    if figures is not None:
        if not figures:
            raise ValueError("--figures: expected a directory name, got ''")
        if os.path.exists(figures) and not os.path.isdir(figures):
            raise ValueError(f"--figures: {figures!r} exists and is not a directory")
        parent = os.path.dirname(os.path.abspath(figures))
        if not os.path.isdir(parent):
            raise ValueError(f"--figures: the directory {parent!r} of {figures!r} does not exist")


def _write_text(path: str, text: str, option: str) -> None:
    from cprop._atomic import check_writable_dir, write_bytes

    write_bytes(check_writable_dir(path, option), text.encode("utf-8"))


def _demo_files(args) -> None:
    """cprop demo --figures DIR / --html FILE: the example's figures and its explain page."""
    from cprop.demo import demo_data
    from cprop.examples import EXAMPLES
    from cprop.page import explain_page, figures_table

    _check_file_options(args, ("--json", "--steps"))
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
        _write_text(args.html, page, "--html")
        _say(f"cprop demo: wrote {args.html}")


def _say(text: str) -> None:
    print(text, file=sys.stderr)


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


def _render_plot(history, title: str, loss_label: str, fmt: str) -> bytes:
    import io

    Figure = _import_plotting()
    fig = Figure(figsize=(6, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    epochs = np.arange(1, history.epochs + 1)
    ax.plot(epochs, history.loss, label="training")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, label="validation")
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch + 1, color="0.6", linestyle=":",
                   label=f"best epoch ({history.best_epoch + 1})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(loss_label)
    ax.set_title(title, fontsize=10)
    if min(history.loss + history.val_loss) > 0:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    # fixed metadata: the same run gives the same file
    meta = {"Software": None} if fmt == "png" else {}
    fig.savefig(buf, format=fmt, metadata=meta)
    return buf.getvalue()


def _train(args) -> None:
    from cprop import _tabular
    from cprop._atomic import check_writable_dir, write_bytes
    from cprop._csv import read_table
    from cprop.mlp import MLP

    # Everything that can be checked is checked before training starts.
    if args.plot is not None:
        check_writable_dir(args.plot, "--plot")
        fmt = _plot_format(args.plot)
        _import_plotting()
    if args.save is not None:
        check_writable_dir(args.save, "--save")
    if args.progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            raise ImportError('--progress needs tqdm: pip install "cprop[progress]"') from None

    table = read_table(args.data)
    target = table.column(args.target, "--target")
    ignored = [table.column(c, "--ignore") for c in args.ignore]
    if target in ignored:
        raise ValueError(f"--ignore: the target {table.header[target]!r} cannot be ignored")
    features = [k for k in range(len(table.header)) if k != target and k not in ignored]
    if not features:
        raise ValueError(f"{args.data}: no input columns left besides the target")
    X = table.numbers(features)
    task, why, T, classes = _tabular.target_values(table, target, args.task)
    classify = task == "classify"
    n_out = len(classes) if classify else 1
    net = MLP([len(features), *args.layers, n_out], hidden=args.hidden,
              output="softmax" if classify else "identity",
              loss="cross_entropy" if classify else "squared_error", dtype=args.dtype,
              seed=args.seed, negative_slope=args.negative_slope, init=args.init)

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
    X_train, T_train = (X[train], T[train]) if n_val else (X, T)

    if args.scale:
        x_mean, x_scale = _tabular.standardizer(X_train)
    else:
        x_mean, x_scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    if args.scale and not classify:
        t_mean, t_scale = _tabular.standardizer(T_train)
    else:
        t_mean, t_scale = np.zeros(1), np.ones(1)

    def scaled(X_, T_):
        X_ = (X_ - x_mean) / x_scale
        return (X_, T_) if classify else (X_, (T_ - t_mean) / t_scale)

    validation = scaled(X[val], T[val]) if n_val else None
    _say(f"cprop train: {args.data}: {n} rows, {len(features)} input columns, target "
         f"{table.header[target]!r}: {task} ({why})"
         + (f", {len(classes)} classes: {_list(classes)}" if classify else ""))
    _say(f"  network: {net!r}")
    _say(f"  {len(train) if n_val else n} training rows"
         + (f", {n_val} validation rows" if n_val else "")
         + f"; {args.optimizer} lr={args.lr:g} batch {args.batch_size}"
         + ("; inputs standardized" if args.scale else "; inputs not scaled")
         + ("" if classify or not args.scale else ", target standardized"))
    start = time.perf_counter()
    history = net.fit(*scaled(X_train, T_train), epochs=args.epochs, lr=args.lr,
                      batch_size=args.batch_size, shuffle=args.shuffle,
                      optimizer=args.optimizer, momentum=args.momentum,
                      nesterov=args.nesterov, alpha=args.alpha, lr_schedule=args.lr_schedule,
                      validation_data=validation, early_stopping=args.early_stopping,
                      patience=args.patience, progress=bool(args.progress))
    seconds = time.perf_counter() - start

    # Fold the scaling into the parameters: the saved model takes the raw columns.
    if args.scale:
        _tabular.fold_input_scaling(net, x_mean, x_scale)
        if not classify:
            _tabular.fold_output_scaling(net, t_mean, t_scale)
    net.dataset = {"features": [table.header[k] for k in features],
                   "target": table.header[target], "task": task, "classes": classes}

    unit = " (standardized target)" if args.scale and not classify else ""
    _say(f"  {history.epochs} epochs ({history.stop_reason}) in {seconds:.2f} s; final "
         f"training loss {history.loss[-1]:.6g}"
         + (f", validation loss {history.val_loss[-1]:.6g}" if history.val_loss else "")
         + unit
         + (f"; best epoch {history.best_epoch + 1} kept" if history.best_epoch is not None
            else ""))
    parts = [("training", slice(None) if not n_val else train)]
    if n_val:
        parts.append(("validation", val))
    scores = []
    for label, rows in parts:
        Y = net.forward(X[rows])
        if classify:
            scores.append(f"{label} {np.mean(Y.argmax(axis=1) == T[rows]) * 100:.1f} %")
        else:
            t = np.asarray(T[rows][:, 0], dtype=np.float64)
            y = np.asarray(Y[:, 0], dtype=np.float64)
            # On values divided by the largest magnitude, so no square overflows (targets up to
            # 1e308 are valid input); R² is scale-free, RMSE is scaled back in Python floats.
            big = max(float(np.max(np.abs(t))), float(np.max(np.abs(y))))
            big = big if big > 0 else 1.0
            tn, yn = t / big, y / big
            resid = float(np.sum((tn - yn) ** 2))
            total = float(np.sum((tn - tn.mean()) ** 2))
            r2 = f"R² {1 - resid / total:.4f}" if total > 0 else "R² n/a (constant target)"
            scores.append(f"{label} {r2}, RMSE {math.sqrt(resid / len(t)) * big:.6g}")
    _say(("  accuracy: " if classify else "  ") + "; ".join(scores))

    # Write: the plot is rendered first (in memory), so a plotting error writes nothing.
    plot = None
    if args.plot is not None:
        loss_label = ("cross-entropy" if classify else "½ squared error" + unit) + \
            " (mean per row)"
        title = (f"{os.path.basename(args.data)}: {net.layer_sizes} {args.hidden}, "
                 f"{args.optimizer} lr={args.lr:g}")
        plot = _render_plot(history, title, loss_label, fmt)
    if args.save is not None:
        net.save(args.save)
        _say(f"  saved the model to {args.save}")
    else:
        _say("  (no --save: the model is not kept)")
    if plot is not None:
        write_bytes(args.plot, plot)
        _say(f"  wrote the loss curve to {args.plot}")


def _list(items, limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _format_values(Y: np.ndarray) -> list[list[str]]:
    # Shortest text that reads back as the same number in the network's dtype.
    if Y.dtype == np.float32:
        return [[str(v) for v in row] for row in Y]
    return [[repr(v) for v in row] for row in Y.tolist()]


def _predict(args) -> str:
    from cprop._csv import CSVError, read_table, write_rows
    from cprop.io import load

    net = load(args.model)
    table = read_table(args.data)
    dataset = net.dataset
    if dataset is not None:
        missing = [f for f in dataset["features"] if f not in table.header]
        if missing:
            raise CSVError(args.data, f"no column {_list([repr(m) for m in missing])} in the "
                           f"header; the model needs {_list(dataset['features'], 20)}", 1)
        columns = [table.header.index(f) for f in dataset["features"]]
    else:  # a network saved from Python: the columns are its inputs, in order
        if len(table.header) != net.layer_sizes[0]:
            raise ValueError(f"{args.data}: has {len(table.header)} columns, but the model "
                             f"(saved without column names) takes {net.layer_sizes[0]} inputs; "
                             "give exactly those columns, in order")
        columns = list(range(len(table.header)))
    kept = [table.column(c, "--keep") for c in args.keep]
    X = table.numbers(columns)
    Y = net.forward(X)
    keep_rows = [[row[k] for k in kept] for row in table.rows]
    header = [table.header[k] for k in kept]
    if dataset is not None and dataset["task"] == "classify":
        classes = dataset["classes"]
        header.append(dataset["target"])
        labels = [[classes[k]] for k in Y.argmax(axis=1)]
        if args.proba:
            header += [f"P({c})" for c in classes]
            labels = [lab + p for lab, p in zip(labels, _format_values(Y))]
        body = labels
    else:
        if dataset is not None:
            header.append(dataset["target"])
        else:
            header += [f"output_{k}" for k in range(Y.shape[1])]
        body = _format_values(Y)
    return write_rows(header, [k + b for k, b in zip(keep_rows, body)])


def _export(args) -> None:
    from cprop.io import load
    from cprop.onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME

    net = load(args.model)
    net.to_onnx(args.onnx)
    _say(f"cprop export: wrote {args.onnx} (ONNX opset {OPSET}, {net.dtype.name}; input "
         f"{INPUT_NAME!r} (batch, {net.layer_sizes[0]}), output {OUTPUT_NAME!r} "
         f"(batch, {net.layer_sizes[-1]}))")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("train", "predict", "export"):
        return _run_file_command(args)
    try:
        if args.command == "demo":
            from cprop.demo import demo_data, format_demo

            if args.figures is not None or args.html is not None:
                _demo_files(args)
                return 0
            if args.json:
                data, _ = demo_data(args.network, args.steps)
                text = json.dumps(data, indent=2, ensure_ascii=False)
            else:
                text = format_demo(args.network, args.steps)
        elif args.command == "info":
            from cprop._config import config, format_config

            cfg = config()
            text = json.dumps(cfg, indent=2) if args.json else format_config(cfg)
        else:
            text = _explain(args)
            if text is None:  # --html wrote the page
                return 0
    except (ValueError, TypeError, FloatingPointError) as exc:  # FPE: e.g. --x 1e308 overflows
        print(f"cprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the options were accepted; writing a file failed
        print(f"cprop {args.command}: error: {exc}", file=sys.stderr)
        return 1
    try:
        print(text)
    except BrokenPipeError:  # `cprop demo | head` is fine
        sys.stderr.close()
    return 0


def _run_file_command(args) -> int:
    from cprop._csv import CSVError

    name = f"cprop {args.command}"
    try:
        if args.command == "train":
            _train(args)
            return 0
        if args.command == "export":
            _export(args)
            return 0
        text = _predict(args)
        if args.output is not None:
            from cprop._atomic import check_writable_dir, write_bytes

            write_bytes(check_writable_dir(args.output, "--output"), text.encode("utf-8"))
            return 0
    except CSVError as exc:  # FILE:LINE:COLUMN: message, as compilers print
        print(f"{exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ImportError, FloatingPointError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    try:  # all predictions at once, only after every row succeeded
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
