"""Ctrl-C latency: seconds from SIGINT to KeyboardInterrupt out of a long cprop call (issue 8).

For each workload, a timer thread sends SIGINT to this process at a random moment inside a call
that would run for minutes (``fit``) or seconds (``forward``/``gradients`` on big inputs); the
latency is the time from ``os.kill`` to the ``except KeyboardInterrupt`` in the calling frame.
After each interrupted ``fit`` the network must be consistent: finite parameters, a finite loss
equal (to 1e-12) to the plain-Python oracle's loss at those weights on a few samples (small
networks; the wide one is checked against a NumPy forward pass instead).

    python tools/interrupt_latency.py [--repeats 5]

Prints a table (median and max latency per workload); exits 1 if any latency exceeds 0.2 s or a
network is left inconsistent. POSIX only.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import statistics
import sys
import threading
import time

import numpy as np

import cprop
from cprop import oracle

LIMIT = 0.2


def interrupt(call, after: float) -> float:
    sent = []

    def send():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(after, send)
    timer.start()
    try:
        call()
    except KeyboardInterrupt:
        caught = time.perf_counter()
    else:
        timer.cancel()
        raise RuntimeError("the call finished before the interrupt; make it longer")
    finally:
        timer.join()
    return caught - sent[0]


def numpy_loss(net, X, T):
    a = X
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        z = a @ W + b
        last = l == len(net.weights) - 1
        if last and net.output == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
        elif (last and net.output == "sigmoid") or (not last and net.hidden == "sigmoid"):
            a = 1 / (1 + np.exp(-z))
        elif not last and net.hidden == "relu":
            a = np.maximum(z, 0)
        elif not last and net.hidden == "tanh":
            a = np.tanh(z)
        else:
            a = z
    if net.loss_name == "cross_entropy":
        return float(np.mean(-np.sum(T * np.log(a), axis=1)))
    return float(np.mean(0.5 * np.sum((T - a) ** 2, axis=1)))


def check_consistent(net, X, T, use_oracle: bool) -> str:
    if not np.isfinite(net.params).all():
        return "params not finite"
    Xs, Ts = X[:20], T[:20]
    loss = net.loss(Xs, Ts)
    if not math.isfinite(loss):
        return "loss not finite"
    if use_oracle:
        o = oracle.MLP(net.layer_sizes, hidden=net.hidden, output=net.output,
                       loss=net.loss_name, seed=0)
        o.set_params_flat(net.params.tolist())
        ref = o.loss(Xs.tolist(), Ts.tolist())
    else:
        ref = numpy_loss(net, Xs, Ts)
    tol = 1e-12 if use_oracle else 1e-9   # NumPy sums in its own order
    if abs(loss - ref) > tol * max(abs(ref), 1e-300):
        return f"loss {loss!r} != reference {ref!r}"
    return "ok"


def workloads():
    rng = np.random.default_rng(0)
    small_X, small_T = rng.normal(size=(2000, 64)), np.eye(10)[rng.integers(0, 10, 2000)]
    wide_X, wide_T = rng.normal(size=(20000, 784)), np.eye(10)[rng.integers(0, 10, 20000)]
    long_X, long_T = rng.normal(size=(400_000, 64)), np.eye(10)[rng.integers(0, 10, 400_000)]

    def fit(sizes, X, T, use_oracle, **kw):
        def make():
            net = cprop.MLP(sizes, hidden="tanh", output="softmax", loss="cross_entropy", seed=0)
            return net, (lambda: net.fit(X, T, epochs=10**6, **kw)), (
                lambda: check_consistent(net, X, T, use_oracle))
        return make

    def evaluate(sizes, X, T, what):
        def make():
            net = cprop.MLP(sizes, hidden="relu", output="softmax", loss="cross_entropy", seed=0)
            big = np.ascontiguousarray(np.tile(X, (8, 1)))
            bigT = np.ascontiguousarray(np.tile(T, (8, 1)))
            call = (lambda: net.forward(big)) if what == "forward" else (
                lambda: net.gradients(big, bigT))
            return net, call, (lambda: check_consistent(net, X, T, False))
        return make

    return {
        "fit 64-32-10, batch 1, sgd": fit([64, 32, 10], small_X, small_T, True, batch_size=1,
                                          lr=0.01),
        "fit 64-32-10, batch 32, adam": fit([64, 32, 10], small_X, small_T, True, batch_size=32,
                                            lr=1e-3, optimizer="adam"),
        "fit 64-32-10, one 400k-row epoch": fit([64, 32, 10], long_X, long_T, True,
                                                batch_size=1, lr=0.01),
        "fit 784-256-10, batch 64 (BLAS)": fit([784, 256, 10], wide_X, wide_T, False,
                                               batch_size=64, lr=0.01),
        "fit 784-256-10, batch 20000 (one batch/epoch)": fit([784, 256, 10], wide_X, wide_T,
                                                             False, batch_size=20000, lr=0.01),
        "forward 784-256-10, 160k rows": evaluate([784, 256, 10], wide_X, wide_T, "forward"),
        "gradients 784-256-10, 160k rows": evaluate([784, 256, 10], wide_X, wide_T,
                                                    "gradients"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", help="comma-separated substrings of workload names")
    args = p.parse_args(argv)
    if os.name == "nt":
        print("POSIX signals needed")
        return 0
    signal.signal(signal.SIGINT, signal.default_int_handler)
    random.seed(1)
    print(f"cprop {cprop.__version__}, {os.cpu_count()} logical CPUs; SIGINT at a random moment "
          f"0.1-0.6 s into each call; {args.repeats} runs per workload")
    print()
    print("| workload | median latency ms | max latency ms | network after | <= 200 ms |")
    print("|---|---:|---:|---|---|")
    bad = False
    for name, make in workloads().items():
        if args.only and not any(s in name for s in args.only.split(",")):
            continue
        lat, states = [], set()
        for _ in range(args.repeats):
            net, call, check = make()
            lat.append(interrupt(call, random.uniform(0.1, 0.6)))
            states.add(check())
        worst = max(lat)
        ok = worst <= LIMIT and states == {"ok"}
        bad |= not ok
        print(f"| {name} | {statistics.median(lat) * 1e3:.1f} | {worst * 1e3:.1f} | "
              f"{', '.join(sorted(states))} | {'yes' if ok else 'NO'} |", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
