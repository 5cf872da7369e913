"""Optimizers by name, their options, and their state.

``"sgd"`` is ``torch.optim.SGD`` (dampening 0) with optional ``momentum`` and ``nesterov``;
``"adam"`` is ``torch.optim.Adam`` (``beta1``, ``beta2``, ``eps``, bias correction, no amsgrad);
``"adamw"`` is ``torch.optim.AdamW`` (Adam's options; ``alpha`` is its decoupled weight decay);
``"rprop"`` is ``torch.optim.Rprop`` (iRprop−: etas (0.5, 1.2), step sizes clamped to
[1e-6, 50], ``lr`` the initial step size; meant for full-batch training). ``alpha`` is L2 on the
weights only, added to the weight gradient as ``alpha * W`` (torch's ``weight_decay``;
scikit-learn's ``alpha`` is divided by the batch size instead); for ``"adamw"`` it is the
decoupled weight decay ``W <- W * (1 - lr * alpha)`` before Adam's step (torch's AdamW
``weight_decay``), on the weights only as well.

The optimizer state lives on the network in one flat buffer beside ``params`` (``slots`` vectors
of ``n_params`` values: SGD momentum [velocity], Adam and AdamW [m, v], Rprop [previous
gradient, step size]) plus a step counter, and carries over between ``fit``/``train_step``
calls for as long as the optimizer and its options stay the same; changing them starts fresh
state.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cprop import _registry

__all__ = ["OPTIMIZERS", "OptimizerOptions", "check_optimizer"]

#: The fields of an optimizer's description (``OptimizerOptions.to_dict()``, the file header's
#: ``"optimizer"`` object, ``state_dict()["optimizer"]``).
OPTIONS_KEYS = ("name", "momentum", "nesterov", "beta1", "beta2", "eps", "alpha")

OPTIMIZERS = _registry.OPTIMIZERS  # (an alias of the registry's table)

RPROP_ETAS = (0.5, 1.2)
RPROP_STEP_SIZES = (1e-6, 50.0)


@dataclass(frozen=True)
class OptimizerOptions:
    name: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    alpha: float = 0.0
    # torch.optim.Rprop's fixed settings (the kernel's option struct reads them by name)
    rprop_etas: ClassVar[tuple[float, float]] = RPROP_ETAS
    rprop_step_sizes: ClassVar[tuple[float, float]] = RPROP_STEP_SIZES

    @property
    def slots(self) -> int:
        """Number of n_params-long state vectors."""
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

    def to_dict(self) -> dict:
        """The options as plain Python values, keyed by :data:`OPTIONS_KEYS`."""
        return {"name": self.name, "momentum": float(self.momentum),
                "nesterov": bool(self.nesterov), "beta1": float(self.beta1),
                "beta2": float(self.beta2), "eps": float(self.eps), "alpha": float(self.alpha)}

    def fresh_state(self, n_params: int, dtype, lr: float) -> np.ndarray:
        state = np.zeros(self.slots * n_params, dtype=dtype)
        if self.name == "rprop":
            state[n_params:] = lr  # torch.optim.Rprop starts every step size at lr
        return state


def state_problem(opt: OptimizerOptions, state: np.ndarray, n_params: int) -> str | None:
    """What is wrong with a finite state buffer of the right length for ``opt``, or None.

    The second half of Adam's state (v) and of Rprop's (the step sizes) is never negative.
    """
    if opt.name in ("adam", "adamw", "rprop") and (state[n_params:] < 0).any():
        return ("has a negative Rprop step size" if opt.name == "rprop"
                else "has a negative Adam second moment")
    return None


def _number(value, name: str, low: float, high: float, low_open=False, high_open=True) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    v = float(value)
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (
        v < high if high_open else v <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name}: expected a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return v


def check_optimizer(optimizer="sgd", momentum=0.0, nesterov=False, beta1=0.9, beta2=0.999,
                    eps=1e-8, alpha=0.0) -> OptimizerOptions:
    """Validated options. Memoised: a training loop calling train_step with the same options
    pays the checks (~7 us of ABC isinstance tests) once, not per step."""
    args = (optimizer, momentum, nesterov, beta1, beta2, eps, alpha)
    try:
        return _checked(*args)
    except TypeError as exc:
        if "unhashable" not in str(exc):
            raise
        return _check_optimizer(*args)


def _check_optimizer(optimizer, momentum, nesterov, beta1, beta2, eps, alpha) -> OptimizerOptions:
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer: expected one of {', '.join(repr(o) for o in OPTIMIZERS)}, "
            f"got {optimizer!r}")
    momentum = _number(momentum, "momentum", 0.0, 1.0)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov: expected True or False, got {nesterov!r}")
    if nesterov and (optimizer != "sgd" or momentum == 0):
        raise ValueError("nesterov: Nesterov momentum needs optimizer='sgd' and momentum > 0")
    if momentum != 0 and optimizer != "sgd":
        raise ValueError(f"momentum: only optimizer='sgd' takes momentum (got {optimizer!r}; "
                         "adam and adamw have beta1)")
    beta1 = _number(beta1, "beta1", 0.0, 1.0)
    beta2 = _number(beta2, "beta2", 0.0, 1.0)
    eps = _number(eps, "eps", 0.0, math.inf, low_open=True)
    alpha = _number(alpha, "alpha", 0.0, math.inf)
    return OptimizerOptions(optimizer, momentum, bool(nesterov), beta1, beta2, eps, alpha)


# typed=True keeps 1, 1.0 and True apart, so a cached valid call never stands in for an invalid one.
_checked = functools.lru_cache(maxsize=64, typed=True)(_check_optimizer)
