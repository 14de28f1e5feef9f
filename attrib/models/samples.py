"""``sample:NAME``: attrib's own sample models (attrib/sample_models) and any a user registers.

A user's registration of a name wins over attrib's sample of the same name.
"""

from __future__ import annotations

from collections.abc import Callable

from attrib.models.base import Model, ModelError
from attrib.models.registry import register_loader

SAMPLES: dict[str, tuple[str, Callable[[], Model]]] = {}  # user registrations: name -> (description, loader)


def samples() -> dict[str, tuple[str, Callable[[], Model]]]:
    """All sample models, name -> (one-line description, loader): attrib's own and any registered."""
    from functools import partial

    from attrib.sample_models import RECIPES, load

    return {**{name: (r.description, partial(load, name)) for name, r in RECIPES.items()}, **SAMPLES}


def register_sample(name: str, description: str, loader: Callable[[], Model]) -> None:
    """Make ``sample:NAME`` resolvable."""
    SAMPLES[name] = (description, loader)


ARCHITECTURE_CARD = ("description", "dataset", "dataset_args", "architecture", "arch_kwargs", "recipe", "labels",
                     "preprocess")  # what holds for any weights of the architecture; not the shipped ones' scores


def load_sample(name: str, *, weights: object = None, pretrained: bool = True, **_: object) -> Model:
    """Load a sample model by name (with ``weights``: a local state dict of its architecture instead; with
    ``pretrained`` False: the architecture with random weights)."""
    known = samples()
    if name not in known:
        raise ModelError(f"unknown sample model {name!r}; available: {', '.join(sorted(known))}")
    model = known[name][1]()
    if weights is not None:
        from attrib.models.checkpoint import load_state_dict

        load_state_dict(model.module, weights)
        _other_weights(model, f"{model.name} + {weights}", str(weights))
    elif not pretrained:
        if model.factory is None:
            raise ModelError(f"sample:{name} cannot be built with random weights (its loader gives no factory)")
        model.module = model.factory().eval()
        _other_weights(model, f"{model.name} (random weights)", "random")
    return model


def _other_weights(model: Model, name: str, weights: str) -> None:
    model.name = name
    model.card = {k: v for k, v in model.card.items() if k in ARCHITECTURE_CARD} | {"weights": weights}


register_loader("sample", load_sample, names=lambda text: sorted(n for n in samples() if n.startswith(text)))
