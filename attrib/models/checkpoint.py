"""Loading local weights safely: .pt/.pth with ``weights_only=True``, or .safetensors."""

from __future__ import annotations

import hashlib
import pickle
import re
import warnings
from pathlib import Path

import torch

from attrib.errors import counted, first_line
from attrib.models import inert
from attrib.models.base import ModelError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file, never executing pickled code; ModelError with one line on failure."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    program = a_program(path)
    if program:
        raise ModelError(f"--weights {program}")
    try:
        state = _load(path)
    except Exception as error:  # noqa: BLE001 - any decoding failure is a malformed file for the user
        kind = file_kind(path)
        reason = kind if kind.startswith("an empty") else f"{kind}, not a checkpoint" if kind else _reason(error)
        raise ModelError(f"cannot read weights {path}: {reason}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict | inert.Record):
            state = state[key]
    state = inert.module_state(state) or state  # a whole pickled model's weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights {path} do not hold a state dict of tensors")
    return state


def file_sha256(path: str | Path) -> str:
    """A file's sha256, read in blocks (a checkpoint may be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def folder_weights(spec: str) -> dict[str, str] | None:
    """{"file": FOLDER, "sha256": ...} for a model in a local folder (``FOLDER`` or ``hf:FOLDER``), a digest of
    its weight files' names and contents, so that a run folder tells a model retrained in place from the one it
    explained; None for any other spec."""
    folder = Path(spec.removeprefix("hf:")).expanduser() if spec.strip() else None
    if folder is None or not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()):
        digest.update(f"{path.name}\0{file_sha256(path)}\0".encode())
    return {"file": spec, "sha256": digest.hexdigest()}


_EXPORTED = ("torch.export program (.pt2)", "torch.export.load({}).module()")
_PROGRAMS = {"/code/__torch__/": ("TorchScript program", "torch.jit.load({})"),  # a member's name -> kind
             "/models/model.json": _EXPORTED, "serialized_exported_program.json": _EXPORTED}  # torch 2.6's layout


def a_program(path: Path) -> str:
    """What to say of a TorchScript or torch.export archive (told by its members' names, never loaded: loading
    one can run code) given as a model or weights, else ""."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return ""
    found = next((kind for mark, kind in _PROGRAMS.items() if any(mark in name for name in names)), None)
    if found is None:
        return ""
    return (f"{path} is a {found[0]}, which can run code when it is loaded: attrib never loads one by itself. If "
            "you trust it, load it in your own code and name that: a file load.py holding `def model(): return "
            f"{found[1].format(repr(str(path)))}`, and --model load.py:model")


def _load(path: Path) -> object:
    """The file's contents: a safetensors file, or a checkpoint read with ``weights_only=True`` (its other
    objects, which that refuses, read as inert records: :mod:`attrib.models.inert`)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return _weights_only(path, _data_globals())
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):
            raise
        return inert.load_inert(path, _data_globals(), _weights_only, error)


def _weights_only(path: Path, allowed: list) -> object:
    with warnings.catch_warnings(), torch.serialization.safe_globals(allowed):
        warnings.simplefilter("ignore", UserWarning)  # torch's notes on pickle protocols are not the user's business
        return torch.load(path, map_location="cpu", weights_only=True)


def _data_globals() -> list:
    """Classes that checkpoints often hold beside their tensors and that build data, never run code, allowed to
    ``weights_only`` loading: timm's train.py saves its ``args`` as an argparse.Namespace; numpy scalars, dtypes and
    arrays (a best accuracy as np.float64). numpy 1 names its pickles ``numpy.core``, numpy 2 ``numpy._core``: both
    are allowed, torch taking a name with each."""
    import argparse

    import numpy as np

    multiarray = (getattr(np, "_core", None) or np.core).multiarray
    dtypes = sorted({type(np.dtype(code)) for code in "?bhilqBHILQefdgFDGUSMm"}, key=str)
    found = [argparse.Namespace, np.dtype, np.ndarray, *dtypes]
    return [*found, *((function, f"numpy.{core}.multiarray.{function.__name__}") for core in ("core", "_core")
                      for function in (multiarray.scalar, multiarray._reconstruct))]


def file_kind(path: Path) -> str:
    """What a file given as weights or a model is instead, told by its first bytes: "an empty file (0 bytes)", a
    picture ("a JPEG image") or "text" (a class list given to --weights); "" for anything else."""
    from attrib.data import picture_kind

    with open(path, "rb") as file:
        head = file.read(1 << 16)
    if not head:
        return "an empty file (0 bytes)"
    picture = picture_kind(head)
    if picture:
        return picture
    for cut in range(4):  # the head may end inside a character
        try:
            head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return "" if b"\0" in head else "text"
    return ""


def _reason(error: Exception) -> str:
    """Why a checkpoint could not be read, in the user's terms (torch's own text suggests unsafe loading)."""
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(error))
    if isinstance(error, pickle.UnpicklingError) and found and "is blocked" in str(error):
        return (f"it holds pickled code calling {found[1]}, which torch never loads and attrib never runs: save "
                "model.state_dict() with torch.save, or use .safetensors")
    if isinstance(error, pickle.UnpicklingError) and found:  # not read inert (a record torch would not fill in)
        return (f"it holds pickled Python objects ({found[1]}), not only tensors (a whole saved model?); attrib "
                "never runs pickled code: save model.state_dict() with torch.save, or use .safetensors")
    unsupported = re.search(r"Unsupported [^\n.]*", str(error))  # the unpickler's reason, not its advice
    detail = unsupported[0] if unsupported else first_line(error, 120).split(". ")[0]
    return f"not a PyTorch checkpoint or safetensors file ({type(error).__name__}: {detail})"


def load_state_dict(module: torch.nn.Module, path: str | Path, state: dict[str, torch.Tensor] | None = None) -> None:
    """Load a file's state dict (or ``state``, already read from it) into ``module`` strictly; a mismatch is
    one ModelError line."""
    state = read_state_dict(path) if state is None else state
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        inner = unwrapped(state)
        if inner is not state:
            try:
                module.load_state_dict(inner, strict=True)
                return
            except RuntimeError:
                pass
        why = differences(module.state_dict(), inner) or " ".join(str(error).split())[:300]
        raise ModelError(f"weights {path} do not fit the model: {why}") from None


def differences(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], shown: int = 2) -> str:
    """How a file's state dict differs from a module's, counted with a few examples, e.g. '1 key missing
    (fc.weight); 1 shape differs (fc.bias: file [5], model [1000]) (...)'; empty when keys and shapes agree."""
    def part(items: list[str], noun: str, verb: str) -> str:
        listed = ", ".join(items[:shown]) + (", ..." if len(items) > shown else "")
        return f"{counted(len(items), noun)} {verb} ({listed})" if items else ""

    shapes = [f"{key}: file {list(found[key].shape)}, model {list(value.shape)}" for key, value in expected.items()
              if key in found and found[key].shape != value.shape]
    parts = [part([key for key in expected if key not in found], "key", "missing"),
             part([key for key in found if key not in expected], "key", "not in the model"),
             part(shapes, "shape", "differs" if len(shapes) == 1 else "differ")]
    told = "; ".join(text for text in parts if text)
    return f"{told} (saved from another architecture or head?)" if told else ""


WRAPPERS = ("module.", "_orig_mod.", "model.")  # DataParallel / DDP, torch.compile, Lightning and the like


def unwrapped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without the key prefix a training wrapper adds (when every key has it; repeatedly), or
    ``state`` itself when there is none. Tried only after the keys as saved do not fit."""
    for prefix in WRAPPERS:
        if state and all(key.startswith(prefix) for key in state):
            return unwrapped({key[len(prefix):]: value for key, value in state.items()})
    return state
