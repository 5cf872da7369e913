# Which library's sgemm/dgemm the wide layers call (chosen once, at import, by _blas.pyx).
from cprop._kernels._types cimport sgemm_fn, dgemm_fn

cdef sgemm_fn chosen_sgemm() noexcept nogil
cdef dgemm_fn chosen_dgemm() noexcept nogil
