/* The dense-layer kernels in C, for _mlp.pyx's `cdef extern from "_dense.h"`:
 *
 *   _simd.h     includes, vector types, CPROP_LD / CPROP_ST, and the run-time instruction-set
 *               choice (cprop_dense_init(), cprop_dense_isa())
 *   _vecmath.h  vectorised exp / sigmoid / softmax rows, cprop_sigmoid_libm_d
 *   _rows.h     one-sample row kernels (net input, rank-1 updates, back sums) and reductions
 *   _formulas.h the scalar formulas (activations, f', softmax, SGD update, an output row's loss
 *               and delta), each written once, and the CPROP_ACT_* / CPROP_LOSS_* codes
 *   _tiny.h     the kernels for tiny layers, unrolled per shape, and the whole-step tiny kernel
 */
#ifndef CPROP_DENSE_H
#define CPROP_DENSE_H

#include "_simd.h"
#include "_vecmath.h"
#include "_rows.h"
#include "_formulas.h"
#include "_tiny.h"

#endif /* CPROP_DENSE_H */
