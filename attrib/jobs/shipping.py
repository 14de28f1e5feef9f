"""Local files a job's options name (``--weights``, ``--labels``, a model or LM folder, your model code), sent
to cluster workers, which may not share the driver's file system (explain's and explain-text's workers;
DiffROAR's retrains, for your model code).

A worker uses its own copy at the same absolute path when it has one with the same digest, as on one machine or
a shared file system; otherwise it fetches the driver's bytes from the object store (only then: they are a
reference inside its arguments) and writes them once per node under ``TMP/attrib-shipped/DIGEST/``, kept for
later runs. Files over SHIP_LIMIT in all are not sent: a node needs its own copy of those. Either way a worker
never loads weights other than the driver's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIELDS = ("model", "lm", "weights", "labels")  # the options that may name local files or folders
SHIP_LIMIT = 2 << 30  # bytes: larger files are not sent (each node needs its own copy, checked by its digest)
INCOMING = ".incoming-"  # a folder of files being written, renamed into place when complete
STALE = 3600  # seconds after which an incoming folder is one a killed worker left


@dataclass(frozen=True)
class Shipment:
    """One option's local file or folder: how the option spells it around the path, the path (absolute), the
    digest of its files, and their bytes, shared ({relative name: bytes}, fetched only where needed)."""

    option: str
    prefix: str
    path: str
    rest: str
    digest: str
    files: Any


@dataclass(frozen=True)
class ModelSpec:
    """A model spec alone, shipped as a job's options are (DiffROAR's retrains build fresh models from it)."""

    model: str


@dataclass(frozen=True)
class Parcel:
    """A job's options as cluster workers take them, with the local files they name."""

    options: Any
    shipments: tuple[Shipment, ...] = ()

    def opened(self) -> Any:
        """(on a worker) the options, each local path replaced where this machine's copy differs or is missing
        by the driver's files, written here."""
        changes = {s.option: f"{s.prefix}{_received(s)}{s.rest}" for s in self.shipments}
        return dataclasses.replace(self.options, **changes)


def ship(options: Any, share) -> Parcel:
    """The options for cluster workers (local paths made absolute: a worker runs in another folder), with the
    files they name shared through ``share`` (an executor's; files over SHIP_LIMIT in all are not sent)."""
    from attrib.models.registry import local_part

    shipments = []
    for option in FIELDS:
        part = local_part(getattr(options, option, None))
        if part is not None:
            prefix, path, rest = part
            path = path.resolve()
            members = _members(path)
            size = sum(file.stat().st_size for _, file in members)
            files = share({name: file.read_bytes() for name, file in members}) if size <= SHIP_LIMIT else None
            shipments.append(Shipment(option, prefix, str(path), rest, _digest(members), files))
    changes = {s.option: f"{s.prefix}{s.path}{s.rest}" for s in shipments}
    return Parcel(dataclasses.replace(options, **changes), tuple(shipments))


def _members(path: Path) -> list[tuple[str, Path]]:
    """A file by its name, or a folder's files (not hidden; its top level, as a model folder is read: a training
    run's checkpoint folders inside it are not sent) by ``FOLDER/NAME``."""
    if path.is_file():
        return [(path.name, path)]
    return [(f"{path.name}/{p.name}", p) for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]


def _digest(members: list[tuple[str, Path]]) -> str:
    from attrib.models.checkpoint import file_sha256

    made = hashlib.sha256()
    for name, file in members:
        made.update(f"{name}\0{file_sha256(file)}\0".encode())
    return made.hexdigest()


def _received(shipment: Shipment) -> Path:
    """Where a worker reads a shipment: its own copy when that has the digest, else the driver's files (one line
    where they were too large to send)."""
    path = Path(shipment.path)
    if path.exists() and _digest(_members(path)) == shipment.digest:
        return path
    if shipment.files is None:
        from attrib.errors import UsageError

        state = "another file" if path.exists() else "missing"
        raise UsageError(f"{path} is {state} on this worker's node (the driver's has sha256 {shipment.digest[:12]}), "
                         f"and at over {SHIP_LIMIT >> 30} GiB it is too large to send to the workers: put the same "
                         "file at the same path on every node")
    return _written(shipment) / path.name


def _written(shipment: Shipment) -> Path:
    """The folder holding the shipment's files on this node, written once (atomically: a folder renamed into
    place; another process that got there first wins)."""
    from attrib.executors import fetched

    root = Path(tempfile.gettempdir()) / "attrib-shipped"
    final = root / shipment.digest[:32]
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    staging = Path(tempfile.mkdtemp(prefix=INCOMING, dir=root))
    for name, data in fetched(shipment.files).items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
    try:
        os.rename(staging, final)
    except OSError:  # written meanwhile by another worker on this node
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _sweep(root: Path) -> None:
    """Remove what workers killed while writing left (folders still incoming after STALE seconds)."""
    for left in root.glob(f"{INCOMING}*"):
        with contextlib.suppress(OSError):
            if time.time() - left.stat().st_mtime > STALE:
                shutil.rmtree(left, ignore_errors=True)
