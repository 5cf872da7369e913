# The network's scalar formulas for the Cython kernels: thin typed wrappers over _formulas.h,
# where each formula (activation, derivative, softmax, sigmoid, softplus, the SGD value, an
# output row's loss and delta) is written once, for these kernels and for the C ones (_tiny.h)
# alike. Inline, so each kernel compiles them into its own loops (no call through a pointer).
#
# Derivatives are taken from the activation's *output* a = f(z), as backprop has a at hand:
# sigmoid' = a(1 - a), tanh' = 1 - a^2, relu' = [a > 0] (0 at z = 0, as PyTorch),
# leaky_relu' = 1 if a > 0 else slope (slope >= 0, so a > 0 exactly when z > 0), identity' = 1.
# Softmax is row-wise (``activate_row``); its Jacobian is applied in the loss's delta.
# cprop.oracle computes exactly the same expressions, grouped the same way.

from cython cimport floating


cdef extern from "_vecmath.h" nogil:
    # Vectorised, branch-free exp / sigmoid / softmax (see the header): float32 everywhere, and
    # float64 on the BLAS path only (its sums were never the oracle's).
    void cprop_exp_row_f(float* z, Py_ssize_t n)
    void cprop_exp_row_d(double* z, Py_ssize_t n)
    void cprop_sigmoid_row_f(float* z, Py_ssize_t n)
    void cprop_sigmoid_row_d(double* z, Py_ssize_t n)
    double cprop_softmax_row_f(float* z, Py_ssize_t n, int want_lse)
    double cprop_softmax_row_d(double* z, Py_ssize_t n, int want_lse)
    void cprop_softmax_rows_f(float* z, Py_ssize_t rows, Py_ssize_t n, float* lse)
    void cprop_softmax_rows_d(double* z, Py_ssize_t rows, Py_ssize_t n, double* lse)


cdef extern from "_formulas.h" nogil:
    # Each formula once (see the header for what each computes).
    double cprop_loop_softmax_row_d(double* z, Py_ssize_t n, int want_lse)
    double cprop_loop_softmax_row_f(float* z, Py_ssize_t n, int want_lse)
    double cprop_activation_d(int act, double z, double slope)
    float cprop_activation_f(int act, float z, float slope)
    double cprop_activation_derivative_d(int act, double a, double slope)
    float cprop_activation_derivative_f(int act, float a, float slope)
    void cprop_activate_row_d(int act, double* z, Py_ssize_t n, double slope)
    void cprop_activate_row_f(int act, float* z, Py_ssize_t n, float slope)
    void cprop_times_derivative_d(double* d, const double* a, Py_ssize_t n, int act,
                                  double slope)
    void cprop_times_derivative_f(float* d, const float* a, Py_ssize_t n, int act, float slope)
    void cprop_times_derivative_block_d(double* d, const double* a, Py_ssize_t n, int act,
                                        double slope)
    void cprop_times_derivative_block_f(float* d, const float* a, Py_ssize_t n, int act,
                                        float slope)
    double cprop_sgd_value_d(double p, double g, double lr, double alpha)
    float cprop_sgd_value_f(float p, float g, float lr, float alpha)
    double cprop_output_loss_delta_d(int loss, int act, const double* y, const double* z,
                                     const double* t, const double* lse, double* d,
                                     Py_ssize_t n, double slope)
    double cprop_output_loss_delta_f(int loss, int act, const float* y, const float* z,
                                     const float* t, const float* lse, float* d, Py_ssize_t n,
                                     float slope)


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


cdef inline void softmax_rows_vec(floating* z, Py_ssize_t rows, Py_ssize_t n,
                                  floating* lse) noexcept nogil:
    # softmax_vec of each row of a block (row r at z + r n; lse[r] its log-sum-exp unless lse
    # is NULL), narrow rows several at a time (the same bits).
    if floating is float:
        cprop_softmax_rows_f(z, rows, n, lse)
    else:
        cprop_softmax_rows_d(z, rows, n, lse)


cdef inline floating activation(int act, floating z, floating slope) noexcept nogil:
    if floating is float:
        return cprop_activation_f(act, z, slope)
    else:
        return cprop_activation_d(act, z, slope)


cdef inline floating activation_derivative(int act, floating a, floating slope) noexcept nogil:
    # d f(z) / dz written in terms of the output a = f(z) (not for softmax: see the loss's delta).
    if floating is float:
        return cprop_activation_derivative_f(act, a, slope)
    else:
        return cprop_activation_derivative_d(act, a, slope)


cdef inline double softmax_row(floating* z, Py_ssize_t n, bint want_lse) noexcept nogil:
    # One row's softmax, in place, shifted by the row maximum (exact 0/1 limits at +-1000);
    # returns the row's log-sum-exp if want_lse (the cross-entropy reuses it), else 0.
    if floating is float:
        return cprop_loop_softmax_row_f(z, n, want_lse)
    else:
        return cprop_loop_softmax_row_d(z, n, want_lse)


cdef inline void activate_row(int act, floating* z, Py_ssize_t n, floating slope) noexcept nogil:
    # One sample's layer output, in place (any n values for an elementwise activation).
    if floating is float:
        cprop_activate_row_f(act, z, n, slope)
    else:
        cprop_activate_row_d(act, z, n, slope)


cdef inline void times_derivative(
    floating* d, const floating* a, Py_ssize_t n, int act, floating slope,
) noexcept nogil:
    # d[i] <- d[i] * f'(a[i]), f' from the activation's output a (the last step of every delta).
    if floating is float:
        cprop_times_derivative_f(d, a, n, act, slope)
    else:
        cprop_times_derivative_d(d, a, n, act, slope)


cdef inline void times_derivative_block(
    floating* d, const floating* a, Py_ssize_t n, int act, floating slope,
) noexcept nogil:
    # times_derivative over a whole block of a gemm route: the same products, relu's and leaky
    # relu's at the CPU's widest vector width (one call per block, not per row).
    if floating is float:
        cprop_times_derivative_block_f(d, a, n, act, slope)
    else:
        cprop_times_derivative_block_d(d, a, n, act, slope)


cdef inline floating sgd_update(floating p, floating g, floating lr, floating alpha) noexcept nogil:
    # p - lr * g, or p - lr * (g + alpha * p) with L2 alpha (weights): every plain SGD update.
    if floating is float:
        return cprop_sgd_value_f(p, g, lr, alpha)
    else:
        return cprop_sgd_value_d(p, g, lr, alpha)


cdef inline double output_loss_delta(
    int loss, int act, const floating* y, const floating* z, const floating* t,
    const floating* lse, floating* d, Py_ssize_t n, floating slope,
) noexcept nogil:
    # One output row's loss (summed in double) and, if d is not NULL, its delta dE/dz.
    if floating is float:
        return cprop_output_loss_delta_f(loss, act, y, z, t, lse, d, n, slope)
    else:
        return cprop_output_loss_delta_d(loss, act, y, z, t, lse, d, n, slope)
