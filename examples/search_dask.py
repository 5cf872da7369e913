"""Parallel hyper-parameter search over cprop.sklearn estimators: threads, then dask.distributed.

    pip install "cprop[sklearn,dask]"
    python examples/search_dask.py

1. Threads: joblib's threading backend runs the cross-validation fits in threads of this
   process; cprop's kernels release the GIL, so two threads train two networks at once.
2. dask.distributed: the same GridSearchCV, its fits sent through joblib's dask backend to the
   workers of a cluster (here a LocalCluster of 2 worker processes; for real machines, start
   ``dask scheduler`` / ``dask worker`` there and pass the scheduler's address to ``Client``).
   Both searches find the same best parameters with the same scores.
"""

import time

import joblib
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from cprop.sklearn import MLPClassifier

GRID = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-2]}


def make_search(n_jobs):
    clf = MLPClassifier(solver="adam", learning_rate_init=0.01, max_iter=300,
                        random_state=0)
    return GridSearchCV(clf, GRID, cv=3, n_jobs=n_jobs)


def report(name, search, seconds):
    print(f"{name}: best {search.best_params_} accuracy {search.best_score_:.4f} "
          f"({seconds:.2f} s)")


def main():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0

    # 1. threads in this process
    t0 = time.perf_counter()
    with joblib.parallel_config(backend="threading"):
        threaded = make_search(n_jobs=2).fit(X, y)
    report("threads (n_jobs=2)", threaded, time.perf_counter() - t0)

    # 2. a dask.distributed cluster through joblib's dask backend
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster):
        t0 = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            distributed = make_search(n_jobs=-1).fit(X, y)
        report("dask LocalCluster (2 workers)", distributed, time.perf_counter() - t0)

    assert distributed.best_params_ == threaded.best_params_
    assert list(distributed.cv_results_["mean_test_score"]) == \
        list(threaded.cv_results_["mean_test_score"])
    print("same best parameters and scores")


if __name__ == "__main__":  # dask's worker processes import this file: keep the work here
    main()
