"""Pictures of attributions.

Two pictures per input and method:

- the **heatmap**: channels summed; signed methods on a diverging map centred at 0 (red raises the target,
  blue lowers it), magnitudes on a sequential one; the scale is the 99th percentile of |attribution| (clipped
  above it). An all-zero or NaN map is drawn as a hatched panel with a note (and a warning), never as a
  solid colour.
- the **overlay**, in one of ``VIEWS`` (default "blend"): *where* the evidence is, at a glance. "blend" colours
  the attribution's positive part (for signed methods; the value itself for magnitudes) on a sequential map
  over a dimmed, desaturated copy of the image, opacity growing with the value; "negative" does the same for
  the negative part; "magnitude" for sum_c |a_c|; "mask" shows the image only where that quantity is in its
  top 20% and at least a quarter of its scale, and darkens the rest; "signed" is the diverging heatmap blended over the image. Overlays smooth the
  map lightly (Gaussian, sigma 1% of the image side) for display only: the arrays are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from attrib.evaluate.similarity import magnitude_map, signed_map

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "inferno"
PERCENTILE = 99.0
ALPHA = 0.85
VIEWS = ("blend", "negative", "magnitude", "mask", "signed")
SMOOTH_FRACTION = 0.01  # display smoothing: sigma as a fraction of the image's larger side
MASK_KEEP = 0.2  # "mask" keeps at most the pixels in this top fraction,
MASK_FLOOR = 0.25  # and only those at or above this share of the colour scale


@dataclass
class Heatmap:
    """A rendered map: RGB image, the scale it was clipped at, and a warning when it is degenerate."""

    image: Image.Image
    scale: float
    warning: str | None = None
    strength: np.ndarray | None = None  # (H, W) in [0, 1]: |attribution| / scale, clipped
    signed: bool = True


def _degenerate(amap: np.ndarray) -> str | None:
    finite = np.isfinite(amap)
    if not finite.any():
        return "all NaN"
    return None if np.abs(amap[finite]).max() > 0 else "all zero"


def _scale(amap: np.ndarray) -> float:
    finite = np.abs(amap[np.isfinite(amap)])
    return float(np.percentile(finite, PERCENTILE)) or float(finite.max())


def render(values: np.ndarray, signed: bool) -> Heatmap:
    """The heatmap picture (see the module docstring)."""
    import matplotlib

    amap = signed_map(values)
    reason = _degenerate(amap)
    if reason:
        return Heatmap(_hatched(amap.shape, f"attribution is {reason}"), 0.0, f"attribution map is {reason}",
                       signed=signed)
    finite = np.isfinite(amap)
    scale = _scale(amap)
    normed = (np.clip(amap / scale, -1, 1) + 1) / 2 if signed else np.clip(amap / scale, 0, 1)
    rgb = matplotlib.colormaps[SIGNED_CMAP if signed else UNSIGNED_CMAP](np.nan_to_num(normed, nan=0.5))[..., :3]
    rgb = (rgb * 255).round().astype(np.uint8)
    warning = None
    if not finite.all():
        rgb[~finite] = _hatch_pattern(amap.shape)[~finite]
        warning = f"attribution map has {int((~finite).sum())} NaN/inf values (hatched)"
    strength = np.nan_to_num(np.clip(np.abs(amap) / scale, 0, 1), nan=1.0)
    return Heatmap(Image.fromarray(rgb), scale, warning, strength, signed)


def display_map(values: np.ndarray, signed: bool, view: str) -> np.ndarray:
    """The (H, W) non-negative quantity an overlay view shows (before smoothing)."""
    if view == "magnitude" or (not signed and view != "signed"):
        return magnitude_map(values) if view == "magnitude" else signed_map(values)
    amap = signed_map(values)
    return np.clip(-amap if view == "negative" else amap, 0, None)


def view_image(view_of_image: Image.Image, values: np.ndarray, signed: bool, view: str = "blend") -> Image.Image:
    """The overlay picture of one attribution in one of ``VIEWS``."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    if view == "signed":
        return overlay(view_of_image, render(values, signed))
    quantity = display_map(values, signed, view)
    if _degenerate(quantity) or not np.nanmax(np.nan_to_num(quantity, nan=0.0)) > 0:
        return _hatched(quantity.shape, "nothing to show").resize(view_of_image.size)
    smooth = smooth_for_display(np.nan_to_num(quantity, nan=0.0))
    strength = np.clip(smooth / _scale(smooth), 0, 1)
    if view == "mask":
        return _masked(view_of_image, strength)
    return _blend(view_of_image, strength)


def smooth_for_display(amap: np.ndarray) -> np.ndarray:
    """A light Gaussian blur (sigma SMOOTH_FRACTION of the larger side), for pictures only."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(amap.astype(np.float64), sigma=max(0.5, SMOOTH_FRACTION * max(amap.shape)))


def _dimmed(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The image as a dim, desaturated backdrop (float RGB in 0..255)."""
    gray = np.asarray(image.convert("L").resize(size), dtype=np.float64)
    return np.repeat((40 + 0.45 * gray)[..., None], 3, axis=2)


def _fit(strength: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if strength.shape == size[::-1]:
        return strength
    return np.asarray(Image.fromarray(strength.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))


def _blend(image: Image.Image, strength: np.ndarray) -> Image.Image:
    import matplotlib

    strength = _fit(strength, image.size)
    colour = matplotlib.colormaps[UNSIGNED_CMAP](0.25 + 0.75 * strength)[..., :3] * 255
    weight = (ALPHA * np.clip((strength - 0.05) / 0.95, 0, 1) ** 0.8)[..., None]  # no haze from the faintest values
    mixed = (1 - weight) * _dimmed(image, image.size) + weight * colour
    return Image.fromarray(mixed.round().clip(0, 255).astype(np.uint8))


def _masked(image: Image.Image, strength: np.ndarray) -> Image.Image:
    strength = _fit(strength, image.size)
    cut = max(float(np.quantile(strength, 1 - MASK_KEEP)), MASK_FLOOR)
    keep = np.clip((strength - cut * 0.8) / max(cut * 0.2, 1e-12), 0, 1)[..., None]  # a soft edge
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    mixed = keep * rgb + (1 - keep) * 0.15 * rgb
    return Image.fromarray(mixed.round().clip(0, 255).astype(np.uint8))


def overlay(view: Image.Image, heat: Heatmap, alpha: float = ALPHA) -> Image.Image:
    """Blend a heatmap over the model's view of the image, opacity alpha x strength per pixel ("signed")."""
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


def colorbar_stops(signed: bool, n: int = 9) -> list[str]:
    """CSS colours sampling the heatmap's colour map from its low to its high end (for the report's bars)."""
    import matplotlib

    cmap = matplotlib.colormaps[SIGNED_CMAP if signed else UNSIGNED_CMAP]
    return ["#%02x%02x%02x" % tuple(int(round(255 * c)) for c in cmap(i / (n - 1))[:3]) for i in range(n)]


def _hatch_pattern(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.indices(shape)
    stripes = ((rows + cols) // 4) % 2 == 0
    out = np.full((*shape, 3), 200, dtype=np.uint8)
    out[stripes] = 150
    return out


def _hatched(shape: tuple[int, int], note: str) -> Image.Image:
    """A hatched panel with ``note`` wrapped to its width; on a panel too small for a word, the hatch alone
    (never a word cut off)."""
    image = Image.fromarray(_hatch_pattern(shape))
    draw = ImageDraw.Draw(image)
    lines = _wrap(draw, note, image.width - 8)
    line_height = 12
    if len(lines) * line_height + 4 <= image.height:
        for i, line in enumerate(lines):
            draw.text((4, 4 + i * line_height), line, fill=(0, 0, 0))
    return image


def _wrap(draw: ImageDraw.ImageDraw, text: str, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels, broken between words ([] when a word is too wide)."""
    lines: list[str] = []
    for word in text.split():
        if draw.textlength(word) > width:
            return []
        if lines and draw.textlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines
