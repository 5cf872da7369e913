"""docs/figures/ holds what cprop draws today: the seed example's four figures (the README shows
network.svg) and its explain page, as docs/make_figures.py writes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import docs_scripts

DOCS = Path(__file__).resolve().parents[1] / "docs"
README = Path(__file__).resolve().parents[1] / "README.md"
_NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def _script():
    return docs_scripts.load("make_figures")


def _normal(text: str) -> str:
    """Numbers to nine significant digits: a last-bit difference in exp between platforms is
    not a stale figure, any change of layout, naming or value is."""
    return _NUMBER.sub(lambda m: f"{float(m.group()):.9g}", text)


@pytest.mark.parametrize("name", ["network.svg", "forward.svg", "backward.svg", "update.svg",
                                  "explain.html"])
def test_docs_figures_are_current(tmp_path, capsys, name):
    written = _script().write_figures(tmp_path)
    assert sorted(p.name for p in written) == sorted(
        ["network.svg", "forward.svg", "backward.svg", "update.svg", "explain.html"])
    fresh = (tmp_path / name).read_text(encoding="utf-8")
    committed = (DOCS / "figures" / name).read_text(encoding="utf-8")
    assert _normal(committed) == _normal(fresh), (
        f"docs/figures/{name} is stale: run python docs/make_figures.py")


def test_readme_shows_the_seed_network():
    text = README.read_text(encoding="utf-8")
    assert "](docs/figures/network.svg)" in text
    assert "cprop demo --figures" in text and "cprop explain" in text and "--html" in text
