"""Does each special route of the step plan still earn its place? Each workload of
``bench/run.py`` whose batches take a special route, timed with the route on and off (its
batches then go to the next row of the plan's table, ``_kernels/_mlp.pyx``), interleaved in one
process, best of ``--repeats``. The rule (the engine's design): a route folds into the general
one when W1-W3 stay within 5 % without it.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/routes.py [--quick]

Also times the README's XOR case (4 rows x 25,000 epochs in one ``fit``) against the same rows
tiled to 100,000 x 1 epoch: the engine's per-epoch cost, which should be near nothing.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import cprop
import cprop.mlp
from _common import cpu_model


def timed(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def workloads(quick):
    rng = np.random.default_rng(0)
    out = []
    # W1: the seed net, 100,000 single-sample steps on its one sample (biases fixed).
    n1 = 20_000 if quick else 100_000
    X1 = np.tile([[0.05, 0.10]], (n1, 1))
    T1 = np.tile([[0.01, 0.99]], (n1, 1))
    out.append(("W1 seed net, fit, batch 1", "tiny2_rows", [2, 2, 2],
                dict(train_biases=False), X1, T1, dict(lr=0.5, batch_size=1, shuffle=False),
                n1))
    # W2: digits-sized 64-32-10 tanh/softmax, batch 1 and 32.
    from sklearn.datasets import load_digits

    d = load_digits()
    X2 = (d.data / 16.0).astype(np.float64)
    T2 = np.eye(10)[d.target]
    kw2 = dict(hidden="tanh", output="softmax", loss="cross_entropy")
    ep = 1 if quick else 5
    out.append(("W2 digits, batch 1", "row_sgd", [64, 32, 10], kw2, X2, T2,
                dict(lr=0.1, batch_size=1, shuffle=False, epochs=ep), len(X2) * ep))
    out.append(("W2 digits, batch 32", "fused_sgd", [64, 32, 10], kw2, X2, T2,
                dict(lr=0.1, batch_size=32, shuffle=False, epochs=ep), len(X2) * ep))
    # W3: 784-256-10 sigmoid/softmax, batch 64.
    n3 = 2048 if quick else 8192
    X3 = rng.standard_normal((n3, 784))
    T3 = np.eye(10)[rng.integers(0, 10, n3)]
    kw3 = dict(hidden="sigmoid", output="softmax", loss="cross_entropy")
    out.append(("W3 wide, batch 64", "fused_sgd", [784, 256, 10], kw3, X3, T3,
                dict(lr=0.1, batch_size=64, shuffle=False, epochs=1 if quick else 2),
                n3 * (1 if quick else 2)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats
    print(f"# step-plan routes, {cpu_model()}, Python {platform.python_version()}, 1 thread, "
          f"best of {repeats}\n")
    print("| workload | route | on: ns/sample | off: ns/sample | off / on "
          "| slower without it by > 5 % |")
    print("|---|---|---:|---:|---:|---|")
    for name, route, sizes, net_kw, X, T, fit_kw, samples in workloads(args.quick):
        nets = {}
        for key, disabled in (("on", ()), ("off", (route,))):
            cprop.mlp._DISABLED_ROUTES = frozenset(disabled)
            nets[key] = cprop.MLP(sizes, seed=0, **net_kw)
        cprop.mlp._DISABLED_ROUTES = frozenset()
        start = nets["on"].params.copy()
        t = {"on": float("inf"), "off": float("inf")}
        for _ in range(repeats):
            for key in ("on", "off"):
                net = nets[key]
                net.params[:] = start
                t0 = time.perf_counter()
                net.fit(X, T, **fit_kw)
                t[key] = min(t[key], time.perf_counter() - t0)
        on, off = t["on"] / samples * 1e9, t["off"] / samples * 1e9
        print(f"| {name} | `{route}` | {on:.1f} | {off:.1f} | {off / on:.2f}x | "
              f"{'yes' if off / on > 1.05 else 'within 5 % here'} |")
    # The XOR case: per-epoch cost of the engine.
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    T = np.array([[0], [1], [1], [0]], float)
    epochs = 5_000 if args.quick else 25_000
    Xt, Tt = np.tile(X, (epochs, 1)), np.tile(T, (epochs, 1))

    def xor():
        cprop.MLP([2, 2, 1], seed=0).fit(X, T, epochs=epochs, lr=0.5, batch_size=1,
                                         shuffle=False)

    def tiled():
        cprop.MLP([2, 2, 1], seed=0).fit(Xt, Tt, epochs=1, lr=0.5, batch_size=1, shuffle=False)

    a, b = [float("inf")] * 2
    for _ in range(repeats):
        a = min(a, timed(xor, 1))
        b = min(b, timed(tiled, 1))
    steps = 4 * epochs
    print(f"\nXOR 2-2-1, batch 1, no shuffle: 4 rows x {epochs:,} epochs "
          f"{a / steps * 1e9:.1f} ns/step; the same rows tiled to {steps:,} x 1 epoch "
          f"{b / steps * 1e9:.1f} ns/step; ratio {a / b:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
