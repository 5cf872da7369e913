"""Fixtures and options shared by the test files; the helpers they use are in parity.py."""

from __future__ import annotations

import os

import pytest

import cprop.mlp
import parity
from browser import Browser, BrowserError, find_chromium


def pytest_addoption(parser):
    parser.addoption("--parity-report", action="store_true", default=False,
                     help="print the worst relative error per (quantity, dtype) seen by the "
                          "parity assertions (tests/parity.py)")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not config.getoption("--parity-report") or not parity.WORST:
        return
    terminalreporter.section("parity: worst relative error per quantity")
    for (quantity, dtype), err in sorted(parity.WORST.items(), key=lambda kv: (kv[0][1],
                                                                               kv[0][0])):
        terminalreporter.write_line(f"{dtype:8s} {quantity:18s} {err:.3e}")


@pytest.fixture
def kernel_path(monkeypatch):
    """``kernel_path("blas")`` / ``("loops")`` / ``("default")``: networks built afterwards
    send every layer block through gemm, none, or those of at least
    ``_mlp.BLAS_MIN_WORK`` multiply-adds (cprop.mlp reads the threshold at construction)."""
    thresholds = {"blas": parity.BLAS_ALWAYS, "loops": parity.BLAS_NEVER,
                  "default": cprop.mlp._mlp.BLAS_MIN_WORK}

    def use(path):
        monkeypatch.setattr(cprop.mlp, "_BLAS_MIN_WORK", thresholds[path])

    return use



@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (tests/browser.py's ``Browser``) for the whole session. Where none
    is found the tests that use it skip, unless ``CPROP_REQUIRE_BROWSER=1`` (as in CI), which
    makes that a failure; a browser that is found but does not start is always a failure."""
    if find_chromium() is None:
        reason = "Chromium not found: install Debian's chromium package, or set CPROP_CHROMIUM"
        if os.environ.get("CPROP_CHROMIUM"):
            reason += f" (CPROP_CHROMIUM={os.environ['CPROP_CHROMIUM']} is not an executable)"
        if os.environ.get("CPROP_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " [CPROP_REQUIRE_BROWSER=1]", pytrace=False)
        pytest.skip(reason)
    try:
        b = Browser()
    except BrowserError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:                   # (outside the except: no chained traceback)
        pytest.fail(f"Chromium did not start: {error}", pytrace=False)
    yield b
    b.close()
