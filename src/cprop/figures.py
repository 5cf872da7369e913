"""Figures of a network with its values (``MLP.draw``), as SVG written by cprop itself.

One figure per stage of a backpropagation step, in the naming that ``cprop demo`` and
``explain`` print (x1.., h1.., y1..; ``W1[i,j]`` or an example's own ``w1 .. w8``; biases
``b1[j]``):

- ``"weights"``: the network, its weights on the edges and each unit's bias;
- ``"forward"``: each unit's net input z and output a for one input x (and the target t);
- ``"backward"``: each unit's dE/da and delta = dE/dz for (x, t);
- ``"update"``: the weights and biases after one SGD step with learning rate lr, those the step
  changed outlined.

Edges are coloured by sign (blue positive, red negative) and drawn as wide as their magnitude;
where the labels fit (networks up to about four units a layer) each edge also carries its name
and value. Every drawn element has a ``<title>`` (a tooltip) with the exact value as the
derivation prints it, and ``data-ref`` ids (``unit:L:j``, ``edge:L:i:j``, ``bias:L:j``) that
:meth:`cprop.explain.Trace.lines` uses to tie each line of the derivation to the figure. Layers
wider than 12 units are drawn as their first five and last five units around an ellipsis, so a
64-32-10 network still reads. The colours are chosen to read on light and dark backgrounds
(labels sit on white chips); there are no external fonts or resources.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import numpy as np

from cprop._atomic import check_writable_dir, write_bytes
from cprop.explain import Trace, bias_ref, edge_ref, resolve_weight_names, unit_name, unit_ref

__all__ = ["STAGES", "draw", "svg_to_png"]

STAGES = ("weights", "forward", "backward", "update")

# Wider layers are drawn as their first and last few units around an ellipsis.
MAX_DRAWN = 12
ELLIPSIS_HEAD = 5
ELLIPSIS_TAIL = 5
# Units are cards with their values written in them up to this width; wider layers get
# small circles, their values as fill colour and tooltip.
DETAIL_MAX = 6

POSITIVE = "#2f6fdb"
NEGATIVE = "#e0533d"
CHANGED = "#d97706"  # amber: 3.2:1 on white, 6:1 on a dark page
INK = "#1f2328"
MUTED = "#8b949e"  # reads on white and on a dark page alike
CARD_STROKE = "#6e7781"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif"

_STYLE = """
.cprop-figure .muted { fill: #57606a; }
@media (prefers-color-scheme: dark) { .cprop-figure .muted { fill: #9da7b3; } }
"""


def _short(v: float) -> str:
    """A value as a figure shows it: four significant digits."""
    if v == 0:
        return "0"
    text = f"{v:.4g}"
    return text.replace("e-0", "e-").replace("e+0", "e+")


def _exact(v: float) -> str:
    """A value as the derivation prints it (``explain``'s ten significant digits)."""
    return f"{v:.10g}"


def _text_width(text: str, size: float) -> float:
    """A generous estimate of a label's width (no font metrics: wide enough for DejaVu Sans)."""
    return 0.64 * size * len(text)


@dataclass
class _Unit:
    ref: str
    name: str
    x: float
    y: float
    lines: list = field(default_factory=list)  # (text, css class, ref or None, exact title)
    title: str = ""
    fill: str = "#ffffff"
    changed: bool = False


@dataclass
class _Edge:
    ref: str
    name: str
    x1: float
    y1: float
    x2: float
    y2: float
    value: float
    title: str
    label: str
    changed: bool = False
    width: float = 1.0


@dataclass
class _Label:
    ref: str
    text: str
    x: float
    y: float
    w: float
    h: float
    changed: bool


def _drawn_units(n: int) -> list:
    """The unit indices drawn for a layer of n units, None marking the ellipsis."""
    if n <= MAX_DRAWN:
        return list(range(n))
    return list(range(ELLIPSIS_HEAD)) + [None] + list(range(n - ELLIPSIS_TAIL, n))


def draw(net, path=None, *, x=None, t=None, lr=None, stage="weights", weight_names=None,
         id_prefix: str = "") -> str:
    """The network as an SVG figure at one stage of a backpropagation step (see the module).

    ``x`` is needed from ``"forward"`` on, ``t`` from ``"backward"`` on and ``lr`` for
    ``"update"``; the network is not changed. ``weight_names`` names the weights as
    :meth:`cprop.explain.Trace.format` does (``"seed"``, ``"canonical"`` or a mapping).
    ``id_prefix`` is put before every element id, so several figures can share one page.
    Returns the SVG text and, when ``path`` is given, writes it there (``.svg``) or renders it
    (``.png``, with the optional ``resvg-py`` package: ``pip install "cprop[png]"``).
    """
    if not isinstance(stage, str) or stage not in STAGES:
        raise ValueError(f"stage: expected one of {', '.join(map(repr, STAGES))}, got {stage!r}")
    if not isinstance(id_prefix, str) or not all(c.isalnum() or c in "-_" for c in id_prefix):
        raise ValueError(f"id_prefix: expected letters, digits, '-' or '_', got {id_prefix!r}")
    png = False
    if path is not None:
        path = check_writable_dir(path, "path")
        ext = os.path.splitext(path)[1].lower()
        if ext not in (".svg", ".png"):
            raise ValueError(f"path: expected a file name ending in .svg or .png, got {path!r}")
        png = ext == ".png"
    needs = {"weights": (), "forward": ("x",), "backward": ("x", "t"),
             "update": ("x", "t", "lr")}[stage]
    given = {"x": x, "t": t, "lr": lr}
    for name in needs:
        if given[name] is None:
            raise ValueError(f"{name}: stage {stage!r} needs {name} (the "
                             + {"x": "input sample", "t": "target",
                                "lr": "learning rate of the step"}[name] + ")")
    for name in ("x", "t", "lr"):
        if name not in needs and given[name] is not None and not (stage == "forward"
                                                                  and name == "t"):
            raise ValueError(f"{name}: not used by stage {stage!r} (it needs "
                             f"{', '.join(needs) or 'no values'})")
    names = resolve_weight_names(weight_names, net.layer_sizes)
    trace = None
    if stage != "weights":
        target = t if t is not None else _placeholder_target(net)
        trace = net.explain(x, target, lr if lr is not None else 0.5)
    svg = _Figure(net, stage, trace, names, id_prefix, show_target=t is not None).svg()
    if path is not None:
        write_bytes(path, svg_to_png(svg) if png else svg.encode("utf-8"))
    return svg


def _placeholder_target(net):
    """A valid target for the forward stage's values, which do not depend on it."""
    from cprop._registry import LOSS_TARGETS

    if LOSS_TARGETS[net.loss_name] == "distribution" and net.layer_sizes[-1] > 1:
        return 0
    return np.zeros(net.layer_sizes[-1])


def svg_to_png(svg: str) -> bytes:
    """Render SVG text to PNG bytes with resvg (the optional ``png`` extra)."""
    try:
        import resvg_py
    except ImportError:
        raise ImportError('writing a .png figure needs resvg-py: pip install "cprop[png]" '
                          "(or write .svg)") from None
    return bytes(resvg_py.svg_to_bytes(svg_string=svg, zoom=2, background="white"))


class _Figure:
    """The geometry and text of one figure; ``svg()`` writes it."""

    def __init__(self, net, stage, trace: Trace | None, names: dict, prefix: str,
                 show_target: bool):
        self.net = net
        self.stage = stage
        self.trace = trace
        self.prefix = prefix
        self.show_target = show_target
        self.sizes = list(net.layer_sizes)
        self.n_layers = len(self.sizes) - 1
        self.detail = max(self.sizes) <= DETAIL_MAX
        self.weight_names = names
        self.drawn = [_drawn_units(n) for n in self.sizes]
        if self.detail:
            # room between the cards for two edge labels side by side
            longest = max(len(self.wname(L, i, j)) for L in range(1, self.n_layers + 1)
                          for i in range(self.sizes[L - 1]) for j in range(self.sizes[L]))
            label_w = _text_width("x" * (longest + 11), 11.0) + 10
            self.card_w, self.card_h, self.row_gap = 132.0, 88.0, 128.0
            self.col_gap = self.card_w + max(136.0, 2 * label_w + 16)
        else:
            self.card_w = self.card_h = 30.0
            self.row_gap, self.col_gap = 42.0, 210.0
        self.margin_x = 36.0 if self.detail else 72.0
        self.top = 92.0
        slots = max(len(d) for d in self.drawn)
        self.width = max(2 * self.margin_x + self.n_layers * self.col_gap + self.card_w, 640.0)
        self.height = self.top + slots * self.row_gap + 56.0
        self.slots = slots
        self.headers = [self._header(layer) for layer in range(self.n_layers + 1)]
        head, sub = self.caption_text()
        right = max(self.position(layer, 0)[0] + _text_width(text, 12) / 2
                    for layer, text in enumerate(self.headers))
        self.width = max(self.width, right + 24, 36 + _text_width(head, 15),
                         36 + _text_width(sub, 13))
        self.units: list[_Unit] = []
        self.ellipses: list[tuple] = []
        self.edges: list[_Edge] = []
        self.labels: list[_Label] = []
        self._layout()

    # -- names and values ----------------------------------------------------------------------

    def wname(self, L: int, i: int, j: int) -> str:
        return self.weight_names.get((L - 1, i, j)) or Trace.weight_name(L, i, j)

    def uname(self, layer: int, j: int) -> str:
        return unit_name(self.sizes, layer, j)

    def weights(self, L: int):
        """(W, b) of weight layer L (1-based) as the stage shows them, and the old ones."""
        if self.trace is None:
            W = self.net.weights[L - 1].tolist()
            b = self.net.biases[L - 1].tolist()
            return W, b, W, b
        ly = self.trace.layers[L - 1]
        if self.stage == "update":
            return ly.new_W, ly.new_b, ly.W, ly.b
        return ly.W, ly.b, ly.W, ly.b

    # -- layout --------------------------------------------------------------------------------

    def position(self, layer: int, slot: int) -> tuple[float, float]:
        n_slots = len(self.drawn[layer])
        x = self.margin_x + self.card_w / 2 + layer * self.col_gap
        y = self.top + (self.slots - n_slots) * self.row_gap / 2 + (slot + 0.5) * self.row_gap
        return x, y

    def _layout(self) -> None:
        where = {}
        for layer, drawn in enumerate(self.drawn):
            for slot, j in enumerate(drawn):
                x, y = self.position(layer, slot)
                if j is None:
                    self.ellipses.append((layer, x, y))
                    continue
                where[(layer, j)] = (x, y)
                self.units.append(self._unit(layer, j, x, y))
        # edges, their widths scaled to the largest magnitude drawn
        biggest = 0.0
        for L in range(1, self.n_layers + 1):
            W, _, W_old, _ = self.weights(L)
            for i in (i for i in self.drawn[L - 1] if i is not None):
                for j in (j for j in self.drawn[L] if j is not None):
                    (x1, y1), (x2, y2) = where[(L - 1, i)], where[(L, j)]
                    v, old = W[i][j], W_old[i][j]
                    changed = self.stage == "update" and v != old
                    name = self.wname(L, i, j)
                    title = f"{name} = {_exact(v)}   ({Trace.weight_name(L, i, j)}: " \
                            f"{self.uname(L - 1, i)} → {self.uname(L, j)})"
                    if self.stage == "update":
                        title += (f"; was {_exact(old)}" if changed else "; unchanged")
                    self.edges.append(_Edge(
                        ref=edge_ref(L, i, j), name=name,
                        x1=x1 + self.card_w / 2, y1=y1, x2=x2 - self.card_w / 2, y2=y2,
                        value=v, title=title, label=f"{name} = {_short(v)}", changed=changed))
                    biggest = max(biggest, abs(v))
        for e in self.edges:
            e.width = 0.8 + 3.2 * (abs(e.value) / biggest if biggest > 0 else 0.0)
        if self.detail:
            self._place_labels()

    def _unit(self, layer: int, j: int, x: float, y: float) -> _Unit:
        name = self.uname(layer, j)
        u = _Unit(ref=unit_ref(layer, j), name=name, x=x, y=y)
        tr = self.trace
        if layer == 0:
            if tr is not None:
                u.lines.append((f"{name} = {_short(tr.x[j])}", "value", None, None))
                u.title = f"{name} = {_exact(tr.x[j])} (input)"
            else:
                u.title = f"{name} (input)"
            return u
        L = layer
        _, b, _, b_old = self.weights(L)
        bname = Trace.bias_name(L, j)
        act = self.net.activations[L - 1]
        role = "output" if L == self.n_layers else "hidden"
        if self.stage in ("weights", "update"):
            changed = self.stage == "update" and b[j] != b_old[j]
            u.lines.append((f"{bname} = {_short(b[j])}", "bias", bias_ref(L, j),
                            f"{bname} = {_exact(b[j])}"
                            + (f"; was {_exact(b_old[j])}" if changed else "")))
            u.changed = changed
            u.title = f"{name} ({role}, {act}); bias {bname} = {_exact(b[j])}"
            u.fill = _tint(b[j], self._layer_max(L, "b"))
            if self.stage == "update":
                ly = tr.layers[L - 1]
                u.lines.append((f"δ = {_short(ly.delta[j])}", "value", None, None))
                u.title += (f"; was {_exact(b_old[j])}" if changed else "; unchanged")
            return u
        ly = tr.layers[L - 1]
        if self.stage == "forward":
            u.lines.append((f"{bname} = {_short(b[j])}", "bias", bias_ref(L, j),
                            f"{bname} = {_exact(b[j])}"))
            u.lines.append((f"z = {_short(ly.z[j])}", "value", None, None))
            u.lines.append((f"{name} = {_short(ly.a[j])}", "value", None, None))
            u.title = f"z_{name} = {_exact(ly.z[j])}, {name} = {act}(z_{name}) = {_exact(ly.a[j])}"
            if L == self.n_layers and self.show_target:
                u.lines.append((f"t{j + 1} = {_short(tr.t[j])}", "target", None, None))
                u.title += f"; target t{j + 1} = {_exact(tr.t[j])}"
            u.fill = _tint(ly.a[j], self._layer_max(L, "a"))
            return u
        # backward
        if ly.dE_da is not None and ly.da_dz is not None:
            u.lines.append((f"dE/da = {_short(ly.dE_da[j])}", "value", None, None))
            u.lines.append((f"da/dz = {_short(ly.da_dz[j])}", "value", None, None))
        u.lines.append((f"δ = {_short(ly.delta[j])}", "delta", None, None))
        u.title = f"delta_{name} = dE/dz_{name} = {_exact(ly.delta[j])}"
        if ly.dE_da is not None and ly.da_dz is not None:
            u.title += f"; dE/d{name} = {_exact(ly.dE_da[j])}, d{name}/dz_{name} = " \
                       f"{_exact(ly.da_dz[j])}"
        u.fill = _tint(ly.delta[j], self._layer_max(L, "delta"))
        return u

    def _layer_max(self, L: int, what: str) -> float:
        if what == "b":
            return max(abs(v) for v in self.weights(L)[1])
        ly = self.trace.layers[L - 1]
        return max(abs(v) for v in getattr(ly, what))

    def _place_labels(self) -> None:
        """Each edge's label at the first of a few points along it where it overlaps no unit
        and no label placed before it; a layer whose labels do not all fit gets none."""
        size = 11.0
        for L in range(1, self.n_layers + 1):
            edges = [e for e in self.edges if e.ref.startswith(f"edge:{L}:")]
            placed: list[_Label] = []
            for e in edges:
                w = _text_width(e.label, size) + 10
                h = size + 7
                for frac in (0.3, 0.5, 0.7, 0.22, 0.4, 0.6, 0.78, 0.15, 0.85):
                    cx = e.x1 + frac * (e.x2 - e.x1)
                    cy = e.y1 + frac * (e.y2 - e.y1)
                    box = _Label(e.ref, e.label, cx - w / 2, cy - h / 2, w, h, e.changed)
                    if self._fits(box, placed):
                        placed.append(box)
                        break
                else:
                    placed = []
                    break
            self.labels.extend(placed)

    def _fits(self, a: _Label, placed: list[_Label]) -> bool:
        pad = 3.0
        for b in placed:
            if (a.x < b.x + b.w + pad and b.x < a.x + a.w + pad
                    and a.y < b.y + b.h + pad and b.y < a.y + a.h + pad):
                return False
        for u in self.units:
            ux, uy = u.x - self.card_w / 2 - pad, u.y - self.card_h / 2 - pad
            if (a.x < ux + self.card_w + 2 * pad and ux < a.x + a.w
                    and a.y < uy + self.card_h + 2 * pad and uy < a.y + a.h):
                return False
        return True

    # -- SVG -----------------------------------------------------------------------------------

    def _id(self, ref: str) -> str:
        return self.prefix + ref.replace(":", "-")

    def _header(self, layer: int) -> str:
        if layer == 0:
            text = "inputs"
        else:
            role = "outputs" if layer == self.n_layers else (
                "hidden" if self.n_layers == 2 else f"hidden {layer}")
            text = f"{role} · {self.net.activations[layer - 1]}"
        if self.sizes[layer] > MAX_DRAWN:
            text += f" · {self.sizes[layer]} units"
        return text

    def caption_text(self) -> tuple[str, str]:
        tr = self.trace
        sizes = "-".join(map(str, self.sizes))
        acts = " / ".join(dict.fromkeys(self.net.activations))
        head = f"{sizes} network ({acts}; {self.net.loss_name})"
        def vec(vs):
            if len(vs) > 6:
                return "(" + ", ".join(_short(v) for v in vs[:3]) + ", …, " + \
                    _short(vs[-1]) + f") ({len(vs)} values)"
            return "(" + ", ".join(_short(v) for v in vs) + ")"

        if self.stage == "weights":
            return head, "weights and biases"
        if self.stage == "forward":
            text = f"forward pass for x = {vec(tr.x)}"
            if self.show_target:
                text += f", t = {vec(tr.t)}: E = {_short(tr.loss)}"
            return head, text
        if self.stage == "backward":
            return head, f"backward pass for t = {vec(tr.t)}: E = {_short(tr.loss)}, " \
                         "δ = dE/dz"
        return head, f"after one SGD step with lr = {_short(tr.lr)}" + \
            ("" if tr.train_biases else " (biases not trained)")

    def svg(self) -> str:
        W, H = math.ceil(self.width), math.ceil(self.height)
        head, sub = self.caption_text()
        out = []
        w = out.append
        w(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
          f'viewBox="0 0 {W} {H}" role="img" class="cprop-figure" '
          f'data-stage="{self.stage}" data-layers="{"-".join(map(str, self.sizes))}" '
          f'font-family="{FONT}">')
        w(f"<title>{escape(head)}: {escape(sub)}</title>")
        w(f"<style>{_STYLE}</style>")
        w(f'<text x="36" y="26" font-size="15" font-weight="600" '
          f'class="muted" fill="#57606a">{escape(head)}</text>')
        w(f'<text x="36" y="46" font-size="13" class="muted" '
          f'fill="#57606a">{escape(sub)}</text>')
        for layer, text in enumerate(self.headers):
            x, _ = self.position(layer, 0)
            w(f'<text x="{x:.1f}" y="74" font-size="12" text-anchor="middle" class="muted" '
              f'fill="#57606a">{escape(text)}</text>')
        w('<g class="edges">')
        for e in self.edges:
            colour = POSITIVE if e.value >= 0 else NEGATIVE
            cls = "edge changed" if e.changed else "edge"
            w(f'<g class="{cls}" id="{self._id(e.ref)}" data-ref="{e.ref}" '
              f'data-name="{escape(e.name)}" data-value="{e.value!r}">'
              f"<title>{escape(e.title)}</title>"
              f'<line x1="{e.x1:.1f}" y1="{e.y1:.1f}" x2="{e.x2:.1f}" y2="{e.y2:.1f}" '
              f'stroke="{colour}" stroke-width="{e.width:.2f}" stroke-linecap="round" '
              f'stroke-opacity="0.85"/></g>')
        w("</g>")
        w('<g class="edge-labels">')
        for lab in self.labels:
            stroke = CHANGED if lab.changed else CARD_STROKE
            sw = 2 if lab.changed else 0.6
            w(f'<g class="edge-label" data-ref="{lab.ref}">'
              f'<rect x="{lab.x:.1f}" y="{lab.y:.1f}" width="{lab.w:.1f}" height="{lab.h:.1f}" '
              f'rx="4" fill="#ffffff" fill-opacity="0.94" stroke="{stroke}" '
              f'stroke-width="{sw}"/>'
              f'<text x="{lab.x + lab.w / 2:.1f}" y="{lab.y + lab.h / 2 + 4:.1f}" '
              f'font-size="11" text-anchor="middle" fill="{INK}">{escape(lab.text)}</text></g>')
        w("</g>")
        w('<g class="units">')
        for u in self.units:
            w(self._unit_svg(u))
        for layer, x, y in self.ellipses:
            hidden = self.sizes[layer] - ELLIPSIS_HEAD - ELLIPSIS_TAIL
            first = unit_name(self.sizes, layer, ELLIPSIS_HEAD)
            last = unit_name(self.sizes, layer, self.sizes[layer] - ELLIPSIS_TAIL - 1)
            w(f'<g class="ellipsis" data-layer="{layer}" data-hidden="{hidden}">'
              f"<title>{first} … {last}: {hidden} units not drawn</title>"
              f'<text x="{x:.1f}" y="{y + 2:.1f}" font-size="18" text-anchor="middle" '
              f'class="muted" fill="#57606a">⋮</text>'
              f'<text x="{x + 20:.1f}" y="{y + 5:.1f}" font-size="10" class="muted" '
              f'fill="#57606a">+{hidden}</text></g>')
        w("</g>")
        legend = "edges: blue positive, red negative, width ∝ |w|"
        if not self.detail and self.stage != "weights":
            legend += {"forward": "; units tinted by their output a",
                       "backward": "; units tinted by their delta",
                       "update": "; units tinted by their bias"}[self.stage]
        if self.stage == "update":
            legend += "; changed by the step: amber outline"
        w(f'<text x="36" y="{H - 18}" font-size="11" class="muted" '
          f'fill="#57606a">{escape(legend)}</text>')
        w("</svg>")
        return "\n".join(out) + "\n"

    def _unit_svg(self, u: _Unit) -> str:
        cls = "unit changed" if u.changed else "unit"
        stroke = CHANGED if u.changed else CARD_STROKE
        sw = 2.5 if u.changed else 1.2
        parts = [f'<g class="{cls}" id="{self._id(u.ref)}" data-ref="{u.ref}" '
                 f'data-name="{u.name}" data-cx="{u.x:.1f}" data-cy="{u.y:.1f}">'
                 f"<title>{escape(u.title)}</title>"]
        if not self.detail:
            parts.append(f'<circle cx="{u.x:.1f}" cy="{u.y:.1f}" r="{self.card_w / 2:.1f}" '
                         f'fill="{u.fill}" stroke="{stroke}" stroke-width="{sw}"/>')
            bias = next((line for line in u.lines if line[1] == "bias"), None)
            if bias is not None:  # no room for its text: a ring the page can highlight
                parts.append(f'<circle class="bias" data-ref="{bias[2]}" cx="{u.x:.1f}" '
                             f'cy="{u.y:.1f}" r="{self.card_w / 2 + 3:.1f}" fill="none" '
                             'stroke="none"/>')
            size = 10 if len(u.name) <= 3 else 8
            parts.append(f'<text x="{u.x:.1f}" y="{u.y + size / 2 - 1:.1f}" font-size="{size}" '
                         f'text-anchor="middle" fill="{INK}">{escape(u.name)}</text></g>')
            return "".join(parts)
        x0, y0 = u.x - self.card_w / 2, u.y - self.card_h / 2
        parts.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{self.card_w:.1f}" '
                     f'height="{self.card_h:.1f}" rx="10" fill="#ffffff" stroke="{stroke}" '
                     f'stroke-width="{sw}"/>')
        n = len(u.lines)
        name_y = u.y + 5 - 8.5 * n
        parts.append(f'<text x="{u.x:.1f}" y="{name_y:.1f}" font-size="14" font-weight="700" '
                     f'text-anchor="middle" fill="{INK}">{escape(u.name)}</text>')
        for k, (text, kind, ref, title) in enumerate(u.lines):
            y = name_y + 16 * (k + 1)
            colour = {"bias": INK, "value": INK, "delta": INK, "target": "#57606a"}[kind]
            attrs = f' class="{kind}"'
            if ref is not None:
                attrs += f' id="{self._id(ref)}" data-ref="{ref}"'
            inner = escape(text)
            if title:
                inner = f"<title>{escape(title)}</title>{inner}"
            parts.append(f'<text x="{u.x:.1f}" y="{y:.1f}" font-size="12" text-anchor="middle" '
                         f'fill="{colour}"{attrs}>{inner}</text>')
        parts.append("</g>")
        return "".join(parts)


def _tint(value: float, biggest: float) -> str:
    """White tinted towards blue (positive) or red (negative) by |value| / biggest (at most
    45 %, so the unit's dark text stays readable)."""
    if not biggest or not math.isfinite(value):
        return "#ffffff"
    share = min(1.0, abs(value) / biggest) * 0.45
    base = (0x2f, 0x6f, 0xdb) if value >= 0 else (0xe0, 0x53, 0x3d)
    r, g, b = (round(255 + (c - 255) * share) for c in base)
    return f"#{r:02x}{g:02x}{b:02x}"
