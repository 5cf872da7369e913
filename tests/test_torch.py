"""Cross-checks against PyTorch: autograd for the gradients, torch.optim for the optimizers.

torch (2.13.0, CPU) is a declared test extra (``pip install -e '.[test]'``), so it is imported
normally: a missing torch is an error, not a silent skip.

What is compared, and how closely:

1. ``net.loss`` / ``net.gradients`` against autograd of the same network written in torch
   (``z = a @ W + b`` with tensors built from ``net.weights`` / ``net.biases``), float64, for
   every hidden activation x every valid (output, loss) pairing, 1-3 hidden layers, several
   seeds. Gradients: ``max|a - b| <= max(1e-10 * max|b|, 1e-14)`` per parameter array (b is
   torch's). Loss: relative 1e-12.
2. Optimizer trajectories (SGD, momentum, Nesterov, Adam and AdamW with two settings each,
   Rprop; alpha 0 and 1e-2, AdamW's decoupled ``weight_decay`` also at 0.1 and 0.5;
   train_biases True and False): 20 full-batch ``train_step`` calls against 20
   ``loss.backward(); opt.step()``; the same through ``fit`` (bit-identical to the train_steps);
   and minibatches (``fit(epochs=3, batch_size=5, shuffle=False)``, last batch of 1 row).
   Parameters: the same norm-wise bound, 1e-10 relative per array.
3. Optimizer state: carried over between fit calls while the options stay the same (alpha may
   change), started afresh when they change, as a new torch optimizer would.
4. float32: 20 Adam steps against torch float32 (1e-4 relative); everything stays float32.
5. Stability: logits at +-1000 for every loss give finite losses and gradients equal to torch's.

Why an absolute floor of 1e-14 next to the 1e-10 relative bound: a parameter array whose
gradient is (nearly) zero - a layer behind saturated or dead units, say - has a "relative" error
that is rounding noise divided by rounding noise. Both sides compute the same sums in different
orders (cprop adds inputs in index order, torch calls BLAS), which leaves differences of a few
ulps of the *terms*, O(1e-16) for O(1) terms; 1e-14 is 100x that and still 1e-4 of the
relative bound applied to an O(1) gradient, so it cannot hide a real error in a gradient of
ordinary size.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cprop
from parity import hidden_pre_activations, rel_err

F64 = torch.float64
RTOL = 1e-10          # gradients and float64 trajectories, per parameter array, norm-wise
ATOL = 1e-14          # absolute floor for (near-)zero arrays, see the module docstring
LOSS_RTOL = 1e-12     # loss values
F32_RTOL = 1e-4       # float32 trajectories
RELU_KINK = 1e-6      # hidden pre-activations of relu/leaky_relu layers must stay this far from 0

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "identity")
PAIRINGS = (
    ("sigmoid", "squared_error"),
    ("softmax", "squared_error"),
    ("identity", "squared_error"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
    ("exp", "poisson"),
    ("exp", "squared_error"),
)
SLOPES = (0.01, 0.1, 0.3)
GRAD_SEEDS = range(4)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def assert_close(actual, expected, what, rtol=RTOL, atol=ATOL):
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    assert np.all(np.isfinite(a)), f"{what}: not finite: {a!r}"
    if a.size == 0:
        return
    diff = float(np.max(np.abs(a - b)))
    scale = float(np.max(np.abs(b)))
    assert diff <= max(rtol * scale, atol), (
        f"{what}: max|diff| {diff:.3e}, relative {rel_err(a, b):.3e} > {rtol:g} "
        f"(max|ref| {scale:.3e})")


def hidden_fn(name, slope):
    return {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=slope),
        "identity": lambda z: z,
    }[name]


def torch_params(net, dtype=F64):
    """Leaf tensors with the network's parameters (copies)."""
    Ws = [torch.tensor(W, dtype=dtype, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, dtype=dtype, requires_grad=True) for b in net.biases]
    return Ws, bs


def torch_logits(net, Ws, bs, X):
    """The output layer's z, and every hidden layer's z, for the torch copy of `net`."""
    f = hidden_fn(net.hidden, net.negative_slope)
    a = X
    zs = []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        z = a @ W + b
        zs.append(z)
        if l < len(Ws) - 1:
            a = f(z)
    return zs[-1], zs[:-1]


def torch_output(net, Z):
    return {"sigmoid": torch.sigmoid, "identity": lambda z: z,
            "softmax": lambda z: torch.softmax(z, dim=1), "exp": torch.exp}[net.output](Z)


def torch_loss(net, Z, T):
    """The mean over samples of the per-sample loss, written the way torch users write it."""
    n = Z.shape[0]
    if net.loss_name == "cross_entropy":
        return -(T * torch.log_softmax(Z, dim=1)).sum(1).mean()
    if net.loss_name == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(Z, T, reduction="sum") / n
    if net.loss_name == "poisson":
        # torch's PoissonNLLLoss(log_input=True) is e^z - t z; cprop's (scikit-learn's half
        # Poisson deviance) adds the constant t log t - t, which has no gradient
        nll = torch.nn.PoissonNLLLoss(log_input=True, full=False, reduction="sum")(Z, T)
        return (nll + (torch.xlogy(T, T) - T).sum()) / n
    Y = torch_output(net, Z)
    return (0.5 * (T - Y) ** 2).sum(1).mean()


def as_t(a, dtype=F64):
    return torch.tensor(np.asarray(a), dtype=dtype)


def make_targets(rng, output, loss, n, n_out, kind=0):
    if loss == "cross_entropy":
        if kind % 2:  # one-hot rows
            T = np.zeros((n, n_out))
            T[np.arange(n), rng.integers(0, n_out, size=n)] = 1.0
            return T
        return rng.dirichlet(np.ones(n_out), size=n)  # probability rows
    if loss == "binary_cross_entropy":
        if kind % 2:
            return rng.integers(0, 2, size=(n, n_out)).astype(np.float64)
        return rng.uniform(0.0, 1.0, size=(n, n_out))
    if loss == "poisson":  # counts (zeros included) or rates
        if kind % 2:
            return rng.poisson(2.0, size=(n, n_out)).astype(np.float64)
        return rng.uniform(0.0, 4.0, size=(n, n_out))
    if output == "identity":
        return rng.normal(size=(n, n_out))
    return rng.uniform(0.0, 1.0, size=(n, n_out))


# --------------------------------------------------------------------------------------------
# 1. gradients and loss vs autograd
# --------------------------------------------------------------------------------------------

def gradient_case(hidden, output, loss, seed):
    rng = np.random.default_rng([seed, HIDDEN.index(hidden), PAIRINGS.index((output, loss))])
    n_hidden = 1 + seed % 3
    n_out = int(rng.integers(2, 6)) if output == "softmax" else int(rng.integers(1, 6))
    sizes = ([int(rng.integers(1, 6))] + [int(rng.integers(1, 8)) for _ in range(n_hidden)]
             + [n_out])
    net = cprop.MLP(sizes, hidden=hidden, output=output, loss=loss,
                    seed=int(rng.integers(2**63)), negative_slope=SLOPES[seed % 3])
    for b in net.biases:
        b[:] = rng.normal(0.0, 0.5, size=b.shape)
    n = int(rng.integers(1, 13))
    X = rng.normal(size=(n, sizes[0]))
    T = make_targets(rng, output, loss, n, n_out, kind=seed)
    return net, X, T


def gradient_errors(hidden, output, loss, seed):
    """(loss relative error, [(name, cprop grad, torch grad)]) for one case."""
    net, X, T = gradient_case(hidden, output, loss, seed)
    if hidden in ("relu", "leaky_relu"):
        zmin = min(float(np.min(np.abs(z))) for z in hidden_pre_activations(net, X))
        assert zmin > RELU_KINK, f"{net!r}: a hidden |z| = {zmin:.2e} is at a relu kink"
    gW, gb = net.gradients(X, T)
    value = net.loss(X, T)
    Ws, bs = torch_params(net)
    Z, _ = torch_logits(net, Ws, bs, as_t(X))
    L = torch_loss(net, Z, as_t(T))
    L.backward()
    pairs = [(f"grad W[{l}]", gW[l], Ws[l].grad.numpy()) for l in range(len(Ws))]
    pairs += [(f"grad b[{l}]", gb[l], bs[l].grad.numpy()) for l in range(len(bs))]
    return net, value, L.item(), pairs


GRAD_CASES = [pytest.param(h, o, lo, s, id=f"{h}-{o}-{lo}-{s}")
              for h in HIDDEN for o, lo in PAIRINGS for s in GRAD_SEEDS]


@pytest.mark.parametrize("hidden,output,loss,seed", GRAD_CASES)
def test_gradients_match_autograd(hidden, output, loss, seed):
    net, value, torch_value, pairs = gradient_errors(hidden, output, loss, seed)
    what = f"{net!r}"
    assert abs(value - torch_value) <= LOSS_RTOL * abs(torch_value), (
        f"{what}: loss {value!r} vs torch {torch_value!r}")
    for name, mine, ref in pairs:
        assert mine.dtype == np.float64
        assert_close(mine, ref, f"{what}: {name}")
    # not a trivial all-zero comparison
    assert max(float(np.max(np.abs(ref))) for _, _, ref in pairs) > 1e-6, what


def test_gradient_cases_cover_every_depth_and_stay_off_relu_kinks():
    depths = set()
    for h, (o, lo), s in itertools.product(("relu", "leaky_relu"), PAIRINGS, GRAD_SEEDS):
        net, X, _ = gradient_case(h, o, lo, s)
        depths.add(len(net.layer_sizes) - 2)
        zs = hidden_pre_activations(net, X)
        assert min(float(np.min(np.abs(z))) for z in zs) > RELU_KINK
    assert depths == {1, 2, 3}
    # and both sides of the kink occur (otherwise relu would be tested as identity or zero)
    zs = np.concatenate([z.ravel() for s in GRAD_SEEDS
                         for z in hidden_pre_activations(*gradient_case("relu", "sigmoid",
                                                                "squared_error", s)[:2])])
    assert np.any(zs > 0) and np.any(zs < 0)


@pytest.mark.parametrize("output,loss", PAIRINGS, ids=[f"{o}-{lo}" for o, lo in PAIRINGS])
def test_gradients_match_autograd_many_rows_wide_layers(output, loss):
    # 700 rows: the kernels work in blocks of 256 rows, summing the blocks' gradients.
    rng = np.random.default_rng([99, PAIRINGS.index((output, loss))])
    net = cprop.MLP([30, 64, 40, 5], hidden="tanh", output=output, loss=loss, seed=3)
    for b in net.biases:
        b[:] = rng.normal(0.0, 0.5, size=b.shape)
    X = rng.normal(size=(700, 30))
    T = make_targets(rng, output, loss, 700, 5)
    gW, gb = net.gradients(X, T)
    Ws, bs = torch_params(net)
    Z, _ = torch_logits(net, Ws, bs, as_t(X))
    L = torch_loss(net, Z, as_t(T))
    L.backward()
    assert abs(net.loss(X, T) - L.item()) <= LOSS_RTOL * abs(L.item())
    for l in range(len(Ws)):
        assert_close(gW[l], Ws[l].grad.numpy(), f"{output}/{loss} 700 rows: grad W[{l}]")
        assert_close(gb[l], bs[l].grad.numpy(), f"{output}/{loss} 700 rows: grad b[{l}]")


def test_cross_entropy_targets_whose_rows_do_not_sum_to_one():
    # Targets in [0, 1] are accepted for cross_entropy, but E = sum_k t_k (lse(z) - z_k) has
    # dE/dz = (sum_k t_k) y - t, which is y - t only for rows summing to 1. Either such rows are
    # refused (ValueError from loss and gradients alike) or the gradient is the loss's.
    net = cprop.MLP([2, 3], output="softmax", loss="cross_entropy", seed=0)
    X = np.array([[0.3, -0.7], [1.2, 0.4]])
    T = np.array([[0.5, 0.0, 0.0], [1.0, 1.0, 0.0]])  # row sums 0.5 and 2
    outcomes = []
    for call in (net.loss, net.gradients):
        try:
            call(X, T)
            outcomes.append("ok")
        except ValueError:
            outcomes.append("ValueError")
    assert outcomes in (["ok", "ok"], ["ValueError", "ValueError"]), outcomes
    if outcomes[0] == "ValueError":
        return
    Ws, bs = torch_params(net)
    Z, _ = torch_logits(net, Ws, bs, as_t(X))
    L = torch_loss(net, Z, as_t(T))
    L.backward()
    assert abs(net.loss(X, T) - L.item()) <= LOSS_RTOL * abs(L.item())
    gW, gb = net.gradients(X, T)
    assert_close(gb[0], bs[0].grad.numpy(), "cross_entropy, row sums != 1: grad b[0]")
    assert_close(gW[0], Ws[0].grad.numpy(), "cross_entropy, row sums != 1: grad W[0]")


def test_autograd_comparison_detects_a_wrong_gradient():
    # The bound has teeth: the gradient of a different loss, or of the sum instead of the mean,
    # is rejected by many orders of magnitude.
    net, X, T = gradient_case("tanh", "softmax", "cross_entropy", 1)
    Ws, bs = torch_params(net)
    Z, _ = torch_logits(net, Ws, bs, as_t(X))
    torch_loss(net, Z, as_t(T)).backward()
    other = cprop.MLP(net.layer_sizes, hidden="tanh", output="softmax", loss="squared_error",
                      init=list(zip(net.weights, net.biases)))
    gW_other, _ = other.gradients(X, T)
    assert rel_err(gW_other[-1], Ws[-1].grad.numpy()) > 1e4 * RTOL
    if X.shape[0] > 1:
        gW, _ = net.gradients(X, T)
        assert rel_err(gW[-1] * X.shape[0], Ws[-1].grad.numpy()) > 1e4 * RTOL


# --------------------------------------------------------------------------------------------
# 2. optimizer trajectories vs torch.optim
# --------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": dict(lr=0.1, optimizer="sgd"),
    "sgd_momentum": dict(lr=0.1, optimizer="sgd", momentum=0.9),
    "sgd_nesterov": dict(lr=0.1, optimizer="sgd", momentum=0.9, nesterov=True),
    "adam": dict(lr=0.01, optimizer="adam"),
    "adam_b0.8_0.99_eps1e-6": dict(lr=0.01, optimizer="adam", beta1=0.8, beta2=0.99, eps=1e-6),
    "adamw": dict(lr=0.01, optimizer="adamw"),
    "adamw_b0.8_0.99_eps1e-6": dict(lr=0.01, optimizer="adamw", beta1=0.8, beta2=0.99,
                                    eps=1e-6),
    "rprop": dict(lr=0.01, optimizer="rprop"),
}
NETS = {
    "tanh-sigmoid-se": ([4, 6, 5, 3], "tanh", "sigmoid", "squared_error"),
    "relu-softmax-ce": ([4, 7, 3], "relu", "softmax", "cross_entropy"),
    "tanh-exp-poisson": ([4, 6, 2], "tanh", "exp", "poisson"),
}
N_SAMPLES = 16
N_STEPS = 20


def cprop_kwargs(cfg, alpha):
    """The optimizer options of train_step/fit (everything but lr)."""
    kw = {k: v for k, v in cfg.items() if k != "lr"}
    kw["alpha"] = alpha
    return kw


def torch_optimizer(cfg, Ws, bs, train_biases, alpha):
    """The torch.optim equivalent of a cprop optimizer config.

    alpha is L2 on the weights only: two param groups, weights with weight_decay=alpha, biases
    with weight_decay=0 (biases left out of the optimizer when they are not trained). For
    "adamw" alpha is AdamW's decoupled weight_decay, in the same two groups. Rprop has
    no weight_decay in torch: TorchTrainer.step adds alpha * W to the weight gradients by hand
    before opt.step(), which is what torch's weight_decay does inside SGD and Adam
    (grad = grad + weight_decay * param) and what cprop does for every optimizer.
    """
    name = cfg["optimizer"]
    lr = cfg["lr"]
    if name == "rprop":
        groups = [{"params": Ws}] + ([{"params": bs}] if train_biases else [])
        return torch.optim.Rprop(groups, lr=lr, etas=(0.5, 1.2), step_sizes=(1e-6, 50))
    groups = [{"params": Ws, "weight_decay": alpha}]
    if train_biases:
        groups.append({"params": bs, "weight_decay": 0.0})
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.get("momentum", 0.0), dampening=0,
                               nesterov=cfg.get("nesterov", False))
    assert name in ("adam", "adamw")
    make = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return make(groups, lr=lr, betas=(cfg.get("beta1", 0.9), cfg.get("beta2", 0.999)),
                eps=cfg.get("eps", 1e-8), amsgrad=False)


class TorchTrainer:
    """The torch side of a trajectory: a copy of the network's parameters and an optimizer."""

    def __init__(self, net, cfg, alpha, dtype=F64):
        self.net = net  # for the architecture only; its parameters are copied now
        self.dtype = dtype
        self.Ws, self.bs = torch_params(net, dtype)
        self.new_optimizer(cfg, alpha)

    def new_optimizer(self, cfg, alpha):
        self.cfg, self.alpha = cfg, alpha
        self.opt = torch_optimizer(cfg, self.Ws, self.bs, self.net.train_biases, alpha)

    def set_alpha(self, alpha):
        """Change the L2 strength keeping the optimizer state (as cprop does)."""
        self.alpha = alpha
        if self.cfg["optimizer"] != "rprop":
            self.opt.param_groups[0]["weight_decay"] = alpha

    def set_lr(self, lr):
        for group in self.opt.param_groups:
            group["lr"] = lr

    def step(self, X, T) -> float:
        for p in self.Ws + self.bs:
            p.grad = None
        Z, _ = torch_logits(self.net, self.Ws, self.bs, as_t(X, self.dtype))
        L = torch_loss(self.net, Z, as_t(T, self.dtype))
        L.backward()
        if self.cfg["optimizer"] == "rprop" and self.alpha:
            with torch.no_grad():
                for W in self.Ws:
                    W.grad.add_(W, alpha=self.alpha)
        self.opt.step()
        return L.item()

    def epoch(self, X, T, batch_size) -> float:
        """One epoch of consecutive minibatches; the size-weighted mean of the batch losses."""
        n = X.shape[0]
        total = 0.0
        for start in range(0, n, batch_size):
            Xb, Tb = X[start:start + batch_size], T[start:start + batch_size]
            total += self.step(Xb, Tb) * Xb.shape[0]
        return total / n

    def arrays(self):
        return ([W.detach().numpy().copy() for W in self.Ws],
                [b.detach().numpy().copy() for b in self.bs])


def trajectory_net(net_name, train_biases, dtype="float64"):
    sizes, hidden, output, loss = NETS[net_name]
    rng = np.random.default_rng([7, list(NETS).index(net_name)])
    net = cprop.MLP(sizes, hidden=hidden, output=output, loss=loss, dtype=dtype, seed=12345,
                    train_biases=train_biases)
    for b in net.biases:  # nonzero biases, so that train_biases=False keeps something visible
        b[:] = rng.normal(0.0, 0.3, size=b.shape)
    X = rng.normal(size=(N_SAMPLES, sizes[0])).astype(dtype)
    T = make_targets(rng, output, loss, N_SAMPLES, sizes[-1], kind=1).astype(dtype)
    if loss == "poisson":  # (smaller inputs: SGD with Nesterov at lr 0.1 stays stable on e^z)
        X *= 0.5
    return net, X, T


def assert_params_match(net, trainer, what, rtol=RTOL, atol=ATOL):
    Ws, bs = trainer.arrays()
    for l in range(len(Ws)):
        assert_close(net.weights[l], Ws[l], f"{what}: W[{l}]", rtol, atol)
        assert_close(net.biases[l], bs[l], f"{what}: b[{l}]", rtol, atol)


def param_errors(net, trainer):
    Ws, bs = trainer.arrays()
    return [rel_err(net.weights[l], Ws[l]) for l in range(len(Ws))] + [
        rel_err(net.biases[l], bs[l]) for l in range(len(bs))]


TRAJECTORY_CASES = [
    pytest.param(n, o, a, tb, id=f"{n}-{o}-alpha{a:g}-{'biases' if tb else 'nobiases'}")
    for n in NETS for o in OPTIMIZERS for a in (0.0, 1e-2) for tb in (True, False)
]


@pytest.mark.parametrize("net_name,opt_name,alpha,train_biases", TRAJECTORY_CASES)
def test_full_batch_trajectory_matches_torch_optim(net_name, opt_name, alpha, train_biases):
    cfg = OPTIMIZERS[opt_name]
    kw = cprop_kwargs(cfg, alpha)
    net, X, T = trajectory_net(net_name, train_biases)
    biases0 = [b.copy() for b in net.biases]
    trainer = TorchTrainer(net, cfg, alpha)
    fitted, _, _ = trajectory_net(net_name, train_biases)
    what = f"{net_name} {opt_name} alpha={alpha} train_biases={train_biases}"

    losses = []
    for step in range(N_STEPS):
        loss = net.train_step(X, T, cfg["lr"], **kw)
        torch_loss_value = trainer.step(X, T)
        assert abs(loss - torch_loss_value) <= RTOL * abs(torch_loss_value), (
            f"{what}: step {step} loss {loss!r} vs torch {torch_loss_value!r}")
        losses.append(loss)
    assert_params_match(net, trainer, f"{what}, after {N_STEPS} train_steps")
    assert losses[-1] < losses[0], f"{what}: training did not reduce the loss: {losses}"
    if not train_biases:
        for l, b in enumerate(net.biases):
            assert np.array_equal(b, biases0[l]), f"{what}: b[{l}] moved"

    # the same 20 steps through fit: bit-identical to the train_steps (same kernel, same
    # blocking), and so within the bound of torch too
    history = fitted.fit(X, T, epochs=N_STEPS, batch_size=N_SAMPLES, shuffle=False,
                         lr=cfg["lr"], **kw)
    assert np.array_equal(fitted.params, net.params), f"{what}: fit != {N_STEPS} train_steps"
    assert np.array_equal(fitted._opt_state, net._opt_state), f"{what}: optimizer state"
    assert history.loss == losses, f"{what}: fit's history != the train_step losses"
    assert_params_match(fitted, trainer, f"{what}, after fit(epochs={N_STEPS})")


MINIBATCH_CASES = [
    pytest.param(n, o, a, tb, id=f"{n}-{o}-alpha{a:g}-{'biases' if tb else 'nobiases'}")
    for n in NETS for o in OPTIMIZERS for a in (0.0, 1e-2) for tb in (True, False)
]


@pytest.mark.parametrize("net_name,opt_name,alpha,train_biases", MINIBATCH_CASES)
def test_minibatch_fit_matches_torch_loop(net_name, opt_name, alpha, train_biases):
    # 16 rows in batches of 5: 5, 5, 5 and a last batch of 1 row that uses its own mean.
    cfg = OPTIMIZERS[opt_name]
    net, X, T = trajectory_net(net_name, train_biases)
    trainer = TorchTrainer(net, cfg, alpha)
    history = net.fit(X, T, epochs=3, batch_size=5, shuffle=False, lr=cfg["lr"],
                      **cprop_kwargs(cfg, alpha))
    torch_history = [trainer.epoch(X, T, 5) for _ in range(3)]
    what = f"{net_name} {opt_name} alpha={alpha} train_biases={train_biases}, minibatches"
    assert_params_match(net, trainer, what)
    assert_close(history.loss, torch_history, f"{what}: epoch losses")
    assert net._opt_steps[0] == 12


@pytest.mark.parametrize("train_biases", [True, False])
@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_adamw_is_torch_adamw_with_decay_on_the_weights_only(alpha, train_biases):
    # 20 full-batch steps at a weight decay large enough to dominate: torch.optim.AdamW with
    # weight_decay=alpha on the weights and 0 on the biases, to 1e-10 per array (in practice a
    # few ulps); biases are never decayed, so with train_biases=False they stay put.
    cfg = OPTIMIZERS["adamw"]
    net, X, T = trajectory_net("relu-softmax-ce", train_biases)
    trainer = TorchTrainer(net, cfg, alpha)
    biases0 = [b.copy() for b in net.biases]
    for step in range(N_STEPS):
        loss = net.train_step(X, T, cfg["lr"], optimizer="adamw", alpha=alpha)
        assert abs(loss - trainer.step(X, T)) <= LOSS_RTOL * abs(loss), step
    assert_params_match(net, trainer, f"adamw alpha={alpha}")
    Ws, bs = trainer.arrays()
    worst = max(float(np.max(np.abs(net.weights[l] - Ws[l]))) for l in range(len(Ws)))
    worst = max([worst] + [float(np.max(np.abs(net.biases[l] - bs[l]))) for l in range(len(bs))])
    assert worst <= 1e-10, worst
    if not train_biases:
        assert all(np.array_equal(b, b0) for b, b0 in zip(net.biases, biases0))
    # negative control: Adam with the L2 term alpha * W is a different optimizer
    other, _, _ = trajectory_net("relu-softmax-ce", train_biases)
    for _ in range(N_STEPS):
        other.train_step(X, T, cfg["lr"], optimizer="adam", alpha=alpha)
    assert max(param_errors(other, trainer)) > 1e-4


def test_adamw_without_decay_is_adam_bit_for_bit():
    a, X, T = trajectory_net("tanh-sigmoid-se", True)
    b, _, _ = trajectory_net("tanh-sigmoid-se", True)
    ha = a.fit(X, T, epochs=4, batch_size=5, shuffle=False, lr=0.01, optimizer="adam")
    hb = b.fit(X, T, epochs=4, batch_size=5, shuffle=False, lr=0.01, optimizer="adamw")
    assert np.array_equal(a.params, b.params) and ha.loss == hb.loss
    assert np.array_equal(a._opt_state, b._opt_state)
    assert b.optimizer.name == "adamw"


# --------------------------------------------------------------------------------------------
# 3. optimizer state carried over, or started afresh
# --------------------------------------------------------------------------------------------

CARRY_CASES = ["sgd_momentum", "sgd_nesterov", "adam", "adamw", "rprop"]


@pytest.mark.parametrize("opt_name", CARRY_CASES)
def test_two_fits_equal_one_longer_fit(opt_name):
    cfg = OPTIMIZERS[opt_name]
    kw = dict(batch_size=5, shuffle=False, lr=cfg["lr"], **cprop_kwargs(cfg, 1e-2))
    a, X, T = trajectory_net("tanh-sigmoid-se", True)
    b, _, _ = trajectory_net("tanh-sigmoid-se", True)
    h1 = a.fit(X, T, epochs=1, **kw)
    h2 = a.fit(X, T, epochs=1, **kw)
    h = b.fit(X, T, epochs=2, **kw)
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a._opt_state, b._opt_state)
    assert a._opt_steps[0] == b._opt_steps[0] == 8
    assert h1.loss + h2.loss == h.loss
    # train_step shares the same state: 4 train_steps on the batches, then fit(epochs=1)
    c, _, _ = trajectory_net("tanh-sigmoid-se", True)
    for start in range(0, N_SAMPLES, 5):
        c.train_step(X[start:start + 5], T[start:start + 5], cfg["lr"],
                     **cprop_kwargs(cfg, 1e-2))
    c.fit(X, T, epochs=1, **kw)
    assert np.array_equal(c.params, b.params)
    # and all of it is torch's single optimizer over 2 epochs
    trainer = TorchTrainer(trajectory_net("tanh-sigmoid-se", True)[0], cfg, 1e-2)
    for _ in range(2):
        trainer.epoch(X, T, 5)
    assert_params_match(b, trainer, f"{opt_name}: fit(epochs=2)")


# (first options, second options): the second fit must start fresh state
FRESH_CASES = {
    "momentum0.9-to-0.5": (dict(OPTIMIZERS["sgd_momentum"]),
                           dict(OPTIMIZERS["sgd_momentum"], momentum=0.5)),
    "momentum-to-nesterov": (OPTIMIZERS["sgd_momentum"], OPTIMIZERS["sgd_nesterov"]),
    "adam-to-sgd": (OPTIMIZERS["adam"], OPTIMIZERS["sgd"]),
    "adam-to-sgd_momentum": (OPTIMIZERS["adam"], OPTIMIZERS["sgd_momentum"]),
    "sgd_momentum-to-adam": (OPTIMIZERS["sgd_momentum"], OPTIMIZERS["adam"]),
    "adam-to-adam_beta1": (OPTIMIZERS["adam"], dict(OPTIMIZERS["adam"], beta1=0.8)),
    "adam-to-adam_eps": (OPTIMIZERS["adam"], dict(OPTIMIZERS["adam"], eps=1e-6)),
    "rprop-to-adam": (OPTIMIZERS["rprop"], OPTIMIZERS["adam"]),
    "adam-to-rprop": (OPTIMIZERS["adam"], OPTIMIZERS["rprop"]),
    "adam-to-adamw": (OPTIMIZERS["adam"], OPTIMIZERS["adamw"]),
    "adamw-to-adam": (OPTIMIZERS["adamw"], OPTIMIZERS["adam"]),
    "adamw-to-adamw_beta1": (OPTIMIZERS["adamw"], dict(OPTIMIZERS["adamw"], beta1=0.8)),
}


@pytest.mark.parametrize("case", list(FRESH_CASES))
def test_changing_the_optimizer_starts_fresh_state(case):
    first, second = FRESH_CASES[case]
    fit_kw = dict(epochs=2, batch_size=5, shuffle=False)
    net, X, T = trajectory_net("tanh-sigmoid-se", True)
    trainer = TorchTrainer(net, first, 0.0)
    net.fit(X, T, lr=first["lr"], **fit_kw, **cprop_kwargs(first, 0.0))
    for _ in range(2):
        trainer.epoch(X, T, 5)
    middle = net.params.copy()
    net.fit(X, T, lr=second["lr"], **fit_kw, **cprop_kwargs(second, 0.0))

    # a fresh network started from the parameters reached after the first fit
    fresh, _, _ = trajectory_net("tanh-sigmoid-se", True)
    fresh.params[:] = middle
    fresh.fit(X, T, lr=second["lr"], **fit_kw, **cprop_kwargs(second, 0.0))
    assert np.array_equal(net.params, fresh.params), f"{case}: state was carried over"
    assert np.array_equal(net._opt_state, fresh._opt_state)
    assert net._opt_steps[0] == fresh._opt_steps[0] == 8

    # torch: a new optimizer on the same parameters
    trainer.new_optimizer(second, 0.0)
    for _ in range(2):
        trainer.epoch(X, T, 5)
    assert_params_match(net, trainer, f"{case}: after the change")


@pytest.mark.parametrize("opt_name", ["sgd_momentum", "adam", "adamw"])
def test_unchanged_optimizer_really_carries_state(opt_name):
    # The negative control of the test above: with the same options, the second fit continues
    # the state, which a fresh network from the same parameters does not reproduce.
    cfg = OPTIMIZERS[opt_name]
    fit_kw = dict(epochs=2, batch_size=5, shuffle=False, lr=cfg["lr"], **cprop_kwargs(cfg, 0.0))
    net, X, T = trajectory_net("tanh-sigmoid-se", True)
    net.fit(X, T, **fit_kw)
    fresh, _, _ = trajectory_net("tanh-sigmoid-se", True)
    fresh.params[:] = net.params
    net.fit(X, T, **fit_kw)
    fresh.fit(X, T, **fit_kw)
    assert rel_err(net.params, fresh.params) > 1e-6


@pytest.mark.parametrize("opt_name", ["adam", "adamw"])
def test_changing_alpha_keeps_adam_state(opt_name):
    # alpha is not part of the state: adam with alpha 0 then 1e-2 is one torch optimizer whose
    # weight group's weight_decay changes between the two fits (AdamW's decoupled decay too).
    cfg = OPTIMIZERS[opt_name]
    net, X, T = trajectory_net("tanh-sigmoid-se", True)
    trainer = TorchTrainer(net, cfg, 0.0)
    fit_kw = dict(epochs=2, batch_size=5, shuffle=False, lr=cfg["lr"])
    net.fit(X, T, **fit_kw, **cprop_kwargs(cfg, 0.0))
    net.fit(X, T, **fit_kw, **cprop_kwargs(cfg, 1e-2))
    assert net._opt_steps[0] == 16
    for _ in range(2):
        trainer.epoch(X, T, 5)
    trainer.set_alpha(1e-2)
    for _ in range(2):
        trainer.epoch(X, T, 5)
    assert_params_match(net, trainer, f"{opt_name}, alpha 0 then 1e-2")


def test_changing_lr_keeps_rprop_step_sizes():
    # torch.optim.Rprop uses lr only to initialise the step sizes; a later lr change (same
    # optimizer) does not reset them, and neither does cprop.
    cfg = OPTIMIZERS["rprop"]
    net, X, T = trajectory_net("tanh-sigmoid-se", True)
    trainer = TorchTrainer(net, cfg, 0.0)
    for lr in (0.01, 0.05):
        net.fit(X, T, epochs=5, batch_size=N_SAMPLES, shuffle=False, lr=lr, optimizer="rprop")
        trainer.set_lr(lr)
        for _ in range(5):
            trainer.step(X, T)
    assert_params_match(net, trainer, "rprop, lr 0.01 then 0.05")


# --------------------------------------------------------------------------------------------
# 4. float32
# --------------------------------------------------------------------------------------------

def float32_trajectory(opt_name, train_biases):
    cfg = OPTIMIZERS[opt_name]
    net, X, T = trajectory_net("tanh-sigmoid-se", train_biases, dtype="float32")
    assert X.dtype == T.dtype == np.float32
    trainer = TorchTrainer(net, cfg, 1e-2, dtype=torch.float32)
    for _ in range(N_STEPS):
        loss = net.train_step(X, T, cfg["lr"], **cprop_kwargs(cfg, 1e-2))
        torch_loss_value = trainer.step(X, T)
        assert abs(loss - torch_loss_value) <= F32_RTOL * abs(torch_loss_value)
    assert_params_match(net, trainer, f"float32 {opt_name}", rtol=F32_RTOL, atol=1e-6)
    assert net.params.dtype == np.float32 and net._opt_state.dtype == np.float32
    return net, X, T, trainer


@pytest.mark.parametrize("opt_name", [o for o in OPTIMIZERS if o != "adam"])
def test_float32_trajectories_match_torch_float32(opt_name):
    float32_trajectory(opt_name, True)


@pytest.mark.parametrize("train_biases", [True, False])
def test_float32_adam_matches_torch_float32(train_biases):
    net, X, T, trainer = float32_trajectory("adam", train_biases)

    assert net.params.dtype == np.float32
    assert all(W.dtype == np.float32 for W in net.weights)
    assert all(b.dtype == np.float32 for b in net.biases)
    assert net._opt_state.dtype == np.float32 and net._opt_state.shape == (2 * net.n_params,)
    assert net.forward(X).dtype == np.float32
    assert net.forward(X[0]).dtype == np.float32
    gW, gb = net.gradients(X, T)
    assert all(g.dtype == np.float32 for g in gW + gb)
    # the moments themselves are torch's (m and v of the first weight matrix)
    state = trainer.opt.state[trainer.Ws[0]]
    n0 = net.weights[0].size
    assert_close(net._opt_state[:n0].reshape(net.weights[0].shape),
                 state["exp_avg"].numpy(), "float32 adam m", rtol=F32_RTOL, atol=1e-6)
    assert_close(net._opt_state[net.n_params:net.n_params + n0].reshape(net.weights[0].shape),
                 state["exp_avg_sq"].numpy(), "float32 adam v", rtol=F32_RTOL, atol=1e-9)
    # fit keeps float32 too
    net.fit(X, T, epochs=2, batch_size=5, shuffle=False, lr=0.01, optimizer="adam")
    assert net.params.dtype == np.float32 and net._opt_state.dtype == np.float32


# --------------------------------------------------------------------------------------------
# 5. stability at logits of +-1000
# --------------------------------------------------------------------------------------------

DTYPES = [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")]
TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32}

# Inputs and weights of the 0-hidden-layer networks (z = x @ W): every row of logits has entries
# of +-1000 (and 0 for CE/BCE). With a tanh hidden layer the first layer maps x to itself exactly
# (tanh(+-1000) = +-1, tanh(0) = 0) and the output layer is W again.
BIG_X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
BIG_W = np.array([[1000.0, -1000.0, 0.0], [0.0, 0.0, 1000.0]])
# For sigmoid + squared_error, logits of +-1000 only.
SAT_W = np.array([[1000.0, -1000.0, 1000.0], [-1000.0, -1000.0, 1000.0]])


def big_net(output, loss, dtype, hidden_layer, W=BIG_W):
    """A network whose output logits are BIG_X @ W, with or without a saturated hidden layer.

    With the hidden layer, its gradient passes through tanh' = 1 - 1 = 0 (or through the
    x = 0 units, whose weights see a zero input).
    """
    if not hidden_layer:
        net = cprop.MLP([2, 3], output=output, loss=loss, dtype=dtype, seed=0)
        net.weights[0][:] = W
    else:
        net = cprop.MLP([2, 2, 3], hidden="tanh", output=output, loss=loss, dtype=dtype, seed=0)
        net.weights[0][:] = [[1000.0, 0.0], [0.0, 1000.0]]
        net.weights[1][:] = W
    return net, BIG_X.astype(dtype), BIG_X @ W


def check_against_torch_exactly_enough(net, X, T, dtype, what):
    rtol = 1e-12 if dtype == "float64" else 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            value = net.loss(X, T)
            gW, gb = net.gradients(X, T)
            Y = net.forward(X)
    assert np.isfinite(value), f"{what}: loss {value}"
    assert all(np.all(np.isfinite(g)) for g in gW + gb), f"{what}: gradients not finite"
    assert np.all(np.isfinite(Y))
    Ws, bs = torch_params(net, TORCH_DTYPE[dtype])
    Z, _ = torch_logits(net, Ws, bs, as_t(X, TORCH_DTYPE[dtype]))
    L = torch_loss(net, Z, as_t(T, TORCH_DTYPE[dtype]))
    L.backward()
    assert np.isfinite(L.item())
    assert abs(value - L.item()) <= rtol * abs(L.item()), f"{what}: {value!r} vs {L.item()!r}"
    assert_close(Y, torch_output(net, Z).detach().numpy(), f"{what}: outputs", rtol, 0.0)
    for l in range(len(Ws)):
        assert_close(gW[l], Ws[l].grad.numpy(), f"{what}: grad W[{l}]", rtol, 0.0)
        assert_close(gb[l], bs[l].grad.numpy(), f"{what}: grad b[{l}]", rtol, 0.0)
    return value, Y, gW, gb


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden_layer", [False, True], ids=["no_hidden", "tanh_hidden"])
def test_softmax_cross_entropy_at_logits_1000(dtype, hidden_layer):
    net, X, Z = big_net("softmax", "cross_entropy", dtype, hidden_layer)
    # wrong class at -1000 (loss 2000), right class (loss 0), wrong class at 0 vs 1000, and a
    # soft target over (0, 0, -1000)
    T = np.array([[0, 1, 0], [0, 1, 0], [1, 0, 0], [0.5, 0.25, 0.25]], dtype=dtype)
    value, Y, gW, gb = check_against_torch_exactly_enough(net, X, T, dtype, "softmax+CE")
    m = Z.max(axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(Z - m), axis=1, keepdims=True))
    expected = float(np.mean(np.sum(T.astype(np.float64) * (lse - Z), axis=1)))
    assert expected == pytest.approx((2000 + 0 + 1000 + (np.log(2) + 250)) / 4, rel=1e-15)
    assert value == pytest.approx(expected, rel=1e-12 if dtype == "float64" else 1e-6)
    assert np.array_equal(Y[:3], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert np.array_equal(Y[3], [0.5, 0.5, 0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden_layer", [False, True], ids=["no_hidden", "tanh_hidden"])
def test_binary_cross_entropy_at_logits_1000(dtype, hidden_layer):
    net, X, Z = big_net("sigmoid", "binary_cross_entropy", dtype, hidden_layer)
    T = np.array([[0, 1, 0.5], [1, 0, 0.25], [0.5, 0.5, 1], [1, 0, 0.75]], dtype=dtype)
    value, Y, _, _ = check_against_torch_exactly_enough(net, X, T, dtype, "sigmoid+BCE")
    # per sample: sum_k softplus(z_k) - t_k z_k, with softplus(1000) = 1000, softplus(-1000) = 0
    # and softplus(0) = log 2 (in floating point: e^-1000 = 0)
    softplus = np.where(Z > 0, Z, 0.0) + np.where(Z == 0, np.log(2.0), 0.0)
    expected = float(np.mean(np.sum(softplus - T.astype(np.float64) * Z, axis=1)))
    assert value == pytest.approx(expected, rel=1e-12 if dtype == "float64" else 1e-6)
    assert np.array_equal(Y, np.where(Z > 0, 1.0, np.where(Z < 0, 0.0, 0.5)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden_layer", [False, True], ids=["no_hidden", "tanh_hidden"])
def test_poisson_at_large_logits(dtype, hidden_layer):
    # The exp output's loss from the logits: at z = -1000 (y = e^z = 0 exactly) the loss
    # t (log t - z) + (y - t) is finite and its gradient y - t = -t is torch's, where
    # scikit-learn's own formula xlogy(t, t / y) is inf. At z = +1000 e^z overflows: the loss is
    # then truly beyond the float range, and forward/loss/train_step say so and change nothing.
    W = np.array([[-1000.0, 20.0, 0.0], [0.0, -20.0, -500.0]])
    if dtype == "float32":
        W = np.array([[-100.0, 20.0, 0.0], [0.0, -20.0, -50.0]])  # (e^-104 is 0 in float32)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    if not hidden_layer:
        net = cprop.MLP([2, 3], output="exp", loss="poisson", dtype=dtype, seed=0)
        net.weights[0][:] = W
        Z = X @ W
    else:  # tanh(1000 x) is x's sign: the output layer sees 0 and 1 only
        net = cprop.MLP([2, 2, 3], hidden="tanh", output="exp", loss="poisson", dtype=dtype,
                        seed=0)
        net.weights[0][:] = [[1000.0, 0.0], [0.0, 1000.0]]
        net.weights[1][:] = W
        Z = np.sign(X) @ W
    X = X.astype(dtype)
    T = np.array([[2.0, 0.0, 1.5], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0], [4.0, 0.5, 2.0]],
                 dtype=dtype)
    value, Y, gW, gb = check_against_torch_exactly_enough(net, X, T, dtype, "exp+poisson")
    t = T.astype(np.float64)
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        expected = float(np.mean(np.sum(np.where(t > 0, t * (np.log(np.where(t > 0, t, 1))
                                                                - Z), 0) + np.exp(Z) - t,
                                        axis=1)))
        from scipy.special import xlogy
        sklearn_formula = np.sum(xlogy(t, t / np.exp(Z)) - t + np.exp(Z), axis=1)
    assert value == pytest.approx(expected, rel=1e-12 if dtype == "float64" else 1e-6)
    if dtype == "float64":
        assert np.isinf(sklearn_formula).any()  # (where y underflows to 0 and t > 0)
        assert (Y == 0).any()
    # +1000: e^1000 overflows
    big = cprop.MLP([2, 3], output="exp", loss="poisson", dtype=dtype, seed=0)
    big.weights[0][:] = -W * (1 if dtype == "float64" else 10)
    before = big.params.copy()
    for call in (lambda: big.forward(X), lambda: big.loss(X, T),
                 lambda: big.train_step(X, T, 0.1), lambda: big.fit(X, T, batch_size=4)):
        with pytest.raises(FloatingPointError):
            call()
    assert np.array_equal(big.params, before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden_layer", [False, True], ids=["no_hidden", "tanh_hidden"])
def test_sigmoid_squared_error_at_logits_1000_exact_limits(dtype, hidden_layer):
    net, X, Z = big_net("sigmoid", "squared_error", dtype, hidden_layer, W=SAT_W)
    assert np.all(np.abs(Z) == 1000)
    T = np.array([[0.25, 0.5, 0.75], [1, 0, 0.5], [0, 1, 0.25], [0.5, 0.5, 0.5]], dtype=dtype)
    value, Y, gW, gb = check_against_torch_exactly_enough(net, X, T, dtype, "sigmoid+SE")
    assert np.array_equal(Y, (Z > 0).astype(np.float64)), Y
    # dyadic targets: every term is exact, and so is the mean
    expected = float(np.mean(np.sum(0.5 * (T.astype(np.float64) - (Z > 0)) ** 2, axis=1)))
    assert value == expected
    # y (1 - y) = 0 exactly at saturation: every gradient is exactly 0
    assert all(np.all(g == 0) for g in gW + gb)
