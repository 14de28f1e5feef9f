"""Atomic writes: a temp file in the same folder, flushed to disk, then renamed over the target, so a reader
(or a crash, even SIGKILL) never sees a half-written file. A temp file is named after its writer
(``.NAME.HOST-PID.RANDOM.tmp``), so that the one a killed process left behind can be told from one that a live
process (say a DiffROAR worker sharing the folder) is still writing, and swept (:func:`sweep_unfinished`)."""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import math
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _machine() -> str:
    """This machine and process-id namespace, hashed (containers can share a host name, not process ids)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()} {namespace}".encode()).hexdigest()[:8]


_HOST = _machine()
_TEMP = re.compile(r"\.(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)\.[^.]+\.tmp$")
ABANDONED_AFTER_S = 24 * 3600  # a temp file untouched this long is abandoned, whoever wrote it


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_HOST}-{os.getpid()}.",
                                suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:  # a full disk or quota: name the file
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def sweep_unfinished(root: str | Path) -> list[Path]:
    """Remove the temp files under ``root`` of atomic writes that will never finish (their writer was killed
    between creating and renaming them, even by SIGKILL); the removed paths. Kept: those of live processes on this
    machine (POSIX), and any other touched in the last day (another machine's, on a shared folder)."""
    removed = []
    for tmp in Path(root).rglob(".*.tmp"):
        try:
            if _abandoned(tmp):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        except FileNotFoundError:  # renamed into place while we looked
            pass
    return removed


def _abandoned(tmp: Path) -> bool:
    tag = _TEMP.search(tmp.name)
    if tag is None:  # not named after its writer (an older attrib wrote it)
        return True
    if tag["host"] == _HOST and os.name == "posix":
        return not _alive(int(tag["pid"]))
    return time.time() - tmp.stat().st_mtime > ABANDONED_AFTER_S


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal, only the check that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, utf8(text))


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, a file name's undecodable bytes written as ``\\xe9`` (see :data:`SHOW_BYTES`)."""
    return text.encode("utf-8", SHOW_BYTES)


def _show_bytes(error: UnicodeError) -> tuple[str, int]:
    """Python carries a file name's bytes that are not UTF-8 as lone surrogates U+DC80..U+DCFF: each is shown as
    the byte it stands for, ``\\xe9``, any other lone surrogate as ``\\ud800``."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    shown = "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else f"\\u{ord(c):04x}"
                    for c in error.object[error.start:error.end])
    return shown, error.end


SHOW_BYTES = "attrib.show-bytes"  # an error handler for str.encode and text streams
codecs.register_error(SHOW_BYTES, _show_bytes)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json_text(obj, indent=2) + "\n")


def json_text(obj: Any, **kwargs: Any) -> str:
    """Strict JSON (what every parser reads): NaN and infinities become null; numpy scalars and paths plain."""
    return json.dumps(finite(obj), default=json_default, allow_nan=False, **kwargs)


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (at any depth of dicts, lists and tuples) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def png_bytes(image) -> bytes:
    """A PIL image encoded as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def atomic_write_png(path: str | Path, image) -> None:
    atomic_write_bytes(path, png_bytes(image))


def atomic_write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return finite(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)
