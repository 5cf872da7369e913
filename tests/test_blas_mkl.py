"""MKL (the mkl pip package) as the wide layers' BLAS: with CPROP_BLAS=mkl, in a subprocess, cprop
reports MKL and the BLAS-route parity tests (compiled gemm path and loops against the pure-Python
oracle, tests/test_parity_blas.py) and the BLAS-choice tests pass.

Skipped where the mkl package is not installed (the main CI run: there the auto rule must keep
the BLAS that scikit-learn's NumPy results are compared with; .ci/run installs mkl afterwards and
runs this file). A subprocess, because the choice is fixed when the kernels are imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cprop._kernels import _mlp

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(_mlp._mkl_rt_path() is None,
                                reason="the mkl package is not installed")


def test_mkl_forced_passes_the_blas_parity_tests():
    env = dict(os.environ, CPROP_BLAS="mkl")
    check = subprocess.run(
        [sys.executable, "-c", "from cprop._kernels import _mlp; import json; "
         "print(json.dumps(_mlp.blas_library()))"],
        env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert '"library": "mkl"' in check.stdout and '"reason": "CPROP_BLAS=mkl"' in check.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(HERE / "test_parity_blas.py"), str(HERE / "test_blas_choice.py")],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
