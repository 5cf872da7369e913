"""``MLP.state_dict`` / ``load_state_dict``, ``backprop_values``, ``loss_and_gradient``, and the
rule that no module reads another module's private attributes (no import cycles either)."""

from __future__ import annotations

import ast
import pathlib
import re

import numpy as np
import pytest

import cprop
from cprop.mlp import STATE_KEYS

SRC = pathlib.Path(cprop.__file__).parent


def _trained(optimizer="adam", dtype="float64", **kw):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    T = rng.uniform(size=(12, 2))
    net = cprop.MLP([3, 4, 2], hidden="tanh", dtype=dtype, seed=1)
    net.fit(X, T, epochs=2, lr=0.05, batch_size=4, optimizer=optimizer, **kw)
    return net, X, T


def test_state_dict_holds_copies():
    net, _, _ = _trained()
    s = net.state_dict()
    assert tuple(s) == STATE_KEYS
    assert s["optimizer"] == {"name": "adam", "momentum": 0.0, "nesterov": False, "beta1": 0.9,
                              "beta2": 0.999, "eps": 1e-8, "alpha": 0.0}
    assert s["params"].shape == (net.n_params,) and s["optimizer_state"].shape == (
        2 * net.n_params,)
    assert type(s["optimizer_steps"]) is int and s["optimizer_steps"] == 6
    assert type(s["rng_state"]) is int
    before = net.params.copy()
    s["params"][:] = 0
    s["optimizer_state"][:] = 0
    assert np.array_equal(net.params, before)
    assert net.state_dict()["optimizer_state"].any()


@pytest.mark.parametrize("optimizer, kw", [("sgd", {}), ("sgd", {"momentum": 0.9}),
                                           ("adam", {}), ("adamw", {"alpha": 0.1}),
                                           ("rprop", {})])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_resumes_training_exactly(optimizer, kw, dtype):
    net, X, T = _trained(optimizer, dtype, **kw)
    twin = cprop.MLP([3, 4, 2], hidden="tanh", dtype=dtype, seed=99)
    twin.load_state_dict(net.state_dict())
    assert net.optimizer == twin.optimizer
    h1 = net.fit(X, T, epochs=3, lr=0.05, batch_size=4, optimizer=optimizer, **kw)
    h2 = twin.fit(X, T, epochs=3, lr=0.05, batch_size=4, optimizer=optimizer, **kw)
    assert h1.loss == h2.loss and np.array_equal(net.params, twin.params)
    for key in ("optimizer_state",):
        assert np.array_equal(net.state_dict()[key], twin.state_dict()[key])
    for key in ("optimizer", "optimizer_steps", "rng_state"):
        assert net.state_dict()[key] == twin.state_dict()[key]


def test_load_keeps_views_and_converts_dtype():
    net, _, _ = _trained(dtype="float32")
    w0 = net.weights[0]
    s = net.state_dict()
    s["params"] = s["params"].astype(np.float64).tolist()  # a list of Python floats
    net.load_state_dict(s)
    assert net.weights[0] is w0 and net.params.dtype == np.float32


def _bad(change):
    net, _, _ = _trained()
    s = net.state_dict()
    change(s)
    before = net.state_dict()
    return net, s, before


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("rng_state"), r"state_dict: missing key 'rng_state'"),
    (lambda s: s.update(extra=1), r"state_dict: unknown key 'extra'"),
    (lambda s: s.update(params=s["params"][:-1]),
     r"state_dict\['params'\]: expected shape \(26,\), got \(25,\)"),
    (lambda s: s.update(params=s["params"].reshape(2, 13)),
     r"state_dict\['params'\]: expected shape \(26,\)"),
    (lambda s: s.update(params=np.full(26, np.nan)),
     r"state_dict\['params'\]: contains NaN or infinity"),
    (lambda s: s.update(params=np.array(["a"] * 26)),
     r"state_dict\['params'\]: expected an array of real numbers, got dtype <U1"),
    (lambda s: s.update(params=np.zeros(26, dtype=bool)),
     r"state_dict\['params'\]: expected an array of real numbers, got dtype bool"),
    (lambda s: s.update(optimizer="adam"),
     r"state_dict\['optimizer'\]: expected a dict with the keys name, momentum"),
    (lambda s: s["optimizer"].update(name="lbfgs"),
     r"state_dict\['optimizer'\]: optimizer: expected one of 'sgd', 'adam', 'adamw', 'rprop'"),
    (lambda s: s["optimizer"].update(beta2=1.5),
     r"state_dict\['optimizer'\]: beta2: expected a number in \[0, 1\)"),
    (lambda s: s["optimizer"].update(nesterov=True),
     r"state_dict\['optimizer'\]: nesterov: Nesterov momentum needs"),
    (lambda s: s["optimizer"].update(name="sgd"),
     r"state_dict\['optimizer_state'\]: expected shape \(0,\) \(0 state vectors of 26 values "
     r"for optimizer 'sgd'\), got \(52,\)"),
    (lambda s: s["optimizer_state"].__setitem__(30, -1.0),
     r"state_dict\['optimizer_state'\]: has a negative Adam second moment"),
    (lambda s: s["optimizer_state"].__setitem__(3, np.inf),
     r"state_dict\['optimizer_state'\]: contains NaN or infinity"),
    (lambda s: s.update(optimizer_steps=-1),
     r"state_dict\['optimizer_steps'\]: expected an integer in \[0, 2\*\*63\), got -1"),
    (lambda s: s.update(optimizer_steps=1.0),
     r"state_dict\['optimizer_steps'\]: expected an integer in \[0, 2\*\*63\), got 1.0"),
    (lambda s: s.update(rng_state=2**64),
     r"state_dict\['rng_state'\]: expected an integer in \[0, 2\*\*64\)"),
    (lambda s: s.update(rng_state=True),
     r"state_dict\['rng_state'\]: expected an integer in \[0, 2\*\*64\), got True"),
])
def test_load_refuses_and_changes_nothing(change, message):
    net, s, before = _bad(change)
    with pytest.raises(ValueError, match=message):
        net.load_state_dict(s)
    after = net.state_dict()
    assert np.array_equal(after["params"], before["params"])
    assert np.array_equal(after["optimizer_state"], before["optimizer_state"])
    assert [after[k] for k in ("optimizer", "optimizer_steps", "rng_state")] == [
        before[k] for k in ("optimizer", "optimizer_steps", "rng_state")]


def test_load_refuses_non_mapping_and_float32_overflow():
    net = cprop.MLP([2, 1], dtype="float32", seed=0)
    with pytest.raises(TypeError, match="state_dict: expected a dict"):
        net.load_state_dict([1, 2])
    s = net.state_dict()
    s["params"] = np.array([1e300, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"'params'\]: contains NaN or infinity \(as float32\)"):
        net.load_state_dict(s)


def test_backprop_values_are_the_kernels_numbers():
    net = cprop.MLP([3, 4, 2], hidden="tanh", output="softmax", loss="cross_entropy", seed=2)
    x, t = np.array([0.1, -0.2, 0.3]), 1
    v = net.backprop_values(x, t)
    assert v.t.tolist() == [0.0, 1.0] and v.loss == net.loss(x[None], [t])
    gw, gb = net.gradients(x[None], [t])
    assert np.array_equal(v.grad, np.concatenate([np.r_[w.ravel(), b] for w, b in zip(gw, gb)]))
    assert len(v.layers) == 2
    assert np.array_equal(v.layers[0].a_in, x)
    assert np.array_equal(v.layers[1].a_in, v.layers[0].a)
    assert np.allclose(v.layers[0].z, x @ net.weights[0] + net.biases[0], rtol=0, atol=1e-15)
    assert np.allclose(v.layers[0].a, np.tanh(v.layers[0].z), rtol=0, atol=1e-15)
    assert np.array_equal(v.layers[1].a, net.forward(x))
    assert np.allclose(v.layers[1].delta, v.layers[1].a - v.t, rtol=0, atol=1e-15)
    for lv, w, b in zip(v.layers, gw, gb):
        assert np.array_equal(lv.grad_W, w) and np.array_equal(lv.grad_b, b)
        assert np.allclose(lv.grad_W, np.outer(lv.a_in, lv.delta), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match=r"x: expected one sample of shape \(3,\)"):
        net.backprop_values(np.zeros((2, 3)), [0, 1])


def test_loss_and_gradient():
    net, X, T = _trained()
    loss, grad = net.loss_and_gradient(X, T)
    gw, gb = net.gradients(X, T)
    assert loss == net.loss(X, T) and grad.shape == (net.n_params,)
    assert np.array_equal(grad, np.concatenate([np.r_[w.ravel(), b] for w, b in zip(gw, gb)]))
    net.params[0] = np.nan
    with pytest.raises(ValueError, match="params: the network's parameters contain NaN"):
        net.check_params()


# -- no module reads another's private attributes; no import cycles --------------------------------

_PRIVATE = re.compile(r"\b\w+\._(plan|params|workspace|lock|opt|opt_state|opt_steps|rng)\b")


def test_no_private_attributes_outside_mlp():
    for name in ("sklearn.py", "io.py", "_fileformat.py", "explain.py", "cli.py", "_tabular.py",
                 "onnx_export.py", "demo.py", "examples.py"):
        text = (SRC / name).read_text()
        if name == "sklearn.py":  # the per-batch route, _run_epoch, is the lead's to move
            start = text.index("    def _run_epoch(")
            end = text.index("\n    def ", start + 10)
            text = text[:start] + text[end:]
        hits = [m.group(0) for m in _PRIVATE.finditer(text)]
        assert not hits, f"{name}: {hits}"


def _imports(path: pathlib.Path) -> set[str]:
    """The cprop modules a module imports (at the top or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("cprop")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cprop"):
            if node.module == "cprop":
                out |= {f"cprop.{a.name}" for a in node.names
                        if (SRC / f"{a.name}.py").exists()}
            else:
                out.add(node.module)
    return out


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(SRC.glob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        graph[f"cprop.{path.stem}"] = {m for m in _imports(path) if m != "cprop"}
    return graph


def test_no_import_cycles():
    graph = import_graph()
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [])
    assert "cprop.io" not in graph["cprop.mlp"] and "cprop.mlp" not in graph["cprop._fileformat"]
    # the registry and the oracle stay plain Python
    assert graph["cprop._registry"] == set() and graph["cprop.oracle"] == {"cprop._registry"}
