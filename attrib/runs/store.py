"""A run folder and every file in it.

Layout (explain):
    run.json                    the record's header (kind, model, methods, seed, ...) and, at the end, a summary
    inputs.jsonl                one line per finished input, appended when the input's files are all written
                                (the commit point: a run of N inputs writes O(N) bytes; a redone input appends
                                a new line and the last one wins)
    arrays/<input id>.npz       that input's raw attributions, one array per method, shape (C, H, W)
    images/<input id>/*.png     what the model saw, overlays and heatmaps
Other kinds write their own files through the same store (see attrib/runs/diffroar.py). Every write is
atomic. Folders written by attrib 0.1 (one ``attributions.npz`` for the whole run, ``"command"`` for the kind)
are still read.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
import unicodedata
import weakref
import zipfile
import zlib
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from attrib.errors import AttribError, first_line
from attrib.runs import lock
from attrib.runs.atomic import atomic_write_bytes, atomic_write_json, atomic_write_npz, atomic_write_png, \
    json_text, sweep_unfinished

RUN_JSON = "run.json"
INPUTS = "inputs.jsonl"
ARRAYS_DIR = "arrays"
IMAGES_DIR = "images"
OVERVIEW = "overview.png"
INPUT_VIEW = "input.png"  # what the model saw; beside it, <method>_heatmap.png and <method>_overlay.png
MAP_PICTURES = ("heatmap", "overlay")
LEGACY_ARRAYS = "attributions.npz"  # attrib 0.1: one archive for the whole run
EXPLAIN_WRITES = (INPUTS, OVERVIEW)  # the files an explain run writes beside run.json (arrays/, images/: per input)


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a folder attrib wrote a run into: its run.json (written before any result) names the
    attrib version."""
    try:
        with open(path / RUN_JSON, "rb") as file:
            return b'"attrib_version"' in file.read(4096)
    except OSError:
        return False


class RunError(AttribError):
    """A folder that is not a readable run."""


def slug(name: str, taken: set[str]) -> str:
    """A file-safe id from an input's file name ('photos/cat 1.jpg' -> 'cat_1.jpg'), unique among ids whose
    :func:`id_key` is in ``taken`` (which it joins). Letters and digits of every script are kept; anything else
    becomes "_"."""
    name = unicodedata.normalize("NFC", Path(name.replace("sample:", "")).name)
    base = re.sub("\0+", "_", "".join(c if _safe(c) else "\0" for c in name)).strip("._") or "input"
    base = base[-80:]
    while len(base.encode()) > 160:  # a file name may hold 255 bytes: room for "-N" and a suffix
        base = base[1:]
    if base.split(".")[0].upper() in _RESERVED:
        base = f"_{base}"
    candidate, n = base, 2
    while id_key(candidate) in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(id_key(candidate))
    return candidate


def id_key(input_id: str) -> str:
    """What an id's files are told apart by on a file system that ignores case and Unicode normalisation (macOS's
    and Windows's by default): 'Cat.jpg' and 'cat.jpg' would share one folder there."""
    return unicodedata.normalize("NFC", input_id).casefold()


def _safe(c: str) -> bool:
    return c in "._-" or unicodedata.category(c)[0] in "LMN"  # letters, marks (accents, vowel signs), digits


_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{port}{i}" for port in ("COM", "LPT") for i in range(1, 10))}  # Windows


def closes_store(run):
    """Decorate a job's ``run(options, store, ...)`` so that the store's folder is given back when it ends; a path
    given for the store is the run folder's."""
    @functools.wraps(run)
    def wrapper(options, store: "RunStore | str | os.PathLike", *args, **kwargs):
        if isinstance(store, str | os.PathLike):
            store = RunStore(store)
        try:
            return run(options, store, *args, **kwargs)
        finally:
            store.close()
    return wrapper


class RunStore:
    """Reads and writes one run folder; the only code that knows its file names and formats."""

    def __init__(self, root: str | Path) -> None:
        if isinstance(root, str) and not root.strip():  # as a path, the current folder
            raise RunError("the run folder's name is empty: give the folder to write the run into")
        self.root = Path(root)
        self._release: weakref.finalize | None = None  # gives the folder's lock back, once
        self._appending = threading.Lock()  # (records are committed from more than one thread)

    def path(self, relative: str) -> Path:
        return self.root / relative

    def read_record(self) -> dict[str, Any]:
        """The run record ({} when the folder holds none yet), upgraded to the current keys."""
        path = self.root / RUN_JSON
        if not path.is_file():
            return {}
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise RunError(f"{path}: not a readable run record ({error})") from None
        if not isinstance(record, dict):
            raise RunError(f"{path}: not a run record (a JSON {type(record).__name__}, not an object)")
        if "kind" not in record:  # attrib 0.1 explain runs said "command"
            record["kind"] = record.pop("command", "explain")
        return record

    def write_record(self, record: dict[str, Any]) -> None:
        atomic_write_json(self.root / RUN_JSON, record)

    def append_input(self, entry: dict[str, Any]) -> None:
        """Commit one input's record: a single appended line (its files must already be written). Where the line
        cannot be written whole (a full disk, a quota), the file is cut back to its earlier lines and the OSError
        names it."""
        line = (json_text(entry) + "\n").encode("utf-8")
        path = self.root / INPUTS
        with self._appending:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(path, "ab", buffering=0) as f:
                start = f.seek(0, os.SEEK_END)
                try:
                    written = 0
                    while written < len(line):
                        written += f.write(line[written:])
                except OSError as error:
                    f.truncate(start)
                    raise OSError(error.errno, error.strerror, str(path)) from error

    def has_inputs(self) -> bool:
        """Whether any input has been committed (without reading them)."""
        path = self.root / INPUTS
        return path.is_file() and path.stat().st_size > 0

    def read_inputs(self) -> list[dict[str, Any]]:
        """Every committed input's latest record, in the order inputs were first committed."""
        latest: dict[str, dict[str, Any]] = {}
        path = self.root / INPUTS
        if path.is_file():
            with open(path, "rb") as f:
                for number, line in enumerate(f, 1):
                    if line.endswith(b"\n"):  # a line cut short by a crash was never committed
                        entry = _input_entry(line, path, number)
                        latest[entry["name"]] = entry
        return list(latest.values())

    def repair_inputs(self) -> None:
        """Undo what a crash (even SIGKILL) left in inputs.jsonl: a last line cut short (everything before it
        stays). Its temp files go with :meth:`sweep_unfinished`."""
        path = self.root / INPUTS
        if path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)

    def open(self, kind: str, writes: Collection[str] = ()) -> None:
        """Start (or go on with) a run of ``kind`` here: refused in one line when the folder holds another kind
        of run (their files would mix, and this run's record would replace that one's), a run.json that is not
        attrib's, or, without a run, files of the names this run ``writes`` beside its run.json (a user's
        overview.png was written over; the user's other files stay), or another process is running into it; then
        the temp files a killed earlier run left are swept."""
        if (self.root / RUN_JSON).exists() and not is_run_folder(self.root):
            raise RunError(f"{self.root / RUN_JSON} is not an attrib run record; write this {kind} run to another "
                           "folder (--out)")
        held = self.read_record().get("kind")
        if held is not None and held != kind:
            raise RunError(f"{self.root} holds an attrib {held} run; write this {kind} run to another folder "
                           "(--out)")
        taken = [name for name in writes if os.path.lexists(self.root / name)] if held is None else []
        if taken:
            raise RunError(f"{self.root} is not an attrib run folder (it has no run.json) and holds "
                           f"{', '.join(taken)}, which this {kind} run would write over; write it to another folder "
                           "(--out)")
        if self._release is None or not self._release.alive:  # one process at a time (attrib/runs/lock.py)
            self._release = weakref.finalize(self, lock.release, lock.acquire(self.root))
        self.sweep_unfinished()

    def close(self) -> None:
        """Let other processes run into this folder again (taken by :meth:`open`; also given back when the
        store is garbage-collected or the process ends)."""
        if self._release is not None:
            self._release()  # a finalizer runs at most once: here, or when the store is collected

    def sweep_unfinished(self) -> None:
        """Remove the temp files of atomic writes a killed process left (a live writer's stay)."""
        sweep_unfinished(self.root)

    def reset_inputs(self) -> None:
        """Start the folder over for a new, incompatible run: forget the committed inputs and remove the files
        an earlier run wrote for them, so that no map of another model or setting passes for this run's. Only
        files named as attrib names them go (the commit log first: a run killed part way leaves no record of a
        removed file); anything else in the folder stays."""
        (self.root / INPUTS).unlink(missing_ok=True)
        for path in [self.root / OVERVIEW, self.root / LEGACY_ARRAYS]:
            path.unlink(missing_ok=True)
        for input_id in self.input_ids():
            self.remove_input_files(input_id)
        for folder in (self.root / IMAGES_DIR, self.root / ARRAYS_DIR):
            _remove_if_empty(folder)

    def input_ids(self) -> set[str]:
        """The ids of the inputs the folder holds files for: arrays or a folder of pictures."""
        return {path.stem for path in (self.root / ARRAYS_DIR).glob("*.npz")} | \
            {path.name for path in (self.root / IMAGES_DIR).glob("*/")}

    def remove_input_files(self, input_id: str, keep: Collection[str] = ()) -> None:
        """Remove one input's arrays and pictures but those of ``keep`` (relative paths) (files attrib names only;
        its folder too, once empty): maps that no longer stand, as those of an input that failed when it was
        explained again, or of methods it was not explained with again."""
        arrays = arrays_path(input_id)
        if arrays not in keep:
            (self.root / arrays).unlink(missing_ok=True)
        folder = self.root / IMAGES_DIR / input_id
        for path in folder.glob("*.png"):
            if path.name == INPUT_VIEW or path.stem.endswith(tuple(f"_{kind}" for kind in MAP_PICTURES)):
                if f"{IMAGES_DIR}/{input_id}/{path.name}" not in keep:
                    path.unlink(missing_ok=True)
        _remove_if_empty(folder)

    def write_json(self, relative: str, obj: Any) -> str:
        atomic_write_json(self.root / relative, obj)
        return relative

    def write_png(self, relative: str, image) -> str:
        """A PIL image, or PNG bytes already encoded."""
        if isinstance(image, bytes):
            atomic_write_bytes(self.root / relative, image)
        else:
            atomic_write_png(self.root / relative, image)
        return relative

    def write_arrays(self, input_id: str, arrays: dict[str, np.ndarray]) -> str:
        """One input's attributions (method -> array), written once, in one file."""
        relative = arrays_path(input_id)
        atomic_write_npz(self.root / relative, arrays)
        return relative

    def remove(self, relative: str) -> None:
        """Remove a file this kind of run writes (gone already: nothing to do)."""
        (self.root / relative).unlink(missing_ok=True)

    def arrays(self) -> "LazyArrays":
        return LazyArrays(self.root)


def arrays_path(input_id: str) -> str:
    """Where an input's maps go, relative to the run folder."""
    return f"{ARRAYS_DIR}/{input_id}.npz"


def image_path(input_id: str, method: str | None = None, kind: str = "") -> str:
    """Where an input's picture goes, relative to the run folder: what the model saw (no method), or a map's
    ``kind`` (one of MAP_PICTURES)."""
    return f"{IMAGES_DIR}/{input_id}/{INPUT_VIEW if method is None else f'{method}_{kind}.png'}"


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (a file attrib did not write), or not there
        pass


@contextlib.contextmanager
def read_npz(path: Path) -> Iterator[Any]:
    """``np.load(path)`` within; a RunError naming the file where it cannot be read (cut short, damaged)."""
    try:
        with np.load(path) as data:
            yield data
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise RunError(f"{path}: its maps cannot be read ({first_line(error)})") from None


class LazyArrays(Mapping):
    """``(input id, method) -> array``, read from disk on access (also takes "id/method" strings)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._legacy: list[str] | None = None

    def _key(self, key: tuple[str, str] | str) -> tuple[str, str]:
        if isinstance(key, str):
            input_id, _, method = key.rpartition("/")
            return input_id, method
        return key

    def __getitem__(self, key: tuple[str, str] | str) -> np.ndarray:
        input_id, method = self._key(key)
        path = self.root / ARRAYS_DIR / f"{input_id}.npz"
        if path.is_file():
            with read_npz(path) as data:
                if method in data.files:
                    return data[method]
        if f"{input_id}/{method}" in self._legacy_keys():
            with read_npz(self.root / LEGACY_ARRAYS) as data:
                return data[f"{input_id}/{method}"]
        raise KeyError((input_id, method))

    def _legacy_keys(self) -> list[str]:
        if self._legacy is None:
            path = self.root / LEGACY_ARRAYS
            self._legacy = []
            if path.is_file():
                with read_npz(path) as data:
                    self._legacy = list(data.files)
        return self._legacy

    def __iter__(self) -> Iterator[tuple[str, str]]:
        seen = set()
        for path in sorted((self.root / ARRAYS_DIR).glob("*.npz")):
            with read_npz(path) as data:
                for method in data.files:
                    seen.add((path.stem, method))
                    yield path.stem, method
        for key in self._legacy_keys():
            if self._key(key) not in seen:
                yield self._key(key)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Run(NamedTuple):
    """A finished (or interrupted) run: its record and its arrays, read lazily."""

    record: dict[str, Any]
    arrays: LazyArrays


def run_folder(path: str | Path) -> Path:
    """The run folder that ``path`` names: the folder itself, or its run.json."""
    path = Path(path)
    return path.parent if path.name == RUN_JSON and path.is_file() else path


def _input_entry(line: bytes, path: Path, number: int) -> dict[str, Any]:
    """One committed line of inputs.jsonl, or a RunError naming it (a file edited by hand, a damaged disk)."""
    try:
        entry = json.loads(line.decode("utf-8"))
    except ValueError as error:  # (UnicodeDecodeError too)
        entry, why = None, first_line(error)
    else:
        why = "not in the shape attrib writes: name, status, predictions, attributions"
    if not _well_formed(entry):
        raise RunError(f"{path}:{number}: not an input's record ({why}); remove that line (its input is then "
                       "explained again by a rerun) or write the run to a new folder")
    return entry


ITEM_KEYS = {"predictions": ("index", int), "attributions": ("method", str)}  # what each item of a list names


def _well_formed(entry: Any) -> bool:
    """Whether an input's record has the shape attrib writes: its name and status, and lists of predictions
    (each with its class index) and of attributions (each with its method)."""
    return isinstance(entry, dict) and all(isinstance(entry.get(key), str) for key in ("name", "status")) and all(
        isinstance(items := entry.get(field, []), list) and
        all(isinstance(item, dict) and isinstance(item.get(key), kind) for item in items)
        for field, (key, kind) in ITEM_KEYS.items())


def load_run(root: str | Path) -> Run:
    """The record and a lazy ``(input id, method) -> array`` mapping of a run folder (or of its run.json).

    Raises:
        RunError: ``root`` holds no run.json.
    """
    store = RunStore(run_folder(root))
    if Path(root).is_file() and store.root == Path(root):
        raise RunError(f"{root} is a file, not an attrib run directory (give the folder that holds its {RUN_JSON})")
    if not (store.root / RUN_JSON).is_file():
        raise RunError(f"{root} is not an attrib run directory (no {RUN_JSON})")
    record = store.read_record()
    if (store.root / INPUTS).is_file():
        record["inputs"] = store.read_inputs()
    return Run(record, store.arrays())
