/* The "lanes" route of populations: a block of B networks of one architecture trained at once by
 * single-row SGD over the same rows, one network per SIMD lane (cprop_pop_train_block_d/_f).
 *
 * Layout: every parameter, activation and delta is a run of B values, one per network of the
 * block ([param][lane], P[k * B + q] is parameter k of lane q), so one vector holds the same
 * parameter of LANES networks and every dense loop is the one-network loop with vectors where
 * the scalars were. The input row and its targets are shared by every lane (broadcast).
 *
 * Arithmetic, lane by lane, is the one-row SGD route's (_rows.h, _tiny.h) in its order: z_j = b_j
 * + a_0 W_0j + a_1 W_1j + ...; the layer below's delta (W_i0 d_0 + W_i1 d_1 + ...) f'(a_i) from
 * the weights before the update; W_ij <- W_ij - lr (a_i d_j), b_j <- b_j - lr d_j. Each row's
 * loss is _formulas.h's output formula (the history: the mean of a net's row losses before their
 * steps, added in double in row order). What differs is exp: sigmoid, softmax and the exp output
 * take _population_kernel.h's vector exp (under 1.5 ulp) where MLP.fit takes libm's (float64) or
 * the compensated row kernel (float32), so a member ends where MLP.fit would to rounding, as
 * DESIGN allows: 1e-12 relative after 20 epochs in the tests (float32: 1e-5).
 *
 * A step is refused per lane, as MLP.fit refuses it: if the row's loss or any new value of that
 * lane is not finite, that lane keeps its parameters from before the row and stops (status
 * e + 1). The step runs in place; a refusal (rare) replays the epoch from a copy taken at its
 * start up to the row (the same bits), which recovers the lane's parameters before the row.
 *
 * Builds (_lanes.h): the kernel is written once (_population_kernel.h) over intrinsics macros and
 * included once per instruction set: scalar; SSE2, AVX2, AVX-512F on x86-64; NEON on aarch64.
 * All give the same bits (no FMA, the same operations in the same order per lane); the block is
 * NV = 8 vectors wide (B = 8 LANES networks; the scalar build 8 values), so B depends on the set:
 * cprop_pop_block_d/_f(isa) gives it.
 */
#ifndef CPROP_POPULATION_H
#define CPROP_POPULATION_H

#include "_simd.h"
#include "_formulas.h"
#include "_lanes.h"

/* One architecture: layer l maps sizes[l] to sizes[l + 1] units; its weights are parameters
 * w_off[l] .. (row-major (n_in, n_out)), its biases b_off[l] ..; its outputs (and deltas) are
 * units u_off[l + 1] .. of the A and D workspaces (u_off[1] = 0; the input is not stored). */
typedef struct {
    ptrdiff_t n_layers, n_params, n_units;
    const ptrdiff_t* sizes;
    const ptrdiff_t* w_off;
    const ptrdiff_t* b_off;
    const ptrdiff_t* u_off;
    const int* act;
    int loss, train_biases;
    double slope;
} cprop_pop_net;

/* cprop_pop_train_block_d/_f(net, P, work, dwork, X, Tg, n_rows, epochs, lr, losses, status):
 * trains the B lanes of P ([n_params][B]) for `epochs` epochs over rows 0 .. n_rows-1 of X and
 * Tg in order, lane q at rate lr[q]. losses[q * epochs + e] gets lane q's epoch-e loss, NaN from
 * the epoch in which a step was refused; status[q] 0 or e + 1 (a step of epoch e refused).
 * work: cprop_pop_work(net, B) values of T; dwork: 2 B doubles. */
#define cprop_pop_work(n_params, n_units, n_out, B) ((2 * (n_params) + 2 * (n_units) + (n_out) + 1) * (B))

#define POP_CAT_(a, b) a##_##b
#define POP_CAT(a, b) POP_CAT_(a, b)
#define POP_FN(name) POP_CAT(name, SUF)
#define POP_SFN(name) POP_CAT(name, S)
#define POP_CAT3_(a, b, c) a##b##c
#define POP_CAT3(a, b, c) POP_CAT3_(a, b, c)
#define POP_EXPC(name) POP_CAT3(CPROP_EXP_, K, name)

/* NV, the vectors per block of each build: enough independent chains that a row's step (a long
 * chain of dependent operations: two sigmoids deep, then back) is bound by throughput rather
 * than latency, few enough that a block's parameters stay in L1. W4 (2-2-1, XOR), million
 * net-steps/s float64 / float32, Intel Xeon with AVX-512: AVX2 NV 4: 73 / 144, 8: 82 / 163,
 * 16: 66 / 131; AVX-512 NV 4: 98 / 203, 8: 109 / 219, 16: 93 / 185; SSE2 NV 16: 37 / 79,
 * 8: 41 / 86. */
#ifndef POP_NV_SSE2
#define POP_NV_SSE2 8
#endif
#ifndef POP_NV_AVX2
#define POP_NV_AVX2 8
#endif
#ifndef POP_NV_AVX512
#define POP_NV_AVX512 8
#endif
#ifndef POP_NV_NEON
#define POP_NV_NEON 8
#endif

/* ---- The builds. Each one: the set's macros (POP_ISA, TGT, NV, its types and lanes, the LV_*
 * operations), then _population_build.h once for float64 and once for float32 (POP_DOUBLE),
 * which includes the kernel; then the set's macros are undefined. ---- */

/* scalar: plain C on one value (any compiler) */
static CPROP_ALWAYS_INLINE double cprop_lane_pow2_d(double k)
{
    unsigned long long b;
    memcpy(&b, &k, sizeof b);
    b <<= CPROP_EXP_d_MANT;
    memcpy(&k, &b, sizeof b);
    return k;
}
static CPROP_ALWAYS_INLINE float cprop_lane_pow2_f(float k)
{
    unsigned int b;
    memcpy(&b, &k, sizeof b);
    b <<= CPROP_EXP_f_MANT;
    memcpy(&k, &b, sizeof b);
    return k;
}
#ifndef POP_NV_SCALAR
#define POP_NV_SCALAR 8
#endif
#define POP_ISA scalar
#define TGT
#define NV POP_NV_SCALAR
#define POP_VD double
#define POP_VF float
#define POP_MD int
#define POP_MF int
#define POP_LANES_D 1
#define POP_LANES_F 1
#define LV_LD(p) (*(p))
#define LV_ST(p, v) (*(p) = (v))
#define LV_SET1(x) ((T)(x))
#define LV_ZERO() ((T)0)
#define LV_ADD(a, b) ((a) + (b))
#define LV_SUB(a, b) ((a) - (b))
#define LV_MUL(a, b) ((a) * (b))
#define LV_DIV(a, b) ((a) / (b))
#define LV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LV_MAX(a, b) ((a) > (b) ? (a) : (b))
#define LV_GT(a, b) ((a) > (b))
#define LV_GE(a, b) ((a) >= (b))
#define LV_SEL(m, a, b) ((m) ? (a) : (b))
#define LV_POW2(k) POP_CAT(cprop_lane_pow2, K)(k)
#define LV_BAD(v) ((v) != (v))
#define POP_DOUBLE 1
#include "_population_build.h"
#define POP_DOUBLE 0
#include "_population_build.h"
#define POP_UNSET_OPS
#include "_population_unset.h"

#if defined(CPROP_LANES_X86)
/* x86-64: the operations every width shares, spelled from the width's prefix (LVP: _mm,
 * _mm256, _mm512), its integer type (LVI: si128, ...) and the type's suffixes (LVS: pd / ps,
 * LVE: epi64 / epi32), e.g. LV_ADD -> _mm256_add_pd. */
#define POP_X86_(p, n, s) p##_##n##_##s
#define POP_X86(p, n, s) POP_X86_(p, n, s)
#define POP_PASTE_(a, b) a##b
#define POP_PASTE(a, b) POP_PASTE_(a, b)
#define POP_SFX_D pd
#define POP_SFX_F ps
#define POP_INT_D epi64
#define POP_INT_F epi32
#define LV_LD(p) POP_X86(LVP, loadu, LVS)(p)
#define LV_ST(p, v) POP_X86(LVP, storeu, LVS)(p, v)
#define LV_SET1(x) POP_X86(LVP, set1, LVS)(x)
#define LV_ZERO() POP_X86(LVP, setzero, LVS)()
#define LV_ADD(a, b) POP_X86(LVP, add, LVS)(a, b)
#define LV_SUB(a, b) POP_X86(LVP, sub, LVS)(a, b)
#define LV_MUL(a, b) POP_X86(LVP, mul, LVS)(a, b)
#define LV_DIV(a, b) POP_X86(LVP, div, LVS)(a, b)
#define LV_MIN(a, b) POP_X86(LVP, min, LVS)(a, b)
#define LV_MAX(a, b) POP_X86(LVP, max, LVS)(a, b)
#define LV_POW2(k)                                                                             \
    POP_X86(LVP, POP_PASTE(cast, LVI), LVS)(                                                   \
        POP_X86(LVP, slli, LVE)(POP_X86(LVP, POP_PASTE(cast, LVS), LVI)(k), POP_EXPC(_MANT)))

/* SSE2: 2 doubles / 4 floats; masks are vectors; no blend (SSE4.1), so and / andnot / or */
#define POP_ISA sse2
#define TGT
#define NV POP_NV_SSE2
#define LVP _mm
#define LVI si128
#define POP_VD __m128d
#define POP_VF __m128
#define POP_MD __m128d
#define POP_MF __m128
#define POP_LANES_D 2
#define POP_LANES_F 4
#define LV_GT(a, b) POP_X86(_mm, cmpgt, LVS)(a, b)
#define LV_GE(a, b) POP_X86(_mm, cmpge, LVS)(a, b)
#define LV_SEL(m, a, b)                                                                        \
    POP_X86(_mm, or, LVS)(POP_X86(_mm, and, LVS)(m, a), POP_X86(_mm, andnot, LVS)(m, b))
#define LV_BAD(v) POP_X86(_mm, movemask, LVS)(POP_X86(_mm, cmpunord, LVS)(v, v))
#define POP_DOUBLE 1
#include "_population_build.h"
#define POP_DOUBLE 0
#include "_population_build.h"
#undef LVP
#undef LVI
#include "_population_unset.h"

/* AVX2: 4 doubles / 8 floats; masks are vectors */
#define POP_ISA avx2
#define TGT CPROP_TARGET_AVX2
#define NV POP_NV_AVX2
#define LVP _mm256
#define LVI si256
#define POP_VD __m256d
#define POP_VF __m256
#define POP_MD __m256d
#define POP_MF __m256
#define POP_LANES_D 4
#define POP_LANES_F 8
#define LV_GT(a, b) POP_X86(_mm256, cmp, LVS)(a, b, _CMP_GT_OQ)
#define LV_GE(a, b) POP_X86(_mm256, cmp, LVS)(a, b, _CMP_GE_OQ)
#define LV_SEL(m, a, b) POP_X86(_mm256, blendv, LVS)(b, a, m)
#define LV_BAD(v) POP_X86(_mm256, movemask, LVS)(POP_X86(_mm256, cmp, LVS)(v, v, _CMP_UNORD_Q))
#define POP_DOUBLE 1
#include "_population_build.h"
#define POP_DOUBLE 0
#include "_population_build.h"
#undef LVP
#undef LVI
#include "_population_unset.h"

/* AVX-512F: 8 doubles / 16 floats; masks are mask registers (__mmask8 / __mmask16) */
#define POP_ISA avx512
#define TGT CPROP_TARGET_AVX512
#define NV POP_NV_AVX512
#define LVP _mm512
#define LVI si512
#define POP_VD __m512d
#define POP_VF __m512
#define POP_MD __mmask8
#define POP_MF __mmask16
#define POP_LANES_D 8
#define POP_LANES_F 16
#define LV_GT(a, b) POP_X86(_mm512, cmp, POP_PASTE(LVS, _mask))(a, b, _CMP_GT_OQ)
#define LV_GE(a, b) POP_X86(_mm512, cmp, POP_PASTE(LVS, _mask))(a, b, _CMP_GE_OQ)
#define LV_SEL(m, a, b) POP_X86(_mm512, mask_blend, LVS)(m, b, a)
#define LV_BAD(v) ((int)POP_X86(_mm512, cmp, POP_PASTE(LVS, _mask))(v, v, _CMP_UNORD_Q))
#define POP_DOUBLE 1
#include "_population_build.h"
#define POP_DOUBLE 0
#include "_population_build.h"
#undef LVP
#undef LVI
#define POP_UNSET_OPS
#include "_population_unset.h"
#undef POP_SFX_D
#undef POP_SFX_F
#undef POP_INT_D
#undef POP_INT_F
#endif /* CPROP_LANES_X86 */

#if defined(CPROP_LANES_NEON)
/* NEON (aarch64): 2 doubles / 4 floats; masks are unsigned vectors; LVS f64 / f32, LVE (the
 * unsigned lanes) u64 / u32 */
static CPROP_ALWAYS_INLINE int cprop_lane_bad_f64(float64x2_t v)  /* NaN lanes, as bits */
{
    uint64x2_t ok = vceqq_f64(v, v);
    return (vgetq_lane_u64(ok, 0) ? 0 : 1) | (vgetq_lane_u64(ok, 1) ? 0 : 2);
}
static CPROP_ALWAYS_INLINE int cprop_lane_bad_f32(float32x4_t v)
{
    uint32x4_t ok = vceqq_f32(v, v);
    return (vgetq_lane_u32(ok, 0) ? 0 : 1) | (vgetq_lane_u32(ok, 1) ? 0 : 2)
           | (vgetq_lane_u32(ok, 2) ? 0 : 4) | (vgetq_lane_u32(ok, 3) ? 0 : 8);
}
#define POP_NEON_(n, s) n##_##s
#define POP_NEON(n, s) POP_NEON_(n, s)
#define POP_SFX_D f64
#define POP_SFX_F f32
#define POP_INT_D u64
#define POP_INT_F u32
#define POP_ISA neon
#define TGT
#define NV POP_NV_NEON
#define POP_VD float64x2_t
#define POP_VF float32x4_t
#define POP_MD uint64x2_t
#define POP_MF uint32x4_t
#define POP_LANES_D 2
#define POP_LANES_F 4
#define LV_LD(p) POP_NEON(vld1q, LVS)(p)
#define LV_ST(p, v) POP_NEON(vst1q, LVS)(p, v)
#define LV_SET1(x) POP_NEON(vdupq_n, LVS)(x)
#define LV_ZERO() POP_NEON(vdupq_n, LVS)(0)
#define LV_ADD(a, b) POP_NEON(vaddq, LVS)(a, b)
#define LV_SUB(a, b) POP_NEON(vsubq, LVS)(a, b)
#define LV_MUL(a, b) POP_NEON(vmulq, LVS)(a, b)
#define LV_DIV(a, b) POP_NEON(vdivq, LVS)(a, b)
#define LV_MIN(a, b) POP_NEON(vbslq, LVS)(POP_NEON(vcltq, LVS)(a, b), a, b)
#define LV_MAX(a, b) POP_NEON(vbslq, LVS)(POP_NEON(vcgtq, LVS)(a, b), a, b)
#define LV_GT(a, b) POP_NEON(vcgtq, LVS)(a, b)
#define LV_GE(a, b) POP_NEON(vcgeq, LVS)(a, b)
#define LV_SEL(m, a, b) POP_NEON(vbslq, LVS)(m, a, b)
#define LV_POW2(k)                                                                             \
    POP_NEON(vreinterpretq, POP_NEON(LVS, LVE))(                                               \
        POP_NEON(vshlq_n, LVE)(POP_NEON(vreinterpretq, POP_NEON(LVE, LVS))(k), POP_EXPC(_MANT)))
#define LV_BAD(v) POP_NEON(cprop_lane_bad, LVS)(v)
#define POP_DOUBLE 1
#include "_population_build.h"
#define POP_DOUBLE 0
#include "_population_build.h"
#define POP_UNSET_OPS
#include "_population_unset.h"
#undef POP_SFX_D
#undef POP_SFX_F
#undef POP_INT_D
#undef POP_INT_F
#endif /* CPROP_LANES_NEON */

/* The dispatch: the build of the set `isa` names (the caller reads cprop_lanes_isa once, so
 * that B and the build agree even if the set changes meanwhile). */
#if defined(CPROP_LANES_X86)
#define POP_DISPATCH_CASES(FN, ARGS)                                                           \
    case CPROP_ISA_AVX512: FN##_avx512 ARGS; break;                                            \
    case CPROP_ISA_AVX2: FN##_avx2 ARGS; break;                                                \
    case CPROP_ISA_SSE2: FN##_sse2 ARGS; break;
#elif defined(CPROP_LANES_NEON)
#define POP_DISPATCH_CASES(FN, ARGS) case CPROP_ISA_NEON: FN##_neon ARGS; break;
#else
#define POP_DISPATCH_CASES(FN, ARGS)
#endif

#define POP_ARGS (net, P, work, dwork, X, Tg, n_rows, epochs, lr, losses, status)
static void cprop_pop_train_block_d(int isa, const cprop_pop_net* net, double* P, double* work,
                                    double* dwork, const double* X, const double* Tg,
                                    ptrdiff_t n_rows, ptrdiff_t epochs, const double* lr,
                                    double* losses, int* status)
{
    switch (isa) {
    POP_DISPATCH_CASES(cprop_pop_train_block_d, POP_ARGS)
    default: cprop_pop_train_block_d_scalar POP_ARGS; break;
    }
}

static void cprop_pop_train_block_f(int isa, const cprop_pop_net* net, float* P, float* work,
                                    double* dwork, const float* X, const float* Tg,
                                    ptrdiff_t n_rows, ptrdiff_t epochs, const float* lr,
                                    double* losses, int* status)
{
    switch (isa) {
    POP_DISPATCH_CASES(cprop_pop_train_block_f, POP_ARGS)
    default: cprop_pop_train_block_f_scalar POP_ARGS; break;
    }
}

/* B, the networks per block of set `isa`: NV vectors (float: twice the lanes). */
static int cprop_pop_block_d(int isa)
{
    switch (isa) {
    POP_DISPATCH_CASES(return cprop_pop_block_d, ())
    default: break;
    }
    return cprop_pop_block_d_scalar();
}

static int cprop_pop_block_f(int isa)
{
    switch (isa) {
    POP_DISPATCH_CASES(return cprop_pop_block_f, ())
    default: break;
    }
    return cprop_pop_block_f_scalar();
}

#undef POP_ARGS
#endif /* CPROP_POPULATION_H */
