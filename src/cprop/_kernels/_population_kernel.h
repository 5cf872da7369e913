/* The population kernel, written once over _lanes.h's vector macros and included by
 * _population.h once per instruction set (no include guard, on purpose). The including file
 * defines T, V, M, LANES, NV (vectors per block), K (d / f: _vecmath.h's exp constants), S (d / f:
 * _formulas.h's suffix), SUF (this build's suffix), TGT (its target attribute), IS_DOUBLE and the
 * LV_* operations; POP_FN(name) pastes SUF onto a name. _population.h says what is computed. */

#define POP_B (NV * LANES)

/* e^x = (ph + pl) s1 s2, x already clamped to [XLO, XHI] (or NaN): the operations of
 * _vecmath.h's cprop_vexp_core in its order, so that float32 gives MLP.fit's bits (and float64
 * under 1 ulp): Cody-Waite reduction x = k ln2 + r (k by the shifter; ln2 in two parts, so that
 * rh = x - k ln2hi is exact), e^r = 1 + (rh + (r^2 P(r) - rl)) as an unevaluated sum ph + pl,
 * scaled by s1 s2 = 2^k1 2^k2 (k1 + k2 = k: the first product exact, the second rounding once,
 * so that results fall gradually into the subnormals). */
static CPROP_ALWAYS_INLINE TGT void POP_FN(lane_exp_parts)(V x, V* ph, V* pl, V* s1, V* s2)
{
    const V one = LV_SET1((T)1), shift = LV_SET1(POP_EXPC(_SHIFT));
    const V bias = LV_SET1(POP_EXPC(_SHIFT_BIAS));
    V kd = LV_SUB(LV_ADD(LV_MUL(x, LV_SET1(POP_EXPC(_LOG2E))), shift), shift);
    V k1 = LV_SUB(LV_ADD(LV_MUL(kd, LV_SET1((T)0.5)), shift), shift);
    V k2 = LV_SUB(kd, k1);
    V rh = LV_SUB(x, LV_MUL(kd, LV_SET1(POP_EXPC(_L2HI))));
    V rl = LV_MUL(kd, LV_SET1(POP_EXPC(_L2LO)));
    V r = LV_SUB(rh, rl), r2 = LV_MUL(r, r), r4 = LV_MUL(r2, r2), poly, t, sh, sb, sl;
#if IS_DOUBLE
    V r8 = LV_MUL(r4, r4);
    poly = LV_ADD(
        LV_ADD(LV_ADD(LV_ADD(LV_MUL(LV_C(d, 1), r), LV_C(d, 0)),
                      LV_MUL(r2, LV_ADD(LV_MUL(LV_C(d, 3), r), LV_C(d, 2)))),
               LV_MUL(r4, LV_ADD(LV_ADD(LV_MUL(LV_C(d, 5), r), LV_C(d, 4)),
                                 LV_MUL(r2, LV_ADD(LV_MUL(LV_C(d, 7), r), LV_C(d, 6)))))),
        LV_MUL(r8, LV_ADD(LV_ADD(LV_MUL(LV_C(d, 9), r), LV_C(d, 8)),
                          LV_MUL(r2, LV_C(d, 10)))));
#else
    (void)r4;
    poly = LV_ADD(LV_ADD(LV_MUL(LV_C(f, 1), r), LV_C(f, 0)),
                  LV_MUL(r2, LV_ADD(LV_ADD(LV_MUL(LV_C(f, 3), r), LV_C(f, 2)),
                                    LV_MUL(r2, LV_ADD(LV_MUL(LV_C(f, 5), r), LV_C(f, 4))))));
#endif
    t = LV_SUB(LV_MUL(r2, poly), rl);
    sh = LV_ADD(rh, t);  /* 2Sum: sh + sl = rh + t */
    sb = LV_SUB(sh, rh);
    sl = LV_ADD(LV_SUB(rh, LV_SUB(sh, sb)), LV_SUB(t, sb));
    *ph = LV_ADD(one, sh);  /* Fast2Sum, |sh| < 1 */
    *pl = LV_ADD(LV_ADD(LV_SUB(one, *ph), sh), sl);
    *s1 = LV_POW2(LV_ADD(k1, bias));
    *s2 = LV_POW2(LV_ADD(k2, bias));
}

static CPROP_ALWAYS_INLINE TGT V POP_FN(lane_exp)(V x)
{
    V ph, pl, s1, s2;
    POP_FN(lane_exp_parts)(x, &ph, &pl, &s1, &s2);
    return LV_MUL(LV_MUL(LV_ADD(ph, pl), s1), s2);
}

/* sigmoid(z) = num / (1 + e), e = e^-|z| = eh + el, num = 1 (z >= 0) or e: the quotient of the
 * leading parts, corrected to first order for el and for the rounding of 1 + eh (dl), as
 * _vecmath.h's cprop_vsigmoid (1.1 ulp): never overflows; +-inf give 1 / 0, NaN stays NaN. */
static CPROP_ALWAYS_INLINE TGT V POP_FN(lane_sigmoid)(V z)
{
    const V zero = LV_ZERO(), one = LV_SET1((T)1);
    V x = LV_MAX(LV_SET1(POP_EXPC(_XLO)), LV_MIN(z, LV_SUB(zero, z)));
    const M pos = LV_GE(z, zero);
    V ph, pl, s1, s2, eh, el, d, dl, q;
    POP_FN(lane_exp_parts)(x, &ph, &pl, &s1, &s2);
    eh = LV_MUL(LV_MUL(ph, s1), s2);
    el = LV_MUL(LV_MUL(pl, s1), s2);
    d = LV_ADD(one, eh);
    dl = LV_ADD(LV_ADD(LV_SUB(one, d), eh), el);  /* 1 + e = d + dl */
    q = LV_DIV(LV_SEL(pos, one, eh), d);
    return LV_ADD(q, LV_MUL(LV_SUB(LV_SEL(pos, zero, el), LV_MUL(q, dl)),
                            LV_SEL(pos, q, LV_SUB(one, q))));
}

/* e^z for the exp output: inf past the type's range, NaN stays NaN. */
static CPROP_ALWAYS_INLINE TGT V POP_FN(lane_exp_out)(V z)
{
    V x = LV_MIN(LV_SET1(POP_EXPC(_XHI)), LV_MAX(LV_SET1(POP_EXPC(_XLO)), z));
    return POP_FN(lane_exp)(x);
}

/* f(z) of one vector: the hidden and elementwise output activations (_formulas.h's, lane-wise;
 * tanh through libm, one lane at a time). */
static CPROP_ALWAYS_INLINE TGT V POP_FN(lane_activate)(int act, V z, T slope)
{
    const V zero = LV_ZERO();
    switch (act) {
    case CPROP_ACT_SIGMOID: return POP_FN(lane_sigmoid)(z);
    case CPROP_ACT_RELU: return LV_SEL(LV_GT(z, zero), z, zero);
    case CPROP_ACT_LEAKY_RELU: return LV_SEL(LV_GT(z, zero), z, LV_MUL(LV_SET1(slope), z));
    case CPROP_ACT_EXP: return POP_FN(lane_exp_out)(z);
    case CPROP_ACT_TANH: {
        T tmp[LANES];
        int q;
        LV_ST(tmp, z);
        for (q = 0; q < LANES; q++) tmp[q] = POP_SFN(cprop_activation)(CPROP_ACT_TANH, tmp[q], slope);
        return LV_LD(tmp);
    }
    default: return z;
    }
}

/* f'(z) from a = f(z) (_formulas.h's cprop_activation_derivative, lane-wise). */
static CPROP_ALWAYS_INLINE TGT V POP_FN(lane_derivative)(int act, V a, T slope)
{
    const V zero = LV_ZERO(), one = LV_SET1((T)1);
    switch (act) {
    case CPROP_ACT_SIGMOID: return LV_MUL(a, LV_SUB(one, a));
    case CPROP_ACT_TANH: return LV_SUB(one, LV_MUL(a, a));
    case CPROP_ACT_RELU: return LV_SEL(LV_GT(a, zero), one, zero);
    case CPROP_ACT_LEAKY_RELU: return LV_SEL(LV_GT(a, zero), one, LV_SET1(slope));
    case CPROP_ACT_EXP: return a;
    default: return one;
    }
}

/* (Out of line: called once a row for a whole block, from three places; inlined, it tripled the
 * code of each of the ten builds.)
 * One SGD step of every lane on row (x, t), in place. bad[q] = 1 for the lanes whose row loss
 * or any new value is not finite (their new values are then garbage: the caller replays), else
 * 0; returns whether any is. rl[q] gets lane q's row loss. Z: the output logits, Y the output
 * row (A's last layer). */
static CPROP_NOINLINE TGT int POP_FN(step_row)(
    const cprop_pop_net* net, T* CPROP_RESTRICT P, T* CPROP_RESTRICT A, T* CPROP_RESTRICT D,
    T* CPROP_RESTRICT Z, T* CPROP_RESTRICT lse, const V* lrv, const T* x, const T* t,
    double* rl, T slope, unsigned char* bad)
{
    const ptrdiff_t L = net->n_layers, NO = net->sizes[L];
    const int act_out = net->act[L - 1], loss = net->loss;
    T* Y = A + net->u_off[L] * POP_B;
    T* DY = D + net->u_off[L] * POP_B;
    V chk[NV];
    int any = 0;
    ptrdiff_t l, i, j, k, q, v;
    /* forward: z_j = b_j + a_0 W_0j + a_1 W_1j + ..., then f(z_j), lane-wise */
    for (l = 0; l < L; l++) {
        const ptrdiff_t ni = net->sizes[l], no = net->sizes[l + 1];
        const T* W = P + net->w_off[l] * POP_B;
        const T* b = P + net->b_off[l] * POP_B;
        const T* a = A + net->u_off[l] * POP_B;
        T* out = A + net->u_off[l + 1] * POP_B;
        const int act = net->act[l], last = l == L - 1;
        for (j = 0; j < no; j++) {
            V acc[NV];
            for (v = 0; v < NV; v++) acc[v] = LV_LD(b + j * POP_B + v * LANES);
            if (l == 0) {
                for (i = 0; i < ni; i++) {
                    const V ai = LV_SET1(x[i]);
                    for (v = 0; v < NV; v++)
                        acc[v] = LV_ADD(acc[v], LV_MUL(ai, LV_LD(W + (i * no + j) * POP_B
                                                                 + v * LANES)));
                }
            } else {
                for (i = 0; i < ni; i++)
                    for (v = 0; v < NV; v++)
                        acc[v] = LV_ADD(acc[v], LV_MUL(LV_LD(a + i * POP_B + v * LANES),
                                                       LV_LD(W + (i * no + j) * POP_B
                                                             + v * LANES)));
            }
            if (last) {
                for (v = 0; v < NV; v++) LV_ST(Z + j * POP_B + v * LANES, acc[v]);
                if (act == CPROP_ACT_SOFTMAX) continue;
            }
            for (v = 0; v < NV; v++)
                LV_ST(out + j * POP_B + v * LANES, POP_FN(lane_activate)(act, acc[v], slope));
        }
    }
    /* softmax over each lane's outputs: the row maximum, e^(z - max), their sum in output
       order, the quotients; the log-sum-exp for cross-entropy's loss */
    if (act_out == CPROP_ACT_SOFTMAX) {
        for (v = 0; v < NV; v++) {
            V m = LV_LD(Z + v * LANES), s;
            for (k = 1; k < NO; k++) m = LV_MAX(LV_LD(Z + k * POP_B + v * LANES), m);
            s = LV_ZERO();
            for (k = 0; k < NO; k++) {
                V e = POP_FN(lane_exp)(LV_MAX(LV_SET1(POP_EXPC(_XLO)),
                                              LV_SUB(LV_LD(Z + k * POP_B + v * LANES), m)));
                LV_ST(Y + k * POP_B + v * LANES, e);
                s = LV_ADD(s, e);
            }
            for (k = 0; k < NO; k++)
                LV_ST(Y + k * POP_B + v * LANES, LV_DIV(LV_LD(Y + k * POP_B + v * LANES), s));
            if (loss == CPROP_LOSS_CROSS_ENTROPY) {
                T mt[LANES], st[LANES];
                LV_ST(mt, m);
                LV_ST(st, s);
                for (q = 0; q < LANES; q++)
                    lse[v * LANES + q] = (T)((double)mt[q] + log((double)st[q]));
            }
        }
    }
    /* each lane's row loss: _formulas.h's output formula, one output at a time (the common
       pairing with constant codes, so that it folds into a loop over the lanes) */
    for (q = 0; q < POP_B; q++) rl[q] = 0.0;
    if (loss == CPROP_LOSS_SQUARED_ERROR && act_out == CPROP_ACT_SIGMOID) {
        for (k = 0; k < NO; k++)
            for (q = 0; q < POP_B; q++)
                rl[q] += POP_SFN(cprop_output_loss_delta)(CPROP_LOSS_SQUARED_ERROR, CPROP_ACT_SIGMOID,
                                                     Y + k * POP_B + q, Z + k * POP_B + q, t + k,
                                                     NULL, NULL, 1, slope);
    } else {
        for (k = 0; k < NO; k++)
            for (q = 0; q < POP_B; q++)
                rl[q] += POP_SFN(cprop_output_loss_delta)(loss, act_out, Y + k * POP_B + q,
                                                     Z + k * POP_B + q, t + k, lse + q, NULL, 1,
                                                     slope);
    }
    for (q = 0; q < POP_B; q++) {
        bad[q] = !isfinite(rl[q]);
        any |= bad[q];
    }
    /* the output deltas dE/dz, lane-wise: (y - t) f'(z) for squared error, the softmax form
       y (g - sum_j g_j y_j) with g = y - t, and y - t for the matched losses */
    for (v = 0; v < NV; v++) {
        if (loss != CPROP_LOSS_SQUARED_ERROR) {
            for (k = 0; k < NO; k++)
                LV_ST(DY + k * POP_B + v * LANES,
                      LV_SUB(LV_LD(Y + k * POP_B + v * LANES), LV_SET1(t[k])));
        } else if (act_out == CPROP_ACT_SOFTMAX) {
            V dot = LV_ZERO();
            for (k = 0; k < NO; k++) {
                V y = LV_LD(Y + k * POP_B + v * LANES);
                dot = LV_ADD(dot, LV_MUL(LV_SUB(y, LV_SET1(t[k])), y));
            }
            for (k = 0; k < NO; k++) {
                V y = LV_LD(Y + k * POP_B + v * LANES);
                LV_ST(DY + k * POP_B + v * LANES,
                      LV_MUL(y, LV_SUB(LV_SUB(y, LV_SET1(t[k])), dot)));
            }
        } else {
            for (k = 0; k < NO; k++) {
                V y = LV_LD(Y + k * POP_B + v * LANES);
                LV_ST(DY + k * POP_B + v * LANES,
                      LV_MUL(LV_SUB(y, LV_SET1(t[k])), POP_FN(lane_derivative)(act_out, y, slope)));
            }
        }
    }
    /* backward and update, top layer first: the delta below from the weights before their
       update, W_ij <- W_ij - lr (a_i d_j), b_j <- b_j - lr d_j; chk collects new * 0, NaN in a
       lane that got a value that is not finite */
    for (v = 0; v < NV; v++) chk[v] = LV_ZERO();
    for (l = L - 1; l >= 0; l--) {
        const ptrdiff_t ni = net->sizes[l], no = net->sizes[l + 1];
        T* W = P + net->w_off[l] * POP_B;
        T* b = P + net->b_off[l] * POP_B;
        const T* a = A + net->u_off[l] * POP_B;
        const T* d = D + net->u_off[l + 1] * POP_B;
        T* dn = D + net->u_off[l] * POP_B;
        const int act_below = l > 0 ? net->act[l - 1] : 0;
        for (i = 0; i < ni; i++) {
            V ai[NV], g[NV];
            for (v = 0; v < NV; v++) {
                ai[v] = l == 0 ? LV_SET1(x[i]) : LV_LD(a + i * POP_B + v * LANES);
                g[v] = LV_ZERO();
            }
            for (j = 0; j < no; j++) {
                T* w = W + (i * no + j) * POP_B;
                for (v = 0; v < NV; v++) {
                    V wv = LV_LD(w + v * LANES), dv = LV_LD(d + j * POP_B + v * LANES), nv;
                    if (l > 0) g[v] = LV_ADD(g[v], LV_MUL(wv, dv));
                    nv = LV_SUB(wv, LV_MUL(lrv[v], LV_MUL(ai[v], dv)));
                    chk[v] = LV_ADD(chk[v], LV_MUL(nv, LV_ZERO()));
                    LV_ST(w + v * LANES, nv);
                }
            }
            if (l > 0)
                for (v = 0; v < NV; v++)
                    LV_ST(dn + i * POP_B + v * LANES,
                          LV_MUL(g[v], POP_FN(lane_derivative)(act_below, ai[v], slope)));
        }
        if (net->train_biases)
            for (j = 0; j < no; j++)
                for (v = 0; v < NV; v++) {
                    V nb = LV_SUB(LV_LD(b + j * POP_B + v * LANES),
                                  LV_MUL(lrv[v], LV_LD(d + j * POP_B + v * LANES)));
                    chk[v] = LV_ADD(chk[v], LV_MUL(nb, LV_ZERO()));
                    LV_ST(b + j * POP_B + v * LANES, nb);
                }
    }
    for (v = 0; v < NV; v++) {
        const int bits = LV_BAD(chk[v]);
        if (bits) {
            any = 1;
            for (q = 0; q < LANES; q++)
                if (bits >> q & 1) bad[v * LANES + q] = 1;
        }
    }
    return any;
}

/* cprop_pop_train_block_SUF: see _population.h. */
static CPROP_NOINLINE TGT void POP_FN(cprop_pop_train_block)(
    const cprop_pop_net* net, T* CPROP_RESTRICT P, T* CPROP_RESTRICT work,
    double* CPROP_RESTRICT dwork, const T* CPROP_RESTRICT X, const T* CPROP_RESTRICT Tg,
    ptrdiff_t n_rows, ptrdiff_t epochs, const T* CPROP_RESTRICT lr, double* losses, int* status)
{
    const ptrdiff_t NP = net->n_params, n0 = net->sizes[0], NO = net->sizes[net->n_layers];
    const T slope = (T)net->slope;
    T* Snap = work;
    T* F = Snap + NP * POP_B;
    T* A = F + NP * POP_B;
    T* D = A + net->n_units * POP_B;
    T* Z = D + net->n_units * POP_B;
    T* lse = Z + NO * POP_B;
    double* total = dwork;
    double* rl = dwork + POP_B;
    unsigned char alive[POP_B], bad[POP_B];
    ptrdiff_t n_alive = POP_B;
    V lrv[NV];
    ptrdiff_t e, r, rr, k, q, v;
    for (v = 0; v < NV; v++) lrv[v] = LV_LD(lr + v * LANES);
    for (q = 0; q < POP_B; q++) {
        status[q] = 0;
        lse[q] = 0;
        alive[q] = 1;
    }
    for (e = 0; e < epochs && n_alive; e++) {
        memcpy(Snap, P, (size_t)(NP * POP_B) * sizeof(T));
        for (q = 0; q < POP_B; q++) total[q] = 0.0;
        for (r = 0; r < n_rows; r++) {
            int fresh = 0;
            if (POP_FN(step_row)(net, P, A, D, Z, lse, lrv, X + r * n0, Tg + r * NO, rl, slope,
                                 bad))
                for (q = 0; q < POP_B; q++) fresh |= bad[q] & alive[q];
            if (fresh) {
                /* a lane's step is refused: replay the epoch up to this row from its start
                   (the same bits for every lane), keep each such lane's parameters from
                   before the row in F, then take the row again; its lane runs on unused */
                unsigned char refused[POP_B];
                for (q = 0; q < POP_B; q++) refused[q] = bad[q] & alive[q];
                memcpy(P, Snap, (size_t)(NP * POP_B) * sizeof(T));
                for (q = 0; q < POP_B; q++) total[q] = 0.0;
                for (rr = 0; rr < r; rr++) {
                    POP_FN(step_row)(net, P, A, D, Z, lse, lrv, X + rr * n0, Tg + rr * NO, rl,
                                     slope, bad);
                    for (q = 0; q < POP_B; q++) total[q] += rl[q];
                }
                for (q = 0; q < POP_B; q++) {
                    if (!refused[q]) continue;
                    for (k = 0; k < NP; k++) F[k * POP_B + q] = P[k * POP_B + q];
                    status[q] = (int)(e + 1);
                    alive[q] = 0;
                    n_alive--;
                }
                POP_FN(step_row)(net, P, A, D, Z, lse, lrv, X + r * n0, Tg + r * NO, rl, slope,
                                 bad);
            }
            for (q = 0; q < POP_B; q++) total[q] += rl[q];
        }
        for (q = 0; q < POP_B; q++)
            losses[q * epochs + e] = alive[q] ? total[q] / (double)n_rows : (double)NAN;
    }
    for (; e < epochs; e++)
        for (q = 0; q < POP_B; q++) losses[q * epochs + e] = (double)NAN;
    for (q = 0; q < POP_B; q++)
        if (status[q])
            for (k = 0; k < NP; k++) P[k * POP_B + q] = F[k * POP_B + q];
}

/* B: the networks of one block of this build */
static int POP_FN(cprop_pop_block)(void) { return POP_B; }

#undef POP_B
