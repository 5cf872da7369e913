"""The peers of W2 and W3: one network, trained the same way by cprop, NumPy, PyTorch, sklearn.

The network: ``n_in - n_hid - n_out``, sigmoid hidden layer, softmax output, mean cross-entropy
loss; plain minibatch SGD (no momentum, no L2) with a constant learning rate; batches of
``batch`` rows in the data's order (no shuffling; the last batch may be smaller and uses its own
mean). Every trainer starts from the same initial ``(W1, b1, W2, b2)``, ``W`` shaped
``(n_in, n_out)`` (so ``z = a @ W + b``), and ``reset()`` puts them back (untimed).

Each trainer: ``reset()``, ``run()`` (the timed part: all epochs), ``params()`` (the final
``[W1, b1, W2, b2]`` as float64 copies) and ``threads`` (which of the worker's thread settings it
uses: a key of ``_common.pools_by_owner``).
"""

from __future__ import annotations

import subprocess
import warnings
from dataclasses import dataclass

import numpy as np

from _common import CLoops, parse_c_output


@dataclass
class Problem:
    X: np.ndarray          # (n, n_in), float64 or float32, C-contiguous
    labels: np.ndarray     # (n,) int64 class labels
    T: np.ndarray          # (n, n_out) one-hot, X's dtype
    init: list             # [W1, b1, W2, b2], float64
    lr: float
    batch: int
    epochs: int

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def sizes(self):
        return [self.X.shape[1], self.init[0].shape[1], self.init[2].shape[1]]

    @property
    def n(self):
        return self.X.shape[0]


def make_problem(X, labels, n_out, n_hid, lr, batch, epochs, dtype, seed=0) -> Problem:
    """Cast X, one-hot the labels; the initial weights are cprop's Glorot-uniform draw (seed)."""
    import cprop

    net = cprop.MLP([X.shape[1], n_hid, n_out], hidden="sigmoid", output="softmax",
                    loss="cross_entropy", seed=seed)
    init = [np.array(a, dtype=np.float64) for a in
            (net.weights[0], net.biases[0], net.weights[1], net.biases[1])]
    X = np.ascontiguousarray(X, dtype=dtype)
    labels = np.asarray(labels, dtype=np.int64)
    T = np.zeros((X.shape[0], n_out), dtype=dtype)
    T[np.arange(X.shape[0]), labels] = 1
    return Problem(X, labels, T, init, float(lr), int(batch), int(epochs))


def mean_loss(params, X, labels) -> float:
    """Mean cross-entropy of the network ``params`` on (X, labels), in float64, from the logits."""
    W1, b1, W2, b2 = (np.asarray(p, dtype=np.float64) for p in params)
    X = np.asarray(X, dtype=np.float64)
    z1 = X @ W1 + b1
    e = np.exp(-np.abs(z1))
    h = np.where(z1 >= 0, 1 / (1 + e), e / (1 + e))      # sigmoid, exp never overflows
    z = h @ W2 + b2
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


# ------------------------------------------------------------------------------------------------
# cprop
# ------------------------------------------------------------------------------------------------

class Cprop:
    key, label, threads = "cprop", "cprop `fit`", "cprop"

    def __init__(self, p: Problem):
        import cprop

        self.p = p
        self.net = cprop.MLP(p.sizes, hidden="sigmoid", output="softmax", loss="cross_entropy",
                             dtype=p.dtype.name,
                             init=[(p.init[0], p.init[1]), (p.init[2], p.init[3])])
        self.initial = self.net.params.copy()

    def reset(self):
        self.net.params[:] = self.initial

    def run(self):
        p = self.p
        self.history = self.net.fit(p.X, p.T, epochs=p.epochs, lr=p.lr, batch_size=p.batch,
                                    shuffle=False)

    def params(self):
        n = self.net
        return [np.array(a, dtype=np.float64) for a in
                (n.weights[0], n.biases[0], n.weights[1], n.biases[1])]


# ------------------------------------------------------------------------------------------------
# NumPy
# ------------------------------------------------------------------------------------------------

class Numpy:
    """The loop written with NumPy: ``@`` (BLAS) with preallocated outputs, in-place updates."""

    key, label, threads = "numpy", "NumPy", "numpy"

    def __init__(self, p: Problem):
        self.p = p
        dt = p.dtype
        self.W1, self.b1, self.W2, self.b2 = (a.astype(dt) for a in p.init)
        self.initial = [a.copy() for a in (self.W1, self.b1, self.W2, self.b2)]

    def reset(self):
        for a, a0 in zip((self.W1, self.b1, self.W2, self.b2), self.initial):
            a[...] = a0

    def run(self):
        with np.errstate(over="ignore"):   # exp(-z) = inf for z << 0 gives sigmoid 0, correctly
            self._train()

    def _train(self):
        p = self.p
        X, T, lr, B = p.X, p.T, p.dtype.type(p.lr), p.batch
        W1, b1, W2, b2 = self.W1, self.b1, self.W2, self.b2
        n, n_hid, n_out = p.n, W1.shape[1], W2.shape[1]
        H_full = np.empty((B, n_hid), p.dtype)
        Z_full = np.empty((B, n_out), p.dtype)
        DH_full = np.empty((B, n_hid), p.dtype)
        gW1, gW2 = np.empty_like(W1), np.empty_like(W2)
        rows = np.arange(B)
        self.epoch_loss = []
        for _ in range(p.epochs):
            total = 0.0
            for s in range(0, n, B):
                Xb, Tb = X[s:s + B], T[s:s + B]
                c = Xb.shape[0]
                H, Z, DH = H_full[:c], Z_full[:c], DH_full[:c]
                # forward: H = sigmoid(Xb W1 + b1), Y = softmax(H W2 + b2) (in Z)
                np.matmul(Xb, W1, out=H)
                H += b1
                np.negative(H, out=H)
                np.exp(H, out=H)
                H += 1
                np.reciprocal(H, out=H)
                np.matmul(H, W2, out=Z)
                Z += b2
                Z -= Z.max(axis=1, keepdims=True)
                np.exp(Z, out=Z)
                Z /= Z.sum(axis=1, keepdims=True)
                total -= float(np.log(Z[rows[:c], p.labels[s:s + c]]).sum())
                # backward: D2 = (Y - T) / c, DH = (D2 W2^T) * H (1 - H)
                Z -= Tb
                Z *= 1 / c
                np.matmul(H.T, Z, out=gW2)
                gb2 = Z.sum(axis=0)
                np.matmul(Z, W2.T, out=DH)
                DH *= H
                H -= 1
                DH *= H
                np.negative(DH, out=DH)                     # * H (1 - H) = -(H (H - 1))
                np.matmul(Xb.T, DH, out=gW1)
                gb1 = DH.sum(axis=0)
                # SGD
                gW2 *= lr
                W2 -= gW2
                b2 -= lr * gb2
                gW1 *= lr
                W1 -= gW1
                b1 -= lr * gb1
            self.epoch_loss.append(total / n)

    def params(self):
        return [a.astype(np.float64) for a in (self.W1, self.b1, self.W2, self.b2)]


# ------------------------------------------------------------------------------------------------
# PyTorch
# ------------------------------------------------------------------------------------------------

class Torch:
    """The idiomatic PyTorch loop: nn.Linear + Sigmoid, F.cross_entropy, autograd, optim.SGD."""

    key, label, threads = "torch", "PyTorch (autograd + optim.SGD)", "torch"

    def __init__(self, p: Problem):
        import torch

        self.torch = torch
        self.p = p
        tdt = torch.float64 if p.dtype == np.float64 else torch.float32
        n_in, n_hid, n_out = p.sizes
        self.l1 = torch.nn.Linear(n_in, n_hid, dtype=tdt)
        self.l2 = torch.nn.Linear(n_hid, n_out, dtype=tdt)
        self.model = torch.nn.Sequential(self.l1, torch.nn.Sigmoid(), self.l2)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=p.lr)
        self.X = torch.from_numpy(p.X)
        self.y = torch.from_numpy(p.labels)
        self.initial = [torch.from_numpy(a.astype(p.dtype)) for a in
                        (p.init[0].T.copy(), p.init[1], p.init[2].T.copy(), p.init[3])]

    def reset(self):
        with self.torch.no_grad():
            for param, a0 in zip((self.l1.weight, self.l1.bias, self.l2.weight, self.l2.bias),
                                 self.initial):
                param.copy_(a0)

    def run(self):
        F = self.torch.nn.functional
        p, model, opt, X, y = self.p, self.model, self.opt, self.X, self.y
        for _ in range(p.epochs):
            for s in range(0, p.n, p.batch):
                opt.zero_grad()
                loss = F.cross_entropy(model(X[s:s + p.batch]), y[s:s + p.batch])
                loss.backward()
                opt.step()

    def params(self):
        l1, l2 = self.l1, self.l2
        return [a.detach().numpy().astype(np.float64) for a in
                (l1.weight.T, l1.bias, l2.weight.T, l2.bias)]


# ------------------------------------------------------------------------------------------------
# scikit-learn
# ------------------------------------------------------------------------------------------------

class Sklearn:
    """``MLPClassifier(solver="sgd")`` with momentum 0, alpha 0, no shuffling, a constant rate.

    Starting weights: MLPClassifier draws its own, so it is first fitted for one epoch on a few
    rows (untimed; that sets its classes and internal state), then ``coefs_``/``intercepts_``
    are replaced by the shared initial weights and ``warm_start=True`` makes the timed ``fit``
    continue from them with a fresh optimizer: ``epochs`` epochs over the whole data.
    ``reset()`` replaces them again. Its loss for a softmax output is the mean cross-entropy and
    its gradients, with alpha = 0, are cprop's; the check in the report is that the final
    parameters agree.
    """

    key, label, threads = "sklearn", "scikit-learn MLPClassifier", "sklearn"

    def __init__(self, p: Problem):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        self.ConvergenceWarning = ConvergenceWarning
        self.p = p
        self.clf = MLPClassifier(
            hidden_layer_sizes=(p.sizes[1],), activation="logistic", solver="sgd",
            learning_rate="constant", learning_rate_init=p.lr, momentum=0.0,
            nesterovs_momentum=False, alpha=0.0, batch_size=p.batch, shuffle=False,
            max_iter=1, tol=0.0, n_iter_no_change=10**9, early_stopping=False, random_state=0,
            warm_start=False)
        # One untimed epoch on rows that contain every class (they fix classes_ and n_features).
        first = np.unique(p.labels, return_index=True)[1]
        rows = np.union1d(first, np.arange(min(p.n, 256)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.fit(p.X[rows], p.labels[rows])
        self.clf.set_params(warm_start=True, max_iter=p.epochs)

    def reset(self):
        p, clf = self.p, self.clf
        clf.coefs_ = [p.init[0].astype(p.dtype), p.init[2].astype(p.dtype)]
        clf.intercepts_ = [p.init[1].astype(p.dtype), p.init[3].astype(p.dtype)]
        clf.loss_curve_ = []
        clf._no_improvement_count = 0
        clf.best_loss_ = np.inf
        clf.t_ = 0

    def run(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.ConvergenceWarning)
            self.clf.fit(self.p.X, self.p.labels)

    def params(self):
        c = self.clf
        return [np.asarray(a, dtype=np.float64) for a in
                (c.coefs_[0], c.intercepts_[0], c.coefs_[1], c.intercepts_[1])]


# ------------------------------------------------------------------------------------------------
# The hand-written C loop (float64 only)
# ------------------------------------------------------------------------------------------------

def run_c_loop(cloops: CLoops, p: Problem, repeats: int, exact: bool = False,
               native: bool = True) -> dict:
    """Train in C; returns ns/sample of each repeat, the epoch losses and the final params.

    ``exact`` builds with -ffp-contract=off (bit-identical to cprop) and runs once, untimed;
    ``native=False`` builds without -march=native (portable code, as cprop's wheels).
    """
    n_in, n_hid, n_out = p.sizes
    defines = [f"N_IN={n_in}", f"N_HID={n_hid}", f"N_OUT={n_out}"]
    flags = ["-ffp-contract=off"] if exact else []
    name = f"mlp_{n_in}_{n_hid}_{n_out}{'_exact' if exact else ''}{'' if native else '_portable'}"
    exe = cloops.build("mlp.c", name, defines, flags, native=native)
    if exe is None:
        return {"error": cloops.error}
    d = cloops.dir
    np.ascontiguousarray(p.X, dtype=np.float64).tofile(d / "X.bin")
    p.labels.astype(np.int32).tofile(d / "labels.bin")
    np.concatenate([a.ravel() for a in p.init]).astype(np.float64).tofile(d / "init.bin")
    out_path = d / "params_out.bin"
    cmd = [str(exe), str(d / "X.bin"), str(d / "labels.bin"), str(d / "init.bin"), str(out_path),
           str(p.n), str(p.batch), str(p.epochs), repr(p.lr), str(1 if exact else repeats)]
    parsed = parse_c_output(subprocess.run(cmd, capture_output=True, text=True,
                                           check=True).stdout)
    flat = np.fromfile(out_path, dtype=np.float64)
    params, offset = [], 0
    for shape in ((n_in, n_hid), (n_hid,), (n_hid, n_out), (n_out,)):
        size = int(np.prod(shape))
        params.append(flat[offset:offset + size].reshape(shape))
        offset += size
    return {"ns_per_sample": parsed["ns_per_sample"], "epoch_loss": parsed["epoch_loss"],
            "params": params, "compile": cloops.command("mlp.c", defines, flags, native)}


PEERS = {"cprop": Cprop, "numpy": Numpy, "torch": Torch, "sklearn": Sklearn}
