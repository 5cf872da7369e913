"""Activation functions by name, and their compiled implementations.

Hidden layers take ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"identity"``; the output layer takes
``"sigmoid"`` or ``"identity"``. Every one is computed without overflow for any finite input:
``sigmoid`` branches on the sign so that ``exp`` never sees a positive argument.
"""

from __future__ import annotations

import numpy as np

from cprop._kernels import _mlp
from cprop._validation import as_float_array, check_dtype

__all__ = ["HIDDEN", "OUTPUT", "ACTIVATION_CODES", "activation_code", "apply", "derivative",
           "sigmoid"]

#: name -> kernel code, read from the compiled module so the two cannot disagree
ACTIVATION_CODES: dict[str, int] = dict(_mlp.ACTIVATION_CODES)
HIDDEN = ("sigmoid", "tanh", "relu", "identity")
OUTPUT = ("sigmoid", "identity")


def activation_code(name, allowed, argument: str) -> int:
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(
            f"{argument}: expected one of {', '.join(repr(a) for a in allowed)}, got {name!r}"
        )
    return ACTIVATION_CODES[name]


def _elementwise(kernel, name, values, dtype):
    dt = check_dtype(dtype) if dtype is not None else None
    if dt is None:
        probe = np.asarray(values)
        dt = np.dtype(np.float32) if probe.dtype == np.float32 else np.dtype(np.float64)
    code = activation_code(name, HIDDEN, "name")
    arr = as_float_array(values, "z", dt)
    flat = arr.reshape(-1)
    out = np.empty_like(flat)
    kernel(code, flat, out)
    return out.reshape(arr.shape) if arr.ndim else out[0]


def apply(name: str, z, dtype=None) -> np.ndarray:
    """f(z) elementwise with the compiled kernel (float32 input stays float32)."""
    return _elementwise(_mlp.activation_forward, name, z, dtype)


def derivative(name: str, a, dtype=None) -> np.ndarray:
    """f'(z) elementwise, from the activation's output ``a = f(z)`` (as backprop uses it)."""
    return _elementwise(_mlp.activation_backward, name, a, dtype)


def sigmoid(z, dtype=None) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-z)), exact 0 and 1 in the limits, no warnings."""
    return apply("sigmoid", z, dtype)
