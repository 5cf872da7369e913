"""How this copy of cprop was built and what it runs on: ``cprop.show_config()`` / ``cprop info``.

The build half comes from ``cprop/_build_info.py``, which ``setup.py`` writes next to the compiled
modules at build time (compiler, flags, Cython and NumPy versions, OpenMP). It is generated, so a
checkout that was never built has none; :func:`config` then says so instead of failing.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import sysconfig
import warnings

__all__ = ["config", "show_config", "openmp_enabled", "format_config"]

_NO_BUILD_INFO = (
    "no build record: cprop/_build_info.py is written by setup.py when the kernels are compiled "
    "(a source checkout used without building, or a build made before it existed, has none)"
)


def _build_info() -> dict | None:
    try:
        from cprop._build_info import BUILD_INFO
    except ImportError:
        return None
    return dict(BUILD_INFO)


def openmp_enabled() -> bool:
    """Whether the kernels were compiled with OpenMP (they are not: no ``prange`` loops)."""
    info = _build_info()
    return bool(info and info.get("openmp"))


def _gil_enabled() -> bool:
    # sys._is_gil_enabled exists from 3.13; before that the GIL is always on.
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_enabled is None else bool(is_enabled())


def _blas_of(module) -> dict | None:
    # NumPy >= 1.26 and SciPy >= 1.11 describe their build as a dict (older ones only print).
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            deps = module.show_config(mode="dicts")["Build Dependencies"]
    except (TypeError, KeyError, AttributeError, ValueError):
        return None
    blas = deps.get("blas") or {}
    return {"name": blas.get("name"), "version": blas.get("version")}


def _threadpools() -> list[dict] | None:
    # Only if threadpoolctl happens to be installed (scikit-learn brings it); never required.
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    # threading_layer: MKL's ("intel", "sequential", ...) or OpenBLAS's ("pthreads", ...).
    keys = ("prefix", "internal_api", "version", "num_threads", "threading_layer")
    return [{k: pool.get(k) for k in keys if pool.get(k) is not None or k != "threading_layer"}
            for pool in threadpool_info()]


def _blas_section(kernels) -> dict:
    from cprop._kernels import _mlp

    import numpy as np

    min_work = getattr(kernels, "BLAS_MIN_WORK", None)
    if min_work is None:  # kernels built without the gemm path
        section = {"cprop": None, "note": "cprop's kernels use their own loops (no BLAS calls)"}
    else:
        import scipy

        chosen = _mlp.blas_library()
        name = {"scipy.linalg.cython_blas": "scipy"}.get(chosen["library"], chosen["library"])
        version = f" {chosen['version']}" if chosen.get("version") else ""
        where = f" {chosen['path']}" if chosen.get("path") else " via scipy.linalg.cython_blas"
        # e.g. "mkl 2026.2.1: auto rule: mkl installed, GenuineIntel CPU (sgemm/dgemm) /.../..."
        cprop_blas = f"{name}{version}: {chosen.get('reason')} (sgemm/dgemm){where}"
        note = ("layer blocks of at least min_work multiply-adds (rows x n_in x n_out) call this "
                "library's gemm, smaller ones cprop's own loops. CPROP_BLAS=auto (the default): "
                "mkl if installed on a GenuineIntel CPU, else scipy-openblas32 if installed, else "
                "SciPy's; CPROP_BLAS=mkl|scipy-openblas32|scipy forces one")
        section = {
            "cprop": cprop_blas,
            "library": name,
            "reason": chosen.get("reason"),
            "min_work": int(min_work),
            "scipy": scipy.__version__,
            "provider": _blas_of(scipy),
            "note": note,
        }
    section["numpy"] = _blas_of(np)
    section["threadpools"] = _threadpools()
    return section


def config() -> dict:
    """cprop's build and runtime configuration as a dict (JSON-serialisable)."""
    import numpy as np

    import cprop
    from cprop._kernels import _mlp
    from cprop._validation import _SUPPORTED_DTYPES

    build = _build_info()
    if build is None:
        build_section = {"available": False, "note": _NO_BUILD_INFO}
    else:
        build_section = {
            "available": True,
            "compiler": build.get("compiler"),
            "compiler_type": build.get("compiler_type"),
            "compiler_version": build.get("compiler_version"),
            "flags": (list(build.get("compiler_flags", []))
                      + list(build.get("extra_compile_args", []))),
            "define_macros": build.get("define_macros", []),
            "cython_version": build.get("cython_version"),
            "cython_directives": build.get("cython_directives", {}),
            "numpy_build_version": build.get("numpy_build_version"),
            "debug_cython": build.get("debug_cython"),
            "msvc_path": build.get("msvc_path"),
        }
    omp = openmp_enabled()
    return {
        "version": cprop.__version__,
        "location": os.path.dirname(os.path.abspath(cprop.__file__)),
        "kernels": os.path.abspath(_mlp.__file__),
        "build": build_section,
        "openmp": {
            "enabled": omp,
            # Threads one call of cprop's own loops uses: without OpenMP, the calling thread.
            "threads": 1,
            "note": "the kernels have no OpenMP (prange) loops: they run on the calling thread "
                    "with the GIL released; only BLAS gemm (wide layers) may use the BLAS "
                    "library's own threads (blas.threadpools; threadpoolctl limits them)",
        },
        "blas": _blas_section(_mlp),
        "simd": {
            # _rows.h / _vecmath.h: the one-sample row kernels, chosen at import from the CPU,
            # and what they were compiled from (_simd.h).
            "row_kernels": f"{_mlp.simd_isa()} ({_mlp.simd_code()})",
            "note": "x86-64 picks AVX2 at run time where the CPU has it, else SSE2 (set "
                    "CPROP_NO_AVX2=1 to force SSE2); both give the same bits. Compiled from "
                    "vector extensions (GCC, Clang) or SSE2/AVX2 intrinsics (MSVC, or a build "
                    "with CPROP_MSVC_PATH=1), with the same bits",
            # _population.h: the lanes kernel of cprop.Population, chosen at import from the CPU
            # and CPROP_ISA (which caps it).
            "population": _mlp.population_isa(),
            "population_sets": list(_mlp.population_isas()),
            "population_note": "the best set this CPU has (scalar, SSE2, AVX2, AVX-512F on "
                               "x86-64; NEON on arm64), capped by CPROP_ISA=scalar|sse2|avx2|"
                               "avx512|neon; every set gives the same bits",
        },
        "dtypes": list(_SUPPORTED_DTYPES),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
            "gil_enabled": _gil_enabled(),
        },
        "platform": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "numpy_version": np.__version__,
    }


def _value(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "-"
    if isinstance(v, list):
        if v and isinstance(v[0], dict):
            return "; ".join(", ".join(f"{k}={x}" for k, x in d.items()) for d in v) or "-"
        return " ".join(str(x) for x in v) or "-"
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items()) or "-"
    return str(v)


def format_config(cfg: dict | None = None) -> str:
    """The text :func:`show_config` prints."""
    cfg = config() if cfg is None else cfg
    lines = [f"cprop {cfg['version']}"]
    for key, value in cfg.items():
        if key == "version":
            continue
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for k, v in value.items():
                lines.append(f"  {k + ':':<22}{_value(v)}")
        else:
            lines.append(f"{key + ':':<24}{_value(value)}")
    return "\n".join(lines)


def show_config(json_output: bool = False) -> None:
    """Print how cprop was built (compiler, flags, OpenMP, BLAS) and what it runs on (Python,
    GIL, platform, supported dtypes). ``json_output=True`` prints one JSON object instead."""
    cfg = config()
    print(json.dumps(cfg, indent=2) if json_output else format_config(cfg))
