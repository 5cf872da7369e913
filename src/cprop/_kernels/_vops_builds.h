/* Every build of a row-kernel file (RV_BODY) on this backend, no include guard on purpose:
 * float64 and float32 at 16 bytes (suffixes d_base, f_base: SSE2 on x86-64, NEON on aarch64),
 * and on x86-64 with run-time dispatch at 32 bytes for AVX2 (d_avx2, f_avx2). */
#define RV_DOUBLE 1
#define RV_WIDE 0
#include "_vops_build.h"
#define RV_DOUBLE 0
#define RV_WIDE 0
#include "_vops_build.h"
#if defined(CPROP_DISPATCH)
#define RV_DOUBLE 1
#define RV_WIDE 1
#include "_vops_build.h"
#define RV_DOUBLE 0
#define RV_WIDE 1
#include "_vops_build.h"
#endif
