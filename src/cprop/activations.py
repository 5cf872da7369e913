"""Activation functions by name, and their compiled implementations.

Hidden layers take ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"`` or ``"identity"``; the
output layer takes ``"sigmoid"``, ``"softmax"``, ``"identity"`` or ``"exp"``. Every one but
``exp`` is computed without overflow for any finite input: ``sigmoid`` branches on the sign so
that ``exp`` never sees a positive argument, ``softmax`` subtracts each row's maximum first;
``exp`` is inf past the dtype's range (e^709.78 in float64), as ``np.exp``.
"""

from __future__ import annotations

import numpy as np

from cprop import _registry
from cprop._kernels import _mlp
from cprop._validation import as_float_array, check_dtype

__all__ = ["HIDDEN", "OUTPUT", "ACTIVATION_CODES", "activation_code", "apply", "derivative",
           "sigmoid", "softmax"]

#: name -> kernel code, read from the compiled module so the two cannot disagree
ACTIVATION_CODES: dict[str, int] = dict(_mlp.ACTIVATION_CODES)
#: the names each layer may take (aliases of :mod:`cprop._registry`'s tables)
HIDDEN = _registry.HIDDEN
OUTPUT = _registry.OUTPUT


def activation_code(name, allowed, argument: str) -> int:
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(
            f"{argument}: expected one of {', '.join(repr(a) for a in allowed)}, got {name!r}"
        )
    return ACTIVATION_CODES[name]


def _elementwise(kernel, name, values, dtype, negative_slope):
    dt = check_dtype(dtype) if dtype is not None else None
    if dt is None:
        probe = np.asarray(values)
        dt = np.dtype(np.float32) if probe.dtype == np.float32 else np.dtype(np.float64)
    code = activation_code(name, _registry.ELEMENTWISE, "name")
    arr = as_float_array(values, "z", dt)
    flat = arr.reshape(-1)
    out = np.empty_like(flat)
    kernel(code, flat, out, float(negative_slope))
    return out.reshape(arr.shape) if arr.ndim else out[0]


def apply(name: str, z, dtype=None, negative_slope: float = 0.01) -> np.ndarray:
    """f(z) with the compiled kernel (float32 input stays float32).

    Elementwise for every activation but ``"softmax"``, which works row by row (each row of a
    2-D ``z``, or a 1-D ``z`` as one row).
    """
    if name == "softmax":
        return softmax(z, dtype)
    return _elementwise(_mlp.activation_forward, name, z, dtype, negative_slope)


def derivative(name: str, a, dtype=None, negative_slope: float = 0.01) -> np.ndarray:
    """f'(z) elementwise, from the activation's output ``a = f(z)`` (as backprop uses it)."""
    return _elementwise(_mlp.activation_backward, name, a, dtype, negative_slope)


def sigmoid(z, dtype=None) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-z)), exact 0 and 1 in the limits, no warnings."""
    return apply("sigmoid", z, dtype)


def softmax(z, dtype=None) -> np.ndarray:
    """exp(z - max) / sum(exp(z - max)) along the last axis of a 1-D or 2-D ``z``."""
    dt = check_dtype(dtype) if dtype is not None else (
        np.dtype(np.float32) if np.asarray(z).dtype == np.float32 else np.dtype(np.float64))
    arr = as_float_array(z, "z", dt)
    if arr.ndim not in (1, 2):
        raise ValueError(f"z: expected a 1-D or 2-D array, got shape {arr.shape}")
    rows = arr.reshape(1, -1) if arr.ndim == 1 else arr
    out = np.empty_like(rows)
    _mlp.softmax_rows(rows, out)
    return out.reshape(arr.shape)
