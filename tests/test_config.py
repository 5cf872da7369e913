"""cprop.show_config(), cprop._config.config() and `cprop info`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import cprop
import cprop.mlp
from cprop._config import config, openmp_enabled
from cprop.cli import main

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def test_config_reports_version_dtypes_and_runtime():
    cfg = config()
    assert cfg["version"] == cprop.__version__
    assert cfg["dtypes"] == ["float64", "float32"]
    assert cfg["numpy_version"] == np.__version__
    py = cfg["python"]
    assert py["version"] == "%d.%d.%d" % sys.version_info[:3]
    assert py["free_threaded_build"] is FREE_THREADED
    expected_gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    assert py["gil_enabled"] is expected_gil
    if not FREE_THREADED:
        assert py["gil_enabled"] is True
    assert cfg["platform"]["cpu_count"] == os.cpu_count()
    # The compiled module it names is the one cprop imports, inside the reported package.
    kernels = cfg["kernels"]
    assert os.path.isfile(kernels)
    assert os.path.dirname(os.path.dirname(kernels)) == cfg["location"]
    assert cfg["location"] == os.path.dirname(os.path.abspath(cprop.__file__))
    json.dumps(cfg)  # JSON-serialisable, as `cprop info --json` needs


@pytest.mark.parametrize("dtype", config()["dtypes"])
def test_every_reported_dtype_trains(dtype):
    net = cprop.MLP([2, 3, 1], seed=0, dtype=dtype)
    assert net.params.dtype == np.dtype(dtype)
    net.train_step([[0.5, -0.5]], [[1.0]], lr=0.1)
    assert net.forward([[0.5, -0.5]]).dtype == np.dtype(dtype)


def test_unreported_dtype_is_refused():
    assert "float16" not in config()["dtypes"]
    with pytest.raises(ValueError, match="dtype"):
        cprop.MLP([2, 1], dtype="float16")


def test_openmp_and_blas_sections():
    cfg = config()
    assert cfg["openmp"]["enabled"] is openmp_enabled() is False
    assert cfg["openmp"]["threads"] == 1
    blas = cfg["blas"]
    from cprop._kernels import _mlp

    if hasattr(_mlp, "BLAS_MIN_WORK"):  # wide layers call scipy's gemm
        import scipy

        from cprop._kernels import _mlp

        chosen = _mlp.blas_library()
        name = {"scipy.linalg.cython_blas": "scipy"}.get(chosen["library"], chosen["library"])
        assert name in ("scipy-openblas32", "scipy", "mkl")
        # which library and why, e.g. "mkl 2026.2.1: auto rule: mkl installed, GenuineIntel CPU"
        assert blas["cprop"].startswith(name) and chosen["reason"] in blas["cprop"]
        assert blas["library"] == name and blas["reason"] == chosen["reason"]
        assert blas["min_work"] == _mlp.BLAS_MIN_WORK == cprop.mlp._BLAS_MIN_WORK
        assert blas["scipy"] == scipy.__version__
        assert blas["provider"] is None or set(blas["provider"]) == {"name", "version"}
    else:
        assert blas["cprop"] is None
    assert blas["numpy"] is None or set(blas["numpy"]) == {"name", "version"}
    if blas["threadpools"] is not None:
        assert all(pool["num_threads"] >= 1 for pool in blas["threadpools"])


def test_build_section_matches_the_build_record():
    build = config()["build"]
    try:
        from cprop._build_info import BUILD_INFO
    except ImportError:  # a checkout imported without building: said, not guessed
        assert build == {"available": False, "note": build["note"]}
        assert "_build_info.py" in build["note"]
        return
    assert build["available"] is True
    assert build["compiler"] == BUILD_INFO["compiler"] and build["compiler"]
    assert build["compiler_type"] in {"unix", "msvc", "mingw32", "cygwin"}
    assert build["flags"] == BUILD_INFO["compiler_flags"] + BUILD_INFO["extra_compile_args"]
    assert set(BUILD_INFO["extra_compile_args"]) & {"-O3", "/O2"}
    assert "-ffast-math" not in build["flags"] and "-march=native" not in build["flags"]
    assert build["cython_directives"]["freethreading_compatible"] is True
    assert build["cython_version"].split(".")[0] == "3"
    assert BUILD_INFO["openmp"] is False
    assert "cprop._kernels._mlp" in BUILD_INFO["extensions"]


def test_show_config_prints_text_and_json(capsys):
    cprop.show_config()
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"cprop {cprop.__version__}"
    for word in ("build:", "openmp:", "blas:", "dtypes:", "gil_enabled:", "platform:"):
        assert word in out
    assert "float64 float32" in out
    cprop.show_config(json_output=True)
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == cprop.__version__
    assert data["dtypes"] == ["float64", "float32"]


def test_cli_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"cprop {cprop.__version__}\n")
    assert "dtypes:" in out
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == cprop.__version__
    assert data["python"]["free_threaded_build"] is FREE_THREADED


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython (3.14t)")
def test_importing_cprop_keeps_the_gil_off():
    # In a fresh interpreter with no PYTHON_GIL override: an extension module that did not declare
    # freethreading_compatible would turn the GIL back on at import (with a RuntimeWarning).
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    code = (
        "import sys, warnings; warnings.simplefilter('error');"
        "import cprop, cprop._kernels._mlp;"
        "net = cprop.MLP([2, 3, 1], seed=0); net.train_step([[0.1, 0.2]], [[1.0]], lr=0.1);"
        "print(sys._is_gil_enabled())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False", out.stderr
