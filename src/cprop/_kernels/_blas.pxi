# BLAS selection: which library's ``sgemm``/``dgemm`` the wide layers call.
#
# SciPy's own OpenBLAS, through ``scipy.linalg.cython_blas``, always works. When the
# scipy-openblas32 package is installed (the OpenBLAS project's wheels of a newer OpenBLAS, which
# NumPy and SciPy build against; the extra ``cprop[openblas]``), its library is used instead: on the
# test machine its sgemm ran W3's products 8 % faster than SciPy 1.17's bundled OpenBLAS 0.3.30
# (0.148 s against 0.160 s; see bench/README.md). ``CPROP_BLAS=scipy`` forces SciPy's,
# ``CPROP_BLAS=scipy-openblas32`` requires the other. Both are LP64 (32-bit int) Fortran gemm with
# the same signature. The choice is fixed at import (never by timing), so one machine and one
# environment always give one result.
#
# Each ``_mlp.Plan`` copies the two pointers into its ``Layout`` when it is built, so the layer
# kernels (``_layers.pxd``) call gemm through the plan rather than through these globals.
#
# (Included into _mlp.pyx: one extension module.)


from scipy.linalg.cython_blas cimport sgemm as scipy_sgemm, dgemm as scipy_dgemm


cdef sgemm_fn sgemm = scipy_sgemm
cdef dgemm_fn dgemm = scipy_dgemm
_blas = {"library": "scipy.linalg.cython_blas", "version": None, "path": None, "handle": None}


def _use_scipy_openblas32():
    # Point sgemm/dgemm at scipy-openblas32's library, or raise ImportError/OSError/ValueError.
    global sgemm, dgemm
    import ctypes
    import os
    import scipy_openblas32

    lib_dir = scipy_openblas32.get_lib_dir()
    names = sorted(f for f in os.listdir(lib_dir)
                   if f.startswith("libscipy_openblas") and f.endswith((".so", ".dylib", ".dll")))
    if not names:
        raise OSError(f"no libscipy_openblas shared library in {lib_dir}")
    path = os.path.join(lib_dir, names[0])
    handle = ctypes.CDLL(path)
    s_addr = ctypes.cast(handle.scipy_sgemm_, ctypes.c_void_p).value
    d_addr = ctypes.cast(handle.scipy_dgemm_, ctypes.c_void_p).value
    if not s_addr or not d_addr:
        raise ValueError(f"{path} has no scipy_sgemm_/scipy_dgemm_")
    sgemm = <sgemm_fn><size_t>s_addr
    dgemm = <dgemm_fn><size_t>d_addr
    _blas.update(library="scipy-openblas32",
                 version=getattr(scipy_openblas32, "__version__", None), path=path,
                 handle=handle)  # (the handle keeps the library loaded)


def _select_blas():
    import os
    import warnings

    choice = os.environ.get("CPROP_BLAS", "").strip().lower() or "auto"
    if choice not in ("auto", "scipy", "scipy-openblas32"):
        warnings.warn(f"CPROP_BLAS={choice!r} is not one of 'auto', 'scipy', "
                      "'scipy-openblas32'; using 'auto'", RuntimeWarning, stacklevel=2)
        choice = "auto"
    if choice == "scipy":
        return
    try:
        _use_scipy_openblas32()
    except (ImportError, OSError, AttributeError, ValueError) as exc:
        if choice == "scipy-openblas32":
            raise ImportError(f"CPROP_BLAS=scipy-openblas32, but it cannot be used: {exc}") from exc


_select_blas()


def blas_library():
    """Which BLAS the wide layers call: a dict with "library" ("scipy-openblas32" or
    "scipy.linalg.cython_blas"), "version" and "path" (None for SciPy's)."""
    return {k: v for k, v in _blas.items() if k != "handle"}
