#!/usr/bin/env python3
"""Converts a plain (P2) or raw (P5) 8-bit PGM image to a greyscale PNG, with nothing but the
standard library (zlib). Usage: pgm2png.py IN.pgm OUT.png ('-' for stdin/stdout)."""

import struct
import sys
import zlib


def read_pgm(data):
    """Returns (width, height, pixel bytes row by row) of a PGM image with maxval <= 255."""
    tokens, pos = [], 0

    def token():
        nonlocal pos
        while True:
            while pos < len(data) and data[pos : pos + 1].isspace():
                pos += 1
            if data[pos : pos + 1] == b"#":  # a comment runs to the end of its line
                while pos < len(data) and data[pos : pos + 1] not in (b"\n", b"\r"):
                    pos += 1
                continue
            break
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace() and data[pos : pos + 1] != b"#":
            pos += 1
        if start == pos:
            raise ValueError("pgm: image ends early")
        return data[start:pos]

    magic = token()
    if magic not in (b"P2", b"P5"):
        raise ValueError(f"pgm: not a PGM image (magic {magic!r})")
    width, height, maxval = (int(token()) for _ in range(3))
    if not (0 < maxval <= 255):
        raise ValueError(f"pgm: maxval {maxval} is not from 1 to 255")
    if magic == b"P5":
        pixels = data[pos + 1 : pos + 1 + width * height]
        if len(pixels) != width * height:
            raise ValueError("pgm: image ends early")
    else:
        pixels = bytes(int(token()) for _ in range(width * height))
    if maxval != 255:
        pixels = bytes(p * 255 // maxval for p in pixels)
    return width, height, pixels


def png(width, height, pixels):
    """Returns the bytes of an 8-bit greyscale PNG (no filtering, zlib level 9)."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\0" + pixels[y * width : (y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8 bits, greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: pgm2png.py IN.pgm OUT.png ('-' for stdin/stdout)")
    src, dst = sys.argv[1:]
    data = sys.stdin.buffer.read() if src == "-" else open(src, "rb").read()
    try:
        out = png(*read_pgm(data))
    except ValueError as e:
        sys.exit(f"pgm2png.py: {src}: {e}")
    if dst == "-":
        sys.stdout.buffer.write(out)
    else:
        with open(dst, "wb") as f:
            f.write(out)


if __name__ == "__main__":
    main()
