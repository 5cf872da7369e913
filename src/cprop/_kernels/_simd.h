/* Shared by the kernel headers (_vecmath.h, _rows.h, _tiny.h, _lanes.h): the C library headers,
 * the compilers' attribute spellings, which code the row kernels are compiled from, and the
 * run-time choice of instruction set on x86-64 (one CPU detection, for the row kernels and the
 * population kernel alike).
 *
 * The row kernels (_vecmath_kernels.h, _rows_kernels.h) are written once over _vops.h's vector
 * operations, which have two backends:
 *   - GCC / Clang: their vector extensions (vector_size types and C operators), on every
 *     architecture: SSE2 and, chosen at run time, AVX2 on x86-64; NEON on aarch64; whatever
 *     16-byte vectors the target has elsewhere (CPROP_VECTORS 1);
 *   - MSVC on x64, which has no vector extensions: SSE2 and AVX2 intrinsics (<immintrin.h>),
 *     chosen at run time from CPUID (CPROP_INTRINSICS 1).
 * Any other compiler or architecture runs the scalar loops (CPROP_VECTOR_KERNELS 0).
 *
 * CPROP_MSVC_PATH (setup.py defines it when built with CPROP_MSVC_PATH=1 in the environment)
 * makes GCC or Clang compile exactly the code MSVC compiles: no vector extensions, no
 * __builtin_cpu_supports, the intrinsics backend and the CPUID detection; only the attribute
 * spellings below stay the compiler's own (GCC needs target("avx2") where MSVC needs nothing).
 * CI builds the kernels that way and runs the kernel tests on them.
 *
 * All builds do the same IEEE operations lane by lane, so they give the same bits: setup.py
 * compiles with -ffp-contract=off (MSVC's /fp:precise does not contract either), so no
 * multiply-add is fused into an FMA on any platform, and AVX2 is used without FMA.
 */
#ifndef CPROP_SIMD_H
#define CPROP_SIMD_H

#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The attribute spellings, per compiler (MSVC's __forceinline matters: _tiny.h's whole-step
 * kernel needs its formulas inlined into every shape). */
#if defined(_MSC_VER) && !defined(__clang__)
#define CPROP_NOINLINE __declspec(noinline)
#define CPROP_ALWAYS_INLINE __forceinline
#define CPROP_RESTRICT __restrict
#elif defined(__GNUC__) || defined(__clang__)
#define CPROP_NOINLINE __attribute__((noinline))
#define CPROP_ALWAYS_INLINE inline __attribute__((always_inline))
#define CPROP_RESTRICT __restrict__
#else
#define CPROP_NOINLINE
#define CPROP_ALWAYS_INLINE inline
#define CPROP_RESTRICT
#endif

#if defined(_MSC_VER) && !defined(__clang__) && !defined(CPROP_MSVC_PATH)
#define CPROP_MSVC_PATH 1
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define CPROP_X86_64 1
#include <immintrin.h>
/* A function compiled for AVX2 / AVX-512F next to baseline code: GCC and Clang need the target
 * attribute for its intrinsics; MSVC compiles any intrinsic anywhere. */
#if defined(_MSC_VER) && !defined(__clang__)
#define CPROP_TARGET_AVX2
#define CPROP_TARGET_AVX512
#else
#define CPROP_TARGET_AVX2 __attribute__((target("avx2")))
#define CPROP_TARGET_AVX512 __attribute__((target("avx512f")))
#endif
#endif

/* Which code the row kernels are compiled from (see the top of this file). */
#if !defined(CPROP_MSVC_PATH) && (defined(__GNUC__) || defined(__clang__))
#define CPROP_VECTORS 1
#define CPROP_INTRINSICS 0
#elif defined(CPROP_X86_64) && defined(CPROP_MSVC_PATH)
#define CPROP_VECTORS 0
#define CPROP_INTRINSICS 1
#else
#define CPROP_VECTORS 0
#define CPROP_INTRINSICS 0
#endif
#define CPROP_VECTOR_KERNELS (CPROP_VECTORS || CPROP_INTRINSICS)

#if CPROP_VECTORS
typedef double cprop_vd __attribute__((vector_size(16)));
typedef float cprop_vf __attribute__((vector_size(16)));
typedef double cprop_vd32 __attribute__((vector_size(32)));
typedef float cprop_vf32 __attribute__((vector_size(32)));
typedef unsigned int cprop_vu __attribute__((vector_size(16)));
typedef unsigned long long cprop_vul __attribute__((vector_size(16)));
typedef unsigned int cprop_vu32 __attribute__((vector_size(32)));
typedef unsigned long long cprop_vul32 __attribute__((vector_size(32)));

/* Unaligned load of a vector of type V from p, and store of the vector v to p. */
#define CPROP_LD(V, p) ({ V v_; memcpy(&v_, (p), sizeof(V)); v_; })
#define CPROP_ST(p, v) do { __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof(v_)); } while (0)
#endif

/* The instruction sets, in order (the population kernel has a build of each; the row kernels
 * have SSE2 and AVX2 on x86-64). */
#define CPROP_ISA_SCALAR 0
#define CPROP_ISA_SSE2 1
#define CPROP_ISA_AVX2 2
#define CPROP_ISA_AVX512 3
#define CPROP_ISA_NEON 4

#if defined(CPROP_X86_64)
#if defined(CPROP_MSVC_PATH)
/* CPUID and XGETBV, as MSVC has them (__cpuidex, _xgetbv); GCC and Clang spell CPUID
 * differently (<cpuid.h>) and need the xsave target for _xgetbv. */
#if defined(_MSC_VER)
#include <intrin.h>
static void cprop_cpuid(int r[4], int leaf) { __cpuidex(r, leaf, 0); }
static unsigned long long cprop_xcr0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void cprop_cpuid(int r[4], int leaf)
{
    unsigned int a, b, c, d;
    __cpuid_count(leaf, 0, a, b, c, d);
    r[0] = (int)a;
    r[1] = (int)b;
    r[2] = (int)c;
    r[3] = (int)d;
}
static __attribute__((target("xsave"))) unsigned long long cprop_xcr0(void) { return _xgetbv(0); }
#endif

/* The best set this CPU and OS run: the CPUID feature bits, and the OS saving the vector
 * registers' state (XCR0: SSE and AVX state for AVX2; the opmask and upper ZMM state too for
 * AVX-512F), as the compilers' own checks do. */
static int cprop_cpu_isa(void)
{
    int r[4];
    unsigned long long xcr0;
    int max_leaf, avx, avx2, avx512;
    cprop_cpuid(r, 0);
    max_leaf = r[0];
    cprop_cpuid(r, 1);
    avx = (r[2] >> 28) & 1;
    if (!((r[2] >> 27) & 1) || max_leaf < 7) return CPROP_ISA_SSE2;  /* no OSXSAVE / leaf 7 */
    xcr0 = cprop_xcr0();
    cprop_cpuid(r, 7);
    avx2 = avx && ((r[1] >> 5) & 1) && (xcr0 & 6) == 6;
    avx512 = avx2 && ((r[1] >> 16) & 1) && (xcr0 & 0xe6) == 0xe6;
    return avx512 ? CPROP_ISA_AVX512 : avx2 ? CPROP_ISA_AVX2 : CPROP_ISA_SSE2;
}
#else
static int cprop_cpu_isa(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return CPROP_ISA_AVX512;
    if (__builtin_cpu_supports("avx2")) return CPROP_ISA_AVX2;
    return CPROP_ISA_SSE2;
}
#endif
#endif /* CPROP_X86_64 */

#if CPROP_VECTOR_KERNELS && defined(CPROP_X86_64) && !defined(CPROP_NO_DISPATCH)
/* Run-time CPU dispatch on x86-64: the portable build (SSE2, 16-byte vectors) and an AVX2 build
 * (32-byte vectors) of every row kernel; cprop_dense_init() picks one at import. The wheel stays
 * baseline x86-64. CPROP_NO_AVX2=1 in the environment forces the portable build (the tests
 * compare the two). */
#define CPROP_DISPATCH 1

static int cprop_use_avx2 = 0;

static void cprop_dense_init(void)
{
    const char* off = getenv("CPROP_NO_AVX2");
    cprop_use_avx2 = cprop_cpu_isa() >= CPROP_ISA_AVX2 && !(off && off[0] && off[0] != '0');
}

static const char* cprop_dense_isa(void) { return cprop_use_avx2 ? "avx2" : "sse2"; }

/* The build of a row kernel to call: name_avx2 or name_base, with the arguments args. */
#define CPROP_DISPATCH_CALL(name, args) (cprop_use_avx2 ? name##_avx2 args : name##_base args)

#elif CPROP_VECTOR_KERNELS /* other architectures (aarch64: NEON is baseline): one build */

static void cprop_dense_init(void) {}
static const char* cprop_dense_isa(void) { return "portable vectors"; }
#define CPROP_DISPATCH_CALL(name, args) (name##_base args)

#else /* the scalar loops */

static void cprop_dense_init(void) {}
static const char* cprop_dense_isa(void) { return "scalar"; }

#endif

/* What the row kernels were compiled from, for `cprop info`. */
static const char* cprop_dense_code(void)
{
    return CPROP_VECTORS ? "vector extensions" : CPROP_INTRINSICS ? "intrinsics" : "scalar loops";
}

#endif /* CPROP_SIMD_H */
