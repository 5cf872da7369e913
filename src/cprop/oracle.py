"""The reference ("oracle") multilayer perceptron, in plain Python.

This module is the readable definition of what cprop's compiled kernels compute. It uses only
lists of Python floats and the standard library (no NumPy, nothing from the rest of cprop), and
it spells out every step the way a textbook writes it:

* forward pass, per layer ``l``:   ``z_j = b_j + sum_i a_i W[i][j]``,   ``a_j = f(z_j)``
  (softmax, output layer only, works on the whole row: ``y_k = e^(z_k - m) / sum_j e^(z_j - m)``
  with ``m = max_j z_j``);
* loss per sample, averaged over the samples (with sample weights ``w``, the weighted mean
  ``sum_i w_i E_i / sum_i w_i``, scikit-learn's definition):
  squared error ``E = sum_k 1/2 (t_k - y_k)^2`` (any output);
  cross-entropy ``E = sum_k t_k (logsumexp(z) - z_k) = -sum_k t_k log y_k`` (softmax output);
  binary cross-entropy ``E = sum_k softplus(z_k) - t_k z_k`` (sigmoid output);
  Poisson ``E = sum_k t_k (log t_k - z_k) + (e^z_k - t_k)`` (exp output ``y = e^z``: scikit-learn's
  half Poisson deviance ``t log(t / y) - t + y``) -- all three computed from the output layer's
  net inputs ``z`` (the logits), so that no ``log(0)`` or ``t / 0`` can occur;
* backpropagation: ``delta = dE/dz`` at the output (``(y_k - t_k) f'(y_k)`` for squared error,
  ``y_k (g_k - sum_j g_j y_j)`` with ``g = y - t`` for squared error on softmax, ``y - t`` for
  both cross-entropies and for Poisson), ``delta_i = (sum_j W[i][j] delta_j) f'(a_i)`` one
  layer down, ``dE/dW[i][j] = a_i delta_j``, ``dE/db_j = delta_j``, averaged over the batch
  (weighted: each sample's output delta times its weight, the sums divided by the weights'
  sum);
* optimizers (one parameter ``p`` with gradient ``g``, plus ``alpha * p`` for weights):
  SGD ``p <- p - lr g`` (momentum: ``buf <- momentum buf + g``, step ``buf``, or
  ``g + momentum buf`` with Nesterov), Adam and Rprop as ``torch.optim`` writes them; AdamW is
  Adam whose weights are first decayed, ``p <- p (1 - lr alpha)``, instead of the L2 term.

Beyond being *mathematically* the same, it performs the same floating-point operations in the
same order as ``cprop/_kernels/_mlp.pyx`` (bias first, then inputs in index order; samples in
batch order, then one division by the batch size; the optimizer rules of ``_optimizers.pxd``
term by term), so float64 results agree with the compiled path to the last bit or two, and its
random numbers (SplitMix64) agree bit for bit. The names follow the kernels' (``output_delta``,
``sgd_value``, ``adam_value``, ``rprop_value``, ``optimizer_step`` ...) so the two read side by
side.

The oracle always computes in Python floats (IEEE double). ``dtype="float32"`` is accepted and
stored so that the constructor mirrors :class:`cprop.MLP`, but the arithmetic stays in double;
the compiled float32 path rounds every value (including the initial weights) to float32.

Layout (the same as the compiled network): ``weights[l][i][j]`` is the weight from unit ``i`` of
layer ``l`` to unit ``j`` of layer ``l + 1`` (a matrix of shape ``(n_in, n_out)``, so that
``z = a @ W + b``), and ``biases[l][j]`` is the bias of unit ``j`` of layer ``l + 1``. The flat
layout (:meth:`MLP.params_flat`, and the optimizer state :attr:`MLP.opt_state`) is, per layer,
W row-major and then b.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Callable, Optional, Sequence, Union

from cprop import _registry  # plain Python too: the names the compiled path accepts

__all__ = [
    "bootstrap_rows",
    "population_seeds",
    "population_fit",
    "ACTIVATIONS",
    "HIDDEN",
    "OUTPUT",
    "LOSSES",
    "INITS",
    "OPTIMIZERS",
    "SCHEDULES",
    "DTYPES",
    "MASK64",
    "sigmoid",
    "exp",
    "poisson_term",
    "softplus",
    "softmax",
    "activation",
    "activation_derivative",
    "output_delta",
    "SplitMix64",
    "OptimizerOptions",
    "check_optimizer",
    "sgd_value",
    "adam_value",
    "adamw_decayed",
    "rprop_value",
    "schedule_lr",
    "History",
    "MLP",
]

# The names come from cprop._registry, the one table the compiled path reads too.
#: Activation functions, by name (the same names as the compiled path). ``softmax`` works on a
#: whole row (:func:`softmax`) and is for the output layer only.
ACTIVATIONS = _registry.ACTIVATIONS
#: Activations a hidden layer may have.
HIDDEN = _registry.HIDDEN
#: Activations the output layer may have.
OUTPUT = _registry.OUTPUT
#: Loss functions, by name, and the output activation each needs (None: any).
LOSS_OUTPUT = _registry.LOSS_OUTPUT
#: Loss functions, by name, and the targets each takes ("real", "unit": in [0, 1],
#: "distribution": rows in [0, 1] summing to 1, or integer class labels).
LOSS_TARGETS = _registry.LOSS_TARGETS
LOSSES = _registry.LOSSES
#: Initial-weight distributions, by name.
INITS = _registry.INITS
#: Optimizers, by name.
OPTIMIZERS = _registry.OPTIMIZERS
#: Learning-rate schedules, by name (see :func:`schedule_lr`).
SCHEDULES = _registry.SCHEDULES
#: Parameter dtypes accepted by the constructor (the oracle itself always uses Python floats).
DTYPES = _registry.DTYPES
#: All 64 bits set: ``x & MASK64`` is ``x`` reduced modulo 2**64, i.e. C's uint64_t wrap-around.
MASK64 = 0xFFFFFFFFFFFFFFFF
#: 2 pi, written out as the kernel writes it (Box-Muller).
TWO_PI = 6.283185307179586
#: Rprop (torch.optim.Rprop defaults): step-size factors (eta_minus, eta_plus) and the clamp.
RPROP_ETAS = (0.5, 1.2)
RPROP_STEP_SIZES = (1e-6, 50.0)

Vector = list[float]
Matrix = list[list[float]]


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------

def sigmoid(x: float) -> float:
    """The logistic function ``1 / (1 + e^-x)``, computed so that it never overflows.

    ``exp`` only ever sees a non-positive argument (``math.exp(1000)`` would raise
    ``OverflowError``); for ``x < 0`` we use the equivalent form ``e^x / (1 + e^x)``.
    """
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def exp(z: float) -> float:
    """``e^z``, the exp output's activation: ``math.exp``, but ``inf`` where that overflows
    (as C's ``exp``; ``math.exp(710)`` raises ``OverflowError``)."""
    try:
        return math.exp(z)
    except OverflowError:
        return math.inf


def poisson_term(z: float, t: float) -> float:
    """One output's half Poisson deviance from its logit ``z`` (``y = e^z``):
    ``t (log t - z) + (e^z - t)``, which is scikit-learn's ``xlogy(t, t / y) - t + y`` without
    its division (``t / y`` overflows for ``y = e^-1000``, where the loss is finite);
    ``t log t = 0`` at ``t = 0``."""
    return (t * (math.log(t) - z) if t > 0 else 0.0) + (exp(z) - t)


def softplus(z: float) -> float:
    """``log(1 + e^z)`` without overflow: ``max(z, 0) + log1p(e^-|z|)``."""
    return (z if z > 0 else 0.0) + math.log1p(math.exp(-abs(z)))


def softmax(z: Sequence[float]) -> Vector:
    """The softmax of one row: ``y_k = e^(z_k - m) / s`` with ``m = max z`` and
    ``s = sum_k e^(z_k - m)`` (added in index order from 0). Subtracting the maximum keeps
    ``exp`` from overflowing; the result is unchanged mathematically."""
    m = z[0]
    for k in range(1, len(z)):
        if z[k] > m:
            m = z[k]
    e = [math.exp(z_k - m) for z_k in z]
    s = 0.0
    for e_k in e:
        s += e_k
    return [e_k / s for e_k in e]


def activation(name: str, z: float, slope: float = 0.01) -> float:
    """The elementwise activation ``f(z)`` called ``name``; ``slope`` is leaky_relu's negative
    slope. (``softmax`` is not elementwise: see :func:`softmax`.)"""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return math.tanh(z)
    if name == "relu":
        return z if z > 0 else 0.0
    if name == "leaky_relu":
        return z if z > 0 else slope * z
    if name == "identity":
        return z
    if name == "exp":
        return exp(z)
    if name == "softmax":
        raise ValueError("softmax works on a whole row, not one value: use oracle.softmax(z)")
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def activation_derivative(name: str, a: float, slope: float = 0.01) -> float:
    """The derivative ``f'(z)``, written in terms of the activation's OUTPUT ``a = f(z)``.

    Backpropagation has ``a`` at hand, and each of these derivatives is a simple function of it:
    sigmoid' = a (1 - a), tanh' = 1 - a^2, relu' = [a > 0] (0 at z = 0, as PyTorch),
    leaky_relu' = 1 if a > 0 else slope (slope >= 0, so a > 0 exactly when z > 0),
    identity' = 1, exp' = a. (Softmax's Jacobian is not diagonal; :func:`output_delta` applies
    it.)
    """
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return 1.0 if a > 0 else 0.0
    if name == "leaky_relu":
        return 1.0 if a > 0 else slope
    if name == "identity":
        return 1.0
    if name == "exp":
        return a
    if name == "softmax":
        raise ValueError("softmax has no elementwise derivative; see oracle.output_delta")
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------

def output_delta(loss: str, act: str, y: Vector, z: Vector, t: Vector,
                 slope: float = 0.01) -> tuple[float, Vector]:
    """One sample's loss ``E`` and ``delta = dE/dz`` at the output layer.

    ``y`` are the outputs, ``z`` the output layer's net inputs (logits), ``t`` the targets,
    ``act`` the output activation.

    * ``squared_error``: ``E = sum_k 1/2 (t_k - y_k)^2``; ``delta_k = (y_k - t_k) f'(y_k)``, or
      for a softmax output (whose Jacobian is ``dy_k/dz_j = y_k ([k == j] - y_j)``)
      ``delta_k = y_k (g_k - sum_j g_j y_j)`` with ``g = y - t``.
    * ``cross_entropy`` (softmax): ``E = sum_k t_k (lse - z_k)`` with
      ``lse = log sum_k e^z_k = m + log sum_k e^(z_k - m)``, ``m = max z``; ``delta = y - t``.
    * ``binary_cross_entropy`` (sigmoid): ``E = sum_k softplus(z_k) - t_k z_k``
      (= ``-[t log y + (1 - t) log(1 - y)]``); ``delta = y - t``.
    * ``poisson`` (exp): ``E = sum_k poisson_term(z_k, t_k)``
      (= ``t log(t / y) - t + y``, the half Poisson deviance); ``delta = y - t``.
    """
    n_out = len(y)
    E = 0.0
    if loss == "cross_entropy":
        m = z[0]
        for k in range(1, n_out):
            if z[k] > m:
                m = z[k]
        s = 0.0
        for k in range(n_out):
            s += math.exp(z[k] - m)
        lse = m + math.log(s)
        for k in range(n_out):
            E += t[k] * (lse - z[k])
    elif loss == "binary_cross_entropy":
        for k in range(n_out):
            E += softplus(z[k]) - t[k] * z[k]
    elif loss == "poisson":
        for k in range(n_out):
            E += poisson_term(z[k], t[k])
    else:
        for k in range(n_out):
            diff = t[k] - y[k]
            E += 0.5 * diff * diff

    if loss != "squared_error":
        delta = [y[k] - t[k] for k in range(n_out)]
    elif act == "softmax":
        g = [y[k] - t[k] for k in range(n_out)]
        dot = 0.0
        for k in range(n_out):
            dot += g[k] * y[k]
        delta = [y[k] * (g[k] - dot) for k in range(n_out)]
    else:
        delta = [(y[k] - t[k]) * activation_derivative(act, y[k], slope) for k in range(n_out)]
    return E, delta


# --------------------------------------------------------------------------------------------
# Random numbers
# --------------------------------------------------------------------------------------------

def _check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` if it is an int in [0, 2**64) (not a bool); else raise ``ValueError``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"{name} must be None or an int in [0, 2**64), got {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= MASK64:
        raise ValueError(f"{name} must be None or an int in [0, 2**64), got {seed}")
    return seed


class SplitMix64:
    """SplitMix64 (Steele, Lea & Flood 2014): cprop's platform-independent random generator.

    The state is one 64-bit unsigned integer; Python ints reproduce C's uint64_t arithmetic
    exactly by masking with :data:`MASK64` after each addition and multiplication.
    """

    GAMMA = 0x9E3779B97F4A7C15
    MUL1 = 0xBF58476D1CE4E5B9
    MUL2 = 0x94D049BB133111EB

    def __init__(self, seed: int) -> None:
        self.state: int = _check_seed(seed)

    def next(self) -> int:
        """Advance the state and return the next 64-bit output."""
        self.state = (self.state + self.GAMMA) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * self.MUL1) & MASK64
        z = ((z ^ (z >> 27)) * self.MUL2) & MASK64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        """A double in [0, 1): the top 53 bits of :meth:`next` times 2**-53 (exact, no rounding)."""
        return (self.next() >> 11) * 2.0 ** -53

    def normal(self) -> float:
        """A standard normal draw by Box-Muller from two uniforms (u1 first):
        ``sqrt(-2 log(1 - u1)) cos(2 pi u2)`` (``1 - u1 > 0``, so the log is finite)."""
        u1 = self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(TWO_PI * u2)

    def shuffled_order(self, n: int) -> list[int]:
        """A fresh Fisher-Yates shuffle of ``0, 1, ..., n-1``.

        For i from n-1 down to 1: j = next() mod (i + 1), swap entries i and j.
        """
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.next() % (i + 1)
            order[i], order[j] = order[j], order[i]
        return order

    def __repr__(self) -> str:
        return f"SplitMix64(state={self.state:#018x})"


# --------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------

class OptimizerOptions:
    """An optimizer and its options (the learning rate is given per step).

    The state it needs lives on the network as one flat list of ``slots`` vectors of
    ``n_params`` values: SGD with momentum [velocity], Adam and AdamW [m, v], Rprop [previous
    gradient, step size]; plain SGD has none.
    """

    def __init__(self, name: str = "sgd", momentum: float = 0.0, nesterov: bool = False,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 alpha: float = 0.0) -> None:
        self.name = name
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.alpha = alpha

    @property
    def slots(self) -> int:
        """How many n_params-long state vectors this optimizer keeps."""
        if self.name == "sgd":
            return 1 if self.momentum != 0 else 0
        return 2

    @property
    def state_key(self) -> tuple:
        """What must stay the same for the state to carry over (alpha may change freely)."""
        if self.name == "sgd":
            return ("sgd", self.momentum, self.nesterov)
        if self.name in ("adam", "adamw"):
            return (self.name, self.beta1, self.beta2, self.eps)
        return ("rprop",)

    def fresh_state(self, n_params: int, lr: float) -> Vector:
        """Zeros; Rprop's step sizes start at ``lr`` (as torch.optim.Rprop)."""
        state = [0.0] * (self.slots * n_params)
        if self.name == "rprop":
            state[n_params:] = [lr] * n_params
        return state

    def __repr__(self) -> str:
        return (f"OptimizerOptions({self.name!r}, momentum={self.momentum}, "
                f"nesterov={self.nesterov}, beta1={self.beta1}, beta2={self.beta2}, "
                f"eps={self.eps}, alpha={self.alpha})")


def _check_number(value: Any, name: str, low: float, high: float, low_open: bool = False,
                  high_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (
        v < high if high_open else v <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return v


def check_optimizer(optimizer: str = "sgd", momentum: float = 0.0, nesterov: bool = False,
                    beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                    alpha: float = 0.0) -> OptimizerOptions:
    """Check the optimizer options as :class:`cprop.MLP` does; return them."""
    optimizer = _check_name(optimizer, OPTIMIZERS, "optimizer")
    momentum = _check_number(momentum, "momentum", 0.0, 1.0)
    nesterov = _check_bool(nesterov, "nesterov")
    if nesterov and (optimizer != "sgd" or momentum == 0):
        raise ValueError("nesterov: Nesterov momentum needs optimizer='sgd' and momentum > 0")
    if momentum != 0 and optimizer != "sgd":
        raise ValueError(f"momentum: only optimizer='sgd' takes momentum, got {optimizer!r}")
    beta1 = _check_number(beta1, "beta1", 0.0, 1.0)
    beta2 = _check_number(beta2, "beta2", 0.0, 1.0)
    eps = _check_number(eps, "eps", 0.0, math.inf, low_open=True)
    alpha = _check_number(alpha, "alpha", 0.0, math.inf)
    return OptimizerOptions(optimizer, momentum, nesterov, beta1, beta2, eps, alpha)


# One parameter's update under each optimizer. Each returns the new value of parameter ``k``
# (``p``, gradient ``g`` -- which for weights already includes ``alpha * p``) and, when
# ``commit`` is true, writes that parameter's new optimizer state into ``state`` (slot s of
# parameter k is ``state[s * n + k]``). ``optimizer_step`` calls them twice: once to check that
# every new value is finite, then to apply.

def sgd_value(opt: OptimizerOptions, p: float, g: float, state: Vector, k: int, lr: float,
              commit: bool) -> float:
    """torch.optim.SGD, dampening 0: ``buf <- momentum buf + g`` (buf starts at 0, which gives
    torch's ``buf = g`` on the first step exactly); the step is ``buf``, or
    ``g + momentum buf`` with Nesterov; ``p <- p - lr step``. Without momentum ``p - lr g``."""
    if opt.slots == 0:
        return p - lr * g
    buf = opt.momentum * state[k] + g
    if commit:
        state[k] = buf
    if opt.nesterov:
        step = g + opt.momentum * buf
    else:
        step = buf
    return p - lr * step


def adam_value(opt: OptimizerOptions, p: float, g: float, state: Vector, k: int, n: int,
               step_size: float, bias_correction2_sqrt: float, commit: bool) -> float:
    """torch.optim.Adam: ``m <- m + (1 - beta1)(g - m)`` (torch's lerp),
    ``v <- beta2 v + (1 - beta2) g g``,
    ``p <- p - step_size m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``,
    ``step_size = lr / (1 - beta1^t)``."""
    m, v = state[k], state[n + k]
    m_new = m + (1.0 - opt.beta1) * (g - m)
    v_new = v * opt.beta2 + (1.0 - opt.beta2) * g * g
    if commit:
        state[k] = m_new
        state[n + k] = v_new
    denom = math.sqrt(v_new) / bias_correction2_sqrt + opt.eps
    return p - step_size * (m_new / denom)


def adamw_decayed(p: float, lr: float, alpha: float) -> float:
    """torch.optim.AdamW's decoupled weight decay of a weight, before Adam's step:
    ``p (1 - lr alpha)`` (the factor computed first, as torch's ``param.mul_(1 - lr * wd)``)."""
    return p * (1.0 - lr * alpha)


def rprop_value(opt: OptimizerOptions, p: float, g: float, state: Vector, k: int, n: int,
                commit: bool) -> float:
    """torch.optim.Rprop (iRprop-): the step size grows by eta_plus while the gradient keeps its
    sign and shrinks by eta_minus when it flips (clamped to [step_min, step_max]); after a flip
    the gradient counts as 0: no move, and no sign to compare next time.
    ``p <- p - sign(g) step``. State: [previous gradient, step size]."""
    eta_minus, eta_plus = RPROP_ETAS
    step_min, step_max = RPROP_STEP_SIZES
    prev, step_size = state[k], state[n + k]
    sign_product = g * prev
    if sign_product > 0:
        factor = eta_plus
    elif sign_product < 0:
        factor = eta_minus
        g = 0.0
    else:
        factor = 1.0
    step = step_size * factor
    if step < step_min:
        step = step_min
    if step > step_max:
        step = step_max
    if commit:
        state[n + k] = step
        state[k] = g
    direction = 1.0 if g > 0 else (-1.0 if g < 0 else 0.0)
    return p - direction * step


def param_value(opt: OptimizerOptions, k: int, n: int, p: float, g: float, state: Vector,
                lr: float, step_size: float, bc2_sqrt: float, commit: bool) -> float:
    """The new value of parameter ``k`` under ``opt`` (see the rules above; AdamW's step is
    Adam's, on the decayed weight)."""
    if opt.name in ("adam", "adamw"):
        return adam_value(opt, p, g, state, k, n, step_size, bc2_sqrt, commit)
    if opt.name == "rprop":
        return rprop_value(opt, p, g, state, k, n, commit)
    return sgd_value(opt, p, g, state, k, lr, commit)


# --------------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------------

def schedule_lr(name: str, lr: float, epoch: int, epochs: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based) of a fit of ``epochs`` epochs.

    ``constant``: lr; ``invscaling``: ``lr / (e + 1) ** 0.5``; ``step``:
    ``lr * 0.5 ** (e // 10)``; ``cosine``: ``lr_min + (lr - lr_min)(1 + cos(pi e / E)) / 2``
    with ``lr_min = 0``.
    """
    if name == "constant":
        return lr
    if name == "invscaling":
        power_t = 0.5
        return lr / (epoch + 1) ** power_t
    if name == "step":
        step_size, gamma = 10, 0.5
        return lr * gamma ** (epoch // step_size)
    if name == "cosine":
        lr_min = 0.0
        return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2
    raise ValueError(f"lr_schedule must be one of {SCHEDULES}, got {name!r}")


# --------------------------------------------------------------------------------------------
# Training history
# --------------------------------------------------------------------------------------------

class History:
    """What :meth:`MLP.fit` returns.

    ``loss[e]`` is the mean over the samples of the loss computed during epoch ``e`` (each
    batch's mean loss before its update, weighted by the batch's size); ``val_loss[e]`` the mean
    loss on the validation data after epoch ``e`` (empty without validation data); ``lr[e]``
    the epoch's learning rate. ``stop_reason`` is ``"max_epochs"``, ``"early_stopping"`` or
    ``"callback"``; ``best_epoch`` (0-based) the epoch whose parameters early stopping restored,
    else None. ``epochs`` is the number of epochs run.
    """

    def __init__(self, loss: Optional[list[float]] = None,
                 val_loss: Optional[list[float]] = None, lr: Optional[list[float]] = None,
                 stop_reason: str = "max_epochs", best_epoch: Optional[int] = None) -> None:
        self.loss: list[float] = [] if loss is None else list(loss)
        self.val_loss: list[float] = [] if val_loss is None else list(val_loss)
        self.lr: list[float] = [] if lr is None else list(lr)
        self.stop_reason: str = stop_reason
        self.best_epoch: Optional[int] = best_epoch

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def __repr__(self) -> str:
        return (f"History(epochs={self.epochs}, loss={self.loss!r}, val_loss={self.val_loss!r}, "
                f"lr={self.lr!r}, stop_reason={self.stop_reason!r}, "
                f"best_epoch={self.best_epoch!r})")


# --------------------------------------------------------------------------------------------
# Argument checking
# --------------------------------------------------------------------------------------------

def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_sequence(v: Any) -> bool:
    if isinstance(v, (str, bytes)):
        return False
    try:
        len(v)
        iter(v)
    except TypeError:
        return False
    return True


def _as_rows(data: Any, width: int, name: str) -> tuple[Matrix, bool]:
    """Convert ``data`` (one sample, or a list of samples) to a list of rows of floats.

    Returns ``(rows, single)`` where ``single`` says that ``data`` was one sample (a flat list of
    numbers). Every row must have ``width`` finite numbers.
    """
    if not _is_sequence(data):
        raise TypeError(
            f"{name} must be a list of samples (a list of lists of numbers) or one sample "
            f"(a list of numbers), got {type(data).__name__}"
        )
    items = list(data)
    if not items:
        raise ValueError(f"{name} is empty; it needs at least one sample")
    if all(_is_number(v) for v in items):
        single, raw_rows = True, [items]
    elif all(_is_sequence(v) for v in items):
        single, raw_rows = False, [list(v) for v in items]
    else:
        raise TypeError(
            f"{name} must be a list of samples (a list of lists of numbers) or one sample "
            f"(a list of numbers), not a mixture of numbers and lists"
        )
    rows: Matrix = []
    for r, raw in enumerate(raw_rows):
        where = f"{name}" if single else f"{name}[{r}]"
        if len(raw) != width:
            raise ValueError(f"{where} has {len(raw)} values, expected {width}")
        row = []
        for k, v in enumerate(raw):
            if not _is_number(v):
                raise TypeError(f"{where}[{k}] must be a number, got {type(v).__name__}")
            v = float(v)
            if not math.isfinite(v):
                raise ValueError(f"{where}[{k}] is {v}; {name} must be finite")
            row.append(v)
        rows.append(row)
    return rows, single


def _check_weights(sample_weight: Any, n: int, name: str = "sample_weight") -> Vector:
    """One weight per sample, as floats: finite, >= 0, not all 0, their sum finite."""
    if not _is_sequence(sample_weight):
        raise TypeError(f"{name} must be a list of {n} numbers, got "
                        f"{type(sample_weight).__name__}")
    weights = list(sample_weight)
    if len(weights) != n:
        raise ValueError(f"{name} has {len(weights)} values, expected {n} (one per sample)")
    out = []
    for k, w in enumerate(weights):
        if not _is_number(w):
            raise TypeError(f"{name}[{k}] must be a number, got {type(w).__name__}")
        w = float(w)
        if not math.isfinite(w):
            raise ValueError(f"{name}[{k}] is {w}; {name} must be finite")
        if w < 0:
            raise ValueError(f"{name}[{k}] is {w}; weights must be >= 0")
        out.append(w)
    try:
        total = math.fsum(out)
    except OverflowError:
        total = math.inf
    if total == 0:
        raise ValueError(f"{name}: the weights are all 0; at least one must be positive")
    if not math.isfinite(total):
        raise ValueError(f"{name}: the weights' sum overflows")
    return out


def _weight_sum(weights: Sequence[float]) -> float:
    """The weights added in order from 0.0 (as the kernel adds a batch's weights)."""
    s = 0.0
    for w in weights:
        s += w
    return s


def _check_name(value: Any, choices: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def _check_lr(lr: Any, name: str = "lr") -> float:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"{name} must be a finite number > 0, got {lr!r}")
    lr = float(lr)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {lr}")
    return lr


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------

class MLP:
    """A fully connected feed-forward network trained by backpropagation.

    ``layer_sizes`` lists the widths, input first: ``[2, 2, 2]`` is 2 inputs, one hidden layer
    of 2 units and 2 outputs. ``hidden`` is the activation of every hidden layer (one of
    :data:`HIDDEN`), ``output`` that of the last layer (one of :data:`OUTPUT`); ``loss`` one of
    :data:`LOSSES` (``cross_entropy`` needs a softmax output, ``binary_cross_entropy`` a
    sigmoid one). ``seed`` (an int in [0, 2**64), or None for one drawn from the OS and kept in
    ``self.seed``) seeds the generator that draws the initial weights and then every epoch's
    shuffle. With ``train_biases=False`` training leaves the biases fixed. ``negative_slope`` is
    leaky_relu's slope for z <= 0. ``init`` names the initial weights' distribution (one of
    :data:`INITS`; biases start at 0) or gives the initial parameters as a sequence of
    ``(W, b)`` pairs (nested lists shaped ``(n_in, n_out)`` and ``(n_out,)``).

    ``weights`` and ``biases`` are plain nested lists; reassign or mutate them freely. The
    optimizer state is :attr:`opt_state` (a flat list, in the layout of :meth:`params_flat`, per
    slot) with the step counter :attr:`opt_steps`, for :attr:`optimizer`.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        hidden: str = "sigmoid",
        output: str = "sigmoid",
        loss: str = "squared_error",
        dtype: str = "float64",
        seed: Optional[int] = None,
        train_biases: bool = True,
        negative_slope: float = 0.01,
        init: Union[str, Sequence] = "glorot_uniform",
    ) -> None:
        if not _is_sequence(layer_sizes):
            raise TypeError(
                f"layer_sizes must be a sequence of ints such as [2, 2, 2], got {layer_sizes!r}"
            )
        sizes = list(layer_sizes)
        if len(sizes) < 2:
            raise ValueError(
                f"layer_sizes needs at least 2 entries (inputs and outputs), got {sizes!r}"
            )
        for k, width in enumerate(sizes):
            if isinstance(width, bool) or not isinstance(width, numbers.Integral):
                raise TypeError(f"layer_sizes[{k}] must be an int >= 1, got {width!r}")
            if width < 1:
                raise ValueError(f"layer_sizes[{k}] must be an int >= 1, got {width}")
        self.layer_sizes: list[int] = [int(w) for w in sizes]
        self.hidden: str = _check_name(hidden, HIDDEN, "hidden")
        self.output: str = _check_name(output, OUTPUT, "output")
        self.loss_name: str = _check_name(loss, LOSSES, "loss")
        needed = LOSS_OUTPUT[loss]
        if needed is not None and output != needed:
            raise ValueError(f"loss {loss!r} needs output={needed!r}, got output={output!r}")
        if output == "softmax" and self.layer_sizes[-1] < 2:
            raise ValueError("output 'softmax' needs at least 2 outputs (layer_sizes[-1] >= 2)")
        if (not _is_number(negative_slope) or not math.isfinite(negative_slope)
                or negative_slope < 0):
            raise ValueError(f"negative_slope must be a finite number >= 0, "
                             f"got {negative_slope!r}")
        self.negative_slope: float = float(negative_slope)
        self.dtype: str = _check_name(dtype, DTYPES, "dtype")
        if seed is not None:
            seed = _check_seed(seed)
        self.train_biases: bool = _check_bool(train_biases, "train_biases")
        user_init = not isinstance(init, str)
        if not user_init:
            _check_name(init, INITS, "init")
        self.init: str = "user" if user_init else init
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        self.seed: int = seed
        self.rng = SplitMix64(self.seed)

        if user_init:
            self.weights, self.biases = self._initial_params_from(init)
        else:
            self.weights, self.biases = self._initial_params(init)
        self.reset_optimizer(OptimizerOptions())

    def _initial_params(self, kind: str) -> tuple[list[Matrix], list[Vector]]:
        """Random weights, layer by layer, row by row of each (n_in, n_out) matrix; zero biases.

        glorot_uniform ``(2u - 1) sqrt(6 / (n_in + n_out))``;
        he_uniform ``(2u - 1) sqrt(6 / n_in)``;
        glorot_normal ``N(0, 1) sqrt(2 / (n_in + n_out))``; he_normal ``N(0, 1) sqrt(2 / n_in)``,
        a normal draw taking two uniforms (:meth:`SplitMix64.normal`).
        """
        weights: list[Matrix] = []
        biases: list[Vector] = []
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            if kind == "glorot_uniform":
                scale = math.sqrt(6.0 / (n_in + n_out))
            elif kind == "he_uniform":
                scale = math.sqrt(6.0 / n_in)
            elif kind == "glorot_normal":
                scale = math.sqrt(2.0 / (n_in + n_out))
            else:
                scale = math.sqrt(2.0 / n_in)
            W = []
            for _i in range(n_in):
                row = []
                for _j in range(n_out):
                    if kind in ("glorot_uniform", "he_uniform"):
                        row.append((2.0 * self.rng.uniform() - 1.0) * scale)
                    else:
                        row.append(self.rng.normal() * scale)
                W.append(row)
            weights.append(W)
            biases.append([0.0] * n_out)
        return weights, biases

    def _initial_params_from(self, pairs: Any) -> tuple[list[Matrix], list[Vector]]:
        """The user's initial parameters: one ``(W, b)`` pair per layer, copied as floats."""
        if not _is_sequence(pairs):
            raise TypeError(f"init must be a name or a sequence of (W, b) pairs, "
                            f"got {type(pairs).__name__}")
        pairs = list(pairs)
        L = self.n_layers
        if len(pairs) != L:
            raise ValueError(f"init: expected {L} (W, b) pairs, one per layer, got {len(pairs)}")
        weights: list[Matrix] = []
        biases: list[Vector] = []
        for l, pair in enumerate(pairs):
            if not _is_sequence(pair) or len(pair) != 2:
                raise ValueError(f"init[{l}]: expected a (W, b) pair")
            W, b = pair
            n_in, n_out = self.layer_sizes[l], self.layer_sizes[l + 1]
            if (not _is_sequence(W) or len(W) != n_in
                    or any(not _is_sequence(row) for row in W)):
                raise ValueError(f"init[{l}][0] must have shape ({n_in}, {n_out})")
            weights.append([_as_rows(row, n_out, f"init[{l}][0][{i}]")[0][0]
                            for i, row in enumerate(W)])
            biases.append(_as_rows(b, n_out, f"init[{l}][1]")[0][0])
        return weights, biases

    # ---- structure ------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """The number of weight layers L (``len(layer_sizes) - 1``)."""
        return len(self.layer_sizes) - 1

    @property
    def n_params(self) -> int:
        """The number of parameters: every weight and every bias."""
        return sum(n_in * n_out + n_out
                   for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]))

    @property
    def activations(self) -> list[str]:
        """The activation of each layer, input side first."""
        return [self.layer_activation(l) for l in range(self.n_layers)]

    def layer_activation(self, l: int) -> str:
        """The activation of weight layer ``l``: ``hidden`` below the top, ``output`` at the top."""
        return self.output if l == self.n_layers - 1 else self.hidden

    def _offsets(self) -> list[tuple[int, int, int]]:
        """Per layer, where its weights and biases sit in the flat layout: ``(w_off, b_off,
        n_out)``; weights are ``[w_off, b_off)``, biases ``[b_off, b_off + n_out)``."""
        offsets, pos = [], 0
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            offsets.append((pos, pos + n_in * n_out, n_out))
            pos += n_in * n_out + n_out
        return offsets

    def _check_params(self) -> None:
        """Check that ``weights``/``biases`` (which users may reassign) still fit the layout and
        hold finite numbers."""
        L = self.n_layers
        if not _is_sequence(self.weights) or len(self.weights) != L:
            raise ValueError(f"weights must be a list of {L} matrices, one per layer")
        if not _is_sequence(self.biases) or len(self.biases) != L:
            raise ValueError(f"biases must be a list of {L} vectors, one per layer")
        for l in range(L):
            n_in, n_out = self.layer_sizes[l], self.layer_sizes[l + 1]
            W, b = self.weights[l], self.biases[l]
            if (not _is_sequence(W) or len(W) != n_in
                    or any(not _is_sequence(row) or len(row) != n_out for row in W)):
                raise ValueError(f"weights[{l}] must have shape ({n_in}, {n_out})")
            if not _is_sequence(b) or len(b) != n_out:
                raise ValueError(f"biases[{l}] must have length {n_out}")
            for v in [w for row in W for w in row] + list(b):
                if not _is_number(v) or not math.isfinite(v):
                    raise ValueError(f"layer {l}: the parameters must be finite numbers, "
                                     f"got {v!r}")

    # ---- flat parameter vector --------------------------------------------------------------

    def params_flat(self) -> list[float]:
        """All parameters in the compiled layout: per layer, W row-major (i outer, j inner),
        then b."""
        self._check_params()
        flat: list[float] = []
        for W, b in zip(self.weights, self.biases):
            for row in W:
                flat.extend(float(w) for w in row)
            flat.extend(float(v) for v in b)
        return flat

    def set_params_flat(self, values: Sequence[float]) -> None:
        """The inverse of :meth:`params_flat`: replace every weight and bias from a flat list."""
        if not _is_sequence(values):
            raise TypeError(f"values must be a sequence of {self.n_params} numbers")
        values = list(values)
        if len(values) != self.n_params:
            raise ValueError(f"values has {len(values)} entries, expected {self.n_params}")
        for k, v in enumerate(values):
            if not _is_number(v):
                raise TypeError(f"values[{k}] must be a number, got {type(v).__name__}")
        pos = 0
        weights: list[Matrix] = []
        biases: list[Vector] = []
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            W = []
            for _i in range(n_in):
                W.append([float(v) for v in values[pos:pos + n_out]])
                pos += n_out
            weights.append(W)
            biases.append([float(v) for v in values[pos:pos + n_out]])
            pos += n_out
        self.weights, self.biases = weights, biases

    def _write_params_flat(self, values: Vector) -> None:
        """Write a flat parameter list back into ``weights``/``biases`` in place."""
        pos = 0
        for W, b in zip(self.weights, self.biases):
            for row in W:
                row[:] = values[pos:pos + len(row)]
                pos += len(row)
            b[:] = values[pos:pos + len(b)]
            pos += len(b)

    # ---- forward pass -----------------------------------------------------------------------

    def _dense(self, a: Vector, W: Matrix, b: Vector, act: str) -> tuple[Vector, Vector]:
        """One layer for one sample: ``z_j = b_j + a_0 W[0][j] + a_1 W[1][j] + ...`` (added
        left to right, starting from the bias), then ``f(z)``. Returns ``(z, f(z))``."""
        z = []
        for j in range(len(b)):
            z_j = float(b[j])
            for i in range(len(a)):
                z_j += a[i] * W[i][j]
            z.append(z_j)
        if act == "softmax":
            return z, softmax(z)
        return z, [activation(act, z_j, self.negative_slope) for z_j in z]

    def _forward(self, rows: Matrix) -> tuple[list[Matrix], Matrix]:
        """Every layer's activations -- ``acts[0]`` is the input rows, ``acts[L]`` the outputs --
        and the output layer's net inputs (logits), which the cross-entropy losses use."""
        acts = [rows]
        logits: Matrix = []
        for l in range(self.n_layers):
            W, b, act = self.weights[l], self.biases[l], self.layer_activation(l)
            layer = [self._dense(a, W, b, act) for a in acts[l]]
            acts.append([a_out for _z, a_out in layer])
            logits = [z for z, _a_out in layer]
        return acts, logits

    def forward(self, X: Any) -> Union[Matrix, Vector]:
        """The network's outputs: a list of rows for a list of samples, a list for one sample."""
        self._check_params()
        rows, single = _as_rows(X, self.layer_sizes[0], "X")
        Y = self._forward(rows)[0][-1]
        return Y[0] if single else Y

    # ---- loss and gradients -----------------------------------------------------------------

    def _targets(self, T: Any, n: int, single: bool, name: str) -> Matrix:
        """The target rows for ``n`` samples.

        Accepted: one row per sample; one row for one sample; a flat list of ``n`` numbers when
        there is one output; and for ``cross_entropy``, integer class labels (one per sample, or
        one int for one sample), which become one-hot rows. ``cross_entropy`` and
        ``binary_cross_entropy`` targets must lie in [0, 1], and ``cross_entropy`` rows must
        sum to 1 (to 1e-6; 1e-5 for float32).
        """
        n_out = self.layer_sizes[-1]
        kind = LOSS_TARGETS[self.loss_name]
        if kind == "distribution":
            labels = None
            if single and isinstance(T, numbers.Integral) and not isinstance(T, bool):
                labels = [T]
            elif (not single and _is_sequence(T) and len(T) > 0
                  and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                          for v in T)):
                labels = list(T)
            elif (single and _is_number(T)) or isinstance(T, bool) or (
                    not single and _is_sequence(T) and len(T) == n
                    and all(_is_number(v) or isinstance(v, bool) for v in T)):
                raise ValueError(f"{name}: {self.loss_name} class labels must be integers in "
                                 f"[0, {n_out}), got {T!r}; or give one-hot / probability "
                                 f"rows")
            if labels is not None:
                if len(labels) != n:
                    raise ValueError(f"{name}: expected {n} class labels to match the inputs, "
                                     f"got {len(labels)}")
                for label in labels:
                    if not 0 <= label < n_out:
                        raise ValueError(f"{name}: class labels must be integers in "
                                         f"[0, {n_out}), got {label}")
                return [[1.0 if k == label else 0.0 for k in range(n_out)] for label in labels]
        if (n_out == 1 and not single and _is_sequence(T) and len(T) == n
                and all(_is_number(v) for v in T)):
            T = [[v] for v in T]
        targets, t_single = _as_rows(T, n_out, name)
        if len(targets) != n:
            raise ValueError(f"X has {n} samples but {name} has {len(targets)}")
        if kind in ("unit", "distribution"):
            for row in targets:
                for v in row:
                    if not 0.0 <= v <= 1.0:
                        raise ValueError(f"{name}: {self.loss_name} targets must lie in "
                                         f"[0, 1], got {v}")
        if kind == "nonnegative":
            for row in targets:
                for v in row:
                    if v < 0:
                        raise ValueError(f"{name}: {self.loss_name} targets must be >= 0, "
                                         f"got {v}")
        if kind == "distribution":
            # delta = y - t is the gradient only for a target row that is a probability
            # distribution (a row summing to s has gradient s y - t), so rows must sum to 1.
            tolerance = 1e-6 if self.dtype == "float64" else 1e-5
            for r, row in enumerate(targets):
                if abs(math.fsum(row) - 1.0) > tolerance:
                    raise ValueError(f"{name}: {self.loss_name} targets must be one-hot or "
                                     f"probability rows summing to 1 (or integer class "
                                     f"labels); row {r} sums to {math.fsum(row):.9g}")
        return targets

    def _batch(self, X: Any, T: Any, name_x: str = "X",
               name_t: str = "T") -> tuple[Matrix, Matrix]:
        self._check_params()
        rows, single = _as_rows(X, self.layer_sizes[0], name_x)
        return rows, self._targets(T, len(rows), single, name_t)

    def _loss_and_gradients(
        self, rows: Matrix, targets: Matrix, want_grad: bool = True,
        weights: Optional[Vector] = None,
    ) -> tuple[float, Optional[list[Matrix]], Optional[list[Vector]]]:
        """The mean loss over the batch and (if ``want_grad``) the gradient of that mean loss.

        With ``weights`` (one per row, summing to more than 0): the weighted mean
        ``sum_r w_r E_r / sum_r w_r`` and its gradient -- each row's output delta times its
        weight, the sums divided by the weights' sum (scikit-learn's ``_backprop``).

        The same operations in the same order as the kernel ``batch_gradient``.
        """
        n, L = len(rows), self.n_layers
        acts, logits = self._forward(rows)
        out_act = self.layer_activation(L - 1)

        # Output layer: each sample's loss (added in sample order) and delta = dE/dz.
        total = 0.0
        delta: Matrix = []
        for r, (y, z, t) in enumerate(zip(acts[L], logits, targets)):
            sample_loss, d = output_delta(self.loss_name, out_act, y, z, t, self.negative_slope)
            if weights is None:
                total += sample_loss
            else:
                w = weights[r]
                total += w * sample_loss
                d = [d_k * w for d_k in d]
            delta.append(d)
        divisor = n if weights is None else _weight_sum(weights)
        mean_loss = total / divisor
        if not want_grad:
            return mean_loss, None, None

        grad_W = [[[0.0] * n_out for _i in range(n_in)]
                  for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:])]
        grad_b = [[0.0] * n_out for n_out in self.layer_sizes[1:]]

        # Backward, top layer first. Per sample (in batch order):
        # dE/dW[i][j] += a_i delta_j, dE/db_j += delta_j, and, unless this is the first layer,
        # the delta of the layer below: delta_i = (sum_j W[i][j] delta_j) f'(a_i).
        for l in range(L - 1, -1, -1):
            W = self.weights[l]
            n_in, n_out = self.layer_sizes[l], self.layer_sizes[l + 1]
            gW, gb = grad_W[l], grad_b[l]
            below = self.layer_activation(l - 1) if l > 0 else None
            delta_in: Matrix = []
            for r in range(n):
                a, d = acts[l][r], delta[r]
                for i in range(n_in):
                    for j in range(n_out):
                        gW[i][j] += a[i] * d[j]
                for j in range(n_out):
                    gb[j] += d[j]
                if below is not None:
                    d_in = []
                    for i in range(n_in):
                        s = 0.0
                        for j in range(n_out):
                            s += W[i][j] * d[j]
                        d_in.append(s * activation_derivative(below, a[i], self.negative_slope))
                    delta_in.append(d_in)
            delta = delta_in

        # Sums over the samples -> gradient of the mean loss: one division per entry.
        grad_W = [[[g / divisor for g in row] for row in gW] for gW in grad_W]
        grad_b = [[g / divisor for g in gb] for gb in grad_b]
        return mean_loss, grad_W, grad_b

    def _loss_and_gradient_flat(self, rows: Matrix, targets: Matrix,
                                weights: Optional[Vector] = None) -> tuple[float, Vector]:
        """The mean loss and its gradient in the flat layout of :meth:`params_flat`."""
        loss, grad_W, grad_b = self._loss_and_gradients(rows, targets, weights=weights)
        grad: Vector = []
        for gW, gb in zip(grad_W, grad_b):
            for row in gW:
                grad.extend(row)
            grad.extend(gb)
        return loss, grad

    def _sample_weights(self, sample_weight: Any, n: int) -> Optional[Vector]:
        return None if sample_weight is None else _check_weights(sample_weight, n)

    def loss(self, X: Any, T: Any, sample_weight: Any = None) -> float:
        """The mean over the samples of the per-sample loss; with ``sample_weight`` (one
        weight >= 0 per sample, not all 0) the weighted mean ``sum w_i E_i / sum w_i``."""
        rows, targets = self._batch(X, T)
        weights = self._sample_weights(sample_weight, len(rows))
        return self._loss_and_gradients(rows, targets, want_grad=False, weights=weights)[0]

    def gradients(self, X: Any, T: Any,
                  sample_weight: Any = None) -> tuple[list[Matrix], list[Vector]]:
        """``(grad_weights, grad_biases)``: the gradient of :meth:`loss` with respect to
        ``weights`` and ``biases``, shaped like them (without the L2 term of ``alpha``, which
        is a training option, not part of the loss)."""
        rows, targets = self._batch(X, T)
        weights = self._sample_weights(sample_weight, len(rows))
        _, grad_W, grad_b = self._loss_and_gradients(rows, targets, weights=weights)
        return grad_W, grad_b

    # ---- optimizer --------------------------------------------------------------------------

    @property
    def optimizer(self) -> OptimizerOptions:
        """The optimizer (and options) whose state the network currently holds."""
        return self._opt

    def reset_optimizer(self, opt: Optional[OptimizerOptions] = None, lr: float = 0.0) -> None:
        """Forget the optimizer state (start fresh for ``opt``, by default the current one)."""
        self._opt: OptimizerOptions = self._opt if opt is None else opt
        self.opt_state: Vector = self._opt.fresh_state(self.n_params, lr)
        self.opt_steps: int = 0

    def _use_optimizer(self, opt: OptimizerOptions, lr: float) -> None:
        """Keep the state while the optimizer and its options stay the same (alpha may change),
        else start fresh. Rprop's step sizes start at the lr of the first step that is taken."""
        if opt.state_key != self._opt.state_key:
            self.reset_optimizer(opt, lr)
        else:
            self._opt = opt
            if opt.name == "rprop" and self.opt_steps == 0:
                n = self.n_params
                self.opt_state[n:] = [lr] * n

    def _optimizer_step(self, grad: Vector, lr: float) -> bool:
        """One update of every trained parameter (weights; biases if ``train_biases``) from the
        mean gradient ``grad`` (flat), with L2 ``alpha * W`` added to the weights' gradient
        (AdamW: each weight decayed by :func:`adamw_decayed` before Adam's step instead).

        As the kernel ``optimizer_step``: two passes; the first only checks that every new
        value is finite, the second (the same arithmetic) writes the parameters and the state.
        Returns False, changing nothing, if a value would be inf/NaN; the step counter counts
        the steps taken.
        """
        opt, state, n = self._opt, self.opt_state, self.n_params
        params = self.params_flat()
        new_params = list(params)
        step_size = bc2_sqrt = 0.0
        if opt.name in ("adam", "adamw"):
            t = float(self.opt_steps + 1)
            step_size = lr / (1.0 - opt.beta1 ** t)
            bc2_sqrt = math.sqrt(1.0 - opt.beta2 ** t)
        for commit in (False, True):
            for w_off, b_off, n_out in self._offsets():
                w_end = b_off
                b_end = b_off + n_out if self.train_biases else w_end
                for k in range(w_off, b_end):
                    g, p = grad[k], params[k]
                    if k < w_end and opt.alpha != 0:
                        if opt.name == "adamw":
                            p = adamw_decayed(p, lr, opt.alpha)
                        else:
                            g = g + opt.alpha * p
                    new_params[k] = param_value(opt, k, n, p, g, state, lr, step_size,
                                                bc2_sqrt, commit)
            if not commit and not all(math.isfinite(v) for v in new_params):
                return False
        self._write_params_flat(new_params)
        self.opt_steps += 1
        return True

    # ---- training ---------------------------------------------------------------------------

    def train_step(self, X: Any, T: Any, lr: float = 0.1, *, optimizer: str = "sgd",
                   momentum: float = 0.0, nesterov: bool = False, beta1: float = 0.9,
                   beta2: float = 0.999, eps: float = 1e-8, alpha: float = 0.0,
                   sample_weight: Any = None) -> float:
        """One optimizer step on the batch ``(X, T)``; returns the mean loss before the step
        (with ``sample_weight``, the weighted mean, and the step follows its gradient).

        The optimizer options are those of :meth:`fit`, and the state is shared with it (if the
        optimizer or its options differ from the state's, the state starts fresh first). If the
        loss is not finite, or the update would make a parameter inf/NaN, raises
        ``FloatingPointError``; the step then changes nothing: not the parameters, not the
        optimizer state or step counter, not which optimizer's state is held.
        """
        rows, targets = self._batch(X, T)
        weights = self._sample_weights(sample_weight, len(rows))
        lr = _check_lr(lr)
        opt = check_optimizer(optimizer, momentum, nesterov, beta1, beta2, eps, alpha)
        previous = (self.optimizer, self.opt_state, self.opt_steps)
        self._use_optimizer(opt, lr)
        batch_loss, grad = self._loss_and_gradient_flat(rows, targets, weights)
        if not math.isfinite(batch_loss):
            self._opt, self.opt_state, self.opt_steps = previous
            raise FloatingPointError(f"train_step: the batch loss is {batch_loss} with lr={lr}; "
                                     f"step not applied")
        if not self._optimizer_step(grad, lr):
            self._opt, self.opt_state, self.opt_steps = previous
            raise FloatingPointError(f"train_step: the update with lr={lr} would make a "
                                     f"parameter inf/NaN; step not applied")
        return batch_loss

    def _split_validation(self, rows: Matrix, targets: Matrix, fraction: float,
                          shuffle: bool) -> tuple[list[int], list[int]]:
        """Which samples to train on and which to hold out: ``ceil(fraction * n)`` samples,
        those at the end of a fresh shuffle drawn from the network's generator if ``shuffle``,
        else the last rows. Both parts keep the samples' original order."""
        n = len(rows)
        n_val = int(math.ceil(fraction * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(f"validation_fraction: {fraction} of {n} samples leaves "
                             f"{n - n_val} to train on and {n_val} to validate; need >= 1 each")
        if shuffle:
            order = self.rng.shuffled_order(n)
            val, train = sorted(order[n - n_val:]), sorted(order[:n - n_val])
        else:
            val, train = list(range(n - n_val, n)), list(range(n - n_val))
        return train, val

    def fit(
        self,
        X: Any,
        T: Any,
        *,
        epochs: int = 1,
        lr: float = 0.1,
        batch_size: int = 1,
        shuffle: bool = True,
        seed: Optional[int] = None,
        optimizer: str = "sgd",
        momentum: float = 0.0,
        nesterov: bool = False,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        alpha: float = 0.0,
        lr_schedule: str = "constant",
        validation_data: Optional[tuple[Any, Any]] = None,
        validation_fraction: float = 0.0,
        early_stopping: bool = False,
        patience: int = 10,
        min_delta: float = 0.0,
        callbacks: Union[Callable, Sequence[Callable]] = (),
        progress: Any = None,
        sample_weight: Any = None,
    ) -> History:
        """Minibatch training for ``epochs`` epochs; returns a :class:`History`.

        ``seed`` (if given) reseeds the network's generator first. With ``validation_fraction``
        that share of the samples is held out (:meth:`_split_validation`, which draws a shuffle
        when ``shuffle``). Each epoch ``e`` takes the learning rate ``schedule_lr(lr_schedule,
        lr, e, epochs)`` and visits the training samples in a fresh shuffled order (or in order
        if ``shuffle`` is False), in batches of ``batch_size`` consecutive entries of that order
        (the last batch may be smaller); each batch takes one optimizer step along the gradient
        of its own mean loss. The optimizer state carries over from earlier calls while the
        optimizer and its options stay the same.

        ``sample_weight`` (one weight >= 0 per sample, not all 0): each batch's loss is its
        weighted mean ``sum w_i E_i / sum w_i`` (scikit-learn's definition), whose gradient the
        step follows; the epoch's loss is still the mean of the batch losses weighted by the
        batches' sizes (scikit-learn's ``loss_curve_``). A batch whose weights sum to 0 raises
        ``ZeroDivisionError`` before its update (as scikit-learn's ``np.average`` does). The
        held-out rows of ``validation_fraction`` take their weights with them, and
        ``validation_data`` may carry a third entry, the validation rows' weights; the
        validation loss is then weighted.

        After each epoch: the validation loss (if there is validation data); early stopping
        (monitoring the validation loss, else the epoch's training loss: an improvement is a
        value ``< best - min_delta``; stop after ``patience`` epochs without one, then restore
        the best epoch's parameters); then each callback ``callback(net, history)`` in turn,
        all of them every epoch; any true result stops training. ``progress`` is accepted and
        ignored.

        A non-finite batch loss or an update that would overflow raises ``FloatingPointError``
        (naming the epoch, with the history so far as its ``history`` attribute) before that
        batch's update is applied; earlier updates stay applied.
        """
        rows, targets = self._batch(X, T)
        epochs = _check_int(epochs, "epochs", 1)
        lr = _check_lr(lr)
        batch_size = _check_int(batch_size, "batch_size", 1)
        shuffle = _check_bool(shuffle, "shuffle")
        if seed is not None:
            seed = _check_seed(seed)
        opt = check_optimizer(optimizer, momentum, nesterov, beta1, beta2, eps, alpha)
        schedule = _check_name(lr_schedule, SCHEDULES, "lr_schedule")
        early_stopping = _check_bool(early_stopping, "early_stopping")
        patience = _check_int(patience, "patience", 1)
        if not _is_number(min_delta) or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        if callable(callbacks):
            callbacks = (callbacks,)
        if not _is_sequence(callbacks):
            raise TypeError("callbacks must be a sequence of callables")
        callbacks = tuple(callbacks)
        for k, cb in enumerate(callbacks):
            if not callable(cb):
                raise TypeError(f"callbacks[{k}] must be callable, got {cb!r}")
        if not _is_number(validation_fraction) or not 0 <= validation_fraction < 1:
            raise ValueError(f"validation_fraction must be a number in [0, 1), "
                             f"got {validation_fraction!r}")
        if validation_data is not None and validation_fraction:
            raise ValueError("give validation_data or validation_fraction, not both")
        weights = self._sample_weights(sample_weight, len(rows))
        val_rows = val_targets = val_weights = None
        if validation_data is not None:
            if not _is_sequence(validation_data) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a pair (X_val, T_val) or a triple "
                                 "(X_val, T_val, sample_weight_val)")
            val_rows, val_targets = self._batch(validation_data[0], validation_data[1],
                                                "validation_data[0]", "validation_data[1]")
            if len(validation_data) == 3 and validation_data[2] is not None:
                val_weights = _check_weights(validation_data[2], len(val_rows),
                                             "validation_data[2]")

        if seed is not None:
            self.rng = SplitMix64(seed)
        if validation_fraction:
            rng_state = self.rng.state
            train, val = self._split_validation(rows, targets, validation_fraction, shuffle)
            if weights is not None:
                for part, what in ((train, "rows left to train on"), (val, "held-out rows")):
                    if not any(weights[k] for k in part):
                        self.rng.state = rng_state
                        raise ValueError(f"sample_weight: the {what} of validation_fraction="
                                         f"{validation_fraction} all have weight 0")
                weights, val_weights = [weights[k] for k in train], [weights[k] for k in val]
            rows, targets, val_rows, val_targets = (
                [rows[k] for k in train], [targets[k] for k in train],
                [rows[k] for k in val], [targets[k] for k in val])
        n = len(rows)
        self._use_optimizer(opt, lr)

        history = History()
        best_loss, best_epoch, best_params = math.inf, None, None
        waited = 0
        for epoch in range(epochs):
            lr_e = _check_lr(schedule_lr(schedule, lr, epoch, epochs),
                             f"lr_schedule (epoch {epoch + 1})")
            order = self.rng.shuffled_order(n) if shuffle else list(range(n))
            epoch_loss = 0.0
            for start in range(0, n, batch_size):
                batch = order[start:start + batch_size]
                count = len(batch)
                batch_weights = None
                if weights is not None:
                    batch_weights = [weights[k] for k in batch]
                    if _weight_sum(batch_weights) == 0:
                        exc = ZeroDivisionError(
                            f"fit (epoch {epoch + 1} of {epochs}): the sample_weight of a "
                            f"minibatch sums to 0, so its weighted mean loss is undefined; that "
                            f"step was not applied")
                        exc.history = history  # type: ignore[attr-defined]
                        raise exc
                batch_loss, grad = self._loss_and_gradient_flat(
                    [rows[k] for k in batch], [targets[k] for k in batch], batch_weights)
                if not math.isfinite(batch_loss):
                    why = f"the batch loss is {batch_loss}"
                elif not self._optimizer_step(grad, lr_e):
                    why = f"the update would make a parameter inf/NaN (batch loss {batch_loss:g})"
                else:
                    epoch_loss += batch_loss * count
                    continue
                exc = FloatingPointError(
                    f"fit (epoch {epoch + 1} of {epochs}): {why} with lr={lr_e}; that step was "
                    f"not applied (training diverged: try a smaller lr)")
                exc.history = history  # type: ignore[attr-defined]
                raise exc
            epoch_loss = epoch_loss / n
            history.loss.append(epoch_loss)
            history.lr.append(lr_e)
            monitored = epoch_loss
            if val_rows is not None:
                monitored = self._loss_and_gradients(val_rows, val_targets, want_grad=False,
                                                     weights=val_weights)[0]
                if not math.isfinite(monitored):
                    raise FloatingPointError(f"fit (epoch {epoch + 1} of {epochs}): the "
                                             f"validation loss is {monitored}")
                history.val_loss.append(monitored)
            if early_stopping:
                if monitored < best_loss - min_delta:
                    best_loss, best_epoch, best_params = monitored, epoch, self.params_flat()
                    waited = 0
                else:
                    waited += 1
                    if waited >= patience:
                        history.stop_reason = "early_stopping"
                        break
            if any([bool(cb(self, history)) for cb in callbacks]):  # all run; any true stops
                history.stop_reason = "callback"
                break
        if early_stopping and best_params is not None:
            self._write_params_flat(best_params)
            history.best_epoch = best_epoch
        return history

    def __repr__(self) -> str:
        extra = f", negative_slope={self.negative_slope}" if self.hidden == "leaky_relu" else ""
        return (f"oracle.MLP({self.layer_sizes}, hidden={self.hidden!r}, output={self.output!r}, "
                f"loss={self.loss_name!r}, dtype={self.dtype!r}, seed={self.seed}, "
                f"train_biases={self.train_biases}{extra})")


# --------------------------------------------------------------------------------------------
# Populations: many networks, each trained as if alone
# --------------------------------------------------------------------------------------------

def population_seeds(seed: int, n_nets: int) -> list[int]:
    """The per-net seeds of a population seeded with ``seed``: the first ``n_nets`` outputs of
    a SplitMix64 generator seeded with it."""
    gen = SplitMix64(seed)
    return [gen.next() for _ in range(n_nets)]


def bootstrap_rows(net: MLP, n_rows: int) -> list[int]:
    """``n_rows`` indices drawn with replacement from ``net``'s generator: k = next() mod
    n_rows, in draw order (advancing the generator)."""
    return [net.rng.next() % n_rows for _ in range(n_rows)]


def population_fit(nets: Sequence[MLP], X: Any, T: Any, *, subsets: Any = None,
                   bootstrap: bool = False, **options: Any) -> list[Optional[History]]:
    """Train each of ``nets`` as :meth:`MLP.fit` trains it alone, one after the other.

    An option given as a list (or tuple) holds one value per net (``lr=[0.1, 0.5]``); any
    other value is shared. ``subsets[i]`` (row indices) gives net i its own rows. A net whose
    fit diverges keeps its last finite parameters and gets ``None`` (the others go on).
    ``bootstrap=True``: net i's rows are :func:`bootstrap_rows` of its own generator, all drawn
    before any net trains.
    """
    if bootstrap:
        subsets = [bootstrap_rows(net, len(X)) for net in nets]
    histories: list[Optional[History]] = []
    for i, net in enumerate(nets):
        mine = {k: (v[i] if isinstance(v, (list, tuple)) else v) for k, v in options.items()}
        Xi = X if subsets is None else [list(X[r]) for r in subsets[i]]
        Ti = T if subsets is None else [T[r] if not hasattr(T[r], "__len__") else list(T[r])
                                        for r in subsets[i]]
        try:
            histories.append(net.fit(Xi, Ti, **mine))
        except FloatingPointError:
            histories.append(None)
    return histories
