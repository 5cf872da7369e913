"""Time per single-sample SGD step on the seed network, four ways, in one process.

The seed network is ``net, x, t, lr = cprop.examples.seed_network()``: a 2-2-2 sigmoid/sigmoid
net with squared-error loss, learning rate 0.5, biases fixed (only the 8 weights are trained).
Every method below starts from the seed weights and repeats one SGD step on (x, t):

1. ``cprop fit``         ``net.fit(X, T, epochs=1, lr=lr, batch_size=1, shuffle=False)`` with
                         ``X = np.tile(x, (N, 1))``, ``T = np.tile(t, (N, 1))``: the whole loop of
                         N steps in compiled code; reported time is (call time) / N.
2. ``cprop train_step``  ``net.train_step(x, t, lr)`` called N times from a Python loop.
3. ``oracle train_step`` ``cprop.oracle.MLP`` (plain Python) ``train_step`` in a Python loop.
4. ``NumPy``             the same step written below with NumPy (``@``, stable sigmoid,
                         backward, in-place updates of W1 and W2), in a Python loop.

Timing: ``time.perf_counter_ns`` around the N steps only (resetting the weights and building X, T
happen outside), one untimed warm-up, then the best of ``--repeats`` runs. N starts at ``STEPS``
(divided by 10 with ``--quick``) and is raised, never lowered, when the warm-up shows that one run
would take less than ``--min-time`` (0.2 s; 0.02 s with ``--quick``). Before timing, the
script checks that all four methods give the same weights after the same number of steps and
prints the largest difference (a warning line if > 1e-9). Nothing here asserts a speed.

Needs only numpy and cprop. Run from the repository root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/seed_steps.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time

import numpy as np

import cprop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cpu_model  # noqa: E402
from cprop import oracle
from cprop.examples import seed_network

# Minimum steps per timed run; --quick divides by 10. time_method raises them if one run would be
# shorter than --min-time.
STEPS = {"fit": 200_000, "train_step": 50_000, "oracle": 5_000, "numpy": 50_000}
AGREE_TOL = 1e-9

METHODS = (
    ("fit", "cprop `fit` (one call, N samples)"),
    ("train_step", "cprop `train_step` (Python loop)"),
    ("oracle", "oracle `MLP.train_step` (Python loop)"),
    ("numpy", "NumPy step (Python loop)"),
)


# --------------------------------------------------------------------------------------------
# The seed weights, and the four ways of taking N steps from them
# --------------------------------------------------------------------------------------------

def seed_state():
    """(net, x, t, lr, W1, W2, b1, b2) with fresh float64 copies of the seed parameters."""
    net, x, t, lr = seed_network()
    W1, W2 = (np.array(W, dtype=np.float64) for W in net.weights)
    b1, b2 = (np.array(b, dtype=np.float64) for b in net.biases)
    return net, x, t, lr, W1, W2, b1, b2


class CpropFit:
    name = "fit"

    def __init__(self, n_steps):
        self.net, x, t, self.lr, *_ = seed_state()
        self.initial = self.net.params.copy()
        self.X = np.tile(x, (n_steps, 1))
        self.T = np.tile(t, (n_steps, 1))
        self.n = n_steps

    def reset(self):
        self.net.params[:] = self.initial

    def run(self):
        self.net.fit(self.X, self.T, epochs=1, lr=self.lr, batch_size=1, shuffle=False)

    def weights(self):
        return [np.array(W) for W in self.net.weights]


class CpropTrainStep:
    name = "train_step"

    def __init__(self, n_steps):
        self.net, self.x, self.t, self.lr, *_ = seed_state()
        self.initial = self.net.params.copy()
        self.n = n_steps

    def reset(self):
        self.net.params[:] = self.initial

    def run(self):
        step, x, t, lr = self.net.train_step, self.x, self.t, self.lr
        for _ in range(self.n):
            step(x, t, lr)

    def weights(self):
        return [np.array(W) for W in self.net.weights]


class OracleTrainStep:
    name = "oracle"

    def __init__(self, n_steps):
        _, x, t, self.lr, W1, W2, b1, b2 = seed_state()
        self.net = oracle.MLP([2, 2, 2], hidden="sigmoid", output="sigmoid",
                              loss="squared_error", seed=0, train_biases=False)
        self.initial = ([W1.tolist(), W2.tolist()], [b1.tolist(), b2.tolist()])
        self.x, self.t = x.tolist(), t.tolist()
        self.n = n_steps

    def reset(self):
        W, b = self.initial
        self.net.weights = [[list(row) for row in Wl] for Wl in W]
        self.net.biases = [list(bl) for bl in b]

    def run(self):
        step, x, t, lr = self.net.train_step, self.x, self.t, self.lr
        for _ in range(self.n):
            step(x, t, lr)

    def weights(self):
        return [np.array(W, dtype=np.float64) for W in self.net.weights]


def stable_sigmoid(z):
    """1 / (1 + e^-z), with exp only ever seeing -|z| (the branches cprop's kernel takes)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def numpy_step(x, t, lr, W1, W2, b1, b2):
    """One SGD step of the squared-error loss on one sample; updates W1, W2 in place.

    Shapes as cprop: W1 (2, 2), W2 (2, 2) with z = a @ W + b; biases are not trained.
    Returns the loss before the step.
    """
    h = stable_sigmoid(x @ W1 + b1)            # hidden activations
    y = stable_sigmoid(h @ W2 + b2)            # outputs
    diff = t - y
    loss = 0.5 * (diff @ diff)
    d2 = (y - t) * (y * (1.0 - y))            # dE/dz at the output
    d1 = (W2 @ d2) * (h * (1.0 - h))          # dE/dz at the hidden layer (W2 before its update)
    W2 -= lr * np.outer(h, d2)
    W1 -= lr * np.outer(x, d1)
    return loss


class NumpySteps:
    name = "numpy"

    def __init__(self, n_steps):
        _, self.x, self.t, self.lr, W1, W2, self.b1, self.b2 = seed_state()
        self.initial = (W1.copy(), W2.copy())
        self.W1, self.W2 = W1, W2
        self.n = n_steps

    def reset(self):
        self.W1[...] = self.initial[0]
        self.W2[...] = self.initial[1]

    def run(self):
        x, t, lr, W1, W2, b1, b2 = self.x, self.t, self.lr, self.W1, self.W2, self.b1, self.b2
        for _ in range(self.n):
            numpy_step(x, t, lr, W1, W2, b1, b2)

    def weights(self):
        return [self.W1.copy(), self.W2.copy()]


RUNNERS = {"fit": CpropFit, "train_step": CpropTrainStep, "oracle": OracleTrainStep,
           "numpy": NumpySteps}


# --------------------------------------------------------------------------------------------
# Agreement and timing
# --------------------------------------------------------------------------------------------

def check_agreement(n_steps):
    """Run every method n_steps from the seed weights; return the max |difference| to cprop fit."""
    finals = {}
    for key, _label in METHODS:
        runner = RUNNERS[key](n_steps)
        runner.reset()
        runner.run()
        finals[key] = runner.weights()
    seed_W = seed_state()[4:6]
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(finals["fit"], seed_W))
    ref = finals["fit"]
    diffs = {}
    for key, _label in METHODS:
        diffs[key] = max(float(np.max(np.abs(a - b))) for a, b in zip(finals[key], ref))
    return diffs, moved, finals


def _round_up(n):
    """n rounded up to two significant digits (250_000, 1_300_000, ...)."""
    scale = 10 ** max(len(str(n)) - 2, 0)
    return -(-n // scale) * scale


def time_method(key, n_steps, repeats, min_time_ns):
    """ns per step of every timed run, and the number of steps per run actually used.

    The untimed warm-up run doubles as calibration: if it took less than min_time_ns, the step
    count is scaled up (never down) so that one run takes about min_time_ns, and the warm-up is
    repeated at the new count.
    """
    runner = RUNNERS[key](n_steps)
    runner.reset()
    t0 = time.perf_counter_ns()
    runner.run()                                 # warm-up (untimed) and calibration
    elapsed = time.perf_counter_ns() - t0
    if elapsed < min_time_ns:
        n_steps = _round_up(int(n_steps * 1.1 * min_time_ns / max(elapsed, 1)) + 1)
        runner = RUNNERS[key](n_steps)
        runner.reset()
        runner.run()                             # warm-up at the final step count
    times = []
    for _ in range(repeats):
        runner.reset()
        t0 = time.perf_counter_ns()
        runner.run()
        times.append(time.perf_counter_ns() - t0)
    return [t / n_steps for t in times], n_steps


# --------------------------------------------------------------------------------------------
# Environment header
# --------------------------------------------------------------------------------------------

def blas_info():
    """(library description, thread count or a reason it is unknown)."""
    name = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no mode="dicts"
        pass
    try:
        import threadpoolctl
    except ImportError:
        return name, "unknown (threadpoolctl not installed)"
    pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return name, "unknown (threadpoolctl found no BLAS pool)"
    return name, ", ".join(f"{p.get('internal_api')}={p.get('num_threads')}" for p in pools)


def environment():
    blas_name, blas_threads = blas_info()
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cprop": cprop.__version__,
        "blas": blas_name,
        "blas_threads": blas_threads,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }


def unset(v):
    return "(unset)" if v is None else repr(v)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10x fewer steps per measurement")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per method (best is kept)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    ap.add_argument("--min-time", type=float, default=None, metavar="SECONDS",
                    help="raise a method's step count until one run takes at least this long "
                         "(default 0.2; 0.02 with --quick)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    if args.min_time is None:
        args.min_time = 0.02 if args.quick else 0.2

    steps = {k: (v // 10 if args.quick else v) for k, v in STEPS.items()}
    env = environment()

    print("# cprop seed network: time per single-sample SGD step\n")
    print(f"- date: {env['date']}")
    print(f"- CPU: {env['cpu']} ({env['logical_cpus']} logical CPUs); {env['platform']}")
    print(f"- Python {env['python']}, NumPy {env['numpy']}, cprop {env['cprop']}")
    print("- threads: cprop's kernels are single-threaded here (no OpenMP; fit and train_step "
          "run on one core). NumPy's BLAS threads are whatever the environment says: "
          f"OPENBLAS_NUM_THREADS={unset(env['OPENBLAS_NUM_THREADS'])}, "
          f"OMP_NUM_THREADS={unset(env['OMP_NUM_THREADS'])}; "
          f"BLAS {env['blas']}, threads: {env['blas_threads']} "
          "(2x2 operands are far too small for BLAS to split across threads)")
    print(f"- OPENBLAS_CORETYPE={unset(env['OPENBLAS_CORETYPE'])}, "
          f"OPENBLAS_L2_SIZE={unset(env['OPENBLAS_L2_SIZE'])}")
    print("- network: 2-2-2 sigmoid/sigmoid, squared error, lr 0.5, biases not trained, "
          "float64; x = (0.05, 0.10), t = (0.01, 0.99)")
    print(f"- timing: time.perf_counter_ns, 1 warm-up + best of {args.repeats} runs, each from "
          f"the seed weights; steps per run: at least {steps['fit']:,} (fit), "
          f"{steps['train_step']:,} (train_step, NumPy), {steps['oracle']:,} (oracle), raised "
          f"where needed so one run takes >= {args.min_time:g} s"
          f"{' (--quick: steps and time / 10)' if args.quick else ''}")

    # Agreement: every method, the same number of steps from the same start.
    n_check = steps["oracle"]
    diffs, moved, finals = check_agreement(n_check)
    print(f"\nAgreement after {n_check} steps from the seed weights (max |W - W_fit| over the "
          f"8 weights; the weights moved by up to {moved:.3g}):")
    for key, label in METHODS:
        if key == "fit":
            continue
        print(f"- {label}: {diffs[key]:.3g}")
    bad = {k: d for k, d in diffs.items() if d > AGREE_TOL}
    for key, d in bad.items():
        print(f"WARNING: {key} disagrees with cprop fit by {d:.3g} (> {AGREE_TOL:g}) "
              f"after {n_check} steps")

    results = {}
    min_time_ns = int(args.min_time * 1e9)
    for key, _label in METHODS:
        per_step, n_used = time_method(key, steps[key], args.repeats, min_time_ns)
        results[key] = {"steps": n_used, "ns_per_step": per_step,
                        "best_ns_per_step": min(per_step)}

    fit_ns = results["fit"]["best_ns_per_step"]
    np_ns = results["numpy"]["best_ns_per_step"]
    print()
    print("| method | steps | ns/step (best) | ratio vs cprop fit | ratio vs NumPy |")
    print("|---|---:|---:|---:|---:|")
    for key, label in METHODS:
        r = results[key]
        best = r["best_ns_per_step"]
        r["ratio_vs_fit"] = best / fit_ns
        r["ratio_vs_numpy"] = best / np_ns
        print(f"| {label} | {r['steps']:,} | {best:,.1f} | {r['ratio_vs_fit']:.2f}x | "
              f"{r['ratio_vs_numpy']:.3g}x |")
    print("\nratio = this method's time per step / the reference's (> 1: slower).")

    if args.json:
        payload = {
            "benchmark": "seed_steps",
            "quick": args.quick,
            "repeats": args.repeats,
            "min_time_s": args.min_time,
            "environment": env,
            "agreement": {"steps": n_check, "max_abs_diff_vs_fit": diffs,
                          "max_weight_change": moved, "tolerance": AGREE_TOL,
                          "ok": not bad},
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
