/* Vectorised exp, sigmoid and softmax of a row (see below; the vector code is in
 * _vecmath_kernels.h, over _vops.h's operations), with their scalar fallback for compilers
 * without vector kernels, and cprop_sigmoid_libm_d, the oracle's float64 sigmoid. The instruction
 * set is the one cprop_dense_init() (_simd.h) chose.
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
 * SSE2, AVX2 (from vector extensions or intrinsics) and the scalar fallback gives the same bits.
 * Max error (tests/test_vector_math.py):
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
 * them. CPROP_EXP_f/d_POLY spell the polynomial once over the operations ADD(a, b), MUL(a, b)
 * and C(K, I) (coefficient I as a value), for the vector kernels (_vops.h's) and the scalar
 * fallback (plain C's). */
#define CPROP_EXP_f_C0 0.5f
#define CPROP_EXP_f_C1 1.66666657e-01f
#define CPROP_EXP_f_C2 4.16662954e-02f
#define CPROP_EXP_f_C3 8.33349675e-03f
#define CPROP_EXP_f_C4 1.39446603e-03f
#define CPROP_EXP_f_C5 1.97903457e-04f
#define CPROP_EXP_f_POLY(ADD, MUL, C, r, r2, r4, r8)                                         \
    ADD(ADD(MUL(C(f, 1), r), C(f, 0)),                                                         \
        MUL(r2, ADD(ADD(MUL(C(f, 3), r), C(f, 2)), MUL(r2, ADD(MUL(C(f, 5), r), C(f, 4))))))

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
#define CPROP_EXP_d_POLY(ADD, MUL, C, r, r2, r4, r8)                                         \
    ADD(ADD(ADD(ADD(MUL(C(d, 1), r), C(d, 0)), MUL(r2, ADD(MUL(C(d, 3), r), C(d, 2)))),          \
            MUL(r4, ADD(ADD(MUL(C(d, 5), r), C(d, 4)),                                         \
                        MUL(r2, ADD(MUL(C(d, 7), r), C(d, 6)))))),                             \
        MUL(r8, ADD(ADD(MUL(C(d, 9), r), C(d, 8)), MUL(r2, C(d, 10)))))

/* The same three kernels, one value at a time, for a compiler or architecture without vector
 * kernels (_simd.h): the same operations in the same order, so the same bits. */
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
    t = r2 * (CPROP_EXP_##K##_POLY(CPROP_SCALAR_ADD, CPROP_SCALAR_MUL, CPROP_SCALAR_C,         \
                                 r, r2, r4, r8)) - rl;                                         \
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
}                                                                                              \
static void cprop_softmax_rows_##SUFFIX(T* z, ptrdiff_t rows, ptrdiff_t n, T* lse)             \
{                                                                                              \
    ptrdiff_t r;                                                                               \
    for (r = 0; r < rows; r++) {                                                               \
        double v = cprop_softmax_row_##SUFFIX(z + r * n, n, lse != NULL);                      \
        if (lse != NULL) lse[r] = (T)v;                                                        \
    }                                                                                          \
}

#if CPROP_VECTOR_KERNELS
/* The vector kernels: _vecmath_kernels.h once per build (_vops_builds.h: SSE2 and AVX2 on
 * x86-64, one 16-byte build elsewhere), and the functions that call the build in use. */
#define RV_BODY "_vecmath_kernels.h"
#include "_vops_builds.h"
#undef RV_BODY

#define CPROP_DISPATCH_VMATH_KERNELS(T, SUFFIX)                                                \
static void cprop_exp_row_##SUFFIX(T* z, ptrdiff_t n)                                          \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_exp_row_##SUFFIX, (z, n));                                       \
}                                                                                              \
static void cprop_sigmoid_row_##SUFFIX(T* z, ptrdiff_t n)                                      \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_sigmoid_row_##SUFFIX, (z, n));                                   \
}                                                                                              \
static double cprop_softmax_row_##SUFFIX(T* z, ptrdiff_t n, int want_lse)                      \
{                                                                                              \
    return CPROP_DISPATCH_CALL(cprop_softmax_row_##SUFFIX, (z, n, want_lse));                  \
}                                                                                              \
static void cprop_softmax_rows_##SUFFIX(T* z, ptrdiff_t rows, ptrdiff_t n, T* lse)             \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_softmax_rows_##SUFFIX, (z, rows, n, lse));                       \
}                                                                                              \
static void cprop_times_step_block_##SUFFIX(T* d, const T* a, ptrdiff_t n, T below)            \
{                                                                                              \
    CPROP_DISPATCH_CALL(cprop_times_step_block_##SUFFIX, (d, a, n, below));                    \
}

CPROP_DISPATCH_VMATH_KERNELS(double, d)
CPROP_DISPATCH_VMATH_KERNELS(float, f)

#else /* no vector kernels: the same kernels, one value at a time */

#define CPROP_SCALAR_ADD(a, b) ((a) + (b))
#define CPROP_SCALAR_MUL(a, b) ((a) * (b))
#define CPROP_SCALAR_C(K, I) CPROP_EXP_##K##_C##I
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
