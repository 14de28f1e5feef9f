"""The types every model adapter produces: :class:`Model` and :class:`ModelError` (a leaf module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from attrib.errors import AttribError
from attrib.models.preprocess import Preprocess


class ModelError(AttribError):
    """A model that cannot be resolved or loaded; the message is one line for the user."""


@dataclass
class Model:
    """What the rest of attrib sees of a model: a plain module from (B, C, H, W) (kind "image") or (B, D)
    (kind "vector") to logits (B, K).

    Attributes:
        factory: builds a freshly initialised module of the same architecture (DiffROAR's retraining, data
            randomization); None when the spec cannot say how.
        card: what is known of how the model was trained (sample models: data set, recipe, accuracies).
    """

    module: torch.nn.Module
    preprocess: Preprocess | None
    labels: list[str]
    kind: str
    name: str
    factory: Callable[[], torch.nn.Module] | None = None
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def describe(self) -> dict[str, Any]:
        """The model as run records hold it."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "n_classes": self.n_classes}
        if self.preprocess is not None:
            out.update(input_size=list(self.preprocess.size), mean=list(self.preprocess.mean),
                       std=list(self.preprocess.std))
        if self.card:
            out["card"] = self.card
        return out
