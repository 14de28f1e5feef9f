"""Counter-based randomness: every random number is a hash of (seed, stream, input, row, element).

A row's random numbers then depend only on the seed and on which row and element they are, never on how rows
are chunked, on the device, or on what ran before: results are identical for any chunk size and reproducible
under the same seed.

The hot draws (SmoothGrad / VarGrad and MoreauGrad noise, EG's references and alphas, the uniform baseline,
DiffROAR's tie-breaks and control) come from :func:`row_keys` + :func:`uniform` / :func:`normal` /
:func:`integers`: a whole chunk in one call, on the compute device, from integer arithmetic (SplitMix64's
mixer over a Weyl sequence) that gives the same bits on every device. Uniforms are those bits exactly (24 bits
for float32, 53 for float64); normals take two uniforms through Box-Muller, so across devices they agree to the
last bit or two of float32 ``log``/``cos``/``sin`` (the math libraries differ), never more. Occasional draws
(perturbations, OLM's samples, background noise) use :func:`generator`, a CPU torch.Generator per key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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
GENERATOR = "splitmix64-counter/1"  # recorded in every run: a run drawn by another generator is not resumed


MAX_SEED = 2 ** 32 - 1  # as numpy's and scikit-learn's; seeds derived from it (seed x 1000 + repeat, seed + index)
#                        then stay within torch's signed 64 bits, and no two seeds wrap onto the same draws


def check_seed(seed: int) -> int:
    """Validate a user seed (an int from 0 to MAX_SEED)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    if seed > MAX_SEED:
        raise UsageError(f"seed must be at most 2**32 - 1 ({MAX_SEED}), got {seed}")
    return int(seed)


def generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU torch.Generator seeded from the seed and the row's keys (well mixed by numpy's SeedSequence)."""
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def _int64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


GOLDEN = _int64(0x9E3779B97F4A7C15)  # the Weyl increment: 2^64 / golden ratio
MIX1, MIX2 = _int64(0xBF58476D1CE4E5B9), _int64(0x94D049BB133111EB)
CPU_BLOCK = 1 << 18  # elements hashed at a time on the CPU (cache-sized blocks: 4x faster than whole chunks)


def _mix_(z: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser, in place on int64 (wrapping multiplies; logical shifts made from arithmetic ones)."""
    for shift, multiplier in ((30, MIX1), (27, MIX2), (31, None)):
        torch.bitwise_right_shift(z, shift, out=scratch)
        scratch.bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(scratch)
        if multiplier is not None:
            z.mul_(multiplier)
    return z


def _mixed(z: torch.Tensor) -> torch.Tensor:
    return _mix_(z, torch.empty_like(z))


def row_keys(seed: int, stream: int, inputs: torch.Tensor, rows: torch.Tensor | int = 0) -> torch.Tensor:
    """One int64 key per row from (seed, stream, input key, row index), on ``inputs``' device."""
    inputs = torch.as_tensor(inputs, dtype=torch.int64)
    rows = torch.as_tensor(rows, dtype=torch.int64, device=inputs.device).expand_as(inputs)
    key = _mixed(torch.full_like(inputs, _int64(check_seed(seed) * GOLDEN + int(stream))))
    key = _mixed(key.bitwise_xor_(inputs * GOLDEN))
    return _mixed(key.bitwise_xor_(rows * GOLDEN + 1))


def _blocks(keys: torch.Tensor, count: int, offset: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(start column, mixed bits of elements start.. for every row) in blocks; element j of a row is the hash
    of its key + (offset + j + 1) * GOLDEN, whatever the blocking."""
    width = count if keys.device.type != "cpu" else max(1, min(count, CPU_BLOCK // max(1, len(keys))))
    counters = torch.arange(offset + 1, offset + count + 1, device=keys.device, dtype=torch.int64).mul_(GOLDEN)
    z = torch.empty(len(keys), width, dtype=torch.int64, device=keys.device)
    scratch = torch.empty_like(z)
    for start in range(0, count, width):
        w = min(width, count - start)
        bits = torch.add(keys[:, None], counters[start:start + w], out=z[:, :w])
        yield start, _mix_(bits, scratch[:, :w])


def _unit(bits: torch.Tensor, width: int, work: torch.dtype, skip: int = 0) -> torch.Tensor:
    """Uniforms in [0, 1) from ``width`` bits below the top ``skip`` bits (exact in ``work``)."""
    top = torch.bitwise_right_shift(bits, 64 - width - skip).bitwise_and_((1 << width) - 1)
    return top.to(work).mul_(2.0 ** -width)


def _work(dtype: torch.dtype) -> tuple[torch.dtype, int]:
    """The dtype draws are computed in, and the bits of one uniform: 53 for float64, 24 below."""
    return (torch.float64, 53) if dtype == torch.float64 else (torch.float32, 24)


def uniform(keys: torch.Tensor, count: int, dtype: torch.dtype = torch.float32, offset: int = 0) -> torch.Tensor:
    """(rows, count) uniforms in [0, 1); element j of row i depends only on keys[i] and offset + j."""
    out = torch.empty(len(keys), count, dtype=dtype, device=keys.device)
    work, width = _work(dtype)
    for start, bits in _blocks(keys, count, offset):
        out[:, start:start + bits.shape[1]] = _unit(bits, width, work)
    return out


def normal(keys: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype = torch.float32,
           offset: int = 0) -> torch.Tensor:
    """(rows, *shape) standard normals: Box-Muller on two uniforms from each hash, one from each half of its
    bits (24 each for float32, 32 for float64), giving elements 2j and 2j+1."""
    count = math.prod(shape)
    pairs = (count + 1) // 2
    work, width = _work(dtype)
    width = min(width, 32)
    out = torch.empty(len(keys), 2 * pairs, dtype=work, device=keys.device)
    for start, bits in _blocks(keys, pairs, offset):
        radius = _unit(bits, width, work).neg_().add_(1.0).log_().mul_(-2.0).sqrt_()  # 1 - u in (0, 1]: finite
        angle = _unit(bits, width, work, skip=32).mul_(2 * math.pi)
        pair = out[:, 2 * start:2 * (start + bits.shape[1])].view(len(keys), -1, 2)
        torch.mul(radius, torch.cos(angle), out=pair[..., 0])
        torch.mul(radius, torch.sin(angle), out=pair[..., 1])
    return out[:, :count].to(dtype).reshape(len(keys), *shape)


def integers(keys: torch.Tensor, high: int, offset: int = 0) -> torch.Tensor:
    """One integer in [0, high) per row (the top 62 bits modulo ``high``: bias below high / 2^62)."""
    (_, bits), = _blocks(keys, 1, offset)
    return torch.bitwise_right_shift(bits[:, 0], 2).bitwise_and_((1 << 62) - 1).remainder_(int(high))
