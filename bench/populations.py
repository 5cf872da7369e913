"""Populations of small networks trained at once: W4 and W4b against the peers, in one run.

W4:  1,000 independent 2-2-1 sigmoid nets, squared error, online SGD over XOR's 4 rows in a fixed
     order, lr 0.5, 500 epochs, each net from its own start (2,000,000 single-row updates).
W4b: 1,000 nets 4-8-3 (sigmoid hidden, softmax, cross-entropy) on iris (150 rows,
     standardised), online SGD lr 0.1 in a fixed order, 100 epochs (15,000,000 updates).

Every peer starts from the same parameters (net i: ``cprop.MLP(sizes, seed=i)``'s) and must end
where cprop's ``MLP.fit`` ends (the table's last column: the largest difference of any final
parameter; the -ffast-math C loops and JAX round differently). Throughput is million net-steps
(one net's update on one row) per second; every peer runs on 1 thread.

Rows: cprop ``MLP.fit`` per net in a Python loop (what a user writes without populations);
``cprop.Population.fit`` (nets seeded 0 .. n-1, the same starts, the population built before
the clock starts; its lanes route here), in float64 and float32; the lanes kernel alone
(``_mlp.population_sgd_fit``: blocks of nets in SIMD lanes) on every instruction set this CPU
has (the first is the one cprop picks), to show what the Python layer around it costs and what
each set gives; NumPy and PyTorch vectorised across
the nets (one array op per layer per row, hand-written gradients); JAX ``jit(vmap(fori_loop))``;
C one net at a time (-O3 -march=native) and C with the nets in SIMD lanes
(bench/c/population_peer.c: AVX2 only, and -march=native), compiled here with gcc.

Then the thread table: W4 at 10,000 nets through ``Population.fit(n_threads=1)`` and
``(n_threads=2)`` (the results are bit-identical); the crossover table: wider and wider nets on
the lanes route and one at a time (where ``cprop.population.LANES_MAX_PARAMS`` comes from); and
the issue's targets as ratios of this run.

    python bench/populations.py [--quick] [--nets N] [--thread-nets N] [--skip jax,torch,...]
                                [--json PATH]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

import cprop  # noqa: E402
from _common import cpu_model  # noqa: E402
from cprop import population  # noqa: E402

HERE = Path(__file__).resolve().parent


def cpu_flags() -> set:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


class Workload:
    def __init__(self, name, sizes, output, loss, X, T, lr, epochs, n_nets):
        self.name, self.sizes, self.output, self.loss = name, sizes, output, loss
        self.X, self.T, self.lr, self.epochs, self.n_nets = X, T, lr, epochs, n_nets
        nets = [self.net(i) for i in range(n_nets)]
        self.start = np.stack([n.params.copy() for n in nets])  # (n_nets, n_params)

    def net(self, i):
        return cprop.MLP(self.sizes, hidden="sigmoid", output=self.output, loss=self.loss,
                         seed=i)

    @property
    def steps(self) -> int:
        return self.n_nets * self.epochs * len(self.X)

    def unpack(self, P):
        """(W1, b1, W2, b2) views of (n_nets, n_params) in cprop's per-net layout."""
        ni, nh, no = self.sizes
        o = 0
        W1 = P[:, o:o + ni * nh].reshape(-1, ni, nh)
        o += ni * nh
        b1 = P[:, o:o + nh]
        o += nh
        W2 = P[:, o:o + nh * no].reshape(-1, nh, no)
        o += nh * no
        b2 = P[:, o:o + no]
        return W1, b1, W2, b2


def w4(n_nets):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    T = np.array([[0], [1], [1], [0]], dtype=float)
    return Workload("W4 XOR 2-2-1", [2, 2, 1], "sigmoid", "squared_error", X, T, 0.5, 500,
                    n_nets)


def w4b(n_nets):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    T = np.eye(3)[y]
    return Workload("W4b iris 4-8-3", [4, 8, 3], "softmax", "cross_entropy",
                    np.ascontiguousarray(X), T, 0.1, 100, n_nets)


# -- peers: each returns the final (n_nets, n_params) ------------------------------------------

def run_cprop(wl):
    out = np.empty_like(wl.start)
    for i in range(wl.n_nets):
        net = wl.net(i)
        net.fit(wl.X, wl.T, epochs=wl.epochs, lr=wl.lr, batch_size=1, shuffle=False)
        out[i] = net.params
    return out


def population_runner(dtype="float64", n_threads=1):
    """Population.fit; the population is built before the clock starts (as the peers' starting
    arrays are: building 1,000 nets takes ~3 ms, 10,000 ~30 ms)."""
    def setup(wl):
        return cprop.Population(wl.sizes, wl.n_nets, hidden="sigmoid", output=wl.output,
                                loss=wl.loss, seed=list(range(wl.n_nets)), dtype=dtype)

    def run(wl, pop):
        history = pop.fit(wl.X, wl.T, epochs=wl.epochs, lr=wl.lr, batch_size=1, shuffle=False,
                          n_threads=n_threads)
        assert history.route == "lanes"
        return pop.params.astype(np.float64)
    run.setup = setup
    return run


def lanes_runner(isa):
    """The lanes kernel alone on instruction set ``isa``."""
    from cprop._kernels import _mlp

    def run(wl):
        before = _mlp.set_population_isa(isa)
        try:
            P = wl.start.copy()
            codes = [_mlp.ACTIVATION_CODES["sigmoid"]] * (len(wl.sizes) - 2) + [
                _mlp.ACTIVATION_CODES[wl.output]]
            losses = np.empty((wl.n_nets, wl.epochs))
            status = _mlp.population_sgd_fit(P, wl.sizes, codes, _mlp.LOSS_CODES[wl.loss],
                                             wl.X, wl.T, np.full(wl.n_nets, wl.lr), wl.epochs,
                                             True, 0.01, losses)
            assert not status.any()
            return P
        finally:
            _mlp.set_population_isa(before)
    return run


def run_numpy(wl):
    P = wl.start.copy()
    W1, b1, W2, b2 = wl.unpack(P)
    lr, soft = wl.lr, wl.output == "softmax"
    for _ in range(wl.epochs):
        for x, t in zip(wl.X, wl.T):
            h = 1.0 / (1.0 + np.exp(-(np.einsum("i,nij->nj", x, W1) + b1)))
            z = np.einsum("nj,njk->nk", h, W2) + b2
            if soft:
                e = np.exp(z - z.max(axis=1, keepdims=True))
                y = e / e.sum(axis=1, keepdims=True)
                dy = y - t
            else:
                y = 1.0 / (1.0 + np.exp(-z))
                dy = (y - t) * y * (1 - y)
            dh = np.einsum("njk,nk->nj", W2, dy) * h * (1 - h)
            W2 -= lr * h[:, :, None] * dy[:, None, :]
            b2 -= lr * dy
            W1 -= lr * x[None, :, None] * dh[:, None, :]
            b1 -= lr * dh
    return P


def run_torch(wl):
    import torch

    torch.set_num_threads(1)
    P = torch.tensor(wl.start)
    W1, b1, W2, b2 = wl.unpack(P)
    X, T = torch.tensor(wl.X), torch.tensor(wl.T)
    lr, soft = wl.lr, wl.output == "softmax"
    with torch.no_grad():
        for _ in range(wl.epochs):
            for x, t in zip(X, T):
                h = torch.sigmoid(torch.einsum("i,nij->nj", x, W1) + b1)
                z = torch.einsum("nj,njk->nk", h, W2) + b2
                if soft:
                    y = torch.softmax(z, dim=1)
                    dy = y - t
                else:
                    y = torch.sigmoid(z)
                    dy = (y - t) * y * (1 - y)
                dh = torch.einsum("njk,nk->nj", W2, dy) * h * (1 - h)
                W2.sub_(lr * h[:, :, None] * dy[:, None, :])
                b2.sub_(lr * dy)
                W1.sub_(lr * x[None, :, None] * dh[:, None, :])
                b1.sub_(lr * dh)
    return P.numpy()


def make_jax(wl):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    ni, nh, no = wl.sizes
    X, T = jnp.asarray(wl.X), jnp.asarray(wl.T)
    lr, soft, rows = wl.lr, wl.output == "softmax", len(wl.X)

    def one_net(p):
        W1 = p[:ni * nh].reshape(ni, nh)
        b1 = p[ni * nh:ni * nh + nh]
        o = ni * nh + nh
        W2 = p[o:o + nh * no].reshape(nh, no)
        b2 = p[o + nh * no:]

        def step(s, carry):
            W1, b1, W2, b2 = carry
            x, t = X[s % rows], T[s % rows]
            h = jax.nn.sigmoid(x @ W1 + b1)
            z = h @ W2 + b2
            if soft:
                y = jax.nn.softmax(z)
                dy = y - t
            else:
                y = jax.nn.sigmoid(z)
                dy = (y - t) * y * (1 - y)
            dh = (W2 @ dy) * h * (1 - h)
            return (W1 - lr * jnp.outer(x, dh), b1 - lr * dh,
                    W2 - lr * jnp.outer(h, dy), b2 - lr * dy)

        W1, b1, W2, b2 = jax.lax.fori_loop(0, wl.epochs * rows, step, (W1, b1, W2, b2))
        return jnp.concatenate([W1.ravel(), b1, W2.ravel(), b2])

    fn = jax.jit(jax.vmap(one_net))
    start = jnp.asarray(wl.start)
    fn(start).block_until_ready()  # compile outside the timing

    def run(_wl):
        return np.asarray(fn(start).block_until_ready())
    return run


def build_c(wl, flags, tag):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    ni, nh, no = wl.sizes
    tmp = Path(tempfile.mkdtemp(prefix="cprop-pop-"))
    lib = tmp / f"peer_{tag}.so"
    cmd = [cc, *flags, "-fPIC", "-shared", f"-DNI={ni}", f"-DNH={nh}", f"-DNO={no}",
           f"-DOUT_SOFTMAX={int(wl.output == 'softmax')}",
           str(HERE / "c" / "population_peer.c"), "-o", str(lib), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True)
    return ctypes.CDLL(str(lib))


def c_runner(lib, name):
    fn = getattr(lib, name)
    dp = ctypes.POINTER(ctypes.c_double)

    def run(wl):
        P = np.ascontiguousarray(wl.start.copy())
        fn(ctypes.c_int(wl.n_nets), ctypes.c_int(wl.epochs), ctypes.c_int(len(wl.X)),
           wl.X.ctypes.data_as(dp), wl.T.ctypes.data_as(dp), ctypes.c_double(wl.lr),
           P.ctypes.data_as(dp))
        return P
    return run


def crossover_rate(sizes, route, epochs, repeats, n_nets=128, rows=32):
    """Million net-steps/s of Population.fit on ``route`` ("lanes" or "per_net", the other one
    switched off) for ``n_nets`` nets of ``sizes``."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(rows, sizes[0])), rng.uniform(size=(rows, sizes[-1]))
    saved = population._DISABLED_ROUTES
    population._DISABLED_ROUTES = frozenset({"lanes"} if route == "per_net" else ())
    try:
        best = float("inf")
        for _ in range(repeats):
            pop = cprop.Population(sizes, n_nets, seed=1)
            # LANES_MAX_PARAMS is the choice measured here: lift it for the lanes rows
            limit, population.LANES_MAX_PARAMS = population.LANES_MAX_PARAMS, 1 << 62
            try:
                t0 = time.perf_counter()
                history = pop.fit(X, T, epochs=epochs, lr=0.05, shuffle=False)
                best = min(best, time.perf_counter() - t0)
            finally:
                population.LANES_MAX_PARAMS = limit
            assert history.route == route
    finally:
        population._DISABLED_ROUTES = saved
    return n_nets * rows * epochs / best / 1e6


def best_of(fn, wl, repeats):
    """The best time of ``repeats`` runs of fn(wl) (fn(wl, fn.setup(wl)) if fn has a setup,
    run before the clock starts) and the last run's result."""
    best, out = float("inf"), None
    setup = getattr(fn, "setup", None)
    for _ in range(repeats):
        args = (wl,) if setup is None else (wl, setup(wl))
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> int:
    from cprop._kernels import _mlp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 nets, one repeat (a smoke run)")
    ap.add_argument("--nets", type=int, default=1000)
    ap.add_argument("--thread-nets", type=int, default=10000,
                    help="nets of the thread table's W4 (default 10000)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated peers to leave out")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)
    n_nets = 100 if args.quick else args.nets
    thread_nets = 200 if args.quick else args.thread_nets
    repeats = 1 if args.quick else args.repeats
    skip = set(filter(None, args.skip.split(",")))
    flags = cpu_flags()
    best_isa = _mlp.population_isa()
    isas = [best_isa] + [i for i in reversed(_mlp.population_isas()) if i != best_isa]
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); every peer on 1 thread but the "
          f"thread table's; Python {platform.python_version()}, NumPy {np.__version__}, cprop "
          f"{cprop.__version__}; population kernel: {best_isa} (of {', '.join(isas)})")
    report = {"cpu": cpu_model(), "isa": best_isa, "workloads": {}}
    # the thread table first, before PyTorch and JAX are loaded (their thread pools idle in the
    # background): W4 at thread_nets nets, Population.fit on 1 and 2 threads
    wl = w4(thread_nets)
    print()
    print(f"Threads: W4 at {thread_nets:,} nets ({wl.steps:,} net-steps), Population.fit, "
          f"{best_isa}; the results are bit-identical")
    print("| n_threads | seconds | million net-steps/s | speed-up |")
    print("|---:|---:|---:|---:|")
    threads, finals = {}, {}
    for n in (1, 2):
        seconds, finals[n] = best_of(population_runner(n_threads=n), wl, repeats)
        threads[n] = seconds
        print(f"| {n} | {seconds:.3f} | {wl.steps / seconds / 1e6:.1f} | "
              f"{threads[1] / seconds:.2f} |", flush=True)
    assert finals[1].tobytes() == finals[2].tobytes()
    report["threads"] = {"nets": thread_nets, "seconds": threads}

    for make in (w4, w4b):
        wl = make(n_nets)
        peers = [("cprop: MLP.fit per net, Python loop", run_cprop),
                 ("cprop: Population.fit", population_runner()),
                 ("cprop: Population.fit, float32", population_runner("float32"))]
        peers += [(f"cprop: the lanes kernel alone, {isa}", lanes_runner(isa)) for isa in isas]
        if "numpy" not in skip:
            peers.append(("NumPy, vectorised across nets", run_numpy))
        if "torch" not in skip:
            try:
                import torch  # noqa: F401
                peers.append(("PyTorch, vectorised across nets", run_torch))
            except ImportError:
                print("  (PyTorch not installed: row skipped)")
        if "jax" not in skip:
            try:
                peers.append(("JAX, jit(vmap(fori_loop))", make_jax(wl)))
            except ImportError:
                print("  (JAX not installed: pip install 'jax[cpu]'; row skipped)")
        if "c" not in skip:
            native = build_c(wl, ["-O3", "-march=native"], "one")
            if native is not None:
                peers.append(("C, one net at a time (-O3 -march=native)",
                              c_runner(native, "train_one")))
                if {"avx2", "fma"} <= flags:
                    avx2 = build_c(wl, ["-O3", "-mavx2", "-mfma", "-ffast-math",
                                        "-fopenmp-simd"], "avx2")
                    peers.append(("C, nets in SIMD lanes (-mavx2 -mfma -ffast-math)",
                                  c_runner(avx2, "train_lanes")))
                lanes = build_c(wl, ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd"],
                                "native")
                peers.append(("C, nets in SIMD lanes (-march=native -ffast-math)",
                              c_runner(lanes, "train_lanes")))
        print()
        print(f"{wl.name}: {wl.n_nets} nets x {wl.epochs} epochs x {len(wl.X)} rows = "
              f"{wl.steps:,} net-steps, lr {wl.lr}, online SGD in a fixed order")
        print("| peer | seconds | million net-steps/s | x cprop | max diff from cprop |")
        print("|---|---:|---:|---:|---:|")
        reference, base, rows = None, None, {}
        for label, fn in peers:
            seconds, final = best_of(fn, wl, repeats)
            if reference is None:
                reference, base = final, seconds
            diff = float(np.max(np.abs(final - reference)))
            rows[label] = {"seconds": seconds, "rate": wl.steps / seconds / 1e6, "diff": diff}
            print(f"| {label} | {seconds:.3f} | {wl.steps / seconds / 1e6:.1f} | "
                  f"{base / seconds:.2f} | {diff:.1e} |", flush=True)
        report["workloads"][wl.name] = rows

    # the crossover: growing nets, the lanes route against one net at a time (the per-net route)
    print()
    print(f"Crossover: 128 nets k-H-m, 32 random rows, plain SGD in order, {best_isa}; "
          f"Population.fit takes the lanes route up to {population.LANES_MAX_PARAMS:,} "
          f"parameters a net")
    print("| net | parameters | lanes | per-net | lanes / per-net | Population.fit takes |")
    print("|---|---:|---:|---:|---:|---|")
    report["crossover"] = []
    for sizes in ([16, 32, 4], [32, 64, 8], [40, 64, 8], [56, 64, 8], [64, 64, 10],
                  [64, 128, 10]):
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        epochs = 1 if args.quick else max(1, int(4e6 / (n_params * 32 * 128)))
        rates = {route: crossover_rate(sizes, route, epochs, 1 if args.quick else repeats)
                 for route in ("lanes", "per_net")}
        takes = "lanes" if n_params <= population.LANES_MAX_PARAMS else "per-net"
        print(f"| {'-'.join(map(str, sizes))} | {n_params:,} | {rates['lanes']:.2f} | "
              f"{rates['per_net']:.2f} | {rates['lanes'] / rates['per_net']:.2f} | {takes} |",
              flush=True)
        report["crossover"].append({"sizes": sizes, "n_params": n_params, **rates})

    # the targets, as ratios of this run
    w4r, w4br = report["workloads"]["W4 XOR 2-2-1"], report["workloads"]["W4b iris 4-8-3"]
    pop = "cprop: Population.fit"
    checks = [("W4 float32 / float64 (Population.fit)", w4r[pop + ", float32"]["rate"]
               / w4r[pop]["rate"], 1.7),
              ("W4 at 1 -> 2 threads", threads[1] / threads[2], 1.8)]
    for label, target in (("C, nets in SIMD lanes (-mavx2 -mfma -ffast-math)", 0.9),
                          ("C, nets in SIMD lanes (-march=native -ffast-math)", 0.9)):
        if label in w4r:
            checks.append((f"W4 Population.fit / {label}", w4r[pop]["rate"] / w4r[label]["rate"],
                           target))
    if "JAX, jit(vmap(fori_loop))" in w4br:
        checks.append(("W4b Population.fit / JAX", w4br[pop]["rate"]
                       / w4br["JAX, jit(vmap(fori_loop))"]["rate"], 1.5))
    print()
    print("| target | this run | wanted | |")
    print("|---|---:|---:|---|")
    for label, ratio, target in checks:
        print(f"| {label} | {ratio:.2f} | >= {target} | {'met' if ratio >= target else 'MISSED'} |")
    report["targets"] = [{"what": a, "ratio": b, "wanted": c} for a, b, c in checks]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
