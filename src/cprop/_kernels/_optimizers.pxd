# One parameter's update under each optimizer, as torch.optim writes it (inline, nogil).
#
# Each function returns the new parameter value and, when `commit` is true, writes the new
# optimizer state for that parameter. The update kernel (``_mlp.optimizer_step``) calls it twice:
# once with commit off to compute every new value into a scratch buffer and check that all are
# finite, then - only if they are - with commit on. A step that would overflow thus changes
# neither the parameters nor the optimizer state.
#
# `g` already includes the L2 term alpha * p for weights (torch's weight_decay).

from cython cimport floating
from libc.math cimport sqrt, sqrtf

from cprop._kernels._types cimport OptConfig


cdef inline floating sgd_value(
    const OptConfig* opt, floating p, floating g, floating* velocity, floating lr, bint commit,
) noexcept nogil:
    # torch.optim.SGD, dampening 0: buf <- momentum * buf + g (buf starts at 0, which gives
    # torch's buf = g on the first step exactly); the step is buf, or g + momentum * buf with
    # nesterov; p <- p - lr * step.
    cdef floating buf, step
    cdef floating momentum = <floating>opt.momentum
    if velocity == NULL:
        return p - lr * g
    buf = momentum * velocity[0] + g
    if commit:
        velocity[0] = buf
    if opt.nesterov:
        step = g + momentum * buf
    else:
        step = buf
    return p - lr * step


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
