/* The instruction sets of the population kernel (_population.h): one vector layer per ISA,
 * written with the compilers' intrinsics (<immintrin.h>, <arm_neon.h>), which GCC, Clang and
 * MSVC all compile, plus the same operations on plain scalars (any C compiler). The population
 * kernel is written once, in _population_kernel.h, over the macros below, and included once per
 * instruction set, so every lane of every build does the same IEEE operations in the same order
 * and gives the same bits: no FMA anywhere (SSE2 has none; setup.py's -ffp-contract=off keeps
 * GCC from fusing the scalar build's multiply-adds, and MSVC's default /fp:precise does not fuse).
 *
 * Builds: scalar (1 lane) everywhere; on x86-64 SSE2 (baseline), AVX2 and AVX-512F, chosen at
 * run time (cprop_lanes_init); NEON on aarch64. CPROP_ISA=scalar|sse2|avx2|avx512|neon in the
 * environment (read at import) caps the choice, so the tests can run each set the CPU has.
 *
 * The macros a build defines (V: the vector of T; M: a lane mask; all element-wise):
 *   LV_LD(p) LV_ST(p, v) LV_SET1(x) LV_ZERO()          load, store (unaligned), broadcast, 0
 *   LV_ADD LV_SUB LV_MUL LV_DIV(a, b)                  IEEE arithmetic, lane by lane
 *   LV_MIN(a, b) LV_MAX(a, b)                          a < b ? a : b / a > b ? a : b (so b
 *                                                      when either is NaN: as minpd / maxpd)
 *   LV_GT(a, b) LV_GE(a, b)                            masks of a > b, a >= b
 *   LV_SEL(m, a, b)                                    m ? a : b
 *   LV_POW2(k)                                         2^k for k integer-valued, from k + the
 *                                                      exponent bias by the shifter (see below)
 *   LV_BAD(v)                                          int bits, lane q set if v[q] is NaN
 */
#ifndef CPROP_LANES_H
#define CPROP_LANES_H

#include "_simd.h"

#if defined(CPROP_X86_64)  /* _simd.h: <immintrin.h>, CPROP_TARGET_AVX2 / _AVX512 */
#define CPROP_LANES_X86 1
#elif defined(__aarch64__) || defined(_M_ARM64)
#define CPROP_LANES_NEON 1
#include <arm_neon.h>
#endif

/* The instruction sets (CPROP_ISA_*, _simd.h); cprop_lanes_isa is the one the kernels use. */
static int cprop_lanes_isa = CPROP_ISA_SCALAR;
static int cprop_lanes_best = CPROP_ISA_SCALAR;

static const char* cprop_lanes_isa_name(int isa)
{
    switch (isa) {
    case CPROP_ISA_SSE2: return "sse2";
    case CPROP_ISA_AVX2: return "avx2";
    case CPROP_ISA_AVX512: return "avx512";
    case CPROP_ISA_NEON: return "neon";
    default: return "scalar";
    }
}

/* The best set this CPU and OS run (on x86-64, _simd.h's detection, which the row kernels use
 * too). */
static int cprop_lanes_detect(void)
{
#if defined(CPROP_LANES_X86)
    return cprop_cpu_isa();
#elif defined(CPROP_LANES_NEON)
    return CPROP_ISA_NEON;
#else
    return CPROP_ISA_SCALAR;
#endif
}

/* Choose the set: the one asked for, or the best this CPU has below it (NEON stands for any
 * vector set on aarch64, and any vector set for NEON there). Returns the set chosen. */
static int cprop_lanes_set(int isa)
{
#if defined(CPROP_LANES_NEON)
    isa = isa == CPROP_ISA_SCALAR ? CPROP_ISA_SCALAR : CPROP_ISA_NEON;
#else
    if (isa == CPROP_ISA_NEON || isa > cprop_lanes_best) isa = cprop_lanes_best;
#endif
    cprop_lanes_isa = isa;
    return isa;
}

static int cprop_lanes_parse(const char* name)
{
    if (name == NULL || !name[0]) return -1;
    if (!strcmp(name, "scalar")) return CPROP_ISA_SCALAR;
    if (!strcmp(name, "sse2")) return CPROP_ISA_SSE2;
    if (!strcmp(name, "avx2")) return CPROP_ISA_AVX2;
    if (!strcmp(name, "avx512")) return CPROP_ISA_AVX512;
    if (!strcmp(name, "neon")) return CPROP_ISA_NEON;
    return -1;
}

static void cprop_lanes_init(void)
{
    int want;
    cprop_lanes_best = cprop_lanes_detect();
    want = cprop_lanes_parse(getenv("CPROP_ISA"));
    cprop_lanes_set(want < 0 ? cprop_lanes_best : want);
}

/* The exp coefficients' names (_vecmath.h's, so both exps share them) as lane constants. */
#define LV_C(K, I) LV_SET1(CPROP_EXP_##K##_C##I)

#endif /* CPROP_LANES_H */
