"""The explain page: one self-contained HTML file with the derivation of a step beside its figures.

``cprop explain ... --html FILE`` and ``cprop demo --html FILE`` write it. The page shows, for
each part of the step (the network, the forward pass and loss, the backward pass, the update),
the figure of that stage (:mod:`cprop.figures`) beside the lines of the derivation that
:meth:`cprop.explain.Trace.lines` prints. Every line carries the ids of the units, edges and
biases it is about: hovering over it, or stepping through the lines with the keyboard (↓/↑ or
j/k), highlights them in the figure. The page loads nothing from anywhere else (its styles and
its small script are inline, and its Content-Security-Policy forbids any other load), and reads
fully with JavaScript off: only the highlighting needs it.
"""

from __future__ import annotations

from html import escape

__all__ = ["explain_page", "figures_table", "SECTIONS"]

# (section id, heading, the stage of the figure beside it, the derivation sections it holds)
SECTIONS = (
    ("network", "The network", "weights", ("intro",)),
    ("forward", "Forward pass and loss", "forward", ("forward", "loss")),
    ("backward", "Backward pass", "backward", ("backward",)),
    ("update", "Gradients and the update", "update", ("update",)),
)

_CSS = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #57606a;
  --line-hover: #fff4d6; --line-current: #ffe7a3; --rule: #d0d7de; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9da7b3; --line-hover: #3a2f12;
    --line-current: #5a4512; --rule: #30363d; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header, section, footer { padding: 0 24px; max-width: 1600px; margin: 0 auto; }
header p, footer p { color: var(--muted); max-width: 70em; }
h1 { font-size: 1.5em; margin: 0.8em 0 0.2em; }
h2 { font-size: 1.15em; margin: 1.4em 0 0.4em; border-bottom: 1px solid var(--rule); }
.stage { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 24px;
  align-items: start; }
.stage > h2 { grid-column: 1 / -1; }
.figure { position: sticky; top: 8px; }
.figure svg { width: 100%; height: auto; }
ol.derivation { list-style: none; margin: 0; padding: 0;
  font: 13px/1.55 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
ol.derivation li { white-space: pre-wrap; padding: 0 6px; border-radius: 4px;
  overflow-wrap: anywhere; }
ol.derivation li.blank { min-height: 0.8em; }
ol.derivation li[data-refs]:hover { background: var(--line-hover); }
ol.derivation li.current { background: var(--line-current); outline: none; }
table.figures { border-collapse: collapse; font-size: 13px; }
table.figures td, table.figures th { border-bottom: 1px solid var(--rule); padding: 2px 8px;
  text-align: left; vertical-align: top; }
.figure.active .edge:not(.hl) line { stroke-opacity: 0.2; }
.figure .edge.hl line { stroke: #d97706; stroke-opacity: 1; }
.figure .edge-label.hl rect { stroke: #d97706; stroke-width: 2.5; }
.figure .unit.hl rect, .figure .unit.hl circle { stroke: #d97706; stroke-width: 4; }
.figure text.hl { fill: #b45309; font-weight: 700; }
.figure circle.bias.hl { stroke: #d97706; stroke-width: 3; }
@media (max-width: 900px) { .stage { grid-template-columns: minmax(0, 1fr); }
  .figure { position: static; } }
"""

# Highlights the figure elements a derivation line is about; ↓/↑ or j/k step through the lines.
_SCRIPT = """
(function () {
  "use strict";
  var lines = Array.prototype.slice.call(document.querySelectorAll("ol.derivation li[data-refs]"));
  var current = -1;
  function clear() {
    document.querySelectorAll(".figure .hl").forEach(function (el) { el.classList.remove("hl"); });
    document.querySelectorAll(".figure.active").forEach(function (el) {
      el.classList.remove("active"); });
    document.querySelectorAll("ol.derivation li.current").forEach(function (el) {
      el.classList.remove("current"); });
  }
  function show(li) {
    clear();
    li.classList.add("current");
    var figure = li.closest("section").querySelector(".figure");
    var refs = li.getAttribute("data-refs").split(" ").filter(Boolean);
    refs.forEach(function (ref) {
      figure.querySelectorAll('[data-ref="' + ref + '"]').forEach(function (el) {
        el.classList.add("hl"); });
    });
    if (refs.length) { figure.classList.add("active"); }
  }
  function go(k) {
    if (!lines.length) { return; }
    current = Math.max(0, Math.min(lines.length - 1, k));
    show(lines[current]);
    lines[current].focus({ preventScroll: true });
    lines[current].scrollIntoView({ block: "nearest" });
  }
  // Only a real move of the mouse selects a line: the events a browser sends when the page
  // scrolls under a resting pointer (as stepping with the keys does) would undo the step.
  var lastX = null, lastY = null;
  lines.forEach(function (li, k) {
    li.addEventListener("mousemove", function (ev) {
      if (ev.clientX === lastX && ev.clientY === lastY) { return; }
      lastX = ev.clientX; lastY = ev.clientY;
      if (current !== k || !li.classList.contains("current")) { current = k; show(li); }
    });
    li.addEventListener("focus", function () { current = k; show(li); });
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) { return; }
    if (ev.key === "ArrowDown" || ev.key === "j") { go(current + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowUp" || ev.key === "k") { go(current - 1); ev.preventDefault(); }
    else if (ev.key === "Home") { go(0); ev.preventDefault(); }
    else if (ev.key === "End") { go(lines.length - 1); ev.preventDefault(); }
    else if (ev.key === "Escape") { clear(); current = -1; }
  });
  document.documentElement.classList.add("js");
})();
"""

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "img-src data:")


def explain_page(net, x, t, lr, *, weight_names=None, title: str | None = None,
                 intro: tuple[str, ...] = (), extra_html: str = "") -> str:
    """The explain page of one SGD step of ``net`` on (x, t) with learning rate ``lr``.

    ``weight_names`` names the weights as in :meth:`cprop.explain.Trace.format`; ``title`` and
    ``intro`` (paragraphs of plain text) head the page; ``extra_html`` is appended as a last
    section (``cprop demo`` puts the source text's checked figures there). The network is not
    changed.
    """
    trace = net.explain(x, t, lr)
    lines = trace.lines(weight_names)
    sizes = "-".join(map(str, net.layer_sizes))
    heading = title or f"One SGD step on a {sizes} network"
    out = []
    w = out.append
    w("<!DOCTYPE html>")
    w('<html lang="en">')
    w("<head>")
    w('<meta charset="utf-8">')
    w(f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>cprop explain: {escape(heading)}</title>")
    w(f"<style>{_CSS}</style>")
    w("</head>")
    w("<body>")
    w("<header>")
    w(f"<h1>{escape(heading)}</h1>")
    for paragraph in intro:
        w(f"<p>{escape(paragraph)}</p>")
    w("<p>Each line of the derivation is tied to the units, weights and biases it is about: "
      "hover over a line, or step through the lines with ↓ and ↑ (or j and k), and the figure "
      "beside it highlights them. The figures' edges are blue for positive weights, red for "
      "negative, as wide as their magnitude; hover over any part of a figure for its exact "
      "value.</p>")
    w("</header>")
    for section, heading_text, stage, parts in SECTIONS:
        w(f'<section class="stage" id="{section}" aria-labelledby="{section}-h">')
        w(f'<h2 id="{section}-h">{escape(heading_text)}</h2>')
        kwargs = {"weights": {}, "forward": {"x": x, "t": t},
                  "backward": {"x": x, "t": t}, "update": {"x": x, "t": t, "lr": lr}}[stage]
        svg = net.draw(stage=stage, weight_names=weight_names, id_prefix=f"{section}-",
                       **kwargs)
        w(f'<div class="figure" data-stage="{stage}">{svg}</div>')
        w('<ol class="derivation">')
        chosen = [ln for ln in lines if ln.section in parts]
        while chosen and not chosen[-1].text:
            chosen.pop()
        for ln in chosen:
            if not ln.text:
                w('<li class="blank"></li>')
                continue
            w(f'<li tabindex="-1" data-refs="{" ".join(ln.refs)}">{escape(ln.text)}</li>')
        w("</ol>")
        w("</section>")
    if extra_html:
        w(extra_html)
    w("<footer><p>Written by cprop. The numbers are the compiled kernels' own, printed to ten "
      "significant digits as <code>cprop explain</code> prints them.</p></footer>")
    w(f"<script>{_SCRIPT}</script>")
    w("</body>")
    w("</html>")
    return "\n".join(out) + "\n"


def figures_table(rows) -> str:
    """An HTML section listing (label, text, exact, check, note) rows of a source's figures."""
    mark = {"match": "✓", "differs": "≠", "blank": "blank"}
    out = ['<section id="source-figures"><h2>The source text\'s figures, checked</h2>',
           "<p>✓: the printed figure is the exact value rounded to its digits; ≠: it is not (the "
           "source rounds and carries the rounding on); blank: the source leaves it to the "
           "reader.</p>",
           '<table class="figures"><thead><tr><th>figure</th><th>text</th><th>exact</th>'
           "<th></th><th>note</th></tr></thead><tbody>"]
    for f in rows:
        text = f["text"] if f["text"] is not None else "?"
        out.append(f"<tr><td>{escape(f['label'])}</td><td>{escape(text)}</td>"
                   f"<td>{f['value']:.12f}</td><td>{mark[f['check']]}</td>"
                   f"<td>{escape(f['note'])}</td></tr>")
    out.append("</tbody></table></section>")
    return "\n".join(out)

