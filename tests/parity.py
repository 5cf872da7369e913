"""The parity harness: how every test compares cprop with a reference, in one place.

References are the plain-Python ``cprop.oracle``, finite differences, PyTorch and scikit-learn;
the fixtures that go with this module are in ``conftest.py``.

Error measure (:func:`rel_err`): the norm-wise relative error
``max_i |a_i - b_i| / max(max_i |b_i|, tiny)``, where ``b`` is the reference, both taken as
float64, and ``tiny`` is the smallest normal double (so two all-zero arrays agree and an
all-zero reference demands an exact zero). An entry that is small compared with the array's
largest entry is allowed an error of the array's scale, as floating-point arithmetic on that
array produces. Shapes must agree.

Tolerances against the oracle (:data:`RTOL`):

* float64: 1e-12. The kernels and the oracle perform the same IEEE operations in the same order,
  so in practice the results are bit-identical; 1e-12 leaves room for a libm that rounds
  ``exp``/``tanh`` differently from CPython's.
* float32: 1e-5, the compiled float32 path against the double oracle. To measure arithmetic
  error only, the oracle gets the float32-rounded copies of everything the compiled path rounds
  on entry (:func:`as_oracle`, :func:`oracle_scalar`, :func:`oracle_options`): initial
  parameters, X, T, the learning rate, momentum, alpha and the leaky_relu slope.

float32 gradients are compared as ONE vector (:func:`flat_gradient`, the layout of
``net.params``), because a single layer's bias gradient is a mean of per-sample deltas that can
cancel (e.g. 7e-5 from terms of 0.07) and then carries a legitimate float32 error far above 1e-5
of its own size.

A float32 ``fit`` is compared at a learning rate at which the exact (double) run from the
float32 start is stable and well-conditioned (:func:`float32_fit_lr`): a diverging run cannot be
reproduced in float32 at 1e-5, so it is not the run to compare. No case is skipped.

``pytest --parity-report`` prints the worst relative error seen per (quantity, dtype) by every
:func:`assert_rel` that names its quantity.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np

import cprop
from cprop import oracle

TINY = np.finfo(np.float64).tiny
DTYPES = ("float64", "float32")
RTOL = {"float64": 1e-12, "float32": 1e-5}

#: The largest relative error seen per (quantity, dtype) (``pytest --parity-report``).
WORST: dict[tuple[str, str], float] = {}


# The BLAS threshold (cprop.mlp._BLAS_MIN_WORK, read when a network is built) that sends every
# layer block through gemm, or none (the kernel_path fixture of conftest.py sets it).
BLAS_ALWAYS, BLAS_NEVER = 0, 2**62


# --------------------------------------------------------------------------------------------
# Error measure and assertions
# --------------------------------------------------------------------------------------------

def rel_err(actual, expected) -> float:
    """Norm-wise relative error ``max|a - b| / max(max|b|, tiny)``; empty arrays agree."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {a.shape} != expected shape {b.shape}")
    diff = np.max(np.abs(a - b), initial=0.0)
    scale = max(float(np.max(np.abs(b), initial=0.0)), TINY)
    return float(diff / scale)


def assert_rel(actual, expected, tol, what, quantity=None):
    """Assert that ``actual`` equals the reference ``expected`` to a relative error (see
    :func:`rel_err`) of at most ``tol``: a number, or a dtype name meaning ``RTOL[dtype]``.

    A NaN or infinity anywhere fails; shapes must agree. ``what`` names the quantity and the
    case for the message. With a dtype name and ``quantity``, the error is recorded in
    :data:`WORST` for the report.
    """
    rtol = RTOL[tol] if isinstance(tol, str) else tol
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != reference shape {b.shape}"
    assert np.isfinite(a).all() and np.isfinite(b).all(), (
        f"{what}: non-finite values (actual {a!r}, expected {b!r})")
    err = rel_err(a, b)
    if quantity is not None and isinstance(tol, str):
        key = (quantity, tol)
        WORST[key] = max(WORST.get(key, 0.0), err)
    if not err <= rtol:
        d = np.abs(a - b)
        k = np.unravel_index(np.argmax(d), d.shape) if d.ndim else ()
        raise AssertionError(
            f"{what}: relative error {err:.3e} > {rtol:g} (max |diff| {d[k]:.3e} at index "
            f"{tuple(int(i) for i in k)}: actual {a[k]!r}, expected {b[k]!r}; "
            f"max |expected| {np.max(np.abs(b)):.3e})")


def same_bits(a, b) -> bool:
    """Same dtype, same shape, same bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def replay(sizes, net_kw, X, T, steps, batch_size, lr, **opt):
    """A fresh network after `steps` steps on the batches fit takes without shuffle: the whole
    epochs by fit, the rest by train_step (the two agree bit for bit: tests/test_mlp_api.py)."""
    net = cprop.MLP(sizes, **net_kw)
    starts = list(range(0, X.shape[0], batch_size))
    epochs, rest = divmod(steps, len(starts))
    if epochs:
        net.fit(X, T, epochs=epochs, batch_size=batch_size, shuffle=False, lr=lr, **opt)
    for s in starts[:rest]:
        net.train_step(X[s:s + batch_size], T[s:s + batch_size], lr, **opt)
    assert net._opt_steps[0] == steps
    return net


# --------------------------------------------------------------------------------------------
# What the oracle gets
# --------------------------------------------------------------------------------------------

def as_oracle(values, dtype: str):
    """What the oracle gets for an input the compiled path converts to ``dtype`` on entry."""
    arr = np.asarray(values, dtype=np.float64)
    if dtype == "float32":
        arr = arr.astype(np.float32).astype(np.float64)
    return arr.tolist()


def oracle_scalar(value: float, dtype: str) -> float:
    """A number the float32 kernels round on entry (lr, momentum, alpha, the slope)."""
    return float(np.float32(value)) if dtype == "float32" else float(value)


def oracle_options(options: dict, dtype: str) -> dict:
    """Optimizer options for the oracle: float32 kernels cast momentum and alpha (betas and
    eps enter double expressions, ``<floating>(1.0 - beta1)``, and stay as given)."""
    out = dict(options)
    for key in ("momentum", "alpha"):
        if key in out:
            out[key] = oracle_scalar(out[key], dtype)
    return out


def compiled_and_oracle(sizes, dtype: str = "float64", **kwargs):
    """The compiled network and the oracle, built with the same arguments and starting from the
    same parameters.

    In float64 the oracle's own initialisation must already be the compiled one bit for bit
    (asserted here: the same SplitMix64 draws in the same order); in float32 the oracle starts
    from the compiled (float32-rounded) parameters. A leaky_relu slope is rounded for the
    oracle as the float32 kernels round it.
    """
    net = cprop.MLP(list(sizes), dtype=dtype, **kwargs)
    okw = dict(kwargs)
    if "negative_slope" in okw:
        okw["negative_slope"] = oracle_scalar(okw["negative_slope"], dtype)
    o = oracle.MLP(list(sizes), dtype=dtype, **okw)
    if dtype == "float64":
        assert net.params.tolist() == o.params_flat(), (
            f"{sizes} {kwargs}: the oracle's initial parameters are not the compiled ones")
    else:
        o.set_params_flat(net.params.astype(np.float64).tolist())
    return net, o


def sync_oracle(net, o):
    """Give the oracle the compiled network's current parameters (after a test set them)."""
    o.set_params_flat(net.params.astype(np.float64).tolist())


# --------------------------------------------------------------------------------------------
# Gradients and optimizer state
# --------------------------------------------------------------------------------------------

def flat_gradient(grad_weights, grad_biases) -> np.ndarray:
    """Weights and biases gradients as one float64 vector in the layout of ``net.params``
    (per layer: W row-major, then b)."""
    return np.concatenate([np.concatenate([np.asarray(gW, dtype=np.float64).ravel(),
                                           np.asarray(gb, dtype=np.float64).ravel()])
                           for gW, gb in zip(grad_weights, grad_biases)])


def state_slots(state, n_params: int) -> list[np.ndarray]:
    """The optimizer state split into its n_params-long slots (velocity; m, v; prev, step)."""
    s = np.asarray(state, dtype=np.float64)
    assert s.size % n_params == 0
    return [s[k * n_params:(k + 1) * n_params] for k in range(s.size // n_params)]


def assert_same_params(net, o, dtype, what):
    """The compiled network's parameters are the oracle's (``RTOL[dtype]``)."""
    assert_rel(net.params, o.params_flat(), dtype, f"{what}: params", "params")


def assert_same_state(net, o, dtype, what):
    """Optimizer, state (slot by slot) and step counter of the compiled net and the oracle."""
    n = net.n_params
    assert net.optimizer.state_key[0] == o.optimizer.state_key[0], what
    slots, oslots = state_slots(net._opt_state, n), state_slots(o.opt_state, n)
    assert len(slots) == len(oslots), f"{what}: {len(slots)} state slots vs {len(oslots)}"
    for k, (s, os_) in enumerate(zip(slots, oslots)):
        assert_rel(s, os_, dtype, f"{what}: optimizer state slot {k}", "optimizer state")
    assert int(net._opt_steps[0]) == o.opt_steps, (
        f"{what}: step counter {int(net._opt_steps[0])} vs oracle {o.opt_steps}")


# --------------------------------------------------------------------------------------------
# float32 fits: the learning rate at which a run is float32-reproducible
# --------------------------------------------------------------------------------------------

F32_DIVERGENCE_FACTOR = 4.0  # the exact run's epoch loss grows more than 4-fold
F32_PROBE_LIMIT = 1e-6  # one float32 rounding of the start moves the exact result by > 1e-6
F32_MAX_HALVINGS = 10  # lr is halved at most this often (down to 2**-10 of the drawn one)
MAX_F32_FIT_REDUCED = 0.15  # fraction of a family's cases that may run at a reduced lr


@dataclass
class FitRun:
    """What an oracle fit left: parameters, history.loss (None: it raised FloatingPointError),
    history.lr, optimizer state, step counter, generator state, and the History itself."""
    params: list
    loss: list | None
    lr: list | None
    state: list
    steps: int
    rng_state: int
    history: object = None


def oracle_fit_run(o, X, T, **fit_kwargs) -> FitRun:
    """Run ``o.fit(X, T, **fit_kwargs)`` and collect what it left (see :class:`FitRun`)."""
    try:
        h = o.fit(X, T, **fit_kwargs)
    except FloatingPointError:
        return FitRun(o.params_flat(), None, None, list(o.opt_state), o.opt_steps, o.rng.state)
    return FitRun(o.params_flat(), list(h.loss), list(h.lr), list(o.opt_state), o.opt_steps,
                  o.rng.state, h)


def float32_fit_probe(run, start, lr, probe_key):
    """The oracle's float32-input fit at ``lr`` and None, or why float32 parity at 1e-5 cannot
    be expected there. Decided from the exact (double) oracle alone, never from the compiled
    result. ``run(start, lr)`` is the oracle's fit from the flat parameters ``start``
    (a :class:`FitRun`).

    * the exact run diverges: FloatingPointError, or an epoch loss above
      :data:`F32_DIVERGENCE_FACTOR` times the first epoch's;
    * or it is ill-conditioned: from the float32 start perturbed by one float32 rounding (each
      parameter times 1 +- 2**-24, signs from ``random.Random(f"probe-{probe_key}")``), the run
      ends more than :data:`F32_PROBE_LIMIT` (relative) away in parameters, history or
      optimizer state. A float32 run rounds at every operation, so its error is then
      legitimately of the order of 1e-5 or more; Rprop's sign tests and Adam's normalised steps
      turn a gradient entry that is zero up to rounding into a full step of either sign.
    """
    ref = run(start, lr)
    if ref.loss is None:
        return ref, "the exact run diverges (FloatingPointError)"
    if max(ref.loss) > F32_DIVERGENCE_FACTOR * ref.loss[0]:
        return ref, ("the exact run diverges (epoch losses "
                     f"{', '.join(f'{h:.3g}' for h in ref.loss)})")
    signs = random.Random(f"probe-{probe_key}")
    probe_start = [p * (1.0 + signs.choice((-1.0, 1.0)) * 2.0**-24) for p in start]
    probe = run(probe_start, lr)
    if probe.loss is None:
        return ref, "the exact run diverges from a float32-rounded start"
    n = len(start)
    with np.errstate(all="ignore"):
        moved = max([rel_err(probe.params, ref.params), rel_err(probe.loss, ref.loss)]
                    + [rel_err(a, b) for a, b in zip(state_slots(probe.state, n),
                                                     state_slots(ref.state, n))])
    if not moved <= F32_PROBE_LIMIT:
        return ref, (f"ill-conditioned: one float32 rounding of the start moves the exact "
                     f"result by {moved:.1e} (> {F32_PROBE_LIMIT:g})")
    return ref, None


def float32_fit_lr(run, start, lr, probe_key):
    """``(lr, oracle result, reasons)``: ``lr`` halved until :func:`float32_fit_probe` accepts
    it; ``reasons`` says why each larger lr was passed over. The lr is None only if no lr down
    to 2**-F32_MAX_HALVINGS of the original qualifies (the test then fails)."""
    reasons = []
    for _ in range(F32_MAX_HALVINGS + 1):
        ref, reason = float32_fit_probe(run, start, lr, probe_key)
        if reason is None:
            return lr, ref, reasons
        reasons.append(f"lr={lr:.4g}: {reason}")
        lr /= 2
    return None, None, reasons


def assert_few_float32_fits_reduced(refs, n_cases):
    """Every float32 fit has a learning rate; at most :data:`MAX_F32_FIT_REDUCED` of the cases
    run at a reduced one, each only for divergence or ill-conditioning."""
    assert all(r[0] is not None for r in refs), [r[2] for r in refs if r[0] is None]
    reduced = [r[2] for r in refs if r[2]]
    assert len(reduced) <= MAX_F32_FIT_REDUCED * n_cases, (len(reduced), reduced)
    for reasons in reduced:
        assert all(": the exact run diverges" in r or ": ill-conditioned" in r
                   for r in reasons), reasons


# --------------------------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------------------------

def fd4(f, x0, h):
    """Fourth-order central difference of the scalar function f at x0."""
    return (-f(x0 + 2 * h) + 8 * f(x0 + h) - 8 * f(x0 - h) + f(x0 - 2 * h)) / (12 * h)


def fd_gradient(net, X, T, sides_of, h, kink_hint):
    """The FD gradient of net.loss over every entry of net.params (perturbed in place).

    ``sides_of(net, X)`` gives the sign pattern of every kinked unit (None for smooth
    networks); each perturbed evaluation asserts it is unchanged, so no FD step straddles a
    relu kink. ``kink_hint`` goes into that assertion's message.
    """
    p = net.params
    sides = sides_of(net, X)
    fd = np.empty(p.shape[0])
    for k in range(p.shape[0]):
        x0 = float(p[k])

        def loss_at(v, k=k):
            p[k] = v
            if sides is not None:
                now = sides_of(net, X)
                assert all(np.array_equal(s, t) for s, t in zip(sides, now)), (
                    f"FD step on params[{k}] crosses a kink; {kink_hint}")
            return net.loss(X, T)

        try:
            fd[k] = fd4(loss_at, x0, h)
        finally:
            p[k] = x0
    return fd


def hidden_pre_activations(net, X):
    """Every hidden layer's z = a @ W + b, in NumPy."""
    slope = net.negative_slope
    f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
         "relu": lambda z: np.maximum(z, 0.0),
         "leaky_relu": lambda z: np.where(z > 0, z, slope * z),
         "identity": lambda z: z}[net.hidden]
    a, zs = X, []
    for W, b in zip(net.weights[:-1], net.biases[:-1]):
        z = a @ W + b
        zs.append(z)
        a = f(z)
    return zs


# --------------------------------------------------------------------------------------------
# Interrupts
# --------------------------------------------------------------------------------------------

def send_sigint():
    os.kill(os.getpid(), signal.SIGINT)


class Interrupt:
    """What :func:`interrupt_after` did: ``started`` is the ``time.perf_counter()`` just before
    its timer started, ``sent`` receives the ``time.perf_counter()`` of the sending."""

    def __init__(self):
        self.started = None
        self.sent = []


@contextlib.contextmanager
def interrupt_after(seconds, send=send_sigint):
    """Call ``send`` (by default: SIGINT to this process) ``seconds`` after entering, with
    Python's default SIGINT handler installed meanwhile; yields an :class:`Interrupt`. Must run
    in the main thread (where Python delivers signals)."""
    assert threading.current_thread() is threading.main_thread()
    info = Interrupt()

    def fire():
        info.sent.append(time.perf_counter())
        send()

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(seconds, fire)
    try:
        info.started = time.perf_counter()
        timer.start()
        yield info
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, old)
