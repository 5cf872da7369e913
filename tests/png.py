"""A minimal PNG reader for the browser tests' screenshots (standard library only, no Pillow).

It reads what Chromium writes: 8-bit RGB or RGBA, not interlaced, any of the five row filters.

    img = read_png(browser.screenshot())
    assert img.pixel(10, 20) == (255, 0, 0, 255)
    assert img.bbox_of_non_background() == (40, 30, 61, 51)
    width, height, rows = img          # also unpacks; rows[y][x] is an RGBA tuple
"""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}             # PNG colour type -> bytes per pixel at bit depth 8


class Image:
    """Decoded pixels: ``width``, ``height`` and ``rows`` (``rows[y][x]`` = (r, g, b, a))."""

    def __init__(self, width: int, height: int, rows: list[list[tuple[int, int, int, int]]]):
        self.width, self.height, self.rows = width, height, rows

    def __iter__(self):
        return iter((self.width, self.height, self.rows))

    def pixel(self, x: int, y: int) -> tuple[int, int, int, int]:
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise IndexError(f"pixel ({x}, {y}) outside the {self.width}x{self.height} image")
        return self.rows[y][x]

    def pixels(self):
        """Every (x, y, rgba), row by row."""
        for y, row in enumerate(self.rows):
            for x, rgba in enumerate(row):
                yield x, y, rgba

    def count(self, predicate) -> int:
        """How many pixels satisfy ``predicate(rgba)``."""
        return sum(1 for row in self.rows for rgba in row if predicate(rgba))

    def bbox_of_non_background(self, background=None, tolerance: int = 0):
        """(left, top, right, bottom) of the pixels that differ from ``background`` (default:
        the top-left pixel) by more than ``tolerance`` in some channel, right and bottom
        exclusive; ``None`` if there are none (a blank image)."""
        bg = self.rows[0][0] if background is None else tuple(background)
        if len(bg) == 3:
            bg = (*bg, 255)
        left, top, right, bottom = self.width, self.height, -1, -1
        for y, row in enumerate(self.rows):
            xs = [x for x, rgba in enumerate(row)
                  if max(abs(c - b) for c, b in zip(rgba, bg)) > tolerance]
            if xs:
                left, right = min(left, xs[0]), max(right, xs[-1])
                top, bottom = min(top, y), y
        return None if bottom < 0 else (left, top, right + 1, bottom + 1)


def read_png(data: bytes) -> Image:
    """Decode an 8-bit RGB or RGBA non-interlaced PNG."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG (bad signature)")
    pos, idat, header = len(SIGNATURE), [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ValueError("truncated PNG")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length                   # length, type, data, CRC
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour, _compression, _filter, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: bit depth {depth}, colour type {colour}, "
                         f"interlace {interlace} (only 8-bit RGB/RGBA, not interlaced)")
    bpp = _CHANNELS[colour]
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise ValueError("PNG image data has the wrong size")
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), prev, bpp)
        if bpp == 4:
            rows.append([tuple(line[i:i + 4]) for i in range(0, stride, 4)])
        else:
            rows.append([(line[i], line[i + 1], line[i + 2], 255) for i in range(0, stride, 3)])
        prev = line
    return Image(width, height, rows)


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    """Undo one row's filter (PNG spec, section 9) in place; ``prev`` is the row above."""
    if kind == 0:                        # None
        return line
    if kind == 2:                        # Up
        return bytearray((a + b) & 0xFF for a, b in zip(line, prev))
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        if kind == 1:                    # Sub
            pred = left
        elif kind == 3:                  # Average
            pred = (left + prev[i]) >> 1
        elif kind == 4:                  # Paeth
            up = prev[i]
            upleft = prev[i - bpp] if i >= bpp else 0
            p = left + up - upleft
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else upleft
        else:
            raise ValueError(f"bad PNG filter type {kind}")
        line[i] = (line[i] + pred) & 0xFF
    return line
