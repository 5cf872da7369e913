# Kernels exposed for the tests only: the vectorised exp / sigmoid / softmax of _vecmath.h,
# the SGD bound's max |x|, the gradient's division by the batch size, and the gemm routes'
# whole-block kernels (bias and relu, bias sums, the derivative times the delta).
# (Included into _mlp.pyx: one extension module.)


from cython cimport floating

from cprop._kernels._activations cimport (
    sigmoid_vec, softmax_vec, softmax_rows_vec, cprop_exp_row_f, cprop_exp_row_d,
    times_derivative_block,
)
from cprop._kernels._layers cimport (
    abs_max, divide_by_count, bias_rows, column_sums, narrow_delta_below, sum_parts,
    CPROP_NARROW_MAX,
)


def max_abs(const floating[::1] values):
    """max |values| (0.0 if empty), NaN if any value is NaN: the vectorised bound of the SGD
    steps (exposed for the tests)."""
    if values.shape[0] == 0:
        return 0.0
    return abs_max(&values[0], values.shape[0])


def divide_in_place(floating[::1] values, Py_ssize_t count):
    """values /= count, as the minibatch gradient is; returns max |values| after (NaN if any is
    NaN), taken in the same pass (exposed for the tests)."""
    if count < 1:
        raise ValueError("count must be >= 1")
    if values.shape[0] > 0:
        return divide_by_count(&values[0], values.shape[0], count)
    return 0.0


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


def vector_softmax_rows(floating[:, ::1] values, bint want_lse=False):
    """Each row of values <- its softmax, in place, with the block kernel the BLAS path uses
    (narrow rows several at a time); returns the rows' log-sum-exps if want_lse, else None
    (exposed for the tests)."""
    cdef Py_ssize_t rows = values.shape[0], n = values.shape[1]
    lse = np.zeros(rows, dtype=np.float64 if floating is double else np.float32)
    cdef floating[::1] lse_view = lse
    if rows == 0 or n == 0:
        return lse if want_lse else None
    with nogil:
        softmax_rows_vec(&values[0, 0], rows, n, &lse_view[0] if want_lse else NULL)
    return lse if want_lse else None


def block_bias_rows(floating[:, ::1] z, floating[::1] b, bint relu):
    """z[r, :] <- z[r, :] + b, then relu if asked, in place, with the kernel the gemm routes use
    after a forward gemm (exposed for the tests)."""
    if b.shape[0] != z.shape[1]:
        raise ValueError(f"b: expected {z.shape[1]} values, got {b.shape[0]}")
    if z.shape[0] == 0 or z.shape[1] == 0:
        return
    with nogil:
        bias_rows(&z[0, 0], &b[0], z.shape[0], z.shape[1], relu)


def block_column_sums(floating[:, ::1] d, floating[::1] s, bint first):
    """s <- d[0] + d[1] + ... (first) or s + d[0] + d[1] + ..., rows in order, in place: a
    bias gradient's sum over a block on the gemm routes (exposed for the tests)."""
    if s.shape[0] != d.shape[1]:
        raise ValueError(f"s: expected {d.shape[1]} values, got {s.shape[0]}")
    if d.shape[0] < 1:
        raise ValueError("d: expected at least one row")
    if d.shape[1] == 0:
        return
    with nogil:
        column_sums(&d[0, 0], d.shape[0], d.shape[1], &s[0], first)


def block_times_derivative(int act, floating[::1] d, const floating[::1] a, double slope=0.01):
    """d <- d * f'(a) in place, with the whole-block kernel of the gemm routes (exposed for the
    tests)."""
    if a.shape[0] != d.shape[0]:
        raise ValueError(f"a: expected {d.shape[0]} values, got {a.shape[0]}")
    if d.shape[0] == 0:
        return
    with nogil:
        times_derivative_block(&d[0], &a[0], d.shape[0], act, <floating>slope)


def block_narrow_delta_below(const floating[:, ::1] W, const floating[:, ::1] d,
                             const floating[:, ::1] a, floating[:, ::1] out, int act,
                             double slope=0.01, floating[::1] colsum=None, bint first=True):
    """out[r] <- (W d[r]) * f'(a[r]) for every row, W (n_in, n_out) with n_out <= 8: a narrow
    layer's delta below on the gemm routes; colsum (or None): then its column sums over the rows
    in order, set (first) or added (exposed for the tests)."""
    cdef Py_ssize_t rows = d.shape[0], n_in = W.shape[0], n_out = W.shape[1]
    if colsum is not None and colsum.shape[0] != n_in:
        raise ValueError(f"colsum: expected {n_in} values, got {colsum.shape[0]}")
    if not 1 <= n_out <= CPROP_NARROW_MAX:
        raise ValueError(f"W: expected 1 to {CPROP_NARROW_MAX} columns, got {n_out}")
    if d.shape[1] != n_out or a.shape[0] != rows or a.shape[1] != n_in or \
            out.shape[0] != rows or out.shape[1] != n_in:
        raise ValueError("d, a, out: expected (rows, n_out), (rows, n_in), (rows, n_in)")
    if rows == 0 or n_in == 0:
        return
    with nogil:
        narrow_delta_below(&W[0, 0], &d[0, 0], &a[0, 0], &out[0, 0], rows, n_in, n_out, act,
                           <floating>slope, &colsum[0] if colsum is not None else NULL, first)


def block_sum_parts(floating[:, ::1] g, double divisor, Py_ssize_t out=0):
    """g[out] <- (((g[0] + g[1]) + g[2]) + ...) * (1 / divisor) in place; returns max |g[out]|
    (NaN if any is NaN): a parted batch's reduction (exposed for the tests)."""
    if g.shape[0] < 1:
        raise ValueError("g: expected at least one part")
    if not 0 <= out < g.shape[0]:
        raise ValueError(f"out: expected a row of g (0 to {g.shape[0] - 1}), got {out}")
    if g.shape[1] == 0:
        return 0.0
    return sum_parts(&g[0, 0], g.shape[1], g.shape[1], g.shape[0], divisor, &g[out, 0])


def gemm_steps(str library, X, Py_ssize_t batch, Py_ssize_t epochs, ops):
    """Only matrix products, through the gemm of ``library`` ("scipy", "scipy-openblas32" or
    "mkl"; see blas_libraries), for the benchmark's GEMM-only ceilings: for each epoch and each
    full batch Xb = X[s:s + batch] in order, every op (A, trans_a, B, trans_b, C) of ``ops``
    computes C = op(A) @ op(B) in turn (op(M) = M.T if trans_M); an op (A, trans_a, B, trans_b,
    C, alpha, beta) computes C = alpha op(A) @ op(B) + beta C, as the kernels' calls do. A, B, C
    are C-contiguous 2-D arrays of X's dtype (float64 or float32), A or B may be the string "X"
    for the batch. Loops in C without the GIL (one gemm call per product, as the kernels make)."""
    import numpy as np

    cdef Py_ssize_t n_ops = len(ops), o, s, e, n_rows, x_cols, x_item
    # per op, the arguments of the column-major call gemm(T1, T2, M, N, K, 1, B, LD1, A, LD2, 0,
    # C, LDC)
    cdef int M[16]
    cdef int N[16]
    cdef int K[16]
    cdef int LD1[16]
    cdef int LD2[16]
    cdef int LDC[16]
    cdef char T1[16]
    cdef char T2[16]
    cdef char* pa[16]
    cdef char* pb[16]
    cdef char* pc[16]
    cdef bint a_is_x[16]
    cdef bint b_is_x[16]
    cdef bint double_
    cdef char* xp
    cdef char* xb
    cdef char* a
    cdef char* b
    cdef double d_alpha[16]
    cdef double d_beta[16]
    cdef float f_alpha[16]
    cdef float f_beta[16]
    cdef sgemm_fn sfn
    cdef dgemm_fn dfn
    X = np.asarray(X)
    if X.ndim != 2 or not X.flags.c_contiguous or X.dtype not in (np.float64, np.float32):
        raise ValueError("X must be a C-contiguous 2-D float64 or float32 array")
    if not 0 < n_ops <= 16 or batch < 1 or epochs < 0:
        raise ValueError("1 to 16 ops, batch >= 1 and epochs >= 0")
    double_ = X.dtype == np.float64
    lib = _load(library)
    sfn = <sgemm_fn><size_t>lib["sgemm"]
    dfn = <dgemm_fn><size_t>lib["dgemm"]
    keep = [X]
    for o, op in enumerate(ops):
        if len(op) not in (5, 7):
            raise ValueError(f"op {o}: expected (A, trans_a, B, trans_b, C[, alpha, beta])")
        A, ta, B, tb, C = op[:5]
        alpha, beta = op[5:] if len(op) == 7 else (1.0, 0.0)
        d_alpha[o], d_beta[o], f_alpha[o], f_beta[o] = alpha, beta, alpha, beta
        shapes = []
        for which, arr in (("A", A), ("B", B), ("C", C)):
            if isinstance(arr, str):
                if arr != "X" or which == "C":
                    raise ValueError(f"op {o}: {which} must be an array" +
                                     (" or 'X'" if which != "C" else ""))
                shapes.append((batch, X.shape[1]))
                continue
            if (not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype != X.dtype
                    or not arr.flags.c_contiguous):
                raise ValueError(f"op {o}: {which} must be a C-contiguous 2-D {X.dtype} array")
            keep.append(arr)
            shapes.append(arr.shape)
        (ar, ac), (br, bc), (cr, cc) = shapes
        m, k = (ac, ar) if ta else (ar, ac)
        k2, n = (bc, br) if tb else (br, bc)
        if k != k2 or (cr, cc) != (m, n):
            raise ValueError(f"op {o}: shapes {shapes} do not make C = op(A) @ op(B)")
        a_is_x[o], b_is_x[o] = isinstance(A, str), isinstance(B, str)
        pa[o] = NULL if a_is_x[o] else <char*><size_t>A.ctypes.data
        pb[o] = NULL if b_is_x[o] else <char*><size_t>B.ctypes.data
        pc[o] = <char*><size_t>C.ctypes.data
        # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B first.
        M[o], N[o], K[o] = n, m, k
        LD1[o], LD2[o], LDC[o] = bc, ac, n
        T1[o] = b"T" if tb else b"N"
        T2[o] = b"T" if ta else b"N"
    n_rows, x_cols, x_item = X.shape[0], X.shape[1], X.dtype.itemsize
    xp = <char*><size_t>X.ctypes.data
    with nogil:
        for e in range(epochs):
            s = 0
            while s + batch <= n_rows:
                xb = xp + s * x_cols * x_item
                for o in range(n_ops):
                    a = xb if a_is_x[o] else pa[o]
                    b = xb if b_is_x[o] else pb[o]
                    if double_:
                        dfn(&T1[o], &T2[o], &M[o], &N[o], &K[o], &d_alpha[o], <double*>b,
                            &LD1[o], <double*>a, &LD2[o], &d_beta[o], <double*>pc[o], &LDC[o])
                    else:
                        sfn(&T1[o], &T2[o], &M[o], &N[o], &K[o], &f_alpha[o], <float*>b,
                            &LD1[o], <float*>a, &LD2[o], &f_beta[o], <float*>pc[o], &LDC[o])
                s += batch
    del keep
