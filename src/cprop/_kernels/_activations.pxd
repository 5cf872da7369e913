# Single-value activations and their derivatives, inline so that every kernel module that cimports
# this file compiles them into its own loops (no call through a pointer).
#
# Derivatives are taken from the activation's *output* a = f(z), as backprop has a at hand:
# sigmoid' = a(1 - a), tanh' = 1 - a^2, relu' = [a > 0] (0 at z = 0, as PyTorch),
# leaky_relu' = 1 if a > 0 else slope (slope >= 0, so a > 0 exactly when z > 0), identity' = 1.
# Softmax is row-wise (``activate_row``); its Jacobian is applied in the loss kernel.
# cprop.oracle computes exactly the same expressions, grouped the same way.

from cython cimport floating
from libc.math cimport exp, expf, log, tanh, tanhf

from cprop._kernels._types cimport (
    ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKY_RELU, ACT_SOFTMAX,
)


cdef extern from "_vecmath.h" nogil:
    # Vectorised, branch-free exp / sigmoid / softmax (see the header): float32 everywhere, and
    # float64 on the BLAS path only. cprop_sigmoid_libm_d: the oracle's float64 sigmoid (libm's
    # exp, so math.exp's bits), without its branch.
    double cprop_sigmoid_libm_d(double x)
    void cprop_exp_row_f(float* z, Py_ssize_t n)
    void cprop_exp_row_d(double* z, Py_ssize_t n)
    void cprop_sigmoid_row_f(float* z, Py_ssize_t n)
    void cprop_sigmoid_row_d(double* z, Py_ssize_t n)
    double cprop_softmax_row_f(float* z, Py_ssize_t n, int want_lse)
    double cprop_softmax_row_d(double* z, Py_ssize_t n, int want_lse)


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating sigmoid(floating x) noexcept nogil:
    # (z >= 0 ? 1 : e) / (1 + e) with e = exp(-|z|): exp() only ever sees a non-positive argument,
    # so it cannot overflow, and sigmoid(+-1000) and sigmoid(+-1e308) are exactly 1 and 0.
    # float32: the vector kernel, on one value (same bits as on a row); float64: libm's exp, the
    # oracle's bits (its two branches exp(-x) for x >= 0 and exp(x) else are both exp(-|x|)).
    if floating is float:
        cprop_sigmoid_row_f(&x, 1)
        return x
    else:
        return cprop_sigmoid_libm_d(x)


cdef inline void sigmoid_vec(floating* z, Py_ssize_t n) noexcept nogil:
    # z <- sigmoid(z) in place with the vector kernels, both dtypes (float64: BLAS path only).
    if floating is float:
        cprop_sigmoid_row_f(z, n)
    else:
        cprop_sigmoid_row_d(z, n)


cdef inline double softmax_vec(floating* z, Py_ssize_t n, bint want_lse) noexcept nogil:
    # softmax_row with the vector exp, both dtypes (float64: BLAS path only).
    if floating is float:
        return cprop_softmax_row_f(z, n, want_lse)
    else:
        return cprop_softmax_row_d(z, n, want_lse)


cdef inline floating activation(int act, floating z, floating slope) noexcept nogil:
    if act == ACT_SIGMOID:
        return sigmoid(z)
    if act == ACT_TANH:
        if floating is float:
            return tanhf(z)
        else:
            return tanh(z)
    if act == ACT_RELU:
        return z if z > 0 else 0
    if act == ACT_LEAKY_RELU:
        return z if z > 0 else slope * z
    return z


cdef inline floating activation_derivative(int act, floating a, floating slope) noexcept nogil:
    # d f(z) / dz written in terms of the output a = f(z) (not for softmax: see output_delta).
    # (<floating>1: a bare 1 - a is compiled as the double 1.0 - a, which made float32 layers
    # compute f' in double and convert back, a scalar loop instead of a vectorised one.)
    if act == ACT_SIGMOID:
        return a * (<floating>1 - a)
    if act == ACT_TANH:
        return <floating>1 - a * a
    if act == ACT_RELU:
        return 1 if a > 0 else 0
    if act == ACT_LEAKY_RELU:
        return 1 if a > 0 else slope
    return 1


cdef inline double softmax_row(floating* z, Py_ssize_t n, bint want_lse) noexcept nogil:
    # One row's softmax, in place; returns the row's log-sum-exp m + log(sum_j exp(z_j - m)) if
    # want_lse (the cross-entropy loss reuses it rather than calling exp() again), else 0.
    # Shift by the row maximum so exp() never overflows: exact 0/1 limits at +-1000.
    # float32: the vector kernel; float64: libm's exp summed in order, the oracle's bits.
    cdef Py_ssize_t j
    cdef double m, s = 0
    if floating is float:
        return cprop_softmax_row_f(z, n, want_lse)
    else:
        m = z[0]
        for j in range(1, n):
            if z[j] > m:
                m = z[j]
        for j in range(n):
            z[j] = exp(z[j] - m)
            s += z[j]
        for j in range(n):
            z[j] = z[j] / s
        return m + log(s) if want_lse else 0.0


cdef inline void activate_row(int act, floating* z, Py_ssize_t n, floating slope) noexcept nogil:
    # One sample's layer output, in place (any n values for an elementwise activation).
    cdef Py_ssize_t j
    if act == ACT_IDENTITY:
        return
    if act == ACT_SOFTMAX:
        softmax_row(z, n, False)
        return
    if act == ACT_SIGMOID:
        if floating is float:
            cprop_sigmoid_row_f(z, n)
        else:
            for j in range(n):
                z[j] = cprop_sigmoid_libm_d(z[j])
        return
    for j in range(n):
        z[j] = activation(act, z[j], slope)
