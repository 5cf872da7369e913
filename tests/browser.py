"""A small headless-Chromium driver for the tests, standard library only.

It speaks the Chrome DevTools Protocol (CDP) over ``--remote-debugging-pipe``: Chromium reads
commands from its fd 3 and writes replies and events to its fd 4, each message one JSON object
followed by a NUL byte. One browser process serves a whole test session (the ``browser`` fixture
in conftest.py); every :meth:`Browser.open` gets a fresh page, so nothing leaks between tests.

    with Browser() as b:
        b.open(path, width=400, height=300)
        png = b.screenshot()
        assert b.console_errors() == []

Chromium is found through ``$CPROP_CHROMIUM``, else ``chromium``, ``chromium-browser`` or
``google-chrome`` on PATH (:func:`find_chromium`).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--remote-debugging-pipe",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    # Containers often have a small /dev/shm, where Chromium's shared memory runs out and it
    # crashes (Debian's launcher means to add this when /dev/shm is small; its test is broken).
    "--disable-dev-shm-usage",
    # Keep it off the network (update and field-trial pings from CI) and off the desktop's
    # keyring (a developer's session could otherwise ask to unlock it).
    "--disable-background-networking",
    "--disable-component-update",
    "--password-store=basic",
)

# For Input.dispatchKeyEvent: key -> (DOM ``code``, Windows virtual key code, text). The key alone
# is enough for ``e.key`` and for default actions (Tab moves the focus); the code fills
# ``e.code`` and the virtual key code ``e.keyCode`` (0 without it), for pages that read those.
_KEYS = {
    "Tab": ("Tab", 9, ""), "Enter": ("Enter", 13, "\r"), "Escape": ("Escape", 27, ""),
    "Backspace": ("Backspace", 8, ""), " ": ("Space", 32, " "),
    "ArrowLeft": ("ArrowLeft", 37, ""), "ArrowUp": ("ArrowUp", 38, ""),
    "ArrowRight": ("ArrowRight", 39, ""), "ArrowDown": ("ArrowDown", 40, ""),
    "PageUp": ("PageUp", 33, ""), "PageDown": ("PageDown", 34, ""),
    "End": ("End", 35, ""), "Home": ("Home", 36, ""), "Delete": ("Delete", 46, ""),
}


class BrowserError(RuntimeError):
    """Chromium could not be started, died, timed out, or a command or script failed."""


def find_chromium() -> str | None:
    """``$CPROP_CHROMIUM`` if set (``None`` if it is not an executable file), else the first of
    ``chromium``, ``chromium-browser``, ``google-chrome`` on PATH, else ``None``."""
    exe = os.environ.get("CPROP_CHROMIUM")
    if exe:
        found = shutil.which(exe)
        return found if found and os.path.isfile(found) else None
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


_TRAMPOLINE = """if True:
    import os, sys
    os.dup2(int(sys.argv[1]), 3)
    os.dup2(int(sys.argv[2]), 4)
    os.close(int(sys.argv[1]))
    os.close(int(sys.argv[2]))
    os.execv(sys.argv[3], sys.argv[3:])
"""


def _high_fd(fd: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered 10 or above (and ``fd`` closed), so that the
    trampoline's dup2 calls can never overwrite one another."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """One headless Chromium process; one page at a time (see :meth:`open`)."""

    def __init__(self, executable: str | None = None, *, timeout: float = 30.0,
                 extra_flags: tuple[str, ...] = ()):
        exe = executable or find_chromium()
        if exe is None:
            raise BrowserError("Chromium not found: install Debian's chromium package, "
                               "or set CPROP_CHROMIUM")
        self.executable = exe
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self._waiting = 0                    # the id of the command being waited for
        self._reply: dict | None = None
        self._events: list[dict] = []        # the current page's events not yet consumed
        self._session: str | None = None
        self._target: str | None = None
        self._javascript = True
        self._errors: list[str] = []
        self._requests: list[str] = []
        self._proc = None
        self._dir = tempfile.mkdtemp(prefix="cprop-chromium-")
        self._stderr_path = os.path.join(self._dir, "stderr.log")
        profile = os.path.join(self._dir, "profile")
        cmd_r, self._cmd_w = (_high_fd(fd) for fd in os.pipe())
        self._res_r, res_w = (_high_fd(fd) for fd in os.pipe())
        try:
            # Chromium must find the pipes at fds 3 and 4. pass_fds keeps them open across exec
            # at their own numbers (10 and above); a tiny Python trampoline moves them to 3 and 4
            # and execs Chromium (dash, Debian's sh, cannot redirect fds above 9).
            argv = [exe, *FLAGS, *extra_flags, f"--user-data-dir={profile}", "about:blank"]
            with open(self._stderr_path, "wb") as err:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, str(cmd_r), str(res_w),
                     *argv],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=(cmd_r, res_w),
                    start_new_session=True)
        except BaseException:
            os.close(self._cmd_w)
            os.close(self._res_r)
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        finally:
            os.close(cmd_r)
            os.close(res_w)
        try:
            self.version = self.send("Browser.getVersion")["product"]
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int | None:
        """The browser process's id (None once closed)."""
        return self._proc.pid if self._proc is not None else None

    # --- the protocol -----------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, *, session: bool | str = False,
             timeout: float | None = None) -> dict:
        """Send one CDP command and return its ``result``. ``session=True`` sends it to the
        current page (flattened session), a string to that session id, False to the browser."""
        if self._proc is None:
            raise BrowserError("the browser is closed")
        self._next_id += 1
        msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self._session if session is True else session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._cmd_w, data):]
        except (BrokenPipeError, OSError) as exc:
            raise self._died(f"while sending {method}") from exc
        seconds = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + seconds
        self._waiting, self._reply = msg_id, None
        while self._reply is None:
            self._read(deadline, seconds, f"the reply to {method}")
        reply = self._reply
        if "error" in reply:
            err = reply["error"]
            raise BrowserError(f"{method} failed: {err.get('message')} {err.get('data', '')}"
                               .rstrip())
        return reply.get("result", {})

    def _read(self, deadline: float, seconds: float, awaited: str) -> None:
        """Read what is available (waiting until ``deadline``) and dispatch whole messages;
        ``awaited`` names what the caller waits for, ``seconds`` its timeout, for the errors."""
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self._res_r], [], [], left)[0]:
            raise BrowserError(f"timed out after {seconds:g} s waiting for {awaited} from "
                               f"Chromium{self._stderr_tail()}")
        chunk = os.read(self._res_r, 1 << 20)
        if not chunk:
            raise self._died(f"while waiting for {awaited}")
        self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        for raw in messages:
            self._dispatch(json.loads(raw))

    def _dispatch(self, msg: dict) -> None:
        if "id" in msg:
            if msg["id"] == self._waiting:  # else the late reply to a command that timed out
                self._reply = msg
            return
        if self._session is None or msg.get("sessionId") != self._session:
            return                  # browser-wide events, or a closed page's late ones
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(_remote_text(arg) for arg in params.get("args", []))
            self._errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exc = details.get("exception", {})
            self._errors.append("uncaught: " + (exc.get("description") or details.get("text")
                                                or "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            url = f" ({entry['url']})" if entry.get("url") else ""
            self._errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')}{url}")
        elif method == "Network.requestWillBeSent":
            self._requests.append(params["request"]["url"])
        self._events.append(msg)

    def _wait_event(self, predicate, awaited: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, ev in enumerate(self._events):
                if predicate(ev):
                    del self._events[: i + 1]
                    return ev
            self._read(deadline, self.timeout, awaited)

    def _died(self, what: str) -> BrowserError:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=2)    # EOF comes first; the exit status soon
            except subprocess.TimeoutExpired:
                pass
        status = ("" if code is None else f" (killed by signal {-code})" if code < 0
                  else f" (exit status {code})")
        return BrowserError(f"Chromium died {what}{status}{self._stderr_tail()}")

    def _stderr_tail(self, lines: int = 30) -> str:
        """The end of Chromium's stderr, without its D-Bus complaints (a machine without a
        system bus gets dozens of them on every start; they are harmless)."""
        try:
            text = Path(self._stderr_path).read_text(errors="replace")
        except OSError:
            return ""
        tail = [line for line in text.splitlines() if ":ERROR:dbus/" not in line][-lines:]
        return ("\n--- Chromium's stderr (last lines) ---\n" + "\n".join(tail)) if tail else ""

    # --- pages ------------------------------------------------------------------------------

    def open(self, path_or_url, width: int = 800, height: int = 600) -> None:
        """Load a local file (``.svg``, ``.html``, ...) or a URL in a fresh page with a
        ``width`` x ``height`` CSS-pixel viewport, and return once its load event has fired.
        Resets :meth:`console_errors` and :meth:`requests`."""
        text = str(path_or_url)
        if "://" in text or text.startswith(("about:", "data:")):
            url = text
        else:
            path = Path(text).resolve()
            if not path.is_file():
                raise BrowserError(f"no such file: {path}")
            url = path.as_uri()
        self._close_page()
        self._target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget",
                                  {"targetId": self._target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)
        self.send("Page.setLifecycleEventsEnabled", {"enabled": True}, session=True)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  session=True)
        if not self._javascript:
            self.send("Emulation.setScriptExecutionDisabled", {"value": True}, session=True)
        self._events.clear()
        self._errors.clear()
        self._requests.clear()
        nav = self.send("Page.navigate", {"url": url}, session=True)
        if nav.get("errorText"):
            raise BrowserError(f"loading {url} failed: {nav['errorText']}")
        loader, frame = nav.get("loaderId"), nav["frameId"]
        # Page.loadEventFired carries no ids; the lifecycle "load" event of this navigation
        # (same loader) cannot be confused with the initial about:blank's.
        self._wait_event(
            lambda ev: ev.get("method") == "Page.lifecycleEvent"
            and ev["params"]["name"] == "load" and ev["params"]["frameId"] == frame
            and (loader is None or ev["params"]["loaderId"] == loader),
            f"the load event of {url}")
        self.url = url

    def _close_page(self) -> None:
        if self._target is not None:
            target, self._target, self._session = self._target, None, None
            self.send("Target.closeTarget", {"targetId": target})

    def _page(self) -> None:
        if self._session is None:
            raise BrowserError("no page: call open() first")

    def evaluate(self, js: str):
        """The JSON value of the expression ``js`` in the page (promises awaited); raises
        BrowserError with the exception text if it throws."""
        self._page()
        result = self.send("Runtime.evaluate", {"expression": js, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            exc = details.get("exception", {})
            raise BrowserError(f"JavaScript error in evaluate({js[:80]!r}): "
                               + (exc.get("description") or details.get("text", "?")))
        return result["result"].get("value")

    def screenshot(self, clip: dict | None = None) -> bytes:
        """The viewport (or ``clip``: x, y, width, height in CSS pixels) as PNG bytes."""
        self._page()
        params: dict = {"format": "png"}
        if clip is not None:
            params["clip"] = {"x": clip["x"], "y": clip["y"], "width": clip["width"],
                              "height": clip["height"], "scale": clip.get("scale", 1)}
        return base64.b64decode(self.send("Page.captureScreenshot", params,
                                          session=True)["data"])

    def dom(self) -> str:
        """``document.documentElement.outerHTML`` (what ``chromium --dump-dom`` prints); read
        through the DOM domain, so it works with JavaScript disabled too."""
        self._page()
        root = self.send("DOM.getDocument", {"depth": 1}, session=True)["root"]
        element = next(n for n in root.get("children", []) if n["nodeType"] == 1)
        return self.send("DOM.getOuterHTML", {"nodeId": element["nodeId"]},
                         session=True)["outerHTML"]

    def _sync(self) -> None:
        """A round trip through the page's renderer, so that the events it sent before (console
        messages, log entries, requests) have been read."""
        self.send("DOM.getDocument", {"depth": 0}, session=True)

    def console_errors(self) -> list[str]:
        """console.error / console.assert messages, uncaught exceptions and error log entries
        (e.g. a resource that failed to load) of the current page since :meth:`open`."""
        self._page()
        self._sync()
        return list(self._errors)

    def requests(self) -> list[str]:
        """The URLs the current page requested since :meth:`open`, the page itself first. Some
        ``data:`` URLs show up too (an SVG ``<image href="data:...">`` does, an HTML ``<img>``
        does not): a check that a page loads nothing but itself should leave them out."""
        self._page()
        self._sync()
        return list(self._requests)

    def key(self, key: str) -> None:
        """Press and release ``key``: a DOM key name ("ArrowDown", "Tab", "Enter", ...) or one
        printable character ("j")."""
        self._page()
        if key in _KEYS:
            code, vk, text = _KEYS[key]
        elif len(key) == 1:
            upper = key.upper()
            code = (f"Key{upper}" if upper.isalpha() and upper.isascii()
                    else f"Digit{key}" if key.isdigit() else "")
            vk, text = ord(upper) if upper.isascii() and upper.isalnum() else 0, key
        else:
            raise ValueError(f"unknown key {key!r}")
        event = {"key": key, "code": code, "windowsVirtualKeyCode": vk,
                 "nativeVirtualKeyCode": vk}
        down = {"type": "keyDown", "text": text, **event} if text else {"type": "rawKeyDown",
                                                                           **event}
        self.send("Input.dispatchKeyEvent", down, session=True)
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **event}, session=True)

    def hover(self, x: float, y: float) -> None:
        """Move the mouse to (x, y) in CSS pixels of the viewport."""
        self._page()
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y},
                  session=True)

    def set_javascript(self, enabled: bool) -> None:
        """Turn page scripts on or off, for the current page and every later :meth:`open` (the
        setting stays until changed: a test that turns it off should turn it back on).
        :meth:`evaluate` still runs either way (DevTools is not the page)."""
        self._javascript = bool(enabled)
        if self._session is not None:
            self.send("Emulation.setScriptExecutionDisabled", {"value": not enabled},
                      session=True)

    # --- shutting down ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the browser (politely, then by force) and remove its profile directory."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            clean = False
            if proc.poll() is None:
                data = json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0"
                try:
                    os.write(self._cmd_w, data)
                    proc.wait(timeout=10)
                    clean = True
                except (OSError, subprocess.TimeoutExpired):
                    pass
            if not clean:
                # A browser that died or hung can leave its helper processes (network service,
                # renderers) behind, still writing to the profile. They are in the process group
                # it leads (start_new_session=True), made of nothing but Chromium's processes.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        finally:
            os.close(self._cmd_w)
            os.close(self._res_r)
            for _ in range(20):             # a helper may still be exiting: retry a little
                shutil.rmtree(self._dir, ignore_errors=True)
                if not os.path.exists(self._dir):
                    break
                time.sleep(0.05)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _remote_text(obj: dict) -> str:
    """A console argument (a CDP RemoteObject) as text."""
    if "value" in obj:
        value = obj["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return obj.get("description") or obj.get("unserializableValue") or obj.get("type", "")
