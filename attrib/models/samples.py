"""Sample models shipped with attrib (``sample:NAME``); the registry is filled by attrib/sample_models."""

from __future__ import annotations

from collections.abc import Callable

from attrib.models import Model, ModelError

SAMPLES: dict[str, tuple[str, Callable[[], Model]]] = {}  # name -> (one-line description, loader)
_LOADED = False


def _builtin() -> None:
    """Register attrib's own samples once (user registrations made earlier win)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from attrib.sample_models import register_all

        register_all()


def samples() -> dict[str, tuple[str, Callable[[], Model]]]:
    """All sample models: attrib's own and any registered."""
    _builtin()
    return SAMPLES


def register_sample(name: str, description: str, loader: Callable[[], Model]) -> None:
    """Make ``sample:NAME`` resolvable."""
    SAMPLES[name] = (description, loader)


def load_sample(name: str) -> Model:
    """Load a registered sample model by name."""
    _builtin()
    if name not in SAMPLES:
        known = ", ".join(sorted(SAMPLES)) or "none are installed yet"
        raise ModelError(f"unknown sample model {name!r}; available: {known}")
    return SAMPLES[name][1]()
