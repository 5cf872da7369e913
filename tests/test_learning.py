"""Real learning: scikit-learn's bundled digits with a 64-32-10 softmax + cross-entropy + Adam."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import cprop


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_digits_reaches_95_percent_held_out(digits, seed, dtype):
    Xtr, Xte, ytr, yte = digits
    net = cprop.MLP([64, 32, 10], hidden="sigmoid", output="softmax", loss="cross_entropy",
                    dtype=dtype, seed=seed)
    history = net.fit(Xtr, ytr, epochs=30, lr=0.01, batch_size=32, optimizer="adam", seed=seed)
    accuracy = float((net.forward(Xte).argmax(axis=1) == yte).mean())
    assert accuracy >= 0.95, accuracy
    assert history.loss[-1] < 0.1 < history.loss[0]
    assert net.forward(Xte).dtype == np.dtype(dtype)


def test_digits_early_stopping_on_validation(digits):
    Xtr, Xte, ytr, yte = digits
    net = cprop.MLP([64, 32, 10], hidden="relu", output="softmax", loss="cross_entropy", seed=3)
    h = net.fit(Xtr, ytr, epochs=200, lr=0.01, batch_size=32, optimizer="adam",
                validation_fraction=0.2, early_stopping=True, patience=5)
    assert h.stop_reason == "early_stopping"
    assert len(h.loss) < 200 and len(h.val_loss) == len(h.loss)
    # the restored parameters are the best epoch's: their validation loss is the minimum
    assert h.best_epoch == int(np.argmin(h.val_loss))
    assert float((net.forward(Xte).argmax(axis=1) == yte).mean()) >= 0.95
