"""What ``cprop train`` does to a table before and after training.

Targets become class ids or numbers; inputs (and regression targets) are standardized for
training, and that scaling is then folded into the first (and last) layer's parameters, so the
saved model is an ordinary :class:`cprop.MLP` that takes the raw columns and gives outputs in
the target's own units.
"""

from __future__ import annotations

import math

import numpy as np

from cprop._csv import CSVError, Table

__all__ = ["MAX_AUTO_CLASSES", "target_values", "standardizer", "fold_input_scaling",
           "fold_output_scaling"]

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
            raise CSVError(table.path, f"missing value in the target column {name!r} (an "
                           "empty field)", table.lines[i], column + 1)
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
