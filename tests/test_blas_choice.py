"""Which BLAS the wide layers call: by the fixed rule of _blas.pxi (blas_rule), MKL (the mkl
package) on a GenuineIntel CPU, else scipy-openblas32's library when that package is installed (a
newer OpenBLAS), else SciPy's through scipy.linalg.cython_blas; CPROP_BLAS chooses. Each choice
must train to the same numbers (to rounding: the libraries may add in different orders), and a
bad choice must fail clearly, never silently use something else.
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
HAVE_MKL = _mlp._mkl_rt_path() is not None
VENDOR = _mlp.cpu_vendor()
# What CPROP_BLAS unset gives here (the rule is tested on its own below).
INSTALLED = {name for name, have in (("mkl", HAVE_MKL), ("scipy-openblas32", HAVE_OPENBLAS32))
             if have}
AUTO = _mlp.blas_rule(None, INSTALLED, VENDOR)[0]
LIBRARY = {"scipy": "scipy.linalg.cython_blas", "scipy-openblas32": "scipy-openblas32",
           "mkl": "mkl"}

# Trains a network whose layers all go through gemm (BLAS_MIN_WORK 0), both dtypes, and prints
# the chosen library and the final parameters.
CHILD = r"""
import json, sys
BLOCK = {block!r}
import numpy as np
if "scipy-openblas32" in BLOCK:
    sys.modules["scipy_openblas32"] = None  # as if it were not installed
if "mkl" in BLOCK:  # as if the mkl package were not installed: no RECORD, no sys.prefix/lib copy
    import importlib.metadata, tempfile
    _files = importlib.metadata.files
    def files(name):
        if name == "mkl":
            raise importlib.metadata.PackageNotFoundError(name)
        return _files(name)
    importlib.metadata.files = files
    sys.prefix = tempfile.mkdtemp()
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


def _child(env_value, block=()):
    env = dict(os.environ)
    env.pop("CPROP_BLAS", None)
    if env_value is not None:
        env["CPROP_BLAS"] = env_value
    proc = subprocess.run([sys.executable, "-c", CHILD.format(block=tuple(block))], env=env,
                          capture_output=True, text=True, timeout=300)
    return proc


def _run(env_value, block=()):
    proc = _child(env_value, block)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_this_process_reports_its_choice():
    info = _mlp.blas_library()
    assert set(info) == {"library", "version", "path", "reason"}
    forced = os.environ.get("CPROP_BLAS", "").strip().lower()
    expected = forced if forced in LIBRARY else AUTO
    assert info["library"] == LIBRARY[expected]
    assert info["reason"] == (f"CPROP_BLAS={forced}" if forced in LIBRARY
                              else _mlp.blas_rule(forced or None, _mlp._installed(), VENDOR)[1])
    if expected == "scipy-openblas32":
        assert os.path.isfile(info["path"]) and "scipy_openblas" in info["path"]
    elif expected == "mkl":
        assert os.path.isfile(info["path"]) and "mkl_rt" in os.path.basename(info["path"])
    else:
        assert info["path"] is None


# The rule, as a pure function: (CPROP_BLAS, installed, CPU vendor) -> (choice, reason).
RULE = [
    (None, set(), "GenuineIntel", "scipy",
     "auto rule: neither mkl nor scipy-openblas32 installed"),
    ("auto", {"scipy-openblas32"}, "GenuineIntel", "scipy-openblas32",
     "auto rule: scipy-openblas32 installed"),
    ("", {"mkl", "scipy-openblas32"}, "GenuineIntel", "mkl",
     "auto rule: mkl installed, GenuineIntel CPU"),
    (" AUTO ", {"mkl"}, "GenuineIntel", "mkl", "auto rule: mkl installed, GenuineIntel CPU"),
    (None, {"mkl", "scipy-openblas32"}, "AuthenticAMD", "scipy-openblas32",
     "auto rule: scipy-openblas32 installed, mkl installed but the CPU is AuthenticAMD (mkl only "
     "on GenuineIntel)"),
    (None, {"mkl"}, "AuthenticAMD", "scipy",
     "auto rule: scipy-openblas32 not installed, mkl installed but the CPU is AuthenticAMD (mkl "
     "only on GenuineIntel)"),
    (None, {"mkl"}, None, "scipy",
     "auto rule: scipy-openblas32 not installed, mkl installed but the CPU is of unknown vendor "
     "(mkl only on GenuineIntel)"),
    ("scipy", {"mkl", "scipy-openblas32"}, "GenuineIntel", "scipy", "CPROP_BLAS=scipy"),
    ("Scipy-OpenBLAS32", set(), "AuthenticAMD", "scipy-openblas32",
     "CPROP_BLAS=scipy-openblas32"),
    ("mkl", set(), "AuthenticAMD", "mkl", "CPROP_BLAS=mkl"),  # forced: loading then decides
    ("openblas", {"mkl"}, "GenuineIntel", "mkl",
     "CPROP_BLAS='openblas' is not a known choice, so the auto rule: mkl installed, "
     "GenuineIntel CPU"),
]


@pytest.mark.parametrize("requested, installed, vendor, choice, reason", RULE)
def test_the_rule(requested, installed, vendor, choice, reason):
    assert _mlp.blas_rule(requested, installed, vendor) == (choice, reason)


def test_the_vendor_is_read_not_guessed():
    vendor = _mlp.cpu_vendor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            ids = {line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")}
        assert vendor in ids if ids else vendor is None
    assert vendor is None or (isinstance(vendor, str) and vendor.strip() == vendor and vendor)


def test_scipy_forced_and_auto_train_alike():
    import numpy as np

    scipy_run = _run("scipy")
    assert scipy_run["blas"]["library"] == "scipy.linalg.cython_blas"
    assert scipy_run["blas"]["reason"] == "CPROP_BLAS=scipy"
    auto = _run(None)
    assert auto["blas"]["library"] == LIBRARY[AUTO]
    assert auto["blas"]["reason"].startswith("auto rule: ")
    for dt, tol in (("float64", 1e-12), ("float32", 2e-5)):
        a, b = np.array(auto[dt]), np.array(scipy_run[dt])
        assert np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) <= tol, dt
        assert np.max(np.abs(b - b[0])) > 0  # (it trained: not all equal)


def test_without_the_packages_auto_falls_back_and_forcing_them_fails():
    fallback = _run("auto", block=("scipy-openblas32", "mkl"))
    assert fallback["blas"]["library"] == "scipy.linalg.cython_blas"
    assert fallback["blas"]["reason"] == "auto rule: neither mkl nor scipy-openblas32 installed"
    proc = _child("scipy-openblas32", block=("scipy-openblas32",))
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "CPROP_BLAS=scipy-openblas32" in proc.stderr


def test_forcing_mkl_without_it_is_a_clear_import_error():
    proc = _child("mkl", block=("mkl",))
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: CPROP_BLAS=mkl, but it cannot be used: the mkl package "
                           "is not installed (pip install mkl"), proc.stderr


def test_unknown_choice_warns_and_uses_auto():
    env = dict(os.environ, CPROP_BLAS="openblas")
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c",
         "from cprop._kernels import _mlp; print(_mlp.blas_library()['library'])"],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "CPROP_BLAS='openblas'" in proc.stderr and "RuntimeWarning" in proc.stderr
    assert proc.stdout.strip() == LIBRARY[AUTO]


@pytest.mark.skipif(not HAVE_OPENBLAS32, reason="scipy-openblas32 is not installed")
def test_forcing_the_package_when_installed():
    run = _run("scipy-openblas32")
    assert run["blas"]["library"] == "scipy-openblas32"


@pytest.mark.skipif(not HAVE_MKL, reason="the mkl package is not installed")
def test_mkl_forced_trains_like_scipy_and_repeats_its_bits():
    import numpy as np

    mkl = _run("mkl")
    assert mkl["blas"]["library"] == "mkl" and mkl["blas"]["reason"] == "CPROP_BLAS=mkl"
    assert mkl["blas"]["version"] and "mkl_rt" in mkl["blas"]["path"]
    scipy_run = _run("scipy")
    for dt, tol in (("float64", 1e-12), ("float32", 2e-5)):
        a, b = np.array(mkl[dt]), np.array(scipy_run[dt])
        assert np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))) <= tol, dt
    # one seed, one machine, one thread setting -> one result
    assert _run("mkl") == mkl
