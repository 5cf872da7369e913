"""What the command-line test files share: running ``cprop`` in-process and writing CSV files."""

from __future__ import annotations

import csv

from cprop.cli import main


def run(capsys, *args):
    """``(status, stdout, stderr)`` of ``cprop ARGS`` run in-process (arguments made str)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path, header, rows):
    """A comma-separated file with a header row; returns its path as str."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return str(path)
