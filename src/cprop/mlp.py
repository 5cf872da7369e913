"""``cprop.MLP``: a multilayer perceptron whose numbers are computed by compiled kernels.

This module is the thin Python layer: it checks every argument once, lays the parameters out
in one flat buffer, allocates outputs and workspaces, and hands pointers to
:mod:`cprop._kernels._mlp`, which runs without the GIL. A whole ``fit`` (epochs, shuffles,
batches, steps) is one kernel call; Python comes back between epochs only when something needs
it (callbacks, a progress bar, validation, early stopping): then the kernel runs one epoch per
call. ``train_step`` and ``stepper`` take single steps through the same kernel driver.
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cprop import _fileformat, _registry
from cprop._kernels import _mlp
from cprop._validation import (
    as_float_array,
    check_bool,
    check_dtype,
    check_inputs,
    check_learning_rate,
    check_n_threads,
    check_positive_int,
    check_sample_weight,
    check_seed,
    check_targets,
)
from cprop.activations import HIDDEN, OUTPUT, activation_code
from cprop.optimizers import (
    OPTIONS_KEYS,
    OptimizerOptions,
    check_optimizer,
    state_problem,
)
from cprop.schedules import Constant, check_schedule

__all__ = ["MLP", "History", "BackpropValues", "LayerValues", "validation_split", "LOSSES",
           "INITS", "STATE_KEYS"]

# A build whose code tables name other activations, losses, optimizers or initialisers than
# the registry is refused here, before any network is built.
_registry.check_kernel_tables(_mlp)

# Aliases of the registry's tables (public names kept for compatibility).
LOSSES = _registry.LOSSES
INITS = _registry.INITS
# Which output activation each loss needs (None: any).
_LOSS_OUTPUT = _registry.LOSS_OUTPUT

#: The keys of ``MLP.state_dict()``.
STATE_KEYS = ("params", "optimizer", "optimizer_state", "optimizer_steps", "rng_state")

# Layer blocks of at least this many multiply-adds use BLAS gemm, smaller ones tight loops
# (read when a network is built; tests set it to 0 or a huge value to force either path).
_BLAS_MIN_WORK = _mlp.BLAS_MIN_WORK

# Routes of the step plan (``_mlp.ROUTES``) that networks built from now on never take: for
# re-measuring a route against the general one (bench/) and for tests pinning a route.
_DISABLED_ROUTES: frozenset = frozenset()

# Rows per block when a call covers many samples (forward, loss, gradients of a big X): the
# workspace is block_rows * (sum of layer widths) values, whatever the number of samples.
_BLOCK_ROWS = _mlp.BLOCK_ROWS


@dataclass
class History:
    """What :meth:`MLP.fit` returns.

    ``loss[e]`` is the mean over samples of the training loss computed during epoch ``e`` (each
    batch's mean loss before its update, weighted by the batch's size), as scikit-learn's
    ``loss_curve_`` (with ``sample_weight``, each batch's loss is its weighted mean, and the
    batches are still weighted by their sizes, as scikit-learn does); ``val_loss[e]`` the mean
    loss on the validation data after epoch ``e`` (empty without validation data); ``lr[e]``
    the epoch's learning rate. ``stop_reason`` is
    ``"max_epochs"``, ``"early_stopping"`` or ``"callback"``; ``best_epoch`` (0-based) the epoch
    whose parameters early stopping restored, else None.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    stop_reason: str = "max_epochs"
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        return len(self.loss)


@dataclass(frozen=True)
class LayerValues:
    """One weight layer's numbers for one sample (an element of ``BackpropValues.layers``).

    ``W`` ``(n_in, n_out)`` and ``b`` the parameters used; ``a_in`` the layer's inputs (the
    sample itself for the first layer); ``z = b + a_in @ W`` the net inputs (float64);
    ``a = f(z)`` the outputs; ``delta = dE/dz``; ``grad_W = outer(a_in, delta)`` and
    ``grad_b = delta`` the gradient. All arrays are the network's dtype except ``z``.
    """

    W: np.ndarray
    b: np.ndarray
    a_in: np.ndarray
    z: np.ndarray
    a: np.ndarray
    delta: np.ndarray
    grad_W: np.ndarray
    grad_b: np.ndarray


@dataclass(frozen=True)
class BackpropValues:
    """What :meth:`MLP.backprop_values` returns: one sample's forward and backward pass.

    ``x``, ``t`` the sample (``t`` one-hot for a class label); ``loss`` its loss; ``grad`` the
    flat gradient in ``params``' layout; ``layers[l]`` a :class:`LayerValues` per weight layer,
    input side first.
    """

    x: np.ndarray
    t: np.ndarray
    loss: float
    grad: np.ndarray
    layers: tuple


def _check_layer_sizes(layer_sizes) -> list[int]:
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(
            f"layer_sizes: expected a sequence of layer widths like [2, 2, 2], got {layer_sizes!r}"
        )
    try:
        sizes = list(layer_sizes)
    except TypeError:  # a 0-d array has __len__ but cannot be iterated
        raise TypeError(f"layer_sizes: expected a sequence of layer widths like [2, 2, 2], "
                        f"got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes: expected at least 2 widths (inputs and outputs), got {sizes!r}"
        )
    out = []
    for k, s in enumerate(sizes):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"layer_sizes[{k}]: expected an int >= 1, got {s!r}")
        if s < 1:
            raise ValueError(f"layer_sizes[{k}]: expected an int >= 1, got {int(s)}")
        out.append(int(s))
    return out


def _state_int(value, key: str, end: int) -> int:
    if not isinstance(value, (bool, np.bool_)):
        try:
            v = operator.index(value)
        except TypeError:
            v = None
        if v is not None and 0 <= v < end:
            return v
    bound = "2**63" if end == 2**63 else "2**64"
    raise ValueError(f"state_dict[{key!r}]: expected an integer in [0, {bound}), got {value!r}")


def validation_split(n_samples: int, fraction: float, *, shuffle: bool = True,
                     seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: which of ``n_samples`` rows to train on and which to hold out.

    The rule of ``MLP.fit(..., validation_fraction=fraction)`` and ``cprop train
    --validation-fraction``: ``ceil(fraction * n_samples)`` rows are held out (at least one must
    be left on each side, else ValueError). With ``shuffle`` they are the last rows of a
    Fisher-Yates shuffle of ``0 .. n_samples - 1`` drawn from a SplitMix64 generator seeded with
    ``seed`` (an int in [0, 2**64); None draws one from the OS); without, the last rows. Both
    index arrays are sorted, so each part keeps the rows' order. Deterministic: the same
    arguments give the same split on every platform.

    ``fit`` draws from the network's generator as it stands (after ``fit(seed=k)`` reseeds it:
    ``net.fit(X, T, seed=k, validation_fraction=f)`` holds out
    ``validation_split(len(X), f, seed=k)[1]``); :meth:`MLP.validation_split` draws the same
    rows from a network's generator without training.
    """
    n, fraction, shuffle = _check_split_args(n_samples, fraction, shuffle)
    seed = check_seed(seed)
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "little")
    return _split_indices(n, fraction, shuffle, np.array([seed], dtype=np.uint64), "fraction")


def initial_params(net: MLP, seeds) -> np.ndarray:
    """The parameters a net of ``net``'s architecture and initialiser starts with for each of
    ``seeds``: row k is ``MLP(..., seed=seeds[k]).params`` (bit for bit), drawn by the same
    compiled initialiser without building the nets. For cprop.Population."""
    if net.init not in INITS:
        raise ValueError(f"net: initialised by {net.init!r}, not by a named initialiser")
    seeds = np.asarray(seeds, dtype=np.uint64)
    out = np.zeros((len(seeds), net.n_params), dtype=net.dtype)
    code = _mlp.INIT_CODES[net.init]
    rng = np.zeros(1, dtype=np.uint64)
    for k in range(len(seeds)):
        rng[0] = seeds[k]
        net._plan.init_params(code, out[k], rng)
    return out


def _check_split_args(n_samples, fraction, shuffle) -> tuple[int, float, bool]:
    n = check_positive_int(n_samples, "n_samples")
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(
            fraction, (int, float, np.integer, np.floating)) or not 0 <= fraction < 1:
        raise ValueError(f"fraction: expected a number in [0, 1), got {fraction!r}")
    return n, float(fraction), check_bool(shuffle, "shuffle")


def _split_indices(n: int, fraction: float, shuffle: bool, rng: np.ndarray,
                   name: str) -> tuple[np.ndarray, np.ndarray]:
    """The split rule; ``rng`` (a generator state, uint64[1]) advances if ``shuffle``."""
    n_val = int(math.ceil(fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(f"{name}: {fraction} of {n} samples leaves "
                         f"{n - n_val} to train on and {n_val} to validate; need >= 1 each")
    if shuffle:
        order = np.empty(n, dtype=np.intp)
        _mlp.shuffled_order(rng, order)
        return np.sort(order[: n - n_val]), np.sort(order[n - n_val:])
    return np.arange(n - n_val), np.arange(n - n_val, n)


def _overflow(method: str, what: str) -> FloatingPointError:
    return FloatingPointError(
        f"{method}: {what} overflowed to inf/NaN inside the network (finite inputs and "
        "parameters, but a net input z = a @ W + b exceeded the float range); the weights or "
        "the inputs are too large"
    )


# Why run_steps refused a step (its first return value; 0: no step was refused).
FAILURE_LOSS = _mlp.FAILURE_LOSS
FAILURE_UPDATE = _mlp.FAILURE_UPDATE
FAILURE_ZERO_WEIGHT = _mlp.FAILURE_ZERO_WEIGHT
# Why MLP.run_sklearn_epochs returned before its last epoch (besides a failure above): the
# no-improvement count passed n_iter_no_change (the caller runs the stopping rule), or the
# invscaling rate after the last epoch run is not a valid rate (the caller computes it itself).
EPOCHS_STALLED = _mlp.EPOCHS_STALLED
EPOCHS_RATE_HANDOFF = _mlp.EPOCHS_RATE_HANDOFF
#: The state of scikit-learn's epoch loop that :meth:`MLP.run_sklearn_epochs` reads and updates.
SklearnEpochs = _mlp.SklearnEpochs


def _step_refused(where: str, failure: int, loss: float,
                  lr: float) -> FloatingPointError | ZeroDivisionError:
    if failure == _mlp.FAILURE_ZERO_WEIGHT:
        return ZeroDivisionError(
            f"{where}: the sample_weight of a minibatch sums to 0, so its weighted mean loss is "
            "undefined (scikit-learn's MLP raises ZeroDivisionError there too); that step was "
            "not applied and the network keeps the steps before it. Use a larger batch_size, or "
            "drop the rows whose weight is 0.")
    if failure == _mlp.FAILURE_LOSS:
        why = f"the batch loss is {loss}"
    else:
        why = f"the update would make a parameter inf/NaN (batch loss {loss:g})"
    return FloatingPointError(
        f"{where}: {why} with lr={lr}; that step was not applied and the network keeps its "
        "parameters. Try a smaller learning rate or scale the inputs."
    )


def _memory_limit_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: fall back to the address space
        return 2**47


def _progress_bar(progress, total: int):
    """A tqdm bar, or None. progress=None: on when stderr is a terminal and tqdm is installed."""
    if progress is None:
        if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
    elif progress:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError("progress=True needs tqdm: pip install 'cprop[progress]'") from None
    else:
        return None
    return tqdm(total=total, unit="epoch", desc="fit", leave=False)


def _check_order(order, n_rows: int) -> np.ndarray:
    """A 1-D array of row indices in [0, n_rows), as the kernels' index type (a copy if not)."""
    arr = np.asarray(order)
    if arr.ndim != 1 or arr.shape[0] < 1 or not (
            np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"order: expected a non-empty 1-D array of row indices, got "
                         f"{arr.dtype} of shape {arr.shape}")
    if int(arr.min()) < 0 or int(arr.max()) >= n_rows:
        raise ValueError(f"order: every index must be a row of X, in [0, {n_rows}); got "
                         f"values from {int(arr.min())} to {int(arr.max())}")
    return np.ascontiguousarray(arr, dtype=np.intp)


def _epoch_rates(schedule, lr: float, epochs: int, dtype):
    """Each epoch's learning rate as a float64 array, up to the first epoch whose rate is not
    valid, and that epoch's error (raised once the epochs before it have trained), or None."""
    if isinstance(schedule, Constant):
        return np.full(epochs, lr, dtype=np.float64), None
    lrs = []
    for e in range(epochs):
        try:
            lr_e = schedule.lr(lr, e, epochs)
        except (OverflowError, ZeroDivisionError) as exc:
            return np.array(lrs, dtype=np.float64), ValueError(
                f"lr_schedule (epoch {e + 1}): the learning rate overflowed ({exc})")
        try:
            check_learning_rate(lr_e, dtype, name=f"lr_schedule (epoch {e + 1}: lr={lr_e!r})")
        except (TypeError, ValueError) as exc:
            return np.array(lrs, dtype=np.float64), exc
        lrs.append(float(lr_e))
    return np.array(lrs, dtype=np.float64), None


class MLP:
    """A fully connected feed-forward network trained by backpropagation.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, e.g. ``[2, 2, 2]``; zero or more hidden layers.
    hidden : {"sigmoid", "tanh", "relu", "leaky_relu", "identity"}
        Activation of every hidden layer.
    output : {"sigmoid", "softmax", "identity", "exp"}
        Activation of the output layer (softmax needs at least 2 outputs; exp is ``e^z``, the
        output of the Poisson loss).
    loss : {"squared_error", "cross_entropy", "binary_cross_entropy", "poisson"}
        Per-sample loss: ``sum_k 1/2 (t_k - y_k)**2`` (any output); ``-sum_k t_k log y_k``
        (softmax output; targets one-hot rows, probability rows or integer class labels);
        ``-sum_k [t_k log y_k + (1 - t_k) log(1 - y_k)]`` (sigmoid output, multi-label);
        ``sum_k t_k log(t_k / y_k) - t_k + y_k`` (exp output, targets >= 0: scikit-learn's half
        Poisson deviance, computed from the logits).
        ``loss()`` reports its mean over samples.
    dtype : {"float64", "float32"}
        Precision of the parameters, optimizer state, arithmetic and outputs.
    seed : int in [0, 2**64) or None
        Seeds cprop's SplitMix64 generator, which draws the initial weights and then every
        epoch's shuffle. ``None`` draws a seed from the OS and keeps it in ``self.seed``.
    train_biases : bool
        If False, training leaves the biases fixed (``gradients`` still returns theirs).
    negative_slope : float >= 0
        Slope of ``leaky_relu`` for negative inputs.
    init : {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal"} or sequence
        Initial weights (biases start at 0), or the initial parameters themselves as a sequence
        of ``(W, b)`` pairs shaped ``(n_in, n_out)`` and ``(n_out,)``.

    Attributes
    ----------
    params : ndarray, 1-D
        Every parameter in one contiguous buffer: for each layer, W row-major then b.
    weights, biases : tuple of ndarray
        Writable views into ``params``: ``weights[l]`` has shape ``(n_in, n_out)`` (so
        ``z = a @ W + b``) and ``biases[l]`` shape ``(n_out,)``.
    dataset : dict or None
        What the inputs and outputs mean, for a network trained by ``cprop train``: the input
        column names, the target, the task and the class labels (see :mod:`cprop.io`); saved
        and loaded with the network. None for a network built in Python.

    Calls on one network are serialised by a per-network lock (two threads may share a network
    safely; they take turns). Different networks run in parallel: kernels release the GIL.
    """

    def __init__(
        self,
        layer_sizes,
        hidden: str = "sigmoid",
        output: str = "sigmoid",
        loss: str = "squared_error",
        dtype="float64",
        seed: int | None = None,
        train_biases: bool = True,
        negative_slope: float = 0.01,
        init="glorot_uniform",
    ):
        sizes = _check_layer_sizes(layer_sizes)
        hidden_code = activation_code(hidden, HIDDEN, "hidden")
        output_code = activation_code(output, OUTPUT, "output")
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(
                f"loss: expected one of {', '.join(repr(x) for x in LOSSES)}, got {loss!r}"
            )
        needed = _LOSS_OUTPUT[loss]
        if needed is not None and output != needed:
            raise ValueError(f"loss: {loss!r} needs output={needed!r}, got output={output!r}")
        if output == "softmax" and sizes[-1] < 2:
            raise ValueError("output: 'softmax' needs at least 2 outputs (layer_sizes[-1] >= 2)")
        if isinstance(negative_slope, (bool, np.bool_)) or not isinstance(
                negative_slope, (int, float, np.floating, np.integer)) or not (
                math.isfinite(negative_slope) and negative_slope >= 0):
            raise ValueError(f"negative_slope: expected a finite number >= 0, "
                             f"got {negative_slope!r}")
        dt = check_dtype(dtype)
        seed = check_seed(seed)
        train_biases = check_bool(train_biases, "train_biases")
        user_init = not isinstance(init, str)
        if not user_init and init not in INITS:
            raise ValueError(f"init: expected one of {', '.join(repr(i) for i in INITS)} or a "
                             f"sequence of (W, b) pairs, got {init!r}")

        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        n_bytes = n_params * dt.itemsize
        if n_bytes > _memory_limit_bytes():
            raise ValueError(
                f"layer_sizes: a network of {sizes} has {n_params} parameters "
                f"({n_bytes / 2**30:.1f} GiB), more than this machine's memory"
            )

        # Read-only (see the property): the kernels trust shapes derived from these widths.
        self._sizes = tuple(sizes)
        self.hidden = hidden
        self.output = output
        self.loss_name = loss
        self.dtype = dt
        self.train_biases = train_biases
        self.negative_slope = float(negative_slope)
        self.init = "user" if user_init else init
        self.dataset = None
        n_layers = len(sizes) - 1
        codes = [hidden_code] * (n_layers - 1) + [output_code]
        self._plan = _mlp.Plan(sizes, codes, _mlp.LOSS_CODES[loss], self.negative_slope,
                               _BLAS_MIN_WORK, tuple(_DISABLED_ROUTES))
        assert self._plan.n_params == n_params
        self._params = np.zeros(n_params, dtype=dt)
        self._make_views()

        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        self.seed = seed
        self._rng = np.array([seed], dtype=np.uint64)
        if user_init:
            self._set_initial_params(init)
        else:
            self._plan.init_params(_mlp.INIT_CODES[init], self._params, self._rng)

        self._lock = threading.RLock()
        # Bumped whenever the optimizer state buffers are replaced: a Stepper built over the old
        # ones then hands its calls to the checked route.
        self._generation = np.zeros(1, dtype=np.int64)
        self._fast_step = None  # train_step's Stepper, once a checked step has succeeded
        self._workspaces: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._reset_optimizer(OptimizerOptions())

    def _set_initial_params(self, pairs) -> None:
        try:
            pairs = list(pairs)
        except TypeError:
            raise TypeError(f"init: expected a name or a sequence of (W, b) pairs, "
                            f"got {type(pairs).__name__}") from None
        if len(pairs) != len(self._weights):
            raise ValueError(f"init: expected {len(self._weights)} (W, b) pairs, one per layer, "
                             f"got {len(pairs)}")
        for l, pair in enumerate(pairs):
            try:
                W, b = pair
            except (TypeError, ValueError):
                raise ValueError(f"init[{l}]: expected a (W, b) pair") from None
            W = as_float_array(W, f"init[{l}][0]", self.dtype)
            b = as_float_array(b, f"init[{l}][1]", self.dtype)
            if W.shape != self._weights[l].shape:
                raise ValueError(f"init[{l}][0]: expected shape {self._weights[l].shape}, "
                                 f"got {W.shape}")
            if b.shape != self._biases[l].shape:
                raise ValueError(f"init[{l}][1]: expected shape {self._biases[l].shape}, "
                                 f"got {b.shape}")
            self._weights[l][:] = W
            self._biases[l][:] = b

    # -- parameters -----------------------------------------------------------------------------

    def _make_views(self) -> None:
        weights, biases = [], []
        offset = 0
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            weights.append(self._params[offset : offset + n_in * n_out].reshape(n_in, n_out))
            offset += n_in * n_out
            biases.append(self._params[offset : offset + n_out])
            offset += n_out
        self._weights = tuple(weights)
        self._biases = tuple(biases)

    @property
    def layer_sizes(self) -> list[int]:
        """Widths from input to output; a new list on each access (a network's shape is fixed:
        the kernels size their reads and writes from it, so it must not change under them)."""
        return list(self._sizes)

    @property
    def params(self) -> np.ndarray:
        """All parameters in one contiguous 1-D buffer (assign into it: ``net.params[:] = p``)."""
        return self._params

    @property
    def weights(self) -> tuple[np.ndarray, ...]:
        """``weights[l]``: writable ``(n_in, n_out)`` view into ``params``."""
        return self._weights

    @property
    def biases(self) -> tuple[np.ndarray, ...]:
        """``biases[l]``: writable ``(n_out,)`` view into ``params``."""
        return self._biases

    @property
    def n_params(self) -> int:
        return self._params.shape[0]

    @property
    def activations(self) -> list[str]:
        """The activation of each layer, input side first."""
        n_layers = len(self.layer_sizes) - 1
        return [self.hidden] * (n_layers - 1) + [self.output]

    @property
    def optimizer(self) -> OptimizerOptions:
        """The optimizer (and options) whose state the network currently holds."""
        return self._opt

    def __repr__(self) -> str:
        extra = ""
        if self.hidden == "leaky_relu":
            extra += f", negative_slope={self.negative_slope}"
        return (
            f"MLP({self.layer_sizes}, hidden={self.hidden!r}, output={self.output!r}, "
            f"loss={self.loss_name!r}, dtype={self.dtype.name!r}, seed={self.seed}, "
            f"train_biases={self.train_biases}{extra})"
        )

    def _check_params_finite(self) -> None:
        # Parameters are user-writable views, so they are checked like any other input.
        if not _mlp.all_finite(self._params):
            raise ValueError("params: the network's parameters contain NaN or infinity")

    def _workspace(self, rows: int):
        """(A, D, grad) for blocks of `rows` samples, allocated once and reused. grad has a slot
        of n_params for each part a batch of that block size is cut into (``Plan.grad_slots``;
        batches of more than BLOCK_ROWS rows are cut into no more parts than one block)."""
        ws = self._workspaces.get(rows)
        if ws is None:
            width = self._plan.total_width
            ws = (
                np.empty(rows * width, dtype=self.dtype),
                np.empty(rows * width, dtype=self.dtype),
                np.empty(self.n_params * self._plan.grad_slots(rows), dtype=self.dtype),
            )
            if len(self._workspaces) > 8:
                self._workspaces.clear()
            self._workspaces[rows] = ws
        return ws

    # -- optimizer state ------------------------------------------------------------------------

    def _reset_optimizer(self, opt: OptimizerOptions, lr: float = 0.0) -> None:
        self._fast_step = None  # it holds the old state buffers
        self._generation[0] += 1
        self._opt = opt
        self._opt_state = opt.fresh_state(self.n_params, self.dtype, lr)
        self._opt_steps = np.zeros(1, dtype=np.int64)

    def _use_optimizer(self, opt: OptimizerOptions, lr: float) -> None:
        """Keep the state if the optimizer and its options are unchanged, else start fresh."""
        if opt.state_key != self._opt.state_key:
            self._reset_optimizer(opt, lr)
        else:
            self._opt = opt  # alpha may differ: it is not part of the state
            if opt.name == "rprop" and self._opt_steps[0] == 0:
                self._opt_state[self.n_params:] = lr

    def reset_optimizer(self) -> None:
        """Forget the optimizer state (momentum, Adam moments, Rprop step sizes)."""
        with self._lock:
            self._reset_optimizer(self._opt)

    # -- state: what files, the estimators and users save and restore ---------------------------

    def state_dict(self) -> dict:
        """The network's changing state, as copies (changing them does not change the network).

        Keys (:data:`STATE_KEYS`):

        - ``"params"``: ``net.params`` (1-D, the network's dtype);
        - ``"optimizer"``: the optimizer whose state the network holds and its options, a dict
          with the keys ``name, momentum, nesterov, beta1, beta2, eps, alpha``;
        - ``"optimizer_state"``: its state vectors, 1-D, ``slots * n_params`` values of the
          network's dtype (SGD with momentum: velocity; Adam, AdamW: m then v; Rprop: previous
          gradient then step sizes; SGD without momentum: none);
        - ``"optimizer_steps"``: optimizer steps taken (an int; Adam's bias correction);
        - ``"rng_state"``: the state of the network's SplitMix64 generator (an int in
          [0, 2**64)), which draws the next shuffle or validation split.

        The architecture (``layer_sizes``, activations, loss, dtype ...) is not part of it:
        :meth:`load_state_dict` restores a state into a network built with the same arguments,
        after which training continues exactly as it would have from the saved network.
        """
        with self._lock:
            return self._state(copy=True)

    def _state(self, copy: bool) -> dict:
        # copy=False (views of the live buffers) only under the lock, for save.
        return {
            "params": self._params.copy() if copy else self._params,
            "optimizer": self._opt.to_dict(),
            "optimizer_state": self._opt_state.copy() if copy else self._opt_state,
            "optimizer_steps": int(self._opt_steps[0]),
            "rng_state": int(self._rng[0]),
        }

    def load_state_dict(self, state_dict) -> None:
        """Restore a state from :meth:`state_dict` (of this network or one of the same shape).

        Every field is checked before anything changes: exactly the keys of
        :data:`STATE_KEYS`; arrays of real numbers (converted to the network's dtype) of the
        right length, every value finite; the optimizer's name and options in their ranges
        (as ``fit`` checks them), a state of its length with no negative Adam second moment or
        Rprop step size; ``optimizer_steps`` an int >= 0; ``rng_state`` an int in [0, 2**64).
        Raises ValueError naming the key (TypeError if ``state_dict`` is not a mapping).
        """
        params, opt, opt_state, steps, rng = self._check_state(state_dict)
        with self._lock:
            self._reset_optimizer(opt)  # the optimizer and a buffer of its size
            self._params[:] = params
            self._opt_state[:] = opt_state
            self._opt_steps[0] = steps
            self._rng[0] = rng

    def _check_state(self, state) -> tuple:
        if not isinstance(state, Mapping):
            raise TypeError(f"state_dict: expected a dict with the keys "
                            f"{', '.join(STATE_KEYS)}, got {type(state).__name__}")
        missing = [k for k in STATE_KEYS if k not in state]
        unknown = [k for k in state if k not in STATE_KEYS]
        if missing or unknown:
            raise ValueError("state_dict: " + "; ".join(
                ([f"missing key{'s' if len(missing) > 1 else ''} "
                  f"{', '.join(repr(k) for k in missing)}"] if missing else [])
                + ([f"unknown key{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(repr(k) for k in unknown)}"] if unknown else [])))
        n = self.n_params
        params = self._state_array(state["params"], "params", n)

        described = state["optimizer"]
        if not isinstance(described, Mapping) or sorted(described) != sorted(OPTIONS_KEYS):
            got = (sorted(described) if isinstance(described, Mapping)
                   else type(described).__name__)
            raise ValueError(f"state_dict['optimizer']: expected a dict with the keys "
                             f"{', '.join(OPTIONS_KEYS)}, got {got}")
        try:
            opt = check_optimizer(*(described[k] for k in OPTIONS_KEYS))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"state_dict['optimizer']: {exc}") from None

        opt_state = self._state_array(state["optimizer_state"], "optimizer_state",
                                      opt.slots * n, f" ({opt.slots} state vector"
                                      f"{'s' if opt.slots != 1 else ''} of {n} values for "
                                      f"optimizer {opt.name!r})")
        problem = state_problem(opt, opt_state, n)
        if problem:
            raise ValueError(f"state_dict['optimizer_state']: {problem}")
        steps = _state_int(state["optimizer_steps"], "optimizer_steps", 2**63)
        rng = _state_int(state["rng_state"], "rng_state", 2**64)
        return params, opt, opt_state, steps, rng

    def _state_array(self, value, key: str, length: int, why: str = "") -> np.ndarray:
        name = f"state_dict[{key!r}]"
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{name}: expected a 1-D array of real numbers ({exc})") from None
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
        if arr.shape != (length,):
            raise ValueError(f"{name}: expected shape ({length},){why}, got {arr.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.array(arr, dtype=self.dtype, order="C", copy=True)
        if not _mlp.all_finite(out):
            raise ValueError(f"{name}: contains NaN or infinity"
                             + (f" (as {self.dtype.name})" if np.isfinite(arr).all() else ""))
        return out

    # -- evaluation -----------------------------------------------------------------------------

    def _xt(self, X, T, name_x="X", name_t="T"):
        if (type(X) is np.ndarray and X.dtype == self.dtype
                and _mlp.inputs_ready(self._plan, X, T)):
            return X, T  # already exactly what the kernels take, checked in C
        X2, single = check_inputs(X, self._sizes[0], self.dtype, name=name_x)
        targets = _registry.LOSS_TARGETS[self.loss_name]
        if targets == "distribution":
            T = self._labels_to_one_hot(T, X2.shape[0], single, name_t)
        T2 = check_targets(T, X2.shape[0], self._sizes[-1], single, self.dtype,
                           name=name_t, inputs=name_x)
        if targets in ("unit", "distribution"):
            lo, hi = float(T2.min()), float(T2.max())
            if lo < 0 or hi > 1:
                raise ValueError(f"{name_t}: {self.loss_name} targets must lie in [0, 1], got "
                                 f"values in [{lo:g}, {hi:g}]")
        elif targets == "nonnegative":
            lo = float(T2.min())
            if lo < 0:
                raise ValueError(f"{name_t}: {self.loss_name} targets must be >= 0 (counts or "
                                 f"rates), got {lo:g} at row {int(np.argmin(T2.min(axis=1)))}")
        if targets == "distribution":
            # The fused output delta y - t is the gradient only for target rows that are
            # probability distributions; a row summing to s has gradient s*y - t.
            sums = T2.sum(axis=1, dtype=np.float64)
            worst = int(np.argmax(np.abs(sums - 1.0)))
            if abs(sums[worst] - 1.0) > (1e-6 if self.dtype == np.float64 else 1e-5):
                raise ValueError(f"{name_t}: {self.loss_name} targets must be one-hot or "
                                 f"probability rows summing to 1 (or integer class labels); "
                                 f"row {worst} sums to {sums[worst]:.9g}")
        return X2, T2

    def _labels_to_one_hot(self, T, n: int, single: bool, name: str):
        """Integer class labels (n,) - or one label for one sample - become one-hot rows.
        Labels of another type (floats, bools) in that shape are refused: a class label must
        be an integer."""
        if isinstance(T, (bool, np.bool_)):
            raise ValueError(f"{name}: {self.loss_name} class labels must be integers in "
                             f"[0, {self._sizes[-1]}), got {T!r}")
        try:
            labels = np.asarray(T) if not isinstance(T, np.ndarray) else T
        except (TypeError, ValueError, OverflowError):
            return T  # (check_targets says what is wrong)
        if labels.ndim != (0 if single else 1):
            return T
        if labels.dtype.kind in "fb" and (single or labels.shape[0] == n):
            kind = "floats" if labels.dtype.kind == "f" else "booleans"
            rows = f"({self._sizes[-1]},)" if single else f"({n}, {self._sizes[-1]})"
            flat = labels.reshape(-1)
            hint = ""
            if kind == "floats" and np.isfinite(flat).all() and (flat == np.round(flat)).all():
                hint = " (convert them: T.astype(int))"
            raise ValueError(
                f"{name}: {self.loss_name} class labels must be integers in "
                f"[0, {self._sizes[-1]}), got {kind}{hint}; or give one-hot / probability "
                f"rows of shape {rows}")
        if labels.dtype.kind not in "iu":
            return T
        n_out = self._sizes[-1]
        flat = labels.reshape(-1)
        if flat.shape[0] != n:
            raise ValueError(f"{name}: expected {n} class label{'s' if n != 1 else ''} to match "
                             f"the inputs, got {flat.shape[0]}")
        if flat.min() < 0 or flat.max() >= n_out:
            raise ValueError(f"{name}: class labels must be integers in [0, {n_out}), got values "
                             f"in [{int(flat.min())}, {int(flat.max())}]")
        one_hot = np.zeros((n, n_out), dtype=self.dtype)
        one_hot[np.arange(n), flat] = 1
        return one_hot

    def forward(self, X) -> np.ndarray:
        """The network's outputs: ``(n_samples, n_out)`` for 2-D X, ``(n_out,)`` for one sample."""
        X2, single = check_inputs(X, self._sizes[0], self.dtype)
        n_bytes = X2.shape[0] * self._sizes[-1] * self.dtype.itemsize
        if n_bytes > 2**30 and n_bytes > _memory_limit_bytes():  # (no syscall when small)
            raise ValueError(f"X: the outputs of {X2.shape[0]} samples x {self._sizes[-1]} "
                             "outputs would not fit this machine's memory")
        out = np.empty((X2.shape[0], self._sizes[-1]), dtype=self.dtype)
        with self._lock:
            self._check_params_finite()
            A, _, _ = self._workspace(min(X2.shape[0], _BLOCK_ROWS))
            self._plan.forward(self._params, X2, out, A)
        if not _mlp.all_finite_2d(out):
            raise _overflow("forward", "the outputs")
        return out[0] if single else out

    def loss(self, X, T, sample_weight=None) -> float:
        """Mean over samples of the per-sample loss; with ``sample_weight`` (one weight >= 0 per
        sample, not all 0) the weighted mean ``sum_i w_i E_i / sum_i w_i``."""
        X2, T2 = self._xt(X, T)
        return self._loss(X2, T2, self._weights_of(sample_weight, X2))

    def _weights_of(self, sample_weight, X2):
        if sample_weight is None:
            return None
        return check_sample_weight(sample_weight, X2.shape[0], self.dtype)

    def _loss(self, X2, T2, sw=None) -> float:
        with self._lock:
            self._check_params_finite()
            A, _, _ = self._workspace(min(X2.shape[0], _BLOCK_ROWS))
            loss = self._plan.loss(self._params, X2, T2, A, sw)
        if not math.isfinite(loss):
            raise _overflow("loss", "the loss")
        return loss

    def gradients(self, X, T, sample_weight=None):
        """``(grad_weights, grad_biases)``: the exact gradient of
        ``self.loss(X, T, sample_weight)``.

        Lists shaped like ``weights`` and ``biases`` (views into one new flat array). The L2
        term of ``alpha`` is a training option, not part of the loss, so it is not included.
        """
        loss, grad = self.loss_and_gradient(X, T, sample_weight)
        if not (math.isfinite(loss) and _mlp.all_finite(grad)):
            raise _overflow("gradients", "the loss or its gradient")
        return self._split(grad)

    def loss_and_gradient(self, X, T, sample_weight=None) -> tuple[float, np.ndarray]:
        """``(loss, grad)``: ``self.loss(X, T, sample_weight)`` and its gradient as one flat
        array in
        ``params``' layout, from one pass (the objective for an optimizer such as
        ``scipy.optimize.minimize(..., jac=True)`` over ``params``).

        Unlike :meth:`loss` and :meth:`gradients`, values that overflow inside the network are
        returned as they are (inf/NaN), not raised: a line search can then back off.
        """
        X2, T2 = self._xt(X, T)
        sw = self._weights_of(sample_weight, X2)
        grad = np.empty(self.n_params * self._plan.grad_slots(X2.shape[0]), dtype=self.dtype)
        with self._lock:
            self._check_params_finite()
            A, D, _ = self._workspace(min(X2.shape[0], _BLOCK_ROWS))
            loss = self._plan.gradient(self._params, X2, T2, grad, A, D, sw)
        # (a batch cut into parts leaves the other parts' sums behind the gradient: drop them)
        return float(loss), grad[:self.n_params] if grad.shape[0] > self.n_params else grad

    def check_params(self) -> None:
        """Raise ValueError if a parameter is NaN or infinity (for code that writes into
        ``params``; every method that computes with them checks this itself)."""
        with self._lock:
            self._check_params_finite()

    def _split(self, flat: np.ndarray):
        gw, gb, offset = [], [], 0
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            gw.append(flat[offset : offset + n_in * n_out].reshape(n_in, n_out))
            offset += n_in * n_out
            gb.append(flat[offset : offset + n_out])
            offset += n_out
        return gw, gb

    # -- training -------------------------------------------------------------------------------

    def train_step(self, X, T, lr: float = 0.1, *, optimizer="sgd", momentum=0.0,
                   nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8, alpha=0.0,
                   sample_weight=None) -> float:
        """One optimizer step on the batch (X, T) with the gradient of its mean loss (with
        ``sample_weight``, of its weighted mean loss, as :meth:`loss` defines it).

        Takes the optimizer options of :meth:`fit` and shares its state. Returns the mean loss
        before the step. Raises FloatingPointError, leaving the network and the optimizer state
        unchanged, if that loss is not finite or the update would overflow.

        A call that repeats the previous one's options and block size, with X and T already
        C-contiguous arrays of the network's dtype, is checked in C (see :meth:`stepper`);
        every other call takes the checked route below. For online learning in a loop,
        :meth:`stepper` skips even the comparison of the options.
        """
        fast = self._fast_step
        if fast is not None and sample_weight is None:
            loss = fast.step_if_same(X, T, lr, optimizer, momentum, nesterov, beta1, beta2, eps,
                                     alpha, self.train_biases)
            if loss is not None:
                return loss
        args = dict(optimizer=optimizer, momentum=momentum, nesterov=nesterov, beta1=beta1,
                    beta2=beta2, eps=eps, alpha=alpha)
        loss, stepper, _ = self._checked_step(X, T, lr, check_optimizer(**args), args,
                                              sample_weight)
        self._fast_step = stepper
        return loss

    def stepper(self, lr: float = 0.1, *, optimizer="sgd", momentum=0.0, nesterov=False,
                beta1=0.9, beta2=0.999, eps=1e-8, alpha=0.0):
        """A callable ``step(X, T) -> loss`` for online learning: one :meth:`train_step` with
        these options per call, checked in C (a few hundred nanoseconds on a small network).

        It shares the network's parameters and optimizer state: steps taken through it, through
        :meth:`train_step` and through :meth:`fit` with the same optimizer options continue one
        another. Inputs that are not already C-contiguous arrays of the network's dtype, and
        calls after the network switched to other optimizer options, take the checked route of
        :meth:`train_step` (which converts them, or raises its errors, and switches back).
        """
        lr = check_learning_rate(lr, self.dtype)
        opt = check_optimizer(optimizer, momentum, nesterov, beta1, beta2, eps, alpha)
        with self._lock:
            self._use_optimizer(opt, lr)
            return self._make_stepper(opt, float(lr), 1, None)

    def _make_stepper(self, opt, lr, rows, args):
        A, D, grad = self._workspace(min(rows, _BLOCK_ROWS))
        return _mlp.Stepper(self._plan, self._params, A, D, grad, self._opt_state,
                            self._opt_steps, self._generation, opt, self.train_biases,
                            self._lock, lr, self._stepper_fallback, args)

    def _stepper_fallback(self, stepper, X, T) -> float:
        # A stepper's call that the C checks turned away: the checked route with its options,
        # which converts the inputs or raises; then the stepper follows the network's buffers.
        loss, _, rows = self._checked_step(X, T, stepper.lr, stepper.options, None)
        with self._lock:
            if self._opt == stepper.options:
                stepper.rebind(self._opt_state, self._opt_steps,
                               *self._workspace(min(rows, _BLOCK_ROWS)))
        return loss

    def _checked_step(self, X, T, lr, opt, args, sample_weight=None):
        """train_step's checked route: (loss, a Stepper for the next call with these ``args``,
        train_step's optimizer arguments by name (None: no stepper), the batch's rows)."""
        X2, T2 = self._xt(X, T)
        sw = self._weights_of(sample_weight, X2)
        lr = check_learning_rate(lr, self.dtype)
        with self._lock:
            self._check_params_finite()
            previous = (self._opt, self._opt_state, self._opt_steps)
            self._use_optimizer(opt, lr)
            A, D, grad = self._workspace(min(X2.shape[0], _BLOCK_ROWS))
            try:
                loss, failure = self._plan.train_step(self._params, X2, T2, lr, opt,
                                                      self.train_biases, self._opt_state,
                                                      self._opt_steps, grad, A, D, sw)
            except BaseException:  # Ctrl-C part-way: nothing was applied, so undo the switch
                self._restore_optimizer(previous)
                raise
            if failure:  # a refused step changes nothing, not even which optimizer is held
                self._restore_optimizer(previous)
                stepper = None
            elif args is not None:
                stepper = self._make_stepper(opt, None, X2.shape[0], args)
            else:
                stepper = None
        if failure:
            raise _step_refused("train_step", failure, loss, lr)
        return loss, stepper, X2.shape[0]

    def _check_caller_state(self, optimizer: OptimizerOptions, state, steps) -> None:
        # The optimizer state and step count a caller keeps (run_steps, run_sklearn_epochs): the
        # kernels write into them, so their dtype and size are memory safety.
        if not isinstance(optimizer, OptimizerOptions):
            raise TypeError(f"optimizer: expected a cprop.optimizers.OptimizerOptions (e.g. "
                            f"check_optimizer('adam', ...)), got {type(optimizer).__name__}")
        if (not isinstance(state, np.ndarray) or state.dtype != self.dtype
                or state.shape != (optimizer.slots * self.n_params,)
                or not state.flags.c_contiguous):
            raise ValueError(f"state: expected a C-contiguous {self.dtype} array of "
                             f"{optimizer.slots * self.n_params} values")
        if (not isinstance(steps, np.ndarray) or steps.dtype != np.int64
                or steps.shape != (1,)):
            raise ValueError("steps: expected a one-element int64 array")

    def run_steps(self, X, T, lr: float, batch_size: int, optimizer: OptimizerOptions,
                  state: np.ndarray, steps: np.ndarray, *, order=None,
                  sklearn_conventions: bool = False, sample_weight=None, n_threads=None):
        """One pass over (X, T) in order, in minibatches, with an optimizer state the caller
        keeps (``cprop.sklearn`` keeps scikit-learn's), through the driver :meth:`fit` uses, in
        one kernel call. ``state`` is ``optimizer.fresh_state(...)`` and ``steps`` a
        one-element int64 array, both updated in place.

        ``order``: the rows to visit, in this order (indices into X; repeats allowed), instead
        of every row in order, so a caller's shuffle needs no copy of the data.

        ``sklearn_conventions``: scikit-learn's definitions instead of torch's: ``alpha`` is
        divided by each batch's rows (with ``sample_weight``, by the batch's weight sum), and
        Adam's ``eps`` is added to ``sqrt(v)`` rather than to ``sqrt(v / (1 - beta2**t))``.

        ``sample_weight``: one weight per row of X (indexed like X, whatever ``order`` is), as
        in :meth:`fit`: each batch's step follows its weighted mean loss.

        ``n_threads``: as :meth:`fit`'s (None: ``CPROP_NUM_THREADS``, else 1; any value gives
        the same bits).

        Returns ``(failure, epoch_loss, batch_loss, l2)``: failure 0, or why a step was refused
        (``cprop.mlp.FAILURE_LOSS``, ``FAILURE_UPDATE``, or ``FAILURE_ZERO_WEIGHT`` for a batch
        whose weights sum to 0; ``batch_loss`` is that batch's; nothing of it was applied);
        ``epoch_loss`` the mean over the rows visited of each batch's (weighted) mean loss
        weighted by its rows; ``l2`` with ``sklearn_conventions`` the sum over the batches of
        ``alpha / 2 * ||W||^2`` before each step times the batch's rows over its weight sum
        (scikit-learn adds ``alpha / 2 * ||W||^2 / weight sum`` to each batch's reported loss),
        else 0.
        """
        self._check_caller_state(optimizer, state, steps)
        X2, T2 = self._xt(X, T)
        sw = self._weights_of(sample_weight, X2)
        if order is None:
            n = X2.shape[0]
            order = np.empty(n, dtype=np.intp)
            given = False
        else:
            order = _check_order(order, X2.shape[0])
            n = order.shape[0]
            given = True
        batch_size = min(check_positive_int(batch_size, "batch_size"), n)
        lrs = np.array([check_learning_rate(lr, self.dtype)], dtype=np.float64)
        losses = np.empty(1, dtype=np.float64)
        sklearn_conventions = check_bool(sklearn_conventions, "sklearn_conventions")
        n_threads = check_n_threads(n_threads)
        with self._lock:
            A, D, grad = self._workspace(min(batch_size, _BLOCK_ROWS))
            with self._team(n_threads, batch_size, A) as team:
                failure, _, batch_loss, l2 = self._plan.fit(
                    self._params, X2, T2, lrs, batch_size, False, self._rng, optimizer,
                    self.train_biases, state, steps, order, grad, A, D, losses,
                    sklearn_conventions, given, sw, team)
        return failure, float(losses[0]), batch_loss, l2

    def run_sklearn_epochs(self, X, T, batch_size: int, optimizer: OptimizerOptions,
                           state: np.ndarray, steps: np.ndarray, order: np.ndarray,
                           loop: SklearnEpochs, losses: np.ndarray, *, sample_weight=None,
                           n_threads=None) -> tuple[int, float]:
        """Up to ``len(losses)`` epochs of scikit-learn's stochastic training loop
        (``BaseMultilayerPerceptron._fit_stochastic`` without early stopping) in one kernel
        call, with ``run_steps``' driver and scikit-learn's conventions
        (``sklearn_conventions=True``); ``cprop.sklearn`` runs its common case through it.

        Each epoch: the SGD momentum buffer rescaled if ``loop.lr`` changed (as ``cprop.sklearn``
        keeps scikit-learn's velocity), ``order`` reshuffled in place if ``loop.shuffle`` (the
        draws of ``numpy.random.RandomState.shuffle`` from the MT19937 state in ``loop``), one
        pass over the rows ``order`` lists (as :meth:`run_steps`), then scikit-learn's
        bookkeeping in ``loop``: the reported loss ``(epoch_loss * loop.loss_scale * n + l2) /
        n`` into ``losses[e]``, ``t += n``, the no-improvement count against ``best_loss -
        tol`` and ``best_loss``, and for ``loop.invscaling`` the next rate ``lr_init / (t + 1)
        ** power_t``. ``loop.epochs_done`` counts the epochs completed.

        ``order``: a C-contiguous intp array of row indices, shuffled in place. ``state``,
        ``steps``, ``sample_weight`` and ``n_threads`` as for :meth:`run_steps`.

        Returns ``(status, batch_loss)``: status 0 (every epoch run); a failure as in
        :meth:`run_steps` (that epoch not counted; ``batch_loss`` is the refused step's);
        ``EPOCHS_STALLED`` (the count passed ``loop.n_iter_no_change`` after the last epoch
        counted) or ``EPOCHS_RATE_HANDOFF`` (after that epoch, invscaling's next rate is not a
        finite rate > 0 in the network's dtype; ``loop.lr`` is unchanged). Ctrl-C raises
        KeyboardInterrupt; ``loop``, ``losses`` and ``order`` then hold what was done.
        """
        self._check_caller_state(optimizer, state, steps)
        if not isinstance(loop, SklearnEpochs):
            raise TypeError(f"loop: expected a cprop.mlp.SklearnEpochs, got "
                            f"{type(loop).__name__}")
        X2, T2 = self._xt(X, T)
        sw = self._weights_of(sample_weight, X2)
        if (not isinstance(order, np.ndarray) or order.dtype != np.intp or order.ndim != 1
                or not order.flags.c_contiguous or not order.flags.writeable):
            raise ValueError("order: expected a writable C-contiguous 1-D intp array (it is "
                             "shuffled in place)")
        _check_order(order, X2.shape[0])  # (non-empty, every index a row of X)
        if (not isinstance(losses, np.ndarray) or losses.dtype != np.float64
                or losses.ndim != 1 or losses.shape[0] < 1 or not losses.flags.c_contiguous):
            raise ValueError("losses: expected a non-empty C-contiguous 1-D float64 array")
        n = order.shape[0]
        batch_size = min(check_positive_int(batch_size, "batch_size"), n)
        check_learning_rate(loop.lr, self.dtype, "loop.lr")
        n_threads = check_n_threads(n_threads)
        with self._lock:
            A, D, grad = self._workspace(min(batch_size, _BLOCK_ROWS))
            with self._team(n_threads, batch_size, A) as team:
                return _mlp.run_sklearn_epochs(
                    self._plan, self._params, X2, T2, batch_size, optimizer, self.train_biases,
                    state, steps, order, grad, A, D, losses, loop, sw, team)

    def _team(self, n_threads: int, batch_size: int, A: np.ndarray):
        """A context giving the Team that shares batches of ``batch_size`` rows on
        ``n_threads`` threads (workspace A), or None when one thread does it all: a batch has
        ``Plan.parts`` parts, and more threads than parts would only wait."""
        threads = min(n_threads, self._plan.parts(batch_size))
        if threads <= 1:
            return contextlib.nullcontext(None)
        return _mlp.Team(self._plan, threads, A.shape[0] // self._plan.total_width, self.dtype)

    def _restore_optimizer(self, previous) -> None:
        if self._opt_state is not previous[1]:
            self._generation[0] += 1
        self._opt, self._opt_state, self._opt_steps = previous
        self._fast_step = None

    def fit(self, X, T, *, epochs: int = 1, lr: float = 0.1, batch_size: int = 1,
            shuffle: bool = True, seed: int | None = None, optimizer: str = "sgd",
            momentum: float = 0.0, nesterov: bool = False, beta1: float = 0.9,
            beta2: float = 0.999, eps: float = 1e-8, alpha: float = 0.0,
            lr_schedule="constant", validation_data=None, validation_fraction: float = 0.0,
            early_stopping: bool = False, patience: int = 10, min_delta: float = 0.0,
            callbacks=(), progress=None, sample_weight=None, n_threads=None) -> History:
        """Train on (X, T); each epoch runs in compiled code without the GIL.

        Batches of ``batch_size`` rows in epoch order (the last may be smaller and uses its own
        mean); with ``shuffle`` each epoch's order is a fresh Fisher-Yates shuffle drawn from the
        network's generator, which ``seed`` reseeds first. ``optimizer`` is ``"sgd"`` (with
        ``momentum``, ``nesterov``), ``"adam"`` (``beta1``, ``beta2``, ``eps``), ``"adamw"``
        (Adam's options) or ``"rprop"``; ``alpha`` is L2 on the weights (for ``"adamw"`` its
        decoupled weight decay, ``W <- W * (1 - lr * alpha)`` before each step, weights only, as
        ``torch.optim.AdamW``); ``lr_schedule`` sets each epoch's rate (see
        :mod:`cprop.schedules`).

        ``sample_weight``: one weight >= 0 per row (finite, not all 0), scikit-learn's semantics:
        each batch's step follows the gradient of its weighted mean loss
        ``sum_i w_i E_i / sum_i w_i``, so a weight of 2 is the row repeated within its batch; the
        history records each batch's weighted mean weighted by the batch's rows (scikit-learn's
        ``loss_curve_``). A batch whose weights sum to 0 raises ZeroDivisionError, as
        scikit-learn does (that step not applied, the ones before it kept).

        Validation: ``validation_data=(X_val, T_val)`` (or ``(X_val, T_val, sample_weight_val)``
        for a weighted validation loss), or ``validation_fraction`` of the rows held out (chosen
        by a shuffle from the network's generator when ``shuffle``, else the last rows; their
        weights go with them). ``early_stopping`` stops when the validation loss (the training
        loss if there is no validation data) has not improved by more than ``min_delta`` for
        ``patience`` epochs, and restores the parameters of the best epoch. Each of
        ``callbacks`` is called as ``callback(net, history)`` after every epoch; a true return
        value stops training.
        ``progress=True`` shows a tqdm bar with the loss (``None``: only on a terminal).

        ``n_threads``: threads that share each large batch (None: the ``CPROP_NUM_THREADS``
        environment variable, else 1, so nothing oversubscribes under scikit-learn's
        ``n_jobs``). A batch of 128 rows or more whose layers all go through BLAS gemm is cut
        into 2 or 4 fixed parts of at least 64 rows, whatever ``n_threads`` is; the parts'
        gradients are added in a fixed order, so every thread count gives the same bits. More
        threads than parts add nothing; smaller networks and batches run on one thread. BLAS's
        own threads are not changed: with ``n_threads`` > 1 set them to 1 (threadpoolctl).

        Returns a :class:`History`. A step whose loss is not finite or whose update would
        overflow stops training with FloatingPointError (naming the epoch and the learning
        rate); that step is not applied. Ctrl-C raises KeyboardInterrupt at the next batch
        boundary; the network keeps the parameters of the last completed step.
        """
        X2, T2 = self._xt(X, T)
        sw = self._weights_of(sample_weight, X2)
        epochs = check_positive_int(epochs, "epochs")
        if epochs * 24 > _memory_limit_bytes():  # the history alone would not fit
            raise ValueError(f"epochs: {epochs} epochs would not fit this machine's memory")
        lr = check_learning_rate(lr, self.dtype)
        batch_size = check_positive_int(batch_size, "batch_size")
        shuffle = check_bool(shuffle, "shuffle")
        seed = check_seed(seed)
        opt = check_optimizer(optimizer, momentum, nesterov, beta1, beta2, eps, alpha)
        schedule = check_schedule(lr_schedule)
        n_threads = check_n_threads(n_threads)
        early_stopping = check_bool(early_stopping, "early_stopping")
        if progress is not None:
            progress = check_bool(progress, "progress")
        patience = check_positive_int(patience, "patience")
        if isinstance(min_delta, (bool, np.bool_)) or not isinstance(
                min_delta, (int, float, np.integer, np.floating)) or not (
                math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta: expected a finite number >= 0, got {min_delta!r}")
        if callable(callbacks):
            callbacks = (callbacks,)
        try:
            callbacks = tuple(callbacks)
        except TypeError:
            raise TypeError("callbacks: expected a sequence of callables") from None
        for k, cb in enumerate(callbacks):
            if not callable(cb):
                raise TypeError(f"callbacks[{k}]: expected a callable, got {cb!r}")
        if isinstance(validation_fraction, (bool, np.bool_)) or not isinstance(
                validation_fraction, (int, float, np.integer, np.floating)) or not (
                0 <= validation_fraction < 1):
            raise ValueError(f"validation_fraction: expected a number in [0, 1), "
                             f"got {validation_fraction!r}")
        if validation_data is not None and validation_fraction:
            raise ValueError("validation_fraction: give validation_data or validation_fraction, "
                             "not both")
        X_val = T_val = sw_val = None
        if validation_data is not None:
            try:
                parts = tuple(validation_data)
            except TypeError:
                parts = ()
            if len(parts) not in (2, 3):
                raise ValueError("validation_data: expected a pair (X_val, T_val) or a triple "
                                 "(X_val, T_val, sample_weight_val)")
            X_val, T_val = self._xt(parts[0], parts[1], "validation_data[0]",
                                    "validation_data[1]")
            if len(parts) == 3 and parts[2] is not None:
                sw_val = check_sample_weight(parts[2], X_val.shape[0], self.dtype,
                                             "validation_data[2]")

        with self._lock:
            self._fast_step = None  # fit may change the optimizer options train_step cached
            self._check_params_finite()
            if seed is not None:
                self._rng[0] = seed
            if validation_fraction:
                X2, T2, sw, X_val, T_val, sw_val = self._split_validation(
                    X2, T2, sw, validation_fraction, shuffle)
            n = X2.shape[0]
            batch_size = min(batch_size, n)  # any batch_size >= n: one batch per epoch
            self._use_optimizer(opt, lr)
            A, D, grad = self._workspace(min(batch_size, _BLOCK_ROWS))
            order = np.empty(n, dtype=np.intp)
            lrs, lr_error = _epoch_rates(schedule, lr, epochs, self.dtype)
            losses = np.empty(len(lrs), dtype=np.float64)
            history = History()
            best = (math.inf, None, None)  # (monitored loss, epoch, params)
            waited = 0
            bar = _progress_bar(progress, epochs)
            # Python between epochs only when something needs it; else all epochs in one call.
            per_epoch = bool(callbacks) or bar is not None or X_val is not None or early_stopping
            starts = range(len(lrs)) if per_epoch else range(min(1, len(lrs)))
            with self._team(n_threads, batch_size, A) as team:
                try:
                    for e0 in starts:
                        e1 = e0 + 1 if per_epoch else len(lrs)
                        failure, done, batch_loss, _ = self._plan.fit(
                            self._params, X2, T2, lrs[e0:e1], batch_size, shuffle, self._rng, opt,
                            self.train_biases, self._opt_state, self._opt_steps, order, grad, A, D,
                            losses[e0:e1], sample_weight=sw, team=team)
                        history.loss.extend(losses[e0:e0 + done].tolist())
                        history.lr.extend(lrs[e0:e0 + done].tolist())
                        if failure:
                            e = e0 + done
                            exc = _step_refused(f"fit (epoch {e + 1} of {epochs})", failure,
                                                batch_loss, float(lrs[e]))
                            exc.history = history
                            raise exc
                        if not per_epoch:
                            break
                        e, epoch_loss = e0, history.loss[-1]
                        monitored = epoch_loss
                        if X_val is not None:
                            monitored = self._loss(X_val, T_val, sw_val)
                            history.val_loss.append(monitored)
                        if bar is not None:
                            bar.set_postfix(loss=f"{epoch_loss:.4g}", **(
                                {"val_loss": f"{monitored:.4g}"} if X_val is not None else {}))
                            bar.update(1)
                        if early_stopping:
                            if monitored < best[0] - min_delta:
                                best = (monitored, e, self._params.copy())
                                waited = 0
                            else:
                                waited += 1
                                if waited >= patience:
                                    history.stop_reason = "early_stopping"
                                    break
                        # every callback runs each epoch; any true result (np.True_ too) stops
                        if any([bool(cb(self, history)) for cb in callbacks]):
                            history.stop_reason = "callback"
                            break
                    else:
                        if lr_error is not None:
                            raise lr_error
                    if not per_epoch and lr_error is not None:
                        raise lr_error
                finally:
                    if bar is not None:
                        bar.close()
            if early_stopping and best[2] is not None:
                self._params[:] = best[2]
                history.best_epoch = best[1]
        return history

    def _split_validation(self, X2, T2, sw, fraction, shuffle):
        """fit's held-out rows: :func:`validation_split`'s rule on the network's generator (which
        advances only if the split is accepted); the sample weights (or None) split with them."""
        rng = self._rng.copy()
        train, val = _split_indices(X2.shape[0], fraction, shuffle, rng, "validation_fraction")
        sw_train = sw_val = None
        if sw is not None:
            sw_train, sw_val = np.ascontiguousarray(sw[train]), np.ascontiguousarray(sw[val])
            for part, rows in ((sw_train, "rows left to train on"), (sw_val, "held-out rows")):
                if not part.any():
                    raise ValueError(f"sample_weight: the {rows} of validation_fraction="
                                     f"{fraction} all have weight 0")
        self._rng[:] = rng
        return (np.ascontiguousarray(X2[train]), np.ascontiguousarray(T2[train]), sw_train,
                np.ascontiguousarray(X2[val]), np.ascontiguousarray(T2[val]), sw_val)

    def validation_split(self, n_samples: int, fraction: float, shuffle: bool = True):
        """``(train_idx, val_idx)``: the rows ``fit(..., validation_fraction=fraction,
        shuffle=shuffle)`` would hold out of ``n_samples`` rows if it were called now.

        Draws them from the network's generator, which it advances just as ``fit`` does, so a
        following ``fit(X[train_idx], T[train_idx], validation_data=(X[val_idx], T[val_idx]),
        shuffle=shuffle)`` trains exactly as ``fit(X, T, validation_fraction=fraction,
        shuffle=shuffle)`` would have (``cprop train`` splits this way). The rule is
        :func:`cprop.validation_split`'s, with the generator's current state as its seed.
        """
        n, fraction, shuffle = _check_split_args(n_samples, fraction, shuffle)
        with self._lock:
            return _split_indices(n, fraction, shuffle, self._rng, "fraction")

    # -- files ----------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the network to ``path`` (an ``.npz``; see :func:`cprop.load` and
        :mod:`cprop.io` for the format), atomically."""
        with self._lock:
            fields = {"layer_sizes": self.layer_sizes, "hidden": self.hidden,
                      "output": self.output, "loss": self.loss_name, "dtype": self.dtype,
                      "train_biases": self.train_biases, "negative_slope": self.negative_slope,
                      "seed": self.seed, "init": self.init, "dataset": self.dataset}
            _fileformat.save(path, fields, self._state(copy=False))  # no copy of big buffers

    def to_onnx(self, path) -> None:
        """Write the network as an ONNX model to ``path`` (needs ``pip install "cprop[onnx]"``).

        The graph computes :meth:`forward` on a batch: input ``"input"`` of shape
        ``("batch", n_in)``, output ``"output"`` of shape ``("batch", n_out)``, in the network's
        dtype (float32 or float64); see :mod:`cprop.onnx_export`. Written atomically.
        """
        from cprop.onnx_export import save_onnx

        with self._lock:
            save_onnx(self, path)

    # -- explanation ----------------------------------------------------------------------------

    def draw(self, path=None, *, x=None, t=None, lr=None, stage: str = "weights",
             weight_names=None, id_prefix: str = "") -> str:
        """The network as an SVG figure, at one stage of a backpropagation step.

        ``stage`` is ``"weights"`` (weights on the edges, biases in the units), ``"forward"``
        (each unit's net input and output for ``x``), ``"backward"`` (each unit's dE/da and
        delta for ``x``, ``t``) or ``"update"`` (the parameters after one SGD step with ``lr``,
        the changed ones outlined). Units and weights are named as :meth:`explain` prints them
        (``weight_names="seed"`` or ``"canonical"`` for an example's w1 .. w8). Returns the SVG
        text; with ``path`` also writes it (``.svg``, or ``.png`` with ``pip install
        "cprop[png]"``). The network is not changed. See :mod:`cprop.figures`.
        """
        from cprop.figures import draw

        return draw(self, path, x=x, t=t, lr=lr, stage=stage, weight_names=weight_names,
                    id_prefix=id_prefix)

    def explain(self, x, t, lr: float = 0.5):
        """The full derivation of one SGD step on one sample (x, t), without changing the network.

        Returns a :class:`cprop.explain.Trace`; ``print(trace)`` shows the step-by-step
        derivation, ``trace.to_dict()`` the numbers.
        """
        from cprop.explain import build_trace

        X2, T2 = self._one_sample(x, t)
        lr = check_learning_rate(lr, self.dtype)
        return build_trace(self, self._backprop_values(X2, T2, "explain"), lr)

    def backprop_values(self, x, t) -> BackpropValues:
        """Every value of backpropagation on one sample (x, t), layer by layer, as named arrays.

        Returns a :class:`BackpropValues`: the loss, the flat gradient and, for each weight
        layer, its parameters, inputs, net inputs ``z``, outputs ``a``, deltas ``dE/dz`` and
        gradient (see :class:`LayerValues`). The outputs, deltas, gradient and loss are the
        compiled kernels' own numbers; the network is not changed.
        """
        X2, T2 = self._one_sample(x, t)
        return self._backprop_values(X2, T2, "backprop_values")

    def _one_sample(self, x, t):
        X2, T2 = self._xt(x, t, "x", "t")
        if X2.shape[0] != 1:
            raise ValueError(f"x: expected one sample of shape ({self.layer_sizes[0]},), "
                             f"got shape {np.shape(x)}")
        return X2, T2

    def _backprop_values(self, X2, T2, where: str) -> BackpropValues:
        grad = np.empty(self.n_params, dtype=self.dtype)
        width = self._plan.total_width
        A = np.empty(width, dtype=self.dtype)
        D = np.zeros(width, dtype=self.dtype)
        with self._lock:
            self._check_params_finite()
            params = self._params.copy()
            loss = self._plan.gradient(params, X2, T2, grad, A, D)
        if not (math.isfinite(loss) and _mlp.all_finite(grad)):
            raise _overflow(where, "the loss or its gradient")
        # The one-sample workspace holds each layer's outputs (A) and deltas (D) side by side,
        # layer l's block at sizes[0] + ... + sizes[l - 1].
        sizes = self.layer_sizes
        layers = []
        offset = start = 0
        a_in = X2[0].copy()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            start += n_in
            W = params[offset : offset + n_in * n_out].reshape(n_in, n_out)
            b = params[offset + n_in * n_out : offset + n_in * n_out + n_out]
            gW = grad[offset : offset + n_in * n_out].reshape(n_in, n_out)
            gb = grad[offset + n_in * n_out : offset + n_in * n_out + n_out]
            offset += n_in * n_out + n_out
            # z, which the kernel overwrites with f(z): recomputed in Python floats, in the
            # kernel's order of addition (b first, then i = 0, 1, ...).
            inputs = [float(v) for v in a_in]
            z = []
            for j in range(n_out):
                s = float(b[j])
                for i in range(n_in):
                    s += inputs[i] * float(W[i, j])
                z.append(s)
            a = A[start : start + n_out].copy()
            layers.append(LayerValues(W=W, b=b, a_in=a_in, z=np.array(z), a=a,
                                      delta=D[start : start + n_out].copy(), grad_W=gW,
                                      grad_b=gb))
            a_in = a
        return BackpropValues(x=X2[0].copy(), t=T2[0].copy(), loss=float(loss), grad=grad,
                              layers=tuple(layers))
