"""Multilayer-perceptron kernels: forward pass, backpropagation, optimizers, whole epochs.

Design (the layering of scikit-learn's ``sklearn/_loss/_loss.pyx.tp``):

(a) ``_activations.pxd``, ``_optimizers.pxd``, ``_random.pxd``: single-value C functions,
    inline, nogil.
(b) Layer kernels, nogil noexcept, over a block of ``rows`` samples stored row-major:
    ``dense_forward``       z = a_in @ W + b, then the activation, in place;
    ``output_delta``        the loss of each sample and delta = dE/dz at the output layer;
    ``backprop_layer``      adds this block's dE/dW and dE/db, and the delta of the layer below.
(c) Network kernels chaining them: ``forward_rows``, ``batch_gradient`` (mean gradient of the
    batch, in blocks of at most ``chunk`` rows so memory stays bounded), ``optimizer_step`` and
    ``train_epoch``, one whole minibatch epoch of ``MLP.fit`` without the GIL.
(d) ``Plan``: the layout as C arrays plus thin ``def`` methods that ``cprop.mlp`` calls once it
    has checked every argument. Kernels trust their inputs: dtypes, C-contiguity, shapes,
    finiteness and non-emptiness are the Python layer's job (with bounds checks off, that
    validation is the memory safety).

Arithmetic order matters: ``cprop.oracle`` performs the same additions in the same order (bias
first, then inputs in index order; samples in batch order, then one division by the count), so
float64 results agree to the last bit or two.
"""

from cython cimport floating
from libc.stdint cimport uint64_t, int64_t
from libc.stdlib cimport malloc, free
from libc.math cimport sqrt, isfinite, log, log1p, fabs, cos, pow, NAN
from libc.string cimport memcpy, memset
from cpython.pyport cimport PY_SSIZE_T_MAX


cdef extern from "Python.h":
    # The same function, declared without Cython's exception check so that a noexcept kernel can
    # call it (with the GIL) and report a raised KeyboardInterrupt through its own return value.
    int check_signals "PyErr_CheckSignals" ()
from cpython.float cimport PyFloat_AS_DOUBLE
cimport numpy as cnp
from scipy.linalg.cython_blas cimport sgemm as scipy_sgemm, dgemm as scipy_dgemm

from cprop._kernels._types cimport (
    Layout, OptConfig,
    ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKY_RELU, ACT_SOFTMAX,
    LOSS_SQUARED_ERROR, LOSS_CROSS_ENTROPY, LOSS_BINARY_CROSS_ENTROPY,
    OPT_SGD, OPT_ADAM, OPT_RPROP,
    INIT_GLOROT_UNIFORM, INIT_GLOROT_NORMAL, INIT_HE_UNIFORM, INIT_HE_NORMAL,
    FIT_OK, FIT_LOSS_NOT_FINITE, FIT_UPDATE_NOT_FINITE,
)
from cprop._kernels._activations cimport (
    exp_, activation, activation_derivative, activate_row, softmax_row, sigmoid_vec, softmax_vec,
    cprop_exp_row_f, cprop_exp_row_d,
)
from cprop._kernels._optimizers cimport sgd_value, adam_value, rprop_value
from cprop._kernels._random cimport uniform01, shuffle_indices


cnp.import_array()
cprop_dense_init()  # picks the row kernels' instruction set (see _dense.h)


# --------------------------------------------------------------------------------------------
# BLAS: which library's sgemm/dgemm the wide layers call
# --------------------------------------------------------------------------------------------
# SciPy's own OpenBLAS, through scipy.linalg.cython_blas, always works. When the scipy-openblas32
# package is installed (the OpenBLAS project's wheels of a newer OpenBLAS, which NumPy and SciPy
# build against; the extra cprop[openblas]), its library is used instead: on the test machine its
# sgemm ran W3's products 8 % faster than SciPy 1.17's bundled OpenBLAS 0.3.30 (0.148 s against
# 0.160 s; see bench/README.md). CPROP_BLAS=scipy forces SciPy's, CPROP_BLAS=scipy-openblas32
# requires the other. Both are LP64 (32-bit int) Fortran gemm with the same signature.
ctypedef void (*sgemm_fn)(char* transa, char* transb, int* m, int* n, int* k, float* alpha,
                          float* a, int* lda, float* b, int* ldb, float* beta, float* c,
                          int* ldc) noexcept nogil
ctypedef void (*dgemm_fn)(char* transa, char* transb, int* m, int* n, int* k, double* alpha,
                          double* a, int* lda, double* b, int* ldb, double* beta, double* c,
                          int* ldc) noexcept nogil

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


def simd_isa():
    """The instruction set of the one-sample row kernels in use: "avx2", "sse2", ..."""
    return cprop_dense_isa().decode("ascii")

ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "sigmoid": ACT_SIGMOID,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
    "leaky_relu": ACT_LEAKY_RELU,
    "softmax": ACT_SOFTMAX,
}
LOSS_CODES = {
    "squared_error": LOSS_SQUARED_ERROR,
    "cross_entropy": LOSS_CROSS_ENTROPY,
    "binary_cross_entropy": LOSS_BINARY_CROSS_ENTROPY,
}
OPTIMIZER_CODES = {"sgd": OPT_SGD, "adam": OPT_ADAM, "rprop": OPT_RPROP}
INIT_CODES = {
    "glorot_uniform": INIT_GLOROT_UNIFORM,
    "glorot_normal": INIT_GLOROT_NORMAL,
    "he_uniform": INIT_HE_UNIFORM,
    "he_normal": INIT_HE_NORMAL,
}
# Why a training step was refused (see train_epoch); 0 means it was applied.
FAILURE_LOSS = FIT_LOSS_NOT_FINITE
FAILURE_UPDATE = FIT_UPDATE_NOT_FINITE

# How many multiply-adds of training work may pass between two checks for Ctrl-C. A check takes
# the GIL (~0.1 us); 2**17 multiply-adds take ~50-100 us, so checks cost < 0.5% and an interrupt
# is seen at the first batch boundary after at most ~0.1 ms of work.
cdef Py_ssize_t SIGNAL_CHECK_WORK = 1 << 17

# The value a kernel's work counter (see poll_signals) is left at when a signal handler raised.
cdef Py_ssize_t INTERRUPTED = -1


cdef inline bint poll_signals(Py_ssize_t* work, Py_ssize_t done) noexcept nogil:
    # Count `done` multiply-adds of work; past SIGNAL_CHECK_WORK, take the GIL and run Python's
    # signal handlers. True (and *work = INTERRUPTED, the exception left set) if one raised -
    # Ctrl-C's KeyboardInterrupt - so the caller stops and reports it. work NULL: never polls.
    cdef int raised
    if work == NULL:
        return False
    work[0] += done
    if work[0] < SIGNAL_CHECK_WORK:
        return False
    work[0] = 0
    with gil:
        raised = check_signals()
    if raised != 0:
        work[0] = INTERRUPTED
        return True
    return False


cdef int raise_interrupt() except -1:
    # Propagate the exception a signal handler left set (see poll_signals).
    return -1

# The largest magnitude an SGD step may bring any value to without checking each one (see
# update_is_safe): far below DBL_MAX (1.8e308) and FLT_MAX (3.4e38).
cdef double SAFE_MAGNITUDE_DOUBLE = 1e300
cdef double SAFE_MAGNITUDE_FLOAT = 1e36

# A layer block with at least this many multiply-adds (rows * n_in * n_out) goes through BLAS
# gemm, smaller ones through the tight loops: gemm's call and packing overhead (~0.3-1 us) only
# pays off from a few thousand multiply-adds (measured in bench/; see README "Performance").
BLAS_MIN_WORK = 4096


# --------------------------------------------------------------------------------------------
# (b) layer kernels
# --------------------------------------------------------------------------------------------

cdef inline void gemm_rowmajor(
    bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
    const floating* A, Py_ssize_t lda, const floating* B, Py_ssize_t ldb, floating beta,
    floating* C, Py_ssize_t ldc,
) noexcept nogil:
    # Row-major C (m x n) = alpha op(A) @ op(B) + beta C through column-major BLAS: a row-major
    # matrix is its transpose in column-major, so compute C^T = op(B)^T op(A)^T by swapping the
    # operands (as scikit-learn's _cython_blas._gemm does); nothing is copied. scipy's signatures
    # lack const, hence the casts.
    cdef char ta = b"T" if trans_b else b"N"
    cdef char tb = b"T" if trans_a else b"N"
    cdef int im = <int>n, i_n = <int>m, ik = <int>k
    cdef int ilda = <int>ldb, ildb = <int>lda, ildc = <int>ldc
    if floating is float:
        sgemm(&ta, &tb, &im, &i_n, &ik, &alpha, <float*>B, &ilda, <float*>A, &ildb, &beta, C,
              &ildc)
    else:
        dgemm(&ta, &tb, &im, &i_n, &ik, &alpha, <double*>B, &ilda, <double*>A, &ildb, &beta, C,
              &ildc)


cdef extern from "_dense.h" nogil:
    # One sample's row kernels, vectorised in C (see the header for why).
    void cprop_dense_init()
    const char* cprop_dense_isa()
    void cprop_net_input_row_d(const double* a, const double* W, const double* b, double* z,
                               Py_ssize_t n_in, Py_ssize_t n_out)
    void cprop_net_input_row_f(const float* a, const float* W, const float* b, float* z,
                               Py_ssize_t n_in, Py_ssize_t n_out)
    void cprop_rank1_sgd_d(double* W, const double* a, const double* d, Py_ssize_t n_in,
                           Py_ssize_t n_out, double lr)
    void cprop_rank1_sgd_f(float* W, const float* a, const float* d, Py_ssize_t n_in,
                           Py_ssize_t n_out, float lr)
    void cprop_rank1_add_d(double* G, const double* a, const double* d, Py_ssize_t n_in,
                           Py_ssize_t n_out)
    void cprop_rank1_add_f(float* G, const float* a, const float* d, Py_ssize_t n_in,
                           Py_ssize_t n_out)
    void cprop_scale_d(double* g, Py_ssize_t n, double c)
    void cprop_scale_f(float* g, Py_ssize_t n, float c)
    void cprop_back_sums_d(const double* W, const double* d, double* s, Py_ssize_t n_in,
                           Py_ssize_t n_out)
    void cprop_back_sums_f(const float* W, const float* d, float* s, Py_ssize_t n_in,
                           Py_ssize_t n_out)
    double cprop_absmax_d(const double* x, Py_ssize_t n)
    double cprop_absmax_f(const float* x, Py_ssize_t n)
    # Tiny layers (at most CPROP_TINY_WIDTH wide), unrolled per shape: see the header.
    Py_ssize_t CPROP_TINY_WIDTH
    int CPROP_ACT_IDENTITY, CPROP_ACT_SIGMOID, CPROP_ACT_TANH, CPROP_ACT_RELU
    int CPROP_ACT_LEAKY_RELU, CPROP_ACT_SOFTMAX
    int CPROP_LOSS_SQUARED_ERROR, CPROP_LOSS_CROSS_ENTROPY, CPROP_LOSS_BINARY_CROSS_ENTROPY
    ctypedef struct cprop_tiny2_config:
        int act_hidden, act_out, loss, train_biases
        double slope, alpha, lr
    Py_ssize_t cprop_tiny2_rows_d(double* W1, double* b1, double* W2, double* b2,
                                  const double* X, const double* T, const Py_ssize_t* order,
                                  Py_ssize_t start, Py_ssize_t end, const cprop_tiny2_config* c,
                                  double* total, double* loss, int* failure, Py_ssize_t n_in,
                                  Py_ssize_t n_hidden, Py_ssize_t n_out)
    int cprop_tiny_net_input_d(const double* a, const double* W, const double* b, double* z,
                               Py_ssize_t n_in, Py_ssize_t n_out)
    int cprop_tiny_net_input_f(const float* a, const float* W, const float* b, float* z,
                               Py_ssize_t n_in, Py_ssize_t n_out)
    int cprop_tiny_back_sums_d(const double* W, const double* d, double* s, Py_ssize_t n_in,
                               Py_ssize_t n_out)
    int cprop_tiny_back_sums_f(const float* W, const float* d, float* s, Py_ssize_t n_in,
                               Py_ssize_t n_out)
    int cprop_tiny_sgd_d(double* W, const double* a, const double* d, Py_ssize_t n_in,
                         Py_ssize_t n_out, double lr, double alpha)
    int cprop_tiny_sgd_f(float* W, const float* a, const float* d, Py_ssize_t n_in,
                         Py_ssize_t n_out, float lr, float alpha)


cdef inline void net_input_row(
    const floating* a, const floating* W, const floating* b, floating* z, Py_ssize_t n_in,
    Py_ssize_t n_out,
) noexcept nogil:
    # z[j] = b[j] + sum_i a[i] W[i, j], terms added in input order i = 0, 1, ... (the oracle's).
    if floating is float:
        cprop_net_input_row_f(a, W, b, z, n_in, n_out)
    else:
        cprop_net_input_row_d(a, W, b, z, n_in, n_out)


cdef inline void rank1_sgd(
    floating* W, const floating* a, const floating* d, Py_ssize_t n_in, Py_ssize_t n_out,
    floating lr,
) noexcept nogil:
    # W[i, j] <- W[i, j] - lr (a[i] d[j]): one sample's plain SGD step on a weight matrix.
    if floating is float:
        cprop_rank1_sgd_f(W, a, d, n_in, n_out, lr)
    else:
        cprop_rank1_sgd_d(W, a, d, n_in, n_out, lr)


cdef inline void rank1_add(
    floating* G, const floating* a, const floating* d, Py_ssize_t n_in, Py_ssize_t n_out,
) noexcept nogil:
    # G[i, j] <- G[i, j] + a[i] d[j]: one sample's term of a weight gradient.
    if floating is float:
        cprop_rank1_add_f(G, a, d, n_in, n_out)
    else:
        cprop_rank1_add_d(G, a, d, n_in, n_out)


cdef inline void times_derivative(
    floating* d, const floating* a, Py_ssize_t n, int act, floating slope,
) noexcept nogil:
    # d[i] <- d[i] * f'(a[i]), f' from the activation's output a (the last step of every delta).
    cdef Py_ssize_t i
    for i in range(n):
        d[i] = d[i] * activation_derivative(act, a[i], slope)


cdef inline void delta_below(
    const floating* W,       # IN  (n_in, n_out) this layer's weights
    const floating* d,       # IN  (n_out,) this layer's delta for one sample
    const floating* a_in,    # IN  (n_in,) the layer below's output a = f(z)
    floating* d_in,          # OUT (n_in,) (W d)_i * f'(a_i): the layer below's delta
    Py_ssize_t n_in, Py_ssize_t n_out, int act_in, floating slope,
) noexcept nogil:
    # (W d)_i, each sum over j in order as the oracle adds (_dense.h, lanes along i), then f'.
    if floating is float:
        cprop_back_sums_f(W, d, d_in, n_in, n_out)
    else:
        cprop_back_sums_d(W, d, d_in, n_in, n_out)
    times_derivative(d_in, a_in, n_in, act_in, slope)


cdef inline void dense_forward(
    const floating* a_in,    # IN  (rows, n_in)
    const floating* W,       # IN  (n_in, n_out)
    const floating* b,       # IN  (n_out,)
    floating* a_out,         # OUT (rows, n_out): z, then f(z) in place
    floating* z_out,         # OUT (rows, n_out) a copy of z before the activation, or NULL
    floating* lse_out,       # OUT (rows,) log-sum-exp of each row's z (softmax only), or NULL
    Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, int act, floating slope, bint use_blas,
) noexcept nogil:
    cdef Py_ssize_t r
    cdef floating* z
    if use_blas:
        # Wide layers: z = b, then z += a_in @ W in one gemm (the sum's order is BLAS's own).
        for r in range(rows):
            memcpy(a_out + r * n_out, b, n_out * sizeof(floating))
        gemm_rowmajor(False, False, rows, n_out, n_in, 1, a_in, n_in, W, n_out, 1, a_out, n_out)
        if z_out != NULL:
            memcpy(z_out, a_out, rows * n_out * sizeof(floating))
        # Never bit-identical to the oracle (BLAS's sums), so both dtypes take the vector exp;
        # the elementwise activations over the whole block at once.
        if lse_out != NULL or act == ACT_SOFTMAX:
            for r in range(rows):
                z = a_out + r * n_out
                if lse_out != NULL:
                    lse_out[r] = softmax_vec(z, n_out, True)
                else:
                    softmax_vec(z, n_out, False)
        elif act == ACT_SIGMOID:
            sigmoid_vec(a_out, rows * n_out)
        else:
            activate_row(act, a_out, rows * n_out, slope)
        return
    for r in range(rows):
        z = a_out + r * n_out
        net_input_row(a_in + r * n_in, W, b, z, n_in, n_out)
        if z_out != NULL:
            memcpy(z_out + r * n_out, z, n_out * sizeof(floating))
        if lse_out != NULL:
            lse_out[r] = softmax_row(z, n_out, True)
        else:
            activate_row(act, z, n_out, slope)


cdef inline double softplus(double z) noexcept nogil:
    # log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|).
    return (z if z > 0 else 0.0) + log1p(exp_(-fabs(z)))


cdef inline double output_delta(
    const Layout* lay,
    const floating* y,       # IN  (rows, n_out) network outputs
    const floating* z,       # IN  (rows, n_out) the output layer's net inputs (logits)
    const floating* T,       # IN  targets, row r at T + row_index(r) * n_out
    const Py_ssize_t* idx,   # IN  sample indices of the rows (NULL: rows start..start+rows-1)
    Py_ssize_t start,
    floating* delta,         # OUT (rows, n_out) dE/dz of each sample; NULL: loss only
    const floating* lse,     # IN  (rows,) the forward pass's log-sum-exp of z, or NULL
    Py_ssize_t rows, double loss_sum,
) noexcept nogil:
    # Returns loss_sum plus each row's loss, added one sample at a time (in double) so that the
    # total does not depend on how a batch is cut into blocks.
    #   squared_error          E = sum_k 1/2 (t_k - y_k)^2; delta = (y - t) * f'(z), or for a
    #                          softmax output delta_k = y_k (g_k - sum_j g_j y_j) with g = y - t
    #   cross_entropy          E = sum_k t_k (logsumexp(z) - z_k) = -sum_k t_k log y_k, from the
    #                          logits so that no log(0) can occur; delta = y - t
    #   binary_cross_entropy   E = sum_k softplus(z_k) - t_k z_k; delta = y - t
    cdef Py_ssize_t r, k, L = lay.n_layers, n_out = lay.sizes[L]
    cdef int act = lay.act[L - 1]
    cdef floating slope = <floating>lay.slope
    cdef const floating* t
    cdef const floating* y_r
    cdef const floating* z_r
    cdef floating* d_r
    cdef floating diff, dot
    cdef double sample_loss, m, s
    for r in range(rows):
        t = T + (idx[start + r] if idx != NULL else start + r) * n_out
        y_r = y + r * n_out
        z_r = z + r * n_out
        d_r = delta + r * n_out if delta != NULL else NULL
        sample_loss = 0.0
        if lay.loss == LOSS_CROSS_ENTROPY and lse != NULL:
            m = lse[r]
            for k in range(n_out):
                sample_loss += t[k] * (m - z_r[k])
        elif lay.loss == LOSS_CROSS_ENTROPY:
            m = z_r[0]
            for k in range(1, n_out):
                if z_r[k] > m:
                    m = z_r[k]
            s = 0.0
            for k in range(n_out):
                s += exp_(<double>z_r[k] - m)
            m = m + log(s)  # logsumexp(z)
            for k in range(n_out):
                sample_loss += t[k] * (m - z_r[k])
        elif lay.loss == LOSS_BINARY_CROSS_ENTROPY:
            for k in range(n_out):
                sample_loss += softplus(z_r[k]) - t[k] * <double>z_r[k]
        else:
            for k in range(n_out):
                diff = t[k] - y_r[k]
                sample_loss += 0.5 * diff * diff
        loss_sum += sample_loss
        if d_r == NULL:
            continue
        if lay.loss != LOSS_SQUARED_ERROR:
            for k in range(n_out):
                d_r[k] = y_r[k] - t[k]
        elif act == ACT_SOFTMAX:
            dot = 0
            for k in range(n_out):
                dot += (y_r[k] - t[k]) * y_r[k]
            for k in range(n_out):
                d_r[k] = y_r[k] * ((y_r[k] - t[k]) - dot)
        else:
            for k in range(n_out):
                d_r[k] = (y_r[k] - t[k]) * activation_derivative(act, y_r[k], slope)
    return loss_sum


cdef inline void backprop_layer(
    const floating* a_in,    # IN  (rows, n_in) this layer's input (the layer below's output)
    const floating* delta,   # IN  (rows, n_out) dE/dz of this layer
    const floating* W,       # IN  (n_in, n_out)
    floating* grad_W,        # IN/OUT (n_in, n_out) += a_in^T @ delta
    floating* grad_b,        # IN/OUT (n_out,)      += column sums of delta
    floating* delta_in,      # OUT (rows, n_in) dE/dz of the layer below, if compute_delta_in
    Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out,
    int act_in, floating slope, bint compute_delta_in, bint use_blas,
) noexcept nogil:
    cdef Py_ssize_t r, i, j
    cdef const floating* d
    if use_blas:
        # grad_W += a_in^T @ delta; delta_in = (delta @ W^T) * f'(a_in); grad_b by rows.
        gemm_rowmajor(True, False, n_in, n_out, rows, 1, a_in, n_in, delta, n_out, 1,
                      grad_W, n_out)
        for r in range(rows):
            d = delta + r * n_out
            for j in range(n_out):
                grad_b[j] += d[j]
        if compute_delta_in:
            gemm_rowmajor(False, True, rows, n_in, n_out, 1, delta, n_out, W, n_out, 0,
                          delta_in, n_in)
            times_derivative(delta_in, a_in, rows * n_in, act_in, slope)
        return
    for r in range(rows):
        d = delta + r * n_out
        rank1_add(grad_W, a_in + r * n_in, d, n_in, n_out)
        for j in range(n_out):
            grad_b[j] += d[j]
        if compute_delta_in:
            delta_below(W, d, a_in + r * n_in, delta_in + r * n_in, n_in, n_out, act_in, slope)


# --------------------------------------------------------------------------------------------
# (c) network kernels
# --------------------------------------------------------------------------------------------

cdef inline void load_rows(
    const Layout* lay, const floating* X, const Py_ssize_t* idx, Py_ssize_t start,
    Py_ssize_t rows, floating* A,
) noexcept nogil:
    # Copy the input rows of this block into the workspace's layer-0 slot (a gather when
    # shuffled), so that every layer reads contiguous rows.
    cdef Py_ssize_t r, n_in = lay.sizes[0]
    if idx == NULL:
        memcpy(A, X + start * n_in, rows * n_in * sizeof(floating))
        return
    for r in range(rows):
        memcpy(A + r * n_in, X + idx[start + r] * n_in, n_in * sizeof(floating))


cdef inline floating* output_lse(const Layout* lay, floating* A, Py_ssize_t rows) noexcept nogil:
    # Where the softmax keeps each row's log-sum-exp for the cross-entropy loss, or NULL. float64
    # only: float32 sums its exp() in float, and the loss wants the double sum (output_delta).
    if floating is double and lay.loss == LOSS_CROSS_ENTROPY:
        return A + rows * lay.a_off[lay.n_layers + 2]
    return NULL


cdef inline void forward_block(
    const Layout* lay, const floating* params, const floating* x_in, floating* A,
    Py_ssize_t rows,
) noexcept nogil:
    # Fills layers 1 .. n_layers of A from the block's inputs x_in (rows, n_in): A's layer-0 slot
    # when gathered by load_rows, or a row of X read in place. The output layer's logits are
    # kept only for the log-losses, the one place that reads them.
    cdef Py_ssize_t l, L = lay.n_layers
    cdef floating* logits = (A + rows * lay.a_off[L + 1]
                             if lay.loss != LOSS_SQUARED_ERROR else NULL)
    for l in range(L):
        dense_forward(
            x_in if l == 0 else A + rows * lay.a_off[l], params + lay.w_off[l],
            params + lay.b_off[l], A + rows * lay.a_off[l + 1],
            logits if l == L - 1 else NULL,
            output_lse(lay, A, rows) if l == L - 1 else NULL,
            rows, lay.sizes[l], lay.sizes[l + 1], lay.act[l], <floating>lay.slope,
            rows * lay.sizes[l] * lay.sizes[l + 1] >= lay.blas_min_work,
        )


cdef void forward_rows(
    const Layout* lay, const floating* params, const floating* X, Py_ssize_t n,
    floating* out, floating* A, Py_ssize_t chunk, Py_ssize_t* work,
) noexcept nogil:
    # Polls for Ctrl-C between blocks (poll_signals): an interrupted call leaves out unfinished.
    cdef Py_ssize_t start, rows, L = lay.n_layers, n_out = lay.sizes[L]
    start = 0
    while start < n:
        rows = min(chunk, n - start)
        load_rows(lay, X, NULL, start, rows, A)
        forward_block(lay, params, A, A, rows)
        memcpy(out + start * n_out, A + rows * lay.a_off[L], rows * n_out * sizeof(floating))
        start += rows
        if poll_signals(work, rows * lay.n_params):
            return


cdef double batch_gradient(
    const Layout* lay, const floating* params, const floating* X, const floating* T,
    const Py_ssize_t* idx, Py_ssize_t start, Py_ssize_t count,
    floating* grad, floating* A, floating* D, Py_ssize_t chunk, bint want_grad,
    Py_ssize_t* work,
) noexcept nogil:
    # Mean loss of rows start .. start+count-1 (through idx if given); if want_grad, grad gets the
    # gradient of that mean loss. Polls for Ctrl-C between blocks (poll_signals; work NULL: no
    # polling). Processed in blocks of `chunk` rows: gradients are sums over
    # samples, so blocks just keep adding, in sample order, before the one division at the end.
    cdef Py_ssize_t l, c0, rows, L = lay.n_layers
    cdef double loss_sum = 0.0
    if want_grad:
        memset(grad, 0, lay.n_params * sizeof(floating))
    c0 = 0
    while c0 < count:
        rows = min(chunk, count - c0)
        load_rows(lay, X, idx, start + c0, rows, A)
        forward_block(lay, params, A, A, rows)
        loss_sum = output_delta(
            lay, A + rows * lay.a_off[L], A + rows * lay.a_off[L + 1], T, idx, start + c0,
            D + rows * lay.a_off[L] if want_grad else NULL, output_lse(lay, A, rows), rows,
            loss_sum,
        )
        if want_grad:
            l = L - 1
            while l >= 0:
                backprop_layer(
                    A + rows * lay.a_off[l], D + rows * lay.a_off[l + 1], params + lay.w_off[l],
                    grad + lay.w_off[l], grad + lay.b_off[l], D + rows * lay.a_off[l],
                    rows, lay.sizes[l], lay.sizes[l + 1],
                    lay.act[l - 1] if l > 0 else ACT_IDENTITY, <floating>lay.slope, l > 0,
                    rows * lay.sizes[l] * lay.sizes[l + 1] >= lay.blas_min_work,
                )
                l -= 1
        c0 += rows
        if poll_signals(work, rows * lay.n_params):
            return NAN  # interrupted: the caller sees *work == INTERRUPTED
    if want_grad and count > 1:  # (g / 1 == g: single-sample SGD skips the divisions)
        divide_by_count(grad, lay.n_params, count)
    return loss_sum / count


cdef inline floating param_value(
    const OptConfig* opt, Py_ssize_t k, Py_ssize_t n, floating p, floating g, floating* state,
    floating lr, floating step_size, floating bc2_sqrt, bint commit,
) noexcept nogil:
    if opt.kind == OPT_ADAM:
        return adam_value(opt, p, g, state + k, state + n + k, step_size, bc2_sqrt, commit)
    if opt.kind == OPT_RPROP:
        return rprop_value(opt, p, g, state + k, state + n + k, commit)
    return sgd_value(opt, p, g, state + k if state != NULL else NULL, lr, commit)


cdef inline bint plain_sgd_step(
    const Layout* lay, const OptConfig* opt, floating* params, floating* grad, floating lr,
    double* p_bound,
) noexcept nogil:
    # SGD without momentum keeps no state. If the step provably cannot overflow (update_is_safe,
    # from max |grad| and p_bound, a bound on max |params| that the caller keeps, or NULL to take
    # it exactly here) it is one unchecked, vectorisable pass. Otherwise the new values overwrite
    # the gradient (scratch from here on) and are copied in only if every one is finite.
    cdef Py_ssize_t l, k, w_end, b_end
    cdef bint finite = True
    cdef floating p_new, alpha = <floating>opt.alpha
    cdef double g_bound = abs_max(grad, lay.n_params)
    cdef double bound = p_bound[0] if p_bound != NULL else abs_max(params, lay.n_params)
    if update_is_safe(bound, g_bound, opt.alpha, lr, floating is float):
        for l in range(lay.n_layers):
            w_end = lay.b_off[l]
            b_end = lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else w_end
            if alpha != 0:
                for k in range(lay.w_off[l], w_end):
                    params[k] = params[k] - lr * (grad[k] + alpha * params[k])
            else:
                for k in range(lay.w_off[l], w_end):
                    params[k] = params[k] - lr * grad[k]
            for k in range(w_end, b_end):
                params[k] = params[k] - lr * grad[k]
        if p_bound != NULL:
            p_bound[0] = bound + lr * (g_bound + opt.alpha * bound)
        return True
    for l in range(lay.n_layers):
        w_end = lay.b_off[l]
        b_end = lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else w_end
        for k in range(lay.w_off[l], w_end):
            p_new = params[k] - lr * (grad[k] + alpha * params[k] if alpha != 0 else grad[k])
            grad[k] = p_new
            finite = finite & isfinite(p_new)
        for k in range(w_end, b_end):
            p_new = params[k] - lr * grad[k]
            grad[k] = p_new
            finite = finite & isfinite(p_new)
    if not finite:
        return False
    for l in range(lay.n_layers):
        b_end = lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else lay.b_off[l]
        memcpy(params + lay.w_off[l], grad + lay.w_off[l],
               (b_end - lay.w_off[l]) * sizeof(floating))
    if p_bound != NULL:
        p_bound[0] = abs_max(params, lay.n_params)
    return True


cdef bint optimizer_step(
    const Layout* lay, const OptConfig* opt, floating* params, floating* grad,
    floating* state, int64_t* step_count, double lr, double* p_bound,
) noexcept nogil:
    # One update of every trained parameter (weights; biases if opt.train_biases) from the mean
    # gradient `grad`, with L2 alpha * W added to the weights' gradient. Two passes: the first
    # only checks that every new value is finite; the second (identical arithmetic) writes the
    # parameters and the optimizer state. Returns False, changing nothing, if a value would be
    # inf/NaN. state: SGD momentum [velocity], Adam [m, v], Rprop [prev grad, step size].
    # p_bound: see plain_sgd_step (the other optimizers check every value and leave it alone).
    cdef Py_ssize_t l, k, w_end, b_end, n = lay.n_params
    cdef int pass_
    cdef bint commit, finite = True
    cdef floating g, p_new, alpha = <floating>opt.alpha
    cdef floating step_size = 0, bc2_sqrt = 0
    cdef double t
    if opt.kind == OPT_SGD and state == NULL:
        if not plain_sgd_step(lay, opt, params, grad, <floating>lr, p_bound):
            return False
        step_count[0] += 1
        return True
    if opt.kind == OPT_ADAM:
        t = <double>(step_count[0] + 1)
        # libc pow, not `**`: Cython 3 compiles double ** double as a complex power (cpow),
        # which differs from beta ** t (torch, the oracle) in the last bit at some t.
        step_size = <floating>(lr / (1.0 - pow(opt.beta1, t)))
        bc2_sqrt = <floating>sqrt(1.0 - pow(opt.beta2, t))
    for pass_ in range(2):
        commit = pass_ == 1
        for l in range(lay.n_layers):
            w_end = lay.b_off[l]
            b_end = lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else w_end
            for k in range(lay.w_off[l], b_end):
                g = grad[k]
                if k < w_end and alpha != 0:
                    g = g + alpha * params[k]
                p_new = param_value(opt, k, n, params[k], g, state, <floating>lr, step_size,
                                    bc2_sqrt, commit)
                if commit:
                    params[k] = p_new
                else:
                    finite = finite & isfinite(p_new)
        if not finite:
            return False
    step_count[0] += 1
    return True


cdef inline void divide_by_count(floating* g, Py_ssize_t n, Py_ssize_t count) noexcept nogil:
    # g[k] = g[k] / count, vectorised; a multiplication where count is a power of two (the same
    # bits, see _dense.h).
    if floating is float:
        cprop_scale_f(g, n, <float>count)
    else:
        cprop_scale_d(g, n, <double>count)


cdef inline double abs_max(const floating* x, Py_ssize_t n) noexcept nogil:
    # max |x_i| (0 when n = 0), or NaN if any x_i is NaN, so that a bound built on it fails
    # every `<=` test of update_is_safe; vectorised (_dense.h).
    if floating is float:
        return cprop_absmax_f(x, n)
    else:
        return cprop_absmax_d(x, n)


cdef inline bint update_is_safe(double p_bound, double g_bound, double alpha, double lr,
                                bint single) noexcept nogil:
    # True if w - lr * (g + alpha * w) cannot overflow for any |w| <= p_bound and |g| <= g_bound
    # (nor any of its partial results), so that an SGD step may skip checking each new value.
    # The limit is far below DBL_MAX / FLT_MAX (x 1e8 / x 340), so the rounding of this bound's
    # own arithmetic cannot matter. NaN bounds fail every comparison.
    cdef double limit = SAFE_MAGNITUDE_FLOAT if single else SAFE_MAGNITUDE_DOUBLE
    cdef double inc = g_bound + alpha * p_bound
    return (p_bound <= limit and g_bound <= limit and inc <= limit and lr * inc <= limit
            and p_bound + lr * inc <= limit)


cdef int single_row_sgd_step(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, const Py_ssize_t* order, Py_ssize_t start, floating* A, floating* D,
    floating* backup, floating lr, double* batch_loss, double* p_bound,
) noexcept nogil:
    # Stateless SGD on a one-row batch, fused: the gradient of one sample is a_i * delta_j
    # exactly (0 + a_i d_j), so each weight is updated straight from the activations and
    # deltas - the same numbers as batch_gradient + plain_sgd_step, without clearing, filling
    # and re-reading a gradient buffer. The input row is read in place (no copy).
    #
    # A step whose new values are not all finite is refused whole, as everywhere else. Checking
    # every new value would keep the update loops scalar, so instead: p_bound bounds max |params|
    # (kept by train_epoch), and if max|a_i| max|d_j| + alpha p_bound cannot take any value past
    # SAFE_MAGNITUDE the loops run unchecked; otherwise (in practice: only on the way to a
    # divergence) the old parameters are backed up, every value checked, and restored on failure.
    cdef Py_ssize_t l, i, j, L = lay.n_layers, n_in, n_out
    cdef bint finite = True, safe
    cdef floating a_i, s, p_new, alpha = <floating>opt.alpha
    cdef floating slope = <floating>lay.slope
    cdef double g_bound = 0.0, term
    cdef floating* W
    cdef floating* b
    cdef floating* w_row
    cdef const floating* a_in
    cdef const floating* d
    cdef floating* d_in
    cdef const floating* x = X + order[start] * lay.sizes[0]
    forward_block(lay, params, x, A, 1)
    batch_loss[0] = output_delta(lay, A + lay.a_off[L], A + lay.a_off[L + 1], T, order, start,
                                 D + lay.a_off[L], output_lse(lay, A, 1), 1, 0.0)
    if not isfinite(batch_loss[0]):
        return FIT_LOSS_NOT_FINITE
    # Every layer's delta first, each from the weights above it before their update.
    l = L - 1
    while l > 0:
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        W = params + lay.w_off[l]
        a_in = A + lay.a_off[l]
        d = D + lay.a_off[l + 1]
        delta_below(W, d, a_in, D + lay.a_off[l], n_in, n_out, lay.act[l - 1], slope)
        l -= 1
    # A bound on every gradient term a_i d_j (biases: a = 1).
    for l in range(L):
        a_in = x if l == 0 else A + lay.a_off[l]
        term = abs_max(a_in, lay.sizes[l])
        if term < 1.0:
            term = 1.0
        term = term * abs_max(D + lay.a_off[l + 1], lay.sizes[l + 1])
        if term > g_bound or term != term:
            g_bound = term
    safe = update_is_safe(p_bound[0], g_bound, opt.alpha, lr, floating is float)
    if not safe:
        memcpy(backup, params, lay.n_params * sizeof(floating))
    for l in range(L):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        W = params + lay.w_off[l]
        b = params + lay.b_off[l]
        a_in = x if l == 0 else A + lay.a_off[l]
        d = D + lay.a_off[l + 1]
        if safe:
            if alpha != 0:
                for i in range(n_in):
                    a_i = a_in[i]
                    w_row = W + i * n_out
                    for j in range(n_out):
                        w_row[j] = w_row[j] - lr * (a_i * d[j] + alpha * w_row[j])
            else:
                rank1_sgd(W, a_in, d, n_in, n_out, lr)
            if opt.train_biases:
                for j in range(n_out):
                    b[j] = b[j] - lr * d[j]
            continue
        for i in range(n_in):
            a_i = a_in[i]
            w_row = W + i * n_out
            for j in range(n_out):
                if alpha != 0:
                    p_new = w_row[j] - lr * (a_i * d[j] + alpha * w_row[j])
                else:
                    p_new = w_row[j] - lr * (a_i * d[j])
                w_row[j] = p_new
                finite = finite & isfinite(p_new)
        if opt.train_biases:
            for j in range(n_out):
                p_new = b[j] - lr * d[j]
                b[j] = p_new
                finite = finite & isfinite(p_new)
    if safe:
        p_bound[0] = p_bound[0] + lr * (g_bound + opt.alpha * p_bound[0])
        return FIT_OK
    if not finite:
        memcpy(params, backup, lay.n_params * sizeof(floating))
    p_bound[0] = abs_max(params, lay.n_params)
    return FIT_OK if finite else FIT_UPDATE_NOT_FINITE


cdef Py_ssize_t TINY_ROWS_PER_CALL = 4096  # one-row steps per call of cprop_tiny2_rows_d


# _dense.h's whole-step tiny kernel spells the activation and loss codes as macros: they must be
# _types.pxd's.
if ((CPROP_ACT_IDENTITY, CPROP_ACT_SIGMOID, CPROP_ACT_TANH, CPROP_ACT_RELU, CPROP_ACT_LEAKY_RELU,
     CPROP_ACT_SOFTMAX, CPROP_LOSS_SQUARED_ERROR, CPROP_LOSS_CROSS_ENTROPY,
     CPROP_LOSS_BINARY_CROSS_ENTROPY)
        != (ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKY_RELU, ACT_SOFTMAX,
            LOSS_SQUARED_ERROR, LOSS_CROSS_ENTROPY, LOSS_BINARY_CROSS_ENTROPY)):
    raise ImportError("cprop: _dense.h's activation/loss codes differ from _types.pxd's")


cdef bint tiny_network(const Layout* lay) noexcept nogil:
    # Every layer (inputs included) at most CPROP_TINY_WIDTH wide.
    cdef Py_ssize_t l
    for l in range(lay.n_layers + 1):
        if lay.sizes[l] > CPROP_TINY_WIDTH:
            return False
    return True


cdef int tiny_sgd_step(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, const Py_ssize_t* order, Py_ssize_t start, floating* A, floating* D,
    floating* backup, floating lr, double* batch_loss,
) noexcept nogil:
    # single_row_sgd_step for a network whose layers are all at most CPROP_TINY_WIDTH wide (the
    # worked example's 2-2-2): the same operations in the same order, so the same bits, with the
    # dense parts unrolled per shape (_dense.h's cprop_tiny_*). At these widths the vector row
    # kernels run only their scalar tails, and their calls, the per-layer magnitude bound and
    # loop set-up cost more than the arithmetic (callgrind, 2-2-2: 1,430 instructions per step,
    # against ~430 in a C loop written for that one shape). Instead of the bound, every new
    # value is checked (a few compares at this size) and the old parameters, kept beforehand,
    # are put back if any is not finite: the step is refused whole, as elsewhere.
    cdef Py_ssize_t l, j, L = lay.n_layers, n_in, n_out
    cdef bint finite = True
    cdef floating alpha = <floating>opt.alpha, slope = <floating>lay.slope
    cdef floating* b
    cdef const floating* a_in
    cdef floating* d
    cdef floating* z
    cdef floating* logits = A + lay.a_off[L + 1] if lay.loss != LOSS_SQUARED_ERROR else NULL
    cdef floating* lse = output_lse(lay, A, 1)
    cdef const floating* x = X + order[start] * lay.sizes[0]
    # Forward, as dense_forward's loop path.
    for l in range(L):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        z = A + lay.a_off[l + 1]
        if floating is float:
            cprop_tiny_net_input_f(x if l == 0 else A + lay.a_off[l], params + lay.w_off[l],
                                   params + lay.b_off[l], z, n_in, n_out)
        else:
            cprop_tiny_net_input_d(x if l == 0 else A + lay.a_off[l], params + lay.w_off[l],
                                   params + lay.b_off[l], z, n_in, n_out)
        if l == L - 1:
            if logits != NULL:
                for j in range(n_out):
                    logits[j] = z[j]
            if lse != NULL:
                lse[0] = softmax_row(z, n_out, True)
                continue
        activate_row(lay.act[l], z, n_out, slope)
    batch_loss[0] = output_delta(lay, A + lay.a_off[L], A + lay.a_off[L + 1], T, order, start,
                                 D + lay.a_off[L], lse, 1, 0.0)
    if not isfinite(batch_loss[0]):
        return FIT_LOSS_NOT_FINITE
    # Every layer's delta, from the weights before the update (delta_below's sums, then f').
    l = L - 1
    while l > 0:
        n_in = lay.sizes[l]
        d = D + lay.a_off[l]
        if floating is float:
            cprop_tiny_back_sums_f(params + lay.w_off[l], D + lay.a_off[l + 1], d, n_in,
                                   lay.sizes[l + 1])
        else:
            cprop_tiny_back_sums_d(params + lay.w_off[l], D + lay.a_off[l + 1], d, n_in,
                                   lay.sizes[l + 1])
        times_derivative(d, A + lay.a_off[l], n_in, lay.act[l - 1], slope)
        l -= 1
    # The update, in place, every new value checked.
    memcpy(backup, params, lay.n_params * sizeof(floating))
    for l in range(L):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        a_in = x if l == 0 else A + lay.a_off[l]
        d = D + lay.a_off[l + 1]
        if floating is float:
            finite &= cprop_tiny_sgd_f(params + lay.w_off[l], a_in, d, n_in, n_out, lr, alpha)
        else:
            finite &= cprop_tiny_sgd_d(params + lay.w_off[l], a_in, d, n_in, n_out, lr, alpha)
        if opt.train_biases:
            b = params + lay.b_off[l]
            for j in range(n_out):
                b[j] = b[j] - lr * d[j]
                finite &= isfinite(b[j])
    if not finite:
        memcpy(params, backup, lay.n_params * sizeof(floating))
        return FIT_UPDATE_NOT_FINITE
    return FIT_OK


cdef int batch_step(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, Py_ssize_t rows, floating* grad, floating* A, floating* D,
    Py_ssize_t chunk, floating* state, int64_t* step_count, double lr, double* loss,
    Py_ssize_t* work,
) noexcept nogil:
    # One optimizer step on the batch (X, T), what train_step does (Plan.train_step and
    # FastStep alike): loss[0] gets the mean loss before it. Returns FIT_OK, or why the step was
    # refused (nothing applied); interrupted (*work == INTERRUPTED): nothing applied either.
    loss[0] = batch_gradient(lay, params, X, T, NULL, 0, rows, grad, A, D, chunk, True, work)
    if work[0] == INTERRUPTED:
        return FIT_OK
    if not isfinite(loss[0]):
        return FIT_LOSS_NOT_FINITE
    if not optimizer_step(lay, opt, params, grad, state, step_count, lr, NULL):
        return FIT_UPDATE_NOT_FINITE
    return FIT_OK


cdef int FUSED_FALLBACK = 3  # fused_sgd_batch could not prove the step safe: take the checked path


cdef bint fused_sgd_applies(const Layout* lay, Py_ssize_t rows) noexcept nogil:
    # Every layer of a `rows`-row block goes through BLAS gemm (the fused step's update is one).
    cdef Py_ssize_t l
    for l in range(lay.n_layers):
        if rows * lay.sizes[l] * lay.sizes[l + 1] < lay.blas_min_work:
            return False
    return True


cdef int fused_sgd_batch(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, const Py_ssize_t* order, Py_ssize_t start, Py_ssize_t count,
    floating* A, floating* D, floating* grad, floating lr, double* batch_loss, double* p_bound,
    bint in_order,
) noexcept nogil:
    # Plain SGD on a minibatch of `count` rows (one block, every layer through BLAS) with the
    # update folded into the weight-gradient gemm: W <- (1 - lr alpha) W - (lr / count) A^T D,
    # so the gradient is never written, zeroed, divided, bounded and re-read (five passes over
    # the parameters, which capped wide layers at ~80 % of the GEMM rate).
    #
    # Every delta is computed first, from the weights before the update. The update cannot be
    # undone, so before any of it is applied an a-priori bound, |(A^T D)_ij| / count <=
    # sum_r max|a_r| max|d_r| / count (biases: a = 1), must prove no value can overflow
    # (update_is_safe); otherwise FUSED_FALLBACK and the caller runs the checked path. The
    # numbers differ from batch_gradient + plain_sgd_step only in rounding (gemm already sums in
    # its own order). in_order (no shuffle: order is the identity): the input rows are read in
    # place, not copied into the workspace.
    cdef Py_ssize_t l, r, j, L = lay.n_layers, n_in, n_out, rows = count
    cdef double g_bound = 0.0, s, am
    cdef floating scale_w
    cdef floating* W
    cdef floating* b
    cdef const floating* a
    cdef floating* d
    cdef const floating* x0 = X + start * lay.sizes[0]
    if not in_order:
        load_rows(lay, X, order, start, rows, A)
        x0 = A
    forward_block(lay, params, x0, A, rows)
    batch_loss[0] = output_delta(
        lay, A + rows * lay.a_off[L], A + rows * lay.a_off[L + 1], T, order, start,
        D + rows * lay.a_off[L], output_lse(lay, A, rows), rows, 0.0) / count
    if not isfinite(batch_loss[0]):
        return FIT_LOSS_NOT_FINITE
    l = L - 1
    while l > 0:
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        gemm_rowmajor(False, True, rows, n_in, n_out, 1, D + rows * lay.a_off[l + 1], n_out,
                      params + lay.w_off[l], n_out, 0, D + rows * lay.a_off[l], n_in)
        times_derivative(D + rows * lay.a_off[l], A + rows * lay.a_off[l], rows * n_in,
                         lay.act[l - 1], <floating>lay.slope)
        l -= 1
    for l in range(L):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        a = x0 if l == 0 else A + rows * lay.a_off[l]
        d = D + rows * lay.a_off[l + 1]
        s = 0.0
        for r in range(rows):
            am = abs_max(a + r * n_in, n_in)
            if am < 1.0:
                am = 1.0
            s += am * abs_max(d + r * n_out, n_out)  # NaN stays NaN
        s = s / count
        if s > g_bound or s != s:
            g_bound = s
    if not update_is_safe(p_bound[0], g_bound, opt.alpha, lr, floating is float):
        return FUSED_FALLBACK
    scale_w = <floating>(1.0 - <double>lr * opt.alpha)
    for l in range(L):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        W = params + lay.w_off[l]
        b = params + lay.b_off[l]
        a = x0 if l == 0 else A + rows * lay.a_off[l]
        d = D + rows * lay.a_off[l + 1]
        gemm_rowmajor(True, False, n_in, n_out, rows, -lr / <floating>count, a, n_in, d, n_out,
                      scale_w, W, n_out)
        if opt.train_biases:
            # Column sums of d, row after row (each column still adds its rows in order, the
            # same bits as a sum down each column) so that the loop runs along contiguous
            # memory and vectorises; `grad` is free scratch here (the fused step writes none).
            memset(grad, 0, n_out * sizeof(floating))
            for r in range(rows):
                for j in range(n_out):
                    grad[j] = grad[j] + d[r * n_out + j]
            for j in range(n_out):
                b[j] = b[j] - lr * (grad[j] / <floating>count)
    p_bound[0] = p_bound[0] + lr * (g_bound + opt.alpha * p_bound[0])
    return FIT_OK


cdef int train_epoch(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, Py_ssize_t n, double lr, Py_ssize_t batch_size, bint shuffle,
    uint64_t* rng, Py_ssize_t* order, floating* grad, floating* A, floating* D,
    Py_ssize_t chunk, floating* state, int64_t* step_count, double* epoch_loss,
    double* batch_loss,
) except -1 nogil:
    # One epoch of MLP.fit: minibatches of `batch_size` rows in epoch order (a fresh shuffle if
    # `shuffle`), each a step along the gradient of its own mean loss. epoch_loss gets the mean
    # over samples of the losses computed during the epoch (each batch's mean loss before its
    # update, weighted by the batch's size). Returns FIT_OK, or why a step was refused (then
    # batch_loss holds that batch's loss and the step is not applied). Raises KeyboardInterrupt
    # between two steps when Ctrl-C is pressed: params hold the last completed step's result.
    cdef Py_ssize_t start, count, k, end
    cdef Py_ssize_t work = 0
    cdef Py_ssize_t work_per_sample = lay.n_params + 1
    cdef double total = 0.0
    # An upper bound on max |params| for the unchecked SGD updates (see update_is_safe): taken
    # exactly here, then grown by each step's largest possible change.
    cdef double p_bound = abs_max(params, lay.n_params)
    cdef bint p_bound_stale = False
    cdef bint tiny = tiny_network(lay)
    cdef cprop_tiny2_config tiny2
    cdef int failure
    tiny2.act_hidden = lay.act[0]
    tiny2.act_out = lay.act[lay.n_layers - 1]
    tiny2.loss = lay.loss
    tiny2.train_biases = opt.train_biases
    tiny2.slope = lay.slope
    tiny2.alpha = opt.alpha
    tiny2.lr = lr
    if shuffle:
        shuffle_indices(order, n, rng)
    else:
        for k in range(n):
            order[k] = k
    start = 0
    while start < n:
        count = min(batch_size, n - start)
        if count == 1 and opt.kind == OPT_SGD and state == NULL and tiny:
            p_bound_stale = True
            if floating is double and lay.n_layers == 2:
                # One hidden layer: _dense.h's whole-step kernel, over a run of one-row batches
                # (all of them up to the next signal poll when batch_size is 1).
                end = start + 1 if batch_size > 1 else min(n, start + TINY_ROWS_PER_CALL)
                failure = FIT_OK
                k = cprop_tiny2_rows_d(
                    params + lay.w_off[0], params + lay.b_off[0], params + lay.w_off[1],
                    params + lay.b_off[1], X, T, order, start, end, &tiny2, &total, batch_loss,
                    &failure, lay.sizes[0], lay.sizes[1], lay.sizes[2])
                step_count[0] += k - start
                if k < end:
                    return failure
                if poll_signals(&work, (end - start) * work_per_sample):
                    return -1
                start = end
                continue
            failure = tiny_sgd_step(lay, opt, params, X, T, order, start, A, D, grad,
                                    <floating>tiny2.lr, batch_loss)
            if failure != FIT_OK:
                return failure
            step_count[0] += 1
            total += batch_loss[0]
            start += 1
            if poll_signals(&work, work_per_sample):
                return -1
            continue
        if p_bound_stale:  # (the tiny steps keep no bound: take it exactly again)
            p_bound = abs_max(params, lay.n_params)
            p_bound_stale = False
        if count == 1 and opt.kind == OPT_SGD and state == NULL:
            failure = single_row_sgd_step(lay, opt, params, X, T, order, start, A, D, grad,
                                          <floating>lr, batch_loss, &p_bound)
            if failure != FIT_OK:
                return failure
            step_count[0] += 1
            total += batch_loss[0]
            start += 1
            if poll_signals(&work, work_per_sample):
                return -1
            continue
        if (opt.kind == OPT_SGD and state == NULL and count <= chunk
                and fused_sgd_applies(lay, count)):
            failure = fused_sgd_batch(lay, opt, params, X, T, order, start, count, A, D,
                                      grad, <floating>lr, batch_loss, &p_bound, not shuffle)
            if failure == FIT_OK:
                step_count[0] += 1
                total += batch_loss[0] * count
                start += count
                if poll_signals(&work, count * work_per_sample):
                    return -1
                continue
            if failure != FUSED_FALLBACK:
                return failure
        # (polls between its blocks of rows, so a large batch is interrupted part-way, before
        # its update: params keep the last completed step)
        batch_loss[0] = batch_gradient(lay, params, X, T, order, start, count, grad, A, D,
                                       chunk, True, &work)
        if work == INTERRUPTED:
            return -1
        if not isfinite(batch_loss[0]):
            return FIT_LOSS_NOT_FINITE
        if not optimizer_step(lay, opt, params, grad, state, step_count, lr, &p_bound):
            return FIT_UPDATE_NOT_FINITE
        total += batch_loss[0] * count
        start += count
    epoch_loss[0] = total / n
    return FIT_OK


# --------------------------------------------------------------------------------------------
# (d) Python entry points
# --------------------------------------------------------------------------------------------

cdef OptConfig make_opt_config(tuple options):
    # (kind, momentum, nesterov, beta1, beta2, eps, alpha, eta_minus, eta_plus, step_min,
    #  step_max, train_biases), as cprop.optimizers.kernel_options builds it.
    cdef OptConfig opt
    (opt.kind, opt.momentum, opt.nesterov, opt.beta1, opt.beta2, opt.eps, opt.alpha,
     opt.eta_minus, opt.eta_plus, opt.step_min, opt.step_max, opt.train_biases) = options
    return opt


cdef class Plan:
    """The C-level layout of one network (widths, parameter offsets, activation codes).

    Built once per :class:`cprop.MLP`; its methods take the network's flat ``params`` buffer and
    preallocated outputs/workspaces, all already validated by :mod:`cprop.mlp`. A workspace for
    blocks of ``rows`` samples holds ``rows * total_width`` values.
    """

    cdef Layout lay
    cdef Py_ssize_t* _ints
    cdef int* _acts
    cdef readonly Py_ssize_t n_params
    cdef readonly Py_ssize_t total_width

    def __cinit__(self, sizes, activations, int loss, double slope=0.01,
                  Py_ssize_t blas_min_work=BLAS_MIN_WORK):
        cdef Py_ssize_t L = len(sizes) - 1, l, offset
        if L < 1 or len(activations) != L:
            raise ValueError("Plan needs len(sizes) >= 2 and one activation per layer")
        self._ints = <Py_ssize_t*>malloc((4 * L + 5) * sizeof(Py_ssize_t))
        self._acts = <int*>malloc(L * sizeof(int))
        if self._ints == NULL or self._acts == NULL:
            raise MemoryError()
        self.lay.n_layers = L
        self.lay.sizes = self._ints
        self.lay.w_off = self._ints + (L + 1)
        self.lay.b_off = self._ints + (2 * L + 1)
        self.lay.a_off = self._ints + (3 * L + 1)
        self.lay.act = self._acts
        self.lay.loss = loss
        self.lay.slope = slope
        # BLAS takes int dimensions: layers wider than that stay on the loops.
        self.lay.blas_min_work = blas_min_work
        for l in range(L + 1):
            if sizes[l] >= 2**31 - 1:
                self.lay.blas_min_work = PY_SSIZE_T_MAX
        for l in range(L + 1):
            self.lay.sizes[l] = sizes[l]
        offset = 0
        self.lay.a_off[0] = 0
        for l in range(L):
            self.lay.w_off[l] = offset
            offset += sizes[l] * sizes[l + 1]
            self.lay.b_off[l] = offset
            offset += sizes[l + 1]
            self.lay.act[l] = activations[l]
            self.lay.a_off[l + 1] = self.lay.a_off[l] + sizes[l]
        self.lay.a_off[L + 1] = self.lay.a_off[L] + sizes[L]       # output logits
        self.lay.a_off[L + 2] = self.lay.a_off[L + 1] + sizes[L]   # log-sum-exp of the logits
        self.lay.a_off[L + 3] = self.lay.a_off[L + 2] + 1          # total width
        self.lay.n_params = offset
        self.n_params = offset
        self.total_width = self.lay.a_off[L + 3]

    def __dealloc__(self):
        free(self._ints)
        free(self._acts)

    def init_params(self, int kind, floating[::1] params, uint64_t[::1] rng):
        """Random initial weights, layer by layer, row by row; zero biases.

        glorot_uniform (2u - 1) sqrt(6 / (n_in + n_out)); he_uniform (2u - 1) sqrt(6 / n_in);
        glorot_normal N(0, 2 / (n_in + n_out)); he_normal N(0, 2 / n_in). A normal draw is
        sqrt(-2 log(1 - u1)) cos(2 pi u2) (Box-Muller, two uniforms per weight; 1 - u1 > 0).
        """
        cdef Py_ssize_t l, k, n_in, n_out
        cdef double scale, u1, u2, value
        with nogil:
            for l in range(self.lay.n_layers):
                n_in = self.lay.sizes[l]
                n_out = self.lay.sizes[l + 1]
                if kind == INIT_GLOROT_UNIFORM:
                    scale = sqrt(6.0 / <double>(n_in + n_out))
                elif kind == INIT_HE_UNIFORM:
                    scale = sqrt(6.0 / <double>n_in)
                elif kind == INIT_GLOROT_NORMAL:
                    scale = sqrt(2.0 / <double>(n_in + n_out))
                else:
                    scale = sqrt(2.0 / <double>n_in)
                for k in range(n_in * n_out):
                    if kind == INIT_GLOROT_UNIFORM or kind == INIT_HE_UNIFORM:
                        value = (2.0 * uniform01(&rng[0]) - 1.0) * scale
                    else:
                        u1 = uniform01(&rng[0])
                        u2 = uniform01(&rng[0])
                        value = sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2) * scale
                    params[self.lay.w_off[l] + k] = <floating>value
                for k in range(n_out):
                    params[self.lay.b_off[l] + k] = 0

    def forward(self, const floating[::1] params, const floating[:, ::1] X,
                floating[:, ::1] out, floating[::1] A):
        """out <- network(X); A is a workspace of chunk * total_width values."""
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef Py_ssize_t work = 0
        with nogil:
            forward_rows(&self.lay, &params[0], &X[0, 0], X.shape[0], &out[0, 0], &A[0], chunk,
                         &work)
        if work == INTERRUPTED:
            raise_interrupt()

    def loss(self, const floating[::1] params, const floating[:, ::1] X,
             const floating[:, ::1] T, floating[::1] A):
        """The mean over samples of the per-sample loss."""
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double result
        cdef Py_ssize_t work = 0
        with nogil:
            result = batch_gradient(&self.lay, &params[0], &X[0, 0], &T[0, 0], NULL, 0,
                                    X.shape[0], NULL, &A[0], NULL, chunk, False, &work)
        if work == INTERRUPTED:
            raise_interrupt()
        return result

    def gradient(self, const floating[::1] params, const floating[:, ::1] X,
                 const floating[:, ::1] T, floating[::1] grad, floating[::1] A, floating[::1] D):
        """grad <- gradient of the mean loss over X; returns that mean loss.

        With a workspace of one chunk covering all rows, A and D afterwards hold every layer's
        activations and deltas (what ``MLP.explain`` reads).
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double result
        cdef Py_ssize_t work = 0
        with nogil:
            result = batch_gradient(&self.lay, &params[0], &X[0, 0], &T[0, 0], NULL, 0,
                                    X.shape[0], &grad[0], &A[0], &D[0], chunk, True, &work)
        if work == INTERRUPTED:
            raise_interrupt()
        return result

    def train_step(self, floating[::1] params, const floating[:, ::1] X,
                   const floating[:, ::1] T, double lr, tuple options,
                   floating[::1] state, int64_t[::1] step_count,
                   floating[::1] grad, floating[::1] A, floating[::1] D):
        """One optimizer step on the batch (X, T).

        Returns (mean loss before the step, failure code); a failed step is not applied.
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double result
        cdef int failure
        cdef OptConfig opt = make_opt_config(options)
        cdef floating* state_ptr = &state[0] if state.shape[0] > 0 else NULL
        cdef Py_ssize_t work = 0
        with nogil:
            failure = batch_step(&self.lay, &opt, &params[0], &X[0, 0], &T[0, 0], X.shape[0],
                                 &grad[0], &A[0], &D[0], chunk, state_ptr, &step_count[0], lr,
                                 &result, &work)
        if work == INTERRUPTED:
            raise_interrupt()
        return result, failure

    def fit_epoch(self, floating[::1] params, const floating[:, ::1] X, const floating[:, ::1] T,
                  double lr, Py_ssize_t batch_size, bint shuffle, uint64_t[::1] rng,
                  tuple options, floating[::1] state, int64_t[::1] step_count,
                  Py_ssize_t[::1] order, floating[::1] grad, floating[::1] A, floating[::1] D):
        """One epoch of minibatch training.

        Returns (failure code, epoch loss, the last batch loss computed).
        """
        cdef Py_ssize_t chunk = A.shape[0] // self.total_width
        cdef double epoch_loss = 0.0, batch_loss = 0.0
        cdef int failure
        cdef OptConfig opt = make_opt_config(options)
        cdef floating* state_ptr = &state[0] if state.shape[0] > 0 else NULL
        with nogil:
            failure = train_epoch(&self.lay, &opt, &params[0], &X[0, 0], &T[0, 0], X.shape[0],
                                  lr, batch_size, shuffle, &rng[0], &order[0], &grad[0], &A[0],
                                  &D[0], chunk, state_ptr, &step_count[0], &epoch_loss,
                                  &batch_loss)
        return failure, epoch_loss, batch_loss


# The kernels process batches in blocks of at most this many rows (MLP sizes its workspaces
# with it), so memory stays bounded whatever the batch size.
cdef Py_ssize_t BLOCK_ROWS_C = 256
BLOCK_ROWS = BLOCK_ROWS_C

# A step on at most this many multiply-adds keeps the GIL: releasing and retaking it (~0.2 us)
# would cost more than the step (FastStep.step).
NOGIL_MIN_WORK = 20000


cdef inline Py_ssize_t usable_rows(object value, int typenum, Py_ssize_t width, bint* single):
    # The number of rows if `value` is already exactly what a kernel takes - an ndarray (not a
    # subclass) of the network's dtype in native byte order, C-contiguous and aligned, of shape
    # (rows, width) or (width,) (then *single) - else 0. No conversion, no exception.
    cdef cnp.ndarray arr
    if not cnp.PyArray_CheckExact(value):
        return 0
    arr = <cnp.ndarray>value
    if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISCARRAY_RO(arr):
        return 0
    if cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_DIM(arr, 1) == width:
        single[0] = False
        return cnp.PyArray_DIM(arr, 0)
    if cnp.PyArray_NDIM(arr) == 1 and cnp.PyArray_DIM(arr, 0) == width:
        single[0] = True
        return 1
    return 0


cdef bint targets_valid(const floating* T, Py_ssize_t rows, Py_ssize_t n_out, int loss) noexcept nogil:
    # What MLP._xt asks of float targets for each loss (finite; in [0, 1] for the log-losses;
    # cross-entropy rows summing to 1 within 1e-6 / 1e-5, the sum taken in double).
    cdef Py_ssize_t r, k
    cdef double v, row_sum
    cdef double tol = 1e-5 if floating is float else 1e-6
    for r in range(rows):
        row_sum = 0.0
        for k in range(n_out):
            v = T[r * n_out + k]
            if not isfinite(v):
                return False
            if loss != LOSS_SQUARED_ERROR and not (0.0 <= v <= 1.0):
                return False
            row_sum += v
        if loss == LOSS_CROSS_ENTROPY and fabs(row_sum - 1.0) > tol:
            return False
    return True


cdef class FastStep:
    """``MLP.train_step`` without the Python-level checks, for the call that repeats the last one.

    Built by :class:`cprop.mlp.MLP` after a checked train_step succeeded; holds that step's
    workspaces, optimizer state and options as C pointers. :meth:`step` takes the fast route only
    when the new call is one the checked route would accept unchanged - the same optimizer
    arguments (identical objects or equal floats), ``train_biases`` and block size, ``X`` and
    ``T`` already ndarrays of the network's dtype, native order, C-contiguous and aligned, of
    the right shapes, finite, targets valid for the loss, finite parameters - and the step
    succeeds. In every other case it changes nothing and returns None, and the checked route
    (which raises the proper errors) runs instead. A refused step changes nothing either (the
    kernels check before they commit), so the checked route repeats it and raises.
    """

    cdef Plan plan
    cdef object arrays            # keeps every buffer below alive
    cdef object lock
    cdef object args              # (optimizer, momentum, nesterov, beta1, beta2, eps, alpha)
    cdef OptConfig opt
    cdef bint train_biases, double_type, needs_steps
    cdef int typenum
    cdef Py_ssize_t chunk, n_in, n_out
    cdef char* params
    cdef char* A
    cdef char* D
    cdef char* grad
    cdef char* state
    cdef int64_t* steps

    def __cinit__(self, Plan plan, cnp.ndarray params, cnp.ndarray A, cnp.ndarray D,
                  cnp.ndarray grad, cnp.ndarray state, cnp.ndarray steps, tuple options,
                  tuple args, bint train_biases, object lock):
        cdef int typenum = cnp.PyArray_TYPE(params)
        if typenum not in (cnp.NPY_DOUBLE, cnp.NPY_FLOAT):
            raise TypeError("FastStep: params must be float64 or float32")
        for arr in (params, A, D, grad, state):
            if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISCARRAY(arr):
                raise ValueError("FastStep: buffers must share params' dtype, C-contiguous")
        if (cnp.PyArray_TYPE(steps) != cnp.NPY_INT64 or not cnp.PyArray_ISCARRAY(steps)
                or cnp.PyArray_SIZE(steps) != 1):
            raise ValueError("FastStep: steps must be one int64")
        if (cnp.PyArray_SIZE(params) != plan.n_params or cnp.PyArray_SIZE(grad) != plan.n_params
                or cnp.PyArray_SIZE(A) != cnp.PyArray_SIZE(D)
                or cnp.PyArray_SIZE(A) < plan.total_width
                or cnp.PyArray_SIZE(A) % plan.total_width != 0):
            raise ValueError("FastStep: buffer sizes do not match the plan")
        self.plan = plan
        self.arrays = (params, A, D, grad, state, steps)
        self.lock = lock
        self.args = args
        self.opt = make_opt_config(options)
        self.needs_steps = self.opt.kind == OPT_RPROP
        if self.opt.kind != OPT_SGD or self.opt.momentum != 0:
            if cnp.PyArray_SIZE(state) < plan.n_params:
                raise ValueError("FastStep: the optimizer needs its state buffer")
        self.train_biases = train_biases
        self.typenum = typenum
        self.double_type = typenum == cnp.NPY_DOUBLE
        self.chunk = cnp.PyArray_SIZE(A) // plan.total_width
        self.n_in = plan.lay.sizes[0]
        self.n_out = plan.lay.sizes[plan.lay.n_layers]
        self.params = <char*>cnp.PyArray_DATA(params)
        self.A = <char*>cnp.PyArray_DATA(A)
        self.D = <char*>cnp.PyArray_DATA(D)
        self.grad = <char*>cnp.PyArray_DATA(grad)
        self.state = (<char*>cnp.PyArray_DATA(state) if cnp.PyArray_SIZE(state) > 0
                      else NULL)
        self.steps = <int64_t*>cnp.PyArray_DATA(steps)

    cdef inline bint same_arg(self, Py_ssize_t k, object a):
        # Identical objects (the defaults always are) or equal floats/strings; no allocation.
        cdef object b = (<tuple>self.args)[k]
        if a is b:
            return True
        if type(a) is not type(b):
            return False
        if type(a) is float:
            return PyFloat_AS_DOUBLE(a) == PyFloat_AS_DOUBLE(b)
        if type(a) is str:
            return a == b
        return False

    def step(self, X, T, lr, optimizer, momentum, nesterov, beta1, beta2, eps, alpha,
             train_biases):
        """The loss before the step, or None: see the class docstring."""
        cdef bint single_x = False, single_t = False, ok = True, release
        cdef Py_ssize_t work = 0
        cdef Py_ssize_t rows, t_rows
        cdef double lr_value, loss = 0.0
        cdef float lr_float
        cdef int failure = FIT_OK
        if type(lr) is not float or train_biases is not self.train_biases:
            return None
        lr_value = PyFloat_AS_DOUBLE(lr)
        if not (isfinite(lr_value) and lr_value > 0):
            return None
        if not self.double_type:
            lr_float = <float>lr_value
            if not (isfinite(lr_float) and lr_float > 0):
                return None
        if not (self.same_arg(0, optimizer) and self.same_arg(1, momentum)
                and self.same_arg(2, nesterov) and self.same_arg(3, beta1)
                and self.same_arg(4, beta2) and self.same_arg(5, eps)
                and self.same_arg(6, alpha)):
            return None
        rows = usable_rows(X, self.typenum, self.n_in, &single_x)
        if rows == 0 or min(rows, BLOCK_ROWS_C) != self.chunk:
            return None
        t_rows = usable_rows(T, self.typenum, self.n_out, &single_t)
        # T: (rows, n_out), or (n_out,) for one sample; (rows,) for n_out == 1 goes the long way.
        if t_rows != rows or (single_t and not single_x):
            return None
        release = rows * (self.plan.n_params + self.n_in) >= NOGIL_MIN_WORK
        self.lock.acquire()
        try:
            if self.needs_steps and self.steps[0] == 0:
                return None  # Rprop's first step sets its step sizes from lr: the long way
            if release:
                with nogil:
                    ok = self.run(<char*>cnp.PyArray_DATA(<cnp.ndarray>X),
                                  <char*>cnp.PyArray_DATA(<cnp.ndarray>T), rows, lr_value,
                                  &loss, &failure, &work)
            else:
                ok = self.run(<char*>cnp.PyArray_DATA(<cnp.ndarray>X),
                              <char*>cnp.PyArray_DATA(<cnp.ndarray>T), rows, lr_value, &loss,
                              &failure, &work)
            if work == INTERRUPTED:
                raise_interrupt()  # Ctrl-C part-way through the gradient: nothing applied
        finally:
            self.lock.release()
        if not ok or failure != FIT_OK:
            return None
        return loss

    cdef bint run(self, char* X, char* T, Py_ssize_t rows, double lr, double* loss,
                  int* failure, Py_ssize_t* work) noexcept nogil:
        if self.double_type:
            return self.run_typed(<double*>X, <double*>T, rows, lr, loss, failure,
                                  <double*>self.params, work)
        return self.run_typed(<float*>X, <float*>T, rows, lr, loss, failure,
                              <float*>self.params, work)

    cdef bint run_typed(self, floating* X, floating* T, Py_ssize_t rows, double lr,
                        double* loss, int* failure, floating* params,
                        Py_ssize_t* work) noexcept nogil:
        # False: an input the checked route must see (it raises); else the step's outcome.
        cdef Layout* lay = &self.plan.lay
        cdef Py_ssize_t n_x = rows * self.n_in
        if not _all_finite(X, n_x) or not _all_finite(params, lay.n_params):
            return False
        if not targets_valid(T, rows, self.n_out, lay.loss):
            return False
        failure[0] = batch_step(lay, &self.opt, params, X, T, rows, <floating*>self.grad,
                                <floating*>self.A, <floating*>self.D, self.chunk,
                                <floating*>self.state, self.steps, lr, loss, work)
        return True


def activation_forward(int act, const floating[::1] z, floating[::1] out, double slope=0.01):
    """out[i] <- f(z[i]) for the activation with code `act`."""
    cdef Py_ssize_t i, n = z.shape[0]
    if out.shape[0] < n:
        raise ValueError(f"out has {out.shape[0]} values, expected {n}")
    if act == ACT_SIGMOID:  # as the layers compute it (float32: the vector kernel, whole array)
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


def all_finite(const floating[::1] values):
    """True if no value is NaN or infinite (one pass, no temporary array, GIL released)."""
    cdef bint ok
    with nogil:
        ok = _all_finite(&values[0], values.shape[0])
    return ok


def all_finite_2d(const floating[:, ::1] values):
    """all_finite for a C-contiguous 2-D array (no reshape needed)."""
    cdef bint ok
    with nogil:
        ok = _all_finite(&values[0, 0], values.shape[0] * values.shape[1])
    return ok


cdef bint _all_finite(const floating* values, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(values[i]):
            return False
    return True


def shuffled_order(uint64_t[::1] rng, Py_ssize_t[::1] order):
    """order <- a fresh Fisher-Yates shuffle of 0 .. n-1 drawn from the generator `rng`."""
    with nogil:
        shuffle_indices(&order[0], order.shape[0], &rng[0])


def softmax_rows(const floating[:, ::1] z, floating[:, ::1] out):
    """out[r] <- softmax(z[r]) for every row, max-shifted (no overflow for any finite input)."""
    cdef Py_ssize_t r, n = z.shape[1]
    with nogil:
        for r in range(z.shape[0]):
            memcpy(&out[r, 0], &z[r, 0], n * sizeof(floating))
            activate_row(ACT_SOFTMAX, &out[r, 0], n, 0)


def vector_exp(floating[::1] values):
    """values <- exp(values) in place with the vectorised exp of _dense.h (exposed for the
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
