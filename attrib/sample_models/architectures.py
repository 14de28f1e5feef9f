"""The sample models' architectures, built by name so DiffROAR and the sanity checks can make fresh copies."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def blockdigits_cnn(n_classes: int = 10, channels: int = 1, height: int = 56, width: int = 28) -> nn.Module:
    """Two conv + max-pool stages and a two-layer head on the flattened map (keeps where a feature was)."""
    flat = 16 * (height // 4) * (width // 4)
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, n_classes))


def synthetic_mlp(n_classes: int = 2, dim: int = 10, hidden: int = 100) -> nn.Module:
    """One hidden ReLU layer, as in the DiffROAR paper's synthetic experiment."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"blockdigits_cnn": blockdigits_cnn,
                                                     "synthetic_mlp": synthetic_mlp}


def build(name: str, **kwargs) -> torch.nn.Module:
    """A freshly initialised architecture by name."""
    return ARCHITECTURES[name](**kwargs)
