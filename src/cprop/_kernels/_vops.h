/* The vector operations the row kernels (_vecmath_kernels.h, _rows_kernels.h) are written in,
 * one set per backend (_simd.h chooses it): GCC/Clang vector extensions, or SSE2 / AVX2
 * intrinsics, which MSVC compiles too. A kernel is written once over these; _vops_build.h
 * compiles it once per element type and vector width.
 *
 * Within a build (see _vops_build.h): T the element type, V its vector, LANES the values in a V,
 * K the constants' type key (d or f, as in CPROP_EXP_d_*), TGT the function attribute of the
 * width, RV_FN(name) the build's name for a function (name_d_base, name_f_avx2, ...).
 *
 *   RV_LD(p) RV_ST(p, v)                   unaligned load / store of LANES values at p
 *   RV_SET1(x) RV_ZERO()                   x / 0 in every lane
 *   RV_ADD RV_SUB RV_MUL RV_DIV(a, b)      IEEE arithmetic, lane by lane
 *   RV_LT RV_GT RV_GE(a, b)                masks of a < b, a > b, a >= b (false for NaN)
 *   RV_ISNAN(a)                            mask of a != a
 *   RV_AND RV_OR(a, b), RV_ANDNOT(m, a)    a & b, a | b, ~m & a, bitwise
 *   RV_SEL(m, a, b)                        m ? a : b, lane by lane
 *   RV_SHL(v, n)                           v's bits shifted left by n within each lane
 *   RV_C(K, I)                             the exp coefficient CPROP_EXP_K_CI in every lane
 *   RV_EXPK(_NAME)                         the build type's exp constant CPROP_EXP_d/f_NAME
 *
 * A mask is a V whose lanes are all ones (true) or all zeros (false), as SSE2 / AVX2 compares
 * give them; the bitwise operations act on a V's bits.
 */
#ifndef CPROP_VOPS_H
#define CPROP_VOPS_H

#include "_simd.h"

#define RV_CAT_(a, b) a##_##b
#define RV_CAT(a, b) RV_CAT_(a, b)
#define RV_CAT3_(a, b, c) a##b##c
#define RV_CAT3(a, b, c) RV_CAT3_(a, b, c)
#define RV_FN(name) RV_CAT(name, SUF)
#define RV_EXPK(name) RV_CAT3(CPROP_EXP_, K, name)  /* RV_EXPK(_SHIFT): CPROP_EXP_d_SHIFT, ... */
#define RV_C(K, I) RV_SET1(CPROP_EXP_##K##_C##I)

/* The body of a function (T* z, ptrdiff_t n) that maps z[i] <- FN(z[i]) in place, FN a function
 * of one vector: two vectors at a time, then one, then the tail through one zero-padded vector
 * (the same lanes, so the same bits). */
#define RV_ROW_MAP_BODY(FN)                                                                    \
{                                                                                              \
    ptrdiff_t i = 0;                                                                           \
    T tail[LANES];                                                                             \
    for (; i + 2 * LANES <= n; i += 2 * LANES) {                                               \
        V a = RV_LD(z + i), b = RV_LD(z + i + LANES);                                          \
        RV_ST(z + i, FN(a));                                                                   \
        RV_ST(z + i + LANES, FN(b));                                                           \
    }                                                                                          \
    for (; i + LANES <= n; i += LANES) RV_ST(z + i, FN(RV_LD(z + i)));                         \
    if (i < n) {                                                                               \
        RV_ST(tail, RV_ZERO());                                                                \
        memcpy(tail, z + i, (size_t)(n - i) * sizeof(T));                                      \
        RV_ST(tail, FN(RV_LD(tail)));                                                          \
        memcpy(z + i, tail, (size_t)(n - i) * sizeof(T));                                      \
    }                                                                                          \
}

#if CPROP_VECTORS
/* Vector extensions: C operators on V; VU, the unsigned integer vector of V's size, for the
 * bitwise operations; a compare gives a signed integer vector, taken as a V's bits. RV_SET1 is
 * the build's (_vops_build.h): an initializer of LANES copies, a true broadcast ((V){0} + x
 * would turn -0.0 into +0.0). */
#define RV_LD(p) CPROP_LD(V, p)
#define RV_ST(p, v) CPROP_ST(p, v)
#define RV_ZERO() ((V){0})
#define RV_ADD(a, b) ((a) + (b))
#define RV_SUB(a, b) ((a) - (b))
#define RV_MUL(a, b) ((a) * (b))
#define RV_DIV(a, b) ((a) / (b))
#define RV_LT(a, b) ((V)((a) < (b)))
#define RV_GT(a, b) ((V)((a) > (b)))
#define RV_GE(a, b) ((V)((a) >= (b)))
#define RV_ISNAN(a) ((V)((a) != (a)))
#define RV_AND(a, b) ((V)((VU)(a) & (VU)(b)))
#define RV_OR(a, b) ((V)((VU)(a) | (VU)(b)))
#define RV_ANDNOT(m, a) ((V)(~(VU)(m) & (VU)(a)))
#define RV_SEL(m, a, b) RV_OR(RV_AND(m, a), RV_ANDNOT(m, b))
#define RV_SHL(v, n) ((V)((VU)(v) << (n)))

#elif CPROP_INTRINSICS
/* x86-64 intrinsics, spelled from the width's prefix (RV_P: _mm, _mm256), its integer type
 * (RV_I: si128, si256) and the element's suffixes (RV_S: pd / ps, RV_E: epi64 / epi32), e.g.
 * RV_ADD -> _mm256_add_pd. Compares and selects differ by width (SSE2 has no blend), so the
 * build defines RV_LT, RV_GT, RV_GE, RV_ISNAN and RV_SEL (_vops_build.h). */
#define RV_X86_(p, n, s) p##_##n##_##s
#define RV_X86(p, n, s) RV_X86_(p, n, s)
#define RV_PASTE_(a, b) a##b
#define RV_PASTE(a, b) RV_PASTE_(a, b)
#define RV_LD(p) RV_X86(RV_P, loadu, RV_S)(p)
#define RV_ST(p, v) RV_X86(RV_P, storeu, RV_S)(p, v)
#define RV_SET1(x) RV_X86(RV_P, set1, RV_S)((T)(x))
#define RV_ZERO() RV_X86(RV_P, setzero, RV_S)()
#define RV_ADD(a, b) RV_X86(RV_P, add, RV_S)(a, b)
#define RV_SUB(a, b) RV_X86(RV_P, sub, RV_S)(a, b)
#define RV_MUL(a, b) RV_X86(RV_P, mul, RV_S)(a, b)
#define RV_DIV(a, b) RV_X86(RV_P, div, RV_S)(a, b)
#define RV_AND(a, b) RV_X86(RV_P, and, RV_S)(a, b)
#define RV_OR(a, b) RV_X86(RV_P, or, RV_S)(a, b)
#define RV_ANDNOT(m, a) RV_X86(RV_P, andnot, RV_S)(m, a)
#define RV_SHL(v, n)                                                                           \
    RV_X86(RV_P, RV_PASTE(cast, RV_I), RV_S)(                                                  \
        RV_X86(RV_P, slli, RV_E)(RV_X86(RV_P, RV_PASTE(cast, RV_S), RV_I)(v), n))

#endif

#endif /* CPROP_VOPS_H */
