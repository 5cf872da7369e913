# Layer kernels (cdef inline, nogil, noexcept) over a block of `rows` samples stored row-major,
# shared by every route of the engine (_mlp.pyx) so that each is written once and still inlines:
#
#   dense_forward       z = a_in @ W + b, then the activation, in place;
#   output_delta        the loss of each sample and delta = dE/dz at the output layer;
#   backprop_layer      adds this block's dE/dW and dE/db, and the delta of the layer below;
#   delta_below         one sample's delta of the layer below;
#   forward_block       every layer of a block, input to output;
# plus the bounds and checks the updates rely on (abs_max, update_is_safe, all_finite_ptr) and
# the signal poll that lets Ctrl-C stop a long nogil call.
#
# Arithmetic order matters: cprop.oracle performs the same additions in the same order (bias
# first, then inputs in index order; samples in batch order, then one division by the count), so
# float64 loop-path results agree with it to the last bit.

from cython cimport floating
from libc.math cimport isfinite, INFINITY
from libc.string cimport memcpy

from cprop._kernels._types cimport (
    Layout, ACT_IDENTITY, ACT_SIGMOID, ACT_RELU, ACT_LEAKY_RELU, ACT_SOFTMAX, LOSS_SQUARED_ERROR,
    LOSS_CROSS_ENTROPY,
)
from cprop._kernels._activations cimport (
    activate_row, softmax_row, sigmoid_vec, softmax_rows_vec, times_derivative,
    times_derivative_block, output_loss_delta,
)


cdef extern from "Python.h":
    # The same function, declared without Cython's exception check so that a noexcept kernel can
    # call it (with the GIL) and report a raised KeyboardInterrupt through its own return value.
    int check_signals "PyErr_CheckSignals" ()


cdef extern from *:
    """
    /* The thread Python runs signal handlers in (threading.main_thread()), set at import. */
    static unsigned long cprop_main_thread_ident = 0;
    static void cprop_set_main_thread(unsigned long ident) { cprop_main_thread_ident = ident; }
    static int cprop_on_main_thread(void)
    {
        return PyThread_get_thread_ident() == cprop_main_thread_ident;
    }
    """
    void cprop_set_main_thread(unsigned long ident)
    bint cprop_on_main_thread() nogil


cdef enum:
    # How many multiply-adds of training work may pass between two checks for Ctrl-C. A check
    # takes the GIL (~0.1 us); 2**17 multiply-adds take ~50-100 us, so checks cost < 0.5% and an
    # interrupt is seen at the first batch boundary after at most ~0.1 ms of work.
    SIGNAL_CHECK_WORK = 1 << 17
    # The value a kernel's work counter (see poll_signals) is left at when a signal handler raised.
    INTERRUPTED = -1


cdef inline bint poll_signals(Py_ssize_t* work, Py_ssize_t done) noexcept nogil:
    # Count `done` multiply-adds of work; past SIGNAL_CHECK_WORK, take the GIL and run Python's
    # signal handlers (on the main thread only: elsewhere there are none to run). True (and
    # *work = INTERRUPTED, the exception left set) if one raised - Ctrl-C's KeyboardInterrupt -
    # so the caller stops and reports it. work NULL: never polls.
    cdef int raised
    if work == NULL:
        return False
    work[0] += done
    if work[0] < SIGNAL_CHECK_WORK:
        return False
    work[0] = 0
    if not cprop_on_main_thread():
        # Only the main thread runs signal handlers (PyErr_CheckSignals does nothing elsewhere):
        # a poll from another thread would only wait for the GIL, while another thread runs
        # Python (a threaded GridSearchCV's validation and scoring: ~6 points of its speed-up).
        return False
    with gil:
        raised = check_signals()
    if raised != 0:
        work[0] = INTERRUPTED
        return True
    return False


cdef inline void gemm_rowmajor(
    const Layout* lay, bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
    floating alpha, const floating* A, Py_ssize_t lda, const floating* B, Py_ssize_t ldb,
    floating beta, floating* C, Py_ssize_t ldc,
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
        lay.sgemm(&ta, &tb, &im, &i_n, &ik, &alpha, <float*>B, &ilda, <float*>A, &ildb, &beta,
                  C, &ildc)
    else:
        lay.dgemm(&ta, &tb, &im, &i_n, &ik, &alpha, <double*>B, &ilda, <double*>A, &ildb, &beta,
                  C, &ildc)


cdef extern from "_rows.h" nogil:
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
    double cprop_scale_d(double* g, Py_ssize_t n, double c)
    double cprop_scale_f(float* g, Py_ssize_t n, float c)
    void cprop_back_sums_d(const double* W, const double* d, double* s, Py_ssize_t n_in,
                           Py_ssize_t n_out)
    void cprop_back_sums_f(const float* W, const float* d, float* s, Py_ssize_t n_in,
                           Py_ssize_t n_out)
    void cprop_bias_rows_d(double* z, const double* b, Py_ssize_t rows, Py_ssize_t n, int relu)
    void cprop_bias_rows_f(float* z, const float* b, Py_ssize_t rows, Py_ssize_t n, int relu)
    void cprop_column_sums_d(const double* d, Py_ssize_t rows, Py_ssize_t n, double* s,
                             int first)
    void cprop_column_sums_f(const float* d, Py_ssize_t rows, Py_ssize_t n, float* s, int first)
    enum: CPROP_NARROW_MAX
    void cprop_back_narrow_d(const double* W, const double* d, const double* a, double* s,
                             Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, int step,
                             double below, double* colsum, int first)
    void cprop_back_narrow_f(const float* W, const float* d, const float* a, float* s,
                             Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, int step,
                             float below, float* colsum, int first)
    double cprop_sum_parts_d(const double* g, Py_ssize_t n, Py_ssize_t stride,
                             Py_ssize_t n_parts, double inv, double* out)
    double cprop_sum_parts_f(const float* g, Py_ssize_t n, Py_ssize_t stride,
                             Py_ssize_t n_parts, float inv, float* out)
    double cprop_absmax_d(const double* x, Py_ssize_t n)
    double cprop_absmax_f(const float* x, Py_ssize_t n)


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


cdef inline void bias_rows(floating* z, const floating* b, Py_ssize_t rows, Py_ssize_t n,
                           bint relu) noexcept nogil:
    # z[r, j] = z[r, j] + b[j] for every row of a block; relu: then _formulas.h's relu of it.
    if floating is float:
        cprop_bias_rows_f(z, b, rows, n, relu)
    else:
        cprop_bias_rows_d(z, b, rows, n, relu)


cdef inline void column_sums(const floating* d, Py_ssize_t rows, Py_ssize_t n, floating* s,
                             bint first) noexcept nogil:
    # s[j] = (first ? 0 : s[j]) + d[0, j] + d[1, j] + ..., rows (>= 1) in order: a bias's
    # gradient sum over a block.
    if floating is float:
        cprop_column_sums_f(d, rows, n, s, first)
    else:
        cprop_column_sums_d(d, rows, n, s, first)


cdef inline void delta_below(
    const floating* W,       # IN  (n_in, n_out) this layer's weights
    const floating* d,       # IN  (n_out,) this layer's delta for one sample
    const floating* a_in,    # IN  (n_in,) the layer below's output a = f(z)
    floating* d_in,          # OUT (n_in,) (W d)_i * f'(a_i): the layer below's delta
    Py_ssize_t n_in, Py_ssize_t n_out, int act_in, floating slope,
) noexcept nogil:
    # (W d)_i, each sum over j in order as the oracle adds (_rows.h, lanes along i), then f'.
    if floating is float:
        cprop_back_sums_f(W, d, d_in, n_in, n_out)
    else:
        cprop_back_sums_d(W, d, d_in, n_in, n_out)
    times_derivative(d_in, a_in, n_in, act_in, slope)


cdef inline void narrow_delta_below(
    const floating* W, const floating* delta, const floating* a_in, floating* delta_in,
    Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out, int act_in, floating slope,
    floating* grad_b_in, bint first,
) noexcept nogil:
    # delta_below for every row (>= 1) of a block of a narrow layer (n_out <= CPROP_NARROW_MAX),
    # in one pass that also takes relu's and leaky relu's derivative and, if grad_b_in is not
    # NULL, the layer below's bias gradient (column_sums(delta_in, ..., grad_b_in, first)):
    # the loop route's sums (j in order, no FMA), where a gemm with so few terms is mostly
    # overhead (W5's 100-3 output).
    cdef bint step = act_in == ACT_RELU or act_in == ACT_LEAKY_RELU
    cdef floating below = 0 if act_in == ACT_RELU else slope
    cdef floating* sums = grad_b_in if step else NULL
    if floating is float:
        cprop_back_narrow_f(W, delta, a_in, delta_in, rows, n_in, n_out, step, below, sums,
                            first)
    else:
        cprop_back_narrow_d(W, delta, a_in, delta_in, rows, n_in, n_out, step, below, sums,
                            first)
    if not step:
        times_derivative_block(delta_in, a_in, rows * n_in, act_in, slope)
        if grad_b_in != NULL:
            column_sums(delta_in, rows, n_in, grad_b_in, first)


cdef inline void dense_forward(
    const Layout* lay,       # IN  the network (for its BLAS)
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
        # Wide layers: z = a_in @ W in one gemm (the sum's order is BLAS's own), then + b: the
        # same bits as gemm adding onto rows set to b (a + b == b + a), without that copy. A
        # relu layer takes its bias and activation in the same pass.
        gemm_rowmajor(lay, False, False, rows, n_out, n_in, 1, a_in, n_in, W, n_out, 0, a_out,
                      n_out)
        if act == ACT_RELU and z_out == NULL and lse_out == NULL:
            bias_rows(a_out, b, rows, n_out, True)
            return
        bias_rows(a_out, b, rows, n_out, False)
        if z_out != NULL:
            memcpy(z_out, a_out, rows * n_out * sizeof(floating))
        # Never bit-identical to the oracle (BLAS's sums), so both dtypes take the vector exp;
        # the elementwise activations over the whole block at once.
        if lse_out != NULL or act == ACT_SOFTMAX:
            softmax_rows_vec(a_out, rows, n_out, lse_out)
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


cdef inline double output_delta(
    const Layout* lay,
    const floating* y,       # IN  (rows, n_out) network outputs
    const floating* z,       # IN  (rows, n_out) the output layer's net inputs (logits)
    const floating* T,       # IN  targets, row r at T + row_index(r) * n_out
    const floating* sw,      # IN  sample weights, row r's at sw[row_index(r)]; NULL: unweighted
    const Py_ssize_t* idx,   # IN  sample indices of the rows (NULL: rows start..start+rows-1)
    Py_ssize_t start,
    floating* delta,         # OUT (rows, n_out) dE/dz of each sample; NULL: loss only
    const floating* lse,     # IN  (rows,) the forward pass's log-sum-exp of z, or NULL
    Py_ssize_t rows, double loss_sum,
) noexcept nogil:
    # Returns loss_sum plus each row's loss, added one sample at a time (in double) so that the
    # total does not depend on how a batch is cut into blocks. With sample weights, row r adds
    # w_r * E_r (in double) and its delta is w_r * dE/dz (in floating), scikit-learn's
    # `deltas[last] *= sample_weight`; the caller divides by the batch's weight sum.
    # The formulas (_formulas.h):
    #   squared_error          E = sum_k 1/2 (t_k - y_k)^2; delta = (y - t) * f'(z), or for a
    #                          softmax output delta_k = y_k (g_k - sum_j g_j y_j) with g = y - t
    #   cross_entropy          E = sum_k t_k (logsumexp(z) - z_k) = -sum_k t_k log y_k, from the
    #                          logits so that no log(0) can occur; delta = y - t
    #   binary_cross_entropy   E = sum_k softplus(z_k) - t_k z_k; delta = y - t
    cdef Py_ssize_t r, k, row, L = lay.n_layers, n_out = lay.sizes[L]
    cdef int act = lay.act[L - 1]
    cdef floating slope = <floating>lay.slope
    cdef floating w
    cdef floating* d
    cdef double sample_loss
    for r in range(rows):
        row = idx[start + r] if idx != NULL else start + r
        d = delta + r * n_out if delta != NULL else NULL
        sample_loss = output_loss_delta(
            lay.loss, act, y + r * n_out, z + r * n_out, T + row * n_out,
            lse + r if lse != NULL else NULL, d, n_out, slope)
        if sw == NULL:
            loss_sum += sample_loss
            continue
        w = sw[row]
        loss_sum += <double>w * sample_loss
        if d != NULL:
            for k in range(n_out):
                d[k] = d[k] * w
    return loss_sum


cdef inline bint backprop_layer(
    const Layout* lay,       # IN  the network (for its BLAS)
    const floating* a_in,    # IN  (rows, n_in) this layer's input (the layer below's output)
    const floating* delta,   # IN  (rows, n_out) dE/dz of this layer
    const floating* W,       # IN  (n_in, n_out)
    floating* grad_W,        # IN/OUT (n_in, n_out) += a_in^T @ delta
    floating* grad_b,        # IN/OUT (n_out,)      += column sums of delta
    floating* delta_in,      # OUT (rows, n_in) dE/dz of the layer below, if compute_delta_in
    Py_ssize_t rows, Py_ssize_t n_in, Py_ssize_t n_out,
    int act_in, floating slope, bint compute_delta_in, bint use_blas, bint first,
    floating* grad_b_in,     # IN/OUT (n_in,) or NULL: the layer below's grad_b, see below
    bint bias_summed,        # grad_b was already summed (by the layer above's call)
) noexcept nogil:
    # first (use_blas only): grad_W and grad_b are set (=) rather than added to (+=), so the
    # caller need not clear them: 0 + x == x (up to the sign of a zero). A narrow layer's
    # delta_in skips gemm (narrow_delta_below), and takes the layer below's bias gradient sums
    # in the same pass if grad_b_in is not NULL (use_blas, compute_delta_in; that layer's call
    # then has bias_summed). Returns True if it did.
    cdef Py_ssize_t r, j
    cdef const floating* d
    if use_blas:
        # grad_W += a_in^T @ delta; delta_in = (delta @ W^T) * f'(a_in); grad_b by rows.
        gemm_rowmajor(lay, True, False, n_in, n_out, rows, 1, a_in, n_in, delta, n_out,
                      0 if first else 1, grad_W, n_out)
        if not bias_summed:
            column_sums(delta, rows, n_out, grad_b, first)
        if compute_delta_in and n_out <= CPROP_NARROW_MAX:
            narrow_delta_below(W, delta, a_in, delta_in, rows, n_in, n_out, act_in, slope,
                               grad_b_in, first)
            return grad_b_in != NULL
        if compute_delta_in:
            gemm_rowmajor(lay, False, True, rows, n_in, n_out, 1, delta, n_out, W, n_out, 0,
                          delta_in, n_in)
            times_derivative_block(delta_in, a_in, rows * n_in, act_in, slope)
        return False
    for r in range(rows):
        d = delta + r * n_out
        rank1_add(grad_W, a_in + r * n_in, d, n_in, n_out)
        for j in range(n_out):
            grad_b[j] += d[j]
        if compute_delta_in:
            delta_below(W, d, a_in + r * n_in, delta_in + r * n_in, n_in, n_out, act_in, slope)
    return False


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
            lay, x_in if l == 0 else A + rows * lay.a_off[l], params + lay.w_off[l],
            params + lay.b_off[l], A + rows * lay.a_off[l + 1],
            logits if l == L - 1 else NULL,
            output_lse(lay, A, rows) if l == L - 1 else NULL,
            rows, lay.sizes[l], lay.sizes[l + 1], lay.act[l], <floating>lay.slope,
            rows * lay.sizes[l] * lay.sizes[l + 1] >= lay.blas_min_work,
        )


cdef inline double divide_by_count(floating* g, Py_ssize_t n, Py_ssize_t count) noexcept nogil:
    # g[k] = g[k] / count, vectorised; a multiplication where count is a power of two (the same
    # bits, see _rows.h). Returns max |g[k]| (NaN if any is NaN): the update's bound, from this
    # pass.
    if floating is float:
        return cprop_scale_f(g, n, <float>count)
    else:
        return cprop_scale_d(g, n, <double>count)


cdef inline double divide_by_weight_sum(floating* g, Py_ssize_t n, double c) noexcept nogil:
    # g[k] = g[k] / c (c > 0, a batch's sample-weight sum rounded to floating): as
    # divide_by_count (a multiplication where c is a power of two, so a batch of unit weights
    # costs what an unweighted one does); a plain division past 2**62, where cprop_scale's
    # integer test would not hold (then -1: the bound is not taken).
    cdef Py_ssize_t k
    cdef floating divisor = <floating>c
    if c < 4.0e18:
        if floating is float:
            return cprop_scale_f(g, n, divisor)
        else:
            return cprop_scale_d(g, n, divisor)
    for k in range(n):
        g[k] = g[k] / divisor
    return -1.0


cdef inline double abs_max(const floating* x, Py_ssize_t n) noexcept nogil:
    # max |x_i| (0 when n = 0), or NaN if any x_i is NaN, so that a bound built on it fails
    # every `<=` test of update_is_safe; vectorised (_rows.h).
    if floating is float:
        return cprop_absmax_f(x, n)
    else:
        return cprop_absmax_d(x, n)


cdef inline double sum_parts(const floating* g, Py_ssize_t n, Py_ssize_t stride,
                             Py_ssize_t n_parts, double divisor, floating* out) noexcept nogil:
    # out[i] = (((g[i] + g[stride + i]) + ...) * (1 / divisor) over n_parts slots: a parted
    # batch's mean gradient, its parts added in order (out: g itself, or another slot); returns
    # max |out[i]| (NaN if any is NaN), the bound the update's safety test needs. A
    # multiplication by the reciprocal rather than a division (the gemm routes' rounding, within
    # 1 ulp of x / c; exact for a power of two): a division per value cost as much as Adam's
    # step shares the divider with.
    if floating is float:
        return cprop_sum_parts_f(g, n, stride, n_parts, (<float>1) / <float>divisor, out)
    else:
        return cprop_sum_parts_d(g, n, stride, n_parts, 1.0 / divisor, out)


cdef inline bint update_is_safe(double p_bound, double g_bound, double alpha, double lr,
                                bint single) noexcept nogil:
    # True if w - lr * (g + alpha * w) cannot overflow for any |w| <= p_bound and |g| <= g_bound
    # (nor any of its partial results), so that an SGD step may skip checking each new value.
    # The limit is far below DBL_MAX / FLT_MAX (x 1e8 / x 340), so the rounding of this bound's
    # own arithmetic cannot matter. NaN bounds fail every comparison.
    # The largest magnitude a step may bring any value to without checking each one: far below
    # DBL_MAX (1.8e308) and FLT_MAX (3.4e38).
    cdef double limit = 1e36 if single else 1e300
    cdef double inc = g_bound + alpha * p_bound
    return (p_bound <= limit and g_bound <= limit and inc <= limit and lr * inc <= limit
            and p_bound + lr * inc <= limit)


cdef inline bint all_finite_ptr(const floating* values, Py_ssize_t n) noexcept nogil:
    # Every value finite: a long array through the vectorised abs_max (max |x| is NaN if any x
    # is NaN, inf if any is infinite, else finite), a short one in a loop (no call).
    cdef Py_ssize_t i
    if n >= 64:
        return abs_max(values, n) < INFINITY
    for i in range(n):
        if not isfinite(values[i]):
            return False
    return True


cdef inline double forward_loss_delta(
    const Layout* lay, const floating* params, const floating* x_in, floating* A, floating* D,
    const floating* T, const floating* sw, const Py_ssize_t* idx, Py_ssize_t start,
    Py_ssize_t rows, double loss_sum,
) noexcept nogil:
    # A block's forward pass (inputs x_in, see forward_block), then its loss added to loss_sum
    # and, if D is not NULL, the output layer's delta: what every route does before its update
    # (sw: sample weights, or NULL; see output_delta).
    cdef Py_ssize_t L = lay.n_layers
    forward_block(lay, params, x_in, A, rows)
    return output_delta(lay, A + rows * lay.a_off[L], A + rows * lay.a_off[L + 1], T, sw, idx,
                        start,
                        D + rows * lay.a_off[L] if D != NULL else NULL,
                        output_lse(lay, A, rows), rows, loss_sum)
