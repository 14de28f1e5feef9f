"""Inputs: image files, folders and globs, built-in samples (images); texts (text); data sets (datasets); EG
reference sets (backgrounds)."""

from __future__ import annotations

import sys

from attrib.errors import UsageError


def piped_bytes(flag: str) -> bytes:
    """What was piped into standard input, for ``flag -``; a UsageError when it is a terminal (nothing was piped
    in, and reading would wait for typing)."""
    if sys.stdin.isatty():
        raise UsageError(f"{flag} -: standard input is a terminal; pipe the input in (... | attrib ... {flag} -)")
    return sys.stdin.buffer.read()
