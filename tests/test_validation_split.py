"""One validation-split rule: ``cprop.validation_split``, ``MLP.fit(validation_fraction=...)``,
``MLP.validation_split`` and ``cprop train --validation-fraction`` hold out the same rows."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

import cprop
from cprop import oracle
from cprop.cli import main


@pytest.mark.parametrize("n, fraction, seed", [(10, 0.3, 1), (7, 0.5, 2**64 - 1), (100, 0.01, 0),
                                               (2, 0.5, 12345)])
def test_rule_is_the_oracles_shuffle(n, fraction, seed):
    train, val = cprop.validation_split(n, fraction, seed=seed)
    n_val = math.ceil(fraction * n)
    order = oracle.SplitMix64(seed).shuffled_order(n)
    assert val.tolist() == sorted(order[n - n_val:])
    assert train.tolist() == sorted(order[: n - n_val])
    again = cprop.validation_split(n, fraction, seed=seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    train, val = cprop.validation_split(n, fraction, shuffle=False, seed=seed)
    assert val.tolist() == list(range(n - n_val, n)) and train.tolist() == list(range(n - n_val))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match=r"fraction: expected a number in \[0, 1\)"):
        cprop.validation_split(10, 1.0, seed=0)
    with pytest.raises(ValueError, match="fraction: 0.0 of 10 samples leaves 10 to train on "
                                         "and 0 to validate"):
        cprop.validation_split(10, 0.0, seed=0)
    with pytest.raises(ValueError, match="seed: expected None or an integer"):
        cprop.validation_split(10, 0.5, seed=-1)
    with pytest.raises(TypeError, match="n_samples: expected an integer >= 1"):
        cprop.validation_split(2.0, 0.5, seed=0)
    with pytest.raises(TypeError, match="shuffle: expected True or False"):
        cprop.validation_split(10, 0.5, shuffle=1, seed=0)
    t, v = cprop.validation_split(10, 0.5)  # seed=None: drawn from the OS
    assert sorted(t.tolist() + v.tolist()) == list(range(10)) and len(v) == 5


def _data(n=40, n_in=3):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, n_in))
    T = np.tanh(X @ rng.normal(size=(n_in, 1)))
    return X, T


@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_holds_out_the_functions_rows(shuffle):
    X, T = _data()
    n, f, k = len(X), 0.25, 77
    a = cprop.MLP([3, 4, 1], hidden="tanh", output="identity", seed=0)
    ha = a.fit(X, T, epochs=4, lr=0.05, batch_size=5, seed=k, shuffle=shuffle,
               validation_fraction=f)

    b = cprop.MLP([3, 4, 1], hidden="tanh", output="identity", seed=0)
    state = b.state_dict()
    state["rng_state"] = k  # what fit(seed=k) does first
    b.load_state_dict(state)
    train, val = b.validation_split(n, f, shuffle=shuffle)
    expected = cprop.validation_split(n, f, shuffle=shuffle, seed=k)
    assert np.array_equal(train, expected[0]) and np.array_equal(val, expected[1])
    hb = b.fit(X[train], T[train], epochs=4, lr=0.05, batch_size=5, shuffle=shuffle,
               validation_data=(X[val], T[val]))
    assert ha.loss == hb.loss and ha.val_loss == hb.val_loss
    assert np.array_equal(a.params, b.params)
    assert a.state_dict()["rng_state"] == b.state_dict()["rng_state"]


@pytest.mark.parametrize("seed, fraction, shuffle", [(3, 0.25, True), (11, 0.4, True),
                                                     (5, 0.3, False)])
def test_cprop_train_holds_out_the_rows_fit_holds_out(tmp_path, capsys, seed, fraction,
                                                      shuffle):
    X, T = _data(n=60)
    path = tmp_path / "d.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["a", "b", "c", "y"])
        w.writerows([[repr(v) for v in (*x, t)] for x, t in zip(X.tolist(), T[:, 0].tolist())])
    model = tmp_path / "m.npz"
    args = ["train", str(path), "--target", "y", "--task", "regress", "--layers", "5",
            "--epochs", "6", "--seed", str(seed), "--validation-fraction", str(fraction),
            "--no-scale", "--save", str(model)]
    if not shuffle:
        args.append("--no-shuffle")
    assert main(args) == 0
    err = capsys.readouterr().err
    n_val = math.ceil(fraction * len(X))
    assert f"{len(X) - n_val} training rows, {n_val} validation rows" in err

    # The same network trained by MLP.fit with the same seed and fraction ...
    net = cprop.MLP([3, 5, 1], hidden="relu", output="identity", seed=seed)
    fresh = cprop.MLP([3, 5, 1], hidden="relu", output="identity", seed=seed)
    history = net.fit(X, T, epochs=6, lr=0.01, batch_size=32, optimizer="adam",
                      shuffle=shuffle, validation_fraction=fraction, progress=False)
    # ... holds out these rows ...
    train, val = fresh.validation_split(len(X), fraction, shuffle=shuffle)
    assert len(val) == n_val
    assert f"validation loss {history.val_loss[-1]:.6g}" in err
    # ... and ends exactly where cprop train ended: same rows held out, same shuffles after.
    saved = cprop.load(model)
    assert np.array_equal(saved.params, net.params)
    assert saved.state_dict()["rng_state"] == net.state_dict()["rng_state"]
    # the held-out rows' loss is the one cprop train reported
    assert f"validation loss {net.loss(X[val], T[val]):.6g}" in err
