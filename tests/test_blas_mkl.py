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


# A W3-sized fit (784-256-10, batch 64) in a process that imported PyTorch first (its libgomp
# loaded RTLD_GLOBAL) and asks MKL for 2 threads: with MKL's Intel OpenMP layer this gave wrong
# numbers; cprop's sequential layer must give SciPy's (to rounding), and threadpoolctl must see
# libmkl_rt.
TORCH_FIRST = r"""
import json, sys
try:
    import torch  # noqa: F401
except ImportError:
    pass
import numpy as np
import cprop
from cprop._kernels import _mlp
out = {"blas": _mlp.blas_library()["library"]}
try:
    import threadpoolctl
    out["pools"] = [(p["internal_api"], p.get("threading_layer"), p["num_threads"])
                    for p in threadpoolctl.threadpool_info() if p["internal_api"] == "mkl"]
    with threadpoolctl.threadpool_limits(1):
        out["limited"] = [p["num_threads"] for p in threadpoolctl.threadpool_info()
                          if p["internal_api"] == "mkl"]
except ImportError:
    pass
rng = np.random.default_rng(0)
X = rng.standard_normal((512, 784)); T = np.eye(10)[rng.integers(0, 10, 512)]
net = cprop.MLP([784, 256, 10], hidden="sigmoid", output="softmax", loss="cross_entropy", seed=1)
h = net.fit(X, T, epochs=1, lr=0.1, batch_size=64, shuffle=False)
out["params"] = [float(v) for v in net.params[::97]] + [float(v) for v in h.loss]
print(json.dumps(out))
"""


def test_mkl_is_sequential_and_right_next_to_pytorch():
    import json

    import numpy as np

    runs = {}
    for blas in ("mkl", "scipy"):
        env = dict(os.environ, CPROP_BLAS=blas, MKL_NUM_THREADS="2", OMP_NUM_THREADS="2")
        env.pop("MKL_THREADING_LAYER", None)
        proc = subprocess.run([sys.executable, "-c", TORCH_FIRST], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs[blas] = json.loads(proc.stdout)
    mkl, ref = runs["mkl"], runs["scipy"]
    assert mkl["blas"] == "mkl"
    if "pools" in mkl:
        assert mkl["pools"] == [["mkl", "sequential", 1]] and mkl["limited"] == [1]
    a, b = np.array(mkl["params"]), np.array(ref["params"])
    assert np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) <= 1e-12
