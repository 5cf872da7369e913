"""Argument checking for cprop's public API.

With bounds checks off in the kernels, this module is the memory safety: every array reaches a
kernel C-contiguous, of the network's dtype, of the checked shape, finite and non-empty. Errors
name the argument and say what was expected (``"X: expected ..., got ..."``).
"""

from __future__ import annotations

import math
import numbers
import operator
import os

import numpy as np

from cprop import _registry
from cprop._kernels import _mlp

__all__ = [
    "as_float_array",
    "check_inputs",
    "check_targets",
    "check_learning_rate",
    "check_positive_int",
    "check_bool",
    "check_seed",
    "check_sample_weight",
]

_SUPPORTED_DTYPES = {name: np.dtype(name).type for name in _registry.DTYPES}


def check_dtype(dtype) -> np.dtype:
    """``"float64"``/``"float32"`` (or the NumPy types) -> native-order np.dtype, else
    ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in _SUPPORTED_DTYPES:
        raise ValueError(f"dtype: expected {' or '.join(map(repr, _registry.DTYPES))}, "
                         f"got {dtype!r}")
    # '>f8' names float64 too: the kernels compute in the machine's own byte order.
    return np.dtype(_SUPPORTED_DTYPES[dt.name])


def memory_limit_bytes() -> int:
    """The machine's physical memory (the most any one array may take)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: fall back to the address space
        return 2**47


def _all_finite(arr: np.ndarray) -> bool:
    # Compiled one-pass check: ~0.4 us for a small array, where np.isfinite(a).all() takes ~1.4.
    if arr.ndim == 2:
        return _mlp.all_finite_2d(arr)
    if arr.ndim == 1:
        return _mlp.all_finite(arr)
    return bool(np.isfinite(arr).all())


def as_float_array(value, name: str, dtype: np.dtype) -> np.ndarray:
    """Convert `value` to a C-contiguous array of `dtype`; refuse non-numeric, empty, NaN/inf.

    Integer, boolean, non-contiguous, read-only and byte-swapped inputs are converted (a copy);
    complex, object, string and ragged inputs are refused with a TypeError/ValueError.
    """
    if (type(value) is np.ndarray and value.dtype == dtype and value.ndim in (1, 2)
            and value.flags.c_contiguous):
        # Fast path: already what the kernels take; only emptiness and finiteness to check.
        if value.size == 0:
            raise ValueError(f"{name}: expected a non-empty array, got shape {value.shape}")
        if not _all_finite(value):
            raise ValueError(f"{name}: contains NaN or infinity; every value must be finite")
        return value
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected an array of real numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except OverflowError:
        raise ValueError(f"{name}: has a number too large for a float") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: expected a rectangular array of real numbers ({exc})") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name}: expected real numbers, got complex dtype {arr.dtype}")
    if kind == "O":
        # A list holding None, Fractions, huge ints ... try a plain float conversion; anything
        # that does not convert is refused (None becomes NaN and is refused below).
        try:
            arr = arr.astype(np.float64)
        except OverflowError:
            raise ValueError(f"{name}: has a number too large for a float") from None
        except (TypeError, ValueError):
            raise TypeError(
                f"{name}: expected an array of real numbers, got objects that are not numbers"
            ) from None
    elif kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    # A broadcast view (np.broadcast_to) can describe far more values than memory holds; its
    # converted copy would raise MemoryError, or be killed by the OS, instead of an error here.
    n_bytes = arr.size * np.dtype(dtype).itemsize
    if n_bytes > 2**30 and n_bytes > memory_limit_bytes():
        raise ValueError(f"{name}: shape {arr.shape} would need {n_bytes / 2**30:.1f} GiB as "
                         f"{np.dtype(dtype).name}, more than this machine's memory")
    # np.asarray with order="C" keeps a 0-d input 0-d (np.ascontiguousarray would make it 1-d).
    with np.errstate(over="ignore", invalid="ignore"):  # overflow in the cast is reported below
        out = np.asarray(arr, dtype=dtype, order="C")
        if _all_finite(out):
            return out
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            what = "NaN, None" if kind == "O" else "NaN"
            raise ValueError(f"{name}: contains {what} or infinity; every value must be finite")
        largest = float(np.max(np.abs(arr)))
    raise ValueError(
        f"{name}: has values too large for {np.dtype(dtype).name} (largest magnitude {largest:g})"
    )


def check_inputs(X, n_in: int, dtype: np.dtype, name: str = "X") -> tuple[np.ndarray, bool]:
    """X as (n_samples, n_in); also returns whether X was a single sample of shape (n_in,)."""
    arr = as_float_array(X, name, dtype)
    if arr.ndim == 1 and arr.shape[0] == n_in:
        return arr.reshape(1, n_in), True
    if arr.ndim == 2 and arr.shape[1] == n_in:
        return arr, False
    raise ValueError(
        f"{name}: expected shape (n_samples, {n_in}) or ({n_in},) for a network with "
        f"{n_in} input{'s' if n_in != 1 else ''}, got shape {arr.shape}"
    )


def check_targets(
    T, n_samples: int, n_out: int, single: bool, dtype: np.dtype, name: str = "T",
    inputs: str = "X",
) -> np.ndarray:
    """T as (n_samples, n_out), matching the inputs' sample count.

    Accepted: (n_samples, n_out); (n_out,) when the input is one sample; (n_samples,) when
    n_out == 1.
    """
    arr = as_float_array(T, name, dtype)
    if arr.ndim == 2 and arr.shape == (n_samples, n_out):
        return arr
    if arr.ndim == 1:
        if single and arr.shape[0] == n_out:
            return arr.reshape(1, n_out)
        if n_out == 1 and arr.shape[0] == n_samples:
            return arr.reshape(n_samples, 1)
    outputs = f"{n_out} output{'s' if n_out != 1 else ''}"
    if single:
        expected = f"({n_out},) or (1, {n_out})"
        context = f"one sample in {inputs} and a network with {outputs}"
    else:
        expected = f"({n_samples}, {n_out})" + (f" or ({n_samples},)" if n_out == 1 else "")
        context = (f"{n_samples} sample{'s' if n_samples != 1 else ''} in {inputs} and a "
                   f"network with {outputs}")
    raise ValueError(f"{name}: expected shape {expected} for {context}, got shape {arr.shape}")


def _is_real_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_learning_rate(lr, dtype: np.dtype | None = None, name: str = "lr") -> float:
    """A finite lr > 0 that stays finite and > 0 in the network's dtype."""
    if type(lr) is float and math.isfinite(lr) and lr > 0 and dtype != np.float32:
        return lr  # the common case, without the ABC checks below
    if not _is_real_number(lr):
        raise TypeError(f"{name}: expected a finite number > 0, got {type(lr).__name__} {lr!r}")
    try:
        lr = float(lr)
    except OverflowError:
        raise ValueError(f"{name}: expected a finite number > 0, got {lr!r}") from None
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {lr!r}")
    if dtype is not None:
        with np.errstate(over="ignore", under="ignore"):
            typed = np.dtype(dtype).type(lr)
        if not (np.isfinite(typed) and typed > 0):
            raise ValueError(
                f"{name}: {lr!r} is {float(typed)} in {np.dtype(dtype).name}; expected a "
                f"learning rate that is finite and > 0 in the network's dtype"
            )
    return lr


def check_positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer >= 1, got bool {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name}: expected an integer >= 1, got {type(value).__name__} {value!r}"
        ) from None
    if n < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {n}")
    return n


def check_n_threads(n_threads, name: str = "n_threads") -> int:
    """``fit``'s ``n_threads``: an int >= 1, or None for the ``CPROP_NUM_THREADS`` environment
    variable (an int >= 1), else 1."""
    if n_threads is not None:
        return check_positive_int(n_threads, name)
    value = os.environ.get("CPROP_NUM_THREADS", "").strip()
    if not value:
        return 1
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}: None reads the CPROP_NUM_THREADS environment variable, which "
                         f"must be an integer >= 1, got {value!r}")
    return n


def check_bool(value, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")


def check_seed(seed, name: str = "seed") -> int | None:
    """None, or an int in [0, 2**64)."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(f"{name}: expected None or an integer in [0, 2**64), got bool {seed!r}")
    try:
        s = operator.index(seed)
    except TypeError:
        raise ValueError(
            f"{name}: expected None or an integer in [0, 2**64), got {type(seed).__name__} {seed!r}"
        ) from None
    if not 0 <= s < 2**64:
        raise ValueError(f"{name}: expected None or an integer in [0, 2**64), got {s}")
    return s


def check_sample_weight(sample_weight, n_samples: int, dtype: np.dtype,
                        name: str = "sample_weight") -> np.ndarray:
    """One weight per sample as a C-contiguous 1-D array of ``dtype``: real numbers, finite,
    >= 0, not all 0, their sum finite in double. (scikit-learn's ``_check_sample_weight``
    refuses NaN, infinity and all-zero weights too; cprop also refuses negative ones.)"""
    arr = as_float_array(sample_weight, name, dtype)
    if arr.shape != (n_samples,):
        raise ValueError(f"{name}: expected one weight per sample, shape ({n_samples},), got "
                         f"shape {arr.shape}")
    low = float(arr.min())
    if low < 0:
        raise ValueError(f"{name}: weights must be >= 0, got {low:g} at index "
                         f"{int(np.argmin(arr))}")
    with np.errstate(over="ignore"):
        total = float(np.sum(arr, dtype=np.float64))
    if total == 0:
        raise ValueError(f"{name}: the weights are all 0; at least one must be positive")
    if not math.isfinite(total):
        raise ValueError(f"{name}: the weights' sum overflows ({total}); scale them down")
    return arr
