"""Loading the scripts in docs/ (they are not a package) for the tests that run them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def load(name: str):
    """docs/<name>.py as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"_cprop_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
