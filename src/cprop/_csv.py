"""Reading CSV files for ``cprop train``, ``predict`` and ``evaluate``, with errors that say where.

The first non-blank row is the header (required: columns are found by name; a first row of
numbers only is refused as a missing header); every other non-blank row must have as many
fields as the header. A header whose first name is empty and whose other names are not is the
index column pandas writes (``df.to_csv()``): that column is left out (:attr:`Table.index_column`),
and columns are still numbered by their place in the file in messages. Text is UTF-8 (a
byte-order mark is ignored); quoting follows Python's :mod:`csv` (``"a, b"`` is one field; a stray
quote is an error). The delimiter is given (``--delimiter``) or sniffed (:func:`sniff_delimiter`:
:class:`csv.Sniffer` on the first few KB, among ``, ; tab |``; a comma if it cannot tell).
Numbers use Python's ``float`` syntax (``3``, ``-0.5``, ``1e-3``); empty fields, ``nan``, ``inf``
and numbers beyond the float range are refused. Every error is a :class:`CSVError` whose message
starts with ``FILE:LINE:COLUMN:`` (or ``FILE:LINE:`` / ``FILE:``), lines and columns counted
from 1, the column being the field's position in the row.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re

import numpy as np

__all__ = ["CSVError", "Table", "read_table", "write_rows", "sniff_delimiter",
           "DELIMITERS", "SNIFF_CHARS"]

#: The delimiters sniffing chooses among, in the order of preference of a tie.
DELIMITERS = ",;\t|"
#: How much of the file sniffing looks at (characters).
SNIFF_CHARS = 8192

_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d*,\d+\s*$")


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
    """A CSV file's header and rows of text, with the line on which each row starts.

    ``delimiter`` is the one used (``sniffed`` says whether it was guessed); ``index_column``
    is True when the file's first column was a pandas index (empty name), left out of
    ``header`` and ``rows``: :meth:`field` gives a column's place in the file.
    """

    def __init__(self, path: str, header: list[str], rows: list[list[str]], lines: list[int],
                 delimiter: str = ",", sniffed: bool = False, index_column: bool = False):
        self.path, self.header, self.rows, self.lines = path, header, rows, lines
        self.delimiter, self.sniffed, self.index_column = delimiter, sniffed, index_column

    def __len__(self) -> int:
        return len(self.rows)

    def delimiter_hint(self) -> str:
        """For a message about a missing column: when the header is one column whose name holds
        another delimiter, a word about ``--delimiter``; else ''."""
        if len(self.header) == 1 and any(d in self.header[0] for d in DELIMITERS):
            return (f" (one column: its fields are taken as separated by "
                    f"{describe_delimiter(self.delimiter)}; --delimiter sets another)")
        return ""

    def field(self, c: int) -> int:
        """Column ``c``'s position in the file's rows, counted from 1 (as messages give it)."""
        return c + 1 + self.index_column

    def error(self, message: str, i: int | None = None, c: int | None = None) -> CSVError:
        """A CSVError at data row ``i`` (0-based), column ``c`` (an index into ``header``)."""
        return CSVError(self.path, message, None if i is None else self.lines[i],
                        None if c is None else self.field(c))

    def text_cells(self, c: int) -> tuple[int, int] | None:
        """``(row of the first, count)`` of column ``c``'s cells that are text - not empty and
        not numbers - when they are more than half of its non-empty cells; else None. A column
        of text (categories, names) rather than numbers with a typo in them."""
        first, text, filled = None, 0, 0
        for i, row in enumerate(self.rows):
            cell = row[c].strip()
            if not cell:
                continue
            filled += 1
            try:
                float(cell)
            except ValueError:
                text += 1
                if first is None:
                    first = i
        return (first, text) if 2 * text > filled else None

    def column(self, ref: str, argument: str) -> int:
        """The index of column ``ref``: a header name, else a 0-based index (``-1``: the last)."""
        if ref in self.header:
            return self.header.index(ref)
        try:
            k = int(ref)
        except ValueError:
            raise ValueError(f"{argument}: {self.path} has no column {ref!r}; its columns are "
                             f"{', '.join(map(repr, self.header))}{self.delimiter_hint()}"
                             ) from None
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
            raise self.error(f"missing value in column {name!r} (an empty field)", i, c)
        try:
            v = float(cell)
        except ValueError:
            hint = (" (a decimal comma? cprop reads numbers with a decimal point, 1.5)"
                    if _DECIMAL_COMMA.match(cell) else "")
            raise self.error(f"expected a number in column {name!r}, got {_short(cell)}{hint}",
                             i, c) from None
        if not math.isfinite(v):
            raise self.error(f"expected a finite number in column {name!r}, got "
                             f"{_short(cell)}", i, c)
        return v


def sniff_delimiter(text: str) -> str | None:
    """The delimiter :class:`csv.Sniffer` finds in the first :data:`SNIFF_CHARS` characters of
    ``text`` (whole lines), among :data:`DELIMITERS`. When it cannot tell (rows of different
    lengths, say), the one of them that splits the first non-blank line (the header) into the
    most fields; None if none splits it (one column)."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]  # no partial last line
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    first = next((line for line in sample.splitlines() if line.strip()), "")
    best, most = None, 1
    for d in DELIMITERS:
        try:
            n = len(next(csv.reader([first], delimiter=d), []))
        except csv.Error:
            continue
        if n > most:
            best, most = d, n
    return best


def describe_delimiter(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "'|'", " ": "space"}.get(
        delimiter, repr(delimiter))


def read_table(path, delimiter: str | None = None) -> Table:
    """Read a CSV file with a header row; CSVError (a ValueError) for anything malformed.

    ``delimiter``: one character, or None to sniff it (a comma when sniffing cannot tell).
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
        sep = (delimiter or ",").encode("utf-8")
        field = data[line_start : exc.start].count(sep) + 1  # (ignores quoting)
        raise CSVError(name, f"not UTF-8 text (byte 0x{data[exc.start]:02x}, byte "
                       f"{exc.start - line_start + 1} of the line)", line, field) from None
    how = "given"
    if delimiter is None:
        delimiter = sniff_delimiter(text)
        how = "default" if delimiter is None else "sniffed"
        delimiter = delimiter or ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header = None
    index_column = False
    rows, lines = [], []
    start = 1
    try:
        for row in reader:
            first, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if header is None:
                header = [h.strip() for h in row]
                # pandas' df.to_csv() writes the index first, under an empty name
                index_column = len(header) > 1 and not header[0] and all(header[1:])
                _check_header(name, header[index_column:], first, delimiter, index_column)
                continue
            if len(row) != len(header):
                sep = describe_delimiter(delimiter)
                why = {"given": "", "sniffed": ", sniffed; --delimiter sets another",
                       "default": ", the default; --delimiter sets another"}[how]
                raise CSVError(name, f"expected {len(header)} fields as in the header, got "
                               f"{len(row)} (fields separated by {sep}{why})", first)
            rows.append(row[1:] if index_column else row)
            lines.append(first)
    except csv.Error as exc:
        raise CSVError(name, f"malformed CSV ({exc})", start) from None
    if header is None:
        raise CSVError(name, "the file is empty; expected a header row naming the columns, "
                       "then one row per sample")
    if not rows:
        raise CSVError(name, "no data rows after the header")
    return Table(name, header[index_column:], rows, lines, delimiter, how == "sniffed",
                 index_column)


def _check_header(name: str, header: list[str], line: int, delimiter: str = ",",
                  offset: int = 0) -> None:
    seen: dict[str, int] = {}
    for k, h in enumerate(header):
        if not h:
            raise CSVError(name, "empty column name in the header row (cprop needs a header "
                           "row naming every column)", line, k + 1 + offset)
        if h in seen:
            raise CSVError(name, f"column name {h!r} appears twice in the header (columns "
                           f"{seen[h] + 1 + offset} and {k + 1 + offset})", line, k + 1 + offset)
        seen[h] = k
    try:  # a header of numbers means the file probably has none
        [float(h) for h in header]
    except ValueError:
        return
    example = delimiter.join([f"x{k + 1}" for k in range(min(len(header) - 1, 3))]
                             + (["..."] if len(header) > 4 else []) + ["y"])
    if len(header) == 1:
        example = "y"
    raise CSVError(name, "the first row holds only numbers: the file has no header row. cprop "
                   "finds columns by name; add a first line naming the columns (such as "
                   f"{example!r}) and give the target by its name", line)


def write_rows(header: list[str], rows) -> str:
    """CSV text (a header, then the rows), ``\\n`` line endings."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()
