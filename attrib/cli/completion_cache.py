"""Lists Tab offers, kept on disk: making them imports torch (1-3 s, timm's names seconds more), reading them back
takes milliseconds.

One JSON file, ``$XDG_CACHE_HOME/attrib/completion.json`` (``~/.cache`` without it), holds every list under its
name, with the stamp of what they were made from: the names, sizes and times of attrib's own source files and the
versions of the libraries whose names they list. Another stamp (an edited method, an upgraded timm) starts the file
over, as do more than MAX_KEPT lists. The file is replaced whole (never half-written); where it cannot be read or
written, the lists are made anew each time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "torchvision", "timm", "transformers")  # whose names or behaviour the lists hold
MAX_KEPT = 200


def cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "attrib" / "completion.json"


def remembered(name: str, make: Callable[[], Any]) -> Any:
    """The list kept as ``name`` where it was made from what is here now; else ``make()``, kept."""
    path, stamp = cache_file(), _stamp()
    try:
        kept = json.loads(path.read_text())
        lists = kept["lists"] if kept["stamp"] == stamp and isinstance(kept["lists"], dict) else {}
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or not one this code wrote
        lists = {}
    if name in lists:
        return lists[name]
    value = make()
    _replace(path, {"stamp": stamp, "lists": (lists if len(lists) < MAX_KEPT else {}) | {name: value}})
    return value


def file_stamp(path: str) -> str:
    """A file's size and time, to name a list made from it."""
    status = os.stat(path)
    return f"{os.path.abspath(path)} {status.st_size} {status.st_mtime_ns}"


def _stamp() -> str:
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).resolve().parents[1].rglob("*.py")):
        digest.update(f"{file_stamp(str(source))}\n".encode())
    for library in LIBRARIES:
        try:
            digest.update(f"{library} {metadata.version(library)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library} -\n".encode())
    return digest.hexdigest()


def _replace(path: Path, content: dict) -> None:
    from attrib.runs.atomic import atomic_write_json

    try:
        atomic_write_json(path, content)
    except OSError:  # a read-only home, a full disk: made anew next time
        pass
