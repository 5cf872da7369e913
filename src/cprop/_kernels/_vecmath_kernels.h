/* The vector exp, sigmoid and softmax of a row (_vecmath.h says how they compute), and the relu
 * derivative times the delta (_formulas.h), written once over _vops.h's operations and compiled
 * once per build by _vops_build.h: no include guard, on purpose. Defines, for the build's T
 * (names with the build's suffix, e.g. cprop_exp_row_f_avx2):
 *
 *   cprop_exp_row(z, n), cprop_sigmoid_row(z, n)    z[i] <- exp(z[i]) / sigmoid(z[i]), in place
 *   cprop_softmax_row(z, n, want_lse)               softmax in place; the log-sum-exp if asked
 *   cprop_softmax_rows(z, rows, n, lse)             that of each row; lse[r] if lse != NULL
 *   cprop_times_step(d, a, n, below)                d[k] <- d[k] * (a[k] > 0 ? 1 : below)
 *   cprop_times_step_block(d, a, n, below)          the same, a function of its own: a whole
 *                                                   block of a gemm route at the build's width
 */

/* exp(x) = (ph + pl) * s1 * s2: the unscaled e^r as an unevaluated sum ph + pl (|pl| <= about
 * 1 ulp of ph), s1 = 2^k1, s2 = 2^k2. Returns x's NaN mask. */
static CPROP_ALWAYS_INLINE TGT V RV_FN(cprop_vexp_core)(V x, V* ph, V* pl, V* s1, V* s2)
{
    const V one = RV_SET1(1), shift = RV_SET1(RV_EXPK(_SHIFT));
    const V bias = RV_SET1(RV_EXPK(_SHIFT_BIAS));
    const V lo = RV_SET1(RV_EXPK(_XLO)), hi = RV_SET1(RV_EXPK(_XHI));
    V mnan = RV_ISNAN(x), mlo = RV_LT(x, lo), mhi = RV_GT(x, hi);
    /* x clamped to [lo, hi], NaN to 0 (its result is replaced by x) */
    V xc = RV_OR(RV_OR(RV_ANDNOT(RV_OR(RV_OR(mnan, mlo), mhi), x), RV_AND(lo, mlo)),
                 RV_AND(hi, mhi));
    V kd = RV_SUB(RV_ADD(RV_MUL(xc, RV_SET1(RV_EXPK(_LOG2E))), shift), shift); /* x/ln2, rounded */
    V k1 = RV_SUB(RV_ADD(RV_MUL(kd, RV_SET1(0.5)), shift), shift);      /* k = k1 + k2, halves */
    V k2 = RV_SUB(kd, k1);
    V rh = RV_SUB(xc, RV_MUL(kd, RV_SET1(RV_EXPK(_L2HI))));             /* exact */
    V rl = RV_MUL(kd, RV_SET1(RV_EXPK(_L2LO)));
    V r = RV_SUB(rh, rl), r2 = RV_MUL(r, r), r4 = RV_MUL(r2, r2), r8 = RV_MUL(r4, r4);
    V t = RV_SUB(RV_MUL(r2, RV_EXPK(_POLY)(RV_ADD, RV_MUL, RV_C, r, r2, r4, r8)), rl);
    V sh = RV_ADD(rh, t), sb = RV_SUB(sh, rh);                          /* 2Sum: sh + sl = rh + t */
    V sl = RV_ADD(RV_SUB(rh, RV_SUB(sh, sb)), RV_SUB(t, sb));
    (void)r4;                                                           /* float32: unused */
    (void)r8;
    *ph = RV_ADD(one, sh);                                              /* Fast2Sum, |sh| < 1 */
    *pl = RV_ADD(RV_ADD(RV_SUB(one, *ph), sh), sl);
    *s1 = RV_SHL(RV_ADD(k1, bias), RV_EXPK(_MANT));
    *s2 = RV_SHL(RV_ADD(k2, bias), RV_EXPK(_MANT));
    return mnan;
}

static CPROP_ALWAYS_INLINE TGT V RV_FN(cprop_vexp)(V x)
{
    V ph, pl, s1, s2, res;
    V mnan = RV_FN(cprop_vexp_core)(x, &ph, &pl, &s1, &s2);
    res = RV_MUL(RV_MUL(RV_ADD(ph, pl), s1), s2);  /* (p s1) is exact, the last product rounds once */
    return RV_SEL(mnan, x, res);
}

/* sigmoid(z) = num / (1 + e), e = exp(-|z|) = eh + el, num = 1 (z >= 0) or e: the quotient of
 * the leading parts, corrected for el and for the rounding of 1 + eh (dl), to first order. */
static CPROP_ALWAYS_INLINE TGT V RV_FN(cprop_vsigmoid)(V z)
{
    const V one = RV_SET1(1);
    V ph, pl, s1, s2, eh, el, d, dl, q, res;
    V mnan = RV_FN(cprop_vexp_core)(RV_OR(z, RV_SET1(-0.0)), &ph, &pl, &s1, &s2);  /* -|z| */
    V pos = RV_GE(z, RV_ZERO());
    eh = RV_MUL(RV_MUL(ph, s1), s2);
    el = RV_MUL(RV_MUL(pl, s1), s2);
    d = RV_ADD(one, eh);
    dl = RV_ADD(RV_ADD(RV_SUB(one, d), eh), el);                        /* 1 + e = d + dl */
    q = RV_DIV(RV_SEL(pos, one, eh), d);
    res = RV_ADD(q, RV_MUL(RV_SUB(RV_ANDNOT(pos, el), RV_MUL(q, dl)),
                           RV_SEL(pos, q, RV_SUB(one, q))));
    return RV_SEL(mnan, z, res);
}

static CPROP_NOINLINE TGT void RV_FN(cprop_exp_row)(T* CPROP_RESTRICT z, ptrdiff_t n)
RV_ROW_MAP_BODY(RV_FN(cprop_vexp))

static CPROP_NOINLINE TGT void RV_FN(cprop_sigmoid_row)(T* CPROP_RESTRICT z, ptrdiff_t n)
RV_ROW_MAP_BODY(RV_FN(cprop_vsigmoid))

static CPROP_NOINLINE TGT double RV_FN(cprop_softmax_row)(T* CPROP_RESTRICT z, ptrdiff_t n,
                                                          int want_lse)
{
    enum { NV = 32 / sizeof(V), BLK = 32 / sizeof(T) };
    ptrdiff_t i, j, k, c;
    T m, s = 0, part[BLK], tail[LANES];
    V acc[NV], mv, v;
    if (n <= 0) return 0.0;
    m = z[0];
    for (j = 1; j < n; j++) m = z[j] > m ? z[j] : m;
    mv = RV_SET1(m);
    for (k = 0; k < NV; k++) acc[k] = RV_ZERO();
    for (j = 0; j + BLK <= n; j += BLK)
        for (k = 0; k < NV; k++) {
            v = RV_FN(cprop_vexp)(RV_SUB(RV_LD(z + j + k * LANES), mv));
            RV_ST(z + j + k * LANES, v);
            acc[k] = RV_ADD(acc[k], v);
        }
    for (i = j; i < n; i += LANES) {                /* the tail, padded with m (exp(0) = 1) */
        c = n - i < LANES ? n - i : LANES;
        RV_ST(tail, mv);
        memcpy(tail, z + i, (size_t)c * sizeof(T));
        RV_ST(tail, RV_FN(cprop_vexp)(RV_SUB(RV_LD(tail), mv)));
        memcpy(z + i, tail, (size_t)c * sizeof(T));
    }
    for (k = 0; k < NV; k++) RV_ST(part + k * LANES, acc[k]);  /* part[q]: values at q mod BLK */
    for (k = 0; k < BLK; k++) s = s + part[k];
    for (i = j; i < n; i++) s = s + z[i];
    v = RV_SET1(s);
    for (i = 0; i + LANES <= n; i += LANES) RV_ST(z + i, RV_DIV(RV_LD(z + i), v));
    for (; i < n; i++) z[i] = z[i] / s;
    return want_lse ? (double)m + log((double)s) : 0.0;
}

/* The softmax of each of `rows` rows of n values (row r at z + r n), in place, with lse[r] its
 * log-sum-exp when lse is not NULL: cprop_softmax_row on each row, the same bits. A row
 * narrower than 32 bytes sums nothing but zeros in the one-row kernel's partial sums, then its
 * values in order; so such rows go LANES at a time, one row to a lane (the same operations, lane
 * by lane), instead of one call per row of two or three values. */
static CPROP_NOINLINE TGT void RV_FN(cprop_softmax_rows)(T* CPROP_RESTRICT z, ptrdiff_t rows,
                                                          ptrdiff_t n, T* CPROP_RESTRICT lse)
{
    enum { NARROW = 32 / sizeof(T) };
    T col[NARROW][LANES], ms[LANES], ss[LANES];
    V c[NARROW], m, s;
    ptrdiff_t r = 0, q, k;
    if (n > 0 && n < NARROW) {
        for (; r + LANES <= rows; r += LANES) {
            for (k = 0; k < n; k++) {                   /* column k of the LANES rows */
                for (q = 0; q < LANES; q++) col[k][q] = z[(r + q) * n + k];
                c[k] = RV_LD(col[k]);
            }
            m = c[0];
            for (k = 1; k < n; k++) m = RV_SEL(RV_GT(c[k], m), c[k], m);
            s = RV_ZERO();
            for (k = 0; k < n; k++) {
                c[k] = RV_FN(cprop_vexp)(RV_SUB(c[k], m));
                s = RV_ADD(s, c[k]);
            }
            for (k = 0; k < n; k++) {
                RV_ST(col[k], RV_DIV(c[k], s));
                for (q = 0; q < LANES; q++) z[(r + q) * n + k] = col[k][q];
            }
            if (lse != NULL) {
                RV_ST(ms, m);
                RV_ST(ss, s);
                for (q = 0; q < LANES; q++) lse[r + q] = (T)((double)ms[q] + log((double)ss[q]));
            }
        }
    }
    for (; r < rows; r++) {
        double v = RV_FN(cprop_softmax_row)(z + r * n, n, lse != NULL);
        if (lse != NULL) lse[r] = (T)v;
    }
}

static CPROP_ALWAYS_INLINE TGT void RV_FN(cprop_times_step)(T* d, const T* a, ptrdiff_t n,
                                                            T below)
{
    const V one = RV_SET1(1), low = RV_SET1(below), zero = RV_ZERO();
    ptrdiff_t k = 0;
    for (; k + LANES <= n; k += LANES)
        RV_ST(d + k, RV_MUL(RV_LD(d + k), RV_SEL(RV_GT(RV_LD(a + k), zero), one, low)));
    for (; k < n; k++) d[k] = d[k] * (a[k] > 0 ? (T)1 : below);
}

static CPROP_NOINLINE TGT void RV_FN(cprop_times_step_block)(T* d, const T* a, ptrdiff_t n,
                                                              T below)
{
    RV_FN(cprop_times_step)(d, a, n, below);
}
