/* The "lanes" route of populations: a block of B networks of one architecture trained at once by
 * single-row SGD over the same rows, one network per SIMD lane (cprop_pop_train_block_d/_f).
 *
 * Layout: every parameter, activation and delta is a run of B values, one per network of the
 * block ([param][lane], P[k * B + q] is parameter k of lane q), so one vector holds the same
 * parameter of LANES networks and every dense loop is the one-network loop with vectors where
 * the scalars were. The input row and its targets are shared by every lane (broadcast).
 *
 * Arithmetic, lane by lane, is exactly the one-row SGD route's (_rows.h, _tiny.h): z_j = b_j,
 * then z_j = z_j + a_i W_ij for i = 0, 1, ...; the layer below's delta 0 + W_i0 d_0 + W_i1 d_1 +
 * ... times f'(a_i); W_ij <- W_ij - lr (a_i d_j), b_j <- b_j - lr d_j. Activations,
 * derivatives, softmax and the output row's loss and delta are _formulas.h's own functions,
 * applied to the lane runs (the elementwise ones to B * width values at once, the row-coupled
 * ones - softmax, cross-entropy - one lane at a time on a gathered row), so each formula stays
 * written once and float64 results are the one-network kernels' bits (libm's exp, as there;
 * float32 takes the vector exp/sigmoid there and here alike).
 *
 * A step is refused per lane, as MLP.fit refuses it: if the row's loss or any new value of that
 * lane is not finite, that lane keeps its parameters and stops (status e + 1). The new values
 * are written into a second buffer (Q) while a per-vector mask collects non-finite lanes; then
 * the buffers swap, and any refused lane's run is copied back from the old one.
 *
 * B is fixed per type (CPROP_POP_B_d / _f: 16 doubles, 32 floats = four AVX2 vectors, enough
 * independent chains to hide the add latency); SSE2 runs the same B in twice as many vectors,
 * and the scalar build one value at a time, with the same bits.
 */
#ifndef CPROP_POPULATION_H
#define CPROP_POPULATION_H

#include "_simd.h"
#include "_formulas.h"

#define CPROP_POP_B_d 16
#define CPROP_POP_B_f 32

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

#if CPROP_VECTORS
#define CPROP_POP_LD(V, p) CPROP_LD(V, p)
#define CPROP_POP_ST(p, v) CPROP_ST(p, v)
#define CPROP_POP_BC(V, x) ((V){0} + (x))
#else
#define CPROP_POP_LD(V, p) (*(p))
#define CPROP_POP_ST(p, v) (*(p) = (v))
#define CPROP_POP_BC(V, x) ((V)(x))
#endif

/* rl[q] += each output's term of lane q's loss, and its delta, in output order: _formulas.h's
 * output row formula on one output at a time (LOSS, ACT: the codes, constants where the caller
 * can, so the formula folds). For the kernel below. */
#define CPROP_POP_LOSS_TERMS(S, B, LOSS, ACT)                                                  \
    {                                                                                          \
        for (k = 0; k < NO; k++)                                                               \
            for (q = 0; q < B; q++)                                                            \
                rl[q] += cprop_output_loss_delta_##S(LOSS, ACT, out + k * B + q,               \
                                                     Z + k * B + q, t + k, NULL,               \
                                                     d + k * B + q, 1, slope);                 \
    }

/* CPROP_POP_KERNEL(T, V, VU, U, LANES, B, SUFFIX, S, TARGET): T the element type, V its vector
 * of LANES lanes (T itself, LANES 1, in the scalar build), VU the unsigned integer vector of V's
 * size and U its element, B the block width, S the _formulas.h suffix (d / f).
 *
 * cprop_pop_train_block_SUFFIX(net, P, work, dwork, X, Tg, n_rows, epochs, lr, losses, status):
 * trains the B lanes of P ([n_params][B]) for `epochs` epochs over rows 0 .. n_rows-1 of X and
 * Tg in order, lane q at rate lr[q]. losses[q * epochs + e] gets lane q's epoch-e loss (the mean
 * of its rows' losses before their steps, added in double in row order), NaN from the epoch in
 * which a step was refused; status[q] 0 or e + 1 (a step of epoch e refused). work: T scratch of
 * (n_params + 2 n_units + n_out) B + 3 n_out values; dwork: 2 B doubles. */
#define CPROP_POP_KERNEL(T, V, VU, U, LANES, B, SUFFIX, S, TARGET)                             \
static CPROP_NOINLINE TARGET void cprop_pop_train_block_##SUFFIX(                              \
    const cprop_pop_net* net, T* CPROP_RESTRICT P0, T* CPROP_RESTRICT work,                     \
    double* CPROP_RESTRICT dwork, const T* CPROP_RESTRICT X, const T* CPROP_RESTRICT Tg,        \
    ptrdiff_t n_rows, ptrdiff_t epochs, const T* CPROP_RESTRICT lr, double* losses,             \
    int* status)                                                                                \
{                                                                                              \
    enum { NV = B / LANES };                                                                   \
    const ptrdiff_t L = net->n_layers, NP = net->n_params, n0 = net->sizes[0];                 \
    const ptrdiff_t NO = net->sizes[L];                                                        \
    const int act_out = net->act[L - 1], loss = net->loss;                                     \
    const T slope = (T)net->slope;                                                             \
    const int row_coupled = act_out == CPROP_ACT_SOFTMAX;                                      \
    const int want_lse = row_coupled && loss == CPROP_LOSS_CROSS_ENTROPY && sizeof(T) == 8;    \
    T* P = P0;                                                                                 \
    T* Q = work;                                                                               \
    T* A = Q + NP * B;                                                                         \
    T* D = A + net->n_units * B;                                                           \
    T* Z = D + net->n_units * B;                                                           \
    T* yr = Z + NO * B;                                                                        \
    T* zr = yr + NO;                                                                           \
    T* dr = zr + NO;                                                                           \
    double* total = dwork;                                                                     \
    double* rl = dwork + B;                                                                    \
    int dead[B], refuse[B], n_dead = 0;                                                        \
    T mx[B], sm[B];                                                                            \
    V lrv[NV];                                                                                 \
    ptrdiff_t e, r, l, i, j, k, q, v;                                                          \
    for (v = 0; v < NV; v++) lrv[v] = CPROP_POP_LD(V, lr + v * LANES);                         \
    for (q = 0; q < B; q++) {                                                                  \
        dead[q] = 0;                                                                           \
        status[q] = 0;                                                                         \
    }                                                                                          \
    for (e = 0; e < epochs; e++) {                                                             \
        for (q = 0; q < B; q++) total[q] = 0.0;                                                \
        for (r = 0; r < n_rows && n_dead < B; r++) {                                           \
            const T* x = X + r * n0;                                                           \
            const T* t = Tg + r * NO;                                                          \
            VU bad[NV];                                                                        \
            U badl[B];                                                                         \
            T* out;                                                                            \
            int any = 0;                                                                       \
            /* forward: every layer's net input, then its activation, lane-wise */             \
            for (l = 0; l < L; l++) {                                                          \
                const ptrdiff_t ni = net->sizes[l], no = net->sizes[l + 1];                   \
                const T* W = P + net->w_off[l] * B;                                            \
                const T* b = P + net->b_off[l] * B;                                            \
                const T* a = A + net->u_off[l] * B;                                            \
                out = A + net->u_off[l + 1] * B;                                               \
                for (j = 0; j < no; j++) {                                                     \
                    V acc[NV];                                                                 \
                    for (v = 0; v < NV; v++) acc[v] = CPROP_POP_LD(V, b + j * B + v * LANES);  \
                    if (l == 0) {                                                              \
                        for (i = 0; i < ni; i++) {                                             \
                            V ai = CPROP_POP_BC(V, x[i]);                                      \
                            for (v = 0; v < NV; v++)                                           \
                                acc[v] = acc[v] + ai * CPROP_POP_LD(V, W + (i * no + j) * B    \
                                                                        + v * LANES);          \
                        }                                                                      \
                    } else {                                                                   \
                        for (i = 0; i < ni; i++)                                               \
                            for (v = 0; v < NV; v++)                                           \
                                acc[v] = acc[v] + CPROP_POP_LD(V, a + i * B + v * LANES)       \
                                                  * CPROP_POP_LD(V, W + (i * no + j) * B       \
                                                                 + v * LANES);                 \
                    }                                                                          \
                    for (v = 0; v < NV; v++) CPROP_POP_ST(out + j * B + v * LANES, acc[v]);    \
                }                                                                              \
                if (l < L - 1)                                                                 \
                    cprop_activate_elementwise_##S(net->act[l], out, no * B, slope);           \
            }                                                                                  \
            /* the output row's loss and delta, each lane's as the one-network kernel's */     \
            out = A + net->u_off[L] * B;                                                       \
            {                                                                                  \
                T* d = D + net->u_off[L] * B;                                                  \
                if (!row_coupled) {                                                            \
                    if (loss != CPROP_LOSS_SQUARED_ERROR) memcpy(Z, out, NO * B * sizeof(T));  \
                    cprop_activate_elementwise_##S(act_out, out, NO * B, slope);               \
                    /* elementwise losses: a row's loss is its terms added in order, so the    \
                       formula on one output at a time gives the same sum; the common pairings \
                       with constant codes, so the formula folds into a loop over the lanes */ \
                    for (q = 0; q < B; q++) rl[q] = 0.0;                                       \
                    if (loss == CPROP_LOSS_SQUARED_ERROR && act_out == CPROP_ACT_SIGMOID)      \
                        CPROP_POP_LOSS_TERMS(S, B, CPROP_LOSS_SQUARED_ERROR, CPROP_ACT_SIGMOID)   \
                    else if (loss == CPROP_LOSS_SQUARED_ERROR && act_out == CPROP_ACT_IDENTITY) \
                        CPROP_POP_LOSS_TERMS(S, B, CPROP_LOSS_SQUARED_ERROR, CPROP_ACT_IDENTITY)  \
                    else                                                                       \
                        CPROP_POP_LOSS_TERMS(S, B, loss, act_out)                                 \
                } else if (want_lse) {                                                         \
                    /* float64 softmax and cross-entropy, lane by lane: the operations of      \
                       cprop_loop_softmax_row_d in its order (the row maximum, libm's exp of   \
                       z - max, their sum from 0 in output order, the division, max + log(sum) \
                       as the log-sum-exp); then, given each lane's log-sum-exp, the loss and  \
                       delta are elementwise: the formula one output at a time */              \
                    memcpy(Z, out, NO * B * sizeof(T));                                        \
                    for (q = 0; q < B; q++) {                                                  \
                        mx[q] = out[q];                                                        \
                        sm[q] = 0;                                                             \
                        rl[q] = 0.0;                                                           \
                    }                                                                          \
                    for (k = 1; k < NO; k++)                                                   \
                        for (q = 0; q < B; q++)                                                \
                            if (out[k * B + q] > mx[q]) mx[q] = out[k * B + q];                \
                    for (k = 0; k < NO; k++)                                                   \
                        for (q = 0; q < B; q++) {                                              \
                            out[k * B + q] = (T)exp((double)(out[k * B + q] - mx[q]));         \
                            sm[q] += out[k * B + q];                                           \
                        }                                                                      \
                    for (k = 0; k < NO; k++)                                                   \
                        for (q = 0; q < B; q++) out[k * B + q] = out[k * B + q] / sm[q];       \
                    for (q = 0; q < B; q++) mx[q] = (T)(mx[q] + log((double)sm[q]));           \
                    for (k = 0; k < NO; k++)                                                   \
                        for (q = 0; q < B; q++)                                                \
                            rl[q] += cprop_output_loss_delta_##S(                              \
                                loss, act_out, out + k * B + q, Z + k * B + q, t + k, mx + q,  \
                                d + k * B + q, 1, slope);                                      \
                } else {                                                                       \
                    for (q = 0; q < B; q++) {                                                  \
                        T lse_t;                                                       \
                        if (dead[q]) {                                                         \
                            rl[q] = 0.0;                                                       \
                            for (k = 0; k < NO; k++) d[k * B + q] = 0;                         \
                            continue;                                                          \
                        }                                                                      \
                        for (k = 0; k < NO; k++) zr[k] = yr[k] = out[k * B + q];               \
                        lse_t = (T)cprop_loop_softmax_row_##S(yr, NO, want_lse);               \
                        rl[q] = 0.0 + cprop_output_loss_delta_##S(                             \
                            loss, act_out, yr, zr, t, want_lse ? &lse_t : NULL, dr, NO,        \
                            slope);                                                            \
                        for (k = 0; k < NO; k++) d[k * B + q] = dr[k];                         \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            /* every delta below, from the weights before the update */                        \
            for (l = L - 1; l > 0; l--) {                                                      \
                const ptrdiff_t ni = net->sizes[l], no = net->sizes[l + 1];                   \
                const T* W = P + net->w_off[l] * B;                                            \
                const T* d = D + net->u_off[l + 1] * B;                                        \
                T* dn = D + net->u_off[l] * B;                                                 \
                for (i = 0; i < ni; i++) {                                                     \
                    V acc[NV];                                                                 \
                    for (v = 0; v < NV; v++) acc[v] = CPROP_POP_BC(V, (T)0);                   \
                    for (j = 0; j < no; j++)                                                   \
                        for (v = 0; v < NV; v++)                                               \
                            acc[v] = acc[v] + CPROP_POP_LD(V, W + (i * no + j) * B + v * LANES) \
                                              * CPROP_POP_LD(V, d + j * B + v * LANES);        \
                    for (v = 0; v < NV; v++) CPROP_POP_ST(dn + i * B + v * LANES, acc[v]);     \
                }                                                                              \
                cprop_times_derivative_##S(dn, A + net->u_off[l] * B, ni * B, net->act[l - 1], \
                                           slope);                                             \
            }                                                                                  \
            /* the update, into Q, with a mask of the lanes whose new values are not finite */ \
            for (v = 0; v < NV; v++) bad[v] = (VU){0};                                         \
            for (l = 0; l < L; l++) {                                                          \
                const ptrdiff_t ni = net->sizes[l], no = net->sizes[l + 1];                   \
                const T* W = P + net->w_off[l] * B;                                            \
                T* Wn = Q + net->w_off[l] * B;                                                 \
                const T* a = A + net->u_off[l] * B;                                            \
                const T* d = D + net->u_off[l + 1] * B;                                        \
                for (i = 0; i < ni; i++)                                                       \
                    for (j = 0; j < no; j++)                                                   \
                        for (v = 0; v < NV; v++) {                                             \
                            V ai = l == 0 ? CPROP_POP_BC(V, x[i])                              \
                                          : CPROP_POP_LD(V, a + i * B + v * LANES);            \
                            V nv = CPROP_POP_LD(V, W + (i * no + j) * B + v * LANES)           \
                                   - lrv[v] * (ai * CPROP_POP_LD(V, d + j * B + v * LANES));   \
                            V c = nv - nv;                                                     \
                            bad[v] = bad[v] | (VU)(c != c);                                    \
                            CPROP_POP_ST(Wn + (i * no + j) * B + v * LANES, nv);               \
                        }                                                                      \
                if (net->train_biases) {                                                       \
                    for (j = 0; j < no; j++)                                                   \
                        for (v = 0; v < NV; v++) {                                             \
                            V nv = CPROP_POP_LD(V, P + (net->b_off[l] + j) * B + v * LANES)    \
                                   - lrv[v] * CPROP_POP_LD(V, d + j * B + v * LANES);          \
                            V c = nv - nv;                                                     \
                            bad[v] = bad[v] | (VU)(c != c);                                    \
                            CPROP_POP_ST(Q + (net->b_off[l] + j) * B + v * LANES, nv);         \
                        }                                                                      \
                } else {                                                                       \
                    memcpy(Q + net->b_off[l] * B, P + net->b_off[l] * B, no * B * sizeof(T));  \
                }                                                                              \
            }                                                                                  \
            memcpy(badl, bad, sizeof(badl));                                                   \
            for (q = 0; q < B; q++) {                                                          \
                refuse[q] = dead[q] || badl[q] != 0 || !isfinite(rl[q]);                       \
                any |= refuse[q];                                                              \
            }                                                                                  \
            if (any) {                                                                         \
                for (q = 0; q < B; q++) {                                                      \
                    if (!refuse[q]) continue;                                                  \
                    for (k = 0; k < NP; k++) Q[k * B + q] = P[k * B + q];                      \
                    if (!dead[q]) {                                                            \
                        dead[q] = 1;                                                           \
                        n_dead++;                                                              \
                        status[q] = (int)(e + 1);                                              \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            for (q = 0; q < B; q++)                                                            \
                if (!dead[q]) total[q] += rl[q];                                               \
            {                                                                                  \
                T* tmp = P;                                                                    \
                P = Q;                                                                         \
                Q = tmp;                                                                       \
            }                                                                                  \
        }                                                                                      \
        for (q = 0; q < B; q++)                                                                \
            losses[q * epochs + e] = dead[q] ? (double)NAN : total[q] / (double)n_rows;        \
    }                                                                                          \
    if (P != P0) memcpy(P0, P, NP * B * sizeof(T));                                            \
}

#if defined(CPROP_DISPATCH)
CPROP_POP_KERNEL(double, cprop_vd, cprop_vul, unsigned long long, 2, CPROP_POP_B_d, d_base, d, )
CPROP_POP_KERNEL(float, cprop_vf, cprop_vu, unsigned int, 4, CPROP_POP_B_f, f_base, f, )
CPROP_POP_KERNEL(double, cprop_vd32, cprop_vul32, unsigned long long, 4, CPROP_POP_B_d, d_avx2, d,
                 CPROP_AVX2)
CPROP_POP_KERNEL(float, cprop_vf32, cprop_vu32, unsigned int, 8, CPROP_POP_B_f, f_avx2, f,
                 CPROP_AVX2)

#define CPROP_POP_DISPATCH(T, SUFFIX)                                                          \
static void cprop_pop_train_block_##SUFFIX(                                                    \
    const cprop_pop_net* net, T* P0, T* work, double* dwork, const T* X, const T* Tg,          \
    ptrdiff_t n_rows, ptrdiff_t epochs, const T* lr, double* losses, int* status)              \
{                                                                                              \
    if (cprop_use_avx2)                                                                        \
        cprop_pop_train_block_##SUFFIX##_avx2(net, P0, work, dwork, X, Tg, n_rows, epochs, lr,  \
                                              losses, status);                                 \
    else                                                                                       \
        cprop_pop_train_block_##SUFFIX##_base(net, P0, work, dwork, X, Tg, n_rows, epochs, lr,  \
                                              losses, status);                                 \
}
CPROP_POP_DISPATCH(double, d)
CPROP_POP_DISPATCH(float, f)

#elif CPROP_VECTORS
CPROP_POP_KERNEL(double, cprop_vd, cprop_vul, unsigned long long, 2, CPROP_POP_B_d, d, d, )
CPROP_POP_KERNEL(float, cprop_vf, cprop_vu, unsigned int, 4, CPROP_POP_B_f, f, f, )
#else
CPROP_POP_KERNEL(double, double, unsigned long long, unsigned long long, 1, CPROP_POP_B_d, d, d, )
CPROP_POP_KERNEL(float, float, unsigned int, unsigned int, 1, CPROP_POP_B_f, f, f, )
#endif

#endif /* CPROP_POPULATION_H */
