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
import os
import shutil
import subprocess
import sys
import tempfile
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


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 1500) -> None:
    """A PNG of the page's first screen, rendered by headless Chromium."""
    exe = os.environ.get("CPROP_CHROMIUM") or next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
         if shutil.which(n)), None)
    if exe is None:
        raise SystemExit("--screenshot needs Chromium (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={out}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)


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
