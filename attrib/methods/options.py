"""Method options from text (``--set KEY=VALUE`` or ``--set METHOD.KEY=VALUE``), typed by the config fields."""

from __future__ import annotations

import dataclasses
from typing import Any

from attrib.errors import UsageError
from attrib.methods._registry import METHODS


def parse_overrides(methods: list[str], items: list[str]) -> dict[str, dict[str, Any]]:
    """Per canonical method, the overrides that apply to it; ValueError for malformed or unknown keys.

    ``KEY=VALUE`` applies to every listed method that has KEY; ``METHOD.KEY=VALUE`` to that method only.
    """
    names = [METHODS.canonical(m) for m in methods]
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        scope, _, field = key.strip().rpartition(".")
        targets = [METHODS.canonical(scope)] if scope else names
        if scope and targets[0] not in names:
            raise UsageError(f"--set {item!r} names method {scope!r}, which is not among -m {', '.join(names)}")
        hits = [n for n in targets if field in _fields(n)]
        if not hits:
            valid = sorted({f for n in targets for f in _fields(n)})
            raise UsageError(f"unknown option {field!r} for {', '.join(targets)}; valid: {', '.join(valid)}")
        for name in hits:
            out[name][field] = coerce(_fields(name)[field], text.strip(), f"{name}.{field}")
    return out


def _fields(method: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(METHODS[method].config)}


def coerce(field: dataclasses.Field, text: str, name: str) -> Any:
    """Text to the type of the field's default (bool, int, float or str)."""
    default = field.default
    if default is None:  # an optional field: its annotation says what it holds
        kind = str(field.type)
        default = False if "bool" in kind else 0 if "int" in kind else 0.0 if "float" in kind else None
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = "true or false" if isinstance(default, bool) else "an integer" if isinstance(default, int) else \
            "a number"
        raise UsageError(f"option {name} expects {kind}, got {text!r}") from None
    if isinstance(default, str):
        return text
    raise UsageError(f"option {name} cannot be set from the command line")
