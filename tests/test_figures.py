"""net.draw: the SVG figures parse as XML, hold the right units and edges, and carry the exact
values of the derivation under the names explain prints."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

import cprop
from cprop.examples import CANONICAL, SEED, canonical_network, seed_network

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str):
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return root


def groups(root, cls: str):
    """The <g> elements whose class list holds `cls`."""
    return [g for g in root.iter(SVG + "g") if cls in g.get("class", "").split()]


def title(el) -> str:
    return el.find(SVG + "title").text


def texts(el) -> list[str]:
    """The visible text of each <text> under el (a <title> inside is a tooltip, not drawn)."""
    def visible(t):
        return (t.text or "") + "".join(
            (c.tail or "") if c.tag == SVG + "title" else "".join(c.itertext()) + (c.tail or "")
            for c in t)
    return [visible(t) for t in el.iter(SVG + "text")]


def by_ref(root, cls: str) -> dict:
    return {g.get("data-ref"): g for g in groups(root, cls)}


def num(v: float) -> str:
    """As explain prints a number."""
    return f"{v:.10g}"


def seed_figure(stage: str, **kw):
    net, x, t, lr = seed_network()
    given = {"weights": {}, "forward": {"x": x, "t": t}, "backward": {"x": x, "t": t},
             "update": {"x": x, "t": t, "lr": lr}}[stage]
    return net, parse(net.draw(stage=stage, weight_names="seed", **given, **kw))


@pytest.mark.parametrize("stage", ["weights", "forward", "backward", "update"])
def test_seed_figure_has_six_units_and_eight_named_edges(stage):
    net, root = seed_figure(stage)
    units = by_ref(root, "unit")
    assert sorted(g.get("data-name") for g in units.values()) == ["h1", "h2", "x1", "x2",
                                                                  "y1", "y2"]
    edges = by_ref(root, "edge")
    assert len(edges) == 8
    # the seed text's names sit on the weights they name: w3 is x2 -> h1, w7 is h1 -> y2
    for name, (layer, i, j) in SEED.weight_names.items():
        edge = edges[f"edge:{layer + 1}:{i}:{j}"]
        assert edge.get("data-name") == name
    assert root.get("data-stage") == stage
    assert root.get("data-layers") == "2-2-2"


def test_seed_weights_figure_values():
    net, root = seed_figure("weights")
    edges = by_ref(root, "edge")
    for name, (layer, i, j) in SEED.weight_names.items():
        edge = edges[f"edge:{layer + 1}:{i}:{j}"]
        value = float(net.weights[layer][i, j])
        assert float(edge.get("data-value")) == value
        assert title(edge).startswith(f"{name} = {num(value)}   (W{layer + 1}[{i + 1},{j + 1}]")
    labels = {g.get("data-ref"): texts(g)[0] for g in groups(root, "edge-label")}
    assert labels["edge:1:1:0"] == "w3 = 0.25"
    assert labels["edge:2:0:1"] == "w7 = 0.5"
    assert len(labels) == 8
    units = by_ref(root, "unit")
    assert texts(units["unit:1:0"]) == ["h1", "b1[1] = 0.3"]
    assert texts(units["unit:2:1"]) == ["y2", "b2[2] = 0.7"]


def test_canonical_names_follow_its_text():
    """Mazur's text names x2 -> h1 w2 (the seed text calls it w3)."""
    net, x, t, lr = canonical_network()
    root = parse(net.draw(weight_names="canonical"))
    edges = by_ref(root, "edge")
    assert edges["edge:1:1:0"].get("data-name") == "w2"
    assert edges["edge:1:0:1"].get("data-name") == "w3"
    assert float(edges["edge:1:1:0"].get("data-value")) == 0.20
    assert CANONICAL.weight_names["w2"] == (0, 1, 0)


def test_forward_figure_holds_the_traces_values():
    net, x, t, lr = seed_network()
    trace = net.explain(x, t, lr)
    _, root = seed_figure("forward")
    units = by_ref(root, "unit")
    for L, ly in enumerate(trace.layers, start=1):
        for j in range(2):
            name = trace.unit_name(L, j)
            tip = title(units[f"unit:{L}:{j}"])
            assert f"z_{name} = {num(ly.z[j])}" in tip
            assert f"{name} = sigmoid(z_{name}) = {num(ly.a[j])}" in tip
    assert texts(units["unit:1:0"]) == ["h1", "b1[1] = 0.3", "z = 0.3325", "h1 = 0.5824"]
    assert texts(units["unit:2:0"]) == ["y1", "b2[1] = 0.7", "z = 1.196", "y1 = 0.7678",
                                        "t1 = 0.01"]
    assert texts(units["unit:0:1"]) == ["x2", "x2 = 0.1"]
    assert f"E = {trace.loss:.4g}" in title(root)


def test_forward_without_target_draws_no_target():
    net, x, t, lr = seed_network()
    root = parse(net.draw(stage="forward", x=x))
    units = by_ref(root, "unit")
    assert texts(units["unit:2:0"]) == ["y1", "b2[1] = 0.7", "z = 1.196", "y1 = 0.7678"]
    assert "E =" not in title(root)


def test_backward_figure_holds_each_delta():
    net, x, t, lr = seed_network()
    trace = net.explain(x, t, lr)
    _, root = seed_figure("backward")
    units = by_ref(root, "unit")
    for L, ly in enumerate(trace.layers, start=1):
        for j in range(2):
            name = trace.unit_name(L, j)
            tip = title(units[f"unit:{L}:{j}"])
            assert tip.startswith(f"delta_{name} = dE/dz_{name} = {num(ly.delta[j])}")
            assert f"dE/d{name} = {num(ly.dE_da[j])}" in tip
    assert texts(units["unit:2:0"])[-1] == "δ = 0.1351"
    assert texts(units["unit:1:1"])[-1] == "δ = 0.0105"


def test_update_figure_marks_what_the_step_changed():
    net, x, t, lr = seed_network()
    before = net.params.copy()
    trace = net.explain(x, t, lr)
    _, root = seed_figure("update")
    edges = by_ref(root, "edge")
    for L, ly in enumerate(trace.layers, start=1):
        for i in range(2):
            for j in range(2):
                edge = edges[f"edge:{L}:{i}:{j}"]
                assert float(edge.get("data-value")) == ly.new_W[i][j]
                assert "changed" in edge.get("class").split()
                assert title(edge).endswith(f"; was {num(ly.W[i][j])}")
    # the seed example does not train its biases: nothing marks them
    assert not [g for g in groups(root, "unit") if "changed" in g.get("class").split()]
    labels = {g.get("data-ref"): texts(g)[0] for g in groups(root, "edge-label")}
    assert labels["edge:2:0:0"] == "w5 = 0.3607"  # the seed text prints 0.3607
    np.testing.assert_array_equal(net.params, before)  # drawing does not train


def test_update_marks_trained_biases_and_only_changed_weights():
    net = cprop.MLP([2, 3, 1], seed=3)
    x, t = np.array([0.0, 0.7]), np.array([0.2])
    trace = net.explain(x, t, 0.5)
    root = parse(net.draw(stage="update", x=x, t=t, lr=0.5))
    edges = by_ref(root, "edge")
    # x1 = 0: its weights get a zero gradient and stay
    for j in range(3):
        assert "changed" not in edges[f"edge:1:0:{j}"].get("class").split()
        assert title(edges[f"edge:1:0:{j}"]).endswith("; unchanged")
        assert "changed" in edges[f"edge:1:1:{j}"].get("class").split()
    units = by_ref(root, "unit")
    for j in range(3):
        unit = units[f"unit:1:{j}"]
        assert "changed" in unit.get("class").split()
        assert texts(unit)[1] == f"b1[{j + 1}] = {trace.layers[0].new_b[j]:.4g}"


def test_every_derivation_line_points_at_drawn_elements():
    """The ids in Trace.lines are the figure's: a line is never tied to nothing that exists."""
    for sizes, kw in [([2, 2, 2], {}), ([3, 4, 2], {"hidden": "tanh", "output": "softmax",
                                                   "loss": "cross_entropy"}),
                      ([2, 3, 3, 1], {"hidden": "relu"})]:
        net = cprop.MLP(sizes, seed=1, **kw)
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, sizes[0])
        t = 1 if kw.get("loss") == "cross_entropy" else rng.uniform(0, 1, sizes[-1])
        root = parse(net.draw(stage="update", x=x, t=t, lr=0.1))
        ids = {el.get("data-ref") for el in root.iter() if el.get("data-ref")}
        lines = net.explain(x, t, 0.1).lines()
        refs = {r for line in lines for r in line.refs}
        assert refs <= ids
        # every unit, edge and bias is the subject of some line
        assert ids == refs
        assert "\n".join(line.text for line in lines) == net.explain(x, t, 0.1).format()


def test_wide_layers_are_drawn_with_an_ellipsis():
    net = cprop.MLP([64, 32, 10], hidden="relu", output="softmax", loss="cross_entropy", seed=0)
    x = np.linspace(-1, 1, 64)
    root = parse(net.draw(stage="backward", x=x, t=3))
    units = groups(root, "unit")
    assert len(units) == 10 + 10 + 10
    names = {g.get("data-name") for g in units}
    assert {"x1", "x5", "x60", "x64", "h1", "h32", "y1", "y10"} <= names
    assert "x6" not in names and "h6" not in names
    ellipses = {g.get("data-layer"): g.get("data-hidden") for g in groups(root, "ellipsis")}
    assert ellipses == {"0": "54", "1": "22"}
    assert len(groups(root, "edge")) == 10 * 10 + 10 * 10
    assert groups(root, "edge-label") == []  # no room: sign as colour, magnitude as width
    edges = by_ref(root, "edge")
    W = net.weights[0]
    widths = {}
    for ref, g in edges.items():
        _, L, i, j = ref.split(":")
        line = g.find(SVG + "line")
        value = float(g.get("data-value"))
        assert value == net.weights[int(L) - 1][int(i), int(j)]
        assert line.get("stroke") == ("#2f6fdb" if value >= 0 else "#e0533d")
        widths[abs(value)] = float(line.get("stroke-width"))
    ordered = [widths[k] for k in sorted(widths)]
    assert ordered == sorted(ordered) and ordered[-1] == 4.0
    assert abs(float(edges["edge:1:0:0"].get("data-value")) - W[0, 0]) == 0


def test_figure_width_grows_with_the_network_and_stays_readable():
    sizes_seen = []
    for sizes in ([2, 2, 2], [3, 4, 2], [8, 8], [64, 32, 10], [784, 128, 64, 10]):
        root = parse(cprop.MLP(sizes, seed=0).draw())
        w, h = float(root.get("width")), float(root.get("height"))
        assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
        sizes_seen.append((w, h))
        # no unit outside the canvas
        for g in groups(root, "unit"):
            assert 0 < float(g.get("data-cx")) < w and 0 < float(g.get("data-cy")) < h
    assert all(h <= 900 for _, h in sizes_seen)


def test_draw_writes_the_file(tmp_path):
    net, x, t, lr = seed_network()
    path = tmp_path / "forward.svg"
    svg = net.draw(path, stage="forward", x=x, t=t)
    assert path.read_text(encoding="utf-8") == svg
    assert net.draw(stage="forward", x=x, t=t) == svg  # deterministic


def test_draw_png(tmp_path):
    pytest.importorskip("resvg_py", reason="the png extra (resvg-py) is not installed")
    net, x, t, lr = seed_network()
    path = tmp_path / "net.png"
    svg = net.draw(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    root = parse(svg)
    assert (width, height) == (2 * int(root.get("width")), 2 * int(root.get("height")))


def test_id_prefix_keeps_ids_apart():
    net, x, t, lr = seed_network()
    root = parse(net.draw(id_prefix="fig2-"))
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert ids and all(i.startswith("fig2-") for i in ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"stage": "sideways"}, ValueError, "stage: expected one of 'weights', 'forward'"),
    ({"stage": "forward"}, ValueError, "x: stage 'forward' needs x"),
    ({"stage": "backward", "x": [0.1, 0.2]}, ValueError, "t: stage 'backward' needs t"),
    ({"stage": "update", "x": [0.1, 0.2], "t": [0, 1]}, ValueError, "lr: stage 'update' needs"),
    ({"x": [0.1, 0.2]}, ValueError, "x: not used by stage 'weights'"),
    ({"stage": "forward", "x": [0.1, 0.2], "lr": 0.5}, ValueError, "lr: not used by stage"),
    ({"stage": "forward", "x": [0.1, 0.2, 0.3]}, ValueError, "x: expected"),
    ({"stage": "forward", "x": [0.1, float("nan")]}, ValueError, "x:"),
    ({"stage": "update", "x": [0.1, 0.2], "t": [0, 1], "lr": -1}, ValueError, "lr"),
    ({"weight_names": "mazur"}, ValueError, "weight_names: expected one of"),
    ({"weight_names": {"w1": (0, 2, 0)}}, ValueError, "weight_names: 'w1' at (0, 2, 0)"),
    ({"weight_names": {"w1": (0, 0, 0), "w2": (0, 0, 0)}}, ValueError, "two names"),
    ({"weight_names": 3}, TypeError, "weight_names: expected None"),
    ({"id_prefix": "a b"}, ValueError, "id_prefix"),
])
def test_bad_arguments_name_the_argument(kwargs, error, message):
    net = cprop.MLP([2, 2, 2], seed=0)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        net.draw(**kwargs)


def test_bad_paths(tmp_path):
    net = cprop.MLP([2, 2, 2], seed=0)
    with pytest.raises(ValueError, match="path: expected a file name ending in .svg or .png"):
        net.draw(tmp_path / "x.pdf")
    with pytest.raises(FileNotFoundError, match="path: the directory"):
        net.draw(tmp_path / "missing" / "x.svg")
    assert list(tmp_path.iterdir()) == []


def test_float32_network_draws_its_own_values():
    net, x, t, lr = seed_network(dtype="float32")
    root = parse(net.draw(stage="update", x=x, t=t, lr=lr, weight_names="seed"))
    trace = net.explain(x, t, lr)
    edge = by_ref(root, "edge")["edge:2:0:0"]
    assert float(edge.get("data-value")) == trace.layers[1].new_W[0][0]
    assert trace.layers[1].new_W[0][0] == float(np.float32(0.4) - np.float32(0.5)
                                                 * np.float32(trace.layers[1].grad_W[0][0]))
