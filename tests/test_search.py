"""Parallel hyper-parameter search over cprop.sklearn estimators: GridSearchCV in threads
(joblib's threading backend) and on a dask.distributed LocalCluster (joblib's dask backend)
finds exactly what the serial search finds."""

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from cprop.sklearn import MLPClassifier, MLPRegressor

GRID = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-1]}


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    # n_jobs is the only parallelism: BLAS threads (SciPy's L-BFGS-B, NumPy) on top of the
    # search's threads oversubscribe a 2-core machine, which costs 10x on a loaded one.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:450] / 16.0, y[:450]


def _search(n_jobs, estimator=None):
    # max_iter is high enough that every fit stops on tol (no ConvergenceWarning)
    est = estimator if estimator is not None else MLPClassifier(
        solver="adam", learning_rate_init=0.02, max_iter=400, random_state=0)
    return GridSearchCV(est, GRID, cv=3, n_jobs=n_jobs)


@pytest.fixture(scope="module")
def serial(data):
    return _search(n_jobs=1).fit(*data)


def _assert_same_results(a, b):
    assert a.best_params_ == b.best_params_
    for key in ("mean_test_score", "std_test_score", "rank_test_score",
                *(f"split{k}_test_score" for k in range(3))):
        assert np.array_equal(a.cv_results_[key], b.cv_results_[key]), key
    assert np.array_equal(a.best_estimator_.net_.params, b.best_estimator_.net_.params)


def test_serial_search_is_a_real_search(serial):
    scores = serial.cv_results_["mean_test_score"]
    assert scores.shape == (4,)
    assert scores.min() > 0.7 and serial.best_score_ > 0.85
    assert len(set(np.round(scores, 12))) > 1  # the grid points differ
    assert serial.best_estimator_.n_iter_ < 400  # stopped on tol, not max_iter


def test_threaded_search_matches_serial(data, serial):
    with joblib.parallel_config(backend="threading", n_jobs=2):
        threaded = _search(n_jobs=2).fit(*data)
    _assert_same_results(threaded, serial)


def test_threaded_regressor_search_matches_serial(data):
    X, y = data
    target = X[:, :10].sum(axis=1) - 0.5 * X[:, 10:20].sum(axis=1)  # learnable: converges
    reg = MLPRegressor(solver="lbfgs", max_iter=1000, random_state=0)
    serial = _search(1, reg).fit(X[:, :20], target)
    with joblib.parallel_config(backend="threading"):
        threaded = _search(2, reg).fit(X[:, :20], target)
    _assert_same_results(threaded, serial)


def test_dask_local_cluster_search_matches_serial(data, serial):
    import distributed  # dask[distributed]: in the [test] extra
    # processes=True: real worker processes, which import cprop themselves (from the same
    # installation, or via PYTHONPATH, which they inherit).
    # dashboard_address=":0": any free port (None means the default 8787, which another process
    # on the machine may hold).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client, \
            distributed.get_task_stream(client) as tasks:
        with joblib.parallel_config(backend="dask"):
            result = _search(n_jobs=-1).fit(*data)
    # the fits really ran on the cluster's worker processes
    workers = {t["worker"] for t in tasks.data}
    assert len(tasks.data) >= 12 and len(workers) >= 1
    _assert_same_results(result, serial)
