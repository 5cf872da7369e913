"""Atomic file writes: a temporary file in the target's directory, renamed over the target.

A failure at any point (an exception, a full disk, a crash) leaves either the old file or no
file at the path, never a half-written one, and no temporary file behind.
"""

from __future__ import annotations

import os
import secrets
import stat

__all__ = ["write_bytes", "check_writable_dir"]


def check_writable_dir(path, argument: str) -> str:
    """``path`` as a str, after checking that its directory exists (before any long work)."""
    try:
        target = os.fspath(path)
    except TypeError:
        raise TypeError(f"{argument}: expected a file name, got {type(path).__name__}") from None
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not target:
        raise ValueError(f"{argument}: expected a file name, got ''")
    if os.path.isdir(target):
        raise ValueError(f"{argument}: {target!r} is a directory, expected a file name")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{argument}: the directory {directory!r} of {target!r} does "
                                "not exist")
    return target


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (keeps an existing file's permissions)."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(
        os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".cprop-write-{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # umask applies, as for open()
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover
        raise FileExistsError(f"could not create a temporary file in {directory!r}")
    done = False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        except OSError:
            pass  # no old file (or no permission to copy its mode)
        os.replace(tmp, target)
        done = True
    finally:
        if not done:
            try:
                os.unlink(tmp)
            except OSError:
                pass
