"""What ``cprop train`` does to a table before and after training, and ``predict`` and
``evaluate`` before they run the network.

Targets become class ids or numbers; text columns named by ``--categorical`` become one 0/1
input per category (:func:`find_categories`, :func:`encode`); inputs (and regression targets)
are standardized for training, and that scaling is then folded into the first (and last)
layer's parameters, so the saved model is an ordinary :class:`cprop.MLP` that takes the encoded
columns (the raw ones, one-hot for the categorical ones) and gives outputs in the target's own
units.

The encoded matrix: the input columns in the order of ``dataset["features"]``; a numeric column
is one input, a categorical one as many inputs as it has categories, in the order of its list,
the input of a row's category 1 and the others 0 (:func:`encoded_names`: ``"color=red"``).
"""

from __future__ import annotations

import math
import shlex

import numpy as np

from cprop._csv import CSVError, Table

__all__ = ["MAX_AUTO_CLASSES", "target_values", "target_labels", "standardizer",
           "fold_input_scaling", "fold_output_scaling", "find_categories", "encode",
           "encoded_names", "column_ref"]

#: ``--task auto`` classifies integer targets with at most this many distinct values
MAX_AUTO_CLASSES = 20


def _label_of_number(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)


def target_values(table: Table, column: int, task: str):
    """(task, why, T, classes) for the target column.

    ``task`` is ``"auto"``, ``"classify"`` or ``"regress"``. Classification gives integer class
    ids ``T`` into the sorted ``classes`` (numbers sorted by value, written without a trailing
    ``.0``; text sorted as text); regression a float64 column ``(n, 1)``. ``auto`` classifies
    when some value is not a number, or when every value is an integer and there are at most
    :data:`MAX_AUTO_CLASSES` distinct ones; otherwise it regresses.
    """
    name = table.header[column]
    cells = [row[column].strip() for row in table.rows]
    for i, cell in enumerate(cells):
        if not cell:
            raise table.error(f"missing value in the target column {name!r} (an empty field)",
                              i, column)
    numbers = []
    for cell in cells:
        try:
            v = float(cell)
        except ValueError:
            numbers = None
            break
        if not math.isfinite(v):
            numbers = None
            break
        numbers.append(v)
    if task == "auto":
        if numbers is None:
            task, why = "classify", "auto: some values are not numbers"
        else:
            distinct = set(numbers)
            if all(v.is_integer() for v in distinct) and len(distinct) <= MAX_AUTO_CLASSES:
                task, why = "classify", (f"auto: integer values, {len(distinct)} distinct "
                                         f"<= {MAX_AUTO_CLASSES}")
            else:
                task, why = "regress", "auto: numbers"
    else:
        why = f"--task {task}"
    if task == "regress":
        return task, why, table.numbers([column]), None
    if numbers is not None:
        keys = [_label_of_number(v) for v in numbers]
        classes = [_label_of_number(v) for v in sorted(set(numbers))]
    else:
        keys = cells
        classes = sorted(set(cells))
    if len(classes) < 2:
        raise ValueError(f"--target: column {name!r} of {table.path} holds one class only "
                         f"({classes[0]!r}); a classifier needs at least 2")
    index = {c: k for k, c in enumerate(classes)}
    return task, why, np.array([index[k] for k in keys], dtype=np.intp), classes


def target_labels(table: Table, column: int, classes: list[str]) -> tuple[np.ndarray, list]:
    """The target column of labelled data as indices into ``labels``: the model's ``classes``,
    then labels found only in the data (sorted). A cell is its class when it is one of
    ``classes`` as written; else a number is written as training writes a numeric label
    (``2.0`` is class ``2``). Returns ``(indices, labels)``."""
    index = {c: k for k, c in enumerate(classes)}
    keys = []
    for i, row in enumerate(table.rows):
        cell = row[column].strip()
        if not cell:
            raise table.error(f"missing value in the target column {table.header[column]!r} "
                              "(an empty field)", i, column)
        if cell not in index:
            try:
                v = float(cell)
            except ValueError:
                v = math.nan
            if math.isfinite(v) and _label_of_number(v) in index:
                cell = _label_of_number(v)
        keys.append(cell)
    labels = list(classes) + sorted(set(keys) - set(classes))
    index = {c: k for k, c in enumerate(labels)}
    return np.array([index[k] for k in keys], dtype=np.intp), labels


def column_ref(table: Table, c: int) -> str:
    """How to name column ``c`` in an option such as ``--ignore``: its name, quoted for a
    shell when needed, or its index when the name holds a comma (options split at commas)."""
    name = table.header[c]
    return str(c) if "," in name else shlex.quote(name)


def find_categories(table: Table, columns: list[int], max_length: int) -> dict[int, list[str]]:
    """Each of ``columns``' categories: its distinct values (stripped of surrounding spaces),
    sorted as text. An empty field is refused as a missing value, a value longer than
    ``max_length`` characters too (a model file keeps at most that)."""
    out = {}
    for c in columns:
        seen = set()
        for i, row in enumerate(table.rows):
            cell = row[c].strip()
            if cell not in seen:
                if not cell:
                    raise table.error(f"missing value in the categorical column "
                                      f"{table.header[c]!r} (an empty field)", i, c)
                if len(cell) > max_length:
                    raise table.error(f"a category of column {table.header[c]!r} is "
                                      f"{len(cell)} characters long; at most {max_length}", i, c)
                seen.add(cell)
        out[c] = sorted(seen)
    return out


def encoded_names(features: list[str], categories: dict[str, list[str]]) -> list[str]:
    """The name of each input of the encoded matrix: the column's, or ``column=category``."""
    out = []
    for f in features:
        out += [f"{f}={c}" for c in categories[f]] if f in categories else [f]
    return out


def encode(table: Table, columns: list[int], categories: dict[int, list[str]],
           text_hint: bool = False) -> np.ndarray:
    """The encoded float64 matrix of ``columns`` (see the module docstring); ``categories``
    maps the index of each categorical column to its categories.

    CSVError (FILE:LINE:COLUMN) for a cell that is not a number in a numeric column (with
    ``text_hint``, a column mostly of text is named with "use --ignore COL or --categorical
    COL"), and for a category a categorical column was not trained on.
    """
    numeric = [c for c in columns if c not in categories]
    try:
        numbers = table.numbers(numeric)
    except CSVError as exc:
        # The first bad cell (top, then left) is reported; if it is text in a column mostly of
        # text, the column is named with what to do about it.
        c = None if exc.column is None else exc.column - 1 - table.index_column
        found = table.text_cells(c) if text_hint and c in numeric else None
        if found is None or table.lines[found[0]] != exc.line:
            raise
        i, count = found
        ref = column_ref(table, c)
        raise table.error(
            f"column {table.header[c]!r} holds text ({_short(table.rows[i][c])}"
            f"{f' and {count - 1} more' if count > 1 else ''}), not numbers; use "
            f"--ignore {ref} or --categorical {ref}", i, c) from None
    n = len(table)
    widths = [len(categories[c]) if c in categories else 1 for c in columns]
    X = np.zeros((n, sum(widths)), dtype=np.float64)
    start = 0
    numeric_index = {c: j for j, c in enumerate(numeric)}
    for c, width in zip(columns, widths):
        if c not in categories:
            X[:, start] = numbers[:, numeric_index[c]]
        else:
            index = {v: k for k, v in enumerate(categories[c])}
            for i, row in enumerate(table.rows):
                cell = row[c].strip()
                k = index.get(cell)
                if k is None:
                    what = ("missing value (an empty field)" if not cell else
                            f"{_short(cell)} is not one of the categories the model knows")
                    raise table.error(f"{what} in the categorical column {table.header[c]!r} "
                                      f"(it knows {_some(categories[c])})", i, c)
                X[i, start + k] = 1.0
        start += width
    return X


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _some(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(map(_short, items[:limit]))
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def standardizer(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per column; a constant column gets scale 1 (it is only centred).

    Computed on each column divided by its largest magnitude, so that no sum or square
    overflows for any finite values (a column holding 1e300 has a finite mean and scale).
    """
    X = np.asarray(X, dtype=np.float64)
    big = np.max(np.abs(X), axis=0, initial=0.0)
    big[~(big > 0)] = 1.0
    Y = X / big
    mean = Y.mean(axis=0) * big
    scale = Y.std(axis=0) * big
    # Zero or subnormal spread: treat the column as constant (dividing by a subnormal scale
    # would overflow the folded weights).
    scale[~(scale >= np.finfo(np.float64).tiny)] = 1.0
    return mean, scale


def fold_input_scaling(net, mean: np.ndarray, scale: np.ndarray) -> None:
    """Make ``net(X)`` equal what it computed for ``(X - mean) / scale``.

    ``z = ((X - m) / s) @ W + b = X @ (W / s[:, None]) + (b - (m / s) @ W)``, computed in
    float64 and stored in the network's dtype.
    """
    W = np.asarray(net.weights[0], dtype=np.float64)
    b = np.asarray(net.biases[0], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # _store refuses non-finite results
        W_new = W / scale[:, None]
        b_new = b - (mean / scale) @ W
    _store(net, 0, W_new, b_new)


def fold_output_scaling(net, mean: np.ndarray, scale: np.ndarray) -> None:
    """For an identity output: make ``net(X)`` equal ``net(X) * scale + mean``."""
    if net.output != "identity":
        raise ValueError("only an identity output layer can absorb target scaling")
    W = np.asarray(net.weights[-1], dtype=np.float64)
    b = np.asarray(net.biases[-1], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # _store refuses non-finite results
        W_new, b_new = W * scale[None, :], b * scale + mean
    _store(net, -1, W_new, b_new)


def _store(net, layer: int, W: np.ndarray, b: np.ndarray) -> None:
    if not (np.isfinite(W).all() and np.isfinite(b).all()) or (
            net.dtype == np.float32 and max(np.abs(W).max(initial=0), np.abs(b).max(initial=0))
            > np.finfo(np.float32).max):
        raise ValueError("cannot fold the input/target scaling into the network: the "
                         "parameters would overflow (try --no-scale)")
    net.weights[layer][:] = W
    net.biases[layer][:] = b
