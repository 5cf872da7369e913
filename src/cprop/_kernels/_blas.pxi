# BLAS selection: which library's ``sgemm``/``dgemm`` the wide layers call.
#
# Three libraries can serve, all as LP64 (32-bit int) Fortran gemm with the same signature:
#
# - "scipy": SciPy's own OpenBLAS, through ``scipy.linalg.cython_blas``; always there.
# - "scipy-openblas32": the scipy-openblas32 package's library (the OpenBLAS project's wheels of
#   a newer OpenBLAS, which NumPy and SciPy build against; the extra ``cprop[openblas]``).
# - "mkl": Intel oneMKL's ``libmkl_rt`` from the ``mkl`` pip package (the extra ``cprop[mkl]``),
#   found through the package's file list (``importlib.metadata.files("mkl")``; it installs into
#   ``sys.prefix/lib``, on Windows ``sys.prefix/Library/bin``), else ``sys.prefix/lib``. Loaded
#   with ctypes; its interface layer is set to LP64 (``MKL_Set_Interface_Layer(0)``, also mkl_rt's
#   default) and checked, so ``sgemm_``/``dgemm_`` take 32-bit ints like the other two.
#
# The rule (``blas_rule``: a pure function of CPROP_BLAS, the installed set and the CPU vendor,
# never of a timing), so one machine and one environment always give one library:
#
#   CPROP_BLAS=scipy | scipy-openblas32 | mkl   that library; if it cannot be loaded, ImportError
#                                               naming what is missing (never a silent fallback)
#   CPROP_BLAS unset, empty or "auto":
#     1. mkl installed and the CPU's vendor is GenuineIntel       -> mkl
#     2. else scipy-openblas32 installed                           -> scipy-openblas32
#     3. else                                                      -> scipy
#     (a library that is installed but fails to load is dropped and the rule applied again; the
#     reason says so)
#   anything else: a RuntimeWarning, then "auto".
#
# Why MKL first on Intel: on the test machine (a 2-core Intel Xeon KVM guest with AVX-512) MKL
# 2026.2 ran W3's five products (batch 64, 784-256-10) 1.3-1.5x faster than both OpenBLAS builds
# at one thread, float64 and float32; at W5's smaller shapes (batch 200, 50-100-3) it was about
# even in float64 (0.95-1.15x run to run) and slower in float32 (see bench/README.md, "Which
# BLAS"). At 2+ BLAS threads the OpenBLAS builds win (MKL runs sequential here, see below).
# Why only on Intel: MKL's fast code paths are chosen by cpuid and the vendor; on other CPUs
# (AMD, VIA, Hygon) it is known to take slower generic paths, and we have no other CPU to measure
# on, so there the OpenBLAS builds keep their place. The vendor comes from /proc/cpuinfo
# (Linux) or platform.processor() (Windows); macOS has no current MKL (and the pip package has no
# macOS wheels), so it never gets there.
#
# MKL's threads: cprop sets MKL's *sequential* threading layer (MKL_Set_Threading_Layer before
# any other call), unless MKL_THREADING_LAYER is set, which is then respected. So MKL's gemm runs
# on the calling thread only: it cannot oversubscribe the cores under scikit-learn's n_jobs,
# joblib threads or cprop's own threads, it loads no OpenMP runtime, and its result does not
# depend on a thread count. Why not MKL's default, Intel OpenMP (libiomp5): in a process that has
# imported PyTorch first (whose libgomp is loaded with RTLD_GLOBAL), MKL's OpenMP calls resolve
# partly to libgomp and, at 2 threads, cprop's W3-sized training gave *wrong* numbers (final loss
# 2.557 instead of 2.398; the same run without torch, or at 1 thread, was right). The GNU layer
# would need a system libgomp.so.1 the wheels do not ship, and binds to whichever libgomp comes
# first. The price: no threaded gemm through MKL; for 2+ BLAS threads on wide layers use
# CPROP_BLAS=scipy-openblas32 (or MKL_THREADING_LAYER=INTEL in a process without PyTorch).
# threadpoolctl lists libmkl_rt (threading_layer "sequential", 1 thread) and threadpool_limits
# works on it (a no-op at 1). cprop sets nothing else process-wide (no MKL_CBWR, no thread
# counts), because other code in the process may share libmkl_rt. Determinism: MKL's gemm gave
# bit-identical results run to run and for every alignment of its arrays on the test machine
# (tests/test_blas_choice.py checks run to run); set MKL_CBWR=COMPATIBLE (or AUTO) yourself for
# MKL's guaranteed conditional reproducibility across machines.
#
# Each ``_mlp.Plan`` copies the two pointers into its ``Layout`` when it is built, so the layer
# kernels (``_layers.pxd``) call gemm through the plan rather than through these globals.
#
# (Included into _mlp.pyx: one extension module.)


from scipy.linalg.cython_blas cimport sgemm as scipy_sgemm, dgemm as scipy_dgemm


cdef sgemm_fn sgemm = scipy_sgemm
cdef dgemm_fn dgemm = scipy_dgemm

# The names CPROP_BLAS accepts; "scipy" is reported as its module, "scipy.linalg.cython_blas".
BLAS_CHOICES = ("auto", "scipy", "scipy-openblas32", "mkl")
_blas = {"library": "scipy.linalg.cython_blas", "version": None, "path": None, "reason": None,
         "handle": None}
# Every library loaded so far (the chosen one, and any the benchmark asked for by name):
# name -> dict(library, version, path, handle, sgemm, dgemm addresses).
_loaded = {}


def blas_rule(requested, installed, vendor):
    """The BLAS choice as a pure function: ``requested`` (CPROP_BLAS's value, None if unset),
    ``installed`` (the names among "mkl", "scipy-openblas32" that are installed; "scipy" always
    is) and ``vendor`` (the CPU's vendor string, e.g. "GenuineIntel", or None) -> (choice, reason),
    choice one of "scipy", "scipy-openblas32", "mkl". A forced choice is returned even if it is
    not installed (loading it then fails clearly); an unknown value is treated as "auto"."""
    value = (requested or "").strip().lower()
    if value in ("scipy", "scipy-openblas32", "mkl"):
        return value, f"CPROP_BLAS={value}"
    prefix = "auto rule"
    if value not in ("", "auto"):
        prefix = f"CPROP_BLAS={value!r} is not a known choice, so the auto rule"
    installed = set(installed)
    intel = vendor == "GenuineIntel"
    if "mkl" in installed and intel:
        return "mkl", f"{prefix}: mkl installed, GenuineIntel CPU"
    mkl_note = ""
    if "mkl" in installed:
        mkl_note = f", mkl installed but the CPU is {vendor or 'of unknown vendor'} (mkl only on " \
                   "GenuineIntel)"
    if "scipy-openblas32" in installed:
        return "scipy-openblas32", f"{prefix}: scipy-openblas32 installed{mkl_note}"
    if mkl_note:
        return "scipy", f"{prefix}: scipy-openblas32 not installed{mkl_note}"
    return "scipy", f"{prefix}: neither mkl nor scipy-openblas32 installed"


def cpu_vendor():
    """The CPU vendor string ("GenuineIntel", "AuthenticAMD", ...) from /proc/cpuinfo (Linux) or
    platform.processor() (Windows, where it ends with the vendor); None if unknown (e.g. arm64,
    macOS). Read, never measured."""
    import platform
    import re

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    found = re.search(r"GenuineIntel|AuthenticAMD|HygonGenuine|CentaurHauls",
                      platform.processor() or "")
    return found.group(0) if found else None


def _mkl_rt_path():
    # libmkl_rt of the installed mkl package (from its RECORD), else one in sys.prefix/lib; None if
    # neither.
    import glob
    import importlib.metadata
    import os
    import sys

    def is_rt(name):  # libmkl_rt.so.3 (Linux), mkl_rt.2.dll (Windows), libmkl_rt.2.dylib
        return (name.startswith("libmkl_rt.so")
                or (name.startswith("libmkl_rt.") and name.endswith(".dylib"))
                or (name.startswith("mkl_rt.") and name.endswith(".dll")))

    try:
        files = importlib.metadata.files("mkl") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if is_rt(os.path.basename(str(f))):
            path = os.path.realpath(str(f.locate()))
            if os.path.isfile(path):
                return path
    if not files:  # the package is not installed: a copy in this environment's lib (conda's)
        for path in sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*"))):
            return os.path.realpath(path)
    return None


def _installed():
    # Which of the optional libraries are installed (without loading them).
    import importlib.util

    found = set()
    if _mkl_rt_path() is not None:
        found.add("mkl")
    try:
        if importlib.util.find_spec("scipy_openblas32") is not None:
            found.add("scipy-openblas32")
    except (ImportError, ValueError):
        pass
    return found


def _load_scipy_openblas32():
    # scipy-openblas32's library, or raise ImportError/OSError/ValueError.
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
    return {"library": "scipy-openblas32",
            "version": getattr(scipy_openblas32, "__version__", None), "path": path,
            "handle": handle, "sgemm": s_addr, "dgemm": d_addr}


# MKL's constants (mkl_service.h).
cdef enum:
    MKL_INTERFACE_LP64 = 0
    MKL_INTERFACE_ILP64 = 1
    MKL_THREADING_SEQUENTIAL = 1


def _load_mkl():
    # libmkl_rt of the mkl package, LP64, or raise ImportError/OSError.
    import ctypes
    import importlib.metadata
    import os
    import sys

    path = _mkl_rt_path()
    if path is None:
        raise ImportError("the mkl package is not installed (pip install mkl, or cprop[mkl]): "
                          "no libmkl_rt in its files or in " + os.path.join(sys.prefix, "lib"))
    if sys.platform == "win32":
        os.add_dll_directory(os.path.dirname(path))  # its libiomp5md.dll, mkl_core.*.dll, ...
    handle = ctypes.CDLL(path)
    # LP64 before any other call (mkl_rt's default, but another user of this libmkl_rt could have
    # chosen ILP64; then gemm_ would take 64-bit ints and the call must not be made).
    handle.MKL_Set_Interface_Layer.restype = ctypes.c_int
    handle.MKL_Set_Interface_Layer.argtypes = [ctypes.c_int]
    layer = handle.MKL_Set_Interface_Layer(MKL_INTERFACE_LP64)
    if layer < 0 or layer & MKL_INTERFACE_ILP64:
        raise ImportError(f"{path}: its interface layer is {layer}, not LP64 (32-bit ints); "
                          "another library in this process set it first")
    if not os.environ.get("MKL_THREADING_LAYER"):
        handle.MKL_Set_Threading_Layer.restype = ctypes.c_int
        handle.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
        handle.MKL_Set_Threading_Layer(MKL_THREADING_SEQUENTIAL)
    s_addr = ctypes.cast(handle.sgemm_, ctypes.c_void_p).value
    d_addr = ctypes.cast(handle.dgemm_, ctypes.c_void_p).value
    if not s_addr or not d_addr:
        raise ImportError(f"{path} has no sgemm_/dgemm_")
    try:
        version = importlib.metadata.version("mkl")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"library": "mkl", "version": version, "path": path, "handle": handle,
            "sgemm": s_addr, "dgemm": d_addr}


def _load(name):
    # The library `name` ("scipy", "scipy-openblas32", "mkl"), loaded once per process.
    if name not in _loaded:
        if name == "scipy":
            _loaded[name] = {"library": "scipy.linalg.cython_blas", "version": None,
                             "path": None, "handle": None, "sgemm": <size_t>scipy_sgemm,
                             "dgemm": <size_t>scipy_dgemm}
        elif name == "scipy-openblas32":
            _loaded[name] = _load_scipy_openblas32()
        elif name == "mkl":
            _loaded[name] = _load_mkl()
        else:
            raise ValueError(f"unknown BLAS {name!r}; expected one of 'scipy', "
                             "'scipy-openblas32', 'mkl'")
    return _loaded[name]


def _select_blas():
    global sgemm, dgemm
    import os
    import warnings

    requested = os.environ.get("CPROP_BLAS")
    value = (requested or "").strip().lower()
    if value not in BLAS_CHOICES + ("",):
        warnings.warn(f"CPROP_BLAS={value!r} is not one of 'auto', 'scipy', "
                      "'scipy-openblas32', 'mkl'; using 'auto'", RuntimeWarning, stacklevel=2)
    installed = _installed()
    vendor = cpu_vendor()
    notes = ""
    while True:
        choice, reason = blas_rule(requested, installed, vendor)
        try:
            lib = _load(choice)
            break
        except (ImportError, OSError, AttributeError, ValueError) as exc:
            if reason.startswith("CPROP_BLAS=") and value == choice:
                raise ImportError(f"CPROP_BLAS={choice}, but it cannot be used: {exc}") from exc
            installed.discard(choice)
            notes += f"; {choice} installed but not loadable ({exc})"
    sgemm = <sgemm_fn><size_t>lib["sgemm"]
    dgemm = <dgemm_fn><size_t>lib["dgemm"]
    _blas.update({k: lib[k] for k in ("library", "version", "path", "handle")})
    _blas["reason"] = reason + notes


_select_blas()


def blas_library():
    """Which BLAS the wide layers call: a dict with "library" ("mkl", "scipy-openblas32" or
    "scipy.linalg.cython_blas"), "version" and "path" (None for SciPy's), and "reason" (why:
    CPROP_BLAS, or the auto rule and what it saw; see blas_rule)."""
    return {k: v for k, v in _blas.items() if k != "handle"}


def blas_libraries():
    """Every BLAS cprop can load here, loaded now (for the benchmark's ceilings): a dict
    name ("scipy", "scipy-openblas32", "mkl") -> blas_library()-like dict, or the error text for
    one that is not installed or cannot be loaded."""
    out = {}
    for name in ("scipy", "scipy-openblas32", "mkl"):
        try:
            lib = _load(name)
        except (ImportError, OSError, AttributeError, ValueError) as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
            continue
        out[name] = {k: lib[k] for k in ("library", "version", "path")}
    return out
