"""``cprop.MLP``: a multilayer perceptron whose numbers are computed by compiled kernels.

This module is the thin Python layer: it checks every argument once, lays the parameters out
in one flat buffer, allocates outputs and workspaces, and hands pointers to
:mod:`cprop._kernels._mlp`, which runs without the GIL.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from cprop._kernels import _mlp
from cprop._validation import (
    check_bool,
    check_dtype,
    check_inputs,
    check_learning_rate,
    check_positive_int,
    check_seed,
    check_targets,
)
from cprop.activations import HIDDEN, OUTPUT, activation_code

__all__ = ["MLP", "History"]

LOSSES = tuple(_mlp.LOSS_CODES)

# Rows per block when a call covers many samples (forward, loss, gradients of a big X): the
# workspace is block_rows * (sum of layer widths) values, whatever the number of samples.
_BLOCK_ROWS = 256


@dataclass
class History:
    """What :meth:`MLP.fit` returns.

    ``loss[e]`` is the mean over samples of the loss computed during epoch ``e`` (each batch's
    mean loss before its update, weighted by the batch's size), as scikit-learn's
    ``loss_curve_``.
    """

    loss: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)


def _check_layer_sizes(layer_sizes) -> list[int]:
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(
            f"layer_sizes: expected a sequence of layer widths like [2, 2, 2], got {layer_sizes!r}"
        )
    sizes = list(layer_sizes)
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


def _overflow(method: str, what: str) -> FloatingPointError:
    return FloatingPointError(
        f"{method}: {what} overflowed to inf/NaN inside the network (finite inputs and "
        "parameters, but a net input z = a @ W + b exceeded the float range); the weights or "
        "the inputs are too large"
    )


def _step_refused(where: str, failure: int, loss: float, lr: float) -> FloatingPointError:
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


class MLP:
    """A fully connected feed-forward network trained by backpropagation.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from input to output, e.g. ``[2, 2, 2]``; zero or more hidden layers.
    hidden : {"sigmoid", "tanh", "relu", "identity"}
        Activation of every hidden layer.
    output : {"sigmoid", "identity"}
        Activation of the output layer.
    loss : {"squared_error"}
        Per-sample loss ``E = sum_k 1/2 (t_k - y_k)**2``; ``loss()`` reports its mean over samples.
    dtype : {"float64", "float32"}
        Precision of the parameters, the arithmetic and the outputs.
    seed : int in [0, 2**64) or None
        Seeds cprop's SplitMix64 generator, which draws the Glorot-uniform initial weights and
        then every epoch's shuffle. ``None`` draws a seed from the OS and keeps it in ``self.seed``.
    train_biases : bool
        If False, training leaves the biases fixed (``gradients`` still returns theirs).

    Attributes
    ----------
    params : ndarray, 1-D
        Every parameter in one contiguous buffer: for each layer, W row-major then b.
    weights, biases : tuple of ndarray
        Writable views into ``params``: ``weights[l]`` has shape ``(n_in, n_out)`` (so
        ``z = a @ W + b``) and ``biases[l]`` shape ``(n_out,)``.

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
    ):
        sizes = _check_layer_sizes(layer_sizes)
        hidden_code = activation_code(hidden, HIDDEN, "hidden")
        output_code = activation_code(output, OUTPUT, "output")
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(
                f"loss: expected one of {', '.join(repr(x) for x in LOSSES)}, got {loss!r}"
            )
        dt = check_dtype(dtype)
        seed = check_seed(seed)
        train_biases = check_bool(train_biases, "train_biases")

        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        n_bytes = n_params * dt.itemsize
        if n_bytes > _memory_limit_bytes():
            raise ValueError(
                f"layer_sizes: a network of {sizes} has {n_params} parameters "
                f"({n_bytes / 2**30:.1f} GiB), more than this machine's memory"
            )

        self.layer_sizes = sizes
        self.hidden = hidden
        self.output = output
        self.loss_name = loss
        self.dtype = dt
        self.train_biases = train_biases
        n_layers = len(sizes) - 1
        codes = [hidden_code] * (n_layers - 1) + [output_code]
        self._plan = _mlp.Plan(sizes, codes, _mlp.LOSS_CODES[loss])
        assert self._plan.n_params == n_params
        self._params = np.zeros(n_params, dtype=dt)
        self._make_views()

        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        self.seed = seed
        self._rng = np.array([seed], dtype=np.uint64)
        self._plan.init_glorot_uniform(self._params, self._rng)

        self._lock = threading.RLock()
        self._workspaces: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

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

    def __repr__(self) -> str:
        return (
            f"MLP({self.layer_sizes}, hidden={self.hidden!r}, output={self.output!r}, "
            f"loss={self.loss_name!r}, dtype={self.dtype.name!r}, seed={self.seed}, "
            f"train_biases={self.train_biases})"
        )

    def _check_params_finite(self) -> None:
        # Parameters are user-writable views, so they are checked like any other input.
        if not _mlp.all_finite(self._params):
            raise ValueError("params: the network's parameters contain NaN or infinity")

    def _workspace(self, rows: int):
        """(A, D, grad) for blocks of `rows` samples, allocated once and reused."""
        ws = self._workspaces.get(rows)
        if ws is None:
            width = self._plan.total_width
            ws = (
                np.empty(rows * width, dtype=self.dtype),
                np.empty(rows * width, dtype=self.dtype),
                np.empty(self.n_params, dtype=self.dtype),
            )
            if len(self._workspaces) > 8:
                self._workspaces.clear()
            self._workspaces[rows] = ws
        return ws

    # -- evaluation -----------------------------------------------------------------------------

    def _xt(self, X, T):
        X2, single = check_inputs(X, self.layer_sizes[0], self.dtype)
        T2 = check_targets(T, X2.shape[0], self.layer_sizes[-1], single, self.dtype)
        return X2, T2

    def forward(self, X) -> np.ndarray:
        """The network's outputs: ``(n_samples, n_out)`` for 2-D X, ``(n_out,)`` for one sample."""
        X2, single = check_inputs(X, self.layer_sizes[0], self.dtype)
        out = np.empty((X2.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        with self._lock:
            self._check_params_finite()
            A, _, _ = self._workspace(min(X2.shape[0], _BLOCK_ROWS))
            self._plan.forward(self._params, X2, out, A)
        if not _mlp.all_finite_2d(out):
            raise _overflow("forward", "the outputs")
        return out[0] if single else out

    predict = forward

    def loss(self, X, T) -> float:
        """Mean over samples of the per-sample loss (``sum_k 1/2 (t_k - y_k)**2``)."""
        X2, T2 = self._xt(X, T)
        with self._lock:
            self._check_params_finite()
            A, _, _ = self._workspace(min(X2.shape[0], _BLOCK_ROWS))
            loss = self._plan.loss(self._params, X2, T2, A)
        if not math.isfinite(loss):
            raise _overflow("loss", "the loss")
        return loss

    def gradients(self, X, T):
        """``(grad_weights, grad_biases)``: the exact gradient of ``self.loss(X, T)``.

        Lists shaped like ``weights`` and ``biases`` (views into one new flat array).
        """
        X2, T2 = self._xt(X, T)
        grad = np.empty(self.n_params, dtype=self.dtype)
        with self._lock:
            self._check_params_finite()
            A, D, _ = self._workspace(min(X2.shape[0], _BLOCK_ROWS))
            loss = self._plan.gradient(self._params, X2, T2, grad, A, D)
        if not (math.isfinite(loss) and _mlp.all_finite(grad)):
            raise _overflow("gradients", "the loss or its gradient")
        return self._split(grad)

    def _split(self, flat: np.ndarray):
        gw, gb, offset = [], [], 0
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            gw.append(flat[offset : offset + n_in * n_out].reshape(n_in, n_out))
            offset += n_in * n_out
            gb.append(flat[offset : offset + n_out])
            offset += n_out
        return gw, gb

    # -- training -------------------------------------------------------------------------------

    def train_step(self, X, T, lr: float = 0.1) -> float:
        """One SGD step on the batch (X, T) with the gradient of its mean loss.

        Returns the mean loss before the step. Raises FloatingPointError (and leaves the network
        unchanged) if that loss is not finite.
        """
        X2, T2 = self._xt(X, T)
        lr = check_learning_rate(lr, self.dtype)
        with self._lock:
            self._check_params_finite()
            A, D, grad = self._workspace(min(X2.shape[0], _BLOCK_ROWS))
            loss, failure = self._plan.train_step(self._params, X2, T2, lr, self.train_biases,
                                                  grad, A, D)
        if failure:
            raise _step_refused("train_step", failure, loss, lr)
        return loss

    def fit(self, X, T, epochs: int = 1, lr: float = 0.1, batch_size: int = 1,
            shuffle: bool = True, seed: int | None = None) -> History:
        """Minibatch SGD over (X, T); the whole epoch loop runs in compiled code without the GIL.

        Batches of ``batch_size`` rows in epoch order (the last may be smaller and uses its own
        mean); with ``shuffle`` each epoch's order is a fresh Fisher-Yates shuffle drawn from the
        network's generator, which ``seed`` reseeds first. Ctrl-C raises KeyboardInterrupt at the
        next batch boundary; the network keeps the parameters of the last completed step.
        """
        X2, T2 = self._xt(X, T)
        epochs = check_positive_int(epochs, "epochs")
        if epochs * 8 > _memory_limit_bytes():  # the history alone would not fit
            raise ValueError(f"epochs: {epochs} epochs would not fit this machine's memory "
                             "(8 bytes of history per epoch)")
        lr = check_learning_rate(lr, self.dtype)
        n = X2.shape[0]
        # any batch_size >= n means one batch per epoch
        batch_size = min(check_positive_int(batch_size, "batch_size"), n)
        shuffle = check_bool(shuffle, "shuffle")
        seed = check_seed(seed)
        rows = min(batch_size, _BLOCK_ROWS)
        history = np.zeros(epochs, dtype=np.float64)
        order = np.empty(n, dtype=np.intp)
        with self._lock:
            self._check_params_finite()
            if seed is not None:
                self._rng[0] = seed
            A, D, grad = self._workspace(rows)
            done, failure, bad_loss = self._plan.fit(
                self._params, X2, T2, epochs, lr, batch_size, shuffle, self._rng,
                self.train_biases, order, grad, A, D, history,
            )
        if failure:
            raise _step_refused(f"fit (epoch {done + 1} of {epochs})", failure, bad_loss, lr)
        return History(loss=history.tolist())

    # -- explanation ----------------------------------------------------------------------------

    def explain(self, x, t, lr: float = 0.5):
        """The full derivation of one SGD step on one sample (x, t), without changing the network.

        Returns a :class:`cprop.explain.Trace`; ``print(trace)`` shows the step-by-step
        derivation, ``trace.to_dict()`` the numbers.
        """
        from cprop.explain import build_trace

        X2, single = check_inputs(x, self.layer_sizes[0], self.dtype, name="x")
        if not single and X2.shape[0] != 1:
            raise ValueError(f"x: expected one sample of shape ({self.layer_sizes[0]},), "
                             f"got shape {np.shape(x)}")
        T2 = check_targets(t, 1, self.layer_sizes[-1], True, self.dtype, name="t", inputs="x")
        lr = check_learning_rate(lr, self.dtype)
        grad = np.empty(self.n_params, dtype=self.dtype)
        width = self._plan.total_width
        A = np.empty(width, dtype=self.dtype)
        D = np.zeros(width, dtype=self.dtype)
        with self._lock:
            self._check_params_finite()
            params = self._params.copy()
            loss = self._plan.gradient(params, X2, T2, grad, A, D)
        if not (math.isfinite(loss) and _mlp.all_finite(grad)):
            raise _overflow("explain", "the loss or its gradient")
        return build_trace(self, params, X2[0], T2[0], lr, A, D, grad, float(loss))
