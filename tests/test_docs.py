"""docs/tutorial.md runs: every Python block, and every `$ cprop ...` line of its console blocks.

The runner is docs/make_plots.py's (the script that draws the tutorial's figures), so the test
and the figures come from the same code. It checks the shown command output too (digits aside).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import docs_scripts

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _runner():
    return docs_scripts.load("make_plots")


def test_tutorial_runs_and_draws_its_figures(tmp_path, capsys):
    runner = _runner()
    kinds = [lang for lang, _, _ in runner.blocks()]
    assert kinds.count("python") >= 8 and kinds.count("console") >= 3
    ns = runner.run_tutorial(tmp_path)
    # the numbers the tutorial's prose relies on
    assert ns["losses"][-1] < 1e-4 and ns["accuracy"] > 0.94
    shown = runner.images()
    assert shown == ["seed_loss.png", "digits_loss.png", "cli_loss.png"]
    for name in shown:
        drawn = (tmp_path / name).read_bytes()
        assert drawn.startswith(b"\x89PNG\r\n\x1a\n") and len(drawn) > 5000
        committed = DOCS / name  # the copy the tutorial links to is there, and small
        assert committed.stat().st_size <= runner.MAX_PNG_BYTES
    for name in ("predictions.csv", "probabilities.csv", "digits.npz", "digits.onnx"):
        assert (tmp_path / name).stat().st_size > 0
    capsys.readouterr()


def test_runner_catches_broken_blocks(tmp_path):
    runner = _runner()
    bad = tmp_path / "bad.md"
    bad.write_text("```python\nx = 1\n```\n\n```python\nassert x == 2\n```\n")
    with pytest.raises(AssertionError):
        runner.run_tutorial(tmp_path, bad)
    bad.write_text("```console\n$ cprop demo --steps 1\nthis line is not printed\n```\n")
    with pytest.raises(AssertionError, match="did not print the line"):
        runner.run_tutorial(tmp_path, bad)
    bad.write_text("```console\n$ cprop train nothing.csv --target t\n```\n")
    with pytest.raises(AssertionError, match="exited with 2"):  # a missing input file
        runner.run_tutorial(tmp_path, bad)
