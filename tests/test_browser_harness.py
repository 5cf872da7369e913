"""The headless-Chromium harness itself (tests/browser.py, tests/png.py, conftest's ``browser``
fixture): rendering, screenshots, console and request capture, DOM, input, failures."""

from __future__ import annotations

import math
import os
import random
import signal
import struct
import zlib

import pytest

from browser import Browser, BrowserError, find_chromium
from png import read_png

WHITE = (255, 255, 255, 255)
RED = (255, 0, 0, 255)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def html(body, script=""):
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>start</title></head>"
            f"<body style='margin:0'>{body}<script>{script}</script></body></html>")


# --- png.py, against a reference encoder ---------------------------------------------------------

def _encode_png(width, height, rows, channels, filters):
    """A PNG of ``rows`` (bytes), row y filtered with ``filters[y % len(filters)]``."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I",
                                                                         zlib.crc32(kind + body))

    raw, prev = bytearray(), bytes(width * channels)
    for y, row in enumerate(rows):
        kind = filters[y % len(filters)]
        raw.append(kind)
        for i, v in enumerate(row):
            a = row[i - channels] if i >= channels else 0
            b, c = prev[i], (prev[i - channels] if i >= channels else 0)
            p = a + b - c
            paeth = (a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c)
                     else b if abs(p - b) <= abs(p - c) else c)
            raw.append((v - (0, a, b, (a + b) // 2, paeth)[kind]) & 0xFF)
        prev = row
    header = struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [3, 4])
def test_png_reader_undoes_all_five_filters(channels):
    rng = random.Random(channels)
    width, height = 16, 30
    rows = [bytearray(rng.randrange(256) for _ in range(width * channels)) for _ in range(height)]
    # Row 4 is Paeth-filtered: at x = 1 and x = 3 its predictor has ties (left = 10, up = 40,
    # up-left = 20: up and up-left tie, up wins; 40, 10, 20: left and up-left tie, left wins).
    for x, (left, up, upleft) in ((1, (10, 40, 20)), (3, (40, 10, 20))):
        for ch in range(channels):
            rows[4][(x - 1) * channels + ch] = left
            rows[3][x * channels + ch] = up
            rows[3][(x - 1) * channels + ch] = upleft
    rows = [bytes(row) for row in rows]
    img = read_png(_encode_png(width, height, rows, channels, [0, 1, 2, 3, 4]))
    assert (img.width, img.height) == (width, height)
    for y in range(height):
        for x in range(width):
            px = tuple(rows[y][x * channels:(x + 1) * channels])
            assert img.pixel(x, y) == (px if channels == 4 else (*px, 255)), (x, y)
    w, h, unpacked = img
    assert (w, h, unpacked[3][5]) == (width, height, img.pixel(5, 3))


def test_png_reader_bbox_count_and_errors():
    # 6 x 4 white, with a 2 x 2 black square at x 3..4, y 1..2
    rows = [bytes(b for x in range(6) for b in ((0, 0, 0) if 3 <= x <= 4 and 1 <= y <= 2
                                                  else (255, 255, 255))) for y in range(4)]
    img = read_png(_encode_png(6, 4, rows, 3, [1, 4]))
    assert img.bbox_of_non_background() == (3, 1, 5, 3)
    assert img.count(lambda p: p == (0, 0, 0, 255)) == 4
    blank = read_png(_encode_png(2, 2, [bytes([9] * 6)] * 2, 3, [0]))
    assert blank.bbox_of_non_background() is None
    with pytest.raises(IndexError):
        img.pixel(6, 0)
    with pytest.raises(ValueError, match="not a PNG"):
        read_png(b"GIF89a")


# --- rendering ----------------------------------------------------------------------------------

def test_svg_screenshot_shows_the_circle_where_drawn(browser, tmp_path):
    cx, cy, r = 70, 50, 25
    svg = write(tmp_path, "circle.svg",
                '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="120">'
                '<rect width="200" height="120" fill="white"/>'
                f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="red"/></svg>')
    browser.open(svg, width=200, height=120)
    assert browser.dom().startswith("<svg")
    img = read_png(browser.screenshot())
    assert (img.width, img.height) == (200, 120)
    assert img.pixel(cx, cy) == RED
    assert img.pixel(cx + r - 3, cy) == RED
    assert img.pixel(150, 100) == WHITE
    assert img.pixel(cx + r + 3, cy) == WHITE
    left, top, right, bottom = img.bbox_of_non_background(WHITE)
    for got, want in zip((left, top, right, bottom), (cx - r, cy - r, cx + r, cy + r)):
        assert abs(got - want) <= 2, ((left, top, right, bottom), (cx - r, cy - r, cx + r, cy + r))
    reds = img.count(lambda p: p == RED)
    assert abs(reds - math.pi * r * r) < 0.08 * math.pi * r * r, reds
    assert browser.console_errors() == []
    assert browser.requests() == [svg.as_uri()]

    # a clip of the circle's centre is all red, and has the clip's size
    clip = read_png(browser.screenshot(clip={"x": cx - 5, "y": cy - 5, "width": 10,
                                             "height": 8}))
    assert (clip.width, clip.height) == (10, 8)
    assert clip.count(lambda p: p == RED) == 80


def test_html_page_renders_at_the_viewport_size(browser, tmp_path):
    page = write(tmp_path, "box.html", html(
        "<div style='position:absolute;left:100px;top:20px;width:30px;height:40px;"
        "background:#0000ff'></div>"))
    browser.open(page, width=320, height=90)
    img = read_png(browser.screenshot())
    assert (img.width, img.height) == (320, 90)
    assert img.bbox_of_non_background(WHITE) == (100, 20, 130, 60)
    assert img.pixel(110, 30) == (0, 0, 255, 255)
    assert browser.evaluate("[innerWidth, innerHeight]") == [320, 90]


def test_open_returns_after_the_load_event(browser, tmp_path):
    # The frame's script keeps it loading for 0.2 s, and the page's load event waits for it
    # (DOMContentLoaded does not).
    slow = write(tmp_path, "slow.html", html(
        "<p>slow</p>", "const t = Date.now(); while (Date.now() - t < 200);"))
    page = write(tmp_path, "outer.html", html("<iframe src='slow.html'></iframe>"))
    browser.open(page)
    assert browser.evaluate("document.readyState") == "complete"
    # (file:// pages have opaque origins, so the page cannot look into its frame)
    assert browser.requests() == [page.as_uri(), slow.as_uri()]


# --- console errors, exceptions, requests --------------------------------------------------------

def test_console_error_is_captured_and_log_is_not(browser, tmp_path):
    page = write(tmp_path, "console.html", html(
        "<p>hi</p>", 'console.log("just info"); console.error("boom", 42);'))
    browser.open(page)
    errors = browser.console_errors()
    assert len(errors) == 1, errors
    assert "boom 42" in errors[0]
    assert not any("just info" in e for e in errors)


def test_each_open_resets_the_errors(browser, tmp_path):
    bad = write(tmp_path, "bad.html", html("", 'console.error("first page")'))
    good = write(tmp_path, "good.html", html("<p>fine</p>"))
    browser.open(bad)
    assert any("first page" in e for e in browser.console_errors())
    browser.open(good)
    assert browser.console_errors() == []
    assert browser.requests() == [good.as_uri()]


def test_uncaught_exception_is_reported(browser, tmp_path):
    page = write(tmp_path, "throws.html", html(
        "<p>x</p>", 'window.addEventListener("load", () => { throw new Error("kaboom"); });'))
    browser.open(page)
    errors = browser.console_errors()
    assert any("kaboom" in e and e.startswith("uncaught") for e in errors), errors


def test_evaluate_returns_json_and_raises_on_exceptions(browser, tmp_path):
    browser.open(write(tmp_path, "e.html", html("<p id='p'>text</p>")))
    assert browser.evaluate("({a: [1, 2.5, 'x'], b: null})") == {"a": [1, 2.5, "x"], "b": None}
    assert browser.evaluate("Promise.resolve(6 * 7)") == 42
    assert browser.evaluate("document.getElementById('p').textContent") == "text"
    with pytest.raises(BrowserError, match="TypeError"):
        browser.evaluate("null.property")
    with pytest.raises(BrowserError, match="nope"):
        browser.evaluate("Promise.reject(new Error('nope'))")


def test_missing_image_is_requested_and_reported(browser, tmp_path):
    page = write(tmp_path, "img.html", html('<img src="missing.png" alt="">'))
    browser.open(page)
    missing = (tmp_path / "missing.png").as_uri()
    assert browser.requests() == [page.as_uri(), missing]
    errors = browser.console_errors()
    assert any(missing in e and "ERR_FILE_NOT_FOUND" in e for e in errors), errors


def test_open_a_missing_file_is_an_error(browser, tmp_path):
    with pytest.raises(BrowserError, match="no such file"):
        browser.open(tmp_path / "nothing.html")


# --- DOM and JavaScript on/off -------------------------------------------------------------------

def test_dom_after_load_with_and_without_javascript(browser, tmp_path):
    # the element's id is built at run time, so the script's own text cannot match
    page = write(tmp_path, "dom.html", html(
        "<p id='static'>s</p>",
        'window.addEventListener("load", () => { const d = document.createElement("div");'
        ' d.id = "add" + "ed"; document.body.appendChild(d); });'))
    browser.open(page)
    dom = browser.dom()
    assert dom.startswith("<html") and dom.endswith("</html>")
    assert '<div id="added"></div>' in dom
    browser.set_javascript(False)
    try:
        browser.open(page)
        dom = browser.dom()
        assert '<p id="static">s</p>' in dom
        assert '<div id="added">' not in dom
    finally:
        browser.set_javascript(True)
    browser.open(page)
    assert '<div id="added"></div>' in browser.dom()


# --- input ---------------------------------------------------------------------------------------

def test_keys_reach_a_keydown_listener(browser, tmp_path):
    page = write(tmp_path, "keys.html", html(
        "<button id='one'>1</button><button id='two'>2</button>",
        'const seen = []; document.addEventListener("keydown", e => {'
        ' seen.push(`${e.key}/${e.code}/${e.keyCode}`); document.title = seen.join(" "); });'))
    browser.open(page)
    for key in ("ArrowDown", "ArrowUp", "j", "k"):
        browser.key(key)
    assert (browser.evaluate("document.title")
            == "ArrowDown/ArrowDown/40 ArrowUp/ArrowUp/38 j/KeyJ/74 k/KeyK/75")
    # Tab does what Tab does: focus moves from the first button to the second
    browser.evaluate("document.getElementById('one').focus()")
    browser.key("Tab")
    assert browser.evaluate("document.activeElement.id") == "two"
    with pytest.raises(ValueError):
        browser.key("NoSuchKey")


def test_hover_triggers_mouseover(browser, tmp_path):
    page = write(tmp_path, "hover.html", html(
        "<div id='box' style='position:absolute;left:50px;top:60px;width:40px;height:30px;"
        "background:#eee'></div><svg style='position:absolute;left:200px;top:0' width='100'"
        " height='100'><circle id='dot' cx='50' cy='50' r='20' fill='green'/></svg>",
        'const log = []; for (const id of ["box", "dot"]) document.getElementById(id)'
        '.addEventListener("mouseover", () => { log.push(id); document.title = log.join(" "); });'
        ))
    browser.open(page, width=400, height=200)
    browser.hover(10, 10)
    assert browser.evaluate("document.title") == "start"
    browser.hover(70, 75)
    assert browser.evaluate("document.title") == "box"
    browser.hover(250, 50)
    assert browser.evaluate("document.title") == "box dot"


# --- failures: timeouts, a dying browser, one that never starts ----------------------------------

def test_a_command_that_never_answers_times_out(browser, tmp_path):
    browser.open(write(tmp_path, "t.html", html("<p>t</p>")))
    saved = browser.timeout
    browser.timeout = 0.25
    try:
        with pytest.raises(BrowserError, match=r"timed out after 0.25 s .*Runtime.evaluate"):
            browser.evaluate("new Promise(() => {})")
    finally:
        browser.timeout = saved
    # the browser is still usable afterwards
    browser.open(write(tmp_path, "u.html", html("<p>u</p>")))
    assert browser.evaluate("1 + 1") == 2


def test_a_browser_that_dies_gives_a_clear_error(browser, tmp_path):
    b = Browser(browser.executable)          # a second one, to kill (the fixture's skip rules)
    try:
        b.open(write(tmp_path, "d.html", html("<p>d</p>")))
        os.kill(b.pid, signal.SIGKILL)
        with pytest.raises(BrowserError, match="Chromium died .*killed by signal 9"):
            b.evaluate("1")
    finally:
        b.close()


def test_a_browser_that_cannot_start_reports_its_stderr(tmp_path):
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\necho 'fake: cannot open display' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(BrowserError, match=r"(?s)exit status 3.*fake: cannot open display"):
        Browser(str(fake))


def test_find_chromium_honours_cprop_chromium(monkeypatch, tmp_path):
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CPROP_CHROMIUM", str(fake))
    assert find_chromium() == str(fake)
    monkeypatch.setenv("CPROP_CHROMIUM", str(tmp_path / "nonexistent"))
    assert find_chromium() is None
