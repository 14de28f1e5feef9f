"""Whether an input is still what was explained: a fingerprint per input file, checked when a run resumes.

A fingerprint is the size and modification time of the file an input's bytes are in (an archive's, for its
members) and the sha256 of those bytes. A resumed run takes an input as unchanged when the file's size and time
are the same, and otherwise when its bytes have the same digest (so a copy or a ``touch`` costs a read, never a
recomputation), as ``git status`` judges a work tree (its "racy" files too: see :func:`fingerprint_of`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any

from attrib.errors import AttribError

RECENT = 2_000_000_000  # ns: FAT's times tick every 2 s, ext4's and NTFS's with the kernel's clock (ms)


def fingerprint(source) -> dict[str, Any] | None:
    """An input's fingerprint, taken before it is decoded (so that a file replaced meanwhile reads as changed
    next time, never as unchanged); None when it has no file (a built-in sample) or cannot be read (it then
    fails with its own line)."""
    if source.stamp is not None or source.file is None:
        return source.stamp
    try:
        status = os.stat(source.file)
        if not stat.S_ISREG(status.st_mode):  # a pipe's reading would wait for a writer; it fails on its own
            return None
        return fingerprint_of(status, _bytes(source))
    except (OSError, AttribError):
        return None


def fingerprint_of(status: os.stat_result, data: bytes) -> dict[str, Any]:
    """The fingerprint of ``data``, read from a file whose status (taken before reading) was ``status``. A file
    written less than RECENT before it is read has no time in it (None): a file system's clock may tick coarsely,
    so a second write within the same tick would keep the time (and maybe the size); such a file is compared by
    its digest."""
    recent = time.time_ns() - status.st_mtime_ns < RECENT
    return {"size": status.st_size, "mtime_ns": None if recent else status.st_mtime_ns,
            "sha256": hashlib.sha256(data).hexdigest()}


def unchanged(source, earlier: dict[str, Any] | None) -> bool:
    """Whether an input is as its fingerprint ``earlier`` found it: its file's size and time are the same, or
    else its bytes' digest is. True without a fingerprint (a sample; an input recorded by an earlier attrib,
    which kept none)."""
    if not earlier:
        return True
    if source.file is None:
        return False
    try:
        status = os.stat(source.file)
    except OSError:
        return False
    if (status.st_size, status.st_mtime_ns) == (earlier["size"], earlier["mtime_ns"]):
        return True
    now = fingerprint(source)
    return now is not None and now["sha256"] == earlier["sha256"]


def _bytes(source) -> bytes:
    return source.read() if source.read is not None else Path(source.file).read_bytes()
