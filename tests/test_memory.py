"""No leaks: memory stays flat over many calls, on success and on error paths.

Two measures, each after a warm-up (workspaces are cached per network and batch size, and
NumPy/CPython keep free lists, so the first calls legitimately allocate):

- tracemalloc: Python objects and NumPy array data (NumPy reports its buffers to tracemalloc),
  so one leaked output array or workspace per call shows as >= 10,000 x its size;
- the process's resident set size (Linux /proc), which also sees C-level malloc leaks that
  tracemalloc cannot (e.g. a buffer a kernel forgot to free).

The calls use arrays of a few KiB, so a per-call leak of any of them would grow memory by tens
of MiB over 10,000 calls, far above the generous bounds below (which absorb allocator noise).
Reference counts of the arguments are checked too: a kernel that kept a reference to its input
would leak the whole array. ``python tests/test_memory.py`` prints the measured figures.
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import cprop

SIZES = [16, 32, 8]
N_CALLS = 10_000
N_FITS = 1_000
TRACED_BOUND = 256 * 1024          # bytes of traced growth allowed over all the calls
RSS_BOUND = 8 * 1024 * 1024        # bytes of RSS growth allowed over all the calls

_rng = np.random.default_rng(42)
X = _rng.normal(size=(64, SIZES[0]))
T = _rng.uniform(size=(64, SIZES[-1]))
X_BAD = X.copy()
X_BAD[3, 3] = np.nan


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _refused(fn):
    def call():
        try:
            fn()
        except (ValueError, FloatingPointError):
            return
        raise AssertionError("expected the call to be refused")
    return call


def workloads():
    """name -> (number of calls, one call). Fresh networks, so each measure starts clean."""
    net = cprop.MLP(SIZES, hidden="tanh", seed=0)
    net_adam = cprop.MLP(SIZES, hidden="relu", seed=1)
    net_fit = cprop.MLP(SIZES, seed=2)
    net_val = cprop.MLP(SIZES, hidden="tanh", seed=3)
    net_ce = cprop.MLP(SIZES, output="softmax", loss="cross_entropy", seed=4)
    labels = _rng.integers(0, SIZES[-1], size=64)
    big = cprop.MLP([1, 1], output="identity", seed=0)
    big.params[:] = [1e200, 0.0]
    Xs, Ts = X[:16], T[:16]
    return {
        "forward": (N_CALLS, lambda: net.forward(X)),
        "forward (one sample)": (N_CALLS, lambda: net.forward(X[0])),
        "train_step (sgd)": (N_CALLS, lambda: net.train_step(X, T, 0.01)),
        "train_step (adam)": (N_CALLS, lambda: net_adam.train_step(X, T, 1e-3,
                                                                    optimizer="adam")),
        "gradients": (N_CALLS, lambda: net.gradients(Xs, Ts)),
        "loss (cross_entropy labels)": (N_CALLS, lambda: net_ce.loss(X, labels)),
        "fit (1 epoch, batch 8)": (N_FITS, lambda: net_fit.fit(X, T, epochs=1, lr=0.01,
                                                               batch_size=8)),
        "fit (validation, early stopping)": (N_FITS, lambda: net_val.fit(
            Xs, Ts, epochs=2, lr=0.01, batch_size=4, validation_fraction=0.25,
            early_stopping=True, patience=1)),
        "refused: NaN input": (N_CALLS, _refused(lambda: net.forward(X_BAD))),
        "refused: wrong shape": (N_CALLS, _refused(lambda: net.loss(X, T[:, :2]))),
        "refused: overflowing step": (N_CALLS, _refused(
            lambda: big.train_step([[1e200]], [[0.0]], 0.1))),
    }


def measure(calls: int, fn, warmup: int = 300) -> tuple[int, int | None]:
    """(traced growth, RSS growth) in bytes over `calls` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    gc.collect()
    rss0 = rss_bytes()
    tracemalloc.start()
    try:
        gc.collect()
        traced0, _ = tracemalloc.get_traced_memory()
        for _ in range(calls):
            fn()
        gc.collect()
        traced1, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss1 = rss_bytes()
    return traced1 - traced0, (None if rss0 is None else rss1 - rss0)


WORKLOADS = list(workloads())


@pytest.mark.parametrize("name", WORKLOADS)
def test_memory_is_flat(name):
    calls, fn = workloads()[name]
    traced, rss = measure(calls, fn)
    assert traced < TRACED_BOUND, f"{name}: {traced} bytes traced growth over {calls} calls"
    if rss is not None:  # Linux; elsewhere tracemalloc alone
        assert rss < RSS_BOUND, f"{name}: RSS grew {rss / 2**20:.1f} MiB over {calls} calls"


def test_the_measure_sees_a_leak():
    # The same measure on a function that leaks one array per call must fail both bounds, so a
    # passing test above means something. 64 KiB per call (128 MiB in all): more than the free
    # heap earlier tests can leave behind for malloc to reuse without growing the RSS.
    kept = []
    traced, rss = measure(2_000, lambda: kept.append(np.ones(8192)), warmup=10)
    assert traced > TRACED_BOUND
    if rss is not None:
        assert rss > RSS_BOUND
    kept.clear()


def test_arguments_are_not_kept():
    net = cprop.MLP(SIZES, seed=0)
    X2, T2 = X.copy(), T.copy()
    params = net.params
    before = (sys.getrefcount(X2), sys.getrefcount(T2), sys.getrefcount(params))
    for _ in range(1000):
        net.forward(X2)
        net.loss(X2, T2)
        net.gradients(X2, T2)
        net.train_step(X2, T2, 0.01)
    net.fit(X2, T2, epochs=3, batch_size=8, lr=0.01)
    gc.collect()
    assert (sys.getrefcount(X2), sys.getrefcount(T2), sys.getrefcount(params)) == before


if __name__ == "__main__":
    print(f"{'workload':36s} {'calls':>7s} {'tracemalloc':>13s} {'RSS':>10s}")
    for name, (calls, fn) in workloads().items():
        traced, rss = measure(calls, fn)
        rss_txt = "n/a" if rss is None else f"{rss / 1024:+.0f} KiB"
        print(f"{name:36s} {calls:7d} {traced / 1024:+10.1f} KiB {rss_txt:>10s}")
