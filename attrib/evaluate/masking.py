"""Per-coordinate masks for remove-and-retrain evaluations, and where attribution mass lies.

Coordinates (channel x pixel) are ranked per example by |attribution|; ties (e.g. IG's zeros on a zero
background) are broken by a seeded random order, never by position, so the tie-break carries no information.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from attrib.rng import Stream, row_keys, uniform

SPLITS = {"train": 0, "test": 1}


def n_kept(k: float, n_coordinates: int) -> int:
    """How many coordinates a fraction ``k`` keeps (at least one)."""
    return max(1, min(n_coordinates, math.ceil(k * n_coordinates - 1e-9)))


def keep_mask(attributions: torch.Tensor, k: float, side: str, seed: int, split: str = "train") -> torch.Tensor:
    """Bool mask shaped like ``attributions``: True on the top-k (``side`` = "top") or bottom-k ("bottom")
    fraction of each example's coordinates by |attribution|."""
    if side not in ("top", "bottom"):
        raise ValueError(f"side must be 'top' or 'bottom', not {side!r}")
    scores = attributions.detach().abs().flatten(1).double().cpu().numpy()
    ties = _draws(seed, Stream.MASK_TIES, split, scores.shape, torch.float64).numpy()
    order = np.lexsort((ties, scores), axis=-1)  # ascending by |a|, ties in random order
    n = n_kept(k, scores.shape[1])
    chosen = order[:, -n:] if side == "top" else order[:, :n]
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, chosen, True, axis=1)
    return torch.from_numpy(mask).reshape(attributions.shape)


def apply_mask(x: torch.Tensor, keep: torch.Tensor, fill: float) -> torch.Tensor:
    """``x`` where ``keep``, else the scalar ``fill``."""
    return torch.where(keep, x, torch.full_like(x, fill))


def mass_share(attributions: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Per example, the share of sum |attribution| that lies where ``region`` is True (NaN for all-zero maps)."""
    mass = attributions.detach().abs().flatten(1).double()
    inside = (mass * region.flatten(1).to(mass.dtype)).sum(1)
    return (inside / mass.sum(1)).float()


def random_attributions(shape: tuple[int, ...], seed: int, split: str) -> torch.Tensor:
    """The control: i.i.d. uniform scores, a fresh draw per seed and split."""
    return _draws(seed, Stream.MASK_RANDOM, split, shape, torch.float32)


def _draws(seed: int, stream: Stream, split: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Uniforms of ``shape``: row i keyed by (seed, stream, split, example i)."""
    keys = row_keys(seed, stream, torch.full((shape[0],), SPLITS[split]), torch.arange(shape[0]))
    return uniform(keys, math.prod(shape[1:]), dtype).reshape(shape)
