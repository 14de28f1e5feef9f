"""The counter-based generator: the same numbers for any chunking or blocking, equal to a plain-Python reference
stream, the right distributions, independent streams; on a GPU, the same bits as on the CPU."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from attrib import rng
from attrib.rng import Stream, integers, normal, row_keys, uniform

M64 = (1 << 64) - 1


def _mix(z: int) -> int:
    """SplitMix64's finaliser on Python ints (the reference the tensor code must equal)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _reference_bits(seed: int, stream: int, key: int, row: int, element: int) -> int:
    golden = 0x9E3779B97F4A7C15
    k = _mix((seed * golden + stream) & M64)
    k = _mix(k ^ ((key * golden) & M64))
    k = _mix(k ^ ((row * golden + 1) & M64))
    return _mix((k + (element + 1) * golden) & M64)


def test_uniforms_equal_a_plain_python_reference_stream():
    keys = row_keys(7, Stream.SMOOTHGRAD_NOISE, torch.tensor([0, 3, 12]), torch.tensor([5, 0, 49]))
    got64, got32 = uniform(keys, 6, torch.float64), uniform(keys, 6, torch.float32)
    for i, (key, row) in enumerate([(0, 5), (3, 0), (12, 49)]):
        for j in range(6):
            bits = _reference_bits(7, int(Stream.SMOOTHGRAD_NOISE), key, row, j)
            assert got64[i, j].item() == (bits >> 11) * 2.0 ** -53
            assert got32[i, j].item() == (bits >> 40) * 2.0 ** -24


def test_normals_are_box_muller_on_the_reference_uniforms():
    keys = row_keys(1, Stream.MOREAUGRAD_NOISE, torch.tensor([2]), torch.tensor([3]))
    z, z32 = normal(keys, (4,), torch.float64)[0], normal(keys, (4,), torch.float32)[0]
    for j in range(2):
        bits = _reference_bits(1, int(Stream.MOREAUGRAD_NOISE), 2, 3, j)
        top24, low24 = bits >> 40, (bits >> 8) & 0xFFFFFF  # float32: 24 bits from each half
        r32 = math.sqrt(-2 * math.log(1 - top24 * 2.0 ** -24))
        assert z32[2 * j].item() == pytest.approx(r32 * math.cos(2 * math.pi * low24 * 2.0 ** -24), abs=2e-6)
        u, v = (bits >> 32) * 2.0 ** -32, (bits & 0xFFFFFFFF) * 2.0 ** -32  # float64: 32 bits each
        radius = math.sqrt(-2 * math.log(1 - u))
        assert z[2 * j].item() == pytest.approx(radius * math.cos(2 * math.pi * v), abs=1e-12)
        assert z[2 * j + 1].item() == pytest.approx(radius * math.sin(2 * math.pi * v), abs=1e-12)


@pytest.mark.parametrize("block", [1, 7, 1000, 1 << 18])
def test_any_chunking_and_blocking_give_the_same_numbers(monkeypatch, block):
    inputs, rows = torch.arange(10).repeat_interleave(5), torch.arange(5).repeat(10)
    keys = row_keys(3, Stream.SMOOTHGRAD_NOISE, inputs, rows)
    whole = normal(keys, (3, 5, 7))
    monkeypatch.setattr(rng, "CPU_BLOCK", block)
    parts = torch.cat([normal(keys[i:i + 3], (3, 5, 7)) for i in range(0, 50, 3)])
    assert torch.equal(whole, parts)
    assert torch.equal(uniform(keys, 105), torch.cat([uniform(keys[i:i + 4], 105) for i in range(0, 50, 4)]))
    # a row's draws depend on its own key only, not on the other rows of the call
    assert torch.equal(normal(keys[17:18], (3, 5, 7))[0], whole[17])


def test_seed_stream_input_and_row_each_change_the_draws():
    base = normal(row_keys(0, Stream.SMOOTHGRAD_NOISE, torch.tensor([1]), torch.tensor([2])), (64,))
    for changed in (row_keys(1, Stream.SMOOTHGRAD_NOISE, torch.tensor([1]), torch.tensor([2])),
                    row_keys(0, Stream.EG_PAIRS, torch.tensor([1]), torch.tensor([2])),
                    row_keys(0, Stream.SMOOTHGRAD_NOISE, torch.tensor([2]), torch.tensor([2])),
                    row_keys(0, Stream.SMOOTHGRAD_NOISE, torch.tensor([1]), torch.tensor([1]))):
        other = normal(changed, (64,))
        assert abs(np.corrcoef(base[0], other[0])[0, 1]) < 0.4 and not torch.equal(base, other)


def test_distributions():
    keys = row_keys(0, Stream.SMOOTHGRAD_NOISE, torch.zeros(20, dtype=torch.long), torch.arange(20))
    z = normal(keys, (5000,)).flatten().double().numpy()
    assert stats.kstest(z, "norm").pvalue > 1e-3 and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert np.isfinite(z).all() and np.abs(z).max() < 6
    u = uniform(keys, 5000, torch.float64).flatten().numpy()
    assert stats.kstest(u, "uniform").pvalue > 1e-3 and 0 <= u.min() and u.max() < 1
    ints = integers(row_keys(0, Stream.EG_PAIRS, torch.arange(70000)), 7)
    counts = torch.bincount(ints, minlength=7).numpy()
    assert ints.min() >= 0 and ints.max() < 7 and stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_gpu_draws_the_cpu_numbers():
    inputs, rows = torch.arange(8).repeat_interleave(16), torch.arange(16).repeat(8)
    cpu = row_keys(5, Stream.SMOOTHGRAD_NOISE, inputs, rows)
    gpu = row_keys(5, Stream.SMOOTHGRAD_NOISE, inputs.cuda(), rows.cuda())
    assert torch.equal(cpu, gpu.cpu())
    assert torch.equal(uniform(cpu, 3 * 224 * 224), uniform(gpu, 3 * 224 * 224).cpu())  # the bits: exactly
    assert torch.equal(integers(cpu, 1000), integers(gpu, 1000).cpu())
    a, b = normal(cpu, (3, 224, 224)), normal(gpu, (3, 224, 224)).cpu()
    assert (a - b).abs().max() < 2e-6  # Box-Muller: CUDA's and the CPU's log/cos/sin differ in the last bits
