"""The worked examples' own names for their weights (``cprop.examples`` uses them, and so do
``explain`` and the figures for ``weight_names="seed"``), kept apart so that naming a weight
does not import the examples' networks."""

from __future__ import annotations

# text name -> (layer, i, j), all 0-based, in cprop's weights[layer][i, j] (unit i below to j)
SEED_WEIGHT_NAMES = {
    # z_h1 = w1·x1 + w3·x2 + b1, z_h2 = w2·x1 + w4·x2 + b1,
    # z_y1 = w5·h1 + w6·h2 + b2, z_y2 = w7·h1 + w8·h2 + b2
    "w1": (0, 0, 0), "w2": (0, 0, 1), "w3": (0, 1, 0), "w4": (0, 1, 1),
    "w5": (1, 0, 0), "w6": (1, 1, 0), "w7": (1, 0, 1), "w8": (1, 1, 1),
}
CANONICAL_WEIGHT_NAMES = {
    # net_h1 = w1·i1 + w2·i2 + b1, net_h2 = w3·i1 + w4·i2 + b1,
    # net_o1 = w5·h1 + w6·h2 + b2, net_o2 = w7·h1 + w8·h2 + b2
    "w1": (0, 0, 0), "w2": (0, 1, 0), "w3": (0, 0, 1), "w4": (0, 1, 1),
    "w5": (1, 0, 0), "w6": (1, 1, 0), "w7": (1, 0, 1), "w8": (1, 1, 1),
}
EXAMPLE_WEIGHT_NAMES = {"seed": SEED_WEIGHT_NAMES, "canonical": CANONICAL_WEIGHT_NAMES}
