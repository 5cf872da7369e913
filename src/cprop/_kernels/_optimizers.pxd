# One parameter's update under each optimizer, as torch.optim writes it (inline, nogil).
#
# Each function returns the new parameter value and, when `commit` is true, writes the new
# optimizer state for that parameter. The update kernel (``_mlp.optimizer_step``) calls it twice:
# once with commit off to compute every new value into a scratch buffer and check that all are
# finite, then - only if they are - with commit on. A step that would overflow thus changes
# neither the parameters nor the optimizer state.
#
# `g` already includes the L2 term alpha * p for weights (torch's weight_decay); AdamW's
# decoupled decay is applied to `p` instead (adamw_decayed), and its `g` is the plain gradient.

from cython cimport floating
from libc.math cimport sqrt, sqrtf, pow, isfinite, fabs
from libc.stdint cimport int64_t
from libc.string cimport memcpy

from cprop._kernels._types cimport Layout, OptConfig, OPT_SGD, OPT_ADAM, OPT_RPROP, OPT_ADAMW
from cprop._kernels._activations cimport sgd_update
from cprop._kernels._layers cimport abs_max, update_is_safe


cdef inline floating sgd_value(
    const OptConfig* opt, floating p, floating g, floating* velocity, floating lr, bint commit,
) noexcept nogil:
    # torch.optim.SGD, dampening 0: buf <- momentum * buf + g (buf starts at 0, which gives
    # torch's buf = g on the first step exactly); the step is buf, or g + momentum * buf with
    # nesterov; p <- p - lr * step.
    cdef floating buf, step
    cdef floating momentum = <floating>opt.momentum
    if velocity == NULL:
        return sgd_update(p, g, lr, <floating>0)
    buf = momentum * velocity[0] + g
    if commit:
        velocity[0] = buf
    if opt.nesterov:
        step = g + momentum * buf
    else:
        step = buf
    return sgd_update(p, step, lr, <floating>0)


cdef inline floating adam_value(
    const OptConfig* opt, floating p, floating g, floating* m, floating* v,
    floating step_size, floating bias_correction2_sqrt, bint commit,
) noexcept nogil:
    # torch.optim.Adam: m <- m + (1 - beta1)(g - m)  (torch's lerp), v <- beta2 v + (1 - beta2) g g,
    # p <- p - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps), step_size = lr / (1 - beta1^t).
    cdef floating m_new, v_new, denom
    m_new = m[0] + <floating>(1.0 - opt.beta1) * (g - m[0])
    v_new = v[0] * <floating>opt.beta2 + <floating>(1.0 - opt.beta2) * g * g
    if commit:
        m[0] = m_new
        v[0] = v_new
    if floating is float:
        denom = sqrtf(v_new) / bias_correction2_sqrt + <floating>opt.eps
    else:
        denom = sqrt(v_new) / bias_correction2_sqrt + <floating>opt.eps
    return p - step_size * (m_new / denom)


cdef inline floating adamw_decayed(floating p, floating decay) noexcept nogil:
    # torch.optim.AdamW's decoupled weight decay, before Adam's step: p <- p * (1 - lr * alpha),
    # the factor computed once per step in double (torch's Python float) and rounded to the
    # parameters' type (decay_factor); weights only.
    return p * decay


cdef inline double decay_factor(double lr, double alpha) noexcept nogil:
    return 1.0 - lr * alpha


cdef inline floating rprop_value(
    const OptConfig* opt, floating p, floating g, floating* prev, floating* step_size,
    bint commit,
) noexcept nogil:
    # torch.optim.Rprop (iRprop-): the step size grows by eta_plus while the gradient keeps its
    # sign and shrinks by eta_minus when it flips (clamped to [step_min, step_max]); after a flip
    # the gradient counts as 0: no move, and no sign to compare next time. p <- p - sign(g) step.
    cdef floating sign_product = g * prev[0]
    cdef floating factor, step, direction
    if sign_product > 0:
        factor = <floating>opt.eta_plus
    elif sign_product < 0:
        factor = <floating>opt.eta_minus
        g = 0
    else:
        factor = 1
    step = step_size[0] * factor
    if step < <floating>opt.step_min:
        step = <floating>opt.step_min
    if step > <floating>opt.step_max:
        step = <floating>opt.step_max
    if commit:
        step_size[0] = step
        prev[0] = g
    direction = 1 if g > 0 else (-1 if g < 0 else 0)
    return p - direction * step


# One update of a whole network: every route's update that is not folded into its own loops.

cdef inline floating param_value(
    const OptConfig* opt, Py_ssize_t k, Py_ssize_t n, floating p, floating g, floating* state,
    floating lr, floating step_size, floating bc2_sqrt, bint commit,
) noexcept nogil:
    if opt.kind == OPT_ADAM or opt.kind == OPT_ADAMW:
        return adam_value(opt, p, g, state + k, state + n + k, step_size, bc2_sqrt, commit)
    if opt.kind == OPT_RPROP:
        return rprop_value(opt, p, g, state + k, state + n + k, commit)
    return sgd_value(opt, p, g, state + k if state != NULL else NULL, lr, commit)


cdef inline bint plain_sgd_step(
    const Layout* lay, const OptConfig* opt, floating* params, floating* grad, floating lr,
    double* p_bound, double grad_max,
) noexcept nogil:
    # SGD without momentum keeps no state. If the step provably cannot overflow (update_is_safe,
    # from max |grad| and p_bound, a bound on max |params| that the caller keeps, or NULL to take
    # it exactly here) it is one unchecked, vectorisable pass. grad_max: max |grad| (NaN if any
    # is NaN) if known, else < 0. Otherwise the new values overwrite
    # the gradient (scratch from here on) and are copied in only if every one is finite.
    cdef Py_ssize_t l, k, w_end, b_end
    cdef bint finite = True
    cdef floating p_new, alpha = <floating>opt.alpha
    cdef double g_bound = grad_max if not grad_max < 0 else abs_max(grad, lay.n_params)
    cdef double bound = p_bound[0] if p_bound != NULL else abs_max(params, lay.n_params)
    if update_is_safe(bound, g_bound, opt.alpha, lr, floating is float):
        for l in range(lay.n_layers):
            w_end = lay.b_off[l]
            b_end = lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else w_end
            for k in range(lay.w_off[l], w_end):
                params[k] = sgd_update(params[k], grad[k], lr, alpha)
            for k in range(w_end, b_end):
                params[k] = sgd_update(params[k], grad[k], lr, <floating>0)
        if p_bound != NULL:
            p_bound[0] = bound + lr * (g_bound + opt.alpha * bound)
        return True
    for l in range(lay.n_layers):
        w_end = lay.b_off[l]
        b_end = lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else w_end
        for k in range(lay.w_off[l], w_end):
            p_new = sgd_update(params[k], grad[k], lr, alpha)
            grad[k] = p_new
            finite = finite & isfinite(p_new)
        for k in range(w_end, b_end):
            p_new = sgd_update(params[k], grad[k], lr, <floating>0)
            grad[k] = p_new
            finite = finite & isfinite(p_new)
    if not finite:
        return False
    for l in range(lay.n_layers):
        b_end = lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else lay.b_off[l]
        memcpy(params + lay.w_off[l], grad + lay.w_off[l],
               (b_end - lay.w_off[l]) * sizeof(floating))
    if p_bound != NULL:
        p_bound[0] = abs_max(params, lay.n_params)
    return True


ctypedef struct AdamStep:
    # One Adam / AdamW step's constants (adam_prepare), rounded to the parameters' type as the
    # update uses them (stored in double: exact for float too).
    OptConfig opt              # eps scaled for scikit-learn's convention
    double step_size           # lr / (1 - beta1^t)
    double bc2_sqrt            # sqrt(1 - beta2^t)
    double alpha
    double decay               # AdamW's 1 - lr * alpha
    bint l2                    # alpha * W added to the weights' gradient (Adam)
    bint decoupled             # the weights decayed before the step (AdamW)


cdef inline void adam_prepare(
    const OptConfig* opt, const floating* params, int64_t step_count, double lr, AdamStep* s,
) noexcept nogil:
    # The constants of step step_count + 1 (params: only to pick the type).
    cdef double t = <double>(step_count + 1)
    cdef floating alpha = <floating>opt.alpha
    s.opt = opt[0]
    s.alpha = alpha
    s.decay = <floating>decay_factor(lr, opt.alpha)
    s.l2 = alpha != 0 and opt.kind != OPT_ADAMW
    s.decoupled = opt.alpha != 0 and opt.kind == OPT_ADAMW
    # libc pow, not `**`: Cython 3 compiles double ** double as a complex power (cpow),
    # which differs from beta ** t (torch, the oracle) in the last bit at some t.
    s.step_size = <floating>(lr / (1.0 - pow(opt.beta1, t)))
    s.bc2_sqrt = <floating>sqrt(1.0 - pow(opt.beta2, t))
    if opt.adam_eps_unscaled:
        s.opt.eps = opt.eps / sqrt(1.0 - pow(opt.beta2, t))


cdef inline bint adam_bounds_safe(const AdamStep* s, double P, double G, double M, double V,
                                  bint single) noexcept nogil:
    # True if one Adam / AdamW step (adam_value) cannot make any value or partial result
    # non-finite, given P, G, M, V >= max |params|, |grad|, |m|, v (NaN fails every test), so
    # that the step may skip checking each new value: |g'| <= G + alpha P (L2 on the
    # weights), |m_new| <= max(|m|, |g'|) (a convex combination), v_new <= V + g'^2, the
    # denominator sqrt(v_new) / bc2 + eps >= eps (> 0), so |p_new| <= P |decay| + step_size
    # max(|m|, |g'|) / eps. The limit is far below DBL_MAX / FLT_MAX, as update_is_safe's.
    cdef double limit = 1e36 if single else 1e300
    cdef double eps = <double><float>s.opt.eps if single else s.opt.eps
    cdef double gp = G + s.opt.alpha * P if s.l2 else G
    cdef double mb = M if M > gp else gp
    cdef double pb = P * fabs(s.decay) if s.decoupled and fabs(s.decay) > 1 else P
    if not (P <= limit and G <= limit and M <= limit and V <= limit and gp <= limit
            and eps > 0):
        return False
    return (gp * gp <= limit and V + gp * gp <= limit and mb / eps <= limit
            and s.step_size * (mb / eps) <= limit and pb + s.step_size * (mb / eps) <= limit)


ctypedef struct AdamBounds:
    # Upper bounds on max |params|, max |m| and max v, carried from one Adam / AdamW step to the
    # next within a driver call (adam_step_is_safe), so that a step needs one pass, for
    # max |grad|, rather than four. known False: none yet, or the last step was not proven safe.
    double P, M, V
    bint known


cdef inline void adam_bounds_carry(const AdamStep* s, AdamBounds* b, double P, double G,
                                   double M, double V, bint single) noexcept nogil:
    # The bounds after a step that adam_bounds_safe(P, G, M, V) allowed, from that proof's own
    # terms: |m_new| <= max(|m|, |g'|), v_new <= V + g'^2, |p_new| <= P |decay| + step_size
    # max(|m|, |g'|) / eps; each raised by 1/1000, more than the update's own rounding can add.
    # (They only grow: once past adam_bounds_safe's limit, the exact maxima are taken again.)
    cdef double eps = <double><float>s.opt.eps if single else s.opt.eps
    cdef double gp = G + s.opt.alpha * P if s.l2 else G
    cdef double mb = M if M > gp else gp
    cdef double pb = P * fabs(s.decay) if s.decoupled and fabs(s.decay) > 1 else P
    b.P = (pb + s.step_size * (mb / eps)) * 1.001
    b.M = mb * 1.001
    b.V = (V + gp * gp) * 1.001
    b.known = True


cdef inline bint adam_carried_bounds_prove(const AdamStep* s, const AdamBounds* b, double G,
                                           bint single) noexcept nogil:
    # Whether the bounds b carries (if any) prove this step safe for max |grad| <= G.
    return b != NULL and b.known and adam_bounds_safe(s, b.P, G, b.M, b.V, single)


cdef inline bint adam_step_is_safe(
    const Layout* lay, const AdamStep* s, const floating* params, const floating* state,
    double G, AdamBounds* b,
) noexcept nogil:
    # adam_bounds_safe for this step, G >= max |grad| (NaN if any is): from the bounds b
    # carries if they prove it, else from the exact maxima (abs_max). b (or NULL: always the
    # exact maxima) then holds the bounds after the step, or known False if it is not safe.
    cdef Py_ssize_t n = lay.n_params
    cdef bint single = floating is float
    cdef double P, M, V
    if adam_carried_bounds_prove(s, b, G, single):
        P = b.P
        M = b.M
        V = b.V
    else:
        P = abs_max(params, n)
        M = abs_max(state, n)
        V = abs_max(state + n, n)
        if not adam_bounds_safe(s, P, G, M, V, single):
            if b != NULL:
                b.known = False
            return False
    if b != NULL:
        adam_bounds_carry(s, b, P, G, M, V, single)
    return True


cdef inline void adam_commit(
    const Layout* lay, const AdamStep* s, floating* params, const floating* grad,
    floating* state, Py_ssize_t k0, Py_ssize_t k1,
) noexcept nogil:
    # One Adam / AdamW step of parameters k0 .. k1-1 written in place, one pass, after
    # adam_is_safe: the same arithmetic as optimizer_step's general loop (adam_value), in
    # branch-free loops per range (weights with their L2 term or decoupled decay, then the
    # biases) that the compiler can vectorise. Element by element, so any cut of 0 .. n_params
    # into ranges (the threads of _team.pxi) gives the same bits.
    cdef Py_ssize_t l, k, w0, w_end, b_end, n = lay.n_params
    cdef floating* m = state
    cdef floating* v = state + n
    cdef const OptConfig* opt = &s.opt
    cdef floating step_size = <floating>s.step_size, bc2_sqrt = <floating>s.bc2_sqrt
    cdef floating alpha = <floating>s.alpha, decay = <floating>s.decay
    for l in range(lay.n_layers):
        w0 = max(lay.w_off[l], k0)
        w_end = min(lay.b_off[l], k1)
        b_end = min(lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else lay.b_off[l], k1)
        if s.l2:
            for k in range(w0, w_end):
                params[k] = adam_value(opt, params[k], grad[k] + alpha * params[k], &m[k],
                                       &v[k], step_size, bc2_sqrt, True)
        elif s.decoupled:
            for k in range(w0, w_end):
                params[k] = adam_value(opt, adamw_decayed(params[k], decay), grad[k], &m[k],
                                       &v[k], step_size, bc2_sqrt, True)
        else:
            for k in range(w0, w_end):
                params[k] = adam_value(opt, params[k], grad[k], &m[k], &v[k], step_size,
                                       bc2_sqrt, True)
        for k in range(max(lay.b_off[l], k0), b_end):
            params[k] = adam_value(opt, params[k], grad[k], &m[k], &v[k], step_size, bc2_sqrt,
                                   True)


cdef inline bint optimizer_step(
    const Layout* lay, const OptConfig* opt, floating* params, floating* grad,
    floating* state, int64_t* step_count, double lr, double* p_bound, AdamBounds* adam_bounds,
    double grad_max,
) noexcept nogil:
    # One update of every trained parameter (weights; biases if opt.train_biases) from the mean
    # gradient `grad`, with L2 alpha * W added to the weights' gradient (AdamW: the weights
    # decayed by 1 - lr * alpha before the step instead). Two passes: the first
    # only checks that every new value is finite; the second (identical arithmetic) writes the
    # parameters and the optimizer state. Returns False, changing nothing, if a value would be
    # inf/NaN. state: SGD momentum [velocity], Adam [m, v], Rprop [prev grad, step size].
    # p_bound: see plain_sgd_step (the other optimizers check every value and leave it alone).
    # adam_bounds (or NULL): Adam's bounds carried between the steps of a driver call
    # (adam_step_is_safe).
    # grad_max: max |grad| (NaN if any is NaN) if the gradient's last pass took it, else < 0.
    cdef Py_ssize_t l, k, w_end, b_end, n = lay.n_params
    cdef int pass_
    cdef bint commit, finite = True
    cdef floating g, p, p_new, alpha = <floating>opt.alpha
    cdef floating step_size = 0, bc2_sqrt = 0
    cdef floating decay = <floating>decay_factor(lr, opt.alpha)
    cdef bint l2 = alpha != 0 and opt.kind != OPT_ADAMW
    cdef bint decoupled = opt.alpha != 0 and opt.kind == OPT_ADAMW
    cdef AdamStep adam
    if opt.kind == OPT_SGD and state == NULL:
        if not plain_sgd_step(lay, opt, params, grad, <floating>lr, p_bound, grad_max):
            return False
        step_count[0] += 1
        return True
    if opt.kind == OPT_ADAM or opt.kind == OPT_ADAMW:
        adam_prepare(opt, params, step_count[0], lr, &adam)
        if adam_step_is_safe(lay, &adam, params, state,
                             grad_max if not grad_max < 0 else abs_max(grad, n), adam_bounds):
            adam_commit(lay, &adam, params, grad, state, 0, n)
            step_count[0] += 1
            return True
        opt = &adam.opt
        step_size = <floating>adam.step_size
        bc2_sqrt = <floating>adam.bc2_sqrt
    for pass_ in range(2):
        commit = pass_ == 1
        for l in range(lay.n_layers):
            w_end = lay.b_off[l]
            b_end = lay.b_off[l] + lay.sizes[l + 1] if opt.train_biases else w_end
            for k in range(lay.w_off[l], b_end):
                g = grad[k]
                p = params[k]
                if k < w_end and l2:
                    g = g + alpha * p
                elif k < w_end and decoupled:
                    p = adamw_decayed(p, decay)
                p_new = param_value(opt, k, n, p, g, state, <floating>lr, step_size, bc2_sqrt,
                                    commit)
                if commit:
                    params[k] = p_new
                else:
                    finite = finite & isfinite(p_new)
        if not finite:
            return False
    step_count[0] += 1
    return True
