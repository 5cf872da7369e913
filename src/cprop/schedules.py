"""Learning-rate schedules: the learning rate of each epoch of one ``fit`` call.

``lr_schedule`` takes a name with default settings or a schedule object:

====================  ============================================================
``"constant"``        ``lr`` every epoch
``"invscaling"``      ``InverseScaling(power_t=0.5)``: ``lr / (e + 1) ** power_t``
``"step"``            ``Step(step_size=10, gamma=0.5)``: ``lr * gamma ** (e // step_size)``
``"cosine"``          ``Cosine(lr_min=0)``: ``lr_min + (lr - lr_min)(1 + cos(pi e / E)) / 2``
====================  ============================================================

``e`` counts the epochs of the current ``fit`` call from 0, ``E`` is its ``epochs``. The rate is
fixed within an epoch (the epoch runs in compiled code). For ``optimizer="rprop"``, ``lr`` is only
the initial step size, so a schedule has no effect after the first epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cprop import _registry

__all__ = ["Schedule", "Constant", "InverseScaling", "Step", "Cosine", "check_schedule"]


def _finite(value) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the float range
        return False


class Schedule:
    def lr(self, base_lr: float, epoch: int, epochs: int) -> float:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    def lr(self, base_lr, epoch, epochs):
        return base_lr


@dataclass(frozen=True)
class InverseScaling(Schedule):
    power_t: float = 0.5

    def __post_init__(self):
        if not (isinstance(self.power_t, (int, float)) and _finite(self.power_t)
                and self.power_t >= 0):
            raise ValueError(
                f"InverseScaling.power_t: expected a number >= 0, got {self.power_t!r}")

    def lr(self, base_lr, epoch, epochs):
        # float: an int power_t like 2**70 would otherwise start an endless exact int power
        return base_lr / float(epoch + 1) ** self.power_t


@dataclass(frozen=True)
class Step(Schedule):
    step_size: int = 10
    gamma: float = 0.5

    def __post_init__(self):
        if isinstance(self.step_size, bool) or not isinstance(self.step_size, int) \
                or self.step_size < 1:
            raise ValueError(f"Step.step_size: expected an int >= 1, got {self.step_size!r}")
        if not (isinstance(self.gamma, (int, float)) and 0 < self.gamma <= 1):
            raise ValueError(f"Step.gamma: expected a number in (0, 1], got {self.gamma!r}")

    def lr(self, base_lr, epoch, epochs):
        return base_lr * self.gamma ** (epoch // self.step_size)


@dataclass(frozen=True)
class Cosine(Schedule):
    lr_min: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.lr_min, (int, float)) and _finite(self.lr_min)
                and self.lr_min >= 0):
            raise ValueError(f"Cosine.lr_min: expected a number >= 0, got {self.lr_min!r}")

    def lr(self, base_lr, epoch, epochs):
        return self.lr_min + (base_lr - self.lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


# Each name of the registry's SCHEDULES with its default settings.
_DEFAULTS = {"constant": Constant, "invscaling": InverseScaling, "step": Step, "cosine": Cosine}
if set(_DEFAULTS) != set(_registry.SCHEDULES):  # pragma: no cover - a development error
    raise ImportError(f"cprop.schedules: the schedules {sorted(_DEFAULTS)} do not match "
                      f"cprop._registry.SCHEDULES {sorted(_registry.SCHEDULES)}")
_NAMED = {name: _DEFAULTS[name]() for name in _registry.SCHEDULES}


def check_schedule(lr_schedule) -> Schedule:
    if isinstance(lr_schedule, Schedule):
        return lr_schedule
    if isinstance(lr_schedule, str) and lr_schedule in _NAMED:
        return _NAMED[lr_schedule]
    raise ValueError(
        f"lr_schedule: expected one of {', '.join(repr(n) for n in _NAMED)} or a "
        f"cprop.schedules.Schedule, got {lr_schedule!r}")
