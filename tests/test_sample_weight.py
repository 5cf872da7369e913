"""``sample_weight`` in ``fit``, ``train_step``, ``run_steps``, ``loss`` and ``gradients``.

The definition is scikit-learn's (``MLPRegressor._backprop``, scikit-learn >= 1.7): a batch's
loss is the weighted mean ``sum_i w_i E_i / sum_i w_i``, its gradient that of the weighted mean
(each row's output delta times its weight, the sums divided by the weights' sum); the epoch's
reported loss is the mean of the batches' losses weighted by their row counts (its
``loss_curve_``); a batch whose weights sum to 0 raises ZeroDivisionError (``np.average``), after
the batches before it were applied. So a weight of 2 is the row repeated within its batch.

Checked here: against scikit-learn itself (loss, gradients, whole epochs, L2 with its
conventions through ``run_steps``, the zero-sum batch); the repeated-row identity; the oracle
(bit for bit in float64, 1e-5 in float32, loops and BLAS); invariances (all-ones weights are the
unweighted run bit for bit, scaling every weight by a power of two changes nothing); the
validation split carrying the weights; and every refused argument naming ``sample_weight``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

import cprop
from cprop import oracle
from cprop.optimizers import check_optimizer
from parity import (DTYPES, as_oracle, assert_rel, assert_same_params, assert_same_state,
                    compiled_and_oracle, flat_gradient, oracle_options, oracle_scalar)


def data(n=12, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    T = rng.uniform(size=(n, n_out))
    w = rng.uniform(0.2, 3.0, size=n)
    return X, T, w


# --------------------------------------------------------------------------------------------
# scikit-learn
# --------------------------------------------------------------------------------------------

def sklearn_pair(X, y, *, alpha=0.0, lr=0.05, batch_size=4, seed=0):
    """A scikit-learn MLPRegressor after one unweighted epoch (its initial weights drawn), set
    up to continue with plain SGD (warm_start), and a cprop network with the same parameters."""
    m = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", solver="sgd",
                     learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False, alpha=alpha,
                     batch_size=batch_size, shuffle=False, max_iter=1, warm_start=True,
                     random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y)
    net = cprop.MLP([X.shape[1], 5, 1], hidden="tanh", output="identity",
                    init=[(W.copy(), b.copy()) for W, b in zip(m.coefs_, m.intercepts_)])
    return m, net


def sklearn_params(m):
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(m.coefs_,
                                                                          m.intercepts_)])


def test_loss_and_gradient_are_scikit_learns():
    X, T, w = data(n=9, n_out=1)
    y = T[:, 0]
    m, net = sklearn_pair(X, y)
    n_layers = 3
    activations = [X] + [None] * (n_layers - 1)
    deltas = [None] * (n_layers - 1)
    coef_grads = [np.empty_like(W) for W in m.coefs_]
    intercept_grads = [np.empty_like(b) for b in m.intercepts_]
    loss, cg, ig = m._backprop(X, y.reshape(-1, 1), w, activations, deltas, coef_grads,
                               intercept_grads)
    # (scikit-learn's squared loss is 1/2 the mean over outputs: cprop's with one output)
    assert net.loss(X, y, sample_weight=w) == pytest.approx(loss, rel=1e-13, abs=0)
    gW, gb = net.gradients(X, y, sample_weight=w)
    assert_rel(flat_gradient(gW, gb), flat_gradient(cg, ig), 1e-12, "weighted gradient")
    # and the weights matter
    assert abs(net.loss(X, y) - loss) > 1e-3 * loss


@pytest.mark.parametrize("batch_size", [1, 4, 5, 9])
def test_weighted_epochs_match_scikit_learn(batch_size):
    X, T, w = data(n=9, n_out=1, seed=1)
    y = T[:, 0]
    m, net = sklearn_pair(X, y, batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.set_params(max_iter=3)
        m.fit(X, y, sample_weight=w)
    h = net.fit(X, y, epochs=3, lr=0.05, batch_size=batch_size, shuffle=False, sample_weight=w)
    assert_rel(net.params, sklearn_params(m), 1e-12, f"params, batch_size {batch_size}")
    assert_rel(h.loss, m.loss_curve_[-3:], 1e-12, f"loss_curve_, batch_size {batch_size}")


@pytest.mark.parametrize("batch_size", [3, 4, 9])
def test_run_steps_with_scikit_learns_l2_matches_scikit_learn(batch_size):
    # sklearn_conventions: alpha divided by each batch's weight sum; l2 holds what scikit-learn
    # adds to its reported loss (1/2 alpha ||W||^2 / weight sum, times the batch's rows).
    X, T, w = data(n=9, n_out=1, seed=2)
    y = T[:, 0]
    m, net = sklearn_pair(X, y, alpha=0.3, batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y, sample_weight=w)
    opt = check_optimizer("sgd", alpha=0.3)
    state = opt.fresh_state(net.n_params, net.dtype, 0.05)
    steps = np.zeros(1, dtype=np.int64)
    failure, epoch_loss, _, l2 = net.run_steps(X, y, 0.05, batch_size, opt, state, steps,
                                               sklearn_conventions=True, sample_weight=w)
    assert failure == 0
    assert_rel(net.params, sklearn_params(m), 1e-12, "params")
    assert (epoch_loss * 9 + l2) / 9 == pytest.approx(m.loss_curve_[-1], rel=1e-12)


def test_a_batch_whose_weights_sum_to_zero_raises_as_scikit_learn_does():
    X, T, _ = data(n=8, n_out=1, seed=3)
    y = T[:, 0]
    w = np.array([1.0, 2.0, 0.0, 0.0, 1.0, 0.5, 1.0, 1.0])  # the second batch of 2 sums to 0
    m, net = sklearn_pair(X, y, batch_size=2)
    with pytest.raises(ZeroDivisionError):
        m.fit(X, y, sample_weight=w)
    rng_before = int(net._rng[0])
    with pytest.raises(ZeroDivisionError, match=r"fit \(epoch 1 of 2\): the sample_weight of a "
                                                r"minibatch sums to 0") as info:
        net.fit(X, y, epochs=2, lr=0.05, batch_size=2, shuffle=False, sample_weight=w)
    assert info.value.history.loss == []
    # the first batch's step was applied, as scikit-learn applied it
    assert_rel(net.params, sklearn_params(m), 1e-12, "params after the refused batch")
    assert int(net._opt_steps[0]) == 1 and int(net._rng[0]) == rng_before
    # the oracle refuses the same batch
    o = oracle.MLP([3, 5, 1], hidden="tanh", output="identity",
                   init=[(W, b) for W, b in zip(net.weights, net.biases)])
    with pytest.raises(ZeroDivisionError, match="epoch 1 of 2"):
        o.fit(X.tolist(), y.tolist(), epochs=2, lr=0.05, batch_size=2, shuffle=False,
              sample_weight=w.tolist())


def test_scikit_learn_floor_has_sample_weight():
    import inspect

    assert "sample_weight" in inspect.signature(MLPRegressor.fit).parameters


# --------------------------------------------------------------------------------------------
# A weight of 2 is the row repeated within its batch
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("opt", [dict(optimizer="sgd"), dict(optimizer="sgd", momentum=0.9),
                                 dict(optimizer="adam"), dict(optimizer="adamw", alpha=0.1)])
def test_weight_two_is_the_row_repeated_in_its_batch(opt):
    X, T, _ = data(n=6, seed=4)
    # train_step: one batch, row 1 weighted 2 == the batch with row 1 twice
    w = np.ones(6)
    w[1] = 2.0
    Xd, Td = np.insert(X, 1, X[1], axis=0), np.insert(T, 1, T[1], axis=0)
    a = cprop.MLP([3, 4, 2], hidden="tanh", seed=7)
    b = cprop.MLP([3, 4, 2], hidden="tanh", seed=7)
    for _ in range(3):
        la = a.train_step(X, T, 0.05, sample_weight=w, **opt)
        lb = b.train_step(Xd, Td, 0.05, **opt)
        assert la == pytest.approx(lb, rel=1e-14)
    assert_rel(a.params, b.params, 1e-13, "train_step")
    assert a.loss(X, T, w) == pytest.approx(b.loss(Xd, Td), rel=1e-14)
    assert_rel(flat_gradient(*a.gradients(X, T, w)), flat_gradient(*b.gradients(Xd, Td)), 1e-13,
               "gradients")
    # fit: batches of 3 over 6 rows, rows 1 and 4 weighted 2 == batches of 4 over the 8 rows
    # with rows 1 and 4 repeated in place (the batches line up), history included
    w = np.array([1.0, 2.0, 1.0, 1.0, 2.0, 1.0])
    rows = [0, 1, 1, 2, 3, 4, 4, 5]
    a = cprop.MLP([3, 4, 2], hidden="tanh", seed=7)
    b = cprop.MLP([3, 4, 2], hidden="tanh", seed=7)
    ha = a.fit(X, T, epochs=4, lr=0.05, batch_size=3, shuffle=False, sample_weight=w, **opt)
    hb = b.fit(X[rows], T[rows], epochs=4, lr=0.05, batch_size=4, shuffle=False, **opt)
    assert_rel(a.params, b.params, 1e-13, "fit")
    assert_rel(ha.loss, hb.loss, 1e-13, "history")
    o = oracle.MLP([3, 4, 2], hidden="tanh", seed=7)
    ho = o.fit(X.tolist(), T.tolist(), epochs=4, lr=0.05, batch_size=3, shuffle=False,
               sample_weight=w.tolist(), **opt)
    assert a.params.tolist() == o.params_flat() and ha.loss == ho.loss


# --------------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------------

NETS = [
    ([3, 4, 2], dict(hidden="tanh", output="sigmoid", loss="squared_error")),
    ([3, 5, 3], dict(hidden="relu", output="softmax", loss="cross_entropy")),
    ([3, 4, 4, 2], dict(hidden="leaky_relu", output="sigmoid", loss="binary_cross_entropy")),
    ([3, 3, 2], dict(hidden="sigmoid", output="identity", loss="squared_error",
                     train_biases=False)),
]
OPTS = [dict(optimizer="sgd"), dict(optimizer="sgd", momentum=0.9, nesterov=True, alpha=1e-3),
        dict(optimizer="adam"), dict(optimizer="adamw", alpha=0.05), dict(optimizer="rprop")]


def targets_for(kw, T):
    if kw["loss"] == "cross_entropy":
        return np.eye(3)[np.argmax(T @ np.ones((T.shape[1], 3)) + np.arange(T.shape[0])[:, None]
                                   % 3, axis=1)]
    return T


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", OPTS, ids=[o["optimizer"] + str(i) for i, o in enumerate(OPTS)])
@pytest.mark.parametrize("net_index", range(len(NETS)))
def test_weighted_training_matches_the_oracle(net_index, opt, dtype):
    sizes, kw = NETS[net_index]
    X, T, w = data(n=11, n_out=sizes[-1], seed=10 + net_index)
    T = targets_for(kw, T)
    w[[2, 7]] = 0.0  # zero weights inside batches
    what = f"{sizes} {kw} {opt} [{dtype}]"
    net, o = compiled_and_oracle(sizes, dtype, seed=21, **kw)
    Xo, To, wo = as_oracle(X, dtype), as_oracle(T, dtype), as_oracle(w, dtype)
    oopt, lr = oracle_options(opt, dtype), 0.03
    olr = oracle_scalar(lr, dtype)
    # loss and gradients
    assert_rel(net.loss(X, T, sample_weight=w), o.loss(Xo, To, sample_weight=wo), dtype,
               f"{what}: loss", "loss")
    assert_rel(flat_gradient(*net.gradients(X, T, sample_weight=w)),
               flat_gradient(*o.gradients(Xo, To, sample_weight=wo)), dtype,
               f"{what}: gradient", "gradient")
    # a train_step, then a shuffled fit with batches of 3 (no batch sums to 0)
    assert_rel(net.train_step(X, T, lr, sample_weight=w, **opt),
               o.train_step(Xo, To, olr, sample_weight=wo, **oopt), dtype, f"{what}: step",
               "train_step loss")
    h = net.fit(X, T, epochs=3, lr=lr, batch_size=3, seed=5, sample_weight=w, **opt)
    ho = o.fit(Xo, To, epochs=3, lr=olr, batch_size=3, seed=5, sample_weight=wo, **oopt)
    if dtype == "float64":
        assert_same_params(net, o, dtype, what)
        assert_same_state(net, o, dtype, what)
        assert net.params.tolist() == o.params_flat(), what
        assert net._opt_state.tolist() == list(o.opt_state), what
        assert h.loss == ho.loss, what
    else:
        # float32 after 4 steps: Rprop's state is a raw minibatch gradient (cancellation), so
        # the fit is held to 1e-4 here; the one-batch quantities above to 1e-5
        assert_rel(h.loss, ho.loss, 1e-4, f"{what}: history")
        assert_rel(net.params, o.params_flat(), 1e-4, f"{what}: params")
        assert_rel(net._opt_state, o.opt_state, 1e-4, f"{what}: optimizer state")


@pytest.mark.parametrize("dtype", DTYPES)
def test_weighted_blas_path_matches_the_oracle(kernel_path, dtype):
    kernel_path("blas")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 24))
    T = rng.uniform(size=(40, 6))
    w = rng.uniform(0, 2, size=40)
    net, o = compiled_and_oracle([24, 32, 6], dtype, hidden="tanh", seed=3)
    h = net.fit(X, T, epochs=2, lr=0.05, batch_size=16, seed=1, sample_weight=w,
                optimizer="adam")
    ho = o.fit(as_oracle(X, dtype), as_oracle(T, dtype), epochs=2, lr=oracle_scalar(0.05, dtype),
               batch_size=16, seed=1, sample_weight=as_oracle(w, dtype), optimizer="adam")
    tol = 1e-11 if dtype == "float64" else "float32"
    assert_rel(net.params, o.params_flat(), tol, "params (gemm)")
    assert_rel(h.loss, ho.loss, tol, "history (gemm)")


# --------------------------------------------------------------------------------------------
# Invariances
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 4, 12])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_unit_weights_are_the_unweighted_run_bit_for_bit(kernel_path, batch_size, optimizer):
    # (the loop path: an unweighted batch may take a special route, bit-identical to the
    # general one on the loops, which the weighted batches take)
    kernel_path("loops")
    X, T, _ = data(seed=6)
    a = cprop.MLP([3, 6, 2], hidden="relu", seed=2)
    b = cprop.MLP([3, 6, 2], hidden="relu", seed=2)
    ha = a.fit(X, T, epochs=3, lr=0.05, batch_size=batch_size, seed=9, optimizer=optimizer,
               sample_weight=np.ones(12))
    hb = b.fit(X, T, epochs=3, lr=0.05, batch_size=batch_size, seed=9, optimizer=optimizer)
    assert a.params.tobytes() == b.params.tobytes() and ha.loss == hb.loss
    assert a.loss(X, T, sample_weight=np.ones(12)) == a.loss(X, T)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scaling_every_weight_by_a_power_of_two_changes_nothing(dtype):
    X, T, w = data(seed=7)
    a = cprop.MLP([3, 4, 2], seed=2, dtype=dtype)
    b = cprop.MLP([3, 4, 2], seed=2, dtype=dtype)
    ha = a.fit(X, T, epochs=2, lr=0.1, batch_size=5, seed=3, sample_weight=w)
    hb = b.fit(X, T, epochs=2, lr=0.1, batch_size=5, seed=3, sample_weight=w * 8)
    assert a.params.tobytes() == b.params.tobytes() and ha.loss == hb.loss


def test_weights_only_move_the_weighted_rows_loss():
    # A row of weight 0 contributes nothing: training on the other rows alone (one batch).
    X, T, w = data(seed=8)
    w[[0, 5]] = 0
    keep = np.flatnonzero(w)
    a = cprop.MLP([3, 4, 2], seed=2)
    b = cprop.MLP([3, 4, 2], seed=2)
    a.fit(X, T, epochs=3, lr=0.1, batch_size=12, shuffle=False, sample_weight=w)
    b.fit(X[keep], T[keep], epochs=3, lr=0.1, batch_size=12, shuffle=False,
          sample_weight=w[keep])
    assert_rel(a.params, b.params, 1e-14, "zero-weight rows")


# --------------------------------------------------------------------------------------------
# Validation data and the held-out split
# --------------------------------------------------------------------------------------------

def test_validation_fraction_carries_the_weights():
    X, T, w = data(n=20, seed=9)
    net = cprop.MLP([3, 4, 2], seed=2)
    train, val = cprop.validation_split(20, 0.25, seed=11)
    h = net.fit(X, T, epochs=3, lr=0.1, batch_size=4, seed=11, validation_fraction=0.25,
                sample_weight=w)
    # the same rows and weights by hand: ref's generator reseeded with 11 draws the same split,
    # then the same shuffles
    ref = cprop.MLP([3, 4, 2], seed=2)
    ref._rng[0] = 11
    assert all(np.array_equal(a, b) for a, b in zip(ref.validation_split(20, 0.25),
                                                    (train, val)))
    href = ref.fit(X[train], T[train], epochs=3, lr=0.1, batch_size=4, sample_weight=w[train],
                   validation_data=(X[val], T[val], w[val]))
    assert net.params.tobytes() == ref.params.tobytes()
    assert h.loss == href.loss and h.val_loss == href.val_loss
    assert h.val_loss[-1] == net.loss(X[val], T[val], sample_weight=w[val])
    o = oracle.MLP([3, 4, 2], seed=2)
    ho = o.fit(X.tolist(), T.tolist(), epochs=3, lr=0.1, batch_size=4, seed=11,
               validation_fraction=0.25, sample_weight=w.tolist())
    assert ho.val_loss == h.val_loss and o.params_flat() == net.params.tolist()


def test_validation_data_weights():
    X, T, w = data(n=10, seed=12)
    net = cprop.MLP([3, 4, 2], seed=2)
    h = net.fit(X[:6], T[:6], epochs=2, lr=0.1, validation_data=(X[6:], T[6:], w[6:]),
                early_stopping=True, patience=5)
    assert h.val_loss[-1] == net.loss(X[6:], T[6:], w[6:]) != net.loss(X[6:], T[6:])
    # None as the third entry: unweighted
    h = net.fit(X[:6], T[:6], epochs=1, validation_data=(X[6:], T[6:], None))
    assert h.val_loss[-1] == net.loss(X[6:], T[6:])


# --------------------------------------------------------------------------------------------
# Errors: every refusal names the argument and changes nothing
# --------------------------------------------------------------------------------------------

BAD = [
    ([1.0, 2.0], ValueError, r"sample_weight: expected one weight per sample, shape \(6,\), "
                             r"got shape \(2,\)"),
    (np.ones((6, 1)), ValueError, r"sample_weight: expected one weight per sample"),
    (2.0, ValueError, r"sample_weight: expected one weight per sample"),
    ([1, 1, -1, 1, 1, 1], ValueError, r"sample_weight: weights must be >= 0, got -1 at index 2"),
    ([1, 1, np.nan, 1, 1, 1], ValueError, r"sample_weight: contains NaN or infinity"),
    ([1, 1, np.inf, 1, 1, 1], ValueError, r"sample_weight: contains NaN or infinity"),
    (np.zeros(6), ValueError, r"sample_weight: the weights are all 0"),
    ([1e308] * 6, ValueError, r"sample_weight: the weights' sum overflows"),
    (["a"] * 6, TypeError, r"sample_weight: expected an array of real numbers"),
    ([1 + 1j] * 6, TypeError, r"sample_weight: expected real numbers"),
    ([], ValueError, r"sample_weight: expected a non-empty array"),
]


@pytest.mark.parametrize("bad,exc,message", BAD, ids=[m[:40] for _, _, m in BAD])
def test_bad_weights_are_refused_everywhere_naming_the_argument(bad, exc, message):
    X, T, _ = data(n=6, seed=13)
    net = cprop.MLP([3, 4, 2], seed=2)
    net.fit(X, T, epochs=1, optimizer="adam", lr=0.01)
    before = net.state_dict()
    opt = check_optimizer("sgd")
    calls = [
        lambda: net.fit(X, T, epochs=2, sample_weight=bad),
        lambda: net.train_step(X, T, 0.1, sample_weight=bad),
        lambda: net.loss(X, T, sample_weight=bad),
        lambda: net.gradients(X, T, sample_weight=bad),
        lambda: net.loss_and_gradient(X, T, sample_weight=bad),
        lambda: net.run_steps(X, T, 0.1, 2, opt, np.empty(0), np.zeros(1, dtype=np.int64),
                              sample_weight=bad),
    ]
    for call in calls:
        with pytest.raises(exc, match=message):
            call()
    after = net.state_dict()
    assert all(np.array_equal(before[k], after[k]) if isinstance(before[k], np.ndarray)
               else before[k] == after[k] for k in before)
    o = oracle.MLP([3, 4, 2], seed=2)
    with pytest.raises((TypeError, ValueError), match="sample_weight"):
        o.fit(X.tolist(), T.tolist(), sample_weight=np.asarray(bad).tolist() if np.ndim(bad)
              else bad)


def test_held_out_weights_all_zero_are_refused_without_drawing():
    X, T, _ = data(n=8, seed=14)
    w = np.array([1, 1, 1, 1, 1, 1, 0, 0.0])
    net = cprop.MLP([3, 4, 2], seed=2)
    rng = int(net._rng[0])
    with pytest.raises(ValueError, match=r"sample_weight: the held-out rows of "
                                         r"validation_fraction=0.25 all have weight 0"):
        net.fit(X, T, validation_fraction=0.25, shuffle=False, sample_weight=w)
    assert int(net._rng[0]) == rng
    with pytest.raises(ValueError, match="rows left to train on"):
        net.fit(X, T, validation_fraction=0.25, shuffle=False, sample_weight=1 - w)
    with pytest.raises(ValueError, match=r"validation_data\[2\]: weights must be >= 0"):
        net.fit(X, T, validation_data=(X, T, -np.ones(8)))
    with pytest.raises(ValueError, match=r"validation_data: expected a pair"):
        net.fit(X, T, validation_data=(X, T, None, None))
    o = oracle.MLP([3, 4, 2], seed=2)
    with pytest.raises(ValueError, match="held-out rows"):
        o.fit(X.tolist(), T.tolist(), validation_fraction=0.25, shuffle=False,
              sample_weight=w.tolist())


def test_weights_with_class_labels_and_one_sample():
    X, _, w = data(n=6, seed=15)
    labels = np.array([0, 2, 1, 1, 0, 2])
    net = cprop.MLP([3, 4, 3], output="softmax", loss="cross_entropy", seed=2)
    assert net.loss(X, labels, sample_weight=w) == net.loss(X, np.eye(3)[labels], w)
    # one sample (1-D x): one weight, in a 1-element array
    assert net.loss(X[0], labels[0], sample_weight=[3.0]) == net.loss(X[0], labels[0])
    with pytest.raises(ValueError, match=r"sample_weight: expected one weight per sample, "
                                         r"shape \(1,\)"):
        net.loss(X[0], labels[0], sample_weight=[1.0, 2.0])


def test_run_steps_weights_follow_the_rows_of_x_whatever_the_order():
    # sample_weight is indexed like X: visiting the rows in `order` uses each row's own weight.
    X, T, w = data(n=10, seed=16)
    order = np.array([9, 3, 3, 0, 7, 1, 2, 8])
    opt = check_optimizer("adam")
    a = cprop.MLP([3, 4, 2], seed=2)
    b = cprop.MLP([3, 4, 2], seed=2)
    sa = opt.fresh_state(a.n_params, a.dtype, 0.01)
    sb = opt.fresh_state(b.n_params, b.dtype, 0.01)
    ka, kb = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    ra = a.run_steps(X, T, 0.01, 3, opt, sa, ka, order=order, sample_weight=w)
    rb = b.run_steps(X[order], T[order], 0.01, 3, opt, sb, kb, sample_weight=w[order])
    assert ra == rb and a.params.tobytes() == b.params.tobytes() and ka[0] == kb[0] == 3
