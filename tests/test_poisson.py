"""``output="exp"`` with ``loss="poisson"``: scikit-learn's ``MLPRegressor(loss="poisson")``.

scikit-learn (>= 1.7) pairs its Poisson loss with an exp output and defines the loss as the half
Poisson deviance ``sum_k xlogy(t, t / y) - t + y`` averaged over samples (``_base.poisson_loss``),
whose gradient at the logits is ``y - t``. cprop computes the same function from the logits,
``t (log t - z) + (e^z - t)`` (no ``t / y``, which overflows where ``y`` underflows), so:

* the loss equals scikit-learn's ``poisson_loss`` (1e-13 relative), with sample weights too;
* the gradient equals ``MLPRegressor._backprop``'s, and SGD epochs equal scikit-learn's;
* the gradient against finite differences and torch's ``PoissonNLLLoss(log_input=True)`` (and
  stability at large logits) are in test_gradcheck_losses.py and test_torch.py; the oracle in
  test_parity_training.py and test_parity_tiny_networks.py.

Also here: targets must be >= 0 (Python and C checks, the oracle), the pairing rules, files and
the ONNX graph (an ``Exp`` node).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.neural_network._base import poisson_loss

import cprop
from cprop import oracle
from parity import assert_rel, flat_gradient


def data(n=10, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)) * 0.5
    T = rng.poisson(1.5, size=(n, n_out)).astype(np.float64)  # counts, zeros included
    T[0, 0] = 0.0
    T[1] = rng.uniform(0.1, 3.0, size=n_out)  # and rates
    return X, T


def net_for(X, T, seed=1, hidden="tanh"):
    return cprop.MLP([X.shape[1], 5, T.shape[1]], hidden=hidden, output="exp", loss="poisson",
                     seed=seed)


@pytest.mark.parametrize("weighted", [False, True])
def test_loss_is_scikit_learns_half_poisson_deviance(weighted):
    X, T = data()
    net = net_for(X, T)
    w = np.random.default_rng(3).uniform(0.2, 2, size=10) if weighted else None
    Y = net.forward(X)
    expected = poisson_loss(T, Y, sample_weight=w)
    assert net.loss(X, T, sample_weight=w) == pytest.approx(expected, rel=1e-13)
    o = oracle.MLP([3, 5, 2], hidden="tanh", output="exp", loss="poisson", seed=1)
    assert o.loss(X.tolist(), T.tolist(), None if w is None else w.tolist()) == net.loss(X, T, w)


def sklearn_pair(X, y, batch_size=4, lr=0.01):
    m = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", solver="sgd", loss="poisson",
                     learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
                     batch_size=batch_size, shuffle=False, max_iter=1, warm_start=True,
                     random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y)
    assert m.out_activation_ == "exp"
    net = cprop.MLP([X.shape[1], 5, 1], hidden="tanh", output="exp", loss="poisson",
                    init=[(W.copy(), b.copy()) for W, b in zip(m.coefs_, m.intercepts_)])
    return m, net


def test_gradient_is_scikit_learns():
    X, T = data(n=9, n_out=1, seed=4)
    y = T[:, 0]
    m, net = sklearn_pair(X, y)
    activations = [X, None, None]
    coef_grads = [np.empty_like(W) for W in m.coefs_]
    intercept_grads = [np.empty_like(b) for b in m.intercepts_]
    loss, cg, ig = m._backprop(X, y.reshape(-1, 1), None, activations, [None, None], coef_grads,
                               intercept_grads)
    assert net.loss(X, y) == pytest.approx(loss, rel=1e-13)
    assert_rel(flat_gradient(*net.gradients(X, y)), flat_gradient(cg, ig), 1e-12, "gradient")


@pytest.mark.parametrize("batch_size", [1, 4, 9])
def test_sgd_epochs_match_scikit_learn(batch_size):
    X, T = data(n=9, n_out=1, seed=5)
    y = T[:, 0]
    m, net = sklearn_pair(X, y, batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.set_params(max_iter=3)
        m.fit(X, y)
    h = net.fit(X, y, epochs=3, lr=0.01, batch_size=batch_size, shuffle=False)
    params = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(m.coefs_,
                                                                            m.intercepts_)])
    assert_rel(net.params, params, 1e-12, "params")
    assert_rel(h.loss, m.loss_curve_[-3:], 1e-12, "loss_curve_")
    np.testing.assert_allclose(net.forward(X)[:, 0], m.predict(X), rtol=1e-12)


def test_training_reduces_the_deviance_and_fits_the_rates():
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, size=(400, 2))
    rate = np.exp(0.5 + X[:, 0] - 0.5 * X[:, 1])
    T = rng.poisson(rate).astype(float).reshape(-1, 1)
    net = cprop.MLP([2, 8, 1], hidden="tanh", output="exp", loss="poisson", seed=0)
    h = net.fit(X, T, epochs=60, lr=0.01, batch_size=32, optimizer="adam", seed=1)
    assert h.loss[-1] < 0.8 * h.loss[0]
    assert np.corrcoef(net.forward(X)[:, 0], rate)[0, 1] > 0.95
    assert (net.forward(X) > 0).all()


# --------------------------------------------------------------------------------------------
# targets, pairing, files, ONNX
# --------------------------------------------------------------------------------------------

def test_targets_must_be_non_negative():
    X, T = data()
    net = net_for(X, T)
    before = net.params.copy()
    bad = T.copy()
    bad[3, 1] = -0.5
    for call in (lambda: net.loss(X, bad), lambda: net.gradients(X, bad),
                 lambda: net.train_step(X, bad, 0.01), lambda: net.fit(X, bad)):
        with pytest.raises(ValueError, match=r"^T: poisson targets must be >= 0 \(counts or "
                                             r"rates\), got -0.5 at row 3"):
            call()
    # the C checks of repeated train_step calls and steppers refuse it too (then raise above)
    net.train_step(X, T, 0.01)
    step = net.stepper(0.01)
    step(X, T)
    before = net.params.copy()
    for call in (lambda: net.train_step(X, bad, 0.01), lambda: step(X, bad)):
        with pytest.raises(ValueError, match="poisson targets must be >= 0"):
            call()
    assert np.array_equal(net.params, before)
    # targets above 1 are fine (counts), unlike the log-losses'
    assert np.isfinite(net.loss(X, T * 100))
    o = oracle.MLP([3, 5, 2], hidden="tanh", output="exp", loss="poisson", seed=1)
    with pytest.raises(ValueError, match="T: poisson targets must be >= 0"):
        o.loss(X.tolist(), bad.tolist())


def test_pairing_rules():
    for output in ("identity", "sigmoid", "softmax"):
        with pytest.raises(ValueError, match=r"loss: 'poisson' needs output='exp'"):
            cprop.MLP([2, 3, 2], output=output, loss="poisson")
        with pytest.raises(ValueError, match=r"needs output='exp'"):
            oracle.MLP([2, 3, 2], output=output, loss="poisson")
    for loss in ("cross_entropy", "binary_cross_entropy"):
        with pytest.raises(ValueError, match="needs output="):
            cprop.MLP([2, 3, 2], output="exp", loss=loss)
    with pytest.raises(ValueError, match="hidden: expected one of"):
        cprop.MLP([2, 3, 2], hidden="exp")
    cprop.MLP([2, 3, 2], output="exp")  # squared_error takes any output


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_load_and_onnx(tmp_path, dtype):
    import onnx
    import onnxruntime as ort

    X, T = data()
    net = cprop.MLP([3, 5, 2], hidden="relu", output="exp", loss="poisson", dtype=dtype, seed=2)
    net.fit(X, T, epochs=3, lr=0.01, batch_size=4, optimizer="adamw", alpha=0.01)
    net.save(tmp_path / "m.npz")
    same = cprop.load(tmp_path / "m.npz")
    assert (same.output, same.loss_name) == ("exp", "poisson")
    assert same.params.tobytes() == net.params.tobytes()
    h1 = net.fit(X, T, epochs=2, lr=0.01, batch_size=4, optimizer="adamw", alpha=0.01)
    h2 = same.fit(X, T, epochs=2, lr=0.01, batch_size=4, optimizer="adamw", alpha=0.01)
    assert h1.loss == h2.loss and same.params.tobytes() == net.params.tobytes()
    net.to_onnx(tmp_path / "m.onnx")
    model = onnx.load(os.fspath(tmp_path / "m.onnx"))
    assert [n.op_type for n in model.graph.node][-1] == "Exp"
    session = ort.InferenceSession(os.fspath(tmp_path / "m.onnx"),
                                   providers=["CPUExecutionProvider"])
    Xd = X.astype(dtype)
    y = session.run(None, {"input": Xd})[0]
    np.testing.assert_allclose(y, net.forward(Xd), rtol=1e-12 if dtype == "float64" else 1e-6)


def test_backprop_values_of_the_poisson_output():
    net = cprop.MLP([2, 2, 1], hidden="tanh", output="exp", loss="poisson", seed=0)
    values = net.backprop_values([0.1, 0.2], [1.0])  # every number of the step, by name
    assert values.layers[-1].delta[0] == pytest.approx(values.layers[-1].a[0] - 1.0, rel=1e-15)
    # explain writes it out (tests/test_cli.py checks the text): the same numbers
    trace = net.explain([0.1, 0.2], [1.0])
    assert trace.layers[-1].delta[0] == values.layers[-1].delta[0]
