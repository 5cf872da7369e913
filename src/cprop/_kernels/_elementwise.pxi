# Elementwise kernels behind cprop's public helpers: activations of arrays
# (``cprop.activations``), finiteness checks (``cprop._validation``), the generator's shuffle
# (``cprop.validation_split``), and the instruction set in use (``cprop info``).
# (Included into _mlp.pyx: one extension module.)


from cython cimport floating
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from cprop._kernels._types cimport ACT_SIGMOID, ACT_SOFTMAX, ACT_EXP
from cprop._kernels._activations cimport activation, activation_derivative, activate_row
from cprop._kernels._layers cimport all_finite_ptr, cprop_dense_isa
from cprop._kernels._random cimport shuffle_indices


cdef extern from "_simd.h" nogil:
    const char* cprop_dense_code()


def simd_isa():
    """The instruction set of the one-sample row kernels in use: "avx2", "sse2", ..."""
    return cprop_dense_isa().decode("ascii")


def simd_code():
    """What the row kernels were compiled from: "vector extensions" (GCC, Clang), "intrinsics"
    (MSVC, or a CPROP_MSVC_PATH=1 build) or "scalar loops"."""
    return cprop_dense_code().decode("ascii")


def activation_forward(int act, const floating[::1] z, floating[::1] out, double slope=0.01):
    """out[i] <- f(z[i]) for the activation with code `act`."""
    cdef Py_ssize_t i, n = z.shape[0]
    if out.shape[0] < n:
        raise ValueError(f"out has {out.shape[0]} values, expected {n}")
    if act == ACT_SIGMOID or act == ACT_EXP:
        # as the layers compute it (float32: the vector kernel, whole array)
        if n > 0:
            with nogil:
                memcpy(&out[0], &z[0], n * sizeof(floating))
                activate_row(act, &out[0], n, <floating>slope)
        return
    with nogil:
        for i in range(n):
            out[i] = activation(act, z[i], <floating>slope)


def activation_backward(int act, const floating[::1] a, floating[::1] out,
                        double slope=0.01):
    """out[i] <- f'(z[i]), computed from the output a[i] = f(z[i])."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(a.shape[0]):
            out[i] = activation_derivative(act, a[i], <floating>slope)


def all_finite(const floating[::1] values):
    """True if no value is NaN or infinite (one pass, no temporary array, GIL released)."""
    cdef bint ok
    if values.shape[0] == 0:
        return True
    with nogil:
        ok = all_finite_ptr(&values[0], values.shape[0])
    return ok


def all_finite_2d(const floating[:, ::1] values):
    """all_finite for a C-contiguous 2-D array (no reshape needed)."""
    cdef bint ok
    if values.shape[0] == 0 or values.shape[1] == 0:
        return True
    with nogil:
        ok = all_finite_ptr(&values[0, 0], values.shape[0] * values.shape[1])
    return ok


def shuffled_order(uint64_t[::1] rng, Py_ssize_t[::1] order):
    """order <- a fresh Fisher-Yates shuffle of 0 .. n-1 drawn from the generator `rng`."""
    if order.shape[0] == 0:
        return
    with nogil:
        shuffle_indices(&order[0], order.shape[0], &rng[0])


def softmax_rows(const floating[:, ::1] z, floating[:, ::1] out):
    """out[r] <- softmax(z[r]) for every row, max-shifted (no overflow for any finite input)."""
    cdef Py_ssize_t r, n = z.shape[1]
    if n == 0:
        return
    with nogil:
        for r in range(z.shape[0]):
            memcpy(&out[r, 0], &z[r, 0], n * sizeof(floating))
            activate_row(ACT_SOFTMAX, &out[r, 0], n, 0)
