"""Ctrl-C inside ONE long kernel call: forward, loss, gradients, train_step, one huge fit batch.

The kernels poll for signals between blocks of rows (``_mlp.poll_signals``, every ~1e5
multiply-adds), not only between batches, so KeyboardInterrupt comes out part-way through a
single call. A batch interrupted before its update leaves the network exactly as it was.

Each call is sized (from a probe) to run for several seconds; the assertion that it stopped
"early" is only there to show the interrupt came mid-call (generous bounds, not a speed test).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import cprop

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt",
                                reason="POSIX signals needed")

SIZES = [64, 1024, 1024, 10]
TARGET_S = 4.0  # how long each interrupted call would run
SEND_AFTER_S = 0.25


def _rows_for(net, seconds):
    # rows so that net.gradients takes about `seconds` (probe on 256 rows; capped for memory)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, SIZES[0]))
    T = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], 256)]
    t0 = time.perf_counter()
    net.gradients(X, T)
    per_row = max((time.perf_counter() - t0) / 256, 1e-7)
    return int(min(max(seconds / per_row, 2000), 400_000))


def _interrupted(call):
    """Run call() with SIGINT sent after SEND_AFTER_S; return the seconds until it raised."""
    assert threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(SEND_AFTER_S, os.kill, args=(os.getpid(), signal.SIGINT))
    try:
        t0 = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            call()
        return time.perf_counter() - t0
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, old)


@pytest.fixture(scope="module")
def data():
    net = cprop.MLP(SIZES, hidden="tanh", output="softmax", loss="cross_entropy", seed=1)
    n = _rows_for(net, TARGET_S)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, SIZES[0]))
    T = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], n)]
    return X, T


@pytest.mark.parametrize("method", ["forward", "loss", "gradients"])
def test_interrupt_inside_one_evaluation_call(data, method):
    X, T = data
    net = cprop.MLP(SIZES, hidden="tanh", output="softmax", loss="cross_entropy", seed=1)
    before = net.params.copy()
    args = (X,) if method == "forward" else (X, T)
    elapsed = _interrupted(lambda: getattr(net, method)(*args))
    assert elapsed < TARGET_S / 2, f"{method}: interrupt seen only after {elapsed:.2f} s"
    np.testing.assert_array_equal(net.params, before)
    # the network is usable afterwards, with the same results as a fresh one
    fresh = cprop.MLP(SIZES, hidden="tanh", output="softmax", loss="cross_entropy", seed=1)
    np.testing.assert_array_equal(net.forward(X[:50]), fresh.forward(X[:50]))


@pytest.mark.parametrize("how", ["fit_one_batch", "train_step_checked", "train_step_fast"])
def test_interrupt_inside_one_batch_applies_nothing(data, how):
    X, T = data
    net = cprop.MLP(SIZES, hidden="tanh", output="softmax", loss="cross_entropy", seed=1)
    if how == "train_step_fast":
        net.train_step(X[:300], T[:300], 0.01, optimizer="adam")  # arms the fast route
        assert net._fast_step is not None
    before = (net.params.copy(), net._opt_state.copy(), int(net._opt_steps[0]))
    if how == "fit_one_batch":
        call = lambda: net.fit(X, T, epochs=1, lr=0.01, batch_size=len(X), shuffle=False)
    else:
        call = lambda: net.train_step(X, T, 0.01, optimizer="adam")
    elapsed = _interrupted(call)
    assert elapsed < TARGET_S / 2, f"{how}: interrupt seen only after {elapsed:.2f} s"
    np.testing.assert_array_equal(net.params, before[0])
    np.testing.assert_array_equal(net._opt_state, before[1])
    assert net._opt_steps[0] == before[2]
    # and it trains normally afterwards
    loss = net.train_step(X[:64], T[:64], 0.01, optimizer="adam")
    assert np.isfinite(loss) and net._opt_steps[0] == before[2] + 1
