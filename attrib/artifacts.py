"""Run directories: ``run.json`` + ``attributions.npz`` + PNGs, all written atomically.

A write goes to a temporary file in the same folder, is flushed to disk, then renamed over the target, so a
reader (or a crash) never sees a half-written file. ``RunDir`` keeps the run record and the raw arrays in
memory and rewrites both after each input, so an interrupted run resumes from the inputs already done.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

RUN_JSON = "run.json"
ARRAYS = "attributions.npz"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_write_png(path: str | Path, image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def atomic_write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def describe_tensors(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with tensor values replaced by a description such as "tensor(64, 1, 56, 28)" (for JSON)."""
    return {k: (f"tensor{tuple(v.shape)}" if hasattr(v, "shape") and not isinstance(v, np.generic) else v)
            for k, v in options.items()}


def slug(name: str, taken: set[str]) -> str:
    """A file-safe id, unique among ``taken``, from an input's file name ('photos/cat 1.jpg' -> 'cat_1.jpg')."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.replace("sample:", "")).name).strip("._") or "input"
    base = base[-80:]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


class RunDir:
    """A run directory being written: the record (run.json), the raw arrays and the image files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.record: dict[str, Any] = {}
        self.arrays: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, root: str | Path) -> "RunDir":
        """Open a run directory, loading what an earlier run left there."""
        run = cls(root)
        if (run.root / RUN_JSON).is_file():
            run.record = json.loads((run.root / RUN_JSON).read_text())
        if (run.root / ARRAYS).is_file():
            with np.load(run.root / ARRAYS) as data:
                run.arrays = {k: data[k] for k in data.files}
        return run

    def save(self) -> None:
        """Rewrite run.json and attributions.npz atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_npz(self.root / ARRAYS, self.arrays)
        atomic_write_json(self.root / RUN_JSON, self.record)

    def write_png(self, relative: str, image) -> str:
        atomic_write_png(self.root / relative, image)
        return relative


def load_run(root: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The record and arrays of a finished run; FileNotFoundError with a clear message if it is not one."""
    root = Path(root)
    if not (root / RUN_JSON).is_file():
        raise FileNotFoundError(f"{root} is not an attrib run directory (no {RUN_JSON})")
    run = RunDir.open(root)
    return run.record, run.arrays


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)
