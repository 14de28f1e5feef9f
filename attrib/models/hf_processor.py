"""A Hugging Face image processor's resize, centre crop and normalisation, read into a fixed-size Preprocess.

Processors describe the same few steps in several ways, and attrib follows each as the processor itself runs it:

- ``size`` {height, width}: the image is squashed to that size (ViT, BEiT, DeiT), then centre-cropped to
  ``crop_size`` when ``do_center_crop`` is set (DeiT: 256 -> 224);
- Perceiver's: the centre of ``size / crop_size`` x the shorter side is cut out first, then resized to ``size``
  (``Preprocess.crop_first``);
- ``size`` {shortest_edge}: the shorter side is resized to it (to shortest_edge / ``crop_pct`` where the
  processor has a crop_pct: ConvNeXt, PoolFormer), then centre-cropped to ``crop_size`` (or to a square of
  shortest_edge for ConvNeXt); ConvNeXt squashes to a square at 384 px and above;
- ``resample`` (PIL's codes) chooses the interpolation;
- ``do_flip_channel_order`` (MobileViT: the model reads BGR): the model's wrapper flips attrib's RGB inputs;
- pixels are ``p * rescale_factor`` (``- 1`` with ``rescale_offset``; p itself without ``do_rescale``), then
  normalised by ``image_mean`` / ``image_std`` unless ``do_normalize`` is off (and divided by ``image_std``
  once more with EfficientNet's ``include_top``): folded into one mean and std on [0, 1] pixels.

A processor whose output has no fixed size (shortest_edge without a crop) is centre-cropped to a square, since
attrib batches images of one size. Others have rules of their own (LeViT resizes to 256/224 of its shortest
edge): :func:`mismatch` runs the processor on a probe picture and says when attrib's inputs differ from its.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from attrib.models.preprocess import Preprocess

_INTERPOLATION = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}
CONVNEXT_WARP = 384  # ConvNeXt's processor squashes instead of cropping at this shortest edge and above
MISMATCH = 0.01  # mean difference from the processor's inputs, relative to their mean magnitude, worth a warning


def processor_preprocess(processor: Any, height: int, width: int, channels: int) -> Preprocess:
    """The Preprocess that reproduces ``processor`` (``height`` x ``width``: the model config's image size,
    used where the processor gives none)."""
    size, crop_pct, squash = _geometry(processor, height, width)
    mean, std = _normalisation(processor, channels)
    return Preprocess(size=size, crop_pct=crop_pct, mean=mean, std=std, interpolation=_interpolation(processor),
                      squash=squash, channels=channels, crop_offset="floor", crop_first=_crops_first(processor))


def _crops_first(processor: Any) -> bool:
    """Perceiver's processor cuts size / crop_size of the shorter side out first, then resizes to size."""
    return type(processor).__name__.startswith("Perceiver") and bool(getattr(processor, "do_center_crop", False))


def _geometry(processor: Any, height: int, width: int) -> tuple[tuple[int, int], float, bool]:
    """(final size, fraction of the resized image the crop keeps, squash) as the processor resizes and crops."""
    size = _sides(getattr(processor, "size", None))
    crop = _sides(getattr(processor, "crop_size", None)) if getattr(processor, "do_center_crop", False) else {}
    crop_hw = (crop["height"], crop["width"]) if "height" in crop and "width" in crop else None
    if crop_hw and _crops_first(processor):
        return (size["height"], size["width"]), size["height"] / crop_hw[0], False
    if "height" in size and "width" in size:
        if crop_hw is None:
            return (size["height"], size["width"]), 1.0, True
        return crop_hw, min(crop_hw[0] / size["height"], crop_hw[1] / size["width"]), True
    short = size.get("shortest_edge")
    if not short:
        return (height, width), 1.0, True
    crop_pct = getattr(processor, "crop_pct", None)
    if crop_pct and crop_hw is None and short >= CONVNEXT_WARP:
        return (short, short), 1.0, True
    resized = int(short / crop_pct) if crop_pct else short
    final = crop_hw or (short, short)
    return final, min(final) / resized, False


def _sides(size: Any) -> dict[str, int]:
    """A processor's size (a dict, transformers 5's SizeDict, or an int) as the sides it sets."""
    if isinstance(size, int):
        return {"height": size, "width": size}
    if size is None or not hasattr(size, "get"):
        return {}
    keys = ("height", "width", "shortest_edge")
    return {key: int(size.get(key)) for key in keys if size.get(key)}


def _interpolation(processor: Any) -> str:
    resample = getattr(processor, "resample", None)
    code = getattr(resample, "value", resample)
    return _INTERPOLATION.get(code, "bilinear") if isinstance(code, int) else "bilinear"


def _normalisation(processor: Any, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std on [0, 1] pixels equal to the processor's rescaling and normalisation. A processor with no
    normalisation step at all (MobileViT's in transformers 4: no ``do_normalize``, no ``image_mean``) has none."""
    if getattr(processor, "do_normalize", getattr(processor, "image_mean", None) is not None):
        mean = per_channel(getattr(processor, "image_mean", None), channels)
        std = per_channel(getattr(processor, "image_std", None), channels)
    else:
        mean, std = (0.0,) * channels, (1.0,) * channels
    scale = 255.0 * float(getattr(processor, "rescale_factor", 1 / 255)) if getattr(processor, "do_rescale", True) \
        else 255.0  # the model reads p * scale / 255 for a [0, 1] pixel p
    offset = 1.0 if getattr(processor, "rescale_offset", False) else 0.0
    if getattr(processor, "include_top", False):  # EfficientNet divides by image_std once more, after all that
        std = tuple(s * t for s, t in zip(std, per_channel(getattr(processor, "image_std", None), channels)))
    return tuple((m + offset) / scale for m in mean), tuple(s / scale for s in std)


def per_channel(values: Any, channels: int) -> tuple[float, ...]:
    """A processor's mean or std for ``channels`` channels (0.5 when it gives none; one value for all, or the
    mean of RGB statistics for a grayscale model)."""
    if values is None:
        values = [0.5]
    values = [float(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
    return tuple(values) if len(values) == channels else (sum(values) / len(values),) * channels


def mismatch(processor: Any, preprocess: Preprocess, bgr: bool = False) -> str | None:
    """How attrib's inputs differ from the processor's own on a smooth 300 x 200 probe picture, or None when
    they agree (or the processor cannot be run on it); ``bgr``: the processor's channels are in BGR order,
    which the model wrapper makes from attrib's RGB."""
    rows, cols = np.mgrid[0:200, 0:300].astype(np.float32)
    rgb = np.stack([rows / 200, cols / 300, 0.5 + 0.5 * np.sin(rows / 17) * np.cos(cols / 23)], axis=-1)
    probe = Image.fromarray((rgb * 255).round().astype(np.uint8))
    try:
        theirs = torch.as_tensor(np.asarray(processor(probe, return_tensors="np")["pixel_values"][0]))
    except Exception:  # noqa: BLE001 - a processor that cannot run on a plain RGB picture: nothing to compare
        return None
    ours = preprocess(probe).flip(0) if bgr else preprocess(probe)
    if theirs.shape[0] != ours.shape[0]:
        return None  # a grayscale model fed RGB by its processor
    if theirs.shape != ours.shape:
        return f"its processor makes {theirs.shape[-2]} x {theirs.shape[-1]} inputs, attrib {ours.shape[-2]} x " \
               f"{ours.shape[-1]}"
    gap = float((theirs.float() - ours).abs().mean() / theirs.float().abs().mean().clamp_min(1e-6))
    return None if gap <= MISMATCH else f"attrib's inputs differ from its processor's by {gap:.0%} on average"
