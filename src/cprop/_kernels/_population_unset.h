/* Undefines one instruction set's macros after its builds (_population.h); with POP_UNSET_OPS
 * defined, the LV_* operations every type shares too. No include guard, on purpose. */
#undef POP_ISA
#undef TGT
#undef NV
#undef POP_VD
#undef POP_VF
#undef POP_MD
#undef POP_MF
#undef POP_LANES_D
#undef POP_LANES_F
#undef LV_GT
#undef LV_GE
#undef LV_SEL
#undef LV_BAD
#ifdef POP_UNSET_OPS
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
#undef POP_UNSET_OPS
#endif
