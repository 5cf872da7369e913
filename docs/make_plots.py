"""Run the tutorial's code and keep the figures it draws: ``python docs/make_plots.py``.

Every fenced ```python block of ``docs/tutorial.md`` runs in order, in one namespace, and every
``$ cprop ...`` line of a ```console block runs through ``cprop.cli.main`` (``> FILE`` redirects
its stdout), all in a temporary directory. The PNG files the tutorial shows are then copied
into ``docs/``. ``tests/test_docs.py`` runs the same :func:`run_tutorial`, so a tutorial whose
code stops working fails the test suite.

The console blocks' shown output is checked loosely: each shown line must be a line the command
printed, digits aside (timings and the last digits of losses vary by machine).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
TUTORIAL = DOCS / "tutorial.md"
MAX_PNG_BYTES = 100 * 1024

_FENCE = re.compile(r"^```(\w*)\s*$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def blocks(path: Path = TUTORIAL) -> list[tuple[str, int, str]]:
    """(language, first line number, text) of every fenced block, in order."""
    out, lang, start, lines = [], None, 0, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _FENCE.match(line)
        if m and lang is None:
            lang, start, lines = m.group(1), n + 1, []
        elif line.strip() == "```" and lang is not None:
            out.append((lang, start, "\n".join(lines) + "\n"))
            lang = None
        elif lang is not None:
            lines.append(line)
    if lang is not None:
        raise ValueError(f"{path}:{start - 1}: unterminated code block")
    return out


def images(path: Path = TUTORIAL) -> list[str]:
    """The image files the tutorial shows (``![...](file.png)``)."""
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", path.read_text(encoding="utf-8"))


def _masked(line: str) -> str:
    return _NUMBER.sub("#", line.strip())


def _run_console(text: str, where: str) -> None:
    from cprop.cli import main

    commands: list[tuple[str, list[str]]] = []  # (command line, shown output lines)
    for line in text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"{where}: output before any '$ ' command: {line!r}")
    for command, shown in commands:
        words = shlex.split(command)
        target = None
        if ">" in words:
            k = words.index(">")
            words, target = words[:k], words[k + 1]
        if words[0] != "cprop":
            raise ValueError(f"{where}: only 'cprop ...' commands run here, got {command!r}")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(words[1:])
            except SystemExit as exc:  # argparse
                code = exc.code
        if code != 0:
            raise AssertionError(f"{where}: `{command}` exited with {code}:\n{err.getvalue()}")
        if target is not None:
            Path(target).write_text(out.getvalue(), encoding="utf-8")
        printed = {_masked(p) for p in re.split(r"[\r\n]", out.getvalue() + "\n" +
                                                 err.getvalue())}
        for line in shown:
            if line.strip() and _masked(line) not in printed:
                raise AssertionError(f"{where}: `{command}` did not print the line the "
                                     f"tutorial shows:\n{line}\nIt printed:\n"
                                     f"{out.getvalue()}{err.getvalue()}")


def run_tutorial(directory, path: Path = TUTORIAL) -> dict:
    """Run every block of the tutorial with ``directory`` as the working directory."""
    namespace: dict = {"__name__": "__tutorial__"}
    old = os.getcwd()
    os.chdir(directory)
    try:
        for lang, line, text in blocks(path):
            where = f"{path.name}:{line}"
            if lang == "python":
                exec(compile(text, where, "exec"), namespace)  # noqa: S102 (our own docs)
            elif lang == "console":
                _run_console(text, where)
            else:
                raise ValueError(f"{where}: code block of unknown language {lang!r}")
    finally:
        os.chdir(old)
    return namespace


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run_tutorial(tmp)
        for name in images():
            data = (Path(tmp) / name).read_bytes()
            if len(data) > MAX_PNG_BYTES:
                print(f"{name}: {len(data)} bytes, more than {MAX_PNG_BYTES}", file=sys.stderr)
                return 1
            shutil.copyfile(Path(tmp) / name, DOCS / name)
            print(f"docs/{name}: {len(data) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
