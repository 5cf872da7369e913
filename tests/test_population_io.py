"""Saving and loading populations: ``pop.save(path)`` and ``cprop.load(path)`` (the
``cprop-population`` format, documented in cprop.io).

Round trips are bit-exact, member by member (parameters, optimizer, its state and steps,
generator); a loaded population resumes training exactly as the saved one would have, on the
lanes route and on the per-net route, with bootstrap draws; every kind of bad file raises
ValueError naming the file and the problem; saving refuses what could not be loaded back.
"""

from __future__ import annotations

import json
import os
import re
import zipfile

import numpy as np
import pytest

import cprop
import cprop.io
from cprop._fileformat import _POP_HEADER_KEYS
from cli_helpers import run, write_csv

_rng = np.random.default_rng(20250101)
X = _rng.normal(size=(12, 3))
T = _rng.uniform(size=(12, 2))
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_T = np.array([[0], [1], [1], [0]], dtype=float)
MEMBERS = ("header", "params", "optimizer_options", "optimizer_state", "optimizer_steps",
           "rng_state", "seeds")
LANES = hasattr(cprop.population._mlp, "population_sgd_fit")
N = 5


# -- helpers ----------------------------------------------------------------------------------

def bits_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_state(a: cprop.MLP, b: cprop.MLP, what="", rtol=0.0) -> None:
    """The same state; ``rtol`` > 0: the parameters to that relative tolerance (a net trained
    by MLP.fit against one of the lanes route, whose exp is not libm's)."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb) == ["optimizer", "optimizer_state", "optimizer_steps",
                                         "params", "rng_state"]
    if rtol:
        np.testing.assert_allclose(sb["params"], sa["params"], rtol=rtol, atol=0, err_msg=what)
    else:
        assert bits_equal(sa["params"], sb["params"]), what
    assert bits_equal(sa["optimizer_state"], sb["optimizer_state"]), what
    assert sa["optimizer"] == sb["optimizer"], what
    assert sa["optimizer_steps"] == sb["optimizer_steps"], what
    assert sa["rng_state"] == sb["rng_state"], what


def assert_same_population(a: cprop.Population, b: cprop.Population) -> None:
    assert isinstance(b, cprop.Population)
    assert repr(a) == repr(b)
    assert (a.layer_sizes, a.hidden, a.output, a.loss_name, a.dtype, a.train_biases,
            a.negative_slope, a.n_params, a.n_nets) == (
        b.layer_sizes, b.hidden, b.output, b.loss_name, b.dtype, b.train_biases,
        b.negative_slope, b.n_params, b.n_nets)
    assert bits_equal(a.params, b.params)
    assert bits_equal(a.seeds, b.seeds)
    for i in range(a.n_nets):
        assert_same_state(a.net(i), b.net(i), f"net {i}")


def read_parts(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_parts(path, parts) -> None:
    with open(path, "wb") as f:
        np.savez(f, **parts)


def header_of(parts) -> dict:
    return json.loads(parts["header"].tobytes().decode("utf-8"))


def with_header(parts, **changes) -> dict:
    h = header_of(parts)
    for k, v in changes.items():
        if v is _DELETE:
            del h[k]
        else:
            h[k] = v
    return {**parts, "header": np.frombuffer(json.dumps(h).encode(), dtype=np.uint8).copy()}


_DELETE = object()


def refuses(path, pattern) -> str:
    """cprop.load(path) raises ValueError naming the file and matching pattern."""
    with pytest.raises(ValueError, match=pattern) as info:
        cprop.load(path)
    msg = str(info.value)
    assert repr(os.fspath(path)) in msg, msg
    return msg


def adam_population(n=N, **kw):
    """A population after a per-net Adam fit: per-net lr and beta1, shuffled minibatches."""
    pop = cprop.Population([3, 4, 2], n, hidden="tanh", seed=7, **kw)
    h = pop.fit(X, T, epochs=3, batch_size=4, optimizer="adam", lr=np.linspace(0.01, 0.05, n),
                beta1=np.linspace(0.8, 0.9, n))
    assert h.route == "per_net"
    return pop


@pytest.fixture
def saved(tmp_path):
    """(population, path of its saved file, the file's arrays)."""
    pop = adam_population()
    path = tmp_path / "pop.npz"
    pop.save(path)
    return pop, path, read_parts(path)


# -- round trips ------------------------------------------------------------------------------

FITS = {
    "never-trained": None,
    "adam-per-net": dict(optimizer="adam", lr=[0.01, 0.02, 0.03, 0.04, 0.05], beta1=0.8,
                         batch_size=4),
    "adamw": dict(optimizer="adamw", lr=0.02, alpha=[0.0, 0.01, 0.02, 0.03, 0.04],
                  beta2=[0.99, 0.999, 0.9, 0.95, 0.98]),
    "sgd-momentum-mixed": dict(optimizer="sgd", lr=0.1, momentum=[0.0, 0.9, 0.0, 0.5, 0.3],
                               batch_size=3),
    "sgd-nesterov": dict(optimizer="sgd", lr=0.01, momentum=0.9, nesterov=True),
    "rprop": dict(optimizer="rprop", lr=0.01, batch_size=12),
    "sgd-lanes": dict(optimizer="sgd", lr=[0.01, 0.02, 0.03, 0.04, 0.05], shuffle=False),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fit", list(FITS), ids=list(FITS))
def test_round_trip_is_bit_exact(tmp_path, fit, dtype):
    pop = cprop.Population([3, 4, 2], N, hidden="relu", output="identity", dtype=dtype,
                           seed=11, init="he_uniform")
    if FITS[fit] is not None:
        pop.fit(X, T, epochs=3, **FITS[fit])
    path = tmp_path / "pop.npz"
    pop.save(path)
    back = cprop.load(path)
    assert_same_population(pop, back)
    assert bits_equal(pop.forward(X), back.forward(X))

    parts = read_parts(path)
    assert list(parts) == list(MEMBERS)
    n_params = pop.n_params
    assert parts["params"].dtype == pop.dtype and parts["params"].shape == (N, n_params)
    assert parts["optimizer_options"].dtype == np.float64
    assert parts["optimizer_options"].shape == (N, 5)
    assert parts["optimizer_state"].dtype == pop.dtype
    assert parts["optimizer_steps"].dtype == np.int64 and parts["optimizer_steps"].shape == (N,)
    assert parts["rng_state"].dtype == np.uint64 and parts["rng_state"].shape == (N,)
    assert bits_equal(parts["seeds"], pop.seeds)
    states = [pop.net(i).state_dict() for i in range(N)]
    assert bits_equal(parts["optimizer_state"],
                      np.concatenate([s["optimizer_state"] for s in states]))
    assert parts["optimizer_steps"].tolist() == [s["optimizer_steps"] for s in states]
    assert parts["rng_state"].tolist() == [s["rng_state"] for s in states]
    for i, s in enumerate(states):
        opt = s["optimizer"]
        assert parts["optimizer_options"][i].tolist() == [
            opt["momentum"], opt["beta1"], opt["beta2"], opt["eps"], opt["alpha"]]

    h = header_of(parts)
    assert list(h) == list(_POP_HEADER_KEYS)
    assert h == {
        "format": "cprop-population", "version": 1, "cprop_version": cprop.__version__,
        "layer_sizes": [3, 4, 2], "hidden": "relu", "output": "identity",
        "loss": "squared_error", "dtype": dtype, "train_biases": True, "negative_slope": 0.01,
        "init": "he_uniform", "n_nets": N, "n_params": n_params,
        "optimizer": {"name": states[0]["optimizer"]["name"],
                      "nesterov": states[0]["optimizer"]["nesterov"]}}


def test_mixed_slots_are_concatenated_net_by_net(tmp_path):
    # SGD with and without momentum: 1 and 0 state vectors, net after net
    pop = cprop.Population([3, 4, 2], 4, seed=2)
    pop.fit(X, T, epochs=2, optimizer="sgd", lr=0.1, momentum=[0.9, 0.0, 0.0, 0.5])
    pop.save(tmp_path / "p.npz")
    parts = read_parts(tmp_path / "p.npz")
    assert parts["optimizer_state"].shape == (2 * pop.n_params,)
    assert bits_equal(parts["optimizer_state"][:pop.n_params],
                      pop.net(0).state_dict()["optimizer_state"])
    assert bits_equal(parts["optimizer_state"][pop.n_params:],
                      pop.net(3).state_dict()["optimizer_state"])
    assert_same_population(pop, cprop.load(tmp_path / "p.npz"))


def test_paths_and_the_io_functions(tmp_path):
    pop = cprop.Population([2, 3, 1], 3, seed=[0, 5, 2**64 - 1])
    for path in (tmp_path / "a.npz", str(tmp_path / "b"), os.fsencode(tmp_path / "c.bin")):
        pop.save(path)
        assert_same_population(pop, cprop.load(path))
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b", "c.bin"]
    cprop.io.save(pop, tmp_path / "direct")
    assert_same_population(pop, cprop.io.load(tmp_path / "direct"))
    assert cprop.load is cprop.io.load
    with pytest.raises(TypeError, match="path"):
        pop.save(3.5)
    with pytest.raises(FileNotFoundError):
        cprop.load(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pop.save(tmp_path / "no-such-dir" / "p.npz")


def test_mlp_files_still_load_as_mlps(tmp_path):
    net = cprop.MLP([3, 4, 2], seed=1)
    net.fit(X, T, epochs=2, optimizer="adam", lr=0.01)
    net.save(tmp_path / "m.npz")
    back = cprop.load(tmp_path / "m.npz")
    assert type(back) is cprop.MLP
    assert_same_state(net, back)


def test_from_nets_round_trip_keeps_each_nets_state(tmp_path):
    nets = []
    for k in range(3):
        net = cprop.MLP([3, 4, 2], seed=100 + k)
        net.fit(X, T, epochs=k + 1, optimizer="adam", lr=0.01 * (k + 1), beta1=0.7 + 0.1 * k)
        nets.append(net)
    pop = cprop.Population.from_nets(nets)
    pop.save(tmp_path / "p.npz")
    back = cprop.load(tmp_path / "p.npz")
    for k, net in enumerate(nets):
        assert_same_state(net, back.net(k), f"net {k}")
    assert back.seeds.tolist() == [100, 101, 102]


def test_loaded_population_is_independent_of_the_saved_one(saved):
    pop, path, _ = saved
    a, b = cprop.load(path), cprop.load(path)
    a.fit(X, T, epochs=1, optimizer="adam", lr=0.01)
    assert not np.array_equal(a.params, b.params)
    assert_same_population(pop, b)


# -- the lanes route's deferred bookkeeping is saved resolved -------------------------------

@pytest.mark.skipif(not LANES, reason="this build has no lanes kernel")
def test_save_settles_the_lanes_routes_bookkeeping(tmp_path):
    pop = cprop.Population([2, 2, 1], 6, seed=0)
    pop.fit(XOR_X, XOR_T, epochs=3, optimizer="adam", lr=0.05)  # Adam state, then ...
    h = pop.fit(XOR_X, XOR_T, epochs=5, lr=np.linspace(0.1, 0.6, 6), shuffle=False)
    assert h.route == "lanes"
    assert (pop._owed_opt >= 0).all()  # owed to the members until they are next used
    pop.save(tmp_path / "p.npz")
    parts = read_parts(tmp_path / "p.npz")
    # ... the file holds what MLP.fit would have left: plain SGD, the steps counted afresh
    assert parts["optimizer_steps"].tolist() == [5 * 4] * 6
    assert parts["optimizer_state"].shape == (0,)
    assert header_of(parts)["optimizer"] == {"name": "sgd", "nesterov": False}
    back = cprop.load(tmp_path / "p.npz")
    for i in range(6):
        net = cprop.MLP([2, 2, 1], seed=int(pop.seeds[i]))
        net.fit(XOR_X, XOR_T, epochs=3, optimizer="adam", lr=0.05)
        net.fit(XOR_X, XOR_T, epochs=5, lr=float(np.linspace(0.1, 0.6, 6)[i]), shuffle=False)
        assert_same_state(net, back.net(i), f"net {i}", rtol=1e-12)
        assert_same_state(pop.net(i), back.net(i), f"net {i}")


# -- resumed training is bit-identical ---------------------------------------------------------

def _resume_check(tmp_path, make, first: dict, then: list, route=None):
    """Two identical populations fitted with ``first``; one is saved and loaded; each fit of
    ``then`` gives the same bits and histories on the loaded one as on the other one."""
    kept, saved_one = make(), make()
    h1 = kept.fit(X, T, **first)
    h2 = saved_one.fit(X, T, **first)
    assert bits_equal(h1.loss, h2.loss)
    saved_one.save(tmp_path / "p.npz")
    loaded = cprop.load(tmp_path / "p.npz")
    for fit in then:
        ha = kept.fit(X, T, **fit)
        hb = loaded.fit(X, T, **fit)
        hc = saved_one.fit(X, T, **fit)  # saving changed nothing in the saved population
        if route is not None:
            assert ha.route == hb.route == route
        for h in (hb, hc):
            assert bits_equal(ha.loss, h.loss) and bits_equal(ha.val_loss, h.val_loss)
            assert ha.epochs.tolist() == h.epochs.tolist()
            assert ha.stop_reason == h.stop_reason
        assert bits_equal(kept.params, loaded.params)
        assert bits_equal(kept.params, saved_one.params)
    assert_same_population(kept, loaded)


@pytest.mark.skipif(not LANES, reason="this build has no lanes kernel")
def test_resume_sgd_on_the_lanes_route(tmp_path):
    lanes = dict(epochs=4, lr=np.linspace(0.05, 0.5, 8), shuffle=False)
    _resume_check(tmp_path, lambda: cprop.Population([3, 5, 2], 8, hidden="tanh", seed=4),
                  lanes, [lanes, {**lanes, "epochs": 2}], route="lanes")


@pytest.mark.parametrize("optimizer, kw", [
    ("adam", dict(beta1=[0.9, 0.8, 0.7, 0.85, 0.95], beta2=0.99)),
    ("sgd", dict(momentum=[0.9, 0.5, 0.0, 0.8, 0.7])),
    ("sgd", dict(momentum=0.9, nesterov=True)),
    ("adamw", dict(alpha=0.01)),
    ("rprop", dict(batch_size=12)),
])
def test_resume_on_the_per_net_route(tmp_path, optimizer, kw):
    fit = {**dict(epochs=3, optimizer=optimizer, lr=[0.01, 0.02, 0.03, 0.015, 0.025],
                  batch_size=4, shuffle=True), **kw}
    _resume_check(tmp_path, lambda: cprop.Population([3, 4, 2], N, seed=9), fit,
                  [fit, {**fit, "epochs": 2, "validation_fraction": 0.25}], route="per_net")


def test_resume_with_bootstrap_draws_from_each_members_generator(tmp_path):
    fit = dict(epochs=2, optimizer="adam", lr=0.02, bootstrap=True, batch_size=3)
    _resume_check(tmp_path, lambda: cprop.Population([3, 4, 2], N, seed=21), fit,
                  [fit, fit])


@pytest.mark.skipif(not LANES, reason="this build has no lanes kernel")
def test_resume_across_routes(tmp_path):
    # saved after a lanes fit, resumed with the lanes route then Adam (the state starts afresh)
    lanes = dict(epochs=3, lr=0.3, shuffle=False)
    adam = dict(epochs=2, optimizer="adam", lr=0.01, batch_size=5)
    _resume_check(tmp_path, lambda: cprop.Population([3, 4, 2], 6, seed=5), lanes,
                  [lanes, adam, lanes, dict(lanes, momentum=0.9)])


# -- saving refuses what could not be loaded back ---------------------------------------------

def test_save_refuses_non_finite_parameters_writing_nothing(tmp_path):
    pop = adam_population()
    path = tmp_path / "p.npz"
    pop.save(path)
    before = path.read_bytes()
    pop.params[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"save: the parameters of net 2 contain NaN or "
                                         r"infinity"):
        pop.save(path)
    pop.params[2, 3] = 0.0
    pop.params[4, 0] = -np.inf
    with pytest.raises(ValueError, match="parameters of net 4"):
        pop.save(tmp_path / "new.npz")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


def test_save_refuses_a_non_finite_optimizer_state(tmp_path):
    pop = adam_population()
    pop.net(0)  # (settle member 1's engine, then spoil its Adam state)
    pop._members[1]._opt_state[5] = np.inf
    with pytest.raises(ValueError, match="optimizer state of net 1 contains NaN or infinity"):
        pop.save(tmp_path / "p.npz")
    assert os.listdir(tmp_path) == []


def test_save_refuses_members_with_different_optimizers(tmp_path):
    a, b = cprop.MLP([3, 4, 2], seed=1), cprop.MLP([3, 4, 2], seed=2)
    a.fit(X, T, epochs=1, optimizer="adam", lr=0.01)
    b.fit(X, T, epochs=1, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True)
    pop = cprop.Population.from_nets([a, a, b])
    with pytest.raises(ValueError, match=r"one optimizer for all its nets, but net 0 holds the "
                                         r"state of 'adam' and net 2 of 'sgd' \(nesterov\)"):
        pop.save(tmp_path / "p.npz")
    assert os.listdir(tmp_path) == []
    pop.fit(X, T, epochs=1, optimizer="sgd", lr=0.1)  # now they share one
    pop.save(tmp_path / "p.npz")
    assert_same_population(pop, cprop.load(tmp_path / "p.npz"))


# -- loading refuses every kind of bad file -----------------------------------------------------

def _set(name, fn):
    return lambda parts: {**parts, name: fn(parts[name])}


def _at(name, index, value):
    def fn(a):
        a = a.copy()
        a[index] = value
        return a
    return _set(name, fn)


def _drop(name):
    return lambda parts: {k: v for k, v in parts.items() if k != name}


def _header(**changes):
    return lambda parts: with_header(parts, **changes)


N_PARAMS = 26  # [3, 4, 2]
BAD = [
    ("missing-seeds", _drop("seeds"), "must hold exactly the arrays header, params, "
     "optimizer_options, optimizer_state, optimizer_steps, rng_state, seeds; missing 'seeds'"),
    ("missing-options", _drop("optimizer_options"), "missing 'optimizer_options'"),
    ("extra-array", lambda p: {**p, "lr": np.zeros(N)}, "unexpected 'lr.npy'"),
    ("version-2", _header(version=2),
     "it is cprop-population format version 2; this cprop .* reads version 1 only"),
    ("format-other", _header(format="cprop-swarm"), "format is 'cprop-swarm'"),
    ("unknown-field", _header(comment="hi"), "unknown field 'comment'"),
    ("mlp-field", _header(seed=5), "unknown field 'seed'"),
    ("missing-n_nets", _header(n_nets=_DELETE), "lacks field 'n_nets'"),
    ("n_nets-zero", _header(n_nets=0), "'n_nets' must be an integer >= 1, got 0"),
    ("n_nets-string", _header(n_nets="5"), "'n_nets' must be an integer >= 1"),
    ("n_nets-bool", _header(n_nets=True), "'n_nets' must be an integer >= 1"),
    ("n_nets-fewer", _header(n_nets=4),
     rf"array 'params' has shape \(5, {N_PARAMS}\); expected \(4, {N_PARAMS}\)"),
    ("n_nets-more", _header(n_nets=6), r"'params' has shape \(5, 26\); expected \(6, 26\)"),
    ("n_params", _header(n_params=25), "'n_params' is 25, but layer_sizes"),
    ("layer_sizes", _header(layer_sizes=[3, 5, 2]), "'n_params' is 26, but layer_sizes"),
    ("hidden", _header(hidden="swish"), "'hidden' is 'swish'"),
    ("optimizer-mlp-style",
     _header(optimizer={"name": "adam", "momentum": 0.0, "nesterov": False, "beta1": 0.9,
                        "beta2": 0.999, "eps": 1e-8, "alpha": 0.0}),
     "'optimizer' must have exactly the keys name, nesterov; unknown 'alpha'"),
    ("optimizer-name", _header(optimizer={"name": "lbfgs", "nesterov": False}),
     "'optimizer.name' is 'lbfgs'"),
    ("optimizer-nesterov", _header(optimizer={"name": "adam", "nesterov": 0}),
     "'optimizer.nesterov' must be true or false"),
    ("optimizer-other-kind", _header(optimizer={"name": "sgd", "nesterov": False}),
     r"'optimizer_state' has shape \(260,\); expected \(0,\) \(0 state vectors"),
    ("params-int", _set("params", lambda a: a.astype(np.int64)),
     r"'params' has dtype int64; expected float64 \(the header's dtype\)"),
    ("params-float32", _set("params", lambda a: a.astype(np.float32)), "'params' has dtype"),
    ("params-flat", _set("params", lambda a: a.ravel()),
     r"'params' has shape \(130,\); expected \(5, 26\)"),
    ("params-nan", _at("params", (3, 7), np.nan),
     r"array 'params' contains NaN or infinity \(net 3\)"),
    ("params-inf", _at("params", (0, 0), np.inf), r"'params' contains NaN .*\(net 0\)"),
    ("options-float32", _set("optimizer_options", lambda a: a.astype(np.float32)),
     "'optimizer_options' has dtype float32; expected float64"),
    ("options-shape", _set("optimizer_options", lambda a: a[:, :4]),
     r"'optimizer_options' has shape \(5, 4\); expected \(5, 5\)"),
    ("options-nan", _at("optimizer_options", (2, 3), np.nan),
     "'optimizer_options' contains NaN or infinity"),
    ("options-beta1", _at("optimizer_options", (3, 1), 1.5),
     r"'optimizer_options' row 3 \(net 3\) is not valid for optimizer 'adam' \(beta1"),
    ("options-momentum", _at("optimizer_options", (1, 0), 0.9), r"row 1 .*momentum"),
    ("options-eps", _at("optimizer_options", (4, 3), 0.0), r"row 4 .*eps"),
    ("state-short", _set("optimizer_state", lambda a: a[:-1]),
     r"'optimizer_state' has shape \(259,\); expected \(260,\)"),
    ("state-2d", _set("optimizer_state", lambda a: a.reshape(N, -1)),
     r"'optimizer_state' has shape \(5, 52\)"),
    ("state-nan", _at("optimizer_state", 2 * 52 + 1, np.nan),
     r"'optimizer_state' contains NaN or infinity \(net 2\)"),
    ("state-negative-v", _at("optimizer_state", 3 * 52 + 26 + 4, -1e-9),
     r"'optimizer_state' has a negative Adam second moment \(net 3\)"),
    ("steps-negative", _at("optimizer_steps", 1, -4),
     r"'optimizer_steps' is negative \(net 1: -4\)"),
    ("steps-uint", _set("optimizer_steps", lambda a: a.astype(np.uint64)),
     "'optimizer_steps' has dtype uint64; expected int64"),
    ("rng-int", _set("rng_state", lambda a: a.astype(np.int64)),
     "'rng_state' has dtype int64; expected uint64"),
    ("rng-short", _set("rng_state", lambda a: a[:4]), r"'rng_state' has shape \(4,\); "
     r"expected \(5,\)"),
    ("seeds-int", _set("seeds", lambda a: a.astype(np.int64)),
     "'seeds' has dtype int64; expected uint64"),
    ("seeds-long", _set("seeds", lambda a: np.append(a, a[:1])),
     r"'seeds' has shape \(6,\); expected \(5,\)"),
    ("header-float", _set("header", lambda a: a.astype(np.float32)), "'header' has dtype"),
]


@pytest.mark.parametrize("mutate, pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_contents_raise_value_error(tmp_path, saved, mutate, pattern):
    _, _, parts = saved
    path = tmp_path / "bad.npz"
    write_parts(path, mutate(dict(parts)))
    msg = refuses(path, pattern)
    assert re.search("is not a valid cprop (population|model) file", msg), msg


def test_a_rprop_negative_step_size_names_the_net(tmp_path):
    pop = cprop.Population([3, 4, 2], 3, seed=1)
    pop.fit(X, T, epochs=2, optimizer="rprop", lr=0.01, batch_size=12)
    pop.save(tmp_path / "p.npz")
    parts = read_parts(tmp_path / "p.npz")
    parts["optimizer_state"][2 * 52 + 30] = -0.5
    write_parts(tmp_path / "bad.npz", parts)
    refuses(tmp_path / "bad.npz", r"negative Rprop step size \(net 2\)")


def test_other_byte_order_and_fortran_order_are_read(tmp_path, saved):
    pop, _, parts = saved
    swapped = {k: (v if k == "header" else v.astype(v.dtype.newbyteorder(">")))
               for k, v in parts.items()}
    swapped["params"] = np.asfortranarray(swapped["params"])
    swapped["optimizer_options"] = np.asfortranarray(swapped["optimizer_options"])
    path = tmp_path / "big-endian.npz"
    write_parts(path, swapped)
    with zipfile.ZipFile(path) as zf:  # really written in Fortran order
        assert b"'fortran_order': True" in zf.read("params.npy")[:128]
    back = cprop.load(path)
    assert_same_population(pop, back)
    assert back.params.flags.c_contiguous and back.params.dtype.isnative


def test_truncated_and_corrupted_archives(tmp_path):
    pop = cprop.Population([2, 2, 1], 2, seed=3)
    pop.fit(XOR_X, XOR_T, epochs=2, optimizer="adam", lr=0.1)
    good = tmp_path / "good.npz"
    pop.save(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    for n in range(len(data)):  # every truncation
        bad.write_bytes(data[:n])
        with pytest.raises(ValueError) as info:
            cprop.load(bad)
        assert repr(str(bad)) in str(info.value)
    # a flipped byte in each member's data: the CRC-32 catches it
    with zipfile.ZipFile(good) as zf:
        infos = zf.infolist()
    for zinfo in infos:
        corrupt = bytearray(data)
        start = zinfo.header_offset + 30 + len(zinfo.filename) + len(zinfo.extra)
        corrupt[start + zinfo.file_size - 1] ^= 0x40
        bad.write_bytes(bytes(corrupt))
        refuses(bad, r"not a valid cprop (population|model) file \(truncated or corrupt\?\).*"
                     r"(CRC|crc)")
    assert_same_population(pop, cprop.load(good))


def test_not_an_archive(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("a population?\n")
    refuses(text, "not an .npz")
    (tmp_path / "empty").write_bytes(b"")
    refuses(tmp_path / "empty", "empty")


# -- one format where the other is needed -----------------------------------------------------

def test_the_command_line_refuses_a_population_where_it_needs_a_network(tmp_path, capsys, saved):
    _, path, _ = saved
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c"], [[0.1, 0.2, 0.3]])
    code, out, err = run(capsys, "predict", path, data)
    assert code != 0 and out == ""
    assert (f"{str(path)!r} holds a population of networks (format 'cprop-population'), not a "
            "single network; cprop.load reads it as a cprop.Population") in err


def test_the_network_loader_refuses_a_population_and_reads_a_network(tmp_path, saved):
    from cprop.io import _load_network

    _, path, _ = saved
    with pytest.raises(ValueError, match="holds a population of networks .*not a single "
                                         "network"):
        _load_network(path)
    net = cprop.MLP([3, 4, 2], seed=1)
    net.save(tmp_path / "m.npz")
    assert_same_state(net, _load_network(tmp_path / "m.npz"))
