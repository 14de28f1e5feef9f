"""torchvision classifiers: ``torchvision:NAME[.WEIGHTS]`` (``tv:`` for short), read as their weights' own transforms
read pictures, with hub weights when online, a local file, or random weights."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import torch

from attrib.errors import similar
from attrib.models.base import Model, ModelError
from attrib.models.checkpoint import load_state_dict, read_state_dict, unwrapped
from attrib.models.preprocess import Preprocess
from attrib.models.registry import register_loader


def load_torchvision(spec: str, *, weights: str | Path | None = None, pretrained: bool = True, **_: object) -> Model:
    """A torchvision classifier: ``NAME`` with its default weights, or ``NAME.WEIGHTS`` (``resnet50.IMAGENET1K_V2``)
    with those; downloaded only when no local file is given. Its preprocessing and class names come from the
    chosen weights' metadata, which needs no download."""
    name, _, tag = spec.partition(".")
    chosen = _weights_entry(name, tag)
    use_hub = pretrained and weights is None
    state = read_state_dict(weights) if weights is not None else None
    shape = _shape(name, chosen, state)
    try:
        module = _build(name, weights=chosen, use_hub=use_hub, **shape)
    except Exception as error:  # noqa: BLE001 - download errors come in many types
        if use_hub:
            raise ModelError(f"cannot download pretrained weights for torchvision:{name}.{chosen.name} "
                             f"({type(error).__name__}); offline? use --weights FILE for a local state dict or "
                             "--no-pretrained") from None
        raise ModelError(f"cannot create torchvision:{name}: {error}") from None
    if state is not None:
        load_state_dict(module, weights, state)
    labels = _labels(chosen.meta["categories"], shape["num_classes"])
    factory = partial(_build, name, weights=None, use_hub=False, **shape)
    return Model(module.eval(), torchvision_preprocess(chosen), labels, "image", f"torchvision:{name}.{chosen.name}",
                 factory)


def _labels(categories: list[str], n_classes: int) -> list[str]:
    """ImageNet-1k's classes named as for every other model, with their synonyms ("tabby, tabby cat": torchvision
    says "tabby"; the order is the same); other weights' own categories; ``class i`` for a fine-tuned head."""
    from attrib.models.builtin import class_names

    return list(categories) if n_classes == len(categories) != 1000 else class_names(n_classes)


def _weights_entry(name: str, tag: str):
    """The weights enum entry a spec names (DEFAULT without a tag); one ModelError line for an unknown model or
    weights, naming the ones that exist."""
    import torchvision.models as tvm

    known = tvm.list_models(module=tvm)  # the classifiers (not detection, segmentation or video models)
    if name not in known:
        close = similar(name, known)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see torchvision.models.list_models())"
        raise ModelError(f"unknown torchvision classifier {name!r}{hint}")
    entries = tvm.get_model_weights(name)
    try:
        return entries[tag or "DEFAULT"]
    except KeyError:
        raise ModelError(f"torchvision:{name} has no weights {tag!r}; it has "
                         f"{', '.join(entry.name for entry in entries)}") from None


def _build(name: str, *, weights, use_hub: bool, **shape: object) -> torch.nn.Module:
    import torchvision.models as tvm

    with warnings.catch_warnings():  # GoogLeNet's and Inception's note on a future change of their random init
        warnings.filterwarnings("ignore", message="The default weight initialization")
        if use_hub:
            return tvm.get_model(name, weights=weights)
        return tvm.get_model(name, weights=None, **shape)


def _shape(name: str, weights, state: dict[str, torch.Tensor] | None) -> dict[str, object]:
    """The build arguments that make random weights, or a checkpoint's, the architecture the chosen weights have:
    the checkpoint's number of classes (else the weights'); a ViT's input size (384 for SWAG's end-to-end
    weights); GoogLeNet's and Inception's input transform, on as torchvision turns it on for its weights, and
    their auxiliary heads where the checkpoint has them (torchvision drops them from its pretrained models)."""
    state = None if state is None else {**unwrapped(state), **state}  # the keys as saved win
    shape: dict[str, object] = {"num_classes": len(weights.meta["categories"])}
    if state is not None:
        shape["num_classes"] = _checkpoint_classes(name, state)
    if name.startswith("vit_"):
        shape["image_size"] = int(weights.meta["min_size"][0])
    if name in _AUXILIARY:
        shape["transform_input"] = True
        shape["aux_logits"] = state is not None and any(key.startswith(_AUXILIARY[name]) for key in state)
    return shape


_AUXILIARY = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}  # their auxiliary heads' keys


def _checkpoint_classes(name: str, state: dict[str, torch.Tensor]) -> int:
    """The number of classes of a fine-tuned checkpoint, read from the weight of the architecture's last layer
    with one output per ImageNet class (``fc``, ``classifier.1``, ``heads.head``, ...)."""
    probe = _build(name, weights=None, use_hub=False, num_classes=1000)
    heads = [key for key, layer in probe.named_modules()
             if isinstance(getattr(layer, "weight", None), torch.Tensor) and layer.weight.dim() >= 2
             and layer.weight.shape[0] == 1000]
    weight = state.get(f"{heads[-1]}.weight") if heads else None
    return int(weight.shape[0]) if weight is not None and weight.dim() >= 2 else 1000


def torchvision_preprocess(weights) -> Preprocess:
    """The weights' eval transform (``weights.transforms()``: the shorter side resized to resize_size, a centre
    crop of crop_size, the weights' mean and std) as attrib's preprocessing."""
    transform = weights.transforms()
    crop, resize = transform.crop_size[0], transform.resize_size[0]
    return Preprocess(size=(crop, crop), crop_pct=crop / resize, mean=tuple(transform.mean), std=tuple(transform.std),
                      interpolation=transform.interpolation.value)


def _names(text: str) -> list[str]:
    """torchvision's classifiers that begin with ``text``; after a dot, a classifier's weights
    (``resnet50.IMAGENET1K_V2``)."""
    import torchvision.models as tvm

    name, dot, tag = text.partition(".")
    known = tvm.list_models(module=tvm)
    if not dot:
        return [n for n in known if n.startswith(name)]
    entries = tvm.get_model_weights(name) if name in known else []
    return [f"{name}.{entry.name}" for entry in entries if entry.name.startswith(tag)]


register_loader("torchvision", load_torchvision, names=_names)
register_loader("tv", load_torchvision, names=_names)
