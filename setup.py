"""Build cprop's Cython kernels.

Every ``src/cprop/**/*.pyx`` becomes one extension module, compiled with the directives below.
``CPROP_DEBUG_CYTHON=1`` turns bounds and wraparound checks back on (as scikit-learn's
``SKLEARN_ENABLE_DEBUG_CYTHON_DIRECTIVES`` does) to hunt a memory bug in a debug build.
Portable flags only: no ``-march=native`` and no ``-ffast-math`` (fast-math assumes there are no
inf/NaN, which would break the finiteness checks the kernels rely on).
"""

import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CPROP_DEBUG_CYTHON", "0") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "embedsignature": True,
}

HERE = Path(__file__).parent
SRC = HERE / "src"


def extensions():
    exts = []
    for pyx in sorted(SRC.glob("cprop/**/*.pyx")):
        rel = pyx.relative_to(SRC).with_suffix("")
        exts.append(
            Extension(
                ".".join(rel.parts),
                [str(pyx.relative_to(HERE))],
                include_dirs=[np.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")],
                extra_compile_args=["-O3"] if os.name != "nt" else ["/O2"],
            )
        )
    return exts


setup(
    ext_modules=cythonize(
        extensions(),
        compiler_directives=DIRECTIVES,
        include_path=[str(SRC)],
    ),
)
