/* Row kernels of a dense layer for one sample, written with explicit vectors, and two reductions
 * over a whole gradient buffer (cprop_scale_*, cprop_absmax_*).
 *
 * Why C and not Cython: inlined into the large step kernels of _mlp.pyx, these loops spilled
 * their registers and lost their vectorisation (callgrind: 3.1 instructions per multiply-add),
 * and Cython cannot mark a function noinline or a pointer restrict. Here each loop is compiled
 * on its own, keeps a block of columns in registers across the whole sweep over the inputs, and
 * is vectorised by construction (GCC/Clang vector extensions: SSE2 or, chosen at run time,
 * AVX2 on x86-64; NEON on aarch64; other compilers get the scalar loops).
 *
 * The arithmetic is exactly the scalar one, lane by lane: z_j = b_j, then z_j += a_i * W_ij for
 * i = 0, 1, ... (the oracle's order); W_ij <- W_ij - lr * (a_i * d_j). setup.py compiles with
 * -ffp-contract=off, so no multiply-add is fused into an FMA on any platform and float64
 * results stay bit-identical to cprop.oracle.
 */
#ifndef CPROP_ROWS_H
#define CPROP_ROWS_H

#include "_simd.h"

#if CPROP_VECTORS

/* CPROP_DENSE_KERNELS(T, V, LANES, SUFFIX, TARGET) defines, for element type T and its vector
 * type V of LANES lanes, compiled with the function attribute TARGET (may be empty):
 *
 *   cprop_net_input_row_SUFFIX(a, W, b, z, n_in, n_out)
 *       z[j] = b[j] + sum_i a[i] * W[i, j]           (W row-major (n_in, n_out))
 *   cprop_rank1_sgd_SUFFIX(W, a, d, n_in, n_out, lr)
 *       W[i, j] = W[i, j] - lr * (a[i] * d[j])
 *   cprop_rank1_add_SUFFIX(G, a, d, n_in, n_out)
 *       G[i, j] = G[i, j] + a[i] * d[j]
 *   cprop_back_sums_SUFFIX(W, d, s, n_in, n_out)
 *       s[i] = 0 + W[i, 0] * d[0] + W[i, 1] * d[1] + ...   (W d, each sum in j order)
 */
#define CPROP_DENSE_KERNELS(T, V, LANES, SUFFIX, TARGET)                                       \
static CPROP_NOINLINE TARGET void cprop_net_input_row_##SUFFIX(                                      \
    const T* CPROP_RESTRICT a, const T* CPROP_RESTRICT W, const T* CPROP_RESTRICT b,          \
    T* CPROP_RESTRICT z, ptrdiff_t n_in, ptrdiff_t n_out)                                      \
{                                                                                              \
    ptrdiff_t i, j = 0, k;                                                                     \
    /* 8 vectors of accumulators: enough independent additions to hide their latency. */       \
    for (; j + 8 * LANES <= n_out; j += 8 * LANES) {                                           \
        V acc[8];                                                                              \
        const T* w = W + j;                                                                    \
        for (k = 0; k < 8; k++) acc[k] = CPROP_LD(V, b + j + k * LANES);                       \
        for (i = 0; i < n_in; i++, w += n_out) {                                               \
            V ai = (V){0} + a[i];                                                              \
            for (k = 0; k < 8; k++) acc[k] = acc[k] + ai * CPROP_LD(V, w + k * LANES);        \
        }                                                                                      \
        for (k = 0; k < 8; k++) CPROP_ST(z + j + k * LANES, acc[k]);                           \
    }                                                                                          \
    for (; j + 2 * LANES <= n_out; j += 2 * LANES) {                                           \
        const T* w = W + j;                                                                    \
        V acc0 = CPROP_LD(V, b + j), acc1 = CPROP_LD(V, b + j + LANES);                        \
        for (i = 0; i < n_in; i++, w += n_out) {                                               \
            V ai = (V){0} + a[i];                                                              \
            acc0 = acc0 + ai * CPROP_LD(V, w);                                                 \
            acc1 = acc1 + ai * CPROP_LD(V, w + LANES);                                         \
        }                                                                                      \
        CPROP_ST(z + j, acc0);                                                                 \
        CPROP_ST(z + j + LANES, acc1);                                                         \
    }                                                                                          \
    for (; j + LANES <= n_out; j += LANES) {                                                   \
        const T* w = W + j;                                                                    \
        V acc0 = CPROP_LD(V, b + j);                                                           \
        for (i = 0; i < n_in; i++, w += n_out) acc0 = acc0 + ((V){0} + a[i]) * CPROP_LD(V, w); \
        CPROP_ST(z + j, acc0);                                                                 \
    }                                                                                          \
    for (; j < n_out; j++) {                                                                   \
        T s = b[j];                                                                            \
        for (i = 0; i < n_in; i++) s = s + a[i] * W[i * n_out + j];                            \
        z[j] = s;                                                                              \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static CPROP_NOINLINE TARGET void cprop_rank1_sgd_##SUFFIX(                                          \
    T* CPROP_RESTRICT W, const T* CPROP_RESTRICT a, const T* CPROP_RESTRICT d,                \
    ptrdiff_t n_in, ptrdiff_t n_out, T lr)                                                     \
{                                                                                              \
    ptrdiff_t i, j = 0, k;                                                                     \
    V lrv = (V){0} + lr;                                                                       \
    /* A block of d in registers for every row, so each weight costs one load and one store. */ \
    for (; j + 8 * LANES <= n_out; j += 8 * LANES) {                                           \
        V dv[8];                                                                               \
        T* w = W + j;                                                                          \
        for (k = 0; k < 8; k++) dv[k] = CPROP_LD(V, d + j + k * LANES);                        \
        for (i = 0; i < n_in; i++, w += n_out) {                                               \
            V ai = (V){0} + a[i];                                                              \
            for (k = 0; k < 8; k++)                                                            \
                CPROP_ST(w + k * LANES, CPROP_LD(V, w + k * LANES) - lrv * (ai * dv[k]));      \
        }                                                                                      \
    }                                                                                          \
    for (; j + LANES <= n_out; j += LANES) {                                                   \
        V dv = CPROP_LD(V, d + j);                                                             \
        T* w = W + j;                                                                          \
        for (i = 0; i < n_in; i++, w += n_out)                                                 \
            CPROP_ST(w, CPROP_LD(V, w) - lrv * (((V){0} + a[i]) * dv));                        \
    }                                                                                          \
    for (; j < n_out; j++)                                                                     \
        for (i = 0; i < n_in; i++) W[i * n_out + j] = W[i * n_out + j] - lr * (a[i] * d[j]);  \
}                                                                                              \
                                                                                               \
static CPROP_NOINLINE TARGET void cprop_rank1_add_##SUFFIX(                                          \
    T* CPROP_RESTRICT G, const T* CPROP_RESTRICT a, const T* CPROP_RESTRICT d,                \
    ptrdiff_t n_in, ptrdiff_t n_out)                                                           \
{                                                                                              \
    ptrdiff_t i, j = 0, k;                                                                     \
    for (; j + 8 * LANES <= n_out; j += 8 * LANES) {                                           \
        V dv[8];                                                                               \
        T* g = G + j;                                                                          \
        for (k = 0; k < 8; k++) dv[k] = CPROP_LD(V, d + j + k * LANES);                        \
        for (i = 0; i < n_in; i++, g += n_out) {                                               \
            V ai = (V){0} + a[i];                                                              \
            for (k = 0; k < 8; k++)                                                            \
                CPROP_ST(g + k * LANES, CPROP_LD(V, g + k * LANES) + ai * dv[k]);              \
        }                                                                                      \
    }                                                                                          \
    for (; j + LANES <= n_out; j += LANES) {                                                   \
        V dv = CPROP_LD(V, d + j);                                                             \
        T* g = G + j;                                                                          \
        for (i = 0; i < n_in; i++, g += n_out)                                                 \
            CPROP_ST(g, CPROP_LD(V, g) + ((V){0} + a[i]) * dv);                                \
    }                                                                                          \
    for (; j < n_out; j++)                                                                     \
        for (i = 0; i < n_in; i++) G[i * n_out + j] = G[i * n_out + j] + a[i] * d[j];         \
}                                                                                              \
                                                                                               \
/* s_i = 0 + W_i0 d_0 + W_i1 d_1 + ... (j in order, as the oracle adds): the lanes run along i, \
 * each gathering its row's W_ij, so every sum keeps its own sequential order. */               \
static CPROP_NOINLINE TARGET void cprop_back_sums_##SUFFIX(                                    \
    const T* CPROP_RESTRICT W, const T* CPROP_RESTRICT d, T* CPROP_RESTRICT s,                \
    ptrdiff_t n_in, ptrdiff_t n_out)                                                           \
{                                                                                              \
    ptrdiff_t i = 0, j, k;                                                                     \
    T w0[LANES], w1[LANES];                                                                    \
    for (; i + 2 * LANES <= n_in; i += 2 * LANES) {                                            \
        V acc0 = (V){0}, acc1 = (V){0};                                                        \
        for (j = 0; j < n_out; j++) {                                                          \
            V dj = (V){0} + d[j];                                                              \
            for (k = 0; k < LANES; k++) {                                                      \
                w0[k] = W[(i + k) * n_out + j];                                                \
                w1[k] = W[(i + LANES + k) * n_out + j];                                        \
            }                                                                                  \
            acc0 = acc0 + CPROP_LD(V, w0) * dj;                                                \
            acc1 = acc1 + CPROP_LD(V, w1) * dj;                                                \
        }                                                                                      \
        CPROP_ST(s + i, acc0);                                                                 \
        CPROP_ST(s + i + LANES, acc1);                                                         \
    }                                                                                          \
    for (; i + LANES <= n_in; i += LANES) {                                                    \
        V acc0 = (V){0};                                                                       \
        for (j = 0; j < n_out; j++) {                                                          \
            for (k = 0; k < LANES; k++) w0[k] = W[(i + k) * n_out + j];                        \
            acc0 = acc0 + CPROP_LD(V, w0) * ((V){0} + d[j]);                                   \
        }                                                                                      \
        CPROP_ST(s + i, acc0);                                                                 \
    }                                                                                          \
    for (; i < n_in; i++) {                                                                    \
        T acc = 0;                                                                             \
        for (j = 0; j < n_out; j++) acc = acc + W[i * n_out + j] * d[j];                       \
        s[i] = acc;                                                                            \
    }                                                                                          \
}


/* CPROP_REDUCE_KERNELS(T, V, VI, LANES, ABSMASK, SUFFIX, TARGET): over a whole gradient buffer,
 *
 *   cprop_scale_##SUFFIX(g, n, c)     g[k] = g[k] / c (c = the batch's row count), as a
 *       multiplication by 1/c when c is a power of two: then x / c and x * (1/c) are the same
 *       real number, so both round to the same bits; otherwise by division;
 *   cprop_absmax_##SUFFIX(x, n)       max |x[k]| (0 for n = 0), or NaN if any x[k] is NaN.
 *
 * VI is the integer vector type of V's size (for |x| by masking the sign bit, and for masks).
 */
#define CPROP_REDUCE_KERNELS(T, V, VI, LANES, ABSMASK, SUFFIX, TARGET)                        \
static CPROP_NOINLINE TARGET void cprop_scale_##SUFFIX(T* CPROP_RESTRICT g, ptrdiff_t n, T c)  \
{                                                                                              \
    ptrdiff_t i = 0;                                                                           \
    if (c > 0 && c == c && (((long long)c) & (((long long)c) - 1)) == 0                        \
        && (T)(long long)c == c) {                                                             \
        T inv = (T)1 / c;                                                                      \
        V iv = (V){0} + inv;                                                                   \
        for (; i + LANES <= n; i += LANES) CPROP_ST(g + i, CPROP_LD(V, g + i) * iv);           \
        for (; i < n; i++) g[i] = g[i] * inv;                                                  \
        return;                                                                                \
    }                                                                                          \
    V cv = (V){0} + c;                                                                         \
    for (; i + LANES <= n; i += LANES) CPROP_ST(g + i, CPROP_LD(V, g + i) / cv);               \
    for (; i < n; i++) g[i] = g[i] / c;                                                        \
}                                                                                              \
                                                                                               \
static CPROP_NOINLINE TARGET double cprop_absmax_##SUFFIX(const T* CPROP_RESTRICT x,           \
                                                         ptrdiff_t n)                          \
{                                                                                              \
    ptrdiff_t i = 0;                                                                           \
    int k;                                                                                     \
    V m0 = {0}, m1 = {0};                                                                      \
    VI bad = {0};                                                                              \
    const VI mask = (VI){0} + (ABSMASK);                                                       \
    double m = 0.0, v;                                                                         \
    /* Two running maxima: more independent work per iteration. NaN never wins a > compare,  \
       so it is tracked separately (x != x). */                                               \
    for (; i + 2 * LANES <= n; i += 2 * LANES) {                                               \
        V x0 = CPROP_LD(V, x + i), x1 = CPROP_LD(V, x + i + LANES);                            \
        V a0 = (V)((VI)x0 & mask), a1 = (V)((VI)x1 & mask);                                    \
        VI g0 = (VI)(a0 > m0), g1 = (VI)(a1 > m1);                                             \
        m0 = (V)(((VI)a0 & g0) | ((VI)m0 & ~g0));                                              \
        m1 = (V)(((VI)a1 & g1) | ((VI)m1 & ~g1));                                              \
        bad |= (VI)(x0 != x0) | (VI)(x1 != x1);                                                \
    }                                                                                          \
    for (k = 0; k < LANES; k++) {                                                              \
        if (bad[k]) return (double)NAN;                                                        \
        if ((double)m0[k] > m) m = (double)m0[k];                                              \
        if ((double)m1[k] > m) m = (double)m1[k];                                              \
    }                                                                                          \
    for (; i < n; i++) {                                                                       \
        v = fabs((double)x[i]);                                                                \
        if (v != v) return (double)NAN;                                                        \
        if (v > m) m = v;                                                                      \
    }                                                                                          \
    return m;                                                                                  \
}

#if defined(CPROP_DISPATCH)
/* x86-64: the SSE2 and the AVX2 build of each kernel (see _simd.h), and the function that calls
 * one of them. */
CPROP_DENSE_KERNELS(double, cprop_vd, 2, d_base, )
CPROP_DENSE_KERNELS(float, cprop_vf, 4, f_base, )
CPROP_DENSE_KERNELS(double, cprop_vd32, 4, d_avx2, CPROP_AVX2)
CPROP_DENSE_KERNELS(float, cprop_vf32, 8, f_avx2, CPROP_AVX2)
CPROP_REDUCE_KERNELS(double, cprop_vd, cprop_vl, 2, 0x7FFFFFFFFFFFFFFFLL, d_base, )
CPROP_REDUCE_KERNELS(float, cprop_vf, cprop_vi, 4, 0x7FFFFFFF, f_base, )
CPROP_REDUCE_KERNELS(double, cprop_vd32, cprop_vl32, 4, 0x7FFFFFFFFFFFFFFFLL, d_avx2, CPROP_AVX2)
CPROP_REDUCE_KERNELS(float, cprop_vf32, cprop_vi32, 8, 0x7FFFFFFF, f_avx2, CPROP_AVX2)

#define CPROP_DISPATCH_ROW_KERNELS(T, SUFFIX)                                                  \
static void cprop_net_input_row_##SUFFIX(const T* a, const T* W, const T* b, T* z,            \
                                         ptrdiff_t n_in, ptrdiff_t n_out)                      \
{                                                                                              \
    if (cprop_use_avx2) cprop_net_input_row_##SUFFIX##_avx2(a, W, b, z, n_in, n_out);          \
    else cprop_net_input_row_##SUFFIX##_base(a, W, b, z, n_in, n_out);                         \
}                                                                                              \
static void cprop_rank1_sgd_##SUFFIX(T* W, const T* a, const T* d, ptrdiff_t n_in,            \
                                     ptrdiff_t n_out, T lr)                                    \
{                                                                                              \
    if (cprop_use_avx2) cprop_rank1_sgd_##SUFFIX##_avx2(W, a, d, n_in, n_out, lr);             \
    else cprop_rank1_sgd_##SUFFIX##_base(W, a, d, n_in, n_out, lr);                            \
}                                                                                              \
static void cprop_rank1_add_##SUFFIX(T* G, const T* a, const T* d, ptrdiff_t n_in,            \
                                     ptrdiff_t n_out)                                          \
{                                                                                              \
    if (cprop_use_avx2) cprop_rank1_add_##SUFFIX##_avx2(G, a, d, n_in, n_out);                 \
    else cprop_rank1_add_##SUFFIX##_base(G, a, d, n_in, n_out);                                \
}                                                                                              \
static void cprop_back_sums_##SUFFIX(const T* W, const T* d, T* s, ptrdiff_t n_in,          \
                                     ptrdiff_t n_out)                                          \
{                                                                                              \
    if (cprop_use_avx2) cprop_back_sums_##SUFFIX##_avx2(W, d, s, n_in, n_out);                 \
    else cprop_back_sums_##SUFFIX##_base(W, d, s, n_in, n_out);                                \
}                                                                                              \
static void cprop_scale_##SUFFIX(T* g, ptrdiff_t n, T c)                                       \
{                                                                                              \
    if (cprop_use_avx2) cprop_scale_##SUFFIX##_avx2(g, n, c);                                  \
    else cprop_scale_##SUFFIX##_base(g, n, c);                                                 \
}                                                                                              \
static double cprop_absmax_##SUFFIX(const T* x, ptrdiff_t n)                                   \
{                                                                                              \
    return cprop_use_avx2 ? cprop_absmax_##SUFFIX##_avx2(x, n)                                 \
                          : cprop_absmax_##SUFFIX##_base(x, n);                                \
}

CPROP_DISPATCH_ROW_KERNELS(double, d)
CPROP_DISPATCH_ROW_KERNELS(float, f)

#else /* other architectures (aarch64: NEON is baseline): one portable build */

CPROP_DENSE_KERNELS(double, cprop_vd, 2, d, )
CPROP_DENSE_KERNELS(float, cprop_vf, 4, f, )
CPROP_REDUCE_KERNELS(double, cprop_vd, cprop_vl, 2, 0x7FFFFFFFFFFFFFFFLL, d, )
CPROP_REDUCE_KERNELS(float, cprop_vf, cprop_vi, 4, 0x7FFFFFFF, f, )

#endif

#else /* no vector extensions: the same loops, scalar (the reductions too) */

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
}

CPROP_DENSE_KERNELS(double, d)
CPROP_DENSE_KERNELS(float, f)
#define CPROP_SCALAR_REDUCE(T, SUFFIX)                                                         \
static void cprop_scale_##SUFFIX(T* g, ptrdiff_t n, T c)                                       \
{                                                                                              \
    ptrdiff_t i;                                                                               \
    for (i = 0; i < n; i++) g[i] = g[i] / c;                                                   \
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
}
CPROP_SCALAR_REDUCE(double, d)
CPROP_SCALAR_REDUCE(float, f)

#endif

#endif /* CPROP_ROWS_H */
