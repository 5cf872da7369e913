"""fit() options a user steers: schedules, validation, early stopping, callbacks, progress,
optimizer state across calls, and their errors."""

import io
import math

import numpy as np
import pytest

import cprop
from cprop.schedules import Cosine, InverseScaling, Step


def data(n=40, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    T = rng.uniform(size=(n, n_out))
    return X, T


def net(**kw):
    return cprop.MLP([3, 5, 2], seed=7, **kw)


@pytest.mark.parametrize("schedule,expected", [
    ("constant", [0.2] * 6),
    ("invscaling", [0.2 / math.sqrt(e + 1) for e in range(6)]),
    ("step", [0.2] * 6),
    (Step(step_size=2, gamma=0.5), [0.2, 0.2, 0.1, 0.1, 0.05, 0.05]),
    ("cosine", [0.1 * (1 + math.cos(math.pi * e / 6)) for e in range(6)]),
    (Cosine(lr_min=0.05), [0.05 + 0.075 * (1 + math.cos(math.pi * e / 6)) for e in range(6)]),
    (InverseScaling(power_t=1.0), [0.2 / (e + 1) for e in range(6)]),
])
def test_schedules_set_each_epochs_rate(schedule, expected):
    X, T = data()
    a = net()
    h = a.fit(X, T, epochs=6, lr=0.2, batch_size=8, lr_schedule=schedule, shuffle=False)
    assert h.lr == pytest.approx(expected, rel=1e-15)
    # the same as six one-epoch fits at those rates
    b = net()
    for lr_e in h.lr:
        b.fit(X, T, epochs=1, lr=lr_e, batch_size=8, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)


def test_bad_schedules():
    X, T = data()
    with pytest.raises(ValueError, match="lr_schedule"):
        net().fit(X, T, lr_schedule="exponential")
    with pytest.raises(ValueError, match="Step.gamma"):
        Step(gamma=0)
    with pytest.raises(ValueError, match="lr_schedule"):
        # 0.5 ** 200 underflows float32 to 0 by epoch 200
        cprop.MLP([3, 2], dtype="float32", seed=0).fit(
            X, T, epochs=200, lr=1e-3, lr_schedule=Step(step_size=1, gamma=0.5))


def test_validation_data_recorded_and_not_trained_on():
    X, T = data()
    Xv, Tv = data(n=10, seed=1)
    a = net()
    h = a.fit(X, T, epochs=3, lr=0.1, validation_data=(Xv, Tv), seed=0)
    assert len(h.val_loss) == 3
    assert h.val_loss[-1] == a.loss(Xv, Tv)
    b = net()
    b.fit(X, T, epochs=3, lr=0.1, seed=0)
    np.testing.assert_array_equal(a.params, b.params)  # validation data changes nothing


def test_validation_fraction_holds_out_rows():
    X, T = data(n=20)
    a = net()
    h = a.fit(X, T, epochs=2, lr=0.1, validation_fraction=0.25, shuffle=False)
    # shuffle=False: the last 5 rows are held out
    assert h.val_loss[-1] == a.loss(X[15:], T[15:])
    b = net()
    b.fit(X[:15], T[:15], epochs=2, lr=0.1, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)
    c = net()
    hc = c.fit(X, T, epochs=2, lr=0.1, validation_fraction=0.25, shuffle=True, seed=3)
    assert len(hc.val_loss) == 2
    with pytest.raises(ValueError, match="validation_fraction"):
        net().fit(X[:2], T[:2], validation_fraction=0.9)
    with pytest.raises(ValueError, match="validation_fraction"):
        net().fit(X, T, validation_fraction=1.0)
    with pytest.raises(ValueError, match="not both"):
        net().fit(X, T, validation_fraction=0.2, validation_data=(X, T))
    with pytest.raises(ValueError, match=r"validation_data\[0\]"):
        net().fit(X, T, validation_data=(X[:, :2], T))
    with pytest.raises(ValueError, match="validation_data"):
        net().fit(X, T, validation_data=X)


def test_early_stopping_restores_best_parameters():
    X, T = data()
    Xv, Tv = data(n=10, seed=5)
    a = net()
    # a large learning rate on noise: the validation loss stops improving quickly
    h = a.fit(X, T, epochs=500, lr=2.0, batch_size=4, validation_data=(Xv, Tv),
              early_stopping=True, patience=3, seed=1)
    assert h.stop_reason == "early_stopping"
    assert h.best_epoch == int(np.argmin(h.val_loss))
    assert len(h.loss) == h.best_epoch + 1 + 3
    assert a.loss(Xv, Tv) == pytest.approx(min(h.val_loss), rel=1e-15)


def test_early_stopping_min_delta_and_training_loss():
    X, T = data()
    h = net().fit(X, T, epochs=100, lr=0.05, early_stopping=True, patience=2, min_delta=1.0)
    # nothing improves by more than 1.0: stops after 1 + patience epochs
    assert h.stop_reason == "early_stopping" and len(h.loss) == 3 and h.best_epoch == 0


def test_callbacks_see_history_and_can_stop():
    X, T = data()
    seen = []

    def record(model, history):
        seen.append((model, history.epochs, history.loss[-1]))

    def stop_at_4(model, history):
        return history.epochs == 4

    a = net()
    h = a.fit(X, T, epochs=10, lr=0.1, callbacks=[record, stop_at_4])
    assert h.stop_reason == "callback" and h.epochs == 4
    assert [s[1] for s in seen] == [1, 2, 3, 4] and all(s[0] is a for s in seen)
    assert [s[2] for s in seen] == h.loss
    h = net().fit(X, T, epochs=2, callbacks=record)  # a single callable works too
    assert h.stop_reason == "max_epochs"
    with pytest.raises(TypeError, match=r"callbacks\[0\]"):
        net().fit(X, T, callbacks=[3])


def test_progress_bar_writes_to_stderr(monkeypatch):
    tqdm = pytest.importorskip("tqdm")  # a declared test extra: always present in CI
    X, T = data()
    buffer = io.StringIO()
    monkeypatch.setattr("sys.stderr", buffer)
    h = net().fit(X, T, epochs=3, lr=0.1, progress=True)
    assert h.epochs == 3
    text = buffer.getvalue()
    assert "fit:" in text and "/3" in text and f"loss={h.loss[0]:.4g}" in text
    buffer.truncate(0)
    net().fit(X, T, epochs=3, progress=None)  # not a terminal: no bar
    assert buffer.getvalue() == ""
    assert tqdm is not None


def test_divergence_names_epoch_and_lr_and_keeps_finite_params():
    X, T = data()
    a = cprop.MLP([3, 5, 2], hidden="identity", output="identity", seed=1)
    with pytest.raises(FloatingPointError, match=r"epoch \d+ of 50.*lr=") as info:
        a.fit(X * 1e3, T, epochs=50, lr=50.0, batch_size=4)
    assert np.isfinite(a.params).all()
    assert len(info.value.history.loss) < 50


@pytest.mark.parametrize("optimizer,options", [
    ("sgd", {}), ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("adam", {}), ("adamw", {"alpha": 0.1}), ("rprop", {}),
])
def test_optimizer_state_carries_over_between_fit_calls(optimizer, options):
    X, T = data()
    a, b = net(), net()
    a.fit(X, T, epochs=2, lr=0.01, batch_size=8, optimizer=optimizer, **options)
    b.fit(X, T, epochs=1, lr=0.01, batch_size=8, optimizer=optimizer, **options)
    b.fit(X, T, epochs=1, lr=0.01, batch_size=8, optimizer=optimizer, **options)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a._opt_state, b._opt_state)
    assert a._opt_steps[0] == b._opt_steps[0] == 2 * 5


def test_changing_optimizer_options_starts_fresh_state():
    X, T = data()
    a = net()
    a.fit(X, T, epochs=1, lr=0.01, batch_size=8, optimizer="adam", shuffle=False)
    params = a.params.copy()
    a.fit(X, T, epochs=1, lr=0.01, batch_size=8, optimizer="adam", beta1=0.8, shuffle=False)
    b = net()
    b.params[:] = params
    b.fit(X, T, epochs=1, lr=0.01, batch_size=8, optimizer="adam", beta1=0.8, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)
    # train_step shares the state with fit
    c, d = net(), net()
    c.fit(X, T, epochs=1, lr=0.01, batch_size=40, optimizer="adam", shuffle=False)
    c.train_step(X, T, 0.01, optimizer="adam")
    d.train_step(X, T, 0.01, optimizer="adam")
    d.train_step(X, T, 0.01, optimizer="adam")
    np.testing.assert_array_equal(c.params, d.params)
    c.reset_optimizer()
    assert c._opt_steps[0] == 0 and not c._opt_state.any()


@pytest.mark.parametrize("kwargs,name", [
    ({"optimizer": "lbfgs"}, "optimizer"), ({"momentum": 1.0}, "momentum"),
    ({"momentum": -0.1}, "momentum"), ({"nesterov": True}, "nesterov"),
    ({"optimizer": "adam", "momentum": 0.5}, "momentum"), ({"beta1": 1.0}, "beta1"),
    ({"beta2": -1}, "beta2"), ({"eps": 0}, "eps"), ({"alpha": -1e-3}, "alpha"),
    ({"alpha": float("nan")}, "alpha"), ({"patience": 0}, "patience"),
    ({"min_delta": -1}, "min_delta"), ({"early_stopping": 1}, "early_stopping"),
    ({"nesterov": 1}, "nesterov"), ({"beta1": "0.9"}, "beta1"),
])
def test_bad_fit_options_name_the_argument(kwargs, name):
    X, T = data()
    a = net()
    before = a.params.copy()
    with pytest.raises((ValueError, TypeError)) as info:
        a.fit(X, T, **kwargs)
    assert name in str(info.value)
    np.testing.assert_array_equal(a.params, before)


def test_alpha_is_l2_on_weights_only():
    X, T = data()
    a, b = net(), net()
    a.train_step(X, T, 0.1, alpha=0.5)
    b.train_step(X, T, 0.1)
    gw, gb = net().gradients(X, T)
    start = net()
    for l in range(2):
        np.testing.assert_allclose(
            a.weights[l], start.weights[l] - 0.1 * (gw[l] + 0.5 * start.weights[l]), rtol=1e-15)
        np.testing.assert_array_equal(a.biases[l], b.biases[l])


@pytest.mark.parametrize("init", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal"])
def test_initialisers_have_their_scale(init):
    n_in, n_out = 400, 300
    W = cprop.MLP([n_in, n_out], init=init, seed=0).weights[0]
    if init.endswith("uniform"):
        limit = math.sqrt(6 / (n_in + n_out) if init.startswith("glorot") else 6 / n_in)
        assert np.abs(W).max() <= limit and np.abs(W).max() > 0.99 * limit
        std = limit / math.sqrt(3)
    else:
        std = math.sqrt(2 / (n_in + n_out) if init.startswith("glorot") else 2 / n_in)
    assert W.std() == pytest.approx(std, rel=0.01)
    assert abs(W.mean()) < 0.01 * std


def test_user_initial_parameters():
    W0, b0 = np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0])
    W1, b1 = np.ones((2, 1)), np.array([0.5])
    a = cprop.MLP([3, 2, 1], init=[(W0, b0), (W1, b1)], seed=0)
    np.testing.assert_array_equal(a.weights[0], W0)
    np.testing.assert_array_equal(a.biases[1], b1)
    assert a.init == "user"
    with pytest.raises(ValueError, match=r"init\[0\]\[0\]: expected shape \(3, 2\)"):
        cprop.MLP([3, 2, 1], init=[(W0.T, b0), (W1, b1)])
    with pytest.raises(ValueError, match="init: expected 2"):
        cprop.MLP([3, 2, 1], init=[(W0, b0)])
    with pytest.raises(ValueError, match="init"):
        cprop.MLP([3, 2, 1], init="xavier")


def test_cross_entropy_labels_and_target_checks():
    X, _ = data(n=6)
    labels = np.array([0, 1, 2, 2, 1, 0])
    a = cprop.MLP([3, 4, 3], output="softmax", loss="cross_entropy", seed=0)
    one_hot = np.eye(3)[labels]
    assert a.loss(X, labels) == a.loss(X, one_hot)
    assert a.loss(X[0], 0) == a.loss(X[0], one_hot[0])
    with pytest.raises(ValueError, match=r"class labels must be integers in \[0, 3\)"):
        a.loss(X, labels + 1)
    with pytest.raises(ValueError, match="targets must lie in"):
        a.loss(X, one_hot * 2)
    with pytest.raises(ValueError, match="needs output='softmax'"):
        cprop.MLP([3, 3], loss="cross_entropy")
    with pytest.raises(ValueError, match="needs output='sigmoid'"):
        cprop.MLP([3, 3], output="softmax", loss="binary_cross_entropy")
    with pytest.raises(ValueError, match="at least 2 outputs"):
        cprop.MLP([3, 1], output="softmax")


def test_stable_losses_at_extreme_logits():
    X = np.array([[1.0, -1.0]])
    ce = cprop.MLP([2, 3], output="softmax", loss="cross_entropy", seed=0,
                   init=[(np.array([[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0]]), np.zeros(3))])
    with np.errstate(all="raise"):
        assert ce.loss(X, [[0.0, 1.0, 0.0]]) == 2000.0
        assert ce.loss(X, [[1.0, 0.0, 0.0]]) == 0.0
        np.testing.assert_array_equal(ce.forward(X), [[1.0, 0.0, 0.0]])
    bce = cprop.MLP([2, 1], output="sigmoid", loss="binary_cross_entropy", seed=0,
                    init=[(np.array([[1000.0], [0.0]]), np.zeros(1))])
    with np.errstate(all="raise"):
        assert bce.loss(X, [[0.0]]) == 1000.0
        assert bce.loss(X, [[1.0]]) == 0.0
        gw, _ = bce.gradients(X, [[0.0]])
        np.testing.assert_array_equal(gw[0], [[1.0], [-1.0]])


def test_cross_entropy_target_rows_must_sum_to_one():
    # Regression: rows in [0, 1] summing to s != 1 have gradient s*y - t, not the fused y - t
    # (found by tests/test_torch.py); they are refused rather than given a wrong gradient.
    a = cprop.MLP([2, 3], output="softmax", loss="cross_entropy", seed=0)
    X = np.array([[0.3, -0.7], [0.1, 0.2]])
    for method in (a.loss, a.gradients, a.train_step):
        with pytest.raises(ValueError, match="row 0 sums to 0.5"):
            method(X, [[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert np.isfinite(a.loss(X, [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]))  # soft targets are fine


def test_every_callback_runs_and_numpy_true_stops():
    X, T = data()
    calls = []

    def first(model, history):
        calls.append(("first", history.epochs))
        return np.float64(history.loss[-1]) < np.float64(10.0)  # np.True_ at epoch 1

    def second(model, history):
        calls.append(("second", history.epochs))

    h = net().fit(X, T, epochs=5, callbacks=[first, second])
    assert h.stop_reason == "callback" and h.epochs == 1
    assert calls == [("first", 1), ("second", 1)]
