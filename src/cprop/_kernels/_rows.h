/* Row kernels of a dense layer for one sample, written with explicit vectors, and two reductions
 * over a whole gradient buffer (cprop_scale_*, cprop_absmax_*).
 *
 * Why C and not Cython: inlined into the large step kernels of _mlp.pyx, these loops spilled
 * their registers and lost their vectorisation (callgrind: 3.1 instructions per multiply-add),
 * and Cython cannot mark a function noinline or a pointer restrict. Here each loop is compiled
 * on its own, keeps a block of columns in registers across the whole sweep over the inputs, and
 * is vectorised by construction: written once over _vops.h's vector operations (GCC/Clang
 * vector extensions, or SSE2/AVX2 intrinsics for MSVC: _simd.h), SSE2 or, chosen at run time,
 * AVX2 on x86-64; NEON on aarch64; other compilers get the scalar loops.
 *
 * The arithmetic is exactly the scalar one, lane by lane: z_j = b_j, then z_j += a_i * W_ij for
 * i = 0, 1, ... (the oracle's order); W_ij <- W_ij - lr * (a_i * d_j). setup.py compiles with
 * -ffp-contract=off, so no multiply-add is fused into an FMA on any platform and float64
 * results stay bit-identical to cprop.oracle.
 */
#ifndef CPROP_ROWS_H
#define CPROP_ROWS_H

#include "_simd.h"

/* The widest layer (its outputs) cprop_back_narrow takes: its weight columns stay in registers. */
#define CPROP_NARROW_MAX 8

#if CPROP_VECTOR_KERNELS

/* The kernels, for element type T (suffix d: double, f: float), written once in
 * _rows_kernels.h and compiled once per build (_vops_builds.h: SSE2 and AVX2 on x86-64, one
 * 16-byte build elsewhere); the functions below call the build in use.
 *
 *   cprop_net_input_row_SUFFIX(a, W, b, z, n_in, n_out)
 *       z[j] = b[j] + sum_i a[i] * W[i, j]           (W row-major (n_in, n_out))
 *   cprop_rank1_sgd_SUFFIX(W, a, d, n_in, n_out, lr)
 *       W[i, j] = W[i, j] - lr * (a[i] * d[j])
 *   cprop_rank1_add_SUFFIX(G, a, d, n_in, n_out)
 *       G[i, j] = G[i, j] + a[i] * d[j]
 *   cprop_back_sums_SUFFIX(W, d, s, n_in, n_out)
 *       s[i] = 0 + W[i, 0] * d[0] + W[i, 1] * d[1] + ...   (W d, each sum in j order)
 *   cprop_bias_rows_SUFFIX(z, b, rows, n, relu)
 *       z[r, j] = z[r, j] + b[j] for every row; relu: then z = (z > 0 ? z : 0)
 *   cprop_column_sums_SUFFIX(d, rows, n, s, first)
 *       s[j] = d[0, j] + ... + d[rows - 1, j] (first), else s[j] + d[0, j] + ...: rows in order
 *   cprop_back_narrow_SUFFIX(W, d, a, s, rows, n_in, n_out, step, below, colsum, first)
 *       s[r, i] = 0 + d[r, 0] W[i, 0] + d[r, 1] W[i, 1] + ... (j in order) for every row r, then
 *       times (a[r, i] > 0 ? 1 : below) if step; n_out <= CPROP_NARROW_MAX, rows >= 1; colsum
 *       (or NULL): cprop_column_sums(s, rows, n_in, colsum, first) in the same pass
 *   cprop_scale_SUFFIX(g, n, c)     g[k] = g[k] / c (c = the batch's row count), as a
 *       multiplication by 1/c when c is a power of two: then x / c and x * (1/c) are the same
 *       real number, so both round to the same bits; otherwise by division; returns max |g[k]|
 *       of the results, or NaN if any is NaN;
 *   cprop_absmax_SUFFIX(x, n)       max |x[k]| (0 for n = 0), or NaN if any x[k] is NaN.
 *   cprop_sum_parts_SUFFIX(g, n, stride, n_parts, inv, out)
 *       out[i] = ((g[i] + g[stride + i]) + ...) * inv over n_parts slots (out may be g, or
 *       another slot: each value is read before it is written); returns max |out[i]| of the
 *       results, or NaN if any is NaN
 */
#define RV_BODY "_rows_kernels.h"
#include "_vops_builds.h"
#undef RV_BODY

#define CPROP_DISPATCH_ROW_KERNELS(T, SUFFIX)                                                  \
static void cprop_net_input_row_##SUFFIX(const T* a, const T* W, const T* b, T* z,            \
                                         ptrdiff_t n_in, ptrdiff_t n_out)                      \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_net_input_row_##SUFFIX, (a, W, b, z, n_in, n_out));              \
}                                                                                              \
static void cprop_rank1_sgd_##SUFFIX(T* W, const T* a, const T* d, ptrdiff_t n_in,            \
                                     ptrdiff_t n_out, T lr)                                    \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_rank1_sgd_##SUFFIX, (W, a, d, n_in, n_out, lr));                 \
}                                                                                              \
static void cprop_rank1_add_##SUFFIX(T* G, const T* a, const T* d, ptrdiff_t n_in,            \
                                     ptrdiff_t n_out)                                          \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_rank1_add_##SUFFIX, (G, a, d, n_in, n_out));                     \
}                                                                                              \
static void cprop_back_sums_##SUFFIX(const T* W, const T* d, T* s, ptrdiff_t n_in,            \
                                     ptrdiff_t n_out)                                          \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_back_sums_##SUFFIX, (W, d, s, n_in, n_out));                     \
}                                                                                              \
static void cprop_bias_rows_##SUFFIX(T* z, const T* b, ptrdiff_t rows, ptrdiff_t n, int relu)  \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_bias_rows_##SUFFIX, (z, b, rows, n, relu));                      \
}                                                                                              \
static void cprop_column_sums_##SUFFIX(const T* d, ptrdiff_t rows, ptrdiff_t n, T* s,          \
                                       int first)                                              \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_column_sums_##SUFFIX, (d, rows, n, s, first));                   \
}                                                                                              \
static void cprop_back_narrow_##SUFFIX(const T* W, const T* d, const T* a, T* s,              \
                                       ptrdiff_t rows, ptrdiff_t n_in, ptrdiff_t n_out,        \
                                       int step, T below, T* colsum, int first)                \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_back_narrow_##SUFFIX, (W, d, a, s, rows, n_in, n_out, step,      \
                                                     below, colsum, first));                   \
}                                                                                              \
static double cprop_scale_##SUFFIX(T* g, ptrdiff_t n, T c)                                     \
{                                                                                              \
    return CPROP_DISPATCH_CALL(cprop_scale_##SUFFIX, (g, n, c));                               \
}                                                                                              \
static double cprop_absmax_##SUFFIX(const T* x, ptrdiff_t n)                                   \
{                                                                                              \
    return CPROP_DISPATCH_CALL(cprop_absmax_##SUFFIX, (x, n));                                 \
}                                                                                              \
static double cprop_sum_parts_##SUFFIX(const T* g, ptrdiff_t n, ptrdiff_t stride,             \
                                       ptrdiff_t n_parts, T inv, T* out)                       \
{                                                                                              \
    return CPROP_DISPATCH_CALL(cprop_sum_parts_##SUFFIX, (g, n, stride, n_parts, inv, out));   \
}

CPROP_DISPATCH_ROW_KERNELS(double, d)
CPROP_DISPATCH_ROW_KERNELS(float, f)

#else /* no vector kernels (_simd.h): the same loops, scalar (the reductions too) */

#define CPROP_DENSE_KERNELS(T, SUFFIX)                                                         \
static void cprop_net_input_row_##SUFFIX(const T* a, const T* W, const T* b, T* z,            \
                                         ptrdiff_t n_in, ptrdiff_t n_out)                      \
{                                                                                              \
    ptrdiff_t i, j;                                                                            \
    for (j = 0; j < n_out; j++) z[j] = b[j];                                                   \
    for (i = 0; i < n_in; i++)                                                                 \
        for (j = 0; j < n_out; j++) z[j] = z[j] + a[i] * W[i * n_out + j];                     \
}                                                                                              \
static void cprop_rank1_sgd_##SUFFIX(T* W, const T* a, const T* d, ptrdiff_t n_in,            \
                                     ptrdiff_t n_out, T lr)                                    \
{                                                                                              \
    ptrdiff_t i, j;                                                                            \
    for (i = 0; i < n_in; i++)                                                                 \
        for (j = 0; j < n_out; j++) W[i * n_out + j] = W[i * n_out + j] - lr * (a[i] * d[j]);  \
}                                                                                              \
static void cprop_rank1_add_##SUFFIX(T* G, const T* a, const T* d, ptrdiff_t n_in,            \
                                     ptrdiff_t n_out)                                          \
{                                                                                              \
    ptrdiff_t i, j;                                                                            \
    for (i = 0; i < n_in; i++)                                                                 \
        for (j = 0; j < n_out; j++) G[i * n_out + j] = G[i * n_out + j] + a[i] * d[j];         \
}                                                                                              \
static void cprop_back_sums_##SUFFIX(const T* W, const T* d, T* s, ptrdiff_t n_in,            \
                                     ptrdiff_t n_out)                                          \
{                                                                                              \
    ptrdiff_t i, j;                                                                            \
    for (i = 0; i < n_in; i++) {                                                               \
        T acc = 0;                                                                             \
        for (j = 0; j < n_out; j++) acc = acc + W[i * n_out + j] * d[j];                       \
        s[i] = acc;                                                                            \
    }                                                                                          \
}                                                                                              \
static void cprop_bias_rows_##SUFFIX(T* z, const T* b, ptrdiff_t rows, ptrdiff_t n, int relu)  \
{                                                                                              \
    ptrdiff_t r, j;                                                                            \
    T v;                                                                                       \
    for (r = 0; r < rows; r++, z += n)                                                         \
        for (j = 0; j < n; j++) {                                                              \
            v = z[j] + b[j];                                                                   \
            z[j] = relu ? (v > 0 ? v : 0) : v;                                                 \
        }                                                                                      \
}                                                                                              \
static void cprop_back_narrow_##SUFFIX(const T* W, const T* d, const T* a, T* s,              \
                                       ptrdiff_t rows, ptrdiff_t n_in, ptrdiff_t n_out,        \
                                       int step, T below, T* colsum, int first)                \
{                                                                                              \
    ptrdiff_t r, i, j;                                                                         \
    T acc;                                                                                     \
    for (r = 0; r < rows; r++)                                                                 \
        for (i = 0; i < n_in; i++) {                                                           \
            acc = 0;                                                                           \
            for (j = 0; j < n_out; j++) acc = acc + W[i * n_out + j] * d[r * n_out + j];       \
            if (step) acc = acc * (a[r * n_in + i] > 0 ? (T)1 : below);                        \
            s[r * n_in + i] = acc;                                                             \
            if (colsum != NULL) colsum[i] = r > 0 || !first ? colsum[i] + acc : acc;            \
        }                                                                                      \
}                                                                                              \
static void cprop_column_sums_##SUFFIX(const T* d, ptrdiff_t rows, ptrdiff_t n, T* s,          \
                                       int first)                                              \
{                                                                                              \
    ptrdiff_t r, j;                                                                            \
    for (j = 0; j < n; j++) {                                                                  \
        T acc = first ? d[j] : s[j] + d[j];                                                    \
        for (r = 1; r < rows; r++) acc = acc + d[r * n + j];                                   \
        s[j] = acc;                                                                            \
    }                                                                                          \
}

CPROP_DENSE_KERNELS(double, d)
CPROP_DENSE_KERNELS(float, f)
#define CPROP_SCALAR_REDUCE(T, SUFFIX)                                                         \
static double cprop_scale_##SUFFIX(T* g, ptrdiff_t n, T c)                                     \
{                                                                                              \
    ptrdiff_t i;                                                                               \
    double m = 0.0, v;                                                                         \
    for (i = 0; i < n; i++) {                                                                  \
        g[i] = g[i] / c;                                                                       \
        v = fabs((double)g[i]);                                                                \
        if (v != v) m = (double)NAN;                                                           \
        if (m == m && v > m) m = v;                                                            \
    }                                                                                          \
    return m;                                                                                  \
}                                                                                              \
static double cprop_absmax_##SUFFIX(const T* x, ptrdiff_t n)                                   \
{                                                                                              \
    ptrdiff_t i;                                                                               \
    double m = 0.0, v;                                                                         \
    for (i = 0; i < n; i++) {                                                                  \
        v = fabs((double)x[i]);                                                                \
        if (v != v) return (double)NAN;                                                        \
        if (v > m) m = v;                                                                      \
    }                                                                                          \
    return m;                                                                                  \
}                                                                                              \
static double cprop_sum_parts_##SUFFIX(const T* g, ptrdiff_t n, ptrdiff_t stride,             \
                                       ptrdiff_t n_parts, T inv, T* out)                       \
{                                                                                              \
    ptrdiff_t i, k;                                                                            \
    double m = 0.0, v;                                                                         \
    T x;                                                                                       \
    for (i = 0; i < n; i++) {                                                                  \
        x = g[i];                                                                              \
        for (k = 1; k < n_parts; k++) x = x + g[k * stride + i];                               \
        x = x * inv;                                                                           \
        out[i] = x;                                                                            \
        v = fabs((double)x);                                                                   \
        if (v != v) m = (double)NAN;                                                           \
        if (m == m && v > m) m = v;                                                            \
    }                                                                                          \
    return m;                                                                                  \
}
CPROP_SCALAR_REDUCE(double, d)
CPROP_SCALAR_REDUCE(float, f)

#endif

#endif /* CPROP_ROWS_H */
