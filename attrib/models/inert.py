"""A checkpoint's pickled objects besides its tensors, read as inert records: never resolved, never run.

``weights_only`` loading refuses any object it does not know (Lightning's ``hyper_parameters`` AttributeDict, a
``pathlib`` path, an omegaconf config, a whole pickled model). Each class or function the checkpoint names is
stood in for by a record that keeps the arguments and state it is given and does nothing else, so the tensors
can be read; torch still refuses anything from ``os``, ``sys``, ``posix`` and ``nt`` whatever is allowed.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

MODULE = "attrib_inert"  # the module the stand-ins claim, so that torch's messages name them back


class Record:
    """A stand-in for one pickled object: its arguments and state, kept as data."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def load_inert(path: Path, allowed: list, load: Callable[[Path, list], Any], refused: Exception) -> Any:
    """The checkpoint with every global torch does not allow read as a :class:`Record` (or as an empty dict or
    list, where the pickle fills one in as a dict or list subclass); ``refused``, torch's first refusal, is
    raised again when that cannot be done (a global from a blocked module)."""
    names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    kinds: dict[str, type] = dict.fromkeys(names, Record)
    for _ in range(2 * len(names) + 1):
        try:
            return load(path, [*allowed, *((_stand_in(name, kind), name) for name, kind in kinds.items())])
        except (pickle.UnpicklingError, TypeError) as error:
            name = _filled_in(error, kinds)
            if name is None:
                raise refused from None
            kinds[name] = dict if "for dict" in str(error) or isinstance(error, TypeError) else list
    raise refused


def _filled_in(error: Exception, kinds: dict[str, type]) -> str | None:
    """The stand-in that the pickle filled in as a dict or list, from torch's refusal: "... but got <class
    'attrib_inert.NAME'>", or on torch 2.6, which does not check where it sets items, "'NAME' object does not
    support item assignment" (the class's own name only)."""
    named = re.search(rf"but got <class '{MODULE}\.([\w.]+)'>", str(error))
    if named:
        names = [named[1]]
    else:
        short = re.search(r"'(\w+)' object does not support item assignment", str(error))
        names = [name for name in kinds if short and name.rsplit(".", 1)[-1] == short[1]]
    return names[0] if len(names) == 1 and kinds.get(names[0]) is Record else None


def _stand_in(name: str, kind: type) -> type:
    """A class claiming to be ``name`` that makes a Record, or an empty plain dict or list (torch fills in only
    exact dicts and lists)."""
    body: dict[str, Any] = {"__module__": MODULE, "__qualname__": name}
    if kind is not Record:
        body["__new__"] = staticmethod(lambda cls, *args, **kwargs: kind())
    return type(name.rsplit(".", 1)[-1], (Record,), body)


def module_state(record: Any, prefix: str = "") -> dict[str, torch.Tensor] | None:
    """The state dict of a whole pickled ``torch.nn.Module`` read as records: its parameters and persistent
    buffers under their dotted names; None for anything else."""
    state = getattr(record, "state", None)
    if not isinstance(state, dict) or not {"_parameters", "_buffers", "_modules"} <= set(state):
        return None
    found = {prefix + name: p.detach() for name, p in state["_parameters"].items() if p is not None}
    skip = state.get("_non_persistent_buffers_set") or set()
    found.update({prefix + name: b for name, b in state["_buffers"].items() if b is not None and name not in skip})
    for name, child in state["_modules"].items():
        inner = {} if child is None else module_state(child, f"{prefix}{name}.")
        if inner is None:
            return None
        found.update(inner)
    return found
