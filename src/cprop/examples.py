"""The worked examples cprop grows out of, with the figures their source texts print.

``seed_network()`` is the step-by-step example in the project's seed text (a 2-2-2 sigmoid net,
b1 = .30, b2 = .70; the figure giving w7, w8 is lost and w7 = w8 = 0.50 reproduces the text's
ŷ2 = 0.7830). ``canonical_network()`` is the variant most readers know (Matt Mazur, "A Step by
Step Backpropagation Example", 2015: b1 = .35, b2 = .60). Both train the eight weights only, with
learning rate 0.5, on x = (0.05, 0.10), t = (0.01, 0.99).

The two texts name the weights differently: the seed text has z_h1 = w1·x1 + w3·x2 + b1, Mazur
has net_h1 = w1·i1 + w2·i2 + b1. ``Example.weight_names`` maps each text's names onto cprop's
``weights[layer][i, j]`` (from unit i of the layer below to unit j).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from cprop._example_names import CANONICAL_WEIGHT_NAMES, SEED_WEIGHT_NAMES
from cprop.mlp import MLP

__all__ = ["Example", "SourceFigure", "WorkedExample", "SEED", "CANONICAL", "EXAMPLES",
           "seed_network", "canonical_network"]


@dataclass(frozen=True)
class SourceFigure:
    """A number the source text prints (``text``), or a blank it leaves (``text=None``)."""

    label: str
    text: str | None
    value: Callable  # Trace -> float: cprop's exact value for this figure
    note: str = ""


@dataclass(frozen=True)
class Example:
    name: str
    title: str
    source: str
    weights: tuple  # (W1, W2), each (n_in, n_out) nested lists
    biases: tuple  # (b1, b2)
    x: tuple
    t: tuple
    lr: float
    weight_names: dict  # text name -> (layer, i, j), all 0-based
    figures: tuple

    def network(self, dtype="float64") -> MLP:
        net = MLP([2, 2, 2], hidden="sigmoid", output="sigmoid", loss="squared_error",
                  dtype=dtype, seed=0, train_biases=False)
        for layer, (W, b) in enumerate(zip(self.weights, self.biases)):
            net.weights[layer][:] = W
            net.biases[layer][:] = b
        return net


class WorkedExample(NamedTuple):
    """What ``seed_network()`` / ``canonical_network()`` return: ``net, x, t, lr = ...``."""

    net: MLP
    x: np.ndarray
    t: np.ndarray
    lr: float


def _f(path):
    """A figure getter from a path like ("layers", 1, "z", 0) into a Trace."""
    def get(trace):
        obj = trace
        for step in path:
            obj = getattr(obj, step) if isinstance(step, str) else obj[step]
        return obj
    return get


SEED = Example(
    name="seed",
    title="The seed text's worked example (b1 = 0.30, b2 = 0.70, w7 = w8 = 0.50)",
    source="Backpropagation Numerical example (after M. Mazur, 'A Step by Step "
           "Backpropagation Example', 2015); its figures are lost",
    weights=([[0.15, 0.20], [0.25, 0.30]], [[0.40, 0.50], [0.45, 0.50]]),
    biases=([0.30, 0.30], [0.70, 0.70]),
    x=(0.05, 0.10), t=(0.01, 0.99), lr=0.5,
    # z_h1 = w1·x1 + w3·x2 + b1, z_h2 = w2·x1 + w4·x2 + b1, ...
    weight_names=SEED_WEIGHT_NAMES,
    figures=(
        SourceFigure("z1 = w1·x1 + w3·x2 + b1", "0.3325", _f(("layers", 0, "z", 0))),
        SourceFigure("a_h1 = σ(z1)", "0.5824", _f(("layers", 0, "a", 0)),
                     "the text writes 1/(1 + e^−0.3275); the exponent is −z1 = −0.3325"),
        SourceFigure("z2 = w2·x1 + w4·x2 + b1", "0.34", _f(("layers", 0, "z", 1))),
        SourceFigure("a_h2 = σ(z2)", "0.5842", _f(("layers", 0, "a", 1))),
        SourceFigure("out_y1 = w5·a_h1 + w6·a_h2 + b2", "1.196", _f(("layers", 1, "z", 0)),
                     "the text writes w6·a_h1; its number uses a_h2, as it should"),
        SourceFigure("ŷ1 = σ(out_y1)", "0.7676", _f(("layers", 1, "a", 0)),
                     "σ(1.196) = 0.7679 (σ(1.19583) = 0.76778); the text's 0.7676 is a slip, "
                     "and five figures below carry it on"),
        SourceFigure("ŷ2 = σ(out_y2)", "0.7830", _f(("layers", 1, "a", 1))),
        SourceFigure("E_y1 = ½(t1 − ŷ1)²", "0.2869", _f(("output_losses", 0)),
                     "from the text's ŷ1 = 0.7676 (and ½·0.7576² = 0.28698 is cut, not rounded)"),
        SourceFigure("E_y2 = ½(t2 − ŷ2)²", "0.0214", _f(("output_losses", 1))),
        SourceFigure("E_total = E_y1 + E_y2", "0.3083", _f(("loss",)),
                     "from the text's E_y1 = 0.2869"),
        SourceFigure("∂E_total/∂ŷ1 = −(t1 − ŷ1)", "0.7576", _f(("layers", 1, "dE_da", 0)),
                     "from the text's ŷ1 = 0.7676"),
        SourceFigure("∂ŷ1/∂out_y1 = ŷ1(1 − ŷ1)", "0.1784", _f(("layers", 1, "da_dz", 0)),
                     "from the text's ŷ1 = 0.7676"),
        SourceFigure("∂out_y1/∂w5 = a_h1", "0.5824", _f(("layers", 1, "a_in", 0))),
        SourceFigure("∂E_total/∂w5", "0.0787", _f(("layers", 1, "grad_W", 0, 0))),
        SourceFigure("w5 ← w5 − 0.5·∂E_total/∂w5", "0.3607", _f(("layers", 1, "new_W", 0, 0))),
        SourceFigure("w6 ←", None, _f(("layers", 1, "new_W", 1, 0))),
        SourceFigure("w7 ←", None, _f(("layers", 1, "new_W", 0, 1))),
        SourceFigure("w8 ←", None, _f(("layers", 1, "new_W", 1, 1))),
        SourceFigure("∂E_o1/∂net_o1 = 0.7576 × 0.1784", "0.1352", _f(("layers", 1, "delta", 0)),
                     "from the text's 0.7576 and 0.1784"),
        SourceFigure("∂net_o1/∂out_h1 = w5", "0.4", _f(("layers", 1, "W", 0, 0))),
        SourceFigure("∂E_o1/∂out_h1 = ∂E_o1/∂net_o1 · w5", "0.0541",
                     _f(("layers", 0, "dE_da_terms", 0, 0)), "from the text's 0.1352"),
        SourceFigure("∂E_o2/∂out_h1 = ∂E_o2/∂net_o2 · w7", None,
                     _f(("layers", 0, "dE_da_terms", 0, 1)),
                     "the text writes ∂E_o2/∂out_h2; the sum for out_h1 needs ∂E_o2/∂out_h1"),
        SourceFigure("∂E_total/∂out_h1 = ∂E_o1/∂out_h1 + ∂E_o2/∂out_h1", None,
                     _f(("layers", 0, "dE_da", 0))),
        SourceFigure("∂out_h1/∂net_h1 = a_h1(1 − a_h1)", "0.2432", _f(("layers", 0, "da_dz", 0))),
        SourceFigure("∂net_h1/∂w1 = x1", "0.05", _f(("layers", 0, "a_in", 0))),
        SourceFigure("∂E_total/∂w1 = ∂E_total/∂out_h1 × 0.2432 × 0.05", None,
                     _f(("layers", 0, "grad_W", 0, 0))),
        SourceFigure("w1 ← w1 − 0.5·∂E_total/∂w1", None, _f(("layers", 0, "new_W", 0, 0))),
        SourceFigure("w2 ←", None, _f(("layers", 0, "new_W", 0, 1))),
        SourceFigure("w3 ←", None, _f(("layers", 0, "new_W", 1, 0))),
        SourceFigure("w4 ←", None, _f(("layers", 0, "new_W", 1, 1))),
    ),
)

CANONICAL = Example(
    name="canonical",
    title="The canonical variant (b1 = 0.35, b2 = 0.60)",
    source="M. Mazur, 'A Step by Step Backpropagation Example' (2015)",
    weights=([[0.15, 0.25], [0.20, 0.30]], [[0.40, 0.50], [0.45, 0.55]]),
    biases=([0.35, 0.35], [0.60, 0.60]),
    x=(0.05, 0.10), t=(0.01, 0.99), lr=0.5,
    # net_h1 = w1·i1 + w2·i2 + b1, net_h2 = w3·i1 + w4·i2 + b1, ...
    weight_names=CANONICAL_WEIGHT_NAMES,
    figures=(
        SourceFigure("net_h1 = w1·i1 + w2·i2 + b1", "0.3775", _f(("layers", 0, "z", 0))),
        SourceFigure("out_h1 = σ(net_h1)", "0.593269992", _f(("layers", 0, "a", 0))),
        SourceFigure("out_h2 = σ(net_h2)", "0.596884378", _f(("layers", 0, "a", 1))),
        SourceFigure("net_o1 = w5·out_h1 + w6·out_h2 + b2", "1.105905967",
                     _f(("layers", 1, "z", 0))),
        SourceFigure("out_o1 = σ(net_o1)", "0.75136507", _f(("layers", 1, "a", 0))),
        SourceFigure("out_o2 = σ(net_o2)", "0.772928465", _f(("layers", 1, "a", 1))),
        SourceFigure("E_o1 = ½(target_o1 − out_o1)²", "0.274811083", _f(("output_losses", 0))),
        SourceFigure("E_o2 = ½(target_o2 − out_o2)²", "0.023560026", _f(("output_losses", 1))),
        SourceFigure("E_total = E_o1 + E_o2", "0.298371109", _f(("loss",))),
        SourceFigure("∂E_total/∂out_o1 = −(target_o1 − out_o1)", "0.74136507",
                     _f(("layers", 1, "dE_da", 0))),
        SourceFigure("∂out_o1/∂net_o1 = out_o1(1 − out_o1)", "0.186815602",
                     _f(("layers", 1, "da_dz", 0))),
        SourceFigure("∂E_total/∂w5", "0.082167041", _f(("layers", 1, "grad_W", 0, 0))),
        SourceFigure("∂E_o1/∂net_o1", "0.138498562", _f(("layers", 1, "delta", 0))),
        SourceFigure("∂E_o1/∂out_h1 = ∂E_o1/∂net_o1 · w5", "0.055399425",
                     _f(("layers", 0, "dE_da_terms", 0, 0))),
        SourceFigure("∂E_o2/∂out_h1 = ∂E_o2/∂net_o2 · w7", "-0.019049119",
                     _f(("layers", 0, "dE_da_terms", 0, 1)),
                     "the text multiplies its rounded ∂E_o2/∂net_o2 = −0.038098236 by w7 = 0.50; "
                     "exactly it is −0.0380982365 · 0.50"),
        SourceFigure("∂E_total/∂out_h1", "0.036350306", _f(("layers", 0, "dE_da", 0))),
        SourceFigure("∂out_h1/∂net_h1", "0.241300709", _f(("layers", 0, "da_dz", 0))),
        SourceFigure("∂E_total/∂w1", "0.000438568", _f(("layers", 0, "grad_W", 0, 0))),
        SourceFigure("w1⁺", "0.149780716", _f(("layers", 0, "new_W", 0, 0))),
        SourceFigure("w2⁺", "0.19956143", _f(("layers", 0, "new_W", 1, 0))),
        SourceFigure("w3⁺", "0.24975114", _f(("layers", 0, "new_W", 0, 1))),
        SourceFigure("w4⁺", "0.29950229", _f(("layers", 0, "new_W", 1, 1))),
        SourceFigure("w5⁺", "0.35891648", _f(("layers", 1, "new_W", 0, 0))),
        SourceFigure("w6⁺", "0.408666186", _f(("layers", 1, "new_W", 1, 0))),
        SourceFigure("w7⁺", "0.511301270", _f(("layers", 1, "new_W", 0, 1))),
        SourceFigure("w8⁺", "0.561370121", _f(("layers", 1, "new_W", 1, 1))),
    ),
)

EXAMPLES = {"seed": SEED, "canonical": CANONICAL}


def _worked(example: Example, dtype) -> WorkedExample:
    net = example.network(dtype)
    return WorkedExample(net, np.array(example.x, dtype=net.dtype),
                         np.array(example.t, dtype=net.dtype), example.lr)


def seed_network(dtype="float64") -> WorkedExample:
    """The seed text's example: ``net, x, t, lr = seed_network()`` (its texts: ``SEED``)."""
    return _worked(SEED, dtype)


def canonical_network(dtype="float64") -> WorkedExample:
    """Mazur's canonical example: ``net, x, t, lr = canonical_network()`` (``CANONICAL``)."""
    return _worked(CANONICAL, dtype)
