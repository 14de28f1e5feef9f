"""Sample models shipped with attrib (``sample:NAME``); the registry is filled by attrib/sample_models."""

from __future__ import annotations

from collections.abc import Callable

from attrib.models import Model, ModelError

SAMPLES: dict[str, tuple[str, Callable[[], Model]]] = {}  # name -> (one-line description, loader)


def register_sample(name: str, description: str, loader: Callable[[], Model]) -> None:
    """Make ``sample:NAME`` resolvable."""
    SAMPLES[name] = (description, loader)


def load_sample(name: str) -> Model:
    """Load a registered sample model by name."""
    if name not in SAMPLES:
        known = ", ".join(sorted(SAMPLES)) or "none are installed yet"
        raise ModelError(f"unknown sample model {name!r}; available: {known}")
    return SAMPLES[name][1]()
