"""Heatmaps of attributions, as DESIGN.md says.

Signed maps: channels summed, diverging colour map centred at 0, symmetric scale at the 99th percentile of |a|.
Unsigned maps (magnitudes): channels summed, sequential colour map, same clip. Overlays blend the heatmap over
the image exactly as the model saw it, with opacity growing with |attribution| (up to ALPHA), so that the
pixels that matter are coloured and the rest of the image stays readable. An all-zero or NaN map is drawn as a hatched panel with
a note (and a warning), never as a solid colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from attrib.evaluate.similarity import signed_map

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "inferno"
PERCENTILE = 99.0
ALPHA = 0.85


@dataclass
class Heatmap:
    """A rendered map: RGB image, the scale it was clipped at, and a warning when it is degenerate."""

    image: Image.Image
    scale: float
    warning: str | None = None
    strength: np.ndarray | None = None  # (H, W) in [0, 1]: |attribution| / scale, clipped


def render(values: np.ndarray, signed: bool) -> Heatmap:
    """Colour an attribution map; see the module docstring for the conventions."""
    import matplotlib

    amap = signed_map(values)
    finite = np.isfinite(amap)
    if not finite.any() or not np.abs(amap[finite]).max() > 0:
        reason = "all NaN" if not finite.any() else "all zero"
        return Heatmap(_hatched(amap.shape, f"attribution is {reason}"), 0.0, f"attribution map is {reason}")
    scale = float(np.percentile(np.abs(amap[finite]), PERCENTILE)) or float(np.abs(amap[finite]).max())
    if signed:
        normed = (np.clip(amap / scale, -1, 1) + 1) / 2
    else:
        normed = np.clip(amap / scale, 0, 1)
    rgb = matplotlib.colormaps[SIGNED_CMAP if signed else UNSIGNED_CMAP](np.nan_to_num(normed, nan=0.5))[..., :3]
    rgb = (rgb * 255).round().astype(np.uint8)
    warning = None
    if not finite.all():
        rgb[~finite] = _hatch_pattern(amap.shape)[~finite]
        warning = f"attribution map has {int((~finite).sum())} NaN/inf values (hatched)"
    strength = np.nan_to_num(np.clip(np.abs(amap) / scale, 0, 1), nan=1.0)
    return Heatmap(Image.fromarray(rgb), scale, warning, strength)


def overlay(view: Image.Image, heat: Heatmap, alpha: float = ALPHA) -> Image.Image:
    """Blend a heatmap over the model's view of the image, opacity alpha x strength per pixel."""
    colour = heat.image.convert("RGB")
    if colour.size != view.size:
        colour = colour.resize(view.size, Image.Resampling.NEAREST)
    strength = np.full(colour.size[::-1], 0.5) if heat.strength is None else heat.strength
    if strength.shape != colour.size[::-1]:
        strength = np.asarray(Image.fromarray(strength.astype(np.float32)).resize(view.size))
    weight = (alpha * np.sqrt(strength))[..., None]
    base = np.asarray(view.convert("RGB"), dtype=np.float64)
    mixed = (1 - weight) * base + weight * np.asarray(colour, dtype=np.float64)
    return Image.fromarray(mixed.round().clip(0, 255).astype(np.uint8))


def _hatch_pattern(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.indices(shape)
    stripes = ((rows + cols) // 4) % 2 == 0
    out = np.full((*shape, 3), 200, dtype=np.uint8)
    out[stripes] = 150
    return out


def _hatched(shape: tuple[int, int], note: str) -> Image.Image:
    image = Image.fromarray(_hatch_pattern(shape))
    ImageDraw.Draw(image).text((4, 4), note, fill=(0, 0, 0))
    return image
