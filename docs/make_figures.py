"""Write the seed example's figures into docs/figures/: ``python docs/make_figures.py``.

- ``network.svg``, ``forward.svg``, ``backward.svg``, ``update.svg``: what
  ``cprop demo --figures docs/figures`` writes (the seed text's lost figures; the README shows
  ``network.svg``). ``tests/test_docs_figures.py`` checks that the files here are what cprop
  draws today, so a change to the figures that is not re-run here fails the test suite.
- ``explain.html``: ``cprop demo --html``'s page, and with ``--screenshot`` (needs Chromium)
  ``explain-page.png``, a screenshot of it (fonts differ by machine, so it is not checked).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "figures"
SVGS = ("network.svg", "forward.svg", "backward.svg", "update.svg")


def write_figures(directory: Path = FIGURES) -> list[Path]:
    """The four seed figures and the explain page, written as the CLI writes them."""
    from cprop.cli import main

    directory.mkdir(parents=True, exist_ok=True)
    if main(["demo", "--figures", str(directory)]) != 0:
        raise SystemExit("cprop demo --figures failed")
    page = directory / "explain.html"
    if main(["demo", "--html", str(page)]) != 0:
        raise SystemExit("cprop demo --html failed")
    return [directory / name for name in SVGS] + [page]


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 900) -> None:
    """A PNG of the page's backward pass, one line highlighted as a reader's hover does,
    rendered by headless Chromium through the tests' harness (tests/browser.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser import Browser, find_chromium

    if find_chromium() is None:
        raise SystemExit("--screenshot needs Chromium (Debian: apt-get install chromium)")
    with Browser() as browser:
        browser.open(page, width=width, height=height)
        x, y = browser.evaluate("""(function () {
            document.getElementById('backward').scrollIntoView();
            var li = Array.from(document.querySelectorAll('li[data-refs]')).find(function (l) {
              return l.textContent.trim().indexOf('dE/dh1 = w5') === 0; });
            var r = li.getBoundingClientRect(); return [r.x + 40, r.y + r.height / 2]; })()""")
        browser.hover(x, y)
        out.write_bytes(browser.screenshot())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--screenshot", action="store_true",
                   help="also write explain-page.png (needs Chromium)")
    args = p.parse_args(argv)
    for path in write_figures():
        print(f"wrote {path}")
    if args.screenshot:
        out = FIGURES / "explain-page.png"
        screenshot(FIGURES / "explain.html", out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
