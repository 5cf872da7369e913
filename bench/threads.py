"""Networks in parallel threads against the same networks one after the other.

cprop's kernels run without the GIL, so k threads each training (or evaluating) their own
network should take about 1/min(k, cores) of the serial time, and give the same bits. For each
workload and thread count k this times k networks run serially, then the same k networks (fresh
copies) in k threads started together, and prints

    ratio = threaded wall time / serial wall time     (the target for k=2 on 2 cores: <= 0.6)

and whether every result is bit-identical to the serial run. Best of ``--repeats`` runs.
BLAS threads are limited to 1 (threadpoolctl, if installed) so that the wide-layer rows measure
cprop's own threads, not OpenBLAS's pool. Timings are noisy on a shared machine.

    python bench/threads.py [--quick] [--threads 1,2,4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import threading
import time

import numpy as np

import cprop


def _limit_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(), "not limited (no threadpoolctl)"
    return threadpool_limits(limits=1, user_api="blas"), "1 (threadpoolctl)"


def workloads(quick: bool):
    """name -> (make(k) -> list of k independent jobs; each job() returns arrays to compare)."""
    scale = 0.25 if quick else 1.0
    rng = np.random.default_rng(0)

    def data(n, n_in, n_out, seed):
        r = np.random.default_rng(seed)
        return r.normal(size=(n, n_in)), r.uniform(size=(n, n_out))

    def fit_jobs(k, sizes, n, epochs, batch_size, hidden):
        jobs = []
        for j in range(k):
            X, T = data(n, sizes[0], sizes[-1], j)
            net = cprop.MLP(sizes, hidden=hidden, seed=j)
            jobs.append(lambda net=net, X=X, T=T: (
                np.array(net.fit(X, T, epochs=epochs, batch_size=batch_size, lr=0.01,
                                 seed=7).loss), net.params.copy()))
        return jobs

    def eval_jobs(k, sizes, n, what, reps):
        jobs = []
        for j in range(k):
            X, T = data(n, sizes[0], sizes[-1], 100 + j)
            net = cprop.MLP(sizes, seed=j)
            if what == "forward":
                jobs.append(lambda net=net, X=X: tuple(net.forward(X) for _ in range(reps)))
            else:
                jobs.append(lambda net=net, X=X, T=T: tuple(
                    g for _ in range(reps) for gs in net.gradients(X, T) for g in gs))
        return jobs

    def control_jobs(k):
        # not cprop: hashing a big buffer releases the GIL too, so this row shows what the
        # machine gives two threads right now (near 1.0 means another process holds a core)
        data = b"x" * (8 * 2**20)
        reps = max(1, int(24 * scale))
        return [lambda: (np.frombuffer(b"".join(hashlib.sha256(data).digest()
                                                for _ in range(reps)), dtype=np.uint8),)
                for _ in range(k)]

    del rng
    n_fit = int(4000 * scale)
    # Each fit runs ~0.1-0.2 s: shorter runs (20 ms) let a few ms of the hypervisor's scheduling
    # jitter swing the ratio between 0.5 and 0.75 from one run to the next.
    return {
        "control: hashlib.sha256 (not cprop)": control_jobs,
        # the engine issue's rows: short fits (~20-35 ms), where Python between epochs used to
        # hold the GIL, and many tiny epochs
        "fit 16-32-4 batch 1, 2000 rows x 20 epochs":
            lambda k: fit_jobs(k, [16, 32, 4], int(2000 * scale), 20, 1, "tanh"),
        "fit 32-64-8 batch 1, 2000 rows x 20 epochs":
            lambda k: fit_jobs(k, [32, 64, 8], int(2000 * scale), 20, 1, "tanh"),
        "fit XOR 2-2-1 batch 1, 4 rows x 25000 epochs":
            lambda k: fit_jobs(k, [2, 2, 1], 4, int(25000 * scale), 1, "sigmoid"),
        "fit 64-32-10 batch 1 (tight loops)":
            lambda k: fit_jobs(k, [64, 32, 10], n_fit, 30, 1, "tanh"),
        "fit 64-32-10 batch 32 (BLAS)":
            lambda k: fit_jobs(k, [64, 32, 10], n_fit, 60, 32, "relu"),
        "fit 784-256-10 batch 64 (BLAS)":
            lambda k: fit_jobs(k, [784, 256, 10], int(1024 * scale), 8, 64, "sigmoid"),
        "forward 64-128-10, 20000 rows":
            lambda k: eval_jobs(k, [64, 128, 10], 20000, "forward", max(1, int(8 * scale))),
        "gradients 64-128-10, 20000 rows":
            lambda k: eval_jobs(k, [64, 128, 10], 20000, "gradients", max(1, int(4 * scale))),
    }


def run_serial(jobs):
    t0 = time.perf_counter()
    out = [job() for job in jobs]
    return time.perf_counter() - t0, out


def run_threads(jobs):
    out = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(len(jobs) + 1)

    def work(i):
        try:
            barrier.wait()
            out[i] = jobs[i]()
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    dt = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return dt, out


def same(a, b) -> bool:
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    p.add_argument("--threads", default="1,2,4", help="thread counts (default 1,2,4)")
    p.add_argument("--repeats", type=int, default=3, help="best of N (default 3)")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.threads.split(",")]
    limit, blas = _limit_blas()
    print(f"cprop {cprop.__version__}, {os.cpu_count()} logical CPUs, Python "
          f"{sys.version.split()[0]}, NumPy {np.__version__}, BLAS threads: {blas}")
    print()
    print("| workload | threads (= networks) | serial s | threaded s | threaded / serial "
          "| bit-identical |")
    print("|---|---:|---:|---:|---:|---|")
    worst = {}
    with limit:
        for name, make in workloads(args.quick).items():
            for k in counts:
                best_serial = best_threaded = float("inf")
                identical = True
                for _ in range(args.repeats):
                    ts, out_s = run_serial(make(k))
                    tt, out_t = run_threads(make(k))
                    best_serial, best_threaded = min(best_serial, ts), min(best_threaded, tt)
                    identical &= all(same(a, b) for a, b in zip(out_s, out_t))
                ratio = best_threaded / best_serial
                if k == 2:
                    worst[name] = ratio
                print(f"| {name} | {k} | {best_serial:.3f} | {best_threaded:.3f} | "
                      f"{ratio:.2f} | {'yes' if identical else 'NO'} |", flush=True)
    if worst:
        print()
        print("2 threads / serial: " + ", ".join(f"{n.split(' (')[0]}: {r:.2f}"
                                                  for n, r in worst.items())
              + "  (target: <= 0.6 on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
