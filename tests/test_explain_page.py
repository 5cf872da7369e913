"""The explain page and the figure commands: `cprop demo --figures DIR`, `cprop demo --html FILE`,
`cprop explain ... --html FILE` (read as HTML here; tests/test_browser_pages.py renders them)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest

import cprop
from cprop.cli import main
from cprop.examples import EXAMPLES
from cprop.page import SECTIONS, explain_page

SVG = "{http://www.w3.org/2000/svg}"


class Page(HTMLParser):
    """What a test needs from the page: its lines, figures' ids by section, every URL."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.section = None
        self.lines = []  # (section, refs, text)
        self.figure_refs: dict[str, set] = {}
        self.urls = []
        self.tags = []
        self.csp = None
        self._li = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for key in ("src", "href", "xlink:href", "action", "data", "poster"):
            if key in a:
                self.urls.append(a[key])
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a["content"]
        if tag == "section":
            self.section = a.get("id")
        if a.get("data-ref") and self.section:
            self.figure_refs.setdefault(self.section, set()).add(a["data-ref"])
        if tag == "li" and "data-refs" in a:
            self._li = [self.section, a["data-refs"].split(), ""]

    def handle_data(self, data):
        if self._li is not None:
            self._li[2] += data

    def handle_endtag(self, tag):
        if tag == "li" and self._li is not None:
            self.lines.append(tuple(self._li))
            self._li = None


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def seed_page():
    ex = EXAMPLES["seed"]
    net = ex.network()
    return net, explain_page(net, ex.x, ex.t, ex.lr, weight_names="seed")


def test_page_holds_the_derivation_line_by_line():
    net, html = seed_page()
    ex = EXAMPLES["seed"]
    page = Page(html)
    expected = [ln.text for ln in net.explain(ex.x, ex.t, ex.lr).lines("seed") if ln.text]
    assert [text for _, _, text in page.lines] == expected
    assert "  z_h1 = b1[1] + x1·w1 + x2·w3" in expected
    # each line is in the section of its stage, beside that stage's figure
    where = {section: stage for section, _, stage, _ in SECTIONS}
    assert [s for s, _, _ in page.lines].count("forward") == sum(
        ln.section in ("forward", "loss") for ln in net.explain(ex.x, ex.t, ex.lr).lines()
        if ln.text)
    for section, refs, text in page.lines:
        assert section in where
        assert set(refs) <= page.figure_refs[section], text


def test_page_ties_lines_to_the_right_elements():
    _, html = seed_page()
    page = Page(html)
    refs = {text.strip(): set(r) for _, r, text in page.lines}
    # every line is about something in its figure, headings included
    assert all(r for _, r, _ in page.lines)
    assert refs["z_h1 = b1[1] + x1·w1 + x2·w3"] == {
        "unit:1:0", "bias:1:0", "edge:1:0:0", "edge:1:1:0", "unit:0:0", "unit:0:1"}
    line = next(t for t in refs if t.startswith("dE/dw7 = h1·delta_y2"))
    assert refs[line] == {"edge:2:0:1", "unit:1:0", "unit:2:1"}
    assert refs["dE/dh2 = w6·delta_y1 + w8·delta_y2"] == {
        "unit:1:1", "edge:2:1:0", "edge:2:1:1", "unit:2:0", "unit:2:1"}


def test_page_loads_nothing_from_elsewhere():
    _, html = seed_page()
    page = Page(html)
    assert page.urls == []
    assert page.csp.startswith("default-src 'none';")
    assert "link" not in page.tags and "img" not in page.tags and "iframe" not in page.tags
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", html)
    # four figures, one per stage, each valid SVG
    figures = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert [ET.fromstring(f).get("data-stage") for f in figures] == [
        "weights", "forward", "backward", "update"]


def test_page_ids_are_unique():
    _, html = seed_page()
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)) > 60


def test_cli_demo_figures(tmp_path, capsys):
    out_dir = tmp_path / "figs"
    code, out, err = run_cli(capsys, "demo", "--figures", out_dir)
    assert code == 0 and out == ""
    names = ["network.svg", "forward.svg", "backward.svg", "update.svg"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)
    for name in names:
        assert f"cprop demo: wrote {out_dir / name}" in err
    ex = EXAMPLES["seed"]
    net = ex.network()
    assert (out_dir / "update.svg").read_text(encoding="utf-8") == net.draw(
        stage="update", x=ex.x, t=ex.t, lr=ex.lr, weight_names=ex.weight_names)
    assert (out_dir / "network.svg").read_text(encoding="utf-8") == net.draw(
        weight_names="seed")


def test_cli_demo_figures_canonical(tmp_path, capsys):
    code, _, _ = run_cli(capsys, "demo", "--network", "canonical", "--figures", tmp_path)
    assert code == 0
    root = ET.fromstring((tmp_path / "network.svg").read_text(encoding="utf-8"))
    names = {g.get("data-ref"): g.get("data-name") for g in root.iter(SVG + "g")
             if "edge" in g.get("class", "").split()}
    assert names["edge:1:1:0"] == "w2" and names["edge:1:0:1"] == "w3"


def test_cli_demo_html(tmp_path, capsys):
    path = tmp_path / "demo.html"
    code, out, err = run_cli(capsys, "demo", "--html", path)
    assert code == 0 and out == "" and f"wrote {path}" in err
    html = path.read_text(encoding="utf-8")
    page = Page(html)
    ex = EXAMPLES["seed"]
    assert len(page.lines) == sum(1 for ln in ex.network().explain(ex.x, ex.t, ex.lr).lines()
                                  if ln.text)
    assert "<h1>The seed text&#x27;s worked example (b1 = 0.30, b2 = 0.70" in html
    assert "the text&#x27;s 0.7676 is a slip" in html  # the checked figures are there
    assert "0.410535905081" in html  # w6's blank, filled in


def test_cli_explain_html_tutorial_command(tmp_path, capsys):
    path = tmp_path / "explain.html"
    code, out, err = run_cli(capsys, "explain", "--layers", "3,4,2", "--hidden", "tanh",
                             "--output", "softmax", "--loss", "cross_entropy", "--html", path)
    assert code == 0 and out == ""
    page = Page(path.read_text(encoding="utf-8"))
    code, text, _ = run_cli(capsys, "explain", "--layers", "3,4,2", "--hidden", "tanh",
                            "--output", "softmax", "--loss", "cross_entropy")
    derivation = [ln for ln in text.split("\n\n", 1)[1].splitlines() if ln]
    assert [t for _, _, t in page.lines] == derivation


@pytest.mark.parametrize("args, message", [
    (["demo", "--figures", "{file}"], "--figures: '{file}' exists and is not a directory"),
    (["demo", "--figures", "{missing}/sub"], "--figures: the directory"),
    (["demo", "--html", "{missing}/x.html"], "--html: the directory"),
    (["demo", "--html", "{dir}"], "is a directory"),
    (["demo", "--figures", "{dir}/f", "--json"], "--json: not used with --figures"),
    (["demo", "--html", "{dir}/p.html", "--steps", "3"], "--steps: not used with --html"),
    (["explain", "--layers", "2,2", "--html", "{dir}/p.html", "--json"], "--json: not used"),
    (["explain", "--layers", "2,2", "--html", "{missing}/p.html"], "--html: the directory"),
])
def test_cli_file_option_errors(tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("x")
    subst = {"file": str(tmp_path / "file"), "missing": str(tmp_path / "missing"),
             "dir": str(tmp_path)}
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_cli(capsys, *[a.format(**subst) for a in args])
    assert code == 2 and out == ""
    assert err.startswith(f"cprop {args[0]}: error: ")
    assert message.format(**subst) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_explain_page_of_any_small_net_is_consistent():
    rng = np.random.default_rng(4)
    for sizes, kw in [([2, 3, 2], {"output": "softmax", "loss": "cross_entropy"}),
                      ([3, 2, 2, 1], {"hidden": "leaky_relu", "output": "sigmoid",
                                      "loss": "binary_cross_entropy"}),
                      ([4, 3], {"output": "identity"})]:
        net = cprop.MLP(sizes, seed=2, **kw)
        x = rng.uniform(-1, 1, sizes[0])
        t = 1 if kw.get("loss") == "cross_entropy" else rng.uniform(0, 1, sizes[-1])
        page = Page(explain_page(net, x, t, 0.3))
        for section, refs, text in page.lines:
            assert set(refs) <= page.figure_refs[section], text
        assert len(page.lines) == sum(1 for ln in net.explain(x, t, 0.3).lines() if ln.text)
