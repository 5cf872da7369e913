"""Population.fit(..., client=...): the nets split into blocks over a dask.distributed
LocalCluster (cprop.distributed) end exactly as the local fit leaves them: parameters, each
member's optimizer state, steps and generator, and the history field by field."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cprop
from cprop._kernels import _mlp
from cprop.distributed import block_bounds

LANE64 = _mlp.population_block("float64")  # the lanes kernel's block: 8 to 64 float64 nets
LANE32 = _mlp.population_block("float32")

try:
    import distributed  # dask[distributed]: in the [test] extra
except ImportError:  # pragma: no cover - CI installs the extra, where a missing dask must fail
    if os.environ.get("CI"):
        raise
    pytest.skip('dask.distributed is not installed (pip install "cprop[dask]")',
                allow_module_level=True)

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_T = np.array([[0], [1], [1], [0]], dtype=float)


def blobs(n=40, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.uniform(0, 1, size=(n, n_out))


@pytest.fixture(scope="module")
def client():
    # processes=True: worker processes of their own, so every block really crosses dask's
    # serialization (in-process workers, processes=False, would hand the Python objects over
    # by reference) and is trained by a cprop imported in another interpreter, as on a real
    # cluster; the two processes start in well under a second. dashboard_address=":0": any free
    # port (the default 8787 may be taken).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def same_cprop_env() -> dict:
    """The environment for a child Python that imports the cprop these tests import (a
    relative PYTHONPATH would not survive another working directory)."""
    here = str(Path(cprop.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def twins(*args, **kwargs):
    return cprop.Population(*args, **kwargs), cprop.Population(*args, **kwargs)


def assert_same(local, remote, h_local, h_remote):
    """Bit-identical parameters, members' states and histories (NaNs included)."""
    assert remote.params.tobytes() == local.params.tobytes()
    for i in range(local.n_nets):
        a, b = local.net(i).state_dict(), remote.net(i).state_dict()
        assert a["optimizer"] == b["optimizer"], i
        assert a["optimizer_state"].tobytes() == b["optimizer_state"].tobytes(), i
        assert (a["optimizer_steps"], a["rng_state"]) == (b["optimizer_steps"], b["rng_state"])
    for f in dataclasses.fields(h_local):
        x, y = getattr(h_local, f.name), getattr(h_remote, f.name)
        if isinstance(x, np.ndarray):
            assert (x.dtype, x.shape) == (y.dtype, y.shape), f.name
            assert x.tobytes() == y.tobytes(), f.name
        else:
            assert x == y, f.name


def fit_both(local, remote, client, X, T, n_blocks=None, **options):
    h_local = local.fit(X, T, **options)
    with distributed.get_task_stream(client) as tasks:
        h_remote = remote.fit(X, T, client=client, n_blocks=n_blocks, **options)
    assert_same(local, remote, h_local, h_remote)
    return h_remote, tasks.data


def test_block_bounds():
    assert block_bounds(45, 2, 16) == [(0, 32), (32, 45)]  # whole lane blocks but the last
    assert block_bounds(100, 3, 16) == [(0, 48), (48, 80), (80, 100)]
    assert block_bounds(10, 4, 16) == [(0, 10)]  # one lane block: one worker
    assert block_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]  # the per-net route: even
    assert block_bounds(2, 5) == [(0, 1), (1, 2)]
    assert block_bounds(5, 0) == [(0, 5)]  # a cluster without workers yet: one block, waiting
    for n, k, lane in [(1, 1, 16), (33, 2, 32), (1000, 7, 16), (64, 2, 32), (17, 17, 1)]:
        bounds = block_bounds(n, k, lane)
        assert bounds[0][0] == 0 and bounds[-1][1] == n and len(bounds) <= k
        assert all(lo < hi for lo, hi in bounds)
        assert all(b[1] == c[0] for b, c in zip(bounds, bounds[1:]))
        assert all((hi - lo) % lane == 0 for lo, hi in bounds[:-1])


def test_plain_sgd_lanes_route_in_blocks_of_lanes(client):
    # LANE64 + 13 nets: not a multiple of the kernel's block -> blocks of LANE64 and 13
    local, remote = twins([2, 3, 1], LANE64 + 13, seed=1)
    lr = np.linspace(0.1, 2.0, LANE64 + 13)
    h, tasks = fit_both(local, remote, client, XOR_X, XOR_T, epochs=60, lr=lr, shuffle=False)
    assert h.route == "lanes" and len(tasks) == 2
    assert {t["worker"] for t in tasks} <= set(client.nthreads())
    # again from where the first fit left the nets (their states shipped, not rebuilt)
    fit_both(local, remote, client, XOR_X, XOR_T, epochs=5, lr=0.3, momentum=0.5, batch_size=2)
    # and after a local lanes fit, whose optimizer bookkeeping the members still owe
    for pop in (local, remote):
        pop.fit(XOR_X, XOR_T, epochs=3, lr=0.2, shuffle=False)
    fit_both(local, remote, client, XOR_X, XOR_T, epochs=4, optimizer="adam", lr=0.01)


def test_float32_lanes_and_a_diverging_net_in_the_second_block(client):
    X, T = blobs(n=20, n_out=1, seed=5)
    n, bad = LANE32 + 8, LANE32 + 3  # the diverging net is in block 2 (from LANE32 on)
    local, remote = twins([3, 6, 1], n, hidden="relu", output="identity", dtype="float32",
                          seed=8)
    lr = np.full(n, 0.002)
    lr[bad] = 5.0  # errors[bad], not errors[3]: the net's index in pop
    h, tasks = fit_both(local, remote, client, X, T, epochs=30, lr=lr, shuffle=False)
    assert h.route == "lanes" and len(tasks) == 2
    assert h.stop_reason[bad] == "diverged" and set(h.errors) == {bad}


def test_adam_with_per_net_lr_per_net_route(client):
    X, T = blobs(n=30, seed=2)
    local, remote = twins([3, 5, 2], 7, hidden="tanh", seed=3)
    h, tasks = fit_both(local, remote, client, X, T, epochs=8, optimizer="adam",
                        lr=np.linspace(0.001, 0.05, 7), beta1=[0.8, 0.9] * 3 + [0.95],
                        batch_size=4, n_blocks=3)
    assert h.route == "per_net" and len(tasks) == 3


def test_bootstrap_from_each_members_own_generator(client):
    X, T = blobs(n=25, n_in=2, n_out=1, seed=9)
    local, remote = twins([2, 4, 1], 6, seed=5)
    fit_both(local, remote, client, X, T, epochs=5, lr=0.3, bootstrap=True, batch_size=3)


def test_subsets(client):
    X, T = blobs(n=30)
    subsets = np.random.default_rng(0).integers(0, 30, size=(5, 20))
    local, remote = twins([3, 5, 2], 5, seed=21)
    fit_both(local, remote, client, X, T, epochs=6, lr=[0.1, 0.2, 0.3, 0.4, 0.5],
             subsets=subsets, shuffle=False)


def test_early_stopping_with_validation(client):
    X, T = blobs(n=60, seed=3)
    local, remote = twins([3, 8, 2], 6, seed=2)
    options = dict(epochs=40, lr=[0.05, 0.5, 1.0, 2.0, 4.0, 8.0], early_stopping=True,
                   patience=3)
    h, _ = fit_both(local, remote, client, X, T, validation_fraction=0.3, **options)
    assert "early_stopping" in h.stop_reason and len(set(h.epochs.tolist())) > 1
    assert np.isnan(h.val_loss).any() and (h.best_epoch >= 0).any()
    Xv, Tv = blobs(n=15, seed=4)  # validation_data: scattered with X and T
    local, remote = twins([3, 8, 2], 6, seed=2)
    fit_both(local, remote, client, X, T, validation_data=(Xv, Tv), **options)


def test_bad_arguments_raise_before_anything_is_sent(client, monkeypatch):
    X, T = blobs(n=10)
    pop = cprop.Population([3, 4, 2], 20, seed=0)
    before = pop.params.copy()

    def sent(*args, **kwargs):
        raise AssertionError("something was sent to the cluster")

    for name in ("scatter", "submit", "map", "compute"):
        monkeypatch.setattr(client, name, sent)
    lr = np.full(20, 0.1)
    lr[17] = np.nan
    bad = [(dict(lr=lr), ValueError, r"^lr\[17\]: expected a finite number for net 17"),
           (dict(subsets=np.array([[0, 10]] * 20)), ValueError, r"^subsets\[0, 1\]: row 10"),
           (dict(epochs=0), ValueError, r"^epochs"),
           (dict(optimizer="adam", beta1=[0.9] * 19 + [1.0]), ValueError, r"^beta1\[19\]"),
           (dict(n_threads=0), ValueError, r"^n_threads"),
           (dict(bootstrap=True, subsets=np.zeros((20, 2), dtype=int)), ValueError,
            "^bootstrap"),
           (dict(n_blocks=0), ValueError, r"^n_blocks: expected an int >= 1"),
           (dict(n_blocks=2.0), ValueError, r"^n_blocks")]
    for options, err, match in bad:
        with pytest.raises(err, match=match):
            pop.fit(X, T, client=client, **options)
    with pytest.raises(ValueError, match=r"^X|^T"):
        pop.fit(X[:, :2], T, client=client)
    with pytest.raises(ValueError, match=r"^n_blocks: only with client="):
        pop.fit(X, T, n_blocks=2)
    np.testing.assert_array_equal(pop.params, before)


def test_client_must_be_a_distributed_client(client):
    pop = cprop.Population([2, 2, 1], 3, seed=0)
    for wrong in (client.scheduler.address, object(), client.cluster):
        with pytest.raises(TypeError, match=r"^client: expected a distributed.Client"):
            pop.fit(XOR_X, XOR_T, client=wrong)


def test_without_dask_client_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    pop = cprop.Population([2, 2, 1], 3, seed=0)
    with pytest.raises(ImportError, match=r"the `dask` extra: pip install \"cprop\[dask\]\""):
        pop.fit(XOR_X, XOR_T, client=object())


def test_import_cprop_does_not_import_dask():
    code = ("import sys, cprop, cprop.population; cprop.Population([2, 2, 1], 2, seed=0); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=same_cprop_env())
    assert out.stdout.strip() == "[]"


def test_the_docs_example_runs(tmp_path):
    """docs/populations.md's "On a dask cluster" example, run as the script it is (its own
    LocalCluster of worker processes, which import it: hence a file, not exec)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "populations.md").read_text(
        encoding="utf-8")
    section = text.split("## On a dask cluster", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "populations_dask.py"
    script.write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, env=same_cprop_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("of the nets solve XOR after 500 epochs")
