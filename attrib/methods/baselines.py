"""Reference inputs x' for path methods: "zero", "blur", "uniform", or a tensor.

- "zero": the all-zero input tensor (for a normalised image model: the mean colour of its normalisation).
- "blur": the input blurred by a Gaussian of sigma = blur_sigma_frac x the image's larger side
  (Sturmfels et al. 2020, "Visualizing the impact of feature attribution baselines").
- "uniform": noise drawn uniformly in [min(x), max(x)] of each input, from the seed.
- "black", "white": the picture of that colour, as the model reads it: the official IG code's black image. It
  depends on the model's normalisation, which the commands know (attrib.jobs.common.pixel_baselines makes it a
  tensor); attribute() takes model inputs only, and is given that tensor.
- a tensor: broadcast to the inputs' shape (one reference for all inputs, or one per input).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attrib.rng import Stream, row_keys, uniform

BASELINE_NAMES = ("zero", "blur", "uniform", "black", "white")
PIXEL_BASELINES = {"black": 0.0, "white": 1.0}  # the pixel value in [0, 1] of each channel


def make_baseline(spec: str | torch.Tensor, x: torch.Tensor, seed: int, blur_sigma_frac: float,
                  keys: torch.Tensor | None = None) -> torch.Tensor:
    """The baseline for inputs x (B, ...), on x's device and dtype; random draws are keyed by ``keys`` (one
    per input, default its position)."""
    if isinstance(spec, torch.Tensor):
        return _broadcast(spec, x)
    if spec == "zero":
        return torch.zeros_like(x)
    if spec == "blur":
        return gaussian_blur(x, blur_sigma_frac * max(x.shape[-2:]) if x.ndim == 4 else 0.0)
    if spec == "uniform":
        return _uniform(x, seed, torch.arange(len(x)) if keys is None else keys)
    if spec in PIXEL_BASELINES:
        raise ValueError(f"the {spec} baseline is a picture as the model reads it, which depends on its "
                         f"normalisation: give it as a tensor, ((pixel - mean) / std).view(-1, 1, 1) with pixel "
                         f"{PIXEL_BASELINES[spec]:g} (the commands make it from the model's)")
    raise ValueError(f"unknown baseline {spec!r}; use one of {', '.join(BASELINE_NAMES)} or a tensor")


def check_baseline(spec: object) -> None:
    """Reject a baseline spec that is neither a known name nor a tensor (for config validation)."""
    if not isinstance(spec, torch.Tensor) and spec not in BASELINE_NAMES:
        raise ValueError(f"unknown baseline {spec!r}; use one of {', '.join(BASELINE_NAMES)} or a tensor")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of images (B, C, H, W) with reflect padding (clamped to the image size)."""
    if x.ndim != 4:
        raise ValueError(f"the blur baseline needs image inputs (B, C, H, W); got shape {tuple(x.shape)}")
    if sigma <= 0:
        return x.clone()
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    out = x
    for dim in (2, 3):
        pad = min(radius, out.shape[dim] - 1)
        k = kernel[radius - pad: radius + pad + 1]
        k = (k / k.sum()).reshape(1, 1, -1, 1) if dim == 2 else (k / k.sum()).reshape(1, 1, 1, -1)
        padding = (0, 0, pad, pad) if dim == 2 else (pad, pad, 0, 0)
        out = F.conv2d(F.pad(out, padding, mode="reflect"), k.expand(channels, 1, *k.shape[2:]), groups=channels)
    return out


def _uniform(x: torch.Tensor, seed: int, keys: torch.Tensor) -> torch.Tensor:
    """Per input, uniform noise over that input's own value range (drawn on x's device)."""
    flat = x.reshape(len(x), -1)
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    u = uniform(row_keys(seed, Stream.UNIFORM_BASELINE, keys.to(x.device)), flat.shape[1], x.dtype)
    return (low + (high - low) * u).view_as(x)


def as_reference(tensor: torch.Tensor, x: torch.Tensor, what: str) -> torch.Tensor:
    """A user's baseline or background on x's device and dtype, detached; a ValueError for integer tensors
    (pixels in 0..255, not the model's input space) and NaN or infinite values (they would make NaN maps)."""
    if not tensor.is_floating_point():
        raise ValueError(f"{what} must be floating point, in the same space as the inputs; got {tensor.dtype}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return tensor.detach().to(x.device, x.dtype)


def _broadcast(baseline: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    baseline = as_reference(baseline, x, "baseline")
    try:
        return torch.broadcast_to(baseline, x.shape).clone()
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not broadcast to the inputs' shape "
                         f"{tuple(x.shape)}") from None
