# The special routes of the step plan (see _mlp.pyx's design block): a one-row SGD step fused
# with its update (row_sgd), the whole-step C kernel of tiny one-hidden-layer networks
# (tiny2_rows), and a minibatch SGD step whose update is folded into the weight-gradient gemm
# (fused_sgd). Each computes what the general route (batch_gradient + optimizer_step) computes.

from cython cimport floating
from libc.stdint cimport int64_t
from libc.math cimport isfinite
from libc.string cimport memcpy, memset

from cprop._kernels._types cimport (
    Layout, OptConfig, FIT_OK, FIT_LOSS_NOT_FINITE, FIT_UPDATE_NOT_FINITE,
)
from cprop._kernels._activations cimport times_derivative, sgd_update
from cprop._kernels._layers cimport (
    gemm_rowmajor, rank1_sgd, delta_below, forward_loss_delta, load_rows, abs_max,
    update_is_safe, column_sums,
)


cdef extern from "_tiny.h" nogil:
    # The whole-step kernel for one-hidden-layer float64 networks at most CPROP_TINY_WIDTH wide.
    Py_ssize_t CPROP_TINY_WIDTH
    ctypedef struct cprop_tiny2_config:
        int act_hidden, act_out, loss, train_biases
        double slope, alpha, lr
    Py_ssize_t cprop_tiny2_rows_d(double* W1, double* b1, double* W2, double* b2,
                                  const double* X, const double* T, const Py_ssize_t* order,
                                  Py_ssize_t start, Py_ssize_t end, const cprop_tiny2_config* c,
                                  double* total, double* loss, int* failure, Py_ssize_t n_in,
                                  Py_ssize_t n_hidden, Py_ssize_t n_out)


cdef enum:
    FUSED_FALLBACK = 3       # fused_sgd_batch could not prove its step safe: the general route


cdef inline int tiny2_rows(
    const Layout* lay, const OptConfig* opt, double* params, const double* X, const double* T,
    const Py_ssize_t* order, Py_ssize_t start, Py_ssize_t end, double lr, int64_t* step_count,
    double* total, double* batch_loss,
) noexcept nogil:
    # The tiny2 route over one-row batches start .. end-1 (order NULL: rows in order).
    cdef cprop_tiny2_config c
    cdef int failure = FIT_OK
    cdef Py_ssize_t k, r, row
    c.act_hidden = lay.act[0]
    c.act_out = lay.act[1]
    c.loss = lay.loss
    c.train_biases = opt.train_biases
    c.slope = lay.slope
    c.alpha = opt.alpha
    c.lr = lr
    if order != NULL:
        k = cprop_tiny2_rows_d(
            params + lay.w_off[0], params + lay.b_off[0], params + lay.w_off[1],
            params + lay.b_off[1], X, T, order, start, end, &c, total, batch_loss, &failure,
            lay.sizes[0], lay.sizes[1], lay.sizes[2])
        step_count[0] += k - start
        return failure
    for r in range(start, end):
        row = r
        k = cprop_tiny2_rows_d(
            params + lay.w_off[0], params + lay.b_off[0], params + lay.w_off[1],
            params + lay.b_off[1], X, T, &row, 0, 1, &c, total, batch_loss, &failure,
            lay.sizes[0], lay.sizes[1], lay.sizes[2])
        step_count[0] += k
        if failure != FIT_OK:
            return failure
    return FIT_OK


cdef inline int single_row_sgd_step(
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
    # (kept by train_rows), and if max|a_i| max|d_j| + alpha p_bound cannot take any value past
    # SAFE_MAGNITUDE the loops run unchecked; otherwise (in practice: only on the way to a
    # divergence) the old parameters are backed up, every value checked, and restored on failure.
    cdef Py_ssize_t l, i, j, L = lay.n_layers, n_in, n_out
    cdef bint finite = True, safe
    cdef floating a_i, p_new, alpha = <floating>opt.alpha
    cdef floating slope = <floating>lay.slope
    cdef double g_bound = 0.0, term
    cdef floating* W
    cdef floating* b
    cdef floating* w_row
    cdef const floating* a_in
    cdef const floating* d
    cdef const floating* x = X + (order[start] if order != NULL else start) * lay.sizes[0]
    batch_loss[0] = forward_loss_delta(lay, params, x, A, D, T, NULL, order, start, 1, 0.0)
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
                        w_row[j] = sgd_update(w_row[j], a_i * d[j], lr, alpha)
            else:
                # sgd_update(W_ij, a_i d_j, lr, 0) lane by lane, in _rows.h's vectors
                rank1_sgd(W, a_in, d, n_in, n_out, lr)
            if opt.train_biases:
                for j in range(n_out):
                    b[j] = sgd_update(b[j], d[j], lr, <floating>0)
            continue
        for i in range(n_in):
            a_i = a_in[i]
            w_row = W + i * n_out
            for j in range(n_out):
                p_new = sgd_update(w_row[j], a_i * d[j], lr, alpha)
                w_row[j] = p_new
                finite = finite & isfinite(p_new)
        if opt.train_biases:
            for j in range(n_out):
                p_new = sgd_update(b[j], d[j], lr, <floating>0)
                b[j] = p_new
                finite = finite & isfinite(p_new)
    if safe:
        p_bound[0] = p_bound[0] + lr * (g_bound + opt.alpha * p_bound[0])
        return FIT_OK
    if not finite:
        memcpy(params, backup, lay.n_params * sizeof(floating))
    p_bound[0] = abs_max(params, lay.n_params)
    return FIT_OK if finite else FIT_UPDATE_NOT_FINITE


cdef inline bint fused_sgd_applies(const Layout* lay, Py_ssize_t rows) noexcept nogil:
    # Every layer of a `rows`-row block goes through BLAS gemm (the fused step's update is one).
    cdef Py_ssize_t l
    for l in range(lay.n_layers):
        if rows * lay.sizes[l] * lay.sizes[l + 1] < lay.blas_min_work:
            return False
    return True


cdef inline int fused_sgd_batch(
    const Layout* lay, const OptConfig* opt, floating* params, const floating* X,
    const floating* T, const Py_ssize_t* order, Py_ssize_t start, Py_ssize_t count,
    floating* A, floating* D, floating* grad, floating lr, double* batch_loss, double* p_bound,
    bint in_order, double* row_max,
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
    # place, not copied into the workspace. row_max (or NULL): max |x| of each row of X, kept
    # for a whole fit (-1: not taken yet; taken here the first time), instead of each batch's
    # input rows read again every epoch.
    cdef Py_ssize_t l, r, j, row, L = lay.n_layers, n_in, n_out, rows = count
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
    batch_loss[0] = forward_loss_delta(lay, params, x0, A, D, T, NULL, order, start, rows,
                                       0.0) / count
    if not isfinite(batch_loss[0]):
        return FIT_LOSS_NOT_FINITE
    l = L - 1
    while l > 0:
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        gemm_rowmajor(lay, False, True, rows, n_in, n_out, 1, D + rows * lay.a_off[l + 1], n_out,
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
            if l == 0 and row_max != NULL:
                row = start + r if in_order else order[start + r]
                am = row_max[row]
                if am < 0:  # (not taken yet: from this batch's row, in cache after the gemm)
                    am = abs_max(a + r * n_in, n_in)
                    row_max[row] = am
            else:
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
        gemm_rowmajor(lay, True, False, n_in, n_out, rows, -lr / <floating>count, a, n_in, d, n_out,
                      scale_w, W, n_out)
        if opt.train_biases:
            # Column sums of d, each column adding its rows in order onto 0 (column_sums;
            # `grad` is free scratch here: the fused step writes none).
            memset(grad, 0, n_out * sizeof(floating))
            column_sums(d, rows, n_out, grad, False)
            for j in range(n_out):
                b[j] = sgd_update(b[j], grad[j] / <floating>count, lr, <floating>0)
    p_bound[0] = p_bound[0] + lr * (g_bound + opt.alpha * p_bound[0])
    return FIT_OK
