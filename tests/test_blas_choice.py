"""Which BLAS the wide layers call: scipy-openblas32's library when that package is installed
(a newer OpenBLAS), else SciPy's through scipy.linalg.cython_blas; CPROP_BLAS chooses. Each
choice must train to the same numbers (to rounding: the two libraries may add in different
orders), and a bad choice must fail clearly, never silently use something else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cprop._kernels import _mlp

try:
    import scipy_openblas32  # noqa: F401
    HAVE_OPENBLAS32 = True
except ImportError:
    HAVE_OPENBLAS32 = False

# Trains a network whose layers all go through gemm (BLAS_MIN_WORK 0), both dtypes, and prints
# the chosen library and the final parameters.
CHILD = r"""
import json, sys
BLOCK = {block!r}
if BLOCK:
    sys.modules["scipy_openblas32"] = None  # as if it were not installed
import numpy as np
import cprop, cprop.mlp
from cprop._kernels import _mlp
cprop.mlp._BLAS_MIN_WORK = 0
out = {{"blas": _mlp.blas_library()}}
rng = np.random.default_rng(0)
X = rng.standard_normal((96, 20)); T = np.eye(5)[rng.integers(0, 5, 96)]
for dt in ("float64", "float32"):
    net = cprop.MLP([20, 24, 5], hidden="tanh", output="softmax", loss="cross_entropy",
                    dtype=dt, seed=3)
    h = net.fit(X.astype(dt), T.astype(dt), epochs=3, lr=0.1, batch_size=16, seed=1)
    out[dt] = [float(v) for v in net.params] + [float(v) for v in h.loss]
print(json.dumps(out))
"""


def _child(env_value, block=False):
    env = dict(os.environ)
    env.pop("CPROP_BLAS", None)
    if env_value is not None:
        env["CPROP_BLAS"] = env_value
    proc = subprocess.run([sys.executable, "-c", CHILD.format(block=block)], env=env,
                          capture_output=True, text=True, timeout=300)
    return proc


def _run(env_value, block=False):
    proc = _child(env_value, block)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_this_process_reports_its_choice():
    info = _mlp.blas_library()
    assert set(info) == {"library", "version", "path"}
    forced = os.environ.get("CPROP_BLAS", "").strip().lower()
    if HAVE_OPENBLAS32 and forced != "scipy":
        assert info["library"] == "scipy-openblas32"
        assert os.path.isfile(info["path"]) and "scipy_openblas" in info["path"]
    else:
        assert info["library"] == "scipy.linalg.cython_blas"
        assert info["path"] is None


def test_scipy_forced_and_auto_train_alike():
    import numpy as np

    scipy_run = _run("scipy")
    assert scipy_run["blas"]["library"] == "scipy.linalg.cython_blas"
    auto = _run(None)
    assert auto["blas"]["library"] == ("scipy-openblas32" if HAVE_OPENBLAS32
                                       else "scipy.linalg.cython_blas")
    for dt, tol in (("float64", 1e-12), ("float32", 2e-5)):
        a, b = np.array(auto[dt]), np.array(scipy_run[dt])
        assert np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) <= tol, dt
        assert np.max(np.abs(b - b[0])) > 0  # (it trained: not all equal)


def test_without_the_package_auto_falls_back_and_forcing_it_fails():
    fallback = _run("auto", block=True)
    assert fallback["blas"]["library"] == "scipy.linalg.cython_blas"
    proc = _child("scipy-openblas32", block=True)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "CPROP_BLAS=scipy-openblas32" in proc.stderr


def test_unknown_choice_warns_and_uses_auto():
    env = dict(os.environ, CPROP_BLAS="mkl")
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c",
         "from cprop._kernels import _mlp; print(_mlp.blas_library()['library'])"],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "CPROP_BLAS='mkl'" in proc.stderr and "RuntimeWarning" in proc.stderr
    assert proc.stdout.strip() == ("scipy-openblas32" if HAVE_OPENBLAS32
                                   else "scipy.linalg.cython_blas")


@pytest.mark.skipif(not HAVE_OPENBLAS32, reason="scipy-openblas32 is not installed")
def test_forcing_the_package_when_installed():
    run = _run("scipy-openblas32")
    assert run["blas"]["library"] == "scipy-openblas32"
