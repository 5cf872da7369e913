/* The scalar formulas of the network, each written once, for the C kernels (_tiny.h) and for the
 * Cython ones (_activations.pxd, _mlp.pyx, through `cdef extern`). Double (suffix d) and float
 * (suffix f) versions come from one macro body, CPROP_FORMULAS below. cprop.oracle computes the
 * same expressions, grouped the same way, so the float64 versions give the oracle's bits.
 *
 * Every function is `static inline` with __attribute__((always_inline)) (CPROP_ALWAYS_INLINE): the
 * whole-step tiny kernel passes constant activation codes and widths, and needs the switches and
 * loops folded into each of its 64 shapes (as out-of-line calls, they cost 23 ns of its 60 a
 * step: see _tiny.h). T is double (_d) or float (_f); Py_ssize_t for ptrdiff_t on the Cython
 * side. The functions, as C signatures:
 *
 *   double cprop_loop_sigmoid_d(double z)            sigmoid(z): cprop_sigmoid_libm_d (libm's exp,
 *   float  cprop_loop_sigmoid_f(float z)             the oracle's bits) / the float32 vector
 *                                                    kernel on one value (cprop_sigmoid_row_f)
 *   void   cprop_loop_sigmoid_row_d(double* z, ptrdiff_t n)     z[k] <- sigmoid(z[k]), in place:
 *   void   cprop_loop_sigmoid_row_f(float* z, ptrdiff_t n)      the same values, a row at a time
 *   double cprop_loop_exp_d(double z), float cprop_loop_exp_f(float z), and the row forms
 *          cprop_loop_exp_row_d/f(z, n): e^z (the exp output), chosen as sigmoid's: libm's exp
 *          for float64 (the oracle's math.exp bits), the float32 vector kernel for float32; inf
 *          past the type's range
 *   double cprop_poisson_term_d(double z, double t)  one output's half Poisson deviance from
 *          its logit: t (log t - z) + (e^z - t), with t log t = 0 at t = 0 (scikit-learn's
 *          xlogy(t, t / y) - t + y, y = e^z, without the division that overflows)
 *   double cprop_loop_softmax_row_d(double* z, ptrdiff_t n, int want_lse)
 *   double cprop_loop_softmax_row_f(float* z, ptrdiff_t n, int want_lse)
 *          softmax of a row in place (n >= 1); returns its log-sum-exp m + log(sum_k e^(z_k - m))
 *          (in double) if want_lse, else 0. float64: libm's exp summed in order (the oracle's
 *          bits); float32: the vector kernel cprop_softmax_row_f.
 *   double cprop_softplus_d(double z)                log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
 *   T      cprop_activation_d/f(int act, T z, T slope)           f(z), act a CPROP_ACT_* code
 *                                                    (not softmax: the identity there)
 *   T      cprop_activation_derivative_d/f(int act, T a, T slope)
 *          f'(z) from the output a = f(z) (not softmax: 1 there; see the loss's delta)
 *   void   cprop_activate_elementwise_d/f(int act, T* z, ptrdiff_t n, T slope)
 *          z[k] <- f(z[k]) in place; a no-op for identity and softmax
 *   void   cprop_activate_row_d/f(int act, T* z, ptrdiff_t n, T slope)
 *          one sample's layer output in place: softmax (cprop_loop_softmax_row) or elementwise
 *   void   cprop_times_derivative_d/f(T* d, const T* a, ptrdiff_t n, int act, T slope)
 *          d[k] <- d[k] * f'(a[k])
 *   T      cprop_sgd_value_d/f(T p, T g, T lr, T alpha)
 *          p - lr * g if alpha == 0, else p - lr * (g + alpha * p) (alpha: L2 on weights)
 *   double cprop_output_loss_delta_d/f(int loss, int act, const T* y, const T* z, const T* t,
 *                                      const T* lse, T* d, ptrdiff_t n, T slope)
 *          one output row (n values): returns the row's loss, summed in double, and if d is not
 *          NULL writes the delta dE/dz (in T). y = f(z) the outputs, z the logits, t the targets,
 *          lse the row's log-sum-exp of z (softmax output) or NULL (then computed from z when
 *          the loss needs it); act the output activation, loss a CPROP_LOSS_* code.
 *
 * The activation and loss codes (CPROP_ACT_*, CPROP_LOSS_*) are defined here, once: _types.pxd
 * takes them from this header for the Cython kernels.
 */
#ifndef CPROP_FORMULAS_H
#define CPROP_FORMULAS_H

#include "_simd.h"
#include "_vecmath.h"

#define CPROP_ACT_IDENTITY 0
#define CPROP_ACT_SIGMOID 1
#define CPROP_ACT_TANH 2
#define CPROP_ACT_RELU 3
#define CPROP_ACT_LEAKY_RELU 4
#define CPROP_ACT_SOFTMAX 5
#define CPROP_ACT_EXP 6
#define CPROP_LOSS_SQUARED_ERROR 0
#define CPROP_LOSS_CROSS_ENTROPY 1
#define CPROP_LOSS_BINARY_CROSS_ENTROPY 2
#define CPROP_LOSS_POISSON 3

/* sigmoid: the one place that differs by type. float64 takes libm's exp (cprop_sigmoid_libm_d,
 * _vecmath.h), the oracle's math.exp bits; float32 the vector kernel, whose result on one value
 * is the same as on a whole row (lane by lane). */
static CPROP_ALWAYS_INLINE double cprop_loop_sigmoid_d(double z) { return cprop_sigmoid_libm_d(z); }

static CPROP_ALWAYS_INLINE float cprop_loop_sigmoid_f(float z)
{
    cprop_sigmoid_row_f(&z, 1);
    return z;
}

static CPROP_ALWAYS_INLINE void cprop_loop_sigmoid_row_d(double* z, ptrdiff_t n)
{
    ptrdiff_t k;
    for (k = 0; k < n; k++) z[k] = cprop_sigmoid_libm_d(z[k]);
}

static CPROP_ALWAYS_INLINE void cprop_loop_sigmoid_row_f(float* z, ptrdiff_t n)
{
    cprop_sigmoid_row_f(z, n);
}

/* exp (the output of loss="poisson"): as sigmoid, libm's exp in float64 and the vector kernel
 * in float32, on one value or a row. */
static CPROP_ALWAYS_INLINE double cprop_loop_exp_d(double z) { return exp(z); }

static CPROP_ALWAYS_INLINE float cprop_loop_exp_f(float z)
{
    cprop_exp_row_f(&z, 1);
    return z;
}

static CPROP_ALWAYS_INLINE void cprop_loop_exp_row_d(double* z, ptrdiff_t n)
{
    ptrdiff_t k;
    for (k = 0; k < n; k++) z[k] = exp(z[k]);
}

static CPROP_ALWAYS_INLINE void cprop_loop_exp_row_f(float* z, ptrdiff_t n)
{
    cprop_exp_row_f(z, n);
}

/* The half Poisson deviance of one output from its logit z (y = e^z), in double:
 * t log(t / y) - t + y = t (log t - z) + (y - t), t log t = 0 at t = 0. From z, so that no
 * t / y overflows (scikit-learn's xlogy(t, t / y) is inf for y = e^-1000 = 0, where the loss is
 * finite); each part a difference of nearly equal terms when y is near t, so the sum keeps
 * its precision there. inf exactly when e^z overflows. */
static CPROP_ALWAYS_INLINE double cprop_poisson_term_d(double z, double t)
{
    return (t > 0 ? t * (log(t) - z) : 0.0) + (exp(z) - t);
}

/* softmax: shift by the row maximum so exp() never overflows (exact 0 / 1 limits at +-1000). */
static CPROP_ALWAYS_INLINE double cprop_loop_softmax_row_d(double* z, ptrdiff_t n, int want_lse)
{
    ptrdiff_t k;
    double m = z[0], s = 0;
    for (k = 1; k < n; k++)
        if (z[k] > m) m = z[k];
    for (k = 0; k < n; k++) {
        z[k] = exp(z[k] - m);
        s += z[k];
    }
    for (k = 0; k < n; k++) z[k] = z[k] / s;
    return want_lse ? m + log(s) : 0.0;
}

static CPROP_ALWAYS_INLINE double cprop_loop_softmax_row_f(float* z, ptrdiff_t n, int want_lse)
{
    return cprop_softmax_row_f(z, n, want_lse);
}

/* log(1 + e^z) without overflow, in double whatever the layer's type. */
static CPROP_ALWAYS_INLINE double cprop_softplus_d(double z)
{
    return (z > 0 ? z : 0.0) + log1p(exp(-fabs(z)));
}

/* d[k] <- d[k] * (a[k] > 0 ? 1 : below): the relu (below = 0) and leaky relu (below = slope)
 * derivative times the delta, without a branch. As a branch (what the compiler makes of the
 * plain loop: it may not turn d * 0 into a select, which could trap) it mispredicts on every
 * other unit of a relu layer and took two thirds of W5's training loop outside the GEMMs;
 * d * 1 and d * below are the same products either way, so the bits are the same. */
#if CPROP_VECTOR_KERNELS
/* The vector loop (_vecmath_kernels.h), at the portable width: these run inlined into Cython's
 * loops, which are compiled for baseline x86-64. */
static CPROP_ALWAYS_INLINE void cprop_times_step_d(double* d, const double* a, ptrdiff_t n,
                                                   double below)
{
    cprop_times_step_d_base(d, a, n, below);
}
static CPROP_ALWAYS_INLINE void cprop_times_step_f(float* d, const float* a, ptrdiff_t n,
                                                   float below)
{
    cprop_times_step_f_base(d, a, n, below);
}
#else
#define CPROP_TIMES_STEP(T, SUFFIX)                                                            \
static CPROP_ALWAYS_INLINE void cprop_times_step_##SUFFIX(T* d, const T* a, ptrdiff_t n,      \
                                                          T below)                             \
{                                                                                              \
    ptrdiff_t k;                                                                               \
    for (k = 0; k < n; k++) d[k] = d[k] * (a[k] > 0 ? (T)1 : below);                           \
}
CPROP_TIMES_STEP(double, d)
CPROP_TIMES_STEP(float, f)
/* (no vector kernels: a block is a long row) */
#define cprop_times_step_block_d cprop_times_step_d
#define cprop_times_step_block_f cprop_times_step_f
#endif

/* CPROP_FORMULAS(T, SUFFIX, TANH): the formulas for element type T (TANH: tanh or tanhf).
 *
 * Derivatives are taken from the activation's output a = f(z), as backprop has a at hand:
 * sigmoid' = a(1 - a), tanh' = 1 - a^2, relu' = [a > 0] (0 at z = 0, as PyTorch),
 * leaky_relu' = 1 if a > 0 else slope (slope >= 0, so a > 0 exactly when z > 0), identity' = 1,
 * exp' = a.
 * (T)1 - a is Cython's <floating>1 - a (1.0f - a for float32; a literal 1.0 would compute a
 * float32 f' in double and convert back).
 *
 * The output row's loss, added one term at a time in double (so a batch's total does not depend
 * on how it is cut into blocks):
 *   squared_error          E = sum_k 1/2 (t_k - y_k)^2 (t_k - y_k in T); delta = (y - t) * f'(z),
 *                          or for a softmax output delta_k = y_k (g_k - sum_j g_j y_j), g = y - t
 *   cross_entropy          E = sum_k t_k (logsumexp(z) - z_k) = -sum_k t_k log y_k, from the
 *                          logits so that no log(0) can occur; delta = y - t
 *   binary_cross_entropy   E = sum_k softplus(z_k) - t_k z_k; delta = y - t
 *   poisson                E = sum_k t_k (log t_k - z_k) + (e^z_k - t_k), scikit-learn's half
 *                          Poisson deviance (cprop_poisson_term_d), exp output; delta = y - t
 */
#define CPROP_FORMULAS(T, SUFFIX, TANH)                                                        \
static CPROP_ALWAYS_INLINE T cprop_activation_##SUFFIX(int act, T z, T slope)                  \
{                                                                                              \
    switch (act) {                                                                             \
    case CPROP_ACT_SIGMOID: return cprop_loop_sigmoid_##SUFFIX(z);                             \
    case CPROP_ACT_TANH: return TANH(z);                                                       \
    case CPROP_ACT_RELU: return z > 0 ? z : 0;                                                 \
    case CPROP_ACT_LEAKY_RELU: return z > 0 ? z : slope * z;                                   \
    case CPROP_ACT_EXP: return cprop_loop_exp_##SUFFIX(z);                                     \
    default: return z;                                                                         \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static CPROP_ALWAYS_INLINE T cprop_activation_derivative_##SUFFIX(int act, T a, T slope)       \
{                                                                                              \
    switch (act) {                                                                             \
    case CPROP_ACT_SIGMOID: return a * ((T)1 - a);                                             \
    case CPROP_ACT_TANH: return (T)1 - a * a;                                                  \
    case CPROP_ACT_RELU: return a > 0 ? 1 : 0;                                                 \
    case CPROP_ACT_LEAKY_RELU: return a > 0 ? 1 : slope;                                       \
    case CPROP_ACT_EXP: return a;                                                              \
    default: return 1;                                                                         \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* The row forms switch once, outside the loop, each loop calling the formula above with a    \
   constant code: what a loop written for that one activation does. */                         \
static CPROP_ALWAYS_INLINE void cprop_activate_elementwise_##SUFFIX(int act, T* z, ptrdiff_t n, \
                                                                    T slope)                   \
{                                                                                              \
    ptrdiff_t k;                                                                               \
    switch (act) {                                                                             \
    case CPROP_ACT_SIGMOID:                                                                    \
        cprop_loop_sigmoid_row_##SUFFIX(z, n);                                                 \
        return;                                                                                \
    case CPROP_ACT_TANH:                                                                       \
        for (k = 0; k < n; k++) z[k] = cprop_activation_##SUFFIX(CPROP_ACT_TANH, z[k], slope); \
        return;                                                                                \
    case CPROP_ACT_RELU:                                                                       \
        for (k = 0; k < n; k++) z[k] = cprop_activation_##SUFFIX(CPROP_ACT_RELU, z[k], slope); \
        return;                                                                                \
    case CPROP_ACT_LEAKY_RELU:                                                                 \
        for (k = 0; k < n; k++)                                                                \
            z[k] = cprop_activation_##SUFFIX(CPROP_ACT_LEAKY_RELU, z[k], slope);               \
        return;                                                                                \
    case CPROP_ACT_EXP:                                                                        \
        cprop_loop_exp_row_##SUFFIX(z, n);                                                     \
        return;                                                                                \
    default:                                                                                   \
        return;                                                                                \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static CPROP_ALWAYS_INLINE void cprop_activate_row_##SUFFIX(int act, T* z, ptrdiff_t n,        \
                                                            T slope)                           \
{                                                                                              \
    if (act == CPROP_ACT_SOFTMAX) {                                                            \
        cprop_loop_softmax_row_##SUFFIX(z, n, 0);                                              \
        return;                                                                                \
    }                                                                                          \
    cprop_activate_elementwise_##SUFFIX(act, z, n, slope);                                     \
}                                                                                              \
                                                                                               \
static CPROP_ALWAYS_INLINE void cprop_times_derivative_##SUFFIX(T* d, const T* a, ptrdiff_t n, \
                                                                int act, T slope)              \
{                                                                                              \
    ptrdiff_t k;                                                                               \
    switch (act) {                                                                             \
    case CPROP_ACT_SIGMOID:                                                                    \
        for (k = 0; k < n; k++)                                                                \
            d[k] = d[k] * cprop_activation_derivative_##SUFFIX(CPROP_ACT_SIGMOID, a[k], slope); \
        return;                                                                                \
    case CPROP_ACT_TANH:                                                                       \
        for (k = 0; k < n; k++)                                                                \
            d[k] = d[k] * cprop_activation_derivative_##SUFFIX(CPROP_ACT_TANH, a[k], slope);   \
        return;                                                                                \
    case CPROP_ACT_RELU:                                                                       \
        cprop_times_step_##SUFFIX(d, a, n, (T)0);                                              \
        return;                                                                                \
    case CPROP_ACT_LEAKY_RELU:                                                                 \
        cprop_times_step_##SUFFIX(d, a, n, slope);                                             \
        return;                                                                                \
    case CPROP_ACT_EXP:                                                                        \
        for (k = 0; k < n; k++)                                                                \
            d[k] = d[k] * cprop_activation_derivative_##SUFFIX(CPROP_ACT_EXP, a[k], slope);    \
        return;                                                                                \
    default:                                                                                   \
        for (k = 0; k < n; k++)                                                                \
            d[k] = d[k] * cprop_activation_derivative_##SUFFIX(CPROP_ACT_IDENTITY, a[k], slope); \
        return;                                                                                \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* cprop_times_derivative over a whole block of a gemm route (rows x width values at once): the \
   same products, the relu and leaky relu steps at the widest vector width the CPU has         \
   (cprop_times_step_block) rather than inlined at the baseline one. */                        \
static CPROP_ALWAYS_INLINE void cprop_times_derivative_block_##SUFFIX(T* d, const T* a,        \
                                                                      ptrdiff_t n, int act,    \
                                                                      T slope)                 \
{                                                                                              \
    if (act == CPROP_ACT_RELU)                                                                 \
        cprop_times_step_block_##SUFFIX(d, a, n, (T)0);                                        \
    else if (act == CPROP_ACT_LEAKY_RELU)                                                      \
        cprop_times_step_block_##SUFFIX(d, a, n, slope);                                       \
    else                                                                                       \
        cprop_times_derivative_##SUFFIX(d, a, n, act, slope);                                  \
}                                                                                              \
                                                                                               \
/* torch.optim.SGD's step with weight decay alpha (L2, added to the gradient). alpha == 0 takes \
   p - lr * g exactly: g + 0 * p is not g when p is not finite or g is -0. */                  \
static CPROP_ALWAYS_INLINE T cprop_sgd_value_##SUFFIX(T p, T g, T lr, T alpha)                 \
{                                                                                              \
    if (alpha != 0) return p - lr * (g + alpha * p);                                           \
    return p - lr * g;                                                                         \
}                                                                                              \
                                                                                               \
static CPROP_ALWAYS_INLINE double cprop_output_loss_delta_##SUFFIX(                            \
    int loss, int act, const T* y, const T* z, const T* t, const T* lse, T* d, ptrdiff_t n,    \
    T slope)                                                                                   \
{                                                                                              \
    ptrdiff_t k;                                                                               \
    T diff, dot;                                                                               \
    double sample_loss = 0.0, m, s;                                                            \
    if (loss == CPROP_LOSS_CROSS_ENTROPY && lse != NULL) {                                     \
        m = lse[0];                                                                            \
        for (k = 0; k < n; k++) sample_loss += t[k] * (m - z[k]);                              \
    } else if (loss == CPROP_LOSS_CROSS_ENTROPY) {                                             \
        m = z[0];                                                                              \
        for (k = 1; k < n; k++)                                                                \
            if (z[k] > m) m = z[k];                                                            \
        s = 0.0;                                                                               \
        for (k = 0; k < n; k++) s += exp((double)z[k] - m);                                    \
        m = m + log(s);  /* logsumexp(z) */                                                    \
        for (k = 0; k < n; k++) sample_loss += t[k] * (m - z[k]);                              \
    } else if (loss == CPROP_LOSS_BINARY_CROSS_ENTROPY) {                                      \
        for (k = 0; k < n; k++) sample_loss += cprop_softplus_d(z[k]) - t[k] * (double)z[k];   \
    } else if (loss == CPROP_LOSS_POISSON) {                                                   \
        for (k = 0; k < n; k++) sample_loss += cprop_poisson_term_d(z[k], t[k]);               \
    } else {                                                                                   \
        for (k = 0; k < n; k++) {                                                              \
            diff = t[k] - y[k];                                                                \
            sample_loss += 0.5 * diff * diff;                                                  \
        }                                                                                      \
    }                                                                                          \
    if (d == NULL) return sample_loss;                                                         \
    if (loss != CPROP_LOSS_SQUARED_ERROR) {                                                    \
        for (k = 0; k < n; k++) d[k] = y[k] - t[k];                                            \
    } else if (act == CPROP_ACT_SOFTMAX) {                                                     \
        dot = 0;                                                                               \
        for (k = 0; k < n; k++) dot += (y[k] - t[k]) * y[k];                                   \
        for (k = 0; k < n; k++) d[k] = y[k] * ((y[k] - t[k]) - dot);                           \
    } else {                                                                                   \
        for (k = 0; k < n; k++) d[k] = y[k] - t[k];                                            \
        cprop_times_derivative_##SUFFIX(d, y, n, act, slope);   /* (y - t) * f'(y) */          \
    }                                                                                          \
    return sample_loss;                                                                        \
}

CPROP_FORMULAS(double, d, tanh)
CPROP_FORMULAS(float, f, tanhf)

#endif /* CPROP_FORMULAS_H */
