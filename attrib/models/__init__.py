"""Model specs resolved into one adapter: :class:`Model` (module, preprocessing, labels).

Specs:
    None / "default"        the embedded EfficientNet-Lite0 ImageNet classifier (offline)
    "timm:NAME[.TAG]"       a timm model; pretrained weights from the hub, or ``weights=FILE``, or pretrained=False
    "hf:ORG/NAME" / FOLDER  a Hugging Face image classifier (AutoModelForImageClassification + image processor)
    "sample:NAME"           a model shipped in attrib/sample_models
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attrib.models.preprocess import Preprocess


class ModelError(Exception):
    """A model that cannot be resolved or loaded; the message is one line for the user."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (for one-line user errors)."""
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


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


def load_model(spec: str | None = None, *, weights: str | Path | None = None, pretrained: bool = True,
               trust_remote_code: bool = False) -> Model:
    """Resolve a model spec (see the module docstring) into a :class:`Model` in eval mode."""
    spec = (spec or "default").strip()
    if spec == "default":
        return _default(weights)
    if spec.startswith("timm:"):
        from attrib.models.timm_models import load_timm

        return load_timm(spec[5:], weights=weights, pretrained=pretrained)
    if spec.startswith("sample:"):
        from attrib.models.samples import load_sample

        return load_sample(spec[7:])
    if spec.startswith("hf:") or Path(spec).is_dir():
        from attrib.models.hf_models import load_hf

        return load_hf(spec[3:] if spec.startswith("hf:") else spec, trust_remote_code=trust_remote_code)
    raise ModelError(f"unknown model spec {spec!r}: use 'timm:NAME', 'hf:ORG/NAME', a local Hugging Face folder, "
                     "'sample:NAME' or leave --model out for the embedded default (see `attrib models`)")


def _default(weights: str | Path | None) -> Model:
    from attrib.models.builtin import DEFAULT_NAME, DEFAULT_PREPROCESS, imagenet_labels, load_default_module

    module = load_default_module()
    if weights is not None:
        from attrib.models.checkpoint import load_state_dict

        load_state_dict(module, weights)
    return Model(module, DEFAULT_PREPROCESS, imagenet_labels(), "image", f"default ({DEFAULT_NAME}, ImageNet)")
