"""cprop.Population: per-net seeds, the nets-first parameter views, members pulled out and joined,
and fit, whose every member ends exactly where that net trained alone by MLP.fit ends (per-net
options, subsets, early stopping and divergence per net, threads)."""

from __future__ import annotations

import numpy as np
import pytest

import cprop
from cprop.oracle import SplitMix64
from cprop.population import derive_seeds

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_T = np.array([[0], [1], [1], [0]], dtype=float)


def blobs(n=40, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    T = rng.uniform(0, 1, size=(n, n_out))
    return X, T


def alone(pop, i, X, T, **fit):
    net = cprop.MLP(pop.layer_sizes, hidden=pop.hidden, output=pop.output, loss=pop.loss_name,
                    dtype=pop.dtype.name, seed=int(pop.seeds[i]),
                    train_biases=pop.train_biases)
    return net, net.fit(X, T, **fit)


def test_seeds_are_splitmix64_outputs_and_members_start_as_mlp():
    pop = cprop.Population([3, 4, 2], 6, hidden="tanh", seed=123)
    gen = SplitMix64(123)
    assert [int(s) for s in pop.seeds] == [gen.next() for _ in range(6)]
    np.testing.assert_array_equal(pop.seeds, derive_seeds(123, 6))
    for i in range(6):
        net = cprop.MLP([3, 4, 2], hidden="tanh", seed=int(pop.seeds[i]))
        assert net.params.tobytes() == pop.params[i].tobytes()
    given = cprop.Population([3, 4, 2], 3, seed=[5, 6, 2**64 - 1])
    assert given.params[2].tobytes() == cprop.MLP([3, 4, 2], seed=2**64 - 1).params.tobytes()
    a, b = cprop.Population([2, 2, 1], 4, seed=None), cprop.Population([2, 2, 1], 4, seed=None)
    assert not np.array_equal(a.params, b.params)


def test_parameter_views_write_through():
    pop = cprop.Population([2, 3, 2], 4, seed=1)
    assert pop.weights[0].shape == (4, 2, 3) and pop.biases[1].shape == (4, 2)
    assert all(np.shares_memory(w, pop.params) for w in pop.weights + pop.biases)
    X = np.array([[0.3, -0.2]])
    pop.weights[1][2] = 0.0
    pop.biases[1][2] = [1.0, -1.0]
    np.testing.assert_allclose(pop.forward(X)[2], 1 / (1 + np.exp(-np.array([[1.0, -1.0]]))),
                               rtol=1e-15)
    assert pop.net(2).weights[1].sum() == 0.0
    pop.params[0] = pop.params[1]
    np.testing.assert_array_equal(pop.forward(X)[0], pop.forward(X)[1])
    with pytest.raises(AttributeError):
        pop.weights = ()
    with pytest.raises(TypeError):
        pop.weights[0] = np.zeros((4, 2, 3))  # a tuple: change the arrays, not the tuple


def test_members_out_and_in():
    nets = [cprop.MLP([2, 3, 1], seed=s) for s in (4, 9, 16)]
    before = [n.params.copy() for n in nets]
    pop = cprop.Population.from_nets(nets)
    np.testing.assert_array_equal(pop.params, np.stack(before))
    pop.fit(XOR_X, XOR_T, epochs=5, lr=0.5)
    for n, p in zip(nets, before):  # the nets given are copies
        np.testing.assert_array_equal(n.params, p)
    member = pop.net(1)
    member.params[:] = 0.0
    assert (pop.params[1] != 0).any()  # net(i) is a copy
    with pytest.raises(ValueError, match=r"nets\[1\]: .* is not of the first net's"):
        cprop.Population.from_nets([nets[0], cprop.MLP([2, 4, 1], seed=0)])
    with pytest.raises(TypeError, match=r"nets\[0\]: expected a cprop.MLP"):
        cprop.Population.from_nets(["net"])
    with pytest.raises(IndexError):
        pop.net(3)


@pytest.mark.parametrize("options", [
    {"epochs": 30, "lr": 0.5, "batch_size": 1, "shuffle": False},
    {"epochs": 12, "lr": [0.1, 0.3, 0.5, 0.9, 2.0], "batch_size": 2, "shuffle": True},
    {"epochs": 10, "lr": 0.1, "optimizer": "sgd", "momentum": [0.3, 0.5, 0.9, 0.5, 0.1],
     "nesterov": True, "batch_size": 3},
    {"epochs": 10, "lr": 0.01, "optimizer": "adam", "beta1": [0.8, 0.85, 0.9, 0.95, 0.99],
     "alpha": [0.0, 1e-3, 1e-2, 0.0, 0.1], "batch_size": 4},
    {"epochs": 8, "lr": 0.05, "optimizer": "rprop", "batch_size": 40},
    {"epochs": 15, "lr": 0.2, "lr_schedule": "cosine",
     "validation_fraction": 0.25, "early_stopping": True, "patience": 2},
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_member_ends_as_if_trained_alone(options, dtype):
    X, T = blobs()
    pop = cprop.Population([3, 4, 2], 5, hidden="tanh", dtype=dtype, seed=11)
    history = pop.fit(X, T, **options)
    for i in range(5):
        per_net = {k: (v[i] if isinstance(v, list) else v) for k, v in options.items()}
        net, h = alone(pop, i, X, T, **per_net)
        if history.route == "lanes":  # the kernel's vector exp: to rounding
            tol = 1e-12 if dtype == "float64" else 1e-5
            np.testing.assert_allclose(pop.params[i], net.params, rtol=tol, atol=tol)
            np.testing.assert_allclose(history.loss[i], h.loss, rtol=tol)
        else:
            assert net.params.tobytes() == pop.params[i].tobytes()  # bit for bit
            np.testing.assert_array_equal(history.loss[i, :len(h.loss)], h.loss)
        assert np.isnan(history.loss[i, len(h.loss):]).all()
        assert history.epochs[i] == len(h.loss)
        assert history.stop_reason[i] == h.stop_reason
        assert history.best_epoch[i] == (-1 if h.best_epoch is None else h.best_epoch)


def test_early_stopping_stops_nets_one_by_one():
    X, T = blobs(n=60, seed=3)
    pop = cprop.Population([3, 8, 2], 6, seed=2)
    h = pop.fit(X, T, epochs=60, lr=[0.05, 0.5, 1.0, 2.0, 4.0, 8.0], validation_fraction=0.3,
                early_stopping=True, patience=3)
    assert len(set(h.epochs.tolist())) > 1  # they stopped at different epochs
    assert "early_stopping" in h.stop_reason
    for i in range(6):
        assert np.isfinite(h.val_loss[i, :h.epochs[i]]).all()
        assert np.isnan(h.val_loss[i, h.epochs[i]:]).all()


def test_a_diverging_net_stops_alone():
    X, T = blobs(n=20, n_out=1, seed=5)
    pop = cprop.Population([3, 6, 1], 4, hidden="relu", output="identity", seed=8)
    lr = [0.001, 5.0, 0.002, 0.003]
    h = pop.fit(X, T, epochs=30, lr=lr, shuffle=False, batch_size=2)  # the per-net route
    assert h.stop_reason[1] == "diverged" and set(h.errors) == {1}
    assert "that step was not applied" in h.errors[1] or "lr" in h.errors[1]
    assert np.isfinite(pop.params[1]).all()
    for i in (0, 2, 3):
        net, hist = alone(pop, i, X, T, epochs=30, lr=lr[i], shuffle=False, batch_size=2)
        assert net.params.tobytes() == pop.params[i].tobytes()
        assert h.stop_reason[i] == "max_epochs"
    # net 1 keeps the last finite parameters, as MLP.fit leaves them
    net = cprop.MLP([3, 6, 1], hidden="relu", output="identity", seed=int(pop.seeds[1]))
    with pytest.raises(FloatingPointError):
        net.fit(X, T, epochs=30, lr=5.0, shuffle=False, batch_size=2)
    assert net.params.tobytes() == pop.params[1].tobytes()
    assert h.epochs[1] < 30 and np.isnan(h.loss[1, h.epochs[1]:]).all()


def test_subsets_bag_each_net():
    X, T = blobs(n=30)
    rng = np.random.default_rng(0)
    subsets = rng.integers(0, 30, size=(4, 30))  # bootstrap samples
    pop = cprop.Population([3, 5, 2], 4, seed=21)
    pop.fit(X, T, epochs=6, lr=0.3, subsets=subsets, shuffle=False)
    for i in range(4):
        net, _ = alone(pop, i, X[subsets[i]], T[subsets[i]], epochs=6, lr=0.3, shuffle=False)
        assert net.params.tobytes() == pop.params[i].tobytes()


def test_threads_give_the_same_bits():
    X, T = blobs(n=50)
    a = cprop.Population([3, 6, 2], 8, seed=4)
    b = cprop.Population([3, 6, 2], 8, seed=4)
    ha = a.fit(X, T, epochs=10, lr=0.2, batch_size=5, n_threads=1)
    hb = b.fit(X, T, epochs=10, lr=0.2, batch_size=5, n_threads=2)
    assert a.params.tobytes() == b.params.tobytes()
    np.testing.assert_array_equal(ha.loss, hb.loss)


def test_evaluation_over_all_nets():
    X, T = blobs(n=7, n_out=3)
    pop = cprop.Population([3, 4, 3], 5, output="softmax", loss="cross_entropy", seed=3)
    Y = pop.forward(X)
    assert Y.shape == (5, 7, 3)
    labels = T.argmax(axis=1)
    for i in range(5):
        net = pop.net(i)
        np.testing.assert_array_equal(Y[i], net.forward(X))
        assert pop.loss(X, labels)[i] == net.loss(X, labels)
        gw, gb = pop.gradients(X, labels)
        ngw, ngb = net.gradients(X, labels)
        np.testing.assert_array_equal(gw[0][i], ngw[0])
        np.testing.assert_array_equal(gb[1][i], ngb[1])
    np.testing.assert_allclose(pop.mean_output(X), Y.mean(axis=0))
    votes = Y.argmax(axis=2)
    expected = [np.bincount(votes[:, s], minlength=3).argmax() for s in range(7)]
    np.testing.assert_array_equal(pop.vote(X), expected)
    assert pop.forward(X[0]).shape == (5, 3)


def test_bad_input_names_the_argument_and_changes_nothing():
    X, T = blobs(n=10)
    pop = cprop.Population([3, 4, 2], 20, seed=0)
    before = pop.params.copy()
    lr = np.full(20, 0.1)
    lr[17] = np.nan
    with pytest.raises(ValueError, match=r"^lr\[17\]: expected a finite number for net 17"):
        pop.fit(X, T, lr=lr)
    lr[17] = -0.5
    with pytest.raises(ValueError, match=r"^lr\[17\]: .* \(net 17\)"):
        pop.fit(X, T, lr=lr)
    with pytest.raises(ValueError, match=r"^momentum\[3\]: "):
        pop.fit(X, T, momentum=[0.0] * 3 + [1.5] + [0.0] * 16)
    with pytest.raises(ValueError, match=r"^lr: expected one number or 20 numbers"):
        pop.fit(X, T, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"^subsets\[0, 1\]: row 10 is out of range"):
        pop.fit(X, T, subsets=np.array([[0, 10]] * 20))
    with pytest.raises(ValueError, match=r"^subsets: expected an integer array of shape"):
        pop.fit(X, T, subsets=np.zeros((19, 3), dtype=int))
    with pytest.raises(ValueError, match=r"^epochs"):
        pop.fit(X, T, epochs=0)
    with pytest.raises(ValueError, match=r"^X|^T"):
        pop.fit(X[:, :2], T)
    with pytest.raises(ValueError, match=r"^n_threads"):
        pop.fit(X, T, n_threads=0)
    np.testing.assert_array_equal(pop.params, before)
    for args, err, msg in [((0,), ValueError, "n_nets: expected an int >= 1"),
                           ((2.5,), TypeError, "n_nets"),
                           ((3,), ValueError, "seed: expected an int or 3 integer seeds")]:
        with pytest.raises(err, match=msg):
            cprop.Population([2, 2, 1], *args, seed=[1, 2] if "seed" in msg else 0)
    with pytest.raises(ValueError, match=r"seed\[1\]"):
        cprop.Population([2, 2, 1], 2, seed=[1, -2])
    with pytest.raises(ValueError, match=r"^nesterov: .* \(net 0\)"):
        pop.fit(X, T, momentum=[0.0] + [0.5] * 19, nesterov=True)
    with pytest.raises(ValueError, match="vote: needs nets with at least 2 outputs"):
        cprop.Population([2, 2, 1], 2, seed=0).vote(XOR_X)


def test_population_equals_the_oracle_looping_over_nets():
    """The oracle's population_fit (plain Python, net after net) and cprop.Population agree."""
    from cprop import oracle

    X, T = blobs(n=12, n_in=2, n_out=2, seed=7)
    assert oracle.population_seeds(99, 3) == [int(s) for s in derive_seeds(99, 3)]
    pop = cprop.Population([2, 3, 2], 3, hidden="tanh", seed=99)
    nets = [oracle.MLP([2, 3, 2], hidden="tanh", seed=s)
            for s in oracle.population_seeds(99, 3)]
    lr = [0.1, 0.4, 0.8]
    subsets = np.array([[0, 3, 3, 5, 11], [1, 2, 3, 4, 5], [11, 10, 9, 0, 0]])
    pop.fit(X, T, epochs=7, lr=lr, batch_size=2, subsets=subsets, momentum=0.5)
    hist = oracle.population_fit(nets, X.tolist(), T.tolist(), subsets=subsets.tolist(),
                                 epochs=7, lr=lr, batch_size=2, momentum=0.5)
    for i, net in enumerate(nets):
        np.testing.assert_allclose(pop.params[i], net.params_flat(), rtol=1e-12, atol=1e-15)
        assert hist[i] is not None and len(hist[i].loss) == 7


def test_bootstrap_draws_from_each_nets_own_generator():
    from cprop import oracle

    X, T = blobs(n=15, n_in=2, n_out=1, seed=9)
    pop = cprop.Population([2, 3, 1], 3, seed=5)
    twin = cprop.Population([2, 3, 1], 3, seed=5)
    pop.fit(X, T, epochs=4, lr=0.3, bootstrap=True, shuffle=True)
    # by hand: each net's rows from its own generator, then MLP.fit alone (whose shuffles
    # continue that generator)
    nets = [oracle.MLP([2, 3, 1], seed=int(s)) for s in pop.seeds]
    oracle.population_fit(nets, X.tolist(), T.tolist(), bootstrap=True, epochs=4, lr=0.3)
    for i in range(3):
        net = twin.net(i)
        rows = cprop.population.bootstrap_rows(net, 15)
        assert len(set(rows.tolist())) < 15  # with replacement
        net.fit(X[rows], T[rows], epochs=4, lr=0.3, shuffle=True)
        assert net.params.tobytes() == pop.params[i].tobytes()
        np.testing.assert_allclose(pop.params[i], nets[i].params_flat(), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="bootstrap: give subsets or bootstrap=True"):
        pop.fit(X, T, bootstrap=True, subsets=np.zeros((3, 2), dtype=int))


def test_explain_a_member():
    pop = cprop.Population([2, 2, 2], 3, seed=12)
    pop.weights[0][1] = [[0.15, 0.20], [0.25, 0.30]]
    trace = pop.explain(1, [0.05, 0.10], [0.01, 0.99], 0.5)
    assert trace.format() == pop.net(1).explain([0.05, 0.10], [0.01, 0.99], 0.5).format()
    assert "x1·W1[1,1] + x2·W1[2,1]" in trace.format()
    assert trace.layers[0].W == [[0.15, 0.20], [0.25, 0.30]]


LANES = hasattr(cprop.population._mlp, "population_sgd_fit")


@pytest.mark.skipif(not LANES, reason="this build has no lanes kernel")
@pytest.mark.parametrize("sizes, kw", [
    ([2, 2, 1], {}),
    ([4, 8, 3], {"output": "softmax", "loss": "cross_entropy"}),
    ([3, 5, 4, 2], {"hidden": "tanh", "output": "identity"}),
    ([3, 6, 2], {"hidden": "relu", "output": "sigmoid", "loss": "binary_cross_entropy"}),
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lanes_route_equals_the_per_net_route(monkeypatch, sizes, kw, dtype):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, sizes[0]))
    if kw.get("loss") == "cross_entropy":
        T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 9)]
    else:
        T = rng.uniform(0, 1, size=(9, sizes[-1]))
    lr = rng.uniform(0.05, 0.8, 37)
    fast = cprop.Population(sizes, 37, dtype=dtype, seed=3, **kw)
    slow = cprop.Population(sizes, 37, dtype=dtype, seed=3, **kw)
    hf = fast.fit(X, T, epochs=20, lr=lr, shuffle=False)
    monkeypatch.setattr(cprop.population, "_DISABLED_ROUTES", frozenset({"lanes"}))
    hs = slow.fit(X, T, epochs=20, lr=lr, shuffle=False)
    assert (hf.route, hs.route) == ("lanes", "per_net")
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(fast.params, slow.params, rtol=tol, atol=tol)
    np.testing.assert_allclose(hf.loss, hs.loss, rtol=tol)
    for i in (0, 17, 36):  # the members' states as MLP.fit leaves them
        a, b = fast.net(i).state_dict(), slow.net(i).state_dict()
        assert {k: a[k] for k in ("optimizer", "optimizer_steps", "rng_state")} == \
            {k: b[k] for k in ("optimizer", "optimizer_steps", "rng_state")}


@pytest.mark.skipif(not LANES, reason="this build has no lanes kernel")
def test_lanes_route_hands_a_diverging_net_to_mlp_fit():
    X, T = blobs(n=20, n_out=1, seed=5)
    pop = cprop.Population([3, 6, 1], 4, hidden="relu", output="identity", seed=8)
    lr = [0.001, 5.0, 0.002, 0.003]
    h = pop.fit(X, T, epochs=30, lr=lr, shuffle=False)
    assert h.route == "lanes"
    assert h.stop_reason == ["max_epochs", "diverged", "max_epochs", "max_epochs"]
    net = cprop.MLP([3, 6, 1], hidden="relu", output="identity", seed=int(pop.seeds[1]))
    with pytest.raises(FloatingPointError):
        net.fit(X, T, epochs=30, lr=5.0, shuffle=False)
    assert net.params.tobytes() == pop.params[1].tobytes()


@pytest.mark.skipif(not LANES, reason="this build has no lanes kernel")
def test_lanes_route_in_chunks_and_threads_gives_the_same_bits():
    # enough work per net that the nets go to the kernel in several chunks of whole blocks
    X, T = blobs(n=40, n_in=6, n_out=3, seed=2)
    a = cprop.Population([6, 12, 3], 100, seed=6)
    b = cprop.Population([6, 12, 3], 100, seed=6)
    ha = a.fit(X, T, epochs=200, lr=0.3, shuffle=False, n_threads=1)
    hb = b.fit(X, T, epochs=200, lr=0.3, shuffle=False, n_threads=2)
    assert ha.route == hb.route == "lanes"
    assert a.params.tobytes() == b.params.tobytes()
    np.testing.assert_array_equal(ha.loss, hb.loss)
    net, h = alone(a, 99, X, T, epochs=200, lr=0.3, shuffle=False)
    np.testing.assert_allclose(a.params[99], net.params, rtol=1e-12, atol=1e-15)


@pytest.mark.skipif(not LANES, reason="this build has no lanes kernel")
def test_wide_nets_take_the_per_net_route():
    # the lanes route up to LANES_MAX_PARAMS parameters a net, one net at a time beyond
    from cprop.population import LANES_MAX_PARAMS

    rng = np.random.default_rng(4)
    for sizes, route in (([40, 64, 8], "lanes"), ([60, 64, 8], "per_net")):
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        assert (n_params <= LANES_MAX_PARAMS) == (route == "lanes")
        X, T = rng.normal(size=(5, sizes[0])), rng.uniform(size=(5, sizes[-1]))
        pop = cprop.Population(sizes, 3, seed=2)
        h = pop.fit(X, T, epochs=2, lr=0.05, shuffle=False)
        assert h.route == route
        net, _ = alone(pop, 2, X, T, epochs=2, lr=0.05, shuffle=False)
        np.testing.assert_allclose(pop.params[2], net.params, rtol=1e-12, atol=1e-15)
