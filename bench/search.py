"""Threaded GridSearchCV: cprop.sklearn against sklearn.neural_network, n_jobs 1 and 2.

The same search both ways: scikit-learn's digits (1797 x 64, scaled to [0, 1]), MLPClassifier
(adam, learning_rate_init 0.001, batch 'auto' = 200, max_iter 50 epochs for every fit, so both
libraries do the same work), grid hidden_layer_sizes {(32,), (64,)} x alpha {1e-4, 1e-2},
3-fold CV: 12 fits + the refit. Joblib's threading backend; BLAS limited to 1 thread with
threadpoolctl, so n_jobs is the only parallelism. cprop.sklearn reproduces scikit-learn's
training, so both searches must give the same scores; the table says whether they did.

    python bench/search.py [--repeats 3] [--quick]

``--quick`` (a smoke run: 1 repeat, 5 epochs per fit) only checks that the script runs.

The search table ends with joblib's ceiling: the same search over a stand-in estimator whose fit
and score only sleep cprop.sklearn's serial per-candidate times (no CPU, no GIL), i.e. the best
share of the ideal any estimator can reach through GridSearchCV and joblib's threading backend.

Prints two Markdown tables: the search (median wall time of the repeats), and two independent
fits one after the other vs in 2 threads (the plainest view of whether the GIL is released).
Timings on a machine other processes are using are noisy: the "other load" column is the share
of the CPUs they took; "CPU s / wall s" is this process's CPU time over the wall time (near 2
when both threads run at once, i.e. the GIL is not what they wait for).
Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn import neural_network
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LoadMeter, cpu_model, log  # noqa: E402

import cprop  # noqa: E402
import cprop.sklearn  # noqa: E402

GRID = {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2]}
PARAMS = dict(solver="adam", learning_rate_init=0.001, max_iter=50, random_state=0)
LIBS = {"cprop.sklearn": cprop.sklearn.MLPClassifier,
        "sklearn.neural_network": neural_network.MLPClassifier}


def _cpu_seconds() -> float:
    """CPU time of this process, all threads: / wall time = how many threads really ran."""
    t = os.times()
    return t.user + t.system


class SleepingStandIn(ClassifierMixin, BaseEstimator):
    """joblib's own ceiling: an estimator whose fit and score only sleep (no CPU, no GIL) for
    the serial times a real search measured for the same candidate, so its share of the ideal
    is the best any estimator can reach through this GridSearchCV and joblib's threading
    backend (their dispatch order, pool start-up and result polling are all that is left)."""

    def __init__(self, hidden_layer_sizes=(100,), alpha=1e-4, times=None, **ignored):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.times = times

    def _times(self):
        return self.times[repr((tuple(self.hidden_layer_sizes), float(self.alpha)))]

    def fit(self, X, y):
        time.sleep(self._times()[0])
        self.classes_ = np.unique(y)
        return self

    def score(self, X, y, sample_weight=None):
        time.sleep(self._times()[1])
        return 0.0


def stand_in_times(search) -> dict:
    """Each candidate's mean fit and score seconds in a serial search, for SleepingStandIn."""
    r = search.cv_results_
    return {repr((tuple(p["hidden_layer_sizes"]), float(p["alpha"]))):
            (float(r["mean_fit_time"][c]), float(r["mean_score_time"][c]))
            for c, p in enumerate(r["params"])}


def run_search(cls, n_jobs, X, y, max_iter, times=None):
    """The search without its refit (timed apart: it is one serial fit whatever n_jobs)."""
    with warnings.catch_warnings():
        # max_iter fixed on purpose (equal work for both); every fit warns that it stopped there
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        with joblib.parallel_config(backend="threading"):
            est = (cls(**dict(PARAMS, max_iter=max_iter)) if times is None
                   else SleepingStandIn(times=times))
            return GridSearchCV(est, GRID, cv=3, n_jobs=n_jobs, refit=False).fit(X, y)


def refit(cls, search, X, y, max_iter) -> float:
    """Wall seconds of the refit GridSearchCV(refit=True) would do: the best candidate on all
    rows."""
    best = search.cv_results_["params"][int(np.argmin(search.cv_results_["rank_test_score"]))]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        t0 = time.perf_counter()
        cls(**dict(PARAMS, max_iter=max_iter, **best)).fit(X, y)
        return time.perf_counter() - t0


def ideal_two_workers(task_seconds) -> float:
    """The shortest wall time of these tasks on 2 workers by longest-first list scheduling
    (what joblib's dispatch can at best achieve)."""
    loads = [0.0, 0.0]
    for t in sorted(task_seconds, reverse=True):
        loads[loads.index(min(loads))] += t
    return max(loads)


def serial_tasks(search) -> list[float]:
    """Each (candidate, fold) task's fit + score seconds, from a serial search."""
    r = search.cv_results_
    n_splits = search.n_splits_
    return [float(r["mean_fit_time"][c] + r["mean_score_time"][c])
            for c in range(len(r["params"])) for _ in range(n_splits)]


def two_fits(cls, X, y, max_iter, threaded: bool) -> tuple[float, float]:
    """Wall seconds and CPU/wall of two independent fits, one after the other or in 2 threads."""
    def fit():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)  # fixed max_iter
            cls(hidden_layer_sizes=(64,), **dict(PARAMS, max_iter=2 * max_iter)).fit(X, y)

    c0, t0 = _cpu_seconds(), time.perf_counter()
    if threaded:
        threads = [threading.Thread(target=fit) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        fit()
        fit()
    wall = time.perf_counter() - t0
    return wall, (_cpu_seconds() - c0) / wall


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, 5 epochs")
    args = ap.parse_args(argv)
    max_iter = 5 if args.quick else PARAMS["max_iter"]
    if args.quick:
        args.repeats = 1

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rows, refits = {}, {}
    with threadpool_limits(limits=1):
        pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
        pairs = {}
        for lib, cls in LIBS.items():
            for threaded in (False, True):
                runs = [two_fits(cls, X, y, max_iter, threaded) for _ in range(args.repeats)]
                pairs[lib, threaded] = min(runs)  # the least disturbed run
                log(f"{lib} two fits threaded={threaded}: {pairs[lib, threaded][0]:.3f} s")
            for n_jobs in (1, 2):
                times, loads, cpus = [], [], []
                for r in range(args.repeats):
                    meter = LoadMeter()
                    c0, t0 = _cpu_seconds(), time.perf_counter()
                    search = run_search(cls, n_jobs, X, y, max_iter)
                    times.append(time.perf_counter() - t0)
                    cpus.append((_cpu_seconds() - c0) / times[-1])
                    loads.append(meter.stop())
                    log(f"{lib} n_jobs={n_jobs} run {r + 1}: {times[-1]:.3f} s")
                rows[lib, n_jobs] = (statistics.median(times), loads, search,
                                     statistics.median(cpus))
            refits[lib] = min(refit(cls, rows[lib, 1][2], X, y, max_iter)
                              for _ in range(args.repeats))
        # joblib's ceiling: the same search over cprop's serial per-fit times, only sleeping
        times = stand_in_times(rows["cprop.sklearn", 1][2])
        stand_in = {}
        for n_jobs in (1, 2):
            runs = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run_search(SleepingStandIn, n_jobs, X, y, max_iter, times=times)
                runs.append(time.perf_counter() - t0)
            stand_in[n_jobs] = statistics.median(runs)

    print(f"GridSearchCV on digits (1797 x 64), 4 candidates x 3 folds (the refit timed apart), "
          f"{max_iter} epochs each; "
          f"{cpu_model()}, {os.cpu_count()} logical CPUs; BLAS/OpenMP pools during the run: "
          f"{pools}; cprop {cprop.__version__}, scikit-learn {sklearn.__version__}; "
          f"median of {args.repeats} runs\n")
    print("| estimator | n_jobs (threads) | search wall s | speed-up vs n_jobs=1 | ideal "
          "speed-up (from the serial per-fit times) | share of ideal | scikit-learn / cprop "
          "| CPU s / wall s | other load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (lib, n_jobs), (t, loads, _, cpu) in rows.items():
        speedup = rows[lib, 1][0] / t
        tasks = serial_tasks(rows[lib, 1][2])
        ideal = sum(tasks) / (ideal_two_workers(tasks) if n_jobs == 2 else sum(tasks))
        vs = rows["sklearn.neural_network", n_jobs][0] / rows["cprop.sklearn", n_jobs][0]
        load = [x for x in loads if x is not None]
        load_s = f"{100 * max(load):.0f} %" if load else "n/a"
        print(f"| {lib} | {n_jobs} | {t:.3f} | {speedup:.2f}x | {ideal:.2f}x | "
              f"{100 * speedup / ideal:.0f} % | "
              f"{f'{vs:.2f}x' if lib == 'cprop.sklearn' else ''} | {cpu:.2f} | {load_s} |")
    tasks = serial_tasks(rows["cprop.sklearn", 1][2])
    ideal = sum(tasks) / ideal_two_workers(tasks)
    speedup = stand_in[1] / stand_in[2]
    print(f"| joblib's ceiling: a stand-in that only sleeps cprop.sklearn's serial fit and score "
          f"times (no CPU, no GIL) | 1 / 2 | {stand_in[1]:.3f} / {stand_in[2]:.3f} | "
          f"{speedup:.2f}x | {ideal:.2f}x | {100 * speedup / ideal:.0f} % | | | |")
    print("\nThe refit (the best candidate on all rows, one serial fit, best of the repeats): "
          + ", ".join(f"{lib} {t:.3f} s" for lib, t in refits.items()))

    print(f"\nTwo independent fits (64 hidden, {2 * max_iter} epochs each, all 1797 rows), one "
          "after the other vs in 2 threads (best of the repeats):\n")
    print("| estimator | sequential s | 2 threads s | speed-up | CPU s / wall s (threads) |")
    print("|---|---:|---:|---:|---:|")
    for lib in LIBS:
        (seq, _), (par, cpu) = pairs[lib, False], pairs[lib, True]
        print(f"| {lib} | {seq:.3f} | {par:.3f} | {seq / par:.2f}x | {cpu:.2f} |")

    ours, ref = rows["cprop.sklearn", 2][2], rows["sklearn.neural_network", 2][2]
    diff = float(np.max(np.abs(ours.cv_results_["mean_test_score"]
                               - ref.cv_results_["mean_test_score"])))
    same_threads = all(
        np.array_equal(rows[lib, 1][2].cv_results_["mean_test_score"],
                       rows[lib, 2][2].cv_results_["mean_test_score"]) for lib in LIBS)
    print(f"\nSame best_params_ as scikit-learn: {ours.best_params_ == ref.best_params_} "
          f"({ours.best_params_}); max |mean_test_score difference| = {diff:.2e}; "
          f"n_jobs=1 and 2 give identical scores: {same_threads}")


if __name__ == "__main__":
    main()
