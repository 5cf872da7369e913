"""The derivation of one backpropagation step, value by value (``MLP.explain``).

A :class:`Trace` holds every number of one SGD step on one sample: each layer's net inputs z
and outputs a, the chain-rule factors dE/da and da/dz, the deltas dE/dz, every gradient and every
updated parameter. The activations, deltas and gradients are the compiled kernels' own numbers
(read from their workspaces); the net inputs z, which the kernel overwrites with f(z), are
recomputed here in the kernel's order of addition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cprop.oracle import activation_derivative

__all__ = ["Trace", "LayerTrace", "build_trace"]

_DERIVATIVE_TEXT = {
    "sigmoid": "{a}(1 − {a})",
    "tanh": "1 − {a}²",
    "relu": "[{a} > 0]",
    "identity": "1",
}


def _num(v: float) -> str:
    return f"{v:.10g}"


def _factor(v: float) -> str:
    """A number as a factor in a product: negative ones in parentheses."""
    return f"({_num(v)})" if v < 0 else _num(v)


def _signed_sum(values) -> str:
    """a + b − c, with each term's sign written once."""
    text = ""
    for k, v in enumerate(values):
        if k == 0:
            text = _num(v)
        else:
            text += f" − {_num(-v)}" if v < 0 else f" + {_num(v)}"
    return text


@dataclass
class LayerTrace:
    """One weight layer's part of the step (index 1 is the first layer after the inputs)."""

    index: int
    activation: str
    a_in: list[float]
    W: list[list[float]]
    b: list[float]
    z: list[float]
    a: list[float]
    dE_da: list[float]  # dE/da_j: for the output layer y - t; below it sum_k W_next[j][k] delta_k
    dE_da_terms: list[list[float]] | None  # the terms W_next[j][k] * delta_next[k] of that sum
    da_dz: list[float]
    delta: list[float]  # dE/dz_j = dE/da_j * da_j/dz_j
    grad_W: list[list[float]]
    grad_b: list[float]
    new_W: list[list[float]]
    new_b: list[float]


@dataclass
class Trace:
    """Every number of one SGD step on one sample; ``print(trace)`` shows the derivation."""

    layer_sizes: list[int]
    loss_name: str
    x: list[float]
    t: list[float]
    lr: float
    train_biases: bool
    loss: float
    output_losses: list[float]  # E_k = 1/2 (t_k - y_k)^2
    layers: list[LayerTrace] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain lists and floats (JSON-ready); weights in the (n_in, n_out) layout."""
        return {
            "layer_sizes": list(self.layer_sizes),
            "x": self.x,
            "t": self.t,
            "lr": self.lr,
            "net": [layer.z for layer in self.layers],
            "out": [layer.a for layer in self.layers],
            "loss": self.loss,
            "output_losses": self.output_losses,
            "dE_da": [layer.dE_da for layer in self.layers],
            "da_dz": [layer.da_dz for layer in self.layers],
            "delta": [layer.delta for layer in self.layers],
            "grad_weights": [layer.grad_W for layer in self.layers],
            "grad_biases": [layer.grad_b for layer in self.layers],
            "new_weights": [layer.new_W for layer in self.layers],
            "new_biases": [layer.new_b for layer in self.layers],
        }

    # -- names used in the printed derivation ----------------------------------------------------

    def unit_name(self, layer: int, j: int) -> str:
        """Name of unit j (0-based) of layer `layer` (0 = inputs): x1, h1 (or h2_1), y1."""
        n_layers = len(self.layer_sizes) - 1
        if layer == 0:
            return f"x{j + 1}"
        if layer == n_layers:
            return f"y{j + 1}"
        if n_layers == 2:
            return f"h{j + 1}"
        return f"h{layer}_{j + 1}"

    @staticmethod
    def weight_name(layer: int, i: int, j: int) -> str:
        return f"W{layer}[{i + 1},{j + 1}]"

    @staticmethod
    def bias_name(layer: int, j: int) -> str:
        return f"b{layer}[{j + 1}]"

    def format(self, weight_names: dict | None = None) -> str:
        """The step-by-step derivation as text.

        ``weight_names`` maps ``(layer, i, j)`` (0-based) to a name to print instead of
        ``W<layer>[i,j]``, e.g. the ``w1 .. w8`` of a textbook example.
        """
        custom = {} if weight_names is None else dict(weight_names)

        def wname(L, i, j):
            return custom.get((L - 1, i, j)) or self.weight_name(L, i, j)

        out: list[str] = []
        w = out.append
        sizes = "-".join(str(s) for s in self.layer_sizes)
        acts = ", ".join(f"layer {ly.index}: {ly.activation}" for ly in self.layers)
        w(f"One SGD step on a {sizes} network ({acts}; loss {self.loss_name}), "
          f"learning rate {_num(self.lr)}")
        w("x = (" + ", ".join(_num(v) for v in self.x) + ")    t = ("
          + ", ".join(_num(v) for v in self.t) + ")")
        w("")
        w("Forward pass: z = b + sum_i a_i·W[i,j], then a = f(z)")
        for ly in self.layers:
            L = ly.index
            for j in range(len(ly.z)):
                u = self.unit_name(L, j)
                terms = " + ".join(
                    f"{self.unit_name(L - 1, i)}·{wname(L, i, j)}"
                    for i in range(len(ly.a_in))
                )
                nums = " + ".join(f"{_factor(ly.a_in[i])}·{_factor(ly.W[i][j])}"
                                  for i in range(len(ly.a_in)))
                w(f"  z_{u} = {self.bias_name(L, j)} + {terms}")
                w(f"       = {_num(ly.b[j])} + {nums} = {_num(ly.z[j])}")
                w(f"  {u} = {ly.activation}(z_{u}) = {ly.activation}({_num(ly.z[j])}) = "
                  f"{_num(ly.a[j])}")
        w("")
        last = self.layers[-1]
        n_layers = len(self.layers)
        w("Loss: E = sum_k 1/2 (t_k − y_k)²")
        for k, e in enumerate(self.output_losses):
            y = self.unit_name(n_layers, k)
            w(f"  E_{y} = 1/2 ({_num(self.t[k])} − {_num(last.a[k])})² = {_num(e)}")
        w(f"  E = " + " + ".join(f"E_{self.unit_name(n_layers, k)}"
                                 for k in range(len(self.output_losses)))
          + f" = {_num(self.loss)}")
        w("")
        w("Backward pass: delta = dE/dz = dE/da · da/dz")
        for ly in reversed(self.layers):
            L = ly.index
            w(f"  layer {L} ({'output' if L == n_layers else 'hidden'}, {ly.activation})")
            for j in range(len(ly.a)):
                u = self.unit_name(L, j)
                if ly.dE_da_terms is None:
                    w(f"    dE/d{u} = {u} − t{j + 1} = {_num(ly.a[j])} − {_num(self.t[j])} = "
                      f"{_num(ly.dE_da[j])}")
                else:
                    nxt = self.layers[L]  # the layer above (0-based list index L)
                    names = " + ".join(
                        f"{wname(L + 1, j, k)}·delta_{self.unit_name(L + 1, k)}"
                        for k in range(len(nxt.delta))
                    )
                    terms = _signed_sum(ly.dE_da_terms[j])
                    w(f"    dE/d{u} = {names}")
                    w(f"           = {terms} = {_num(ly.dE_da[j])}")
                deriv = _DERIVATIVE_TEXT[ly.activation].format(a=u)
                w(f"    d{u}/dz_{u} = {deriv} = {_num(ly.da_dz[j])}")
                w(f"    delta_{u} = {_factor(ly.dE_da[j])} · {_factor(ly.da_dz[j])} = "
                  f"{_num(ly.delta[j])}")
        w("")
        w(f"Gradients dE/dW[i,j] = a_i · delta_j, dE/db_j = delta_j; updates p ← p − "
          f"{_num(self.lr)}·dE/dp")
        for ly in self.layers:
            L = ly.index
            for i in range(len(ly.a_in)):
                for j in range(len(ly.a)):
                    name = wname(L, i, j)
                    w(f"  dE/d{name} = {self.unit_name(L - 1, i)}·delta_{self.unit_name(L, j)}"
                      f" = {_factor(ly.a_in[i])}·{_factor(ly.delta[j])} = {_num(ly.grad_W[i][j])}"
                      f"    {name} ← {_num(ly.W[i][j])} − {_num(self.lr)}·"
                      f"{_factor(ly.grad_W[i][j])} = {_num(ly.new_W[i][j])}")
            for j in range(len(ly.a)):
                name = self.bias_name(L, j)
                update = (f"{name} ← {_num(ly.b[j])} − {_num(self.lr)}·{_factor(ly.grad_b[j])} = "
                          f"{_num(ly.new_b[j])}" if self.train_biases
                          else f"{name} stays {_num(ly.b[j])} (train_biases=False)")
                w(f"  dE/d{name} = delta_{self.unit_name(L, j)} = {_num(ly.grad_b[j])}"
                  f"    {update}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


def build_trace(net, params, x, t, lr, A, D, grad, loss) -> Trace:
    """Assemble a Trace from one sample's kernel workspaces (A: activations, D: deltas)."""
    sizes = net.layer_sizes
    acts = net.activations
    n_layers = len(sizes) - 1
    a_off = np.concatenate([[0], np.cumsum(sizes)])
    new_params = params.copy()
    # The same update as the kernel's sgd_update, in the network's dtype.
    lr_typed = params.dtype.type(lr)
    offset = 0
    layer_views = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w_sl = slice(offset, offset + n_in * n_out)
        b_sl = slice(offset + n_in * n_out, offset + n_in * n_out + n_out)
        new_params[w_sl] = params[w_sl] - lr_typed * grad[w_sl]
        if net.train_biases:
            new_params[b_sl] = params[b_sl] - lr_typed * grad[b_sl]
        layer_views.append((w_sl, b_sl, n_in, n_out))
        offset += n_in * n_out + n_out

    def block(buf, layer):
        return [float(v) for v in buf[a_off[layer] : a_off[layer + 1]]]

    y = block(A, n_layers)
    tt = [float(v) for v in t]
    output_losses = [0.5 * (tk - yk) * (tk - yk) for tk, yk in zip(tt, y)]
    layers: list[LayerTrace] = []
    for l, (w_sl, b_sl, n_in, n_out) in enumerate(layer_views):
        W = params[w_sl].reshape(n_in, n_out)
        b = params[b_sl]
        a_in = block(A, l)
        z = []
        for j in range(n_out):
            s = float(b[j])
            for i in range(n_in):
                s += a_in[i] * float(W[i, j])
            z.append(s)
        layers.append(
            LayerTrace(
                index=l + 1, activation=acts[l], a_in=a_in, W=W.tolist(), b=b.tolist(),
                z=z, a=block(A, l + 1), dE_da=[], dE_da_terms=None, da_dz=[],
                delta=block(D, l + 1),
                grad_W=grad[w_sl].reshape(n_in, n_out).tolist(), grad_b=grad[b_sl].tolist(),
                new_W=new_params[w_sl].reshape(n_in, n_out).tolist(),
                new_b=new_params[b_sl].tolist(),
            )
        )
    for l in reversed(range(n_layers)):
        ly = layers[l]
        ly.da_dz = [activation_derivative(ly.activation, a) for a in ly.a]
        if l == n_layers - 1:
            ly.dE_da = [ak - tk for ak, tk in zip(ly.a, tt)]
        else:
            above = layers[l + 1]
            ly.dE_da_terms = [
                [above.W[j][k] * above.delta[k] for k in range(len(above.delta))]
                for j in range(len(ly.a))
            ]
            ly.dE_da = [sum(terms) for terms in ly.dE_da_terms]
    return Trace(
        layer_sizes=list(sizes), loss_name=net.loss_name, x=[float(v) for v in x], t=tt,
        lr=float(lr), train_biases=net.train_biases, loss=loss, output_losses=output_losses,
        layers=layers,
    )

