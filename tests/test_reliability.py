"""Reliability: numerical faults, threads, hostile attribute writes.

With bounds checks off in the kernels, these are the promises of docs/guarantees.md that are
not about argument checking (tests/test_validation.py, tests/test_fuzz.py), files
(tests/test_save_load.py, tests/test_fuzz_load.py) or Ctrl-C (tests/test_interrupts.py):

- Divergence: the step that would overflow is refused with FloatingPointError and the network
  keeps the last finite weights (again: the bits of a replay of the accepted steps).
- NaN/inf in any input is refused before anything changes; huge finite inputs give finite
  results or FloatingPointError, never NaN/inf.
- Threads: different networks in different threads give the bits of running them one after the
  other (fit, forward, gradients); one network shared by threads serialises on its lock.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import cprop
from parity import replay, same_bits


# ------------------------------------------------------------------------------------------------
# numerical faults
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_divergence_stops_with_the_last_finite_weights(optimizer):
    rng = np.random.default_rng(5)
    X, T = rng.uniform(-1e3, 1e3, size=(32, 3)), rng.uniform(-1e3, 1e3, size=(32, 1))
    sizes, net_kw, lr = [3, 8, 1], dict(hidden="identity", output="identity", seed=0), 1e2
    if optimizer == "adam":
        lr = 1e300   # Adam's step is ~lr per coordinate: huge lr overflows the parameters
    net = cprop.MLP(sizes, **net_kw)
    with pytest.raises(FloatingPointError) as info:
        net.fit(X, T, epochs=1000, batch_size=4, shuffle=False, lr=lr, optimizer=optimizer)
    msg = str(info.value)
    assert "epoch" in msg and f"lr={lr}" in msg and "not applied" in msg
    assert np.isfinite(net.params).all()
    steps = int(net._opt_steps[0])
    ref = replay(sizes, net_kw, X, T, steps, 4, lr, optimizer=optimizer)
    assert same_bits(net.params, ref.params)
    # the history of the completed epochs comes with the error
    assert info.value.history.epochs == steps // 8
    # the refused step is refused again (nothing half-applied in between)
    before = net.params.copy()
    s = (steps % 8) * 4
    with pytest.raises(FloatingPointError):
        net.train_step(X[s:s + 4], T[s:s + 4], lr, optimizer=optimizer)
    assert same_bits(net.params, before)


BAD_VALUES = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", ["X", "T", "validation X", "validation T"])
def test_non_finite_inputs_refused_before_anything_changes(bad, where):
    rng = np.random.default_rng(2)
    X, T = rng.normal(size=(20, 3)), rng.uniform(size=(20, 2))
    Xv, Tv = X[:5].copy(), T[:5].copy()
    target = {"X": X, "T": T, "validation X": Xv, "validation T": Tv}[where]
    target[-1, -1] = bad         # the very last value: every earlier batch would be fine
    net = cprop.MLP([3, 4, 2], seed=0)
    net.fit(X[:4], np.clip(T[:4], 0, 1), epochs=1, optimizer="adam")   # some optimizer state
    p0, s0, rng0 = net.params.copy(), net._opt_state.copy(), net._rng.copy()
    calls = [lambda: net.fit(X, T, epochs=2, optimizer="adam", validation_data=(Xv, Tv))]
    if where in ("X", "T"):
        calls += [lambda: net.train_step(X, T, 0.1, optimizer="adam"),
                  lambda: net.loss(X, T), lambda: net.gradients(X, T)]
    if where == "X":
        calls.append(lambda: net.forward(X))
    for call in calls:
        with pytest.raises(ValueError, match=r"(X|T|validation_data\[[01]\]): contains NaN"):
            call()
        assert same_bits(net.params, p0) and same_bits(net._opt_state, s0)
        assert same_bits(net._rng, rng0)


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "leaky_relu", "identity"])
@pytest.mark.parametrize("head", [("sigmoid", "squared_error"), ("identity", "squared_error"),
                                  ("softmax", "cross_entropy"),
                                  ("sigmoid", "binary_cross_entropy")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_huge_finite_values_never_give_nan(hidden, head, dtype):
    # Extreme but finite inputs and weights: every result is finite, or the call raises
    # FloatingPointError; NaN/inf never comes back, and a refused step changes nothing.
    output, loss = head
    big = float(np.finfo(dtype).max) / 4
    rng = np.random.default_rng(0)
    for scale_x, scale_w in [(big, 1.0), (1.0, big), (1e3, 1e3), (big, big), (1e-300, 1e300)]:
        net = cprop.MLP([3, 4, 2], hidden=hidden, output=output, loss=loss, dtype=dtype, seed=1)
        # scaled in float64, then clipped to the dtype's range (so nothing is inf)
        net.params[:] = np.clip(net.params.astype(np.float64) * scale_w, -big, big)
        X = np.clip(rng.normal(size=(6, 3)) * scale_x, -big, big).astype(dtype)
        T = np.eye(2)[rng.integers(0, 2, size=6)]
        for name, fn in [("forward", lambda net=net, X=X: net.forward(X)),
                         ("loss", lambda net=net, X=X, T=T: net.loss(X, T)),
                         ("gradients", lambda net=net, X=X, T=T: net.gradients(X, T))]:
            try:
                out = fn()
            except FloatingPointError as exc:
                assert name in str(exc)
                continue
            flat = np.concatenate([np.ravel(a) for a in (out[0] + out[1])]) \
                if name == "gradients" else np.ravel(out)
            assert np.isfinite(flat).all(), (name, scale_x, scale_w)
        before = net.params.copy()
        try:
            net.train_step(X, T, 0.1)
        except FloatingPointError:
            assert same_bits(net.params, before)
        assert np.isfinite(net.params).all()


# ------------------------------------------------------------------------------------------------
# threads (the lock per network and two-networks fit: tests/test_mlp_api.py)
# ------------------------------------------------------------------------------------------------

def _in_threads(*fns):
    results, errors = [None] * len(fns), []
    barrier = threading.Barrier(len(fns))

    def run(k, fn):
        try:
            barrier.wait()
            results[k] = fn()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k, fn)) for k, fn in enumerate(fns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
        assert not th.is_alive()
    assert not errors, errors
    return results


def test_forward_and_gradients_of_two_networks_in_two_threads_equal_sequential():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 64))      # big enough that both kernels run for a while
    T = rng.uniform(size=(3000, 10))
    a = cprop.MLP([64, 128, 10], seed=1)
    b = cprop.MLP([64, 96, 10], hidden="relu", seed=2)
    seq = [a.forward(X), b.forward(X), a.gradients(X, T), b.gradients(X, T)]
    for _ in range(3):
        par = _in_threads(lambda: (a.forward(X), a.gradients(X, T)),
                          lambda: (b.forward(X), b.gradients(X, T)))
        assert same_bits(par[0][0], seq[0]) and same_bits(par[1][0], seq[1])
        for got, want in [(par[0][1], seq[2]), (par[1][1], seq[3])]:
            assert all(same_bits(g, w) for g, w in zip(got[0] + got[1], want[0] + want[1]))


def test_same_network_from_two_threads_fit_and_forward_serialise():
    # One network: fit in one thread, forward in another. Each call holds the network's lock
    # for its whole duration, so every forward sees the parameters between two fit calls (the
    # ones a serial run passes through), never a half-updated buffer.
    rng = np.random.default_rng(9)
    X, T = rng.normal(size=(256, 16)), rng.uniform(size=(256, 4))
    net = cprop.MLP([16, 32, 4], seed=4)
    seen = []
    stop = threading.Event()

    def trainer():
        try:
            for _ in range(20):
                net.fit(X, T, epochs=2, batch_size=4, lr=0.05, seed=1)
        finally:
            stop.set()

    def reader():
        while not stop.is_set():
            with net._lock:   # reentrant: forward takes it again; the copy pairs with forward
                seen.append((net.forward(X[:8]), net.params.copy()))

    _in_threads(trainer, reader)
    ref = cprop.MLP([16, 32, 4], seed=4)
    ends = [ref.params.copy()]
    for _ in range(20):
        ref.fit(X, T, epochs=2, batch_size=4, lr=0.05, seed=1)
        ends.append(ref.params.copy())
    assert same_bits(net.params, ends[-1])
    assert seen
    end_bytes = {p.tobytes(): k for k, p in enumerate(ends)}
    probe = cprop.MLP([16, 32, 4], seed=4)
    for y, p in seen[:: max(1, len(seen) // 40)]:
        assert p.tobytes() in end_bytes, "forward ran in the middle of a fit"
        probe.params[:] = p
        assert same_bits(y, probe.forward(X[:8]))


# ------------------------------------------------------------------------------------------------
# hostile attribute writes and sizes (found by fuzzing)
# ------------------------------------------------------------------------------------------------

def test_layer_sizes_cannot_be_changed_under_the_kernels():
    # Before: net.layer_sizes[-1] = 1 made forward allocate a too-small output that the kernel
    # wrote past (a segfault). Run in a child so a regression crashes it, not the test run.
    code = textwrap.dedent("""
        import numpy as np, cprop
        net = cprop.MLP([2, 3, 400], seed=0)
        net.layer_sizes[-1] = 1
        y = net.forward(np.ones((5000, 2)))
        try:
            net.layer_sizes = [2, 1]
        except AttributeError:
            pass
        else:
            raise SystemExit("layer_sizes could be reassigned")
        print(y.shape, net.layer_sizes)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(5000, 400) [2, 3, 400]"


def test_arrays_larger_than_memory_are_refused_before_copying():
    net = cprop.MLP([2, 3, 1], seed=0)
    huge = np.broadcast_to(0.5, (10**12, 2))     # 16 TB described, 8 bytes stored
    with pytest.raises(ValueError, match=r"^X: shape \(1000000000000, 2\) would need"):
        net.forward(huge)
    with pytest.raises(ValueError, match=r"^T: shape"):
        net.loss(np.zeros((3, 2)), np.broadcast_to(np.float32(0.5), (10**12, 1)))
    wide = cprop.MLP([1, 100_000], seed=0)
    with pytest.raises(ValueError, match=r"^X: the outputs of 10000000 samples"):
        wide.forward(np.broadcast_to(0.0, (10**7, 1)))


def test_progress_must_be_a_bool():
    net = cprop.MLP([2, 1], seed=0)
    for bad in (np.array([1, 2]), "yes", 1):
        with pytest.raises(TypeError, match="^progress: expected True or False"):
            net.fit([[0.0, 1.0]], [0.5], progress=bad)
    assert net._opt_steps[0] == 0


def test_schedule_that_overflows_is_a_value_error():
    net = cprop.MLP([2, 1], seed=0)
    with pytest.raises(ValueError, match=r"^lr_schedule \(epoch 2\)"):
        net.fit([[0.0, 1.0]], [0.5], epochs=3,
                lr_schedule=cprop.schedules.InverseScaling(power_t=2**70))
