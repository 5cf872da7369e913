"""W1, the seed net: 2-2-2 sigmoid/sigmoid, squared error, single-sample SGD (lr 0.5), biases fixed.

Every method starts from the seed weights and repeats one SGD step on the seed sample (x, t).
The cprop, oracle and NumPy runners are those of ``bench/seed_steps.py``; this module adds the two
PyTorch loops and the hand-written C loop, and compares every method's final weights with cprop
``fit``'s after the same number of steps.
"""

from __future__ import annotations

import subprocess

import numpy as np

from _common import CLoops, log, measure, parse_c_output, summary
from seed_steps import CpropFit, CpropTrainStep, NumpySteps, OracleTrainStep, seed_state

# Steps per timed run (the 100,000 for the compiled methods; the slow Python loops take
# fewer and are reported per step). --quick divides every count by 10.
STEPS = {"c": 100_000, "c_portable": 100_000, "fit": 100_000, "train_step": 100_000,
         "numpy": 20_000, "torch_manual": 10_000, "torch_autograd": 10_000, "oracle": 5_000}

METHODS = (
    ("c", "C loop (cc -O3 -march=native)"),
    ("c_portable", "C loop, portable (cc -O3)"),
    ("fit", "cprop `fit` (one call, N samples)"),
    ("train_step", "cprop `train_step` (Python loop)"),
    ("numpy", "NumPy (Python loop)"),
    ("torch_manual", "PyTorch, manual tensors (Python loop)"),
    ("torch_autograd", "PyTorch, autograd + optim.SGD (Python loop)"),
    ("oracle", "cprop.oracle `train_step` (plain Python)"),
)

TARGETS = {"fit": ("<= 1.3x C loop", lambda r, c: r["ns_per_step"] <= 1.3 * c),
           "train_step": ("<= 1000 ns", lambda r, c: r["ns_per_step"] <= 1000.0)}


class TorchManual:
    """The step written with float64 torch tensors by hand (no autograd)."""

    def __init__(self, n_steps):
        import torch

        self.torch = torch
        _, x, t, self.lr, W1, W2, b1, b2 = seed_state()
        self.initial = (W1.copy(), W2.copy())
        self.x, self.t = torch.from_numpy(x.copy()), torch.from_numpy(t.copy())
        self.W1, self.W2 = torch.from_numpy(W1), torch.from_numpy(W2)
        self.b1, self.b2 = torch.from_numpy(b1), torch.from_numpy(b2)
        self.n = n_steps

    def reset(self):
        self.W1.copy_(self.torch.from_numpy(self.initial[0]))
        self.W2.copy_(self.torch.from_numpy(self.initial[1]))

    def run(self):
        torch = self.torch
        x, t, lr, W1, W2, b1, b2 = self.x, self.t, self.lr, self.W1, self.W2, self.b1, self.b2
        with torch.no_grad():
            for _ in range(self.n):
                h = torch.sigmoid(x @ W1 + b1)
                y = torch.sigmoid(h @ W2 + b2)
                d2 = (y - t) * (y * (1 - y))
                d1 = (W2 @ d2) * (h * (1 - h))
                W2.sub_(torch.outer(h, d2), alpha=lr)
                W1.sub_(torch.outer(x, d1), alpha=lr)

    def weights(self):
        return [self.W1.numpy().copy(), self.W2.numpy().copy()]


class TorchAutograd:
    """The idiomatic loop: autograd for the gradient, torch.optim.SGD for the update."""

    def __init__(self, n_steps):
        import torch

        self.torch = torch
        _, x, t, self.lr, W1, W2, b1, b2 = seed_state()
        self.initial = (W1.copy(), W2.copy())
        self.x, self.t = torch.from_numpy(x.copy()), torch.from_numpy(t.copy())
        self.W1 = torch.nn.Parameter(torch.from_numpy(W1))
        self.W2 = torch.nn.Parameter(torch.from_numpy(W2))
        self.b1, self.b2 = torch.from_numpy(b1), torch.from_numpy(b2)   # fixed, as in the seed
        self.opt = torch.optim.SGD([self.W1, self.W2], lr=self.lr)
        self.n = n_steps

    def reset(self):
        with self.torch.no_grad():
            self.W1.copy_(self.torch.from_numpy(self.initial[0]))
            self.W2.copy_(self.torch.from_numpy(self.initial[1]))

    def run(self):
        torch = self.torch
        x, t, W1, W2, b1, b2, opt = self.x, self.t, self.W1, self.W2, self.b1, self.b2, self.opt
        for _ in range(self.n):
            opt.zero_grad()
            y = torch.sigmoid(torch.sigmoid(x @ W1 + b1) @ W2 + b2)
            loss = 0.5 * ((t - y) ** 2).sum()
            loss.backward()
            opt.step()

    def weights(self):
        return [self.W1.detach().numpy().copy(), self.W2.detach().numpy().copy()]


RUNNERS = {"fit": CpropFit, "train_step": CpropTrainStep, "numpy": NumpySteps,
           "torch_manual": TorchManual, "torch_autograd": TorchAutograd,
           "oracle": OracleTrainStep}


def _cprop_reference(n_steps):
    runner = CpropFit(n_steps)
    runner.reset()
    runner.run()
    return runner.weights()


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in zip(a, b))


def _c_args():
    _, x, t, lr, W1, W2, b1, b2 = seed_state()
    values = [*W1.ravel(), *W2.ravel(), *b1, *b2, *x, *t, lr]
    return [repr(float(v)) for v in values]


def run_c(cloops: CLoops, n_steps: int, repeats: int, native: bool = True) -> dict:
    """Time the C loop; the native build is also built with -ffp-contract=off (untimed) to check
    that it is bit-identical to cprop."""
    res = {"key": "c" if native else "c_portable", "steps": n_steps}
    exe = cloops.build("seed.c", "seed" if native else "seed_portable", native=native)
    if exe is None:
        res["error"] = cloops.error
        return res
    out = subprocess.run([str(exe), str(n_steps), str(repeats), *_c_args()],
                         capture_output=True, text=True, check=True).stdout
    parsed = parse_c_output(out)
    res.update(summary([v * n_steps for v in parsed["ns_per_step"]], n_steps))
    res["ns_per_step"] = res["best"]
    w = parsed["weights"]
    res["weights"] = [np.array(w[:4]).reshape(2, 2), np.array(w[4:]).reshape(2, 2)]
    res["compile"] = cloops.command("seed.c", native=native)
    exact = None
    if native:
        exact = cloops.build("seed.c", "seed_nofma", extra_flags=["-ffp-contract=off"])
    if exact is not None:
        out = subprocess.run([str(exact), str(n_steps), "1", *_c_args()],
                             capture_output=True, text=True, check=True).stdout
        w = parse_c_output(out)["weights"]
        res["weights_fp_contract_off"] = [np.array(w[:4]).reshape(2, 2),
                                          np.array(w[4:]).reshape(2, 2)]
    return res


def run(quick: bool, repeats: int, budget_s: float, cloops: CLoops) -> dict:
    scale = 10 if quick else 1
    steps = {k: max(v // scale, 100) for k, v in STEPS.items()}
    results = {}
    refs = {}

    def reference(n):
        if n not in refs:
            refs[n] = _cprop_reference(n)
        return refs[n]

    for key in ("c", "c_portable"):
        log(f"W1: {dict(METHODS)[key]}, {steps[key]:,} steps")
        r = run_c(cloops, steps[key], repeats, native=key == "c")
        if "weights" in r:
            ref = reference(steps[key])
            r["max_abs_diff_vs_fit"] = _max_diff(r.pop("weights"), ref)
            if "weights_fp_contract_off" in r:
                r["max_abs_diff_vs_fit_fp_contract_off"] = _max_diff(
                    r.pop("weights_fp_contract_off"), ref)
        results[key] = r

    for key, label in METHODS:
        if key in ("c", "c_portable"):
            continue
        if key.startswith("torch"):
            try:
                import torch  # noqa: F401
            except ImportError:
                results[key] = {"key": key, "error": "torch not installed"}
                continue
        n = steps[key]
        log(f"W1: {label}, {n:,} steps")
        runner = RUNNERS[key](n)
        times = measure(runner.run, runner.reset, repeats=repeats, budget_s=budget_s)
        r = {"key": key, "steps": n, **summary(times, n / 1e9)}
        r["ns_per_step"] = r["best"]
        # Every run starts from reset(): the weights now are those after n steps.
        r["max_abs_diff_vs_fit"] = _max_diff(runner.weights(), reference(n))
        results[key] = r

    seed_W = seed_state()[4:6]
    moved = _max_diff(reference(steps["c"]), seed_W)
    c_ns = results["c"].get("ns_per_step")
    for key, r in results.items():
        if "ns_per_step" not in r:
            continue
        r["ratio_vs_c"] = r["ns_per_step"] / c_ns if c_ns else None
        if key in TARGETS:
            text, ok = TARGETS[key]
            r["target"] = text
            r["meets_target"] = bool(ok(r, c_ns)) if c_ns or key == "train_step" else None
    return {"steps": steps, "weights_moved_by": moved, "methods": results,
            "labels": dict(METHODS)}
