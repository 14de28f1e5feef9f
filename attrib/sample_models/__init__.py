"""Sample models shipped with attrib: small nets trained by ``python -m attrib.sample_models.train``.

Each sample has a recipe (data set, architecture, training) here, and its weights (``weights/NAME.safetensors``)
and model card (``weights/NAME.json``) as package data, so ``sample:NAME`` loads from any install.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import resources
from typing import Any

from attrib.models.base import Model, ModelError
from attrib.models.preprocess import Preprocess
from attrib.training import Recipe


@dataclass(frozen=True)
class SampleRecipe:
    """How one sample model is made: data set, architecture (name + kwargs), training recipe and seed."""

    name: str
    description: str
    dataset: str
    architecture: str
    recipe: Recipe
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    attack_eps: float = 0.0  # the radius robust accuracy is measured at (l_inf, as trained)

    @property
    def kind(self) -> str:
        return "vector" if self.dataset == "synthetic" else "image"


_BLOCK = dict(dataset="blockdigits", architecture="blockdigits_cnn", attack_eps=0.1)
_SYNTH = dict(dataset="synthetic", architecture="synthetic_mlp", arch_kwargs={"hidden": 100}, attack_eps=0.45)
RECIPES: dict[str, SampleRecipe] = {r.name: r for r in (
    SampleRecipe("blockdigits-standard", "small CNN on blockdigits (all ten digits), standard training",
                 recipe=Recipe(epochs=30, batch_size=64, lr=2e-3), **_BLOCK),
    SampleRecipe("blockdigits-robust", "blockdigits-standard's CNN, PGD l_inf adversarial training at eps 0.1",
                 recipe=Recipe(epochs=30, batch_size=64, lr=2e-3, eps=0.1, norm="linf", pgd_steps=7,
                               warmup_epochs=10), **_BLOCK),
    SampleRecipe("synthetic-standard", "one-hidden-layer ReLU MLP (100 units) on synthetic, standard training",
                 recipe=Recipe(epochs=30, batch_size=64, lr=1e-3, lower=None, upper=None), **_SYNTH),
    SampleRecipe("synthetic-robust", "synthetic-standard's MLP, PGD l_inf adversarial training at eps 0.45",
                 recipe=Recipe(epochs=30, batch_size=64, lr=1e-2, eps=0.45, norm="linf", pgd_steps=10,
                               warmup_epochs=10, lower=None, upper=None), **_SYNTH),
)}


def weights_dir():
    """The packaged weights folder (a Traversable; a real folder for regular installs)."""
    return resources.files("attrib.sample_models") / "weights"


def factory(recipe: SampleRecipe):
    """A callable building a fresh, randomly initialised module of the sample's architecture."""
    from attrib.sample_models.architectures import build

    return partial(build, recipe.architecture, **recipe.arch_kwargs)


def data_card(data) -> dict[str, Any]:
    """What a model card records of its data set so that loading the model never rebuilds it."""
    pre = None if data.preprocess is None else {k: list(v) if isinstance(v, tuple) else v
                                               for k, v in asdict(data.preprocess).items()}
    return {"labels": list(data.labels), "preprocess": pre}


def load(name: str) -> Model:
    """The trained sample model ``name``: weights, labels and preprocessing from its packaged card."""
    from safetensors.torch import load as load_bytes

    recipe = RECIPES[name]
    folder = weights_dir()
    if not (folder / f"{name}.safetensors").is_file():
        raise ModelError(f"sample:{name} has no weights in this install; make them with "
                         f"`python -m attrib.sample_models.train {name}`")
    module = factory(recipe)()
    module.load_state_dict(load_bytes((folder / f"{name}.safetensors").read_bytes()))
    card = json.loads((folder / f"{name}.json").read_text())
    pre = card.get("preprocess")
    preprocess = None if pre is None else Preprocess(**{k: tuple(v) if isinstance(v, list) else v
                                                         for k, v in pre.items()})
    return Model(module.eval(), preprocess, card["labels"], recipe.kind, f"sample:{name}", factory(recipe), card)
