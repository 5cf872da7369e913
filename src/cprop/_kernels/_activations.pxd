# Single-value activations and their derivatives, inline so that every kernel module that cimports
# this file compiles them into its own loops (no call through a pointer).
#
# Derivatives are taken from the activation's *output* a = f(z), as backprop has a at hand:
# sigmoid' = a(1 - a), tanh' = 1 - a^2, relu' = [a > 0] (0 at z = 0, as PyTorch), identity' = 1.
# cprop.oracle computes exactly the same expressions, grouped the same way.

from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf

from cprop._kernels._types cimport ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU


cdef inline floating sigmoid(floating x) noexcept nogil:
    # Branch on the sign so that exp() only ever sees a non-positive argument: it cannot overflow,
    # and sigmoid(+-1000) and sigmoid(+-1e308) are exactly 1 and 0.
    cdef floating e
    if x >= 0:
        if floating is float:
            e = expf(-x)
        else:
            e = exp(-x)
        return 1 / (1 + e)
    if floating is float:
        e = expf(x)
    else:
        e = exp(x)
    return e / (1 + e)


cdef inline floating activation(int act, floating z) noexcept nogil:
    if act == ACT_SIGMOID:
        return sigmoid(z)
    if act == ACT_TANH:
        if floating is float:
            return tanhf(z)
        else:
            return tanh(z)
    if act == ACT_RELU:
        return z if z > 0 else 0
    return z


cdef inline floating activation_derivative(int act, floating a) noexcept nogil:
    # d f(z) / dz written in terms of the output a = f(z).
    if act == ACT_SIGMOID:
        return a * (1 - a)
    if act == ACT_TANH:
        return 1 - a * a
    if act == ACT_RELU:
        return 1 if a > 0 else 0
    return 1


cdef inline void activate_inplace(int act, floating* z, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    if act == ACT_IDENTITY:
        return
    for j in range(n):
        z[j] = activation(act, z[j])
