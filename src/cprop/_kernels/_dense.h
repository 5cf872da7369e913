/* Row kernels of a dense layer for one sample, written with explicit vectors.
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
#ifndef CPROP_DENSE_H
#define CPROP_DENSE_H

#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define CPROP_VECTORS 1
#define CPROP_NOINLINE __attribute__((noinline))
#define CPROP_RESTRICT __restrict__
typedef double cprop_vd __attribute__((vector_size(16)));
typedef float cprop_vf __attribute__((vector_size(16)));
typedef double cprop_vd32 __attribute__((vector_size(32)));
typedef float cprop_vf32 __attribute__((vector_size(32)));
typedef long long cprop_vl __attribute__((vector_size(16)));
typedef int cprop_vi __attribute__((vector_size(16)));
typedef long long cprop_vl32 __attribute__((vector_size(32)));
typedef int cprop_vi32 __attribute__((vector_size(32)));
typedef unsigned int cprop_vu __attribute__((vector_size(16)));
typedef unsigned long long cprop_vul __attribute__((vector_size(16)));
typedef unsigned int cprop_vu32 __attribute__((vector_size(32)));
typedef unsigned long long cprop_vul32 __attribute__((vector_size(32)));
#else
#define CPROP_VECTORS 0
#define CPROP_NOINLINE
#define CPROP_RESTRICT
#endif

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
#define CPROP_LD(V, p) ({ V v_; memcpy(&v_, (p), sizeof(V)); v_; })
#define CPROP_ST(p, v) do { __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof(v_)); } while (0)


/* Vectorised, branch-free exp, sigmoid and softmax (float32 everywhere; float64 only on the BLAS
 * path, whose sums were never the oracle's, so its loop paths keep libm's exp).
 *
 * exp(x): Cody-Waite reduction x = k ln2 + r with k = nearest integer to x / ln2 (by the
 * 1.5 * 2^mant shifter: no float-to-int conversion), ln2 split into hi + lo so that hi = x - k ln2hi
 * is exact; e^r = 1 + r + r^2 P(r) with P a near-minimax polynomial on |r| <= ln2 / 2 (degree 5
 * for float32, 10 for float64; truncation error 0.02 / 0.007 ulp), summed as
 * 1 + (hi + (r^2 P - lo)) so that r's own rounding does not enter (hi + ... as an exact
 * two-term sum, carried into the sigmoid); then scaled by 2^k1 * 2^k2
 * (k1 + k2 = k, both normal powers built in the exponent bits): the first product is exact and the
 * second rounds once, so results fall gradually into the subnormals and then to 0. x is first
 * clamped to [XLO, XHI], where exp is already exactly 0 / +inf after rounding, and NaN is carried
 * through by a mask. Plain multiplies and adds only (no FMA; -ffp-contract=off), so every lane of
 * SSE2, AVX2 and the scalar fallback gives the same bits. Max error (tests/test_vector_math.py):
 * under 1 ulp in both types.
 *
 * sigmoid(z) = (z >= 0 ? 1 : e) / (1 + e) with e = exp(-|z|): exp never overflows, +-1000 give
 * exactly 1 / 0, +-inf give 1 / 0, NaN stays NaN. The numerator is selected by a mask, not a
 * branch, and the quotient is corrected to first order for e's low part and for the rounding of
 * 1 + e: the plain formula, even with a correctly rounded exp, is off by up to 2.3 ulp (float32) /
 * 2.1 ulp (float64); this one by 1.1 ulp.
 *
 * softmax: row max, then exp(z - max) summed as 32 bytes' worth of partial sums (8 float / 4 double;
 * 2 SSE2 vectors or 1 AVX2 vector, the same lanes either way) plus the tail in order, so the sum's
 * order and bits do not depend on the instruction set; then z / sum. Returns the log-sum-exp
 * max + log(sum) (in double) if asked.
 */
#define CPROP_EXP_f_LOG2E 1.44269502e+00f
#define CPROP_EXP_f_SHIFT 12582912.0f          /* 1.5 * 2^23 */
#define CPROP_EXP_f_SHIFT_BIAS 12583039.0f     /* 1.5 * 2^23 + 127 */
#define CPROP_EXP_f_L2HI 0.693359375f          /* 9 significant bits: k * L2HI is exact */
#define CPROP_EXP_f_L2LO -2.12194442e-04f      /* ln 2 - L2HI */
#define CPROP_EXP_f_XLO -104.0f                /* e^-104 < 2^-150: rounds to 0 */
#define CPROP_EXP_f_XHI 89.0f                  /* e^89 > FLT_MAX: rounds to +inf */
#define CPROP_EXP_f_MANT 23
#define CPROP_EXP_f_SIGN 0x80000000u
/* P(r) ~ (e^r - 1 - r) / r^2, Estrin's scheme (r2 = r^2, r4 = r^4, r8 = r^8): a short chain of
 * dependent operations, so that the out-of-order core overlaps many vectors. */
#define CPROP_EXP_f_POLY(V, r, r2, r4, r8)                                                     \
    ((((V){0} + 1.66666657e-01f) * (r) + 0.5f)                                                 \
     + (r2) * ((((V){0} + 8.33349675e-03f) * (r) + 4.16662954e-02f)                          \
               + (r2) * (((V){0} + 1.97903457e-04f) * (r) + 1.39446603e-03f)))

#define CPROP_EXP_d_LOG2E 1.4426950408889634
#define CPROP_EXP_d_SHIFT 6755399441055744.0   /* 1.5 * 2^52 */
#define CPROP_EXP_d_SHIFT_BIAS 6755399441056767.0 /* 1.5 * 2^52 + 1023 */
#define CPROP_EXP_d_L2HI 6.93147180369123816490e-01  /* 32 significant bits (fdlibm's ln2_hi) */
#define CPROP_EXP_d_L2LO 1.90821492927058770002e-10
#define CPROP_EXP_d_XLO -746.0                 /* e^-746 < 2^-1075: rounds to 0 */
#define CPROP_EXP_d_XHI 710.0                  /* e^710 > DBL_MAX: rounds to +inf */
#define CPROP_EXP_d_MANT 52
#define CPROP_EXP_d_SIGN 0x8000000000000000ULL
#define CPROP_EXP_d_POLY(V, r, r2, r4, r8)                                                     \
    (((((V){0} + 0.16666666666666682) * (r) + 0.5)                                             \
      + (r2) * (((V){0} + 0.008333333333317034) * (r) + 0.041666666666666095))                \
     + (r4) * ((((V){0} + 0.00019841269896384513) * (r) + 0.0013888888889115637)              \
               + (r2) * (((V){0} + 2.755723486130839e-06) * (r) + 2.4801586926620483e-05))    \
     + (r8) * ((((V){0} + 2.5112037030528525e-08) * (r) + 2.755758185735806e-07)             \
               + (r2) * ((V){0} + 2.0826624606190034e-09)))

#if CPROP_VECTORS

/* z[i] = FN(z[i]) in place, FN a function of one vector V: two vectors at a time, then one,
 * then the tail through one zero-padded vector (the same lanes, so the same bits). */
#define CPROP_ROW_MAP_BODY(T, V, LANES, FN)                                                    \
{                                                                                              \
    ptrdiff_t i = 0;                                                                           \
    V v;                                                                                       \
    for (; i + 2 * LANES <= n; i += 2 * LANES) {                                               \
        V a = CPROP_LD(V, z + i), b = CPROP_LD(V, z + i + LANES);                              \
        CPROP_ST(z + i, FN(a));                                                                \
        CPROP_ST(z + i + LANES, FN(b));                                                        \
    }                                                                                          \
    for (; i + LANES <= n; i += LANES) CPROP_ST(z + i, FN(CPROP_LD(V, z + i)));                \
    if (i < n) {                                                                               \
        v = (V){0};                                                                            \
        memcpy(&v, z + i, (size_t)(n - i) * sizeof(T));                                       \
        v = FN(v);                                                                             \
        memcpy(z + i, &v, (size_t)(n - i) * sizeof(T));                                       \
    }                                                                                          \
}

/* CPROP_VMATH_KERNELS(T, V, VU, LANES, K, SUFFIX, TARGET): VU is the unsigned integer vector of
 * V's size, K is f or d (the constants above). Defines cprop_exp_row_SUFFIX(z, n),
 * cprop_sigmoid_row_SUFFIX(z, n) (in place) and cprop_softmax_row_SUFFIX(z, n, want_lse). */
#define CPROP_VMATH_KERNELS(T, V, VU, LANES, K, SUFFIX, TARGET)                                \
/* exp(x) = (ph + pl) * s1 * s2: the unscaled e^r as an unevaluated sum ph + pl (|pl| <= about  \
   1 ulp of ph), s1 = 2^k1, s2 = 2^k2. Returns x's NaN mask. */                                \
static inline __attribute__((always_inline)) TARGET VU cprop_vexp_core_##SUFFIX(                \
    V x, V* ph, V* pl, V* s1, V* s2)                                                           \
{                                                                                              \
    const V one = (V){0} + (T)1, shift = (V){0} + CPROP_EXP_##K##_SHIFT;                       \
    const V lo = (V){0} + CPROP_EXP_##K##_XLO, hi = (V){0} + CPROP_EXP_##K##_XHI;              \
    VU mnan = (VU)(x != x), mlo = (VU)(x < lo), mhi = (VU)(x > hi);                            \
    V xc = (V)(((VU)x & ~(mnan | mlo | mhi)) | ((VU)lo & mlo) | ((VU)hi & mhi));               \
    V kd = (xc * CPROP_EXP_##K##_LOG2E + shift) - shift;        /* nearest integer to x/ln2 */ \
    V k1 = (kd * (T)0.5 + shift) - shift, k2 = kd - k1;         /* k = k1 + k2, halves */      \
    V rh = xc - kd * CPROP_EXP_##K##_L2HI;                      /* exact */                    \
    V rl = kd * CPROP_EXP_##K##_L2LO;                                                          \
    V r = rh - rl, r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;                                     \
    (void)r8;                                                   /* float32: unused */          \
    V t = r2 * (CPROP_EXP_##K##_POLY(V, r, r2, r4, r8)) - rl;                                  \
    V sh = rh + t, sb = sh - rh;                                /* 2Sum: sh + sl = rh + t */   \
    V sl = (rh - (sh - sb)) + (t - sb);                                                        \
    *ph = one + sh;                                             /* Fast2Sum, |sh| < 1 */       \
    *pl = ((one - *ph) + sh) + sl;                                                             \
    *s1 = (V)((VU)(k1 + CPROP_EXP_##K##_SHIFT_BIAS) << CPROP_EXP_##K##_MANT);                  \
    *s2 = (V)((VU)(k2 + CPROP_EXP_##K##_SHIFT_BIAS) << CPROP_EXP_##K##_MANT);                  \
    return mnan;                                                                               \
}                                                                                              \
                                                                                               \
static inline __attribute__((always_inline)) TARGET V cprop_vexp_##SUFFIX(V x)                 \
{                                                                                              \
    V ph, pl, s1, s2, res;                                                                     \
    VU mnan = cprop_vexp_core_##SUFFIX(x, &ph, &pl, &s1, &s2);                                 \
    res = ((ph + pl) * s1) * s2;          /* (p s1) is exact, the last product rounds once */  \
    return (V)(((VU)res & ~mnan) | ((VU)x & mnan));                                            \
}                                                                                              \
                                                                                               \
/* sigmoid(z) = num / (1 + e), e = exp(-|z|) = eh + el, num = 1 (z >= 0) or e: the quotient of  \
   the leading parts, corrected for el and for the rounding of 1 + eh (dl), to first order.  */ \
static inline __attribute__((always_inline)) TARGET V cprop_vsigmoid_##SUFFIX(V z)             \
{                                                                                              \
    const V one = (V){0} + (T)1;                                                               \
    V ph, pl, s1, s2, eh, el, d, dl, q, res;                                                   \
    VU mnan = cprop_vexp_core_##SUFFIX((V)((VU)z | CPROP_EXP_##K##_SIGN), &ph, &pl, &s1, &s2); \
    VU pos = (VU)(z >= (V){0});                                                                \
    eh = (ph * s1) * s2;                                                                       \
    el = (pl * s1) * s2;                                                                       \
    d = one + eh;                                                                              \
    dl = ((one - d) + eh) + el;                                 /* 1 + e = d + dl */           \
    q = (V)(((VU)one & pos) | ((VU)eh & ~pos)) / d;                                            \
    res = q + ((V)((VU)el & ~pos) - q * dl) * (V)(((VU)q & pos) | ((VU)(one - q) & ~pos));    \
    return (V)(((VU)res & ~mnan) | ((VU)z & mnan));                                            \
}                                                                                              \
                                                                                               \
static CPROP_NOINLINE TARGET void cprop_exp_row_##SUFFIX(T* CPROP_RESTRICT z, ptrdiff_t n)     \
CPROP_ROW_MAP_BODY(T, V, LANES, cprop_vexp_##SUFFIX)                                           \
                                                                                               \
static CPROP_NOINLINE TARGET void cprop_sigmoid_row_##SUFFIX(T* CPROP_RESTRICT z, ptrdiff_t n) \
CPROP_ROW_MAP_BODY(T, V, LANES, cprop_vsigmoid_##SUFFIX)                                       \
                                                                                               \
static CPROP_NOINLINE TARGET double cprop_softmax_row_##SUFFIX(T* CPROP_RESTRICT z,            \
                                                              ptrdiff_t n, int want_lse)       \
{                                                                                              \
    enum { NV = 32 / sizeof(V), BLK = 32 / sizeof(T) };                                        \
    ptrdiff_t i, j, k, c;                                                                      \
    T m, s = 0, part[BLK];                                                                     \
    V acc[NV], mv, v;                                                                          \
    if (n <= 0) return 0.0;                                                                    \
    m = z[0];                                                                                  \
    for (j = 1; j < n; j++) m = z[j] > m ? z[j] : m;                                           \
    mv = (V){0} + m;                                                                           \
    for (k = 0; k < NV; k++) acc[k] = (V){0};                                                  \
    for (j = 0; j + BLK <= n; j += BLK)                                                        \
        for (k = 0; k < NV; k++) {                                                             \
            v = cprop_vexp_##SUFFIX(CPROP_LD(V, z + j + k * LANES) - mv);                      \
            CPROP_ST(z + j + k * LANES, v);                                                    \
            acc[k] = acc[k] + v;                                                               \
        }                                                                                      \
    for (i = j; i < n; i += LANES) {                                                           \
        c = n - i < LANES ? n - i : LANES;                                                     \
        v = mv;                                                                                \
        memcpy(&v, z + i, (size_t)c * sizeof(T));                                              \
        v = cprop_vexp_##SUFFIX(v - mv);                                                       \
        memcpy(z + i, &v, (size_t)c * sizeof(T));                                              \
    }                                                                                          \
    memcpy(part, acc, sizeof(part));            /* part[q]: the values at q mod BLK */         \
    for (k = 0; k < BLK; k++) s = s + part[k];                                                 \
    for (i = j; i < n; i++) s = s + z[i];                                                      \
    v = (V){0} + s;                                                                            \
    for (i = 0; i + LANES <= n; i += LANES) CPROP_ST(z + i, CPROP_LD(V, z + i) / v);           \
    for (; i < n; i++) z[i] = z[i] / s;                                                        \
    return want_lse ? (double)m + log((double)s) : 0.0;                                        \
}

#endif /* CPROP_VECTORS */

/* The same three kernels, one value at a time, for compilers without vector extensions: the
 * same operations in the same order, so the same bits. */
#define CPROP_SCALAR_VMATH(T, U, K, SUFFIX)                                                    \
static T cprop_spow2_##SUFFIX(T kd)                                                           \
{                                                                                              \
    T t = kd + CPROP_EXP_##K##_SHIFT_BIAS, s;                                                  \
    U b;                                                                                       \
    memcpy(&b, &t, sizeof b);                                                                  \
    b = b << CPROP_EXP_##K##_MANT;                                                             \
    memcpy(&s, &b, sizeof b);                                                                  \
    return s;                                                                                  \
}                                                                                              \
static void cprop_sexp_core_##SUFFIX(T x, T* ph, T* pl, T* s1, T* s2)                          \
{                                                                                              \
    T kd, k1, rh, rl, r, r2, r4, r8, t, sh, sb, sl;                                            \
    if (x != x) x = 0;                                                                         \
    if (x < CPROP_EXP_##K##_XLO) x = CPROP_EXP_##K##_XLO;                                      \
    if (x > CPROP_EXP_##K##_XHI) x = CPROP_EXP_##K##_XHI;                                      \
    kd = (x * CPROP_EXP_##K##_LOG2E + CPROP_EXP_##K##_SHIFT) - CPROP_EXP_##K##_SHIFT;          \
    k1 = (kd * (T)0.5 + CPROP_EXP_##K##_SHIFT) - CPROP_EXP_##K##_SHIFT;                        \
    rh = x - kd * CPROP_EXP_##K##_L2HI;                                                        \
    rl = kd * CPROP_EXP_##K##_L2LO;                                                            \
    r = rh - rl;                                                                               \
    r2 = r * r;                                                                                \
    r4 = r2 * r2;                                                                              \
    r8 = r4 * r4;                                                                              \
    (void)r8;                                                                                  \
    t = r2 * (CPROP_EXP_##K##_POLY(T, r, r2, r4, r8)) - rl;                                    \
    sh = rh + t;                                                                               \
    sb = sh - rh;                                                                              \
    sl = (rh - (sh - sb)) + (t - sb);                                                          \
    *ph = (T)1 + sh;                                                                           \
    *pl = (((T)1 - *ph) + sh) + sl;                                                            \
    *s1 = cprop_spow2_##SUFFIX(k1);                                                            \
    *s2 = cprop_spow2_##SUFFIX(kd - k1);                                                       \
}                                                                                              \
static T cprop_sexp_##SUFFIX(T x)                                                              \
{                                                                                              \
    T ph, pl, s1, s2;                                                                          \
    if (x != x) return x;                                                                      \
    cprop_sexp_core_##SUFFIX(x, &ph, &pl, &s1, &s2);                                           \
    return ((ph + pl) * s1) * s2;                                                              \
}                                                                                              \
static T cprop_ssigmoid_##SUFFIX(T z)                                                          \
{                                                                                              \
    T ph, pl, s1, s2, eh, el, d, dl, q;                                                        \
    if (z != z) return z;                                                                      \
    cprop_sexp_core_##SUFFIX(-(T)fabs(z), &ph, &pl, &s1, &s2);                                 \
    eh = (ph * s1) * s2;                                                                       \
    el = (pl * s1) * s2;                                                                       \
    d = (T)1 + eh;                                                                             \
    dl = (((T)1 - d) + eh) + el;                                                               \
    if (z >= 0) {                                                                              \
        q = (T)1 / d;                                                                          \
        return q + ((T)0 - q * dl) * q;                                                        \
    }                                                                                          \
    q = eh / d;                                                                                \
    return q + (el - q * dl) * ((T)1 - q);                                                     \
}                                                                                              \
static void cprop_exp_row_##SUFFIX(T* z, ptrdiff_t n)                                          \
{                                                                                              \
    ptrdiff_t i;                                                                               \
    for (i = 0; i < n; i++) z[i] = cprop_sexp_##SUFFIX(z[i]);                                  \
}                                                                                              \
static void cprop_sigmoid_row_##SUFFIX(T* z, ptrdiff_t n)                                      \
{                                                                                              \
    ptrdiff_t i;                                                                               \
    for (i = 0; i < n; i++) z[i] = cprop_ssigmoid_##SUFFIX(z[i]);                              \
}                                                                                              \
static double cprop_softmax_row_##SUFFIX(T* z, ptrdiff_t n, int want_lse)                      \
{                                                                                              \
    enum { BLK = 32 / sizeof(T) };                                                             \
    ptrdiff_t i, j, k;                                                                         \
    T m, s = 0, part[BLK];                                                                     \
    if (n <= 0) return 0.0;                                                                    \
    m = z[0];                                                                                  \
    for (j = 1; j < n; j++) m = z[j] > m ? z[j] : m;                                           \
    for (k = 0; k < BLK; k++) part[k] = 0;                                                     \
    for (j = 0; j + BLK <= n; j += BLK)                                                        \
        for (k = 0; k < BLK; k++) {                                                            \
            z[j + k] = cprop_sexp_##SUFFIX(z[j + k] - m);                                      \
            part[k] = part[k] + z[j + k];                                                      \
        }                                                                                      \
    for (i = j; i < n; i++) z[i] = cprop_sexp_##SUFFIX(z[i] - m);                              \
    for (k = 0; k < BLK; k++) s = s + part[k];                                                 \
    for (i = j; i < n; i++) s = s + z[i];                                                      \
    for (i = 0; i < n; i++) z[i] = z[i] / s;                                                   \
    return want_lse ? (double)m + log((double)s) : 0.0;                                        \
}

#if CPROP_VECTORS

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

#if defined(__x86_64__) && !defined(CPROP_NO_DISPATCH)
/* Run-time CPU dispatch on x86-64: the portable build (SSE2, 16-byte vectors) and an AVX2 build
 * (32-byte vectors) of every kernel; cprop_dense_init() picks one at import. The wheel stays
 * baseline x86-64. Both do the same IEEE operations lane by lane (AVX2 without FMA, and
 * -ffp-contract=off), so they give the same bits; CPROP_NO_AVX2=1 in the environment forces
 * the portable build (the tests compare the two). */
#define CPROP_DISPATCH 1
CPROP_DENSE_KERNELS(double, cprop_vd, 2, d_base, )
CPROP_DENSE_KERNELS(float, cprop_vf, 4, f_base, )
CPROP_DENSE_KERNELS(double, cprop_vd32, 4, d_avx2, __attribute__((target("avx2"))))
CPROP_DENSE_KERNELS(float, cprop_vf32, 8, f_avx2, __attribute__((target("avx2"))))
CPROP_REDUCE_KERNELS(double, cprop_vd, cprop_vl, 2, 0x7FFFFFFFFFFFFFFFLL, d_base, )
CPROP_REDUCE_KERNELS(float, cprop_vf, cprop_vi, 4, 0x7FFFFFFF, f_base, )
CPROP_REDUCE_KERNELS(double, cprop_vd32, cprop_vl32, 4, 0x7FFFFFFFFFFFFFFFLL, d_avx2,
                     __attribute__((target("avx2"))))
CPROP_REDUCE_KERNELS(float, cprop_vf32, cprop_vi32, 8, 0x7FFFFFFF, f_avx2,
                     __attribute__((target("avx2"))))
CPROP_VMATH_KERNELS(double, cprop_vd, cprop_vul, 2, d, d_base, )
CPROP_VMATH_KERNELS(float, cprop_vf, cprop_vu, 4, f, f_base, )
CPROP_VMATH_KERNELS(double, cprop_vd32, cprop_vul32, 4, d, d_avx2, __attribute__((target("avx2"))))
CPROP_VMATH_KERNELS(float, cprop_vf32, cprop_vu32, 8, f, f_avx2, __attribute__((target("avx2"))))

static int cprop_use_avx2 = 0;

static void cprop_dense_init(void)
{
    const char* off = getenv("CPROP_NO_AVX2");
    __builtin_cpu_init();
    cprop_use_avx2 = __builtin_cpu_supports("avx2") && !(off && off[0] && off[0] != '0');
}

static const char* cprop_dense_isa(void) { return cprop_use_avx2 ? "avx2" : "sse2"; }

#define CPROP_DISPATCH_KERNELS(T, SUFFIX)                                                      \
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
    return cprop_use_avx2 ? cprop_absmax_##SUFFIX##_avx2(x, n) : cprop_absmax_##SUFFIX##_base(x, n); \
} \
static void cprop_exp_row_##SUFFIX(T* z, ptrdiff_t n)                                          \
{                                                                                              \
    if (cprop_use_avx2) cprop_exp_row_##SUFFIX##_avx2(z, n);                                   \
    else cprop_exp_row_##SUFFIX##_base(z, n);                                                  \
}                                                                                              \
static void cprop_sigmoid_row_##SUFFIX(T* z, ptrdiff_t n)                                      \
{                                                                                              \
    if (cprop_use_avx2) cprop_sigmoid_row_##SUFFIX##_avx2(z, n);                               \
    else cprop_sigmoid_row_##SUFFIX##_base(z, n);                                              \
}                                                                                              \
static double cprop_softmax_row_##SUFFIX(T* z, ptrdiff_t n, int want_lse)                      \
{                                                                                              \
    return cprop_use_avx2 ? cprop_softmax_row_##SUFFIX##_avx2(z, n, want_lse)                  \
                          : cprop_softmax_row_##SUFFIX##_base(z, n, want_lse);                 \
}

CPROP_DISPATCH_KERNELS(double, d)
CPROP_DISPATCH_KERNELS(float, f)

#else /* other architectures (aarch64: NEON is baseline): one portable build */

CPROP_DENSE_KERNELS(double, cprop_vd, 2, d, )
CPROP_DENSE_KERNELS(float, cprop_vf, 4, f, )
CPROP_REDUCE_KERNELS(double, cprop_vd, cprop_vl, 2, 0x7FFFFFFFFFFFFFFFLL, d, )
CPROP_REDUCE_KERNELS(float, cprop_vf, cprop_vi, 4, 0x7FFFFFFF, f, )
CPROP_VMATH_KERNELS(double, cprop_vd, cprop_vul, 2, d, d, )
CPROP_VMATH_KERNELS(float, cprop_vf, cprop_vu, 4, f, f, )
static void cprop_dense_init(void) {}
static const char* cprop_dense_isa(void) { return "portable vectors"; }

#endif

#else /* no vector extensions: the same loops, scalar */

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
CPROP_SCALAR_VMATH(double, unsigned long long, d, d)
CPROP_SCALAR_VMATH(float, unsigned int, f, f)
static void cprop_dense_init(void) {}
static const char* cprop_dense_isa(void) { return "scalar"; }

#endif

/* float64 sigmoid with libm's exp, for the loop paths that must match cprop.oracle (math.exp is
 * glibc's exp) bit for bit: the oracle's two branches, exp(-x) for x >= 0 and exp(x) otherwise,
 * are exp(-|x|) either way, so only the numerator is selected, by a mask rather than a branch
 * (random signs mispredict). NaN: e = NaN, so NaN. */
static inline double cprop_sigmoid_libm_d(double x)
{
    double e = exp(-fabs(x)), one = 1.0, num;
    unsigned long long m = 0ULL - (unsigned long long)(x >= 0), b1, be, bn;
    memcpy(&b1, &one, sizeof b1);
    memcpy(&be, &e, sizeof be);
    bn = (b1 & m) | (be & ~m);
    memcpy(&num, &bn, sizeof num);
    return num / (1.0 + e);
}

/* Tiny layers: n_in and n_out both at most CPROP_TINY_WIDTH (the worked example's 2-2-2).
 * At these widths the vector kernels above run only their scalar tails, and loops with run-time
 * trip counts of 2 cost more in set-up (and in GCC's checks before a vectorised loop) than in
 * arithmetic. So each body below is written once and always inlined into a switch over the 16
 * shapes: every case is compiled with its trip counts as constants, fully unrolled. Scalar code,
 * the same operations in the same order as the loops they stand for, so the same bits.
 *
 *   cprop_tiny_net_input_SUFFIX(a, W, b, z, n_in, n_out)   z_j = b_j + a_0 W_0j + a_1 W_1j + ...
 *   cprop_tiny_back_sums_SUFFIX(W, d, s, n_in, n_out)      s_i = 0 + W_i0 d_0 + W_i1 d_1 + ...
 *   cprop_tiny_sgd_SUFFIX(W, a, d, n_in, n_out, lr, alpha) W_ij <- W_ij - lr (a_i d_j [+ alpha W_ij]);
 *                                                          returns 1 if every new value is finite
 * (Other shapes work too, through the switch's default case with run-time trip counts.)
 */
#define CPROP_TINY_WIDTH 4
#if defined(__GNUC__) || defined(__clang__)
#define CPROP_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CPROP_ALWAYS_INLINE inline
#endif

#define CPROP_TINY_CASE(BODY, NI, NO, ...) case NI * 8 + NO: return BODY(__VA_ARGS__, NI, NO);
#define CPROP_TINY_SWITCH(BODY, ...)                                                           \
    if (n_in <= CPROP_TINY_WIDTH && n_out <= CPROP_TINY_WIDTH) {                               \
        switch (n_in * 8 + n_out) {                                                            \
        CPROP_TINY_CASE(BODY, 1, 1, __VA_ARGS__) CPROP_TINY_CASE(BODY, 1, 2, __VA_ARGS__)      \
        CPROP_TINY_CASE(BODY, 1, 3, __VA_ARGS__) CPROP_TINY_CASE(BODY, 1, 4, __VA_ARGS__)      \
        CPROP_TINY_CASE(BODY, 2, 1, __VA_ARGS__) CPROP_TINY_CASE(BODY, 2, 2, __VA_ARGS__)      \
        CPROP_TINY_CASE(BODY, 2, 3, __VA_ARGS__) CPROP_TINY_CASE(BODY, 2, 4, __VA_ARGS__)      \
        CPROP_TINY_CASE(BODY, 3, 1, __VA_ARGS__) CPROP_TINY_CASE(BODY, 3, 2, __VA_ARGS__)      \
        CPROP_TINY_CASE(BODY, 3, 3, __VA_ARGS__) CPROP_TINY_CASE(BODY, 3, 4, __VA_ARGS__)      \
        CPROP_TINY_CASE(BODY, 4, 1, __VA_ARGS__) CPROP_TINY_CASE(BODY, 4, 2, __VA_ARGS__)      \
        CPROP_TINY_CASE(BODY, 4, 3, __VA_ARGS__) CPROP_TINY_CASE(BODY, 4, 4, __VA_ARGS__)      \
        default: break;                                                                        \
        }                                                                                      \
    }                                                                                          \
    return BODY(__VA_ARGS__, n_in, n_out);

#define CPROP_TINY_KERNELS(T, SUFFIX)                                                          \
static CPROP_ALWAYS_INLINE int cprop_tiny_net_input_body_##SUFFIX(                             \
    const T* a, const T* W, const T* b, T* z, ptrdiff_t n_in, ptrdiff_t n_out)                 \
{                                                                                              \
    ptrdiff_t i, j;                                                                            \
    for (j = 0; j < n_out; j++) {                                                              \
        T s = b[j];                                                                            \
        for (i = 0; i < n_in; i++) s = s + a[i] * W[i * n_out + j];                            \
        z[j] = s;                                                                              \
    }                                                                                          \
    return 0;                                                                                  \
}                                                                                              \
static int cprop_tiny_net_input_##SUFFIX(const T* a, const T* W, const T* b, T* z,            \
                                         ptrdiff_t n_in, ptrdiff_t n_out)                      \
{                                                                                              \
    CPROP_TINY_SWITCH(cprop_tiny_net_input_body_##SUFFIX, a, W, b, z)                          \
}                                                                                              \
static CPROP_ALWAYS_INLINE int cprop_tiny_back_sums_body_##SUFFIX(                             \
    const T* W, const T* d, T* s, ptrdiff_t n_in, ptrdiff_t n_out)                             \
{                                                                                              \
    ptrdiff_t i, j;                                                                            \
    for (i = 0; i < n_in; i++) {                                                               \
        T acc = 0;                                                                             \
        for (j = 0; j < n_out; j++) acc = acc + W[i * n_out + j] * d[j];                       \
        s[i] = acc;                                                                            \
    }                                                                                          \
    return 0;                                                                                  \
}                                                                                              \
static int cprop_tiny_back_sums_##SUFFIX(const T* W, const T* d, T* s, ptrdiff_t n_in,        \
                                         ptrdiff_t n_out)                                      \
{                                                                                              \
    CPROP_TINY_SWITCH(cprop_tiny_back_sums_body_##SUFFIX, W, d, s)                             \
}                                                                                              \
static CPROP_ALWAYS_INLINE int cprop_tiny_sgd_body_##SUFFIX(                                   \
    T* W, const T* a, const T* d, T lr, T alpha, ptrdiff_t n_in, ptrdiff_t n_out)              \
{                                                                                              \
    /* p * 0 is NaN exactly when p is inf or NaN (else +-0), so one sum of them, tested once,  \
     * checks every new value: two operations each instead of a test and a branch-free and. */ \
    ptrdiff_t i, j;                                                                            \
    T p, check = 0;                                                                            \
    if (alpha != 0) {                                                                          \
        for (i = 0; i < n_in; i++)                                                             \
            for (j = 0; j < n_out; j++) {                                                      \
                p = W[i * n_out + j] - lr * (a[i] * d[j] + alpha * W[i * n_out + j]);          \
                W[i * n_out + j] = p;                                                          \
                check = check + p * 0;                                                         \
            }                                                                                  \
        return check == check;                                                                 \
    }                                                                                          \
    for (i = 0; i < n_in; i++)                                                                 \
        for (j = 0; j < n_out; j++) {                                                          \
            p = W[i * n_out + j] - lr * (a[i] * d[j]);                                         \
            W[i * n_out + j] = p;                                                              \
            check = check + p * 0;                                                             \
        }                                                                                      \
    return check == check;                                                                     \
}                                                                                              \
static int cprop_tiny_sgd_##SUFFIX(T* W, const T* a, const T* d, ptrdiff_t n_in,              \
                                   ptrdiff_t n_out, T lr, T alpha)                             \
{                                                                                              \
    CPROP_TINY_SWITCH(cprop_tiny_sgd_body_##SUFFIX, W, a, d, lr, alpha)                        \
}

CPROP_TINY_KERNELS(double, d)
CPROP_TINY_KERNELS(float, f)

/* One single-sample SGD step of a whole float64 network with one hidden layer, every width at
 * most CPROP_TINY_WIDTH (the worked example's 2-2-2 and its kin): forward, loss, deltas and the
 * checked update in one function, switched over the 64 shapes so that every loop is unrolled
 * with constant trip counts and every value lives in registers. This is what a C loop written
 * for one shape does; the generic kernels spend more on loop set-up, calls and workspace
 * traffic than on arithmetic at these sizes. The operations are _mlp.pyx's (activation,
 * softmax_row, output_delta, delta_below, the SGD update), in the same order, so the bits are
 * the oracle's; tests/test_tiny_path.py checks every shape, activation and loss.
 * Activation and loss codes are _types.pxd's (checked at import by _mlp.pyx).
 *
 * The cost is code: ~360 KB for the 64 shapes. Measured on the 2-2-2 seed network (100,000
 * steps, ns per step; a C loop written for that one shape takes 51): these 64 shapes, 60;
 * n_in left a run-time count (16 shapes, ~100 KB), 65; the shape-generic Cython kernel
 * (tiny_sgd_step), 80; the activation and loss code as out-of-line calls, 83 (the calls sit on
 * the step's chain of dependent operations).
 */
#define CPROP_ACT_IDENTITY 0
#define CPROP_ACT_SIGMOID 1
#define CPROP_ACT_TANH 2
#define CPROP_ACT_RELU 3
#define CPROP_ACT_LEAKY_RELU 4
#define CPROP_ACT_SOFTMAX 5
#define CPROP_LOSS_SQUARED_ERROR 0
#define CPROP_LOSS_CROSS_ENTROPY 1
#define CPROP_LOSS_BINARY_CROSS_ENTROPY 2

typedef struct {
    int act_hidden, act_out, loss, train_biases;
    double slope, alpha, lr;
} cprop_tiny2_config;

/* The parts that do not depend on the shape, compiled once (not per shape): the activation of a
 * row, the output layer (activation, loss, delta), the hidden delta's f'. */
static CPROP_ALWAYS_INLINE void cprop_tiny2_activate(int act, double* z, ptrdiff_t n, double slope)
{
    ptrdiff_t k;
    switch (act) {
    case CPROP_ACT_SIGMOID:
        for (k = 0; k < n; k++) {  /* cprop_sigmoid_libm_d's value; the select left to the
                                    * compiler: its mask form cost 3 ns a step here */
            double e = exp(-fabs(z[k]));
            z[k] = (z[k] >= 0 ? 1.0 : e) / (1 + e);
        }
        return;
    case CPROP_ACT_TANH:
        for (k = 0; k < n; k++) z[k] = tanh(z[k]);
        return;
    case CPROP_ACT_RELU:
        for (k = 0; k < n; k++) z[k] = z[k] > 0 ? z[k] : 0;
        return;
    case CPROP_ACT_LEAKY_RELU:
        for (k = 0; k < n; k++) z[k] = z[k] > 0 ? z[k] : slope * z[k];
        return;
    default:
        return;
    }
}

static CPROP_ALWAYS_INLINE void cprop_tiny2_times_deriv(int act, double* d, const double* a,
                                                   ptrdiff_t n, double slope)
{
    ptrdiff_t k;
    switch (act) {
    case CPROP_ACT_SIGMOID: for (k = 0; k < n; k++) d[k] = d[k] * (a[k] * (1 - a[k])); return;
    case CPROP_ACT_TANH: for (k = 0; k < n; k++) d[k] = d[k] * (1 - a[k] * a[k]); return;
    case CPROP_ACT_RELU: for (k = 0; k < n; k++) d[k] = d[k] * (a[k] > 0 ? 1 : 0); return;
    case CPROP_ACT_LEAKY_RELU:
        for (k = 0; k < n; k++) d[k] = d[k] * (a[k] > 0 ? 1 : slope);
        return;
    default:
        for (k = 0; k < n; k++) d[k] = d[k] * 1;
        return;
    }
}

/* The output layer from its net input z: y = f(z), the sample's loss (*loss), and the delta d;
 * returns 1 if the loss is not finite. As output_delta with the forward pass's log-sum-exp. */
static CPROP_ALWAYS_INLINE int cprop_tiny2_output(const cprop_tiny2_config* c, const double* z,
                                             const double* t, double* d, ptrdiff_t n,
                                             double* loss)
{
    double y[CPROP_TINY_WIDTH], s, m, lse = 0, sample_loss = 0.0, diff, dot;
    ptrdiff_t k;
    if (c->act_out == CPROP_ACT_SOFTMAX) {
        m = z[0];
        for (k = 1; k < n; k++)
            if (z[k] > m) m = z[k];
        s = 0;
        for (k = 0; k < n; k++) {
            y[k] = exp(z[k] - m);
            s += y[k];
        }
        for (k = 0; k < n; k++) y[k] = y[k] / s;
        lse = m + log(s);
    } else {
        for (k = 0; k < n; k++) y[k] = z[k];
        cprop_tiny2_activate(c->act_out, y, n, c->slope);
    }
    if (c->loss == CPROP_LOSS_CROSS_ENTROPY) {
        for (k = 0; k < n; k++) sample_loss += t[k] * (lse - z[k]);
    } else if (c->loss == CPROP_LOSS_BINARY_CROSS_ENTROPY) {
        for (k = 0; k < n; k++)
            sample_loss += ((z[k] > 0 ? z[k] : 0.0) + log1p(exp(-fabs(z[k])))) - t[k] * z[k];
    } else {
        for (k = 0; k < n; k++) {
            diff = t[k] - y[k];
            sample_loss += 0.5 * diff * diff;
        }
    }
    *loss = 0.0 + sample_loss;
    if (!isfinite(*loss)) return 1;
    if (c->loss != CPROP_LOSS_SQUARED_ERROR) {
        for (k = 0; k < n; k++) d[k] = y[k] - t[k];
    } else if (c->act_out == CPROP_ACT_SOFTMAX) {
        dot = 0;
        for (k = 0; k < n; k++) dot += (y[k] - t[k]) * y[k];
        for (k = 0; k < n; k++) d[k] = y[k] * ((y[k] - t[k]) - dot);
    } else {
        for (k = 0; k < n; k++) d[k] = y[k] - t[k];
        cprop_tiny2_times_deriv(c->act_out, d, y, n, c->slope);
    }
    return 0;
}

/* One row's step: 0 (applied), 1 (the loss is not finite) or 2 (a new value would not be
 * finite); a refused step writes nothing. *loss gets the row's loss. */
static CPROP_ALWAYS_INLINE int cprop_tiny2_row(
    double* CPROP_RESTRICT W1, double* CPROP_RESTRICT b1, double* CPROP_RESTRICT W2,
    double* CPROP_RESTRICT b2, const double* CPROP_RESTRICT x, const double* CPROP_RESTRICT t,
    const cprop_tiny2_config* c, double* loss, ptrdiff_t NI, ptrdiff_t NH, ptrdiff_t NO)
{
    double h[CPROP_TINY_WIDTH], z[CPROP_TINY_WIDTH], d2[CPROP_TINY_WIDTH], d1[CPROP_TINY_WIDTH];
    double nW1[CPROP_TINY_WIDTH * CPROP_TINY_WIDTH], nW2[CPROP_TINY_WIDTH * CPROP_TINY_WIDTH];
    double nb1[CPROP_TINY_WIDTH] = {0}, nb2[CPROP_TINY_WIDTH] = {0};
    double w, check = 0, lr = c->lr, alpha = c->alpha;
    ptrdiff_t i, j, k;
    cprop_tiny_net_input_body_d(x, W1, b1, h, NI, NH);
    cprop_tiny2_activate(c->act_hidden, h, NH, c->slope);
    cprop_tiny_net_input_body_d(h, W2, b2, z, NH, NO);
    if (cprop_tiny2_output(c, z, t, d2, NO, loss)) return 1;
    cprop_tiny_back_sums_body_d(W2, d2, d1, NH, NO);
    cprop_tiny2_times_deriv(c->act_hidden, d1, h, NH, c->slope);
    /* The new values, checked before any is written (p * 0 is NaN exactly when p is not finite). */
    if (alpha != 0) {
        for (j = 0; j < NH; j++)
            for (k = 0; k < NO; k++) {
                w = W2[j * NO + k];
                nW2[j * NO + k] = w - lr * (h[j] * d2[k] + alpha * w);
                check = check + nW2[j * NO + k] * 0;
            }
        for (i = 0; i < NI; i++)
            for (j = 0; j < NH; j++) {
                w = W1[i * NH + j];
                nW1[i * NH + j] = w - lr * (x[i] * d1[j] + alpha * w);
                check = check + nW1[i * NH + j] * 0;
            }
    } else {
        for (j = 0; j < NH; j++)
            for (k = 0; k < NO; k++) {
                nW2[j * NO + k] = W2[j * NO + k] - lr * (h[j] * d2[k]);
                check = check + nW2[j * NO + k] * 0;
            }
        for (i = 0; i < NI; i++)
            for (j = 0; j < NH; j++) {
                nW1[i * NH + j] = W1[i * NH + j] - lr * (x[i] * d1[j]);
                check = check + nW1[i * NH + j] * 0;
            }
    }
    if (c->train_biases) {
        for (j = 0; j < NH; j++) { nb1[j] = b1[j] - lr * d1[j]; check = check + nb1[j] * 0; }
        for (k = 0; k < NO; k++) { nb2[k] = b2[k] - lr * d2[k]; check = check + nb2[k] * 0; }
    }
    if (check != check) return 2;
    for (i = 0; i < NI * NH; i++) W1[i] = nW1[i];
    for (i = 0; i < NH * NO; i++) W2[i] = nW2[i];
    if (c->train_biases) {
        for (j = 0; j < NH; j++) b1[j] = nb1[j];
        for (k = 0; k < NO; k++) b2[k] = nb2[k];
    }
    return 0;
}

static CPROP_ALWAYS_INLINE ptrdiff_t cprop_tiny2_rows_body(
    double* W1, double* b1, double* W2, double* b2, const double* X, const double* T,
    const ptrdiff_t* order, ptrdiff_t start, ptrdiff_t end, const cprop_tiny2_config* c,
    double* total, double* loss, int* failure, ptrdiff_t NI, ptrdiff_t NH, ptrdiff_t NO)
{
    ptrdiff_t r;
    int f;
    double sum = *total;
    for (r = start; r < end; r++) {
        f = cprop_tiny2_row(W1, b1, W2, b2, X + order[r] * NI, T + order[r] * NO, c, loss,
                            NI, NH, NO);
        if (f) {
            *failure = f;
            *total = sum;
            return r;
        }
        sum += *loss;
    }
    *total = sum;
    return end;
}

#define CPROP_TINY2_CASE(NI, NH, NO)                                                           \
    case (NI) * 64 + (NH) * 8 + (NO):                                                          \
        return cprop_tiny2_rows_body(W1, b1, W2, b2, X, T, order, start, end, c, total, loss,  \
                                     failure, NI, NH, NO);
#define CPROP_TINY2_NO(NI, NH) CPROP_TINY2_CASE(NI, NH, 1) CPROP_TINY2_CASE(NI, NH, 2)          \
                               CPROP_TINY2_CASE(NI, NH, 3) CPROP_TINY2_CASE(NI, NH, 4)
#define CPROP_TINY2_NH(NI) CPROP_TINY2_NO(NI, 1) CPROP_TINY2_NO(NI, 2) CPROP_TINY2_NO(NI, 3)    \
                           CPROP_TINY2_NO(NI, 4)

/* Single-sample SGD steps on rows order[start], ..., order[end - 1] of (X, T), for a network of
 * sizes (n_in, n_hidden, n_out), each in 1..CPROP_TINY_WIDTH (the caller checks). *total gets
 * each applied row's loss added, in order. Returns end, or the position of the row whose step
 * was refused (then *failure is 1 or 2 and *loss that row's loss; the rows before it stay
 * applied). */
static ptrdiff_t cprop_tiny2_rows_d(double* W1, double* b1, double* W2, double* b2,
                                    const double* X, const double* T, const ptrdiff_t* order,
                                    ptrdiff_t start, ptrdiff_t end, const cprop_tiny2_config* c,
                                    double* total, double* loss, int* failure, ptrdiff_t n_in,
                                    ptrdiff_t n_hidden, ptrdiff_t n_out)
{
    switch (n_in * 64 + n_hidden * 8 + n_out) {
    CPROP_TINY2_NH(1) CPROP_TINY2_NH(2) CPROP_TINY2_NH(3) CPROP_TINY2_NH(4)
    default: break;
    }
    *failure = -1;  /* not a tiny shape: not reached */
    return start;
}

#endif /* CPROP_DENSE_H */
