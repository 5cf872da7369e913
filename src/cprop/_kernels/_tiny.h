/* The whole-step kernel of a float64 network with one hidden layer, every width at most
 * CPROP_TINY_WIDTH (cprop_tiny2_rows_d), unrolled per shape, and the two dense bodies it inlines.
 */
#ifndef CPROP_TINY_H
#define CPROP_TINY_H

#include "_simd.h"
#include "_formulas.h"

/* Tiny layers: n_in and n_out both at most CPROP_TINY_WIDTH (the worked example's 2-2-2). At
 * these widths the vector row kernels (_rows.h) run only their scalar tails, and loops with
 * run-time trip counts of 2 cost more in set-up than in arithmetic. So the two dense parts of a
 * step are written once here and always inlined into the whole-step kernel below, which is
 * switched over the shapes: every loop is compiled with constant trip counts, fully unrolled.
 * Scalar code, the same operations in the same order as the row kernels, so the same bits:
 *
 *   cprop_tiny_net_input_body_d(a, W, b, z, n_in, n_out)   z_j = b_j + a_0 W_0j + a_1 W_1j + ...
 *   cprop_tiny_back_sums_body_d(W, d, s, n_in, n_out)      s_i = 0 + W_i0 d_0 + W_i1 d_1 + ...
 *
 * (Networks of other depths or float32 take the general one-row route: bench/routes.py found no
 * workload where a shape-generic tiny step earned its code, and it was folded.)
 */
#define CPROP_TINY_WIDTH 4

static CPROP_ALWAYS_INLINE void cprop_tiny_net_input_body_d(
    const double* a, const double* W, const double* b, double* z, ptrdiff_t n_in, ptrdiff_t n_out)
{
    ptrdiff_t i, j;
    for (j = 0; j < n_out; j++) {
        double s = b[j];
        for (i = 0; i < n_in; i++) s = s + a[i] * W[i * n_out + j];
        z[j] = s;
    }
}

static CPROP_ALWAYS_INLINE void cprop_tiny_back_sums_body_d(
    const double* W, const double* d, double* s, ptrdiff_t n_in, ptrdiff_t n_out)
{
    ptrdiff_t i, j;
    for (i = 0; i < n_in; i++) {
        double acc = 0;
        for (j = 0; j < n_out; j++) acc = acc + W[i * n_out + j] * d[j];
        s[i] = acc;
    }
}

/* One single-sample SGD step of a whole float64 network with one hidden layer, every width at
 * most CPROP_TINY_WIDTH (the worked example's 2-2-2 and its kin): forward, loss, deltas and the
 * checked update in one function, switched over the 64 shapes so that every loop is unrolled
 * with constant trip counts and every value lives in registers. This is what a C loop written
 * for one shape does; the generic kernels spend more on loop set-up, calls and workspace
 * traffic than on arithmetic at these sizes. The formulas are _formulas.h's, which the Cython
 * kernels use too (activation, softmax, the output row's loss and delta, f', the SGD update), in
 * _mlp.pyx's order, so the bits are the oracle's; tests/test_parity_tiny_networks.py checks
 * every shape, activation and loss. Activation and loss codes: CPROP_ACT_*, CPROP_LOSS_*
 * (_formulas.h, which _types.pxd reads too).
 *
 * The cost is code: ~360 KB for the 64 shapes. Measured on the 2-2-2 seed network (100,000
 * steps, ns per step; a C loop written for that one shape takes 51): these 64 shapes, 60;
 * n_in left a run-time count (16 shapes, ~100 KB), 65; a shape-generic Cython step (since
 * folded into the one-row route), 80; the activation and loss code as out-of-line calls, 83
 * (the calls sit on the step's chain of dependent operations). Re-measured against the general
 * one-row route by bench/routes.py (the step plan's table in _mlp.pyx): 51 against 96.
 */
typedef struct {
    int act_hidden, act_out, loss, train_biases;
    double slope, alpha, lr;
} cprop_tiny2_config;

/* The output layer from its net input z: y = f(z), the sample's loss (*loss), and the delta d;
 * returns 1 if the loss is not finite. As _mlp.pyx's forward pass (softmax_row with its
 * log-sum-exp, activate_row), then output_delta. */
static CPROP_ALWAYS_INLINE int cprop_tiny2_output(const cprop_tiny2_config* c, const double* z,
                                             const double* t, double* d, ptrdiff_t n,
                                             double* loss)
{
    double y[CPROP_TINY_WIDTH], lse = 0;
    ptrdiff_t k;
    for (k = 0; k < n; k++) y[k] = z[k];
    if (c->act_out == CPROP_ACT_SOFTMAX)
        lse = cprop_loop_softmax_row_d(y, n, 1);
    else
        cprop_activate_elementwise_d(c->act_out, y, n, c->slope);
    *loss = 0.0 + cprop_output_loss_delta_d(c->loss, c->act_out, y, z, t,
                                            c->act_out == CPROP_ACT_SOFTMAX ? &lse : NULL, d, n,
                                            c->slope);
    return !isfinite(*loss);
}

/* One row's step: 0 (applied), 1 (the loss is not finite) or 2 (a new value would not be
 * finite); a refused step writes nothing. *loss gets the row's loss. */
static CPROP_ALWAYS_INLINE int cprop_tiny2_row(
    double* CPROP_RESTRICT W1, double* CPROP_RESTRICT b1, double* CPROP_RESTRICT W2,
    double* CPROP_RESTRICT b2, const double* CPROP_RESTRICT x, const double* CPROP_RESTRICT t,
    const cprop_tiny2_config* c, double* loss, ptrdiff_t NI, ptrdiff_t NH, ptrdiff_t NO)
{
    double h[CPROP_TINY_WIDTH], z[CPROP_TINY_WIDTH], d2[CPROP_TINY_WIDTH], d1[CPROP_TINY_WIDTH];
    double nW1[CPROP_TINY_WIDTH * CPROP_TINY_WIDTH], nW2[CPROP_TINY_WIDTH * CPROP_TINY_WIDTH];
    double nb1[CPROP_TINY_WIDTH] = {0}, nb2[CPROP_TINY_WIDTH] = {0};
    double check = 0, lr = c->lr, alpha = c->alpha;
    ptrdiff_t i, j, k;
    cprop_tiny_net_input_body_d(x, W1, b1, h, NI, NH);
    cprop_activate_elementwise_d(c->act_hidden, h, NH, c->slope);
    cprop_tiny_net_input_body_d(h, W2, b2, z, NH, NO);
    if (cprop_tiny2_output(c, z, t, d2, NO, loss)) return 1;
    cprop_tiny_back_sums_body_d(W2, d2, d1, NH, NO);
    cprop_times_derivative_d(d1, h, NH, c->act_hidden, c->slope);
    /* The new values, checked before any is written (p * 0 is NaN exactly when p is not finite);
     * the test of alpha hoisted out of the loops (cprop_sgd_value's own test then folds). */
#define CPROP_TINY2_NEW_WEIGHTS(ALPHA)                                                         \
    for (j = 0; j < NH; j++)                                                                   \
        for (k = 0; k < NO; k++) {                                                             \
            nW2[j * NO + k] = cprop_sgd_value_d(W2[j * NO + k], h[j] * d2[k], lr, ALPHA);      \
            check = check + nW2[j * NO + k] * 0;                                               \
        }                                                                                      \
    for (i = 0; i < NI; i++)                                                                   \
        for (j = 0; j < NH; j++) {                                                             \
            nW1[i * NH + j] = cprop_sgd_value_d(W1[i * NH + j], x[i] * d1[j], lr, ALPHA);      \
            check = check + nW1[i * NH + j] * 0;                                               \
        }
    if (alpha != 0) {
        CPROP_TINY2_NEW_WEIGHTS(alpha)
    } else {
        CPROP_TINY2_NEW_WEIGHTS(0.0)
    }
#undef CPROP_TINY2_NEW_WEIGHTS
    if (c->train_biases) {
        for (j = 0; j < NH; j++) {
            nb1[j] = cprop_sgd_value_d(b1[j], d1[j], lr, 0.0);
            check = check + nb1[j] * 0;
        }
        for (k = 0; k < NO; k++) {
            nb2[k] = cprop_sgd_value_d(b2[k], d2[k], lr, 0.0);
            check = check + nb2[k] * 0;
        }
    }
    if (check != check) return 2;
    for (i = 0; i < NI * NH; i++) W1[i] = nW1[i];
    for (i = 0; i < NH * NO; i++) W2[i] = nW2[i];
    if (c->train_biases) {
        for (j = 0; j < NH; j++) b1[j] = nb1[j];
        for (k = 0; k < NO; k++) b2[k] = nb2[k];
    }
    return 0;
}

static CPROP_ALWAYS_INLINE ptrdiff_t cprop_tiny2_rows_body(
    double* W1, double* b1, double* W2, double* b2, const double* X, const double* T,
    const ptrdiff_t* order, ptrdiff_t start, ptrdiff_t end, const cprop_tiny2_config* c,
    double* total, double* loss, int* failure, ptrdiff_t NI, ptrdiff_t NH, ptrdiff_t NO)
{
    ptrdiff_t r;
    int f;
    double sum = *total;
    for (r = start; r < end; r++) {
        f = cprop_tiny2_row(W1, b1, W2, b2, X + order[r] * NI, T + order[r] * NO, c, loss,
                            NI, NH, NO);
        if (f) {
            *failure = f;
            *total = sum;
            return r;
        }
        sum += *loss;
    }
    *total = sum;
    return end;
}

#define CPROP_TINY2_CASE(NI, NH, NO)                                                           \
    case (NI) * 64 + (NH) * 8 + (NO):                                                          \
        return cprop_tiny2_rows_body(W1, b1, W2, b2, X, T, order, start, end, c, total, loss,  \
                                     failure, NI, NH, NO);
#define CPROP_TINY2_NO(NI, NH) CPROP_TINY2_CASE(NI, NH, 1) CPROP_TINY2_CASE(NI, NH, 2)          \
                               CPROP_TINY2_CASE(NI, NH, 3) CPROP_TINY2_CASE(NI, NH, 4)
#define CPROP_TINY2_NH(NI) CPROP_TINY2_NO(NI, 1) CPROP_TINY2_NO(NI, 2) CPROP_TINY2_NO(NI, 3)    \
                           CPROP_TINY2_NO(NI, 4)

/* Single-sample SGD steps on rows order[start], ..., order[end - 1] of (X, T), for a network of
 * sizes (n_in, n_hidden, n_out), each in 1..CPROP_TINY_WIDTH (the caller checks). *total gets
 * each applied row's loss added, in order. Returns end, or the position of the row whose step
 * was refused (then *failure is 1 or 2 and *loss that row's loss; the rows before it stay
 * applied). */
static ptrdiff_t cprop_tiny2_rows_d(double* W1, double* b1, double* W2, double* b2,
                                    const double* X, const double* T, const ptrdiff_t* order,
                                    ptrdiff_t start, ptrdiff_t end, const cprop_tiny2_config* c,
                                    double* total, double* loss, int* failure, ptrdiff_t n_in,
                                    ptrdiff_t n_hidden, ptrdiff_t n_out)
{
    switch (n_in * 64 + n_hidden * 8 + n_out) {
    CPROP_TINY2_NH(1) CPROP_TINY2_NH(2) CPROP_TINY2_NH(3) CPROP_TINY2_NH(4)
    default: break;
    }
    *failure = -1;  /* not a tiny shape: not reached */
    return start;
}

#endif /* CPROP_TINY_H */
