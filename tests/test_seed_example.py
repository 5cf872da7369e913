"""The worked examples, number for number.

Exact values are written out literally (computed by hand below in plain scalar Python, the
textbook formulas with no cprop code involved); the source text's four-digit figures are
checked against them; the canonical variant's first step must equal the widely published
weights to 1e-8.
"""

import json
import math

import numpy as np
import pytest

import cprop
from cprop.demo import check_figure, demo_data
from cprop.examples import CANONICAL, SEED


def sigma(z):
    return 1.0 / (1.0 + math.exp(-z))


def hand_step(w, b1, b2, x=(0.05, 0.10), t=(0.01, 0.99), lr=0.5):
    """The seed text's derivation for named weights w1..w8 (seed naming), by hand."""
    x1, x2 = x
    z1 = w["w1"] * x1 + w["w3"] * x2 + b1
    z2 = w["w2"] * x1 + w["w4"] * x2 + b1
    h1, h2 = sigma(z1), sigma(z2)
    o1 = w["w5"] * h1 + w["w6"] * h2 + b2
    o2 = w["w7"] * h1 + w["w8"] * h2 + b2
    y1, y2 = sigma(o1), sigma(o2)
    E = 0.5 * (t[0] - y1) ** 2 + 0.5 * (t[1] - y2) ** 2
    d1 = (y1 - t[0]) * y1 * (1 - y1)
    d2 = (y2 - t[1]) * y2 * (1 - y2)
    g = {"w5": d1 * h1, "w6": d1 * h2, "w7": d2 * h1, "w8": d2 * h2}
    dh1 = (w["w5"] * d1 + w["w7"] * d2) * h1 * (1 - h1)
    dh2 = (w["w6"] * d1 + w["w8"] * d2) * h2 * (1 - h2)
    g.update({"w1": dh1 * x1, "w3": dh1 * x2, "w2": dh2 * x1, "w4": dh2 * x2})
    new = {k: w[k] - lr * g[k] for k in w}
    return dict(z=(z1, z2), h=(h1, h2), o=(o1, o2), y=(y1, y2), E=E, d=(d1, d2),
                dh=(dh1, dh2), g=g, new=new)


SEED_W = {"w1": .15, "w2": .20, "w3": .25, "w4": .30, "w5": .40, "w6": .45, "w7": .50, "w8": .50}


def named(example, arrays):
    """{w1: value, ...} from cprop-layout arrays via the example's naming."""
    return {n: float(arrays[layer][i][j]) for n, (layer, i, j) in example.weight_names.items()}


def test_seed_forward_matches_hand_derivation_and_literals():
    net, x, t, lr = cprop.examples.seed_network()
    hand = hand_step(SEED_W, 0.30, 0.70)
    tr = net.explain(x, t, lr)
    # literal exact values (10 significant digits), then the hand derivation at 1e-15
    assert tr.layers[0].z == pytest.approx([0.3325, 0.34], abs=1e-15)
    assert tr.layers[0].a == pytest.approx([0.5823675407, 0.5841905229], abs=5e-11)
    assert tr.layers[1].z == pytest.approx([1.195832752, 1.283279032], abs=5e-10)
    assert tr.layers[1].a == pytest.approx([0.7677826238, 0.7830074232], abs=5e-11)
    assert tr.loss == pytest.approx(0.3085402159, abs=5e-11)
    np.testing.assert_allclose(tr.layers[0].a, hand["h"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(tr.layers[1].a, hand["y"], rtol=0, atol=1e-15)
    assert tr.loss == pytest.approx(hand["E"], abs=1e-15)
    assert net.loss(x, t) == pytest.approx(hand["E"], abs=1e-15)


def test_seed_backward_and_update_match_hand_derivation():
    net, x, t, lr = cprop.examples.seed_network()
    hand = hand_step(SEED_W, 0.30, 0.70)
    tr = net.explain(x, t, lr)
    np.testing.assert_allclose(tr.layers[1].delta, hand["d"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(tr.layers[0].delta, hand["dh"], rtol=0, atol=1e-15)
    gw, gb = net.gradients(x, t)
    got = named(SEED, [g for g in gw])
    for k in SEED_W:
        assert got[k] == pytest.approx(hand["g"][k], abs=1e-15), k
    # literal gradients and updated weights (the blanks the text leaves)
    assert got["w5"] == pytest.approx(0.0786818923, abs=5e-11)
    assert got["w1"] == pytest.approx(0.0004433583061, abs=5e-14)
    before = net.params.copy()
    loss = net.train_step(x, t, lr)
    assert loss == pytest.approx(0.3085402159, abs=5e-11)
    new = named(SEED, net.weights)
    for k in SEED_W:
        assert new[k] == pytest.approx(hand["new"][k], abs=1e-15), k
    expected = {"w1": 0.1497783208, "w2": 0.1997375737, "w3": 0.2495566417,
                "w4": 0.2994751475, "w5": 0.3606590538, "w6": 0.4105359051,
                "w7": 0.5102407719, "w8": 0.5102728285}
    for k, v in expected.items():
        assert new[k] == pytest.approx(v, abs=5e-11), k
    # biases are not trained in the worked example
    np.testing.assert_array_equal(net.biases[0], before[4:6])
    np.testing.assert_array_equal(net.biases[1], before[10:12])


# The figures the seed text prints, to its four digits. Those marked "slip" do not round from the
# exact value: they follow from the text's ŷ1 = 0.7676 (σ(1.19583) is 0.76778).
SEED_TEXT = [
    ("z_h1", 0.3325, "match"), ("a_h1", 0.5824, "match"), ("z_h2", 0.34, "match"),
    ("a_h2", 0.5842, "match"), ("z_y1", 1.196, "match"), ("y1", 0.7676, "slip"),
    ("y2", 0.7830, "match"), ("E_y1", 0.2869, "slip"), ("E_y2", 0.0214, "match"),
    ("E", 0.3083, "slip"), ("dE/dy1", 0.7576, "slip"), ("dy1/dz", 0.1784, "slip"),
    ("dz/dw5", 0.5824, "match"), ("dE/dw5", 0.0787, "match"), ("w5'", 0.3607, "match"),
    ("delta_y1", 0.1352, "slip"), ("w5", 0.4, "match"), ("dEo1/dh1", 0.0541, "slip"),
    ("dh1/dz", 0.2432, "match"), ("x1", 0.05, "match"),
]


def seed_values():
    net, x, t, lr = cprop.examples.seed_network()
    tr = net.explain(x, t, lr)
    L0, L1 = tr.layers
    return {
        "z_h1": L0.z[0], "a_h1": L0.a[0], "z_h2": L0.z[1], "a_h2": L0.a[1], "z_y1": L1.z[0],
        "y1": L1.a[0], "y2": L1.a[1], "E_y1": tr.output_losses[0], "E_y2": tr.output_losses[1],
        "E": tr.loss, "dE/dy1": L1.dE_da[0], "dy1/dz": L1.da_dz[0], "dz/dw5": L1.a_in[0],
        "dE/dw5": L1.grad_W[0][0], "w5'": L1.new_W[0][0], "delta_y1": L1.delta[0],
        "w5": L1.W[0][0], "dEo1/dh1": L0.dE_da_terms[0][0], "dh1/dz": L0.da_dz[0],
        "x1": L0.a_in[0],
    }


@pytest.mark.parametrize("name,text,kind", SEED_TEXT)
def test_seed_text_figures(name, text, kind):
    value = seed_values()[name]
    digits = len(repr(text).split(".")[1])  # the text prints 0.34 and 1.196 with fewer digits
    if kind == "match":
        assert round(value, digits) == pytest.approx(text, abs=1e-12), (name, value)
    else:
        assert round(value, digits) != pytest.approx(text, abs=1e-12), (name, value)
        assert abs(value - text) < 6e-4  # a carried slip, not a different quantity


def test_seed_slips_follow_from_text_y1():
    # Recompute the text's chain from its own rounded ŷ1 = 0.7676: it reproduces each "slip".
    y1 = 0.7676
    assert round(-(0.01 - y1), 4) == 0.7576
    assert round(y1 * (1 - y1), 4) == 0.1784
    assert round(0.7576 * 0.1784, 4) == 0.1352
    assert round(0.1352 * 0.4, 4) == 0.0541
    assert math.floor(0.5 * 0.7576**2 * 1e4) / 1e4 == 0.2869


def test_demo_figures_agree_with_test_table():
    data, _ = demo_data("seed")
    checks = [f["check"] for f in data["figures"] if f["text"] is not None]
    assert checks.count("differs") == sum(1 for _, _, k in SEED_TEXT if k == "slip")
    blanks = [f for f in data["figures"] if f["text"] is None]
    # w6, w7, w8; dE_o2/dout_h1, dE_total/dout_h1, dE_total/dw1; w1, w2, w3, w4
    assert [f["label"].split()[0] for f in blanks] == [
        "w6", "w7", "w8", "∂E_o2/∂out_h1", "∂E_total/∂out_h1", "∂E_total/∂w1", "w1", "w2", "w3",
        "w4"]
    assert check_figure("0.7830", 0.7830074232) == "match"
    assert check_figure("0.7676", 0.7677826238) == "differs"
    assert check_figure(None, 1.0) == "blank"


PUBLISHED = {"w1": 0.149780716, "w2": 0.19956143, "w3": 0.24975114, "w4": 0.29950229,
             "w5": 0.35891648, "w6": 0.408666186, "w7": 0.511301270, "w8": 0.561370121}


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-8), ("float32", 1e-7)])
def test_canonical_first_step_equals_published_weights(dtype, tol):
    net, x, t, lr = cprop.examples.canonical_network(dtype)
    loss = net.train_step(x, t, lr)
    assert loss == pytest.approx(0.298371109, abs=1e-9 if dtype == "float64" else 1e-7)
    new = named(CANONICAL, net.weights)
    for k, v in PUBLISHED.items():
        # the published figures are rounded to 8-9 digits: |exact - printed| <= 5e-9
        assert abs(new[k] - v) <= tol, (k, new[k], v)
    np.testing.assert_array_equal(net.biases[0], np.array([0.35, 0.35], dtype=dtype))
    np.testing.assert_array_equal(net.biases[1], np.array([0.60, 0.60], dtype=dtype))


def test_canonical_every_published_figure():
    data, _ = demo_data("canonical")
    for f in data["figures"]:
        tol = 10 ** -(len(f["text"].split(".")[1])) * 0.5 + 1e-12
        if f["check"] == "differs":  # only the figure Mazur computed from a rounded factor
            assert f["label"].startswith("∂E_o2/∂out_h1")
            tol *= 2
        assert abs(f["value"] - float(f["text"])) <= tol, f


def test_canonical_against_oracle_and_hand():
    net, x, t, lr = cprop.examples.canonical_network()
    o = cprop.oracle.MLP([2, 2, 2], seed=0, train_biases=False)
    o.set_params_flat(net.params.tolist())
    assert net.train_step(x, t, lr) == o.train_step(x.tolist(), t.tolist(), lr)
    assert net.params.tolist() == o.params_flat()


def test_demo_json_keys_and_values(capsys):
    from cprop.cli import main

    assert main(["demo", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ["x", "t", "lr", "hidden_net", "hidden_out", "output_net", "output_out", "loss",
                "grad_weights", "grad_biases", "new_weights", "new_biases"]:
        assert key in data, key
    assert data["x"] == [0.05, 0.1] and data["t"] == [0.01, 0.99] and data["lr"] == 0.5
    assert data["hidden_net"] == pytest.approx([0.3325, 0.34], abs=1e-15)
    assert data["output_out"] == pytest.approx([0.7677826238, 0.7830074232], abs=5e-11)
    # weights in the (n_in, n_out) layout: new W2[0][0] is w5, new W2[1][0] is w6
    assert data["new_weights"][1][0][0] == pytest.approx(0.3606590538, abs=5e-11)
    assert data["new_weights"][1][1][0] == pytest.approx(0.4105359051, abs=5e-11)
    assert data["new_biases"] == [[0.3, 0.3], [0.7, 0.7]]
    assert main(["demo", "--json", "--network", "canonical"]) == 0
    can = json.loads(capsys.readouterr().out)
    assert can["new_weights"][0][0][0] == pytest.approx(0.149780716, abs=1e-8)
