"""The figures and the explain page in a real browser (headless Chromium, tests/browser.py).

Screenshots are not blank and show the units and edges where the SVG puts them, in the
colours it gives them; the page's DOM after load holds every number of the derivation (with
JavaScript on and off), loads nothing but itself, logs no console error, and highlights a line's
units and edges on hover and when stepping with the keyboard; on a dark page the figures' free
text switches to a light colour. Without Chromium these tests skip (CPROP_REQUIRE_BROWSER=1, as
in CI, makes that a failure)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import cprop
from cprop.examples import EXAMPLES
from cprop.page import explain_page
from png import read_png

SVG = "{http://www.w3.org/2000/svg}"
SEED = EXAMPLES["seed"]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[k:k + 2], 16) for k in (1, 3, 5))


def close(a, b, tol=40) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a[:3], b[:3]))


def seed_svg(stage: str) -> str:
    net = SEED.network()
    kw = {"weights": {}, "forward": {"x": SEED.x, "t": SEED.t},
          "backward": {"x": SEED.x, "t": SEED.t},
          "update": {"x": SEED.x, "t": SEED.t, "lr": SEED.lr}}[stage]
    return net.draw(stage=stage, weight_names="seed", **kw)


def emulate(browser, scheme: str) -> None:
    browser.send("Emulation.setEmulatedMedia",
                 {"features": [{"name": "prefers-color-scheme", "value": scheme}]}, session=True)


def mixed_sign_svg() -> str:
    net = cprop.MLP([3, 4, 2], hidden="tanh", output="softmax", loss="cross_entropy", seed=1)
    return net.draw(stage="update", x=[0.1, -0.5, 0.3], t=1, lr=0.5)


@pytest.mark.parametrize("stage", ["weights", "forward", "backward", "update", "3-4-2"])
def test_figure_renders_units_and_edges_where_the_svg_says(browser, tmp_path, stage):
    svg = mixed_sign_svg() if stage == "3-4-2" else seed_svg(stage)
    if stage == "3-4-2":
        values = [float(v) for v in re.findall(r'class="edge[^"]*".*?data-value="([^"]+)"', svg)]
        assert min(values) < 0 < max(values)  # both colours are checked
    root = ET.fromstring(svg)
    width, height = int(root.get("width")), int(root.get("height"))
    path = tmp_path / f"{stage}.svg"
    path.write_text(svg, encoding="utf-8")
    browser.open(path, width=width, height=height)
    assert browser.console_errors() == []
    img = read_png(browser.screenshot())
    assert (img.width, img.height) == (width, height)
    # not blank: a good share of the canvas is drawn
    drawn = img.count(lambda p: not close(p, (255, 255, 255), 8))
    assert drawn > 0.04 * width * height
    # the browser lays out every unit and edge where the SVG's numbers put them
    boxes = browser.evaluate("""
        Array.from(document.querySelectorAll('[data-ref]')).map(function (el) {
          var r = el.getBBox(); return [el.getAttribute('data-ref'), r.x, r.y, r.width, r.height];
        })""")
    by_ref = {}
    for ref, x, y, w, h in boxes:
        by_ref.setdefault(ref, []).append((x, y, w, h))
    for g in root.iter(SVG + "g"):
        cls = g.get("class", "").split()
        if "unit" in cls:
            rect = g.find(SVG + "rect")
            x0, y0 = float(rect.get("x")), float(rect.get("y"))
            w, h = float(rect.get("width")), float(rect.get("height"))
            x, y, bw, bh = by_ref[g.get("data-ref")][0]
            assert abs(x - x0) < 1.5 and abs(y - y0) < 1.5 and abs(bw - w) < 3 and abs(bh - h) < 3
            # on screen: the card's border is drawn in its stroke colour, inside it is white
            cy = round(float(g.get("data-cy")))
            border = img.pixel(round(x0), cy)
            assert close(border, hex_rgb(rect.get("stroke")), 90), (g.get("data-ref"), border)
            assert close(img.pixel(round(x0 + 6), round(y0 + h - 8)), (255, 255, 255), 12)
        if "edge" in cls and "edge-label" not in cls:
            line = g.find(SVG + "line")
            x1, y1, x2, y2 = (float(line.get(k)) for k in ("x1", "y1", "x2", "y2"))
            colour = hex_rgb(line.get("stroke"))
            # a point 8 % along the edge (clear of the labels) has the edge's colour: the
            # line's core is within a pixel or two of it (lines are antialiased)
            px, py = x1 + 0.08 * (x2 - x1), y1 + 0.08 * (y2 - y1)
            near = [img.pixel(round(px) + dx, round(py) + dy)
                    for dx in range(-2, 3) for dy in range(-2, 3)]
            pixel = min(near, key=lambda p: sum(abs(int(a) - b) for a, b in zip(p, colour)))
            r, _, b = pixel[:3]
            if colour == hex_rgb("#2f6fdb"):  # positive: clearly blue
                assert b > r + 80 and b > 180, (g.get("data-ref"), pixel)
            else:  # negative: clearly red
                assert r > b + 80 and r > 180, (g.get("data-ref"), pixel)


def test_wide_network_figure_renders(browser, tmp_path):
    net = cprop.MLP([64, 32, 10], hidden="relu", output="softmax", loss="cross_entropy", seed=0)
    svg = net.draw(stage="forward", x=np.linspace(-1, 1, 64))
    root = ET.fromstring(svg)
    path = tmp_path / "wide.svg"
    path.write_text(svg, encoding="utf-8")
    width, height = int(root.get("width")), int(root.get("height"))
    browser.open(path, width=width, height=height)
    img = read_png(browser.screenshot())
    # every unit circle is on screen where the SVG says, filled with its tint
    for g in root.iter(SVG + "g"):
        if "unit" not in g.get("class", "").split():
            continue
        circle = g.find(SVG + "circle")
        cx, cy, r = (float(circle.get(k)) for k in ("cx", "cy", "r"))
        # just inside the circle's left edge, clear of the name text
        pixel = img.pixel(round(cx - r + 4), round(cy))
        assert close(pixel, hex_rgb(circle.get("fill")), 30), (g.get("data-name"), pixel)
    # nothing drawn past the canvas: the text fits (bounding boxes from the browser)
    right = browser.evaluate("""Math.max.apply(null, Array.from(document.querySelectorAll('text'))
        .map(function (t) { var b = t.getBBox(); return b.x + b.width; }))""")
    assert right <= width


def seed_page(tmp_path, **kw) -> tuple:
    net = SEED.network()
    html = explain_page(net, SEED.x, SEED.t, SEED.lr, weight_names="seed", **kw)
    path = tmp_path / "page.html"
    path.write_text(html, encoding="utf-8")
    return path, net.explain(SEED.x, SEED.t, SEED.lr)


def numbers_of(text: str) -> set:
    return set(_NUMBER.findall(text))


def test_page_loads_alone_without_errors_and_holds_every_number(browser, tmp_path):
    path, trace = seed_page(tmp_path)
    browser.open(path, width=1400, height=1000)
    assert browser.console_errors() == []
    loads = [u for u in browser.requests() if not u.startswith("data:")]
    assert loads == [path.as_uri()]
    text = browser.evaluate("document.body.innerText")
    missing = numbers_of(trace.format("seed")) - numbers_of(text)
    assert not missing
    for line in trace.lines("seed"):
        if line.text:
            assert line.text.strip() in text
    img = read_png(browser.screenshot())
    assert img.count(lambda p: not close(p, (255, 255, 255), 8)) > 0.05 * img.width * img.height


def test_page_reads_fully_with_javascript_off(browser, tmp_path):
    path, trace = seed_page(tmp_path)
    browser.set_javascript(False)
    try:
        browser.open(path, width=1400, height=1000)
        dom = browser.dom()
        assert 'class="js"' not in dom  # the script really did not run
        text = browser.evaluate("document.body.innerText")
        assert not numbers_of(trace.format("seed")) - numbers_of(text)
        assert browser.evaluate("document.querySelectorAll('svg.cprop-figure').length") == 4
        assert browser.console_errors() == []
    finally:
        browser.set_javascript(True)


def highlighted(browser) -> list:
    return browser.evaluate("""Array.from(document.querySelectorAll('.figure .hl'))
        .map(function (el) { return el.closest('section').id + ' ' +
                                    el.getAttribute('data-ref'); }).sort()""")


def test_hover_and_keys_highlight_what_a_line_is_about(browser, tmp_path):
    path, _ = seed_page(tmp_path)
    browser.open(path, width=1400, height=1000)
    assert 'class="js"' in browser.dom()
    # hover over the line dE/dh1 = w5·delta_y1 + w7·delta_y2
    box = browser.evaluate("""(function () {
        var li = Array.from(document.querySelectorAll('li[data-refs]')).find(function (l) {
          return l.textContent.trim().indexOf('dE/dh1 = w5·delta_y1') === 0; });
        li.scrollIntoView({block: 'center'});
        var r = li.getBoundingClientRect(); return [r.x + 20, r.y + r.height / 2]; })()""")
    browser.hover(*box)
    # the unit, the two edges out of it (each drawn as a line and a label) and their targets
    assert highlighted(browser) == sorted(
        f"backward {r}" for r in ["unit:1:0", "edge:2:0:0", "edge:2:0:0", "edge:2:0:1",
                                  "edge:2:0:1", "unit:2:0", "unit:2:1"])
    # the highlighted edge is drawn in amber on screen
    edge = browser.evaluate("""(function () {
        var l = document.querySelector('#backward .edge.hl line');
        var b = l.getBoundingClientRect(); var s = getComputedStyle(l).stroke;
        return [b.x + 0.08 * b.width, b.y + (l.y1.baseVal.value < l.y2.baseVal.value ?
                0.08 : 0.92) * b.height, s]; })()""")
    assert edge[2] == "rgb(217, 119, 6)"
    # keys: Home goes to the first line, ArrowDown / j step on, ArrowUp / k step back
    browser.key("Home")
    first = browser.evaluate("document.querySelector('li.current').textContent")
    assert first.startswith("One SGD step on a 2-2-2 network")
    for key in ("ArrowDown", "j", "j"):
        browser.key(key)
    current = browser.evaluate("document.querySelector('li.current').textContent")
    assert current.strip() == "z_h1 = b1[1] + x1·w1 + x2·w3"
    assert highlighted(browser) == sorted(
        f"forward {r}" for r in ["unit:1:0", "bias:1:0", "edge:1:0:0", "edge:1:1:0",
                                 "edge:1:0:0", "edge:1:1:0", "unit:0:0", "unit:0:1"])
    browser.key("k")
    current = browser.evaluate("document.querySelector('li.current').textContent")
    assert current.startswith("Forward pass:")  # a heading: about every computed unit
    assert highlighted(browser) == sorted(f"forward unit:{L}:{j}" for L in (1, 2) for j in (0, 1))
    browser.key("Escape")
    assert browser.evaluate("document.querySelectorAll('li.current').length") == 0


def test_figures_read_on_a_dark_page(browser, tmp_path):
    """In dark mode the page turns dark and the figures' free text turns light; the labels
    stay dark on their white chips. Contrast is computed from the browser's own colours."""
    path, _ = seed_page(tmp_path)

    def luminance(rgb):
        def ch(c):
            c = c / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b = (ch(v) for v in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    def contrast(a, b):
        la, lb = sorted((luminance(a), luminance(b)), reverse=True)
        return (la + 0.05) / (lb + 0.05)

    def colours():
        return browser.evaluate("""(function () {
            function rgb(s) { return s.match(/\\d+/g).slice(0, 3).map(Number); }
            return {
              page: rgb(getComputedStyle(document.body).backgroundColor),
              muted: rgb(getComputedStyle(document.querySelector('.figure text.muted')).fill),
              label: rgb(getComputedStyle(document.querySelector('.edge-label text')).fill),
              chip: rgb(getComputedStyle(document.querySelector('.edge-label rect')).fill),
              positive: rgb(getComputedStyle(document.querySelector('.edge line')).stroke)
            }; })()""")

    try:
        for scheme in ("light", "dark"):
            browser.open(path, width=1400, height=1000)
            emulate(browser, scheme)
            c = colours()
            assert contrast(c["muted"], c["page"]) >= 4.5, (scheme, c)
            assert contrast(c["label"], c["chip"]) >= 7, (scheme, c)
            assert contrast(c["positive"], c["page"]) >= 3, (scheme, c)
            dark_page = luminance(c["page"]) < 0.05
            assert dark_page == (scheme == "dark")
    finally:
        emulate(browser, "light")
