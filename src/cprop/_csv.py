"""Reading CSV files for ``cprop train`` and ``cprop predict``, with errors that say where.

The first non-blank row is the header (required: columns are found by name); every other
non-blank row must have as many fields as the header. Text is UTF-8 (a byte-order mark is
ignored); quoting follows Python's :mod:`csv` (``"a, b"`` is one field; a stray quote is an
error). Numbers use Python's ``float`` syntax (``3``, ``-0.5``, ``1e-3``); empty fields, ``nan``,
``inf`` and numbers beyond the float range are refused. Every error is a :class:`CSVError`
whose message starts with ``FILE:LINE:COLUMN:`` (or ``FILE:LINE:`` / ``FILE:``), lines and
columns counted from 1, the column being the field's position in the row.
"""

from __future__ import annotations

import csv
import io
import math
import os

import numpy as np

__all__ = ["CSVError", "Table", "read_table", "write_rows"]


class CSVError(ValueError):
    """A CSV file cannot be used; ``str(exc)`` starts with ``file:line:column:``."""

    def __init__(self, path: str, message: str, line: int | None = None,
                 column: int | None = None):
        self.path, self.line, self.column = path, line, column
        where = path + (f":{line}" if line is not None else "") + (
            f":{column}" if column is not None else "")
        super().__init__(f"{where}: {message}")


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class Table:
    """A CSV file's header and rows of text, with the line on which each row starts."""

    def __init__(self, path: str, header: list[str], rows: list[list[str]], lines: list[int]):
        self.path, self.header, self.rows, self.lines = path, header, rows, lines

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, ref: str, argument: str) -> int:
        """The index of column ``ref``: a header name, else a 0-based index (``-1``: the last)."""
        if ref in self.header:
            return self.header.index(ref)
        try:
            k = int(ref)
        except ValueError:
            raise ValueError(f"{argument}: {self.path} has no column {ref!r}; its columns are "
                             f"{', '.join(map(repr, self.header))}") from None
        if not -len(self.header) <= k < len(self.header):
            raise ValueError(f"{argument}: {self.path} has no column named {ref!r}, and as an "
                             f"index it is out of range for {len(self.header)} columns")
        return k % len(self.header)

    def numbers(self, columns: list[int]) -> np.ndarray:
        """The given columns as a float64 ``(n_rows, len(columns))`` array, or CSVError."""
        out = np.empty((len(self.rows), len(columns)), dtype=np.float64)
        first_error = None  # the bad cell nearest the top of the file (then the leftmost)
        for j, c in enumerate(columns):
            cells = [row[c] for row in self.rows]
            try:  # fast path; on failure find the column's first bad cell for the message
                values = np.array(cells, dtype=np.str_).astype(np.float64)
            except ValueError:
                values = None
            if values is None or not np.isfinite(values).all():
                for i, cell in enumerate(cells):
                    try:
                        self._number(cell, i, c)
                    except CSVError as exc:
                        if first_error is None or (i, c) < first_error[:2]:
                            first_error = (i, c, exc)
                        break
                continue
            out[:, j] = values
        if first_error is not None:
            raise first_error[2]
        return out

    def _number(self, cell: str, i: int, c: int) -> float:
        name = self.header[c]
        if not cell.strip():
            raise CSVError(self.path, f"missing value in column {name!r} (an empty field)",
                           self.lines[i], c + 1)
        try:
            v = float(cell)
        except ValueError:
            raise CSVError(self.path, f"expected a number in column {name!r}, got "
                           f"{_short(cell)}", self.lines[i], c + 1) from None
        if not math.isfinite(v):
            raise CSVError(self.path, f"expected a finite number in column {name!r}, got "
                           f"{_short(cell)}", self.lines[i], c + 1)
        return v


def read_table(path) -> Table:
    """Read a CSV file with a header row; CSVError (a ValueError) for anything malformed.

    OSError (FileNotFoundError, ...) propagates for a file that cannot be opened.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise CSVError(name, "is a directory, expected a CSV file")
    with open(name, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        field = data[line_start : exc.start].count(b",") + 1  # (ignores quoting)
        raise CSVError(name, f"not UTF-8 text (byte 0x{data[exc.start]:02x}, byte "
                       f"{exc.start - line_start + 1} of the line)", line, field) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = None
    rows, lines = [], []
    start = 1
    try:
        for row in reader:
            first, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if header is None:
                header = [h.strip() for h in row]
                _check_header(name, header, first)
                continue
            if len(row) != len(header):
                raise CSVError(name, f"expected {len(header)} fields as in the header, got "
                               f"{len(row)}", first)
            rows.append(row)
            lines.append(first)
    except csv.Error as exc:
        raise CSVError(name, f"malformed CSV ({exc})", start) from None
    if header is None:
        raise CSVError(name, "the file is empty; expected a header row naming the columns, "
                       "then one row per sample")
    if not rows:
        raise CSVError(name, "no data rows after the header")
    return Table(name, header, rows, lines)


def _check_header(name: str, header: list[str], line: int) -> None:
    seen: dict[str, int] = {}
    for k, h in enumerate(header):
        if not h:
            raise CSVError(name, "empty column name in the header row (cprop needs a header "
                           "row naming every column)", line, k + 1)
        if h in seen:
            raise CSVError(name, f"column name {h!r} appears twice in the header (columns "
                           f"{seen[h] + 1} and {k + 1})", line, k + 1)
        seen[h] = k
    try:  # a header of numbers means the file probably has none
        [float(h) for h in header]
    except ValueError:
        return
    raise CSVError(name, "the first row holds only numbers; cprop needs a header row naming "
                   "the columns", line)


def write_rows(header: list[str], rows) -> str:
    """CSV text (a header, then the rows), ``\\n`` line endings."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()
