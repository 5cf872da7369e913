"""The reference ("oracle") multilayer perceptron, in plain Python.

This module is the readable definition of what cprop's compiled kernels compute. It uses only
lists of Python floats and the standard library (no NumPy, nothing from the rest of cprop), and
it spells out every step the way a textbook writes it:

* forward pass, per layer ``l``:   ``z_j = b_j + sum_i a_i W[i][j]``,   ``a_j = f(z_j)``;
* loss per sample (squared error): ``E = sum_k 1/2 (t_k - y_k)^2``, averaged over the samples;
* backpropagation:                 ``delta_k = (y_k - t_k) f'(y_k)`` at the output, and
  ``delta_i = (sum_j W[i][j] delta_j) f'(a_i)`` one layer down;
  ``dE/dW[i][j] = a_i delta_j``, ``dE/db_j = delta_j``, averaged over the batch;
* stochastic gradient descent:     ``p <- p - lr * dE/dp``.

Beyond being *mathematically* the same, it performs the same floating-point operations in the
same order as ``cprop/_kernels/_mlp.pyx`` (bias first, then inputs in index order; samples in
batch order, then one division by the batch size), so float64 results agree with the compiled
path to the last bit or two, and its random numbers (SplitMix64) agree bit for bit.

The oracle always computes in Python floats (IEEE double). ``dtype="float32"`` is accepted and
stored so that the constructor mirrors :class:`cprop.MLP`, but the arithmetic stays in double;
the compiled float32 path rounds every value (including the initial weights) to float32.

Layout (the same as the compiled network): ``weights[l][i][j]`` is the weight from unit ``i`` of
layer ``l`` to unit ``j`` of layer ``l + 1`` (a matrix of shape ``(n_in, n_out)``, so that
``z = a @ W + b``), and ``biases[l][j]`` is the bias of unit ``j`` of layer ``l + 1``.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Optional, Sequence, Union

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "DTYPES",
    "MASK64",
    "sigmoid",
    "activation",
    "activation_derivative",
    "SplitMix64",
    "History",
    "MLP",
]

#: Activation functions, by name (the same names as the compiled path).
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu")
#: Loss functions, by name.
LOSSES = ("squared_error",)
#: Parameter dtypes accepted by the constructor (the oracle itself always uses Python floats).
DTYPES = ("float64", "float32")
#: All 64 bits set: ``x & MASK64`` is ``x`` reduced modulo 2**64, i.e. C's uint64_t wrap-around.
MASK64 = 0xFFFFFFFFFFFFFFFF

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


def activation(name: str, z: float) -> float:
    """The activation ``f(z)`` called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return math.tanh(z)
    if name == "relu":
        return z if z > 0 else 0.0
    if name == "identity":
        return z
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def activation_derivative(name: str, a: float) -> float:
    """The derivative ``f'(z)``, written in terms of the activation's OUTPUT ``a = f(z)``.

    Backpropagation has ``a`` at hand, and each of these derivatives is a simple function of it:
    sigmoid' = a (1 - a), tanh' = 1 - a^2, relu' = [a > 0] (0 at z = 0, as PyTorch),
    identity' = 1.
    """
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return 1.0 if a > 0 else 0.0
    if name == "identity":
        return 1.0
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


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
# Training history
# --------------------------------------------------------------------------------------------

class History:
    """What :meth:`MLP.fit` returns.

    ``loss[e]`` is the mean over the samples of the loss computed during epoch ``e`` (each
    batch's mean loss before its update, weighted by the batch's size); ``epochs`` is the number
    of epochs run.
    """

    def __init__(self, loss: Optional[list[float]] = None) -> None:
        self.loss: list[float] = [] if loss is None else list(loss)
        self.epochs: int = len(self.loss)

    def __repr__(self) -> str:
        return f"History(epochs={self.epochs}, loss={self.loss!r})"


# --------------------------------------------------------------------------------------------
# Argument checking
# --------------------------------------------------------------------------------------------

def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real)


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


def _check_lr(lr: Any) -> float:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a finite number > 0, got {lr!r}")
    lr = float(lr)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr}")
    return lr


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------

class MLP:
    """A fully connected feed-forward network trained by backpropagation and SGD.

    ``layer_sizes`` lists the widths, input first: ``[2, 2, 2]`` is 2 inputs, one hidden layer
    of 2 units and 2 outputs. ``hidden`` is the activation of every hidden layer, ``output``
    that of the last layer. ``seed`` (an int in [0, 2**64), or None for one drawn from the OS
    and kept in ``self.seed``) seeds the generator that draws the initial weights and then
    every epoch's shuffle. With ``train_biases=False`` training leaves the biases fixed.

    ``weights`` and ``biases`` are plain nested lists; reassign or mutate them freely.
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
        self.hidden: str = _check_name(hidden, ACTIVATIONS, "hidden")
        self.output: str = _check_name(output, ACTIVATIONS, "output")
        self.loss_name: str = _check_name(loss, LOSSES, "loss")
        self.dtype: str = _check_name(dtype, DTYPES, "dtype")
        self.train_biases: bool = _check_bool(train_biases, "train_biases")
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        self.seed: int = _check_seed(seed)
        self.rng = SplitMix64(self.seed)

        # Glorot (Xavier) uniform initialisation: W ~ U(-limit, limit) with
        # limit = sqrt(6 / (n_in + n_out)), drawn layer by layer, row by row; biases 0.
        self.weights: list[Matrix] = []
        self.biases: list[Vector] = []
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            limit = math.sqrt(6.0 / (n_in + n_out))
            W = [[(2.0 * self.rng.uniform() - 1.0) * limit for _j in range(n_out)]
                 for _i in range(n_in)]
            self.weights.append(W)
            self.biases.append([0.0] * n_out)

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

    def layer_activation(self, l: int) -> str:
        """The activation of weight layer ``l``: ``hidden`` below the top, ``output`` at the top."""
        return self.output if l == self.n_layers - 1 else self.hidden

    def _check_params(self) -> None:
        """Check that ``weights``/``biases`` (which users may reassign) still fit the layout."""
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

    # ---- flat parameter vector --------------------------------------------------------------

    def params_flat(self) -> list[float]:
        """All parameters in the compiled layout: per layer, W row-major (i outer, j inner), then b."""
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

    # ---- forward pass -----------------------------------------------------------------------

    def _dense(self, a: Vector, W: Matrix, b: Vector, act: str) -> Vector:
        """One layer for one sample: ``z_j = b_j + a_0 W[0][j] + a_1 W[1][j] + ...`` (added
        left to right, starting from the bias), then ``f(z_j)``."""
        out = []
        for j in range(len(b)):
            z = float(b[j])
            for i in range(len(a)):
                z += a[i] * W[i][j]
            out.append(activation(act, z))
        return out

    def _forward_layers(self, rows: Matrix) -> list[Matrix]:
        """Every layer's activations: ``acts[0]`` is the input rows, ``acts[L]`` the outputs."""
        acts = [rows]
        for l in range(self.n_layers):
            W, b, act = self.weights[l], self.biases[l], self.layer_activation(l)
            acts.append([self._dense(a, W, b, act) for a in acts[l]])
        return acts

    def forward(self, X: Any) -> Union[Matrix, Vector]:
        """The network's outputs: a list of rows for a list of samples, a list for one sample."""
        self._check_params()
        rows, single = _as_rows(X, self.layer_sizes[0], "X")
        Y = self._forward_layers(rows)[-1]
        return Y[0] if single else Y

    # ---- loss and gradients -----------------------------------------------------------------

    def _batch(self, X: Any, T: Any) -> tuple[Matrix, Matrix]:
        self._check_params()
        rows, _ = _as_rows(X, self.layer_sizes[0], "X")
        targets, _ = _as_rows(T, self.layer_sizes[-1], "T")
        if len(rows) != len(targets):
            raise ValueError(f"X has {len(rows)} samples but T has {len(targets)}")
        return rows, targets

    def _loss_and_gradients(
        self, rows: Matrix, targets: Matrix, want_grad: bool = True,
    ) -> tuple[float, Optional[list[Matrix]], Optional[list[Vector]]]:
        """The mean loss over the batch and (if ``want_grad``) the gradient of that mean loss.

        The same operations in the same order as the kernel ``batch_gradient``.
        """
        n, L = len(rows), self.n_layers
        acts = self._forward_layers(rows)
        out_act = self.layer_activation(L - 1)

        # Output layer: per-sample loss E = sum_k 1/2 (t_k - y_k)^2 and
        # delta_k = dE/dz_k = dE/dy_k * dy_k/dz_k = (y_k - t_k) f'(y_k).
        total = 0.0
        delta: Matrix = []
        for y, t in zip(acts[L], targets):
            s = 0.0
            d = []
            for k in range(len(y)):
                diff = t[k] - y[k]
                s += 0.5 * diff * diff
                d.append((y[k] - t[k]) * activation_derivative(out_act, y[k]))
            total += s
            delta.append(d)
        mean_loss = total / n
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
                        d_in.append(s * activation_derivative(below, a[i]))
                    delta_in.append(d_in)
            delta = delta_in

        # Sums over the samples -> gradient of the mean loss: one division per entry.
        grad_W = [[[g / n for g in row] for row in gW] for gW in grad_W]
        grad_b = [[g / n for g in gb] for gb in grad_b]
        return mean_loss, grad_W, grad_b

    def loss(self, X: Any, T: Any) -> float:
        """The mean over the samples of the per-sample loss ``sum_k 1/2 (t_k - y_k)^2``."""
        rows, targets = self._batch(X, T)
        return self._loss_and_gradients(rows, targets, want_grad=False)[0]

    def gradients(self, X: Any, T: Any) -> tuple[list[Matrix], list[Vector]]:
        """``(grad_weights, grad_biases)``: the gradient of :meth:`loss` with respect to
        ``weights`` and ``biases``, shaped like them."""
        rows, targets = self._batch(X, T)
        _, grad_W, grad_b = self._loss_and_gradients(rows, targets)
        return grad_W, grad_b

    # ---- training ---------------------------------------------------------------------------

    def _sgd_update(self, grad_W: list[Matrix], grad_b: list[Vector], lr: float) -> bool:
        """``p <- p - lr * dE/dp`` for every weight, and for every bias if ``train_biases``.

        The new values are computed first and applied only if every one is finite; a step
        that would overflow is refused whole (returns False) and nothing changes.
        """
        new_W = [[[w - lr * g for w, g in zip(row, grow)] for row, grow in zip(W, gW)]
                 for W, gW in zip(self.weights, grad_W)]
        new_b = ([[b - lr * g for b, g in zip(bias, gb)] for bias, gb in zip(self.biases, grad_b)]
                 if self.train_biases else None)
        values = [v for W in new_W for row in W for v in row]
        if new_b is not None:
            values += [v for b in new_b for v in b]
        if not all(math.isfinite(v) for v in values):
            return False
        for W, nW in zip(self.weights, new_W):
            for row, nrow in zip(W, nW):
                row[:] = nrow
        if new_b is not None:
            for b, nb in zip(self.biases, new_b):
                b[:] = nb
        return True

    def train_step(self, X: Any, T: Any, lr: float) -> float:
        """One SGD step on the batch ``(X, T)``; returns the mean loss before the step.

        If that loss is not finite, or the update would make a parameter inf/NaN, raises
        ``FloatingPointError`` and leaves the parameters unchanged.
        """
        lr = _check_lr(lr)
        rows, targets = self._batch(X, T)
        batch_loss, grad_W, grad_b = self._loss_and_gradients(rows, targets)
        if not math.isfinite(batch_loss):
            raise FloatingPointError(f"the loss is {batch_loss} with lr={lr}; step not applied")
        if not self._sgd_update(grad_W, grad_b, lr):
            raise FloatingPointError(f"the update with lr={lr} would overflow; step not applied")
        return batch_loss

    def fit(
        self,
        X: Any,
        T: Any,
        epochs: int = 1,
        lr: float = 0.1,
        batch_size: int = 1,
        shuffle: bool = True,
        seed: Optional[int] = None,
    ) -> History:
        """Minibatch SGD for ``epochs`` epochs; returns the per-epoch loss in a :class:`History`.

        Each epoch visits the samples in a fresh shuffled order (or in order 0..n-1 if
        ``shuffle`` is False), in batches of ``batch_size`` consecutive entries of that order (the
        last batch may be smaller); each batch takes one step along the gradient of its own mean
        loss. ``seed`` (if given) reseeds the network's generator first. A non-finite batch loss
        or an update that would overflow raises ``FloatingPointError`` before that batch's update
        is applied (earlier updates stay applied).
        """
        epochs = _check_int(epochs, "epochs", 1)
        lr = _check_lr(lr)
        batch_size = _check_int(batch_size, "batch_size", 1)
        shuffle = _check_bool(shuffle, "shuffle")
        if seed is not None:
            self.rng = SplitMix64(_check_seed(seed))
        rows, targets = self._batch(X, T)
        n = len(rows)

        history = History()
        for epoch in range(epochs):
            order = self.rng.shuffled_order(n) if shuffle else list(range(n))
            epoch_loss = 0.0
            for start in range(0, n, batch_size):
                batch = order[start:start + batch_size]
                count = len(batch)
                batch_loss, grad_W, grad_b = self._loss_and_gradients(
                    [rows[k] for k in batch], [targets[k] for k in batch])
                if not math.isfinite(batch_loss):
                    raise FloatingPointError(
                        f"the loss became {batch_loss} in epoch {epoch + 1} with lr={lr}; "
                        f"training diverged (try a smaller lr)"
                    )
                if not self._sgd_update(grad_W, grad_b, lr):
                    raise FloatingPointError(
                        f"the update in epoch {epoch + 1} with lr={lr} would overflow; "
                        f"training diverged (try a smaller lr)"
                    )
                epoch_loss += batch_loss * count
            history.loss.append(epoch_loss / n)
            history.epochs = len(history.loss)
        return history

    def __repr__(self) -> str:
        return (f"oracle.MLP({self.layer_sizes}, hidden={self.hidden!r}, output={self.output!r}, "
                f"loss={self.loss_name!r}, dtype={self.dtype!r}, seed={self.seed}, "
                f"train_biases={self.train_biases})")
