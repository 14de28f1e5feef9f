"""Counter-based randomness: every row draws from its own generator, seeded from (seed, *keys).

A row's random numbers then depend only on the seed and on which row it is, never on how rows are chunked or
on what ran before, so results are identical for any chunk size and reproducible under the same seed.
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np
import torch

from attrib.errors import UsageError


@unique
class Stream(IntEnum):
    """The id of every random stream in attrib, in one place: ``unique`` makes a collision an import error,
    so two kinds of draws (say, a baseline's noise and a mask's tie-break) can never be correlated."""

    MASK_TIES = 101
    MASK_RANDOM = 102
    UNIFORM_BASELINE = 111
    OLM_DRAWS = 201
    EG_PAIRS = 202
    PERTURBATION = 301
    SMOOTHGRAD_NOISE = 303
    BACKGROUND_NOISE = 404
    MOREAUGRAD_NOISE = 505  # one sub-stream per iteration: 505 + MOREAUGRAD_STRIDE * iteration


MOREAUGRAD_STRIDE = 7919


def check_seed(seed: int) -> int:
    """Validate a user seed (a non-negative int)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU torch.Generator seeded from the seed and the row's keys (well mixed by numpy's SeedSequence)."""
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def row_generators(seed: int, stream: int, rows_input: torch.Tensor, rows_index: torch.Tensor) -> list:
    """One generator per row, keyed by (stream, input index, row index)."""
    return [generator(seed, stream, b, r) for b, r in zip(rows_input.tolist(), rows_index.tolist())]


def row_normal(gens: list, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal draws of ``shape`` for each row's generator, stacked to (rows, *shape) on the CPU."""
    return torch.stack([torch.randn(shape, generator=g, dtype=dtype) for g in gens])
