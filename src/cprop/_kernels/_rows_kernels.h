/* The row kernels of a dense layer and the two reductions (_rows.h says what each computes),
 * written once over _vops.h's operations and compiled once per build by _vops_build.h: no
 * include guard, on purpose. Names carry the build's suffix (cprop_net_input_row_d_base, ...).
 */

static CPROP_NOINLINE TGT void RV_FN(cprop_net_input_row)(
    const T* CPROP_RESTRICT a, const T* CPROP_RESTRICT W, const T* CPROP_RESTRICT b,
    T* CPROP_RESTRICT z, ptrdiff_t n_in, ptrdiff_t n_out)
{
    ptrdiff_t i, j = 0, k;
    /* 8 vectors of accumulators: enough independent additions to hide their latency. */
    for (; j + 8 * LANES <= n_out; j += 8 * LANES) {
        V acc[8];
        const T* w = W + j;
        for (k = 0; k < 8; k++) acc[k] = RV_LD(b + j + k * LANES);
        for (i = 0; i < n_in; i++, w += n_out) {
            V ai = RV_SET1(a[i]);
            for (k = 0; k < 8; k++) acc[k] = RV_ADD(acc[k], RV_MUL(ai, RV_LD(w + k * LANES)));
        }
        for (k = 0; k < 8; k++) RV_ST(z + j + k * LANES, acc[k]);
    }
    for (; j + 2 * LANES <= n_out; j += 2 * LANES) {
        const T* w = W + j;
        V acc0 = RV_LD(b + j), acc1 = RV_LD(b + j + LANES);
        for (i = 0; i < n_in; i++, w += n_out) {
            V ai = RV_SET1(a[i]);
            acc0 = RV_ADD(acc0, RV_MUL(ai, RV_LD(w)));
            acc1 = RV_ADD(acc1, RV_MUL(ai, RV_LD(w + LANES)));
        }
        RV_ST(z + j, acc0);
        RV_ST(z + j + LANES, acc1);
    }
    for (; j + LANES <= n_out; j += LANES) {
        const T* w = W + j;
        V acc0 = RV_LD(b + j);
        for (i = 0; i < n_in; i++, w += n_out) acc0 = RV_ADD(acc0, RV_MUL(RV_SET1(a[i]), RV_LD(w)));
        RV_ST(z + j, acc0);
    }
    for (; j < n_out; j++) {
        T s = b[j];
        for (i = 0; i < n_in; i++) s = s + a[i] * W[i * n_out + j];
        z[j] = s;
    }
}

static CPROP_NOINLINE TGT void RV_FN(cprop_rank1_sgd)(
    T* CPROP_RESTRICT W, const T* CPROP_RESTRICT a, const T* CPROP_RESTRICT d, ptrdiff_t n_in,
    ptrdiff_t n_out, T lr)
{
    ptrdiff_t i, j = 0, k;
    V lrv = RV_SET1(lr);
    /* A block of d in registers for every row, so each weight costs one load and one store. */
    for (; j + 8 * LANES <= n_out; j += 8 * LANES) {
        V dv[8];
        T* w = W + j;
        for (k = 0; k < 8; k++) dv[k] = RV_LD(d + j + k * LANES);
        for (i = 0; i < n_in; i++, w += n_out) {
            V ai = RV_SET1(a[i]);
            for (k = 0; k < 8; k++)
                RV_ST(w + k * LANES, RV_SUB(RV_LD(w + k * LANES), RV_MUL(lrv, RV_MUL(ai, dv[k]))));
        }
    }
    for (; j + LANES <= n_out; j += LANES) {
        V dv = RV_LD(d + j);
        T* w = W + j;
        for (i = 0; i < n_in; i++, w += n_out)
            RV_ST(w, RV_SUB(RV_LD(w), RV_MUL(lrv, RV_MUL(RV_SET1(a[i]), dv))));
    }
    for (; j < n_out; j++)
        for (i = 0; i < n_in; i++) W[i * n_out + j] = W[i * n_out + j] - lr * (a[i] * d[j]);
}

static CPROP_NOINLINE TGT void RV_FN(cprop_rank1_add)(
    T* CPROP_RESTRICT G, const T* CPROP_RESTRICT a, const T* CPROP_RESTRICT d, ptrdiff_t n_in,
    ptrdiff_t n_out)
{
    ptrdiff_t i, j = 0, k;
    for (; j + 8 * LANES <= n_out; j += 8 * LANES) {
        V dv[8];
        T* g = G + j;
        for (k = 0; k < 8; k++) dv[k] = RV_LD(d + j + k * LANES);
        for (i = 0; i < n_in; i++, g += n_out) {
            V ai = RV_SET1(a[i]);
            for (k = 0; k < 8; k++)
                RV_ST(g + k * LANES, RV_ADD(RV_LD(g + k * LANES), RV_MUL(ai, dv[k])));
        }
    }
    for (; j + LANES <= n_out; j += LANES) {
        V dv = RV_LD(d + j);
        T* g = G + j;
        for (i = 0; i < n_in; i++, g += n_out)
            RV_ST(g, RV_ADD(RV_LD(g), RV_MUL(RV_SET1(a[i]), dv)));
    }
    for (; j < n_out; j++)
        for (i = 0; i < n_in; i++) G[i * n_out + j] = G[i * n_out + j] + a[i] * d[j];
}

/* s_i = 0 + W_i0 d_0 + W_i1 d_1 + ... (j in order, as the oracle adds): the lanes run along i,
 * each gathering its row's W_ij, so every sum keeps its own sequential order. */
static CPROP_NOINLINE TGT void RV_FN(cprop_back_sums)(
    const T* CPROP_RESTRICT W, const T* CPROP_RESTRICT d, T* CPROP_RESTRICT s, ptrdiff_t n_in,
    ptrdiff_t n_out)
{
    ptrdiff_t i = 0, j, k;
    T w0[LANES], w1[LANES];
    for (; i + 2 * LANES <= n_in; i += 2 * LANES) {
        V acc0 = RV_ZERO(), acc1 = RV_ZERO();
        for (j = 0; j < n_out; j++) {
            V dj = RV_SET1(d[j]);
            for (k = 0; k < LANES; k++) {
                w0[k] = W[(i + k) * n_out + j];
                w1[k] = W[(i + LANES + k) * n_out + j];
            }
            acc0 = RV_ADD(acc0, RV_MUL(RV_LD(w0), dj));
            acc1 = RV_ADD(acc1, RV_MUL(RV_LD(w1), dj));
        }
        RV_ST(s + i, acc0);
        RV_ST(s + i + LANES, acc1);
    }
    for (; i + LANES <= n_in; i += LANES) {
        V acc0 = RV_ZERO();
        for (j = 0; j < n_out; j++) {
            for (k = 0; k < LANES; k++) w0[k] = W[(i + k) * n_out + j];
            acc0 = RV_ADD(acc0, RV_MUL(RV_LD(w0), RV_SET1(d[j])));
        }
        RV_ST(s + i, acc0);
    }
    for (; i < n_in; i++) {
        T acc = 0;
        for (j = 0; j < n_out; j++) acc = acc + W[i * n_out + j] * d[j];
        s[i] = acc;
    }
}

/* z[r, j] = z[r, j] + b[j] for every row of a block (rows x n, row-major); relu: then
 * z = (z > 0 ? z : 0), NaN and -0.0 to +0.0 as _formulas.h's relu (the mask of a false compare
 * is all zeros). */
static CPROP_NOINLINE TGT void RV_FN(cprop_bias_rows)(
    T* CPROP_RESTRICT z, const T* CPROP_RESTRICT b, ptrdiff_t rows, ptrdiff_t n, int relu)
{
    ptrdiff_t r, j;
    const V zero = RV_ZERO();
    T v;
    if (relu) {
        for (r = 0; r < rows; r++, z += n) {
            for (j = 0; j + LANES <= n; j += LANES) {
                V s = RV_ADD(RV_LD(z + j), RV_LD(b + j));
                RV_ST(z + j, RV_AND(RV_GT(s, zero), s));
            }
            for (; j < n; j++) {
                v = z[j] + b[j];
                z[j] = v > 0 ? v : 0;
            }
        }
        return;
    }
    for (r = 0; r < rows; r++, z += n) {
        for (j = 0; j + LANES <= n; j += LANES) RV_ST(z + j, RV_ADD(RV_LD(z + j), RV_LD(b + j)));
        for (; j < n; j++) z[j] = z[j] + b[j];
    }
}

/* s[j] = d[0, j] + d[1, j] + ... + d[rows - 1, j] (first), or s[j] + d[0, j] + ... (rows > 0):
 * each column's sum in row order, a block of columns in registers across the rows. */
static CPROP_NOINLINE TGT void RV_FN(cprop_column_sums)(
    const T* CPROP_RESTRICT d, ptrdiff_t rows, ptrdiff_t n, T* CPROP_RESTRICT s, int first)
{
    ptrdiff_t r, j = 0, k;
    for (; j + 8 * LANES <= n; j += 8 * LANES) {
        V acc[8];
        const T* p = d + j;
        for (k = 0; k < 8; k++)
            acc[k] = first ? RV_LD(p + k * LANES)
                           : RV_ADD(RV_LD(s + j + k * LANES), RV_LD(p + k * LANES));
        for (r = 1, p += n; r < rows; r++, p += n)
            for (k = 0; k < 8; k++) acc[k] = RV_ADD(acc[k], RV_LD(p + k * LANES));
        for (k = 0; k < 8; k++) RV_ST(s + j + k * LANES, acc[k]);
    }
    for (; j + LANES <= n; j += LANES) {
        const T* p = d + j;
        V acc = first ? RV_LD(p) : RV_ADD(RV_LD(s + j), RV_LD(p));
        for (r = 1, p += n; r < rows; r++, p += n) acc = RV_ADD(acc, RV_LD(p));
        RV_ST(s + j, acc);
    }
    for (; j < n; j++) {
        T acc = first ? d[j] : s[j] + d[j];
        for (r = 1; r < rows; r++) acc = acc + d[r * n + j];
        s[j] = acc;
    }
}

/* s[r, i] = 0 + d[r, 0] W[i, 0] + d[r, 1] W[i, 1] + ... (j in order: cprop_back_sums of every
 * row of a block) for a narrow layer (n_out <= CPROP_NARROW_MAX); step: then times
 * (a[r, i] > 0 ? 1 : below), cprop_times_step's product. colsum (or NULL): also the column
 * sums of the result over the rows in order, cprop_column_sums' (first: set; else added).
 * Lanes along i, that group's weights in registers for the whole sweep over the rows: one
 * pass writes the layer below's delta and takes its bias gradient. */
static CPROP_NOINLINE TGT void RV_FN(cprop_back_narrow)(
    const T* CPROP_RESTRICT W, const T* CPROP_RESTRICT d, const T* CPROP_RESTRICT a,
    T* CPROP_RESTRICT s, ptrdiff_t rows, ptrdiff_t n_in, ptrdiff_t n_out, int step, T below,
    T* CPROP_RESTRICT colsum, int first)
{
    ptrdiff_t r, i = 0, j, k;
    T col[LANES], acc, cs;
    const V one = RV_SET1(1), low = RV_SET1(below), zero = RV_ZERO();
    V w[CPROP_NARROW_MAX];
    if (n_out > CPROP_NARROW_MAX || rows < 1) return;  /* (the caller's rules; never reached) */
    /* Two groups of lanes at a time: two independent column-sum chains per row. */
    for (; i + 2 * LANES <= n_in; i += 2 * LANES) {
        V csum0 = zero, csum1 = zero;
        V w1[CPROP_NARROW_MAX];
        for (j = 0; j < n_out; j++) {
            for (k = 0; k < LANES; k++) col[k] = W[(i + k) * n_out + j];
            w[j] = RV_LD(col);
            for (k = 0; k < LANES; k++) col[k] = W[(i + LANES + k) * n_out + j];
            w1[j] = RV_LD(col);
        }
        for (r = 0; r < rows; r++) {
            const T* dr = d + r * n_out;
            V sum0 = RV_ZERO(), sum1 = RV_ZERO();
            for (j = 0; j < n_out; j++) {
                V dj = RV_SET1(dr[j]);
                sum0 = RV_ADD(sum0, RV_MUL(w[j], dj));
                sum1 = RV_ADD(sum1, RV_MUL(w1[j], dj));
            }
            if (step) {
                sum0 = RV_MUL(sum0, RV_SEL(RV_GT(RV_LD(a + r * n_in + i), zero), one, low));
                sum1 = RV_MUL(sum1,
                              RV_SEL(RV_GT(RV_LD(a + r * n_in + i + LANES), zero), one, low));
            }
            RV_ST(s + r * n_in + i, sum0);
            RV_ST(s + r * n_in + i + LANES, sum1);
            if (colsum != NULL) {
                if (r > 0) {
                    csum0 = RV_ADD(csum0, sum0);
                    csum1 = RV_ADD(csum1, sum1);
                } else if (first) {
                    csum0 = sum0;
                    csum1 = sum1;
                } else {
                    csum0 = RV_ADD(RV_LD(colsum + i), sum0);
                    csum1 = RV_ADD(RV_LD(colsum + i + LANES), sum1);
                }
            }
        }
        if (colsum != NULL) {
            RV_ST(colsum + i, csum0);
            RV_ST(colsum + i + LANES, csum1);
        }
    }
    for (; i + LANES <= n_in; i += LANES) {
        V csum = zero;
        for (j = 0; j < n_out; j++) {
            for (k = 0; k < LANES; k++) col[k] = W[(i + k) * n_out + j];
            w[j] = RV_LD(col);
        }
        for (r = 0; r < rows; r++) {
            const T* dr = d + r * n_out;
            V sum = RV_ZERO();
            for (j = 0; j < n_out; j++) sum = RV_ADD(sum, RV_MUL(w[j], RV_SET1(dr[j])));
            if (step) sum = RV_MUL(sum, RV_SEL(RV_GT(RV_LD(a + r * n_in + i), zero), one, low));
            RV_ST(s + r * n_in + i, sum);
            if (colsum != NULL)
                csum = r > 0 ? RV_ADD(csum, sum) : first ? sum : RV_ADD(RV_LD(colsum + i), sum);
        }
        if (colsum != NULL) RV_ST(colsum + i, csum);
    }
    for (; i < n_in; i++) {
        cs = 0;
        for (r = 0; r < rows; r++) {
            acc = 0;
            for (j = 0; j < n_out; j++) acc = acc + W[i * n_out + j] * d[r * n_out + j];
            if (step) acc = acc * (a[r * n_in + i] > 0 ? (T)1 : below);
            s[r * n_in + i] = acc;
            if (colsum != NULL) cs = r > 0 ? cs + acc : first ? acc : colsum[i] + acc;
        }
        if (colsum != NULL) colsum[i] = cs;
    }
}

/* The largest lane of m0 and m1 (running maxima of |x|), or NaN if any lane of bad is set (a
 * set mask lane, all ones, reads as a NaN; a clear one as 0). */
static CPROP_ALWAYS_INLINE TGT double RV_FN(cprop_lanes_max)(V m0, V m1, V bad)
{
    T b[LANES], c0[LANES], c1[LANES];
    double m = 0.0;
    int q;
    RV_ST(b, bad);
    RV_ST(c0, m0);
    RV_ST(c1, m1);
    for (q = 0; q < LANES; q++) {
        if (b[q] != 0) return (double)NAN;
        if ((double)c0[q] > m) m = (double)c0[q];
        if ((double)c1[q] > m) m = (double)c1[q];
    }
    return m;
}

/* max(m, |x|), NaN once either is NaN: one value of a scalar tail. */
static CPROP_ALWAYS_INLINE double RV_FN(cprop_max_abs_with)(double m, double x)
{
    double v = fabs(x);
    if (m != m || v != v) return (double)NAN;
    return v > m ? v : m;
}

/* g[i] = (((g[i] + g[stride + i]) + g[2 stride + i]) + ...) * inv over n_parts >= 1 slots (a
 * batch's parts added in part order, then scaled), i < n; returns max |g[i]| of the results
 * (0 for n = 0), or NaN if any is NaN: the bound the update's safety test needs, in the pass
 * that writes them. */
static CPROP_NOINLINE TGT double RV_FN(cprop_sum_parts)(
    const T* g, ptrdiff_t n, ptrdiff_t stride, ptrdiff_t n_parts, T inv, T* out)
{
    ptrdiff_t i = 0, k;
    const V sign = RV_SET1(-0.0), iv = RV_SET1(inv);
    V m0 = RV_ZERO(), m1 = RV_ZERO(), bad = RV_ZERO();
    T x;
    double m;
    /* Two running maxima, as cprop_absmax: more independent work per iteration. */
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        V s0 = RV_LD(g + i), s1 = RV_LD(g + i + LANES), a0, a1;
        for (k = 1; k < n_parts; k++) {
            s0 = RV_ADD(s0, RV_LD(g + k * stride + i));
            s1 = RV_ADD(s1, RV_LD(g + k * stride + i + LANES));
        }
        s0 = RV_MUL(s0, iv);
        s1 = RV_MUL(s1, iv);
        RV_ST(out + i, s0);
        RV_ST(out + i + LANES, s1);
        a0 = RV_ANDNOT(sign, s0);
        a1 = RV_ANDNOT(sign, s1);
        m0 = RV_SEL(RV_GT(a0, m0), a0, m0);
        m1 = RV_SEL(RV_GT(a1, m1), a1, m1);
        bad = RV_OR(bad, RV_OR(RV_ISNAN(s0), RV_ISNAN(s1)));
    }
    m = RV_FN(cprop_lanes_max)(m0, m1, bad);
    for (; i < n; i++) {
        x = g[i];
        for (k = 1; k < n_parts; k++) x = x + g[k * stride + i];
        x = x * inv;
        out[i] = x;
        m = RV_FN(cprop_max_abs_with)(m, (double)x);
    }
    return m;
}

/* g[k] = g[k] / c (c = the batch's row count or weight sum), as a multiplication by 1/c when c
 * is a power of two: then x / c and x * (1/c) are the same real number, so both round to the
 * same bits; otherwise by division. Returns max |g[k]| of the results (0 for n = 0), or NaN if
 * any is NaN, as cprop_sum_parts. */
static CPROP_NOINLINE TGT double RV_FN(cprop_scale)(T* CPROP_RESTRICT g, ptrdiff_t n, T c)
{
    ptrdiff_t i = 0;
    const V sign = RV_SET1(-0.0), cv = RV_SET1(c);
    V m0 = RV_ZERO(), bad = RV_ZERO();
    T x;
    double m;
    if (c > 0 && c == c && (((long long)c) & (((long long)c) - 1)) == 0
        && (T)(long long)c == c)
        return RV_FN(cprop_sum_parts)(g, n, 0, 1, (T)1 / c, g);
    for (; i + LANES <= n; i += LANES) {
        V s0 = RV_DIV(RV_LD(g + i), cv), a0;
        RV_ST(g + i, s0);
        a0 = RV_ANDNOT(sign, s0);
        m0 = RV_SEL(RV_GT(a0, m0), a0, m0);
        bad = RV_OR(bad, RV_ISNAN(s0));
    }
    m = RV_FN(cprop_lanes_max)(m0, m0, bad);
    for (; i < n; i++) {
        x = g[i] / c;
        g[i] = x;
        m = RV_FN(cprop_max_abs_with)(m, (double)x);
    }
    return m;
}

/* max |x[k]| (0 for n = 0), or NaN if any x[k] is NaN. */
static CPROP_NOINLINE TGT double RV_FN(cprop_absmax)(const T* CPROP_RESTRICT x, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    const V sign = RV_SET1(-0.0);
    V m0 = RV_ZERO(), m1 = RV_ZERO(), bad = RV_ZERO();
    double m, v;
    /* Two running maxima: more independent work per iteration. NaN never wins a > compare,
       so it is tracked separately (x != x). */
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        V x0 = RV_LD(x + i), x1 = RV_LD(x + i + LANES);
        V a0 = RV_ANDNOT(sign, x0), a1 = RV_ANDNOT(sign, x1);
        m0 = RV_SEL(RV_GT(a0, m0), a0, m0);
        m1 = RV_SEL(RV_GT(a1, m1), a1, m1);
        bad = RV_OR(bad, RV_OR(RV_ISNAN(x0), RV_ISNAN(x1)));
    }
    m = RV_FN(cprop_lanes_max)(m0, m1, bad);
    if (m != m) return m;
    for (; i < n; i++) {
        v = fabs((double)x[i]);
        if (v != v) return (double)NAN;
        if (v > m) m = v;
    }
    return m;
}
