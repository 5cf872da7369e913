"""The command line (`cprop demo`, `cprop explain`) and MLP.explain's trace."""

import json
import subprocess
import sys

import numpy as np
import pytest

import cprop
from cprop.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_text_fills_every_blank(capsys):
    code, out, _ = run_cli(capsys, "demo")
    assert code == 0
    # the text's blanks, filled with cprop's exact values
    assert "w6 ←" in out and "0.410535905081" in out
    assert "w1 ← w1 − 0.5·∂E_total/∂w1" in out and "0.149778320847" in out
    # the derivation uses the text's names for the weights
    assert "z_h1 = b1[1] + x1·w1 + x2·w3" in out
    # slips and rounded figures are marked
    assert "≠" in out and "the text's 0.7676 is a slip" in out
    assert "e^−0.3275" in out and "w6·a_h1" in out and "∂E_o2/∂out_h2" in out
    assert "w5 = 0.360659054" in out


def test_demo_canonical_steps(capsys):
    code, out, _ = run_cli(capsys, "demo", "--network", "canonical", "--steps", "100")
    assert code == 0
    assert "w1⁺" in out and "0.149780716" in out
    assert "after step      100" in out
    code, out, _ = run_cli(capsys, "demo", "--network", "canonical", "--steps", "100", "--json")
    data = json.loads(out)
    steps = dict((s, v) for s, v in data["training"]["loss"])
    net, x, t, lr = cprop.examples.canonical_network()
    for _ in range(100):
        net.train_step(x, t, lr)
    assert steps[100] == net.loss(x, t)
    assert steps[1] == pytest.approx(0.2910277737, abs=1e-10)


def test_demo_rejects_bad_options(capsys):
    code, out, err = run_cli(capsys, "demo", "--network", "other")
    assert code == 2 and out == ""
    assert err.splitlines()[-1].startswith("cprop demo: error: --network: invalid choice: "
                                           "'other'")
    code, _, err = run_cli(capsys, "demo", "--steps", "-3")
    assert code == 2
    assert err.splitlines()[-1] == "cprop demo: error: --steps: expected an integer >= 0, got -3"


def test_explain_random_network_matches_oracle(capsys):
    code, out, _ = run_cli(capsys, "explain", "--layers", "3,4,2", "--seed", "0", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["layer_sizes"] == [3, 4, 2]
    o = cprop.oracle.MLP([3, 4, 2], seed=0)
    gw, gb = o.gradients([data["x"]], [data["t"]])
    for l in range(2):
        np.testing.assert_allclose(data["grad_weights"][l], gw[l], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(data["grad_biases"][l], gb[l], rtol=1e-12, atol=1e-15)
    assert data["loss"] == pytest.approx(o.loss([data["x"]], [data["t"]]), rel=1e-14)
    y = o.forward(data["x"])
    np.testing.assert_allclose(data["out"][-1], y, rtol=1e-14)
    # the update is p - lr * g (biases trained by default)
    W0 = np.array(o.weights[0])
    np.testing.assert_allclose(data["new_weights"][0], W0 - 0.5 * np.array(gw[0]), rtol=1e-14)


def test_explain_text_and_options(capsys):
    code, out, _ = run_cli(capsys, "explain", "--layers", "2,3,3,1", "--seed", "5",
                           "--hidden", "tanh", "--x", "0.5,-1", "--t", "0.25")
    assert code == 0
    assert "tanh(z_h1_1)" in out and "1 − h2_3²" in out
    assert "x = (0.5, -1)" in out and "t = (0.25)" in out
    # explain with wrong-length x names the argument
    code, _, err = run_cli(capsys, "explain", "--layers", "2,2", "--x", "1,2,3")
    assert code == 2 and err.startswith("cprop explain: error: --x: expected")
    code, _, err = run_cli(capsys, "explain", "--layers", "2,0,1")
    assert code == 2 and "--layers: a layer width must be an integer >= 1, got 0" in err
    assert "layer_sizes" not in err


def test_explain_does_not_change_the_network():
    net = cprop.MLP([3, 2, 2], seed=3)
    before = net.params.copy()
    tr = net.explain([0.1, 0.2, 0.3], [0.0, 1.0], lr=0.5)
    np.testing.assert_array_equal(net.params, before)
    gw, gb = net.gradients([0.1, 0.2, 0.3], [0.0, 1.0])
    for l in range(2):
        np.testing.assert_array_equal(tr.layers[l].grad_W, gw[l])
        np.testing.assert_array_equal(tr.layers[l].grad_b, gb[l])
    # delta = dE/da * da/dz for every unit, and dE/da of the hidden layer = W_next @ delta_next
    for ly in tr.layers:
        np.testing.assert_allclose(ly.delta, np.multiply(ly.dE_da, ly.da_dz), rtol=1e-15)
    W2 = np.array(tr.layers[1].W)
    np.testing.assert_allclose(tr.layers[0].dE_da, W2 @ np.array(tr.layers[1].delta),
                               rtol=1e-14)
    net.train_step([0.1, 0.2, 0.3], [0.0, 1.0], 0.5)
    after = np.concatenate([np.ravel(tr.layers[0].new_W), tr.layers[0].new_b,
                            np.ravel(tr.layers[1].new_W), tr.layers[1].new_b])
    np.testing.assert_array_equal(net.params, after)


def test_python_dash_m_and_console_script():
    out = subprocess.run([sys.executable, "-m", "cprop", "demo", "--json"], check=True,
                         capture_output=True, text=True).stdout
    data = json.loads(out)
    assert data["hidden_out"] == pytest.approx([0.5823675407, 0.5841905229], abs=5e-11)
    out = subprocess.run([sys.executable, "-m", "cprop", "--version"], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == f"cprop {cprop.__version__}"


PAIRINGS = [("sigmoid", "squared_error"), ("softmax", "squared_error"),
            ("identity", "squared_error"), ("softmax", "cross_entropy"),
            ("sigmoid", "binary_cross_entropy")]


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "leaky_relu", "identity"])
@pytest.mark.parametrize("output,loss", PAIRINGS)
def test_explain_every_loss_and_activation(hidden, output, loss):
    net = cprop.MLP([3, 4, 3], hidden=hidden, output=output, loss=loss, seed=11,
                    negative_slope=0.1)
    x = [0.3, -0.7, 0.2]
    t = [0.0, 1.0, 0.0] if output == "softmax" else [0.2, 0.9, 0.0]
    tr = net.explain(x, t, lr=0.25)
    assert sum(tr.output_losses) == pytest.approx(net.loss(x, t), rel=1e-13)
    gw, gb = net.gradients(x, t)
    for l, ly in enumerate(tr.layers):
        np.testing.assert_array_equal(ly.grad_W, gw[l])
        np.testing.assert_array_equal(ly.grad_b, gb[l])
    out = tr.layers[-1]
    y, tt = np.array(out.a), np.array(t)
    if loss != "squared_error":
        np.testing.assert_allclose(out.delta, y - tt, rtol=0, atol=1e-15)
        assert out.dE_da is None
    elif output == "softmax":
        g = y - tt
        np.testing.assert_allclose(out.delta, y * (g - g @ y), rtol=1e-14, atol=1e-16)
    hidden_layer = tr.layers[0]
    np.testing.assert_allclose(hidden_layer.delta,
                               np.multiply(hidden_layer.dE_da, hidden_layer.da_dz), rtol=1e-15)
    text = str(tr)
    assert "Loss: E" in text and "delta_y3" in text
    if hidden == "leaky_relu":
        assert "0.1·[h1 ≤ 0]" in text


def test_explain_cli_loss_option(capsys):
    code, out, _ = run_cli(capsys, "explain", "--layers", "2,3,3", "--output", "softmax",
                           "--loss", "cross_entropy", "--t", "0,0,1", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["delta"][-1] == pytest.approx(
        [data["out"][-1][0], data["out"][-1][1], data["out"][-1][2] - 1.0], abs=1e-15)
    code, _, err = run_cli(capsys, "explain", "--layers", "2,3,3", "--loss", "cross_entropy")
    assert code == 2
    assert err == ("cprop explain: error: --loss: cross_entropy needs --output softmax, got "
                   "--output sigmoid\n")


def test_explain_default_target_is_valid_for_every_loss(capsys):
    # The tutorial's command: without --t the default target must suit the loss (for
    # cross-entropy a random class, shown one-hot), so it runs instead of exiting 2.
    for loss, output in [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid"),
                         ("squared_error", "identity")]:
        code, out, err = run_cli(capsys, "explain", "--layers", "3,4,2", "--hidden", "tanh",
                                 "--output", output, "--loss", loss, "--json")
        assert code == 0, err
        t = json.loads(out)["t"]
        if loss == "cross_entropy":
            assert sorted(t) == [0.0, 1.0]
        else:
            assert all(0 <= v < 1 for v in t)


def test_explain_t_takes_a_class_label_for_cross_entropy(capsys):
    args = ["explain", "--layers", "3,4,3", "--output", "softmax", "--loss", "cross_entropy",
            "--x", "0.1,-0.2,0.3", "--json"]
    code, out_label, _ = run_cli(capsys, *args, "--t", "2")
    assert code == 0
    code, out_onehot, _ = run_cli(capsys, *args, "--t", "0,0,1")
    assert code == 0 and json.loads(out_label) == json.loads(out_onehot)
    for bad in ("3", "-1", "0.5"):
        code, out, err = run_cli(capsys, *args, "--t", bad)
        assert code == 2 and out == ""
        assert err.startswith("cprop explain: error: --t: a class label for cross_entropy "
                              "must be an integer in [0, 3)"), err


def test_explain_writes_softmax_over_the_whole_layer(capsys):
    code, out, _ = run_cli(capsys, "explain", "--layers", "2,2,2", "--output", "softmax",
                           "--loss", "cross_entropy", "--t", "1")
    assert code == 0
    assert "(y1, y2) = softmax(z_y1, z_y2) = softmax(" in out
    assert "y1 = e^z_y1 / (e^z_y1 + e^z_y2) = " in out
    assert "softmax(z_y1) =" not in out            # not written as if elementwise
    assert "h1 = sigmoid(z_h1) = sigmoid(" in out   # elementwise activations unchanged


def test_explain_exp_output_with_poisson_loss(capsys):
    """The written-out derivation covers the exp output and the half Poisson deviance: its
    per-output terms add up to the kernel's loss, and delta = y − t at the output."""
    net = cprop.MLP([2, 3, 2], output="exp", loss="poisson", seed=4)
    x, t = np.array([0.3, -0.2]), np.array([2.0, 0.0])
    trace = net.explain(x, t, 0.1)
    assert sum(trace.output_losses) == pytest.approx(trace.loss, rel=1e-13)
    assert trace.loss == pytest.approx(net.loss(x, t), rel=1e-15)
    y = trace.layers[-1].a
    np.testing.assert_allclose(trace.layers[-1].delta, [y[0] - 2.0, y[1] - 0.0], rtol=1e-13)
    text = trace.format()
    assert "Loss: E = sum_k [t_k log(t_k / y_k) − t_k + y_k]" in text
    assert "poisson with a exp output: delta = dE/dz = y − t directly" in text
    code, out, _ = run_cli(capsys, "explain", "--layers", "2,3,2", "--output", "exp",
                           "--loss", "poisson", "--seed", "4")
    assert code == 0 and "E_y2 = " in out
    # and the squared error through an exp output writes dy/dz = e^z
    net = cprop.MLP([2, 2, 1], output="exp", loss="squared_error", seed=1)
    assert "dy1/dz_y1 = e^z_y1 = y1 = " in net.explain([0.1, 0.2], [1.0], 0.1).format()
