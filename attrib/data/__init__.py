"""Inputs: image files, folders and globs, built-in samples (images); texts (text); data sets (datasets); EG
reference sets (backgrounds)."""

from __future__ import annotations

import sys

from attrib.errors import AttribError, UsageError


def piped_bytes(flag: str) -> bytes:
    """What was piped into standard input, for ``flag -``; a UsageError when it is a terminal (nothing was piped
    in, and reading would wait for typing)."""
    if sys.stdin.isatty():
        raise UsageError(f"{flag} -: standard input is a terminal; pipe the input in (... | attrib ... {flag} -)")
    return sys.stdin.buffer.read()


def utf8_text(data: bytes, where: str, error: type[AttribError] = UsageError) -> str:
    """``data`` as UTF-8 text (a byte-order mark dropped); ``error`` with one line naming the first bad byte
    otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        raise error(f"{where}: not UTF-8 text (byte {bad.object[bad.start]:#04x} at offset {bad.start}); save it "
                    "as UTF-8") from None
