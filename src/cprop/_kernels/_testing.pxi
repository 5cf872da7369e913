# Kernels exposed for the tests only: the vectorised exp / sigmoid / softmax of _vecmath.h,
# the SGD bound's max |x| and the gradient's division by the batch size.
# (Included into _mlp.pyx: one extension module.)


from cython cimport floating

from cprop._kernels._activations cimport sigmoid_vec, softmax_vec, cprop_exp_row_f, cprop_exp_row_d
from cprop._kernels._layers cimport abs_max, divide_by_count


def max_abs(const floating[::1] values):
    """max |values| (0.0 if empty), NaN if any value is NaN: the vectorised bound of the SGD
    steps (exposed for the tests)."""
    if values.shape[0] == 0:
        return 0.0
    return abs_max(&values[0], values.shape[0])


def divide_in_place(floating[::1] values, Py_ssize_t count):
    """values /= count, as the minibatch gradient is (exposed for the tests)."""
    if count < 1:
        raise ValueError("count must be >= 1")
    if values.shape[0] > 0:
        divide_by_count(&values[0], values.shape[0], count)


def vector_exp(floating[::1] values):
    """values <- exp(values) in place with the vectorised exp of _vecmath.h (exposed for the
    tests)."""
    cdef Py_ssize_t n = values.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            cprop_exp_row_f(&values[0], n)
        else:
            cprop_exp_row_d(&values[0], n)


def vector_sigmoid(floating[::1] values):
    """values <- sigmoid(values) in place with the vector kernel (float64: the BLAS path's; the
    loop paths use libm's exp, see activation_forward) (exposed for the tests)."""
    cdef Py_ssize_t n = values.shape[0]
    if n == 0:
        return
    with nogil:
        sigmoid_vec(&values[0], n)


def vector_softmax(floating[::1] values, bint want_lse=False):
    """values <- softmax(values) in place with the vector kernel; returns the log-sum-exp if
    want_lse, else 0.0 (exposed for the tests)."""
    cdef Py_ssize_t n = values.shape[0]
    cdef double lse
    if n == 0:
        return 0.0
    with nogil:
        lse = softmax_vec(&values[0], n, want_lse)
    return lse
