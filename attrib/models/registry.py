"""The model-loader registry: a spec prefix (``timm:``, ``hf:``, ``sample:``) -> a loader.

Filled in one direction: each loader module imports this one and registers itself; this module imports no
loader. ``attrib.models`` imports the built-in loader modules, so that ``load_model`` knows them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrib.models.base import Model, ModelError

Loader = Callable[..., Model]  # loader(rest_of_spec, *, weights, pretrained, trust_remote_code) -> Model


@dataclass(frozen=True)
class LoaderEntry:
    prefix: str
    loader: Loader
    matches: Callable[[str], bool] | None = None  # also claims specs without the prefix (e.g. a local folder)


LOADERS: dict[str, LoaderEntry] = {}
DEFAULT = "default"


def register_loader(prefix: str, loader: Loader, matches: Callable[[str], bool] | None = None) -> None:
    """Make ``PREFIX:REST`` specs (and specs ``matches`` accepts) load through ``loader``."""
    LOADERS[prefix] = LoaderEntry(prefix, loader, matches)


def load_model(spec: str | None = None, *, weights: str | Path | None = None, pretrained: bool = True,
               trust_remote_code: bool = False) -> Model:
    """Resolve a model spec into a :class:`Model` in eval mode (specs: ``attrib models``)."""
    spec = (spec or DEFAULT).strip()
    options: dict[str, Any] = dict(weights=weights, pretrained=pretrained, trust_remote_code=trust_remote_code)
    if spec == DEFAULT and DEFAULT in LOADERS:
        return LOADERS[DEFAULT].loader("", **options)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in LOADERS:
        return LOADERS[prefix].loader(rest, **options)
    for entry in LOADERS.values():
        if entry.matches is not None and entry.matches(spec):
            return entry.loader(spec, **options)
    raise ModelError(f"unknown model spec {spec!r}: use 'timm:NAME', 'hf:ORG/NAME', a local Hugging Face folder, "
                     "'sample:NAME' or leave --model out for the embedded default (see `attrib models`)")
