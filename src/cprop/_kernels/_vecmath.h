/* Vectorised exp, sigmoid and softmax of a row (see below), with their scalar fallback for
 * compilers without vector extensions, and cprop_sigmoid_libm_d, the oracle's float64 sigmoid.
 * The instruction set is the one cprop_dense_init() (_simd.h) chose.
 */
#ifndef CPROP_VECMATH_H
#define CPROP_VECMATH_H

#include "_simd.h"

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
/* P(r) ~ (e^r - 1 - r) / r^2 = C0 + C1 r + C2 r^2 + ..., Estrin's scheme (r2 = r^2, r4 = r^4,
 * r8 = r^8): a short chain of dependent operations, so that the out-of-order core overlaps many
 * vectors. The coefficients are named so that the population kernel's exp (_lanes.h) shares
 * them. */
#define CPROP_EXP_f_C0 0.5f
#define CPROP_EXP_f_C1 1.66666657e-01f
#define CPROP_EXP_f_C2 4.16662954e-02f
#define CPROP_EXP_f_C3 8.33349675e-03f
#define CPROP_EXP_f_C4 1.39446603e-03f
#define CPROP_EXP_f_C5 1.97903457e-04f
#define CPROP_EXP_f_POLY(V, r, r2, r4, r8)                                                     \
    ((((V){0} + CPROP_EXP_f_C1) * (r) + CPROP_EXP_f_C0)                                        \
     + (r2) * ((((V){0} + CPROP_EXP_f_C3) * (r) + CPROP_EXP_f_C2)                              \
               + (r2) * (((V){0} + CPROP_EXP_f_C5) * (r) + CPROP_EXP_f_C4)))

#define CPROP_EXP_d_LOG2E 1.4426950408889634
#define CPROP_EXP_d_SHIFT 6755399441055744.0   /* 1.5 * 2^52 */
#define CPROP_EXP_d_SHIFT_BIAS 6755399441056767.0 /* 1.5 * 2^52 + 1023 */
#define CPROP_EXP_d_L2HI 6.93147180369123816490e-01  /* 32 significant bits (fdlibm's ln2_hi) */
#define CPROP_EXP_d_L2LO 1.90821492927058770002e-10
#define CPROP_EXP_d_XLO -746.0                 /* e^-746 < 2^-1075: rounds to 0 */
#define CPROP_EXP_d_XHI 710.0                  /* e^710 > DBL_MAX: rounds to +inf */
#define CPROP_EXP_d_MANT 52
#define CPROP_EXP_d_SIGN 0x8000000000000000ULL
#define CPROP_EXP_d_C0 0.5
#define CPROP_EXP_d_C1 0.16666666666666682
#define CPROP_EXP_d_C2 0.041666666666666095
#define CPROP_EXP_d_C3 0.008333333333317034
#define CPROP_EXP_d_C4 0.0013888888889115637
#define CPROP_EXP_d_C5 0.00019841269896384513
#define CPROP_EXP_d_C6 2.4801586926620483e-05
#define CPROP_EXP_d_C7 2.755723486130839e-06
#define CPROP_EXP_d_C8 2.755758185735806e-07
#define CPROP_EXP_d_C9 2.5112037030528525e-08
#define CPROP_EXP_d_C10 2.0826624606190034e-09
#define CPROP_EXP_d_POLY(V, r, r2, r4, r8)                                                     \
    (((((V){0} + CPROP_EXP_d_C1) * (r) + CPROP_EXP_d_C0)                                       \
      + (r2) * (((V){0} + CPROP_EXP_d_C3) * (r) + CPROP_EXP_d_C2))                             \
     + (r4) * ((((V){0} + CPROP_EXP_d_C5) * (r) + CPROP_EXP_d_C4)                              \
               + (r2) * (((V){0} + CPROP_EXP_d_C7) * (r) + CPROP_EXP_d_C6))                    \
     + (r8) * ((((V){0} + CPROP_EXP_d_C9) * (r) + CPROP_EXP_d_C8)                              \
               + (r2) * ((V){0} + CPROP_EXP_d_C10)))

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

#if defined(CPROP_DISPATCH)
/* x86-64: the SSE2 and the AVX2 build of each kernel, and the function that calls one of them
 * (cprop_use_avx2, _simd.h). */
CPROP_VMATH_KERNELS(double, cprop_vd, cprop_vul, 2, d, d_base, )
CPROP_VMATH_KERNELS(float, cprop_vf, cprop_vu, 4, f, f_base, )
CPROP_VMATH_KERNELS(double, cprop_vd32, cprop_vul32, 4, d, d_avx2, CPROP_AVX2)
CPROP_VMATH_KERNELS(float, cprop_vf32, cprop_vu32, 8, f, f_avx2, CPROP_AVX2)

#define CPROP_DISPATCH_VMATH_KERNELS(T, SUFFIX)                                                \
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

CPROP_DISPATCH_VMATH_KERNELS(double, d)
CPROP_DISPATCH_VMATH_KERNELS(float, f)

#elif CPROP_VECTORS /* other architectures: one portable build */

CPROP_VMATH_KERNELS(double, cprop_vd, cprop_vul, 2, d, d, )
CPROP_VMATH_KERNELS(float, cprop_vf, cprop_vu, 4, f, f, )

#else /* no vector extensions: the same kernels, one value at a time */

CPROP_SCALAR_VMATH(double, unsigned long long, d, d)
CPROP_SCALAR_VMATH(float, unsigned int, f, f)

#endif

/* float64 sigmoid with libm's exp, for the loop paths that must match cprop.oracle (math.exp is
 * glibc's exp) bit for bit: the oracle's two branches, exp(-x) for x >= 0 and exp(x) otherwise,
 * are exp(-|x|) either way, so only the numerator is selected, without a branch (random signs
 * mispredict) and by an indexed load from {e, 1}. NaN: e = NaN, x >= 0 is false, so NaN.
 * Measured (ns; seed 2-2-2 step / 4-4-4 tiny step on random rows / a 16-32-32-16 sigmoid step on
 * the loop path, random rows): this load 52 / 90 / 1150; the select written as a ternary, left
 * to the compiler (a branch), 51 / 93 / 1300; as a bit mask through integer registers,
 * 56 / 94 / 1160. All three give the same bits. _formulas.h's sigmoid is this one, used by the
 * tiny kernels and the Cython loop paths alike. */
static inline double cprop_sigmoid_libm_d(double x)
{
    double num[2];
    num[0] = exp(-fabs(x));
    num[1] = 1.0;
    return num[x >= 0] / (1.0 + num[0]);
}

#endif /* CPROP_VECMATH_H */
