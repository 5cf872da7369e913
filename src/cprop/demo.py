"""``cprop demo``: the worked example step by step, every blank of the source text filled in.

Each figure the source prints is set beside cprop's exact value: ``✓`` where the printed figure
is the exact value rounded to the printed digits, ``≠`` where it is not (the source rounds
intermediate values to four digits and carries the rounding on), ``blank`` where the source
leaves a ``?`` for the reader. The source's slips are listed with what they should say.
"""

from __future__ import annotations

import numpy as np

from cprop.examples import EXAMPLES, Example

__all__ = ["demo_data", "format_demo", "check_figure"]


def check_figure(text: str | None, value: float) -> str:
    """'match' if `text` is `value` rounded to text's decimals, 'differs', or 'blank'."""
    if text is None:
        return "blank"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return "match" if f"{value:.{decimals}f}" == text or float(text) == round(value, decimals) \
        else "differs"


def _train(example: Example, steps: int) -> list[tuple[int, float]]:
    """Loss after each of `steps` SGD steps on the example's one sample (selected steps)."""
    net = example.network()
    x, t = np.array(example.x), np.array(example.t)
    marks = {1, steps} | {10**k for k in range(1, 8) if 10**k < steps}
    log = []
    for step in range(1, steps + 1):
        net.train_step(x, t, example.lr)
        if step in marks:
            log.append((step, net.loss(x, t)))
    return log, net.forward(x).tolist()


def demo_data(name: str = "seed", steps: int = 0) -> dict:
    """Everything ``cprop demo --json`` prints, as plain Python values."""
    example = EXAMPLES[name]
    net = example.network()
    trace = net.explain(example.x, example.t, example.lr)
    first, last = trace.layers[0], trace.layers[-1]
    data = {
        "network": name,
        "x": trace.x,
        "t": trace.t,
        "lr": trace.lr,
        "hidden_net": first.z,
        "hidden_out": first.a,
        "output_net": last.z,
        "output_out": last.a,
        "loss": trace.loss,
        "grad_weights": [ly.grad_W for ly in trace.layers],
        "grad_biases": [ly.grad_b for ly in trace.layers],
        "new_weights": [ly.new_W for ly in trace.layers],
        "new_biases": [ly.new_b for ly in trace.layers],
        "weight_names": {n: list(pos) for n, pos in example.weight_names.items()},
        "figures": [
            {"label": f.label, "text": f.text, "value": f.value(trace),
             "check": check_figure(f.text, f.value(trace)), "note": f.note}
            for f in example.figures
        ],
    }
    if steps:
        log, outputs = _train(example, steps)
        data["training"] = {"steps": steps, "loss": [[s, v] for s, v in log],
                            "final_output": outputs}
    return data, trace


def format_demo(name: str = "seed", steps: int = 0) -> str:
    example = EXAMPLES[name]
    data, trace = demo_data(name, steps)
    names = {pos: n for n, pos in example.weight_names.items()}
    out = []
    w = out.append
    w(f"cprop demo: {example.title}")
    w(f"Source: {example.source}")
    w("Weights (cprop layout weights[layer][i, j], from unit i below to unit j):")
    for n, (layer, i, j) in example.weight_names.items():
        w(f"  {n} = {trace.layers[layer].W[i][j]:<5}  = W{layer + 1}[{i + 1},{j + 1}]")
    w(f"  b1 = {example.biases[0][0]}, b2 = {example.biases[1][0]} (not trained, as in the text)")
    w("")
    w(trace.format(weight_names=names))
    w("")
    w("The source's figures, filled in and checked (✓: the printed figure is the exact value")
    w("rounded to its digits; ≠: it is not, the source rounds and carries the rounding on;")
    w("blank: the source leaves it to the reader):")
    width = max(len(f["label"]) for f in data["figures"])
    mark = {"match": "✓", "differs": "≠", "blank": "blank"}
    for f in data["figures"]:
        text = f["text"] if f["text"] is not None else "?"
        w(f"  {f['label']:<{width}}  text {text:>12}  exact {f['value']:>15.12f}  "
          f"{mark[f['check']]}")
        if f["check"] == "differs" and f["note"]:
            w(f"  {'':<{width}}  ({f['note']})")
    slips = [f for f in data["figures"] if f["note"] and f["check"] != "differs"]
    if slips:
        w("")
        w("Other slips in the source text:")
        for f in slips:
            w(f"  {f['label']}: {f['note']}")
    w("")
    w("Updated weights after one step: " + ", ".join(
        f"{n} = {trace.layers[layer].new_W[i][j]:.9f}"
        for n, (layer, i, j) in example.weight_names.items()))
    if steps:
        w("")
        w(f"Training {steps} SGD steps on this one sample (lr {example.lr}):")
        for s, v in data["training"]["loss"]:
            w(f"  after step {s:>8}: E_total = {v:.10g}")
        w("  outputs now: (" + ", ".join(f"{v:.9f}" for v in data["training"]["final_output"])
          + f"), target ({example.t[0]}, {example.t[1]})")
    return "\n".join(out)
