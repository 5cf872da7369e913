"""Helpers shared by several test files (finite differences, NumPy reference pieces)."""

import numpy as np


TINY = np.finfo(np.float64).tiny


def rel_err(actual, expected) -> float:
    """Norm-wise relative error ``max|a - b| / max(max|b|, tiny)``."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {a.shape} != expected shape {b.shape}")
    diff = np.max(np.abs(a - b), initial=0.0)
    scale = max(float(np.max(np.abs(b), initial=0.0)), TINY)
    return float(diff / scale)


def fd4(f, x0, h):
    """Fourth-order central difference of the scalar function f at x0."""
    return (-f(x0 + 2 * h) + 8 * f(x0 + h) - 8 * f(x0 - h) + f(x0 - 2 * h)) / (12 * h)


def fd_gradient(net, X, T, sides_of, h, kink_hint):
    """The FD gradient of net.loss over every entry of net.params (perturbed in place).

    ``sides_of(net, X)`` gives the sign pattern of every kinked unit (None for smooth
    networks); each perturbed evaluation asserts it is unchanged, so no FD step straddles a
    relu kink. ``kink_hint`` goes into that assertion's message.
    """
    p = net.params
    sides = sides_of(net, X)
    fd = np.empty(p.shape[0])
    for k in range(p.shape[0]):
        x0 = float(p[k])

        def loss_at(v, k=k):
            p[k] = v
            if sides is not None:
                now = sides_of(net, X)
                assert all(np.array_equal(s, t) for s, t in zip(sides, now)), (
                    f"FD step on params[{k}] crosses a kink; {kink_hint}")
            return net.loss(X, T)

        try:
            fd[k] = fd4(loss_at, x0, h)
        finally:
            p[k] = x0
    return fd


def flat(grad_weights, grad_biases):
    """Gradients as one vector in the layout of ``net.params``."""
    return np.concatenate([np.concatenate([np.asarray(gW, dtype=np.float64).ravel(),
                                           np.asarray(gb, dtype=np.float64).ravel()])
                           for gW, gb in zip(grad_weights, grad_biases)])


def hidden_pre_activations(net, X):
    """Every hidden layer's z = a @ W + b, in NumPy."""
    slope = net.negative_slope
    f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
         "relu": lambda z: np.maximum(z, 0.0),
         "leaky_relu": lambda z: np.where(z > 0, z, slope * z),
         "identity": lambda z: z}[net.hidden]
    a, zs = X, []
    for W, b in zip(net.weights[:-1], net.biases[:-1]):
        z = a @ W + b
        zs.append(z)
        a = f(z)
    return zs
