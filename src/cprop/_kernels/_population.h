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
#define LV_BAD(v) ((v) != (v))
#define TGT
#define LANES 1
#ifndef POP_NV_SCALAR
#define POP_NV_SCALAR 8
#endif
#define NV POP_NV_SCALAR
#define M int
#define T double
#define V double
#define K d
#define S d
#define IS_DOUBLE 1
#define SUF d_scalar
#define LV_POW2(k) cprop_lane_pow2_d(k)
#include "_population_kernel.h"
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_POW2
#define T float
#define V float
#define K f
#define S f
#define IS_DOUBLE 0
#define SUF f_scalar
#define LV_POW2(k) cprop_lane_pow2_f(k)
#include "_population_kernel.h"
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_POW2
#undef LANES
#undef NV
#undef M
#undef TGT
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_BAD

#if defined(CPROP_LANES_X86)
/* sse2, double */
#define NV POP_NV_SSE2
#define M __m128d
#define TGT 
#define LANES 2
#define T double
#define V __m128d
#define K d
#define S d
#define IS_DOUBLE 1
#define SUF d_sse2
#define LV_LD(p) _mm_loadu_pd(p)
#define LV_ST(p, v) _mm_storeu_pd(p, v)
#define LV_SET1(x) _mm_set1_pd(x)
#define LV_ZERO() _mm_setzero_pd()
#define LV_ADD(a, b) _mm_add_pd(a, b)
#define LV_SUB(a, b) _mm_sub_pd(a, b)
#define LV_MUL(a, b) _mm_mul_pd(a, b)
#define LV_DIV(a, b) _mm_div_pd(a, b)
#define LV_MIN(a, b) _mm_min_pd(a, b)
#define LV_MAX(a, b) _mm_max_pd(a, b)
#define LV_POW2(k) _mm_castsi128_pd(_mm_slli_epi64(_mm_castpd_si128(k), 52))
#define LV_GT(a, b) _mm_cmpgt_pd(a, b)
#define LV_GE(a, b) _mm_cmpge_pd(a, b)
#define LV_SEL(m, a, b) _mm_or_pd(_mm_and_pd(m, a), _mm_andnot_pd(m, b))
#define LV_BAD(v) _mm_movemask_pd(_mm_cmpunord_pd(v, v))
#include "_population_kernel.h"
#undef NV
#undef M
#undef TGT
#undef LANES
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_POW2
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_BAD

/* sse2, float */
#define NV POP_NV_SSE2
#define M __m128
#define TGT 
#define LANES 4
#define T float
#define V __m128
#define K f
#define S f
#define IS_DOUBLE 0
#define SUF f_sse2
#define LV_LD(p) _mm_loadu_ps(p)
#define LV_ST(p, v) _mm_storeu_ps(p, v)
#define LV_SET1(x) _mm_set1_ps(x)
#define LV_ZERO() _mm_setzero_ps()
#define LV_ADD(a, b) _mm_add_ps(a, b)
#define LV_SUB(a, b) _mm_sub_ps(a, b)
#define LV_MUL(a, b) _mm_mul_ps(a, b)
#define LV_DIV(a, b) _mm_div_ps(a, b)
#define LV_MIN(a, b) _mm_min_ps(a, b)
#define LV_MAX(a, b) _mm_max_ps(a, b)
#define LV_POW2(k) _mm_castsi128_ps(_mm_slli_epi32(_mm_castps_si128(k), 23))
#define LV_GT(a, b) _mm_cmpgt_ps(a, b)
#define LV_GE(a, b) _mm_cmpge_ps(a, b)
#define LV_SEL(m, a, b) _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b))
#define LV_BAD(v) _mm_movemask_ps(_mm_cmpunord_ps(v, v))
#include "_population_kernel.h"
#undef NV
#undef M
#undef TGT
#undef LANES
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_POW2
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_BAD

/* avx2, double */
#define NV POP_NV_AVX2
#define M __m256d
#define TGT CPROP_TARGET_AVX2
#define LANES 4
#define T double
#define V __m256d
#define K d
#define S d
#define IS_DOUBLE 1
#define SUF d_avx2
#define LV_LD(p) _mm256_loadu_pd(p)
#define LV_ST(p, v) _mm256_storeu_pd(p, v)
#define LV_SET1(x) _mm256_set1_pd(x)
#define LV_ZERO() _mm256_setzero_pd()
#define LV_ADD(a, b) _mm256_add_pd(a, b)
#define LV_SUB(a, b) _mm256_sub_pd(a, b)
#define LV_MUL(a, b) _mm256_mul_pd(a, b)
#define LV_DIV(a, b) _mm256_div_pd(a, b)
#define LV_MIN(a, b) _mm256_min_pd(a, b)
#define LV_MAX(a, b) _mm256_max_pd(a, b)
#define LV_POW2(k) _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(k), 52))
#define LV_GT(a, b) _mm256_cmp_pd(a, b, _CMP_GT_OQ)
#define LV_GE(a, b) _mm256_cmp_pd(a, b, _CMP_GE_OQ)
#define LV_SEL(m, a, b) _mm256_blendv_pd(b, a, m)
#define LV_BAD(v) _mm256_movemask_pd(_mm256_cmp_pd(v, v, _CMP_UNORD_Q))
#include "_population_kernel.h"
#undef NV
#undef M
#undef TGT
#undef LANES
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_POW2
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_BAD

/* avx2, float */
#define NV POP_NV_AVX2
#define M __m256
#define TGT CPROP_TARGET_AVX2
#define LANES 8
#define T float
#define V __m256
#define K f
#define S f
#define IS_DOUBLE 0
#define SUF f_avx2
#define LV_LD(p) _mm256_loadu_ps(p)
#define LV_ST(p, v) _mm256_storeu_ps(p, v)
#define LV_SET1(x) _mm256_set1_ps(x)
#define LV_ZERO() _mm256_setzero_ps()
#define LV_ADD(a, b) _mm256_add_ps(a, b)
#define LV_SUB(a, b) _mm256_sub_ps(a, b)
#define LV_MUL(a, b) _mm256_mul_ps(a, b)
#define LV_DIV(a, b) _mm256_div_ps(a, b)
#define LV_MIN(a, b) _mm256_min_ps(a, b)
#define LV_MAX(a, b) _mm256_max_ps(a, b)
#define LV_POW2(k) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(k), 23))
#define LV_GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define LV_GE(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define LV_SEL(m, a, b) _mm256_blendv_ps(b, a, m)
#define LV_BAD(v) _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))
#include "_population_kernel.h"
#undef NV
#undef M
#undef TGT
#undef LANES
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_POW2
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_BAD

/* avx512, double */
#define NV POP_NV_AVX512
#define M __mmask8
#define TGT CPROP_TARGET_AVX512
#define LANES 8
#define T double
#define V __m512d
#define K d
#define S d
#define IS_DOUBLE 1
#define SUF d_avx512
#define LV_LD(p) _mm512_loadu_pd(p)
#define LV_ST(p, v) _mm512_storeu_pd(p, v)
#define LV_SET1(x) _mm512_set1_pd(x)
#define LV_ZERO() _mm512_setzero_pd()
#define LV_ADD(a, b) _mm512_add_pd(a, b)
#define LV_SUB(a, b) _mm512_sub_pd(a, b)
#define LV_MUL(a, b) _mm512_mul_pd(a, b)
#define LV_DIV(a, b) _mm512_div_pd(a, b)
#define LV_MIN(a, b) _mm512_min_pd(a, b)
#define LV_MAX(a, b) _mm512_max_pd(a, b)
#define LV_POW2(k) _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(k), 52))
#define LV_GT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ)
#define LV_GE(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ)
#define LV_SEL(m, a, b) _mm512_mask_blend_pd(m, b, a)
#define LV_BAD(v) ((int)_mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q))
#include "_population_kernel.h"
#undef NV
#undef M
#undef TGT
#undef LANES
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_POW2
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_BAD

/* avx512, float */
#define NV POP_NV_AVX512
#define M __mmask16
#define TGT CPROP_TARGET_AVX512
#define LANES 16
#define T float
#define V __m512
#define K f
#define S f
#define IS_DOUBLE 0
#define SUF f_avx512
#define LV_LD(p) _mm512_loadu_ps(p)
#define LV_ST(p, v) _mm512_storeu_ps(p, v)
#define LV_SET1(x) _mm512_set1_ps(x)
#define LV_ZERO() _mm512_setzero_ps()
#define LV_ADD(a, b) _mm512_add_ps(a, b)
#define LV_SUB(a, b) _mm512_sub_ps(a, b)
#define LV_MUL(a, b) _mm512_mul_ps(a, b)
#define LV_DIV(a, b) _mm512_div_ps(a, b)
#define LV_MIN(a, b) _mm512_min_ps(a, b)
#define LV_MAX(a, b) _mm512_max_ps(a, b)
#define LV_POW2(k) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(k), 23))
#define LV_GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define LV_GE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define LV_SEL(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define LV_BAD(v) ((int)_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q))
#include "_population_kernel.h"
#undef NV
#undef M
#undef TGT
#undef LANES
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_POW2
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_BAD

#endif

#if defined(CPROP_LANES_NEON)
/* lanes whose value is NaN, as bits */
static CPROP_ALWAYS_INLINE int cprop_lane_bad_f64(float64x2_t v)
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
/* neon, double */
#define NV POP_NV_NEON
#define M uint64x2_t
#define TGT 
#define LANES 2
#define T double
#define V float64x2_t
#define K d
#define S d
#define IS_DOUBLE 1
#define SUF d_neon
#define LV_LD(p) vld1q_f64(p)
#define LV_ST(p, v) vst1q_f64(p, v)
#define LV_SET1(x) vdupq_n_f64(x)
#define LV_ZERO() vdupq_n_f64(0)
#define LV_ADD(a, b) vaddq_f64(a, b)
#define LV_SUB(a, b) vsubq_f64(a, b)
#define LV_MUL(a, b) vmulq_f64(a, b)
#define LV_DIV(a, b) vdivq_f64(a, b)
#define LV_MIN(a, b) vbslq_f64(vcltq_f64(a, b), a, b)
#define LV_MAX(a, b) vbslq_f64(vcgtq_f64(a, b), a, b)
#define LV_GT(a, b) vcgtq_f64(a, b)
#define LV_GE(a, b) vcgeq_f64(a, b)
#define LV_SEL(m, a, b) vbslq_f64(m, a, b)
#define LV_POW2(k) vreinterpretq_f64_u64(vshlq_n_u64(vreinterpretq_u64_f64(k), 52))
#define LV_BAD(v) cprop_lane_bad_f64(v)
#include "_population_kernel.h"
#undef NV
#undef M
#undef TGT
#undef LANES
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_POW2
#undef LV_BAD

/* neon, float */
#define NV POP_NV_NEON
#define M uint32x4_t
#define TGT 
#define LANES 4
#define T float
#define V float32x4_t
#define K f
#define S f
#define IS_DOUBLE 0
#define SUF f_neon
#define LV_LD(p) vld1q_f32(p)
#define LV_ST(p, v) vst1q_f32(p, v)
#define LV_SET1(x) vdupq_n_f32(x)
#define LV_ZERO() vdupq_n_f32(0)
#define LV_ADD(a, b) vaddq_f32(a, b)
#define LV_SUB(a, b) vsubq_f32(a, b)
#define LV_MUL(a, b) vmulq_f32(a, b)
#define LV_DIV(a, b) vdivq_f32(a, b)
#define LV_MIN(a, b) vbslq_f32(vcltq_f32(a, b), a, b)
#define LV_MAX(a, b) vbslq_f32(vcgtq_f32(a, b), a, b)
#define LV_GT(a, b) vcgtq_f32(a, b)
#define LV_GE(a, b) vcgeq_f32(a, b)
#define LV_SEL(m, a, b) vbslq_f32(m, a, b)
#define LV_POW2(k) vreinterpretq_f32_u32(vshlq_n_u32(vreinterpretq_u32_f32(k), 23))
#define LV_BAD(v) cprop_lane_bad_f32(v)
#include "_population_kernel.h"
#undef NV
#undef M
#undef TGT
#undef LANES
#undef T
#undef V
#undef K
#undef S
#undef IS_DOUBLE
#undef SUF
#undef LV_LD
#undef LV_ST
#undef LV_SET1
#undef LV_ZERO
#undef LV_ADD
#undef LV_SUB
#undef LV_MUL
#undef LV_DIV
#undef LV_MIN
#undef LV_MAX
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_POW2
#undef LV_BAD

#endif


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
