/* One build of a row-kernel file (RV_BODY: "_vecmath_kernels.h" or "_rows_kernels.h") over
 * _vops.h's operations, no include guard on purpose. Before it: RV_BODY, RV_DOUBLE (1: float64,
 * 0: float32) and RV_WIDE (0: 16-byte vectors, the portable build, function suffix _base;
 * 1: 32-byte vectors compiled for AVX2, x86-64 only, suffix _avx2); this file undefines the two
 * last. _vops_builds.h includes it once per build of the backend. On the intrinsics backend
 * the compares and the select are defined here, per width.
 */
#include "_vops.h"

#if RV_DOUBLE
#define T double
#define K d
#else
#define T float
#define K f
#endif
/* The values in a vector: 16 or 32 bytes' worth. */
#define LANES ((RV_WIDE ? 32 : 16) / (int)sizeof(T))

#if RV_WIDE
#define TGT CPROP_TARGET_AVX2
#define SUF RV_CAT(K, avx2)
#else
#define TGT
#define SUF RV_CAT(K, base)
#endif

#if CPROP_VECTORS
#define RV_X2(x) x, x
#define RV_X4(x) RV_X2(x), RV_X2(x)
#define RV_X8(x) RV_X4(x), RV_X4(x)
#if RV_DOUBLE && RV_WIDE
#define V cprop_vd32
#define VU cprop_vul32
#define RV_SET1(x) ((V){RV_X4((T)(x))})
#elif RV_DOUBLE
#define V cprop_vd
#define VU cprop_vul
#define RV_SET1(x) ((V){RV_X2((T)(x))})
#elif RV_WIDE
#define V cprop_vf32
#define VU cprop_vu32
#define RV_SET1(x) ((V){RV_X8((T)(x))})
#else
#define V cprop_vf
#define VU cprop_vu
#define RV_SET1(x) ((V){RV_X4((T)(x))})
#endif

#elif CPROP_INTRINSICS
#if RV_DOUBLE
#define RV_S pd
#define RV_E epi64
#else
#define RV_S ps
#define RV_E epi32
#endif
#if RV_WIDE
#define RV_P _mm256
#define RV_I si256
#if RV_DOUBLE
#define V __m256d
#else
#define V __m256
#endif
#define RV_LT(a, b) RV_X86(_mm256, cmp, RV_S)(a, b, _CMP_LT_OQ)
#define RV_GT(a, b) RV_X86(_mm256, cmp, RV_S)(a, b, _CMP_GT_OQ)
#define RV_GE(a, b) RV_X86(_mm256, cmp, RV_S)(a, b, _CMP_GE_OQ)
#define RV_ISNAN(a) RV_X86(_mm256, cmp, RV_S)(a, a, _CMP_UNORD_Q)
#define RV_SEL(m, a, b) RV_X86(_mm256, blendv, RV_S)(b, a, m)
#else
#define RV_P _mm
#define RV_I si128
#if RV_DOUBLE
#define V __m128d
#else
#define V __m128
#endif
#define RV_LT(a, b) RV_X86(_mm, cmplt, RV_S)(a, b)
#define RV_GT(a, b) RV_X86(_mm, cmpgt, RV_S)(a, b)
#define RV_GE(a, b) RV_X86(_mm, cmpge, RV_S)(a, b)
#define RV_ISNAN(a) RV_X86(_mm, cmpunord, RV_S)(a, a)
#define RV_SEL(m, a, b) RV_OR(RV_AND(m, a), RV_ANDNOT(m, b))  /* SSE2 has no blend */
#endif
#endif

#include RV_BODY

#undef T
#undef K
#undef LANES
#undef TGT
#undef SUF
#undef V
#undef VU
#if CPROP_VECTORS
#undef RV_SET1
#undef RV_X2
#undef RV_X4
#undef RV_X8
#endif
#if CPROP_INTRINSICS
#undef RV_S
#undef RV_E
#undef RV_P
#undef RV_I
#undef RV_LT
#undef RV_GT
#undef RV_GE
#undef RV_ISNAN
#undef RV_SEL
#endif
#undef RV_DOUBLE
#undef RV_WIDE
