"""One run at a time per run folder: an advisory lock (``flock``) on ``.attrib.lock`` inside it.

The lock belongs to the open file, so the system drops it when the process ends, however it ends (even
SIGKILL): a killed run never leaves the folder locked, and rerunning the same command goes on with it. A second
process that starts a run into a folder another one is writing is refused in one line instead of redoing the
same inputs and appending duplicate records. Within one process the lock is counted, so that jobs run one after
another (or nested) into the same folder do not lock each other out. Where ``fcntl`` is missing (Windows), or
the file system takes no locks (some network mounts), runs are not locked. DiffROAR's workers
(``python -m attrib.jobs.diffroar``) write their results without taking it: several share a folder by design.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

from attrib.errors import AttribError

LOCK_NAME = ".attrib.lock"

_held: dict[Path, list[int]] = {}  # folder -> [file descriptor, holders in this process]
_guard = threading.Lock()


class FolderBusy(AttribError):
    """The run folder is being written by another process."""


def acquire(root: Path) -> Path | None:
    """Take ``root``'s lock (creating the folder) for this process; FolderBusy when another process holds it.
    Returns the key to :func:`release`, or None where locks are not available."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    root.mkdir(parents=True, exist_ok=True)
    key = root.resolve()
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return key
        fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):  # a file system without locks
                os.close(fd)
                return None
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise FolderBusy(f"{root} is being written by another attrib run{who}; wait for it to finish, or "
                             "write this run to another folder (--out)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held[key] = [fd, 1]
        return key


def release(key: Path | None) -> None:
    """Give back one hold of the lock taken by :func:`acquire`; the last one unlocks the folder."""
    if key is None:
        return
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            os.close(entry[0])  # closing the file drops the lock
