/* One build of the population kernel (_population_kernel.h), included by _population.h once
 * per instruction set and element type, no include guard on purpose. Before it: the set's
 * macros (POP_ISA, TGT, NV, POP_VD / POP_VF the vector types, POP_MD / POP_MF the mask types,
 * POP_LANES_D / POP_LANES_F, the type suffixes POP_SFX_* / POP_INT_* where its operations use
 * them, the LV_* operations) and POP_DOUBLE (1: float64, 0: float32), which this file
 * undefines. */
#if POP_DOUBLE
#define T double
#define V POP_VD
#define M POP_MD
#define LANES POP_LANES_D
#define K d
#define IS_DOUBLE 1
#ifdef POP_SFX_D
#define LVS POP_SFX_D
#define LVE POP_INT_D
#endif
#else
#define T float
#define V POP_VF
#define M POP_MF
#define LANES POP_LANES_F
#define K f
#define IS_DOUBLE 0
#ifdef POP_SFX_F
#define LVS POP_SFX_F
#define LVE POP_INT_F
#endif
#endif
#define S K
#define SUF POP_CAT(K, POP_ISA)

#include "_population_kernel.h"

#undef T
#undef V
#undef M
#undef LANES
#undef K
#undef IS_DOUBLE
#undef LVS
#undef LVE
#undef S
#undef SUF
#undef POP_DOUBLE
