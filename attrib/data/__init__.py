"""Inputs: image files, folders and globs, built-in samples (images); texts (text); data sets (datasets); EG
reference sets (backgrounds)."""

from __future__ import annotations

import codecs
import os
import sys
from pathlib import Path

from attrib.errors import AttribError, UsageError


def piped_bytes(flag: str) -> bytes:
    """What was piped into standard input, for ``flag -``; a UsageError when it is a terminal (nothing was piped
    in, and reading would wait for typing)."""
    if sys.stdin.isatty():
        raise UsageError(f"{flag} -: standard input is a terminal; pipe the input in (... | attrib ... {flag} -)")
    return sys.stdin.buffer.read()


PICTURE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "MPO", "JPEG2000", "AVIF", "HEIF")  # sure magic


def picture_kind(data: bytes) -> str | None:
    """Its kind ("a JPEG image") where ``data`` is a picture given where text was asked for, else None (formats
    Pillow tells by a signature only: a text may pass for the others, as a TGA or a PPM)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return f"a {image.format} image" if image.format in PICTURE_FORMATS else None
    except Exception:  # noqa: BLE001 - not a picture Pillow knows: text, as it should be
        return None


def not_a_file(path: Path) -> str:
    """What to say of a path that names no regular file: a folder, something else (a pipe, a device), a link to
    nothing and where it points, or nothing at all."""
    if path.is_dir():
        return f"{path}: is a folder"
    if path.exists():
        return f"{path}: not a regular file"
    if path.is_symlink():
        return f"{path}: a link to {os.readlink(path)}, which does not exist"
    return f"{path}: file not found"


# Byte-order marks of the UTF-16 and UTF-32 files Windows tools write (Excel's "Unicode text", PowerShell 5's
# `>`), the UTF-32 ones first: UTF-32 LE's begins with UTF-16 LE's
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def unicode_text(data: bytes, where: str, error: type[AttribError] = UsageError) -> str:
    """``data`` as text: UTF-8 (a byte-order mark dropped), or UTF-16 / UTF-32 when it starts with their
    byte-order mark; ``error`` with one line naming a picture's kind, the first bad byte otherwise, or the line
    of a NUL."""
    codec = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8-sig")
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as bad:
        picture = picture_kind(data)  # a file given in the wrong place: say what it is
        if picture:
            raise error(f"{where}: {picture}, not text") from None
        kind = codec.upper().removesuffix("-SIG")
        raise error(f"{where}: not {kind} text (byte {bad.object[bad.start]:#04x} at offset {bad.start}); save it "
                    "as UTF-8") from None
    if "\x00" in text:  # valid UTF-8, but no text: UTF-16 without a mark reads as every other character NUL
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise error(f"{where}: line {line} holds a NUL character (binary data, or UTF-16 without a byte-order "
                    "mark?); save it as UTF-8")
    return text
