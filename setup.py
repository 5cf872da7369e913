"""Build cprop's Cython kernels.

Every ``src/cprop/**/*.pyx`` becomes one extension module, compiled with the directives below.
``CPROP_DEBUG_CYTHON=1`` turns bounds and wraparound checks back on (as scikit-learn's
``SKLEARN_ENABLE_DEBUG_CYTHON_DIRECTIVES`` does) to hunt a memory bug in a debug build.
``CPROP_MSVC_PATH=1`` makes GCC or Clang compile exactly the kernel code MSVC compiles (it defines
the ``CPROP_MSVC_PATH`` macro: the row kernels from SSE2/AVX2 intrinsics instead of the vector
extensions, and the CPU detected with CPUID instead of ``__builtin_cpu_supports``; see
``src/cprop/_kernels/_simd.h``), so that path can be built and tested without Windows. CI runs
its debug build that way; ``cprop info`` shows the path a build has (``simd.row_kernels``).
Portable flags only: no ``-march=native`` and no ``-ffast-math`` (fast-math assumes there are no
inf/NaN, which would break the finiteness checks the kernels rely on).

OpenMP is off, on every platform, on purpose: the kernels have no ``prange`` loops. Parallelism
comes from the caller's threads (every kernel runs with the GIL released, and each network has
its own lock), so there is no libgomp/libomp to vendor into wheels and nothing to opt out of.
(Wide layers call BLAS gemm through ``scipy.linalg.cython_blas``: function pointers from SciPy's
own BLAS at run time, or, when the scipy-openblas32 package is installed, from its library,
loaded with ctypes at import; so nothing BLAS-related is linked here or vendored into cprop's
wheels.)
If a kernel ever gains a ``prange``, pick the flags per compiler in ``build_ext`` below
(``-fopenmp`` for gcc, ``-Xpreprocessor -fopenmp`` + ``-lomp`` for Apple clang, ``/openmp`` for
MSVC) and record ``openmp=True`` in the build info.

Free threading: the modules declare ``freethreading_compatible`` (so importing them does not
turn the GIL back on in a free-threaded CPython). They hold no global mutable state: the
module-level tables are read-only, every buffer belongs to one network, and ``cprop.mlp``
serialises the calls on one network with that network's lock.

The build also writes ``cprop/_build_info.py`` (compiler, flags, versions) next to the compiled
modules, so ``cprop.show_config()`` can say how a wheel was built. It is generated, never
committed (``.gitignore``) and never shipped in the sdist (``MANIFEST.in``).
"""

import os
import pprint
import subprocess
from pathlib import Path

import Cython
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

DEBUG = os.environ.get("CPROP_DEBUG_CYTHON", "0") not in ("", "0")
MSVC_PATH = os.environ.get("CPROP_MSVC_PATH", "0") not in ("", "0")
OPENMP = False  # see the module docstring

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "embedsignature": True,
    "freethreading_compatible": True,
}

HERE = Path(__file__).parent
SRC = HERE / "src"
# -g0 (unless debugging) drops the debug info that Python's own CFLAGS ask for with -g: with it,
# the Linux wheel was four times larger (928 KiB instead of 236 KiB).
# -ffp-contract=off: never fuse a * b + c into an FMA (GCC and Clang do by default where the
# target has FMA, e.g. every aarch64 build), so float64 results stay bit-identical to
# cprop.oracle on every platform. MSVC does not contract without /fp:contract.
# -fno-math-errno: cprop never reads errno, and without the flag every sqrt() carries a branch
# that may set it, which keeps GCC from vectorising the loops that call it (Adam's update: W5's
# optimizer step 2.5x faster with it). The results do not change: sqrt is correctly rounded
# either way, and libm's exp / log are still the functions called.
OPT_FLAGS = ((["-O3", "-ffp-contract=off", "-fno-math-errno"] + ([] if DEBUG else ["-g0"]))
             if os.name != "nt" else ["/O2"])


def extensions():
    exts = []
    for pyx in sorted(SRC.glob("cprop/**/*.pyx")):
        rel = pyx.relative_to(SRC).with_suffix("")
        exts.append(
            Extension(
                ".".join(rel.parts),
                [str(pyx.relative_to(HERE))],
                include_dirs=[np.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")]
                + ([("CPROP_MSVC_PATH", "1")] if MSVC_PATH else []),
                extra_compile_args=OPT_FLAGS,
            )
        )
    return exts


def _compiler_version(command):
    try:
        out = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else None


class build_ext(_build_ext):
    """The stock build_ext, plus a record of how the modules were compiled."""

    def build_extensions(self):
        print("cprop: OpenMP off (no prange loops; threads run the kernels with the GIL released)")
        super().build_extensions()
        self._write_build_info()

    def _build_info_paths(self):
        # Next to the compiled package: the build directory for a wheel, the source tree for an
        # in-place build (get_ext_fullpath knows which); an editable install (PEP 660) builds in
        # the build directory and copies the modules into the source tree, so it gets both.
        paths = [Path(self.get_ext_fullpath(self.extensions[0].name)).parent.parent]
        if getattr(self, "editable_mode", False) and not self.inplace:
            package_dir = self.get_finalized_command("build_py").get_package_dir("cprop")
            paths.append(Path(package_dir))
        return [d / "_build_info.py" for d in paths]

    def _write_build_info(self):
        cc = self.compiler
        if cc.compiler_type == "msvc":
            command = [getattr(cc, "cc", "cl.exe")] + list(getattr(cc, "compile_options", []))
            version = None
        else:
            command = list(getattr(cc, "compiler_so", []) or [])
            version = _compiler_version(command[0]) if command else None
        ext = self.extensions[0]
        info = {
            "compiler_type": cc.compiler_type,
            "compiler": command[0] if command else None,
            "compiler_version": version,
            "compiler_flags": command[1:],
            "extra_compile_args": list(ext.extra_compile_args or []),
            "define_macros": [f"{k}={v}" if v is not None else k for k, v in ext.define_macros],
            "cython_version": Cython.__version__,
            "cython_directives": dict(DIRECTIVES),
            "numpy_build_version": np.__version__,
            "openmp": OPENMP,
            "debug_cython": DEBUG,
            "msvc_path": MSVC_PATH,
            "extensions": [e.name for e in self.extensions],
        }
        for path in self._build_info_paths():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                '"""Generated by setup.py at build time: how the compiled kernels were built."""\n\n'
                f"BUILD_INFO = {pprint.pformat(info, sort_dicts=False)}\n",
                encoding="utf-8",
            )
            print(f"cprop: wrote {path}")

    def get_outputs(self):
        return super().get_outputs() + [str(self._build_info_paths()[0])]


setup(
    cmdclass={"build_ext": build_ext},
    ext_modules=cythonize(
        extensions(),
        compiler_directives=DIRECTIVES,
        include_path=[str(SRC)],
    ),
)
