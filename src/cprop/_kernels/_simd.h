/* Shared by the kernel headers (_vecmath.h, _rows.h, _tiny.h): the C library headers, the
 * portability macros, the GCC/Clang vector types, unaligned vector loads and stores, and the
 * run-time choice of instruction set on x86-64.
 *
 * The kernels are vectorised by construction with GCC/Clang vector extensions: SSE2 or, chosen at
 * run time, AVX2 on x86-64; NEON on aarch64; other compilers get the scalar loops
 * (CPROP_VECTORS 0). setup.py compiles with -ffp-contract=off, so no multiply-add is fused into
 * an FMA on any platform.
 */
#ifndef CPROP_SIMD_H
#define CPROP_SIMD_H

#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define CPROP_VECTORS 1
#define CPROP_NOINLINE __attribute__((noinline))
#define CPROP_ALWAYS_INLINE inline __attribute__((always_inline))
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
#define CPROP_ALWAYS_INLINE inline
#define CPROP_RESTRICT
#endif

/* Unaligned load of a vector of type V from p, and store of the vector v to p (GCC/Clang only). */
#define CPROP_LD(V, p) ({ V v_; memcpy(&v_, (p), sizeof(V)); v_; })
#define CPROP_ST(p, v) do { __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof(v_)); } while (0)

#if CPROP_VECTORS && defined(__x86_64__) && !defined(CPROP_NO_DISPATCH)
/* Run-time CPU dispatch on x86-64: the portable build (SSE2, 16-byte vectors) and an AVX2 build
 * (32-byte vectors) of every kernel; cprop_dense_init() picks one at import. The wheel stays
 * baseline x86-64. Both do the same IEEE operations lane by lane (AVX2 without FMA, and
 * -ffp-contract=off), so they give the same bits; CPROP_NO_AVX2=1 in the environment forces
 * the portable build (the tests compare the two). */
#define CPROP_DISPATCH 1
#define CPROP_AVX2 __attribute__((target("avx2")))

static int cprop_use_avx2 = 0;

static void cprop_dense_init(void)
{
    const char* off = getenv("CPROP_NO_AVX2");
    __builtin_cpu_init();
    cprop_use_avx2 = __builtin_cpu_supports("avx2") && !(off && off[0] && off[0] != '0');
}

static const char* cprop_dense_isa(void) { return cprop_use_avx2 ? "avx2" : "sse2"; }

#elif CPROP_VECTORS /* other architectures (aarch64: NEON is baseline): one portable build */

static void cprop_dense_init(void) {}
static const char* cprop_dense_isa(void) { return "portable vectors"; }

#else /* no vector extensions: the scalar loops */

static void cprop_dense_init(void) {}
static const char* cprop_dense_isa(void) { return "scalar"; }

#endif

#endif /* CPROP_SIMD_H */
