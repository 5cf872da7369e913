"""The derivation of one backpropagation step, value by value (``MLP.explain``).

A :class:`Trace` holds every number of one SGD step on one sample: each layer's net inputs z
and outputs a, the chain-rule factors dE/da and da/dz, the deltas dE/dz, every gradient and every
updated parameter. The activations, deltas and gradients are the compiled kernels' own numbers
and the net inputs z are recomputed in the kernel's order of addition, all read by name from
:meth:`cprop.MLP.backprop_values`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import math

from cprop._example_names import EXAMPLE_WEIGHT_NAMES
from cprop.activations import derivative

__all__ = ["Trace", "LayerTrace", "Line", "build_trace", "resolve_weight_names"]

_DERIVATIVE_TEXT = {
    "sigmoid": "{a}(1 − {a})",
    "tanh": "1 − {a}²",
    "relu": "[{a} > 0]",
    "identity": "1",
    "leaky_relu": "[{a} > 0] + {slope}·[{a} ≤ 0]",
    "exp": "e^z_{a} = {a}",
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


@dataclass(frozen=True)
class Line:
    """One line of the printed derivation, the section it is in and what it is about."""

    text: str
    section: str
    refs: tuple  # figure element ids: unit:L:j, edge:L:i:j, bias:L:j


def unit_ref(layer: int, j: int) -> str:
    return f"unit:{layer}:{j}"


def edge_ref(layer: int, i: int, j: int) -> str:
    return f"edge:{layer}:{i}:{j}"


def bias_ref(layer: int, j: int) -> str:
    return f"bias:{layer}:{j}"


def unit_name(layer_sizes, layer: int, j: int) -> str:
    """Name of unit j (0-based) of layer `layer` (0 = inputs): x1, h1 (or h2_1 when deeper), y1."""
    n_layers = len(layer_sizes) - 1
    if layer == 0:
        return f"x{j + 1}"
    if layer == n_layers:
        return f"y{j + 1}"
    if n_layers == 2:
        return f"h{j + 1}"
    return f"h{layer}_{j + 1}"


def resolve_weight_names(weight_names, layer_sizes) -> dict:
    """``weight_names`` as a dict (layer, i, j) -> name (0-based layer), checked against the net.

    Accepts None (no custom names), the name of an example in :mod:`cprop.examples`, a mapping
    name -> (layer, i, j) as ``Example.weight_names`` holds, or (layer, i, j) -> name.
    """
    if weight_names is None:
        return {}
    if isinstance(weight_names, str):
        if weight_names not in EXAMPLE_WEIGHT_NAMES:
            raise ValueError(f"weight_names: expected one of {sorted(EXAMPLE_WEIGHT_NAMES)} or "
                             f"a mapping, got {weight_names!r}")
        weight_names = EXAMPLE_WEIGHT_NAMES[weight_names]
    if not hasattr(weight_names, "items"):
        raise TypeError("weight_names: expected None, an example name or a mapping of names to "
                        f"(layer, i, j), got {type(weight_names).__name__}")
    out = {}
    for key, value in weight_names.items():
        name, pos = (value, key) if isinstance(key, tuple) else (key, value)
        if not isinstance(name, str) or not name:
            raise TypeError(f"weight_names: names must be non-empty strings, got {name!r}")
        try:
            layer, i, j = (int(p) for p in pos)
        except (TypeError, ValueError):
            raise TypeError(f"weight_names: the position of {name!r} must be (layer, i, j), "
                            f"got {pos!r}") from None
        if not (0 <= layer < len(layer_sizes) - 1 and 0 <= i < layer_sizes[layer]
                and 0 <= j < layer_sizes[layer + 1]):
            raise ValueError(f"weight_names: {name!r} at {(layer, i, j)} is not a weight of a "
                             f"{'-'.join(map(str, layer_sizes))} network")
        if (layer, i, j) in out:
            raise ValueError(f"weight_names: two names for the weight at {(layer, i, j)}")
        out[(layer, i, j)] = name
    if len(set(out.values())) != len(out):
        raise ValueError("weight_names: each name must be given once")
    return out


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
    # dE/da_j: for the output layer y - t (squared error; None for the cross-entropies, whose
    # delta y - t is taken through the logits directly); below it sum_k W_next[j][k] delta_k
    dE_da: list[float] | None
    dE_da_terms: list[list[float]] | None  # the terms W_next[j][k] * delta_next[k] of that sum
    da_dz: list[float] | None  # None for a softmax output (a Jacobian, not a factor per unit)
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
    output_losses: list[float]  # each output's term of the loss
    negative_slope: float = 0.01
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

    # -- names used in the printed derivation and the figures -------------------------------------

    def unit_name(self, layer: int, j: int) -> str:
        """Name of unit j (0-based) of layer `layer` (0 = inputs): x1, h1 (or h2_1), y1."""
        return unit_name(self.layer_sizes, layer, j)

    @staticmethod
    def weight_name(layer: int, i: int, j: int) -> str:
        return f"W{layer}[{i + 1},{j + 1}]"

    @staticmethod
    def bias_name(layer: int, j: int) -> str:
        return f"b{layer}[{j + 1}]"

    def format(self, weight_names=None) -> str:
        """The step-by-step derivation as text.

        ``weight_names`` names weights as a textbook example does (``w1 .. w8``) instead of
        ``W<layer>[i,j]``: the name of an example in :mod:`cprop.examples` (``"seed"``,
        ``"canonical"``), a mapping name -> ``(layer, i, j)`` as ``Example.weight_names``, or
        ``(layer, i, j)`` -> name (0-based layer, i from the layer below, j above).
        """
        return "\n".join(line.text for line in self.lines(weight_names))

    def lines(self, weight_names=None) -> list[Line]:
        """The derivation line by line, each with the figure elements it is about.

        ``Line.refs`` names units ``unit:<layer>:<j>`` (layer 0 = the inputs), weights
        ``edge:<layer>:<i>:<j>`` and biases ``bias:<layer>:<j>`` (weight layers from 1), the ids
        that :func:`cprop.figures.draw` gives the drawn elements; ``Line.section`` is
        ``"intro"``, ``"forward"``, ``"loss"``, ``"backward"`` or ``"update"``.
        """
        custom = resolve_weight_names(weight_names, self.layer_sizes)

        def wname(L, i, j):
            return custom.get((L - 1, i, j)) or self.weight_name(L, i, j)

        out: list[Line] = []
        section = "intro"

        def w(text: str, *refs: str) -> None:
            out.append(Line(text, section, tuple(refs)))

        sizes = "-".join(str(s) for s in self.layer_sizes)
        acts = ", ".join(f"layer {ly.index}: {ly.activation}" for ly in self.layers)
        # headings are about every unit (or parameter) of the part they head
        all_units = [unit_ref(L, j) for L, n in enumerate(self.layer_sizes) for j in range(n)]
        computed = all_units[self.layer_sizes[0]:]
        params = [*(edge_ref(ly.index, i, j) for ly in self.layers
                    for i in range(len(ly.a_in)) for j in range(len(ly.a))),
                  *(bias_ref(ly.index, j) for ly in self.layers for j in range(len(ly.a)))]
        w(f"One SGD step on a {sizes} network ({acts}; loss {self.loss_name}), "
          f"learning rate {_num(self.lr)}", *all_units)
        w("x = (" + ", ".join(_num(v) for v in self.x) + ")    t = ("
          + ", ".join(_num(v) for v in self.t) + ")",
          *(unit_ref(0, i) for i in range(len(self.x))),
          *(unit_ref(len(self.layers), k) for k in range(len(self.t))))
        w("")
        section = "forward"
        w("Forward pass: z = b + sum_i a_i·W[i,j], then a = f(z)", *computed)
        for ly in self.layers:
            L = ly.index
            for j in range(len(ly.z)):
                u = self.unit_name(L, j)
                refs = (unit_ref(L, j), bias_ref(L, j),
                        *(edge_ref(L, i, j) for i in range(len(ly.a_in))),
                        *(unit_ref(L - 1, i) for i in range(len(ly.a_in))))
                terms = " + ".join(
                    f"{self.unit_name(L - 1, i)}·{wname(L, i, j)}"
                    for i in range(len(ly.a_in))
                )
                nums = " + ".join(f"{_factor(ly.a_in[i])}·{_factor(ly.W[i][j])}"
                                  for i in range(len(ly.a_in)))
                w(f"  z_{u} = {self.bias_name(L, j)} + {terms}", *refs)
                w(f"       = {_num(ly.b[j])} + {nums} = {_num(ly.z[j])}", *refs)
                if ly.activation != "softmax":
                    w(f"  {u} = {ly.activation}(z_{u}) = {ly.activation}({_num(ly.z[j])}) = "
                      f"{_num(ly.a[j])}", unit_ref(L, j))
            if ly.activation == "softmax":
                # softmax depends on every net input of the layer: written over the whole layer
                units = [self.unit_name(L, j) for j in range(len(ly.z))]
                layer_refs = [unit_ref(L, j) for j in range(len(ly.z))]
                w(f"  ({', '.join(units)}) = softmax({', '.join('z_' + u for u in units)})"
                  f" = softmax({', '.join(_num(v) for v in ly.z)})", *layer_refs)
                exps = (" + ".join(f"e^z_{u}" for u in units) if len(units) <= 3
                        else f"e^z_{units[0]} + … + e^z_{units[-1]}")
                for j, u in enumerate(units):
                    w(f"  {u} = e^z_{u} / ({exps}) = {_num(ly.a[j])}", *layer_refs)
        w("")
        section = "loss"
        last = self.layers[-1]
        n_layers = len(self.layers)
        outputs = [unit_ref(n_layers, k) for k in range(len(self.output_losses))]
        w({"squared_error": "Loss: E = sum_k 1/2 (t_k − y_k)²",
           "cross_entropy": "Loss: E = −sum_k t_k log y_k = sum_k t_k (logsumexp(z) − z_k)",
           "binary_cross_entropy": "Loss: E = −sum_k [t_k log y_k + (1 − t_k) log(1 − y_k)]"
                                   " = sum_k softplus(z_k) − t_k z_k",
           "poisson": "Loss: E = sum_k [t_k log(t_k / y_k) − t_k + y_k] (half the Poisson "
                      "deviance) = sum_k [e^z_k − t_k z_k + t_k log t_k − t_k]",
           }[self.loss_name],
          *outputs)
        for k, e in enumerate(self.output_losses):
            y = self.unit_name(n_layers, k)
            if self.loss_name == "squared_error":
                w(f"  E_{y} = 1/2 ({_num(self.t[k])} − {_num(last.a[k])})² = {_num(e)}",
                  outputs[k])
            elif self.loss_name == "poisson":
                tk = self.t[k]
                const = (tk * math.log(tk) if tk > 0 else 0.0) - tk
                w(f"  E_{y} = {_num(last.a[k])} − {_num(tk)}·{_factor(last.z[k])} + "
                  f"{_factor(const)} = {_num(e)}", outputs[k])
            elif self.loss_name == "cross_entropy":
                w(f"  E_{y} = {_num(self.t[k])}·(logsumexp(z) − {_factor(last.z[k])}) = "
                  f"{_num(e)}", *outputs)
            else:
                w(f"  E_{y} = softplus({_num(last.z[k])}) − {_num(self.t[k])}·"
                  f"{_factor(last.z[k])} = {_num(e)}", outputs[k])
        w("  E = " + " + ".join(f"E_{self.unit_name(n_layers, k)}"
                                 for k in range(len(self.output_losses)))
          + f" = {_num(self.loss)}", *outputs)
        w("")
        section = "backward"
        w("Backward pass: delta = dE/dz = dE/da · da/dz", *computed)
        for ly in reversed(self.layers):
            L = ly.index
            w(f"  layer {L} ({'output' if L == n_layers else 'hidden'}, {ly.activation})",
              *(unit_ref(L, j) for j in range(len(ly.a))))
            if ly.dE_da is None or ly.da_dz is None:
                self._fused_delta_lines(w, ly)
                continue
            for j in range(len(ly.a)):
                u = self.unit_name(L, j)
                if ly.dE_da_terms is None:
                    w(f"    dE/d{u} = {u} − t{j + 1} = {_num(ly.a[j])} − {_num(self.t[j])} = "
                      f"{_num(ly.dE_da[j])}", unit_ref(L, j))
                else:
                    nxt = self.layers[L]  # the layer above (0-based list index L)
                    refs = (unit_ref(L, j),
                            *(edge_ref(L + 1, j, k) for k in range(len(nxt.delta))),
                            *(unit_ref(L + 1, k) for k in range(len(nxt.delta))))
                    names = " + ".join(
                        f"{wname(L + 1, j, k)}·delta_{self.unit_name(L + 1, k)}"
                        for k in range(len(nxt.delta))
                    )
                    terms = _signed_sum(ly.dE_da_terms[j])
                    w(f"    dE/d{u} = {names}", *refs)
                    w(f"           = {terms} = {_num(ly.dE_da[j])}", *refs)
                deriv = _DERIVATIVE_TEXT[ly.activation].format(a=u, slope=_num(self.negative_slope))
                w(f"    d{u}/dz_{u} = {deriv} = {_num(ly.da_dz[j])}", unit_ref(L, j))
                w(f"    delta_{u} = {_factor(ly.dE_da[j])} · {_factor(ly.da_dz[j])} = "
                  f"{_num(ly.delta[j])}", unit_ref(L, j))
        w("")
        section = "update"
        w(f"Gradients dE/dW[i,j] = a_i · delta_j, dE/db_j = delta_j; updates p ← p − "
          f"{_num(self.lr)}·dE/dp", *params)
        for ly in self.layers:
            L = ly.index
            for i in range(len(ly.a_in)):
                for j in range(len(ly.a)):
                    name = wname(L, i, j)
                    w(f"  dE/d{name} = {self.unit_name(L - 1, i)}·delta_{self.unit_name(L, j)}"
                      f" = {_factor(ly.a_in[i])}·{_factor(ly.delta[j])} = {_num(ly.grad_W[i][j])}"
                      f"    {name} ← {_num(ly.W[i][j])} − {_num(self.lr)}·"
                      f"{_factor(ly.grad_W[i][j])} = {_num(ly.new_W[i][j])}",
                      edge_ref(L, i, j), unit_ref(L - 1, i), unit_ref(L, j))
            for j in range(len(ly.a)):
                name = self.bias_name(L, j)
                update = (f"{name} ← {_num(ly.b[j])} − {_num(self.lr)}·{_factor(ly.grad_b[j])} = "
                          f"{_num(ly.new_b[j])}" if self.train_biases
                          else f"{name} stays {_num(ly.b[j])} (train_biases=False)")
                w(f"  dE/d{name} = delta_{self.unit_name(L, j)} = {_num(ly.grad_b[j])}"
                  f"    {update}", bias_ref(L, j), unit_ref(L, j))
        return out

    def _fused_delta_lines(self, w, ly) -> None:
        """The output deltas that are not one factor per unit."""
        L = ly.index
        names = [self.unit_name(L, j) for j in range(len(ly.a))]
        refs = [unit_ref(L, j) for j in range(len(ly.a))]
        if self.loss_name != "squared_error":
            act = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid",
                   "poisson": "exp"}[self.loss_name]
            w(f"    {self.loss_name} with a {act} output: delta = dE/dz = y − t directly "
              "(the log's and the activation's derivatives cancel)", *refs)
            for j, u in enumerate(names):
                w(f"    delta_{u} = {_num(ly.a[j])} − {_num(self.t[j])} = {_num(ly.delta[j])}",
                  refs[j])
            return
        g = [a - t for a, t in zip(ly.a, self.t)]
        dot = sum(gk * ak for gk, ak in zip(g, ly.a))
        w("    squared error through softmax: with g = y − t, delta_k = y_k (g_k − sum_j g_j y_j)",
          *refs)
        w(f"    sum_j g_j y_j = {_num(dot)}", *refs)
        for j, u in enumerate(names):
            w(f"    delta_{u} = {_num(ly.a[j])}·({_num(g[j])} − {_factor(dot)}) = "
              f"{_num(ly.delta[j])}", *refs)

    def __str__(self) -> str:
        return self.format()


def build_trace(net, values, lr) -> Trace:
    """Assemble a Trace from ``net.backprop_values(x, t)`` and the step's learning rate."""
    sizes = net.layer_sizes
    acts = net.activations
    n_layers = len(sizes) - 1
    # The same update as the kernel's sgd_update, in the network's dtype.
    lr_typed = values.grad.dtype.type(lr)
    tt = [float(v) for v in values.t]
    layers: list[LayerTrace] = []
    for l, lv in enumerate(values.layers):
        new_W = lv.W - lr_typed * lv.grad_W
        new_b = lv.b - lr_typed * lv.grad_b if net.train_biases else lv.b
        layers.append(
            LayerTrace(
                index=l + 1, activation=acts[l], a_in=[float(v) for v in lv.a_in],
                W=lv.W.tolist(), b=lv.b.tolist(), z=lv.z.tolist(),
                a=[float(v) for v in lv.a], dE_da=[], dE_da_terms=None, da_dz=[],
                delta=[float(v) for v in lv.delta],
                grad_W=lv.grad_W.tolist(), grad_b=lv.grad_b.tolist(),
                new_W=new_W.tolist(), new_b=new_b.tolist(),
            )
        )
    out = layers[-1]
    output_losses = _output_losses(net.loss_name, out.z, out.a, tt)
    for l in reversed(range(n_layers)):
        ly = layers[l]
        if ly.activation == "softmax":
            ly.da_dz = None
        else:
            ly.da_dz = derivative(ly.activation, ly.a, dtype="float64",
                                  negative_slope=net.negative_slope).tolist()
        if l == n_layers - 1:
            ly.dE_da = ([ak - tk for ak, tk in zip(ly.a, tt)]
                        if net.loss_name == "squared_error" else None)
        else:
            above = layers[l + 1]
            ly.dE_da_terms = [
                [above.W[j][k] * above.delta[k] for k in range(len(above.delta))]
                for j in range(len(ly.a))
            ]
            ly.dE_da = [sum(terms) for terms in ly.dE_da_terms]
    return Trace(
        layer_sizes=list(sizes), loss_name=net.loss_name, x=[float(v) for v in values.x],
        t=tt, lr=float(lr), train_biases=net.train_biases, loss=values.loss,
        output_losses=output_losses,
        layers=layers, negative_slope=net.negative_slope,
    )


def _output_losses(loss_name: str, z, y, t) -> list[float]:
    """Each output's term of the sample loss, from the logits where the loss is a log-loss."""
    if loss_name == "cross_entropy":
        m = max(z)
        lse = m + math.log(sum(math.exp(zk - m) for zk in z))
        return [tk * (lse - zk) for tk, zk in zip(t, z)]
    if loss_name == "poisson":  # from the logits: e^z − t z + t log t − t
        return [math.exp(zk) - tk * zk + ((tk * math.log(tk)) if tk > 0 else 0.0) - tk
                for tk, zk in zip(t, z)]
    if loss_name == "binary_cross_entropy":
        return [(zk if zk > 0 else 0.0) + math.log1p(math.exp(-abs(zk))) - tk * zk
                for tk, zk in zip(t, z)]
    return [0.5 * (tk - yk) * (tk - yk) for tk, yk in zip(t, y)]

