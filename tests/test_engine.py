"""The engine: chunking, out-of-memory back-off, model preparation and restoration, targets."""

import contextlib
import warnings

import pytest
import torch
from torch import nn

import attrib
from attrib.engine import Engine
from tests.toys import small_convnet


class FailsAboveBatch(torch.nn.Module):
    """Raises an out-of-memory error for batches larger than ``limit`` (a stand-in for a full GPU)."""

    def __init__(self, inner: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit, self.sizes = inner, limit, []

    def forward(self, x):
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


def test_out_of_memory_halves_the_chunk_and_gives_the_same_answer():
    net, x = small_convnet(), torch.randn(2, 3, 12, 12, dtype=torch.float64)
    flaky = FailsAboveBatch(net, limit=5).eval()
    res = attrib.attribute(flaky, x, "ig", n_steps=20, rule="gausslegendre", chunk_size=16, target=0)
    ref = attrib.attribute(net, x, "ig", n_steps=20, rule="gausslegendre", chunk_size=1, target=0)
    assert torch.allclose(res.values, ref.values, atol=1e-7)
    assert res.passes == 40
    assert max(s for s in flaky.sizes[1:] if s <= 5) == 4  # 16 -> 8 -> 4


def test_one_row_too_large_for_memory_is_one_clear_error_and_two_rows_fall_back_to_one():
    net, x = small_convnet(), torch.randn(2, 3, 12, 12, dtype=torch.float64)
    with pytest.raises(attrib.TooLargeError, match=r"out of memory on cpu: one input of shape \(3, 12, 12\) does "
                       r"not fit even alone \(it asked for 2\.00 GiB more\); give smaller inputs"):
        attrib.attribute(FailsAboveBatch(net, limit=0).eval(), x, "gradient")  # was the allocator's own error
    one_at_a_time = FailsAboveBatch(net, limit=1).eval()  # the chunk is sized with two rows: they do not fit
    res = attrib.attribute(one_at_a_time, x, "ig", n_steps=6, rule="gausslegendre", target=0)
    ref = attrib.attribute(net, x, "ig", n_steps=6, rule="gausslegendre", target=0)
    assert torch.allclose(res.values, ref.values, atol=1e-12)


def test_other_errors_are_not_retried():
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("shape mismatch in layer 3")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        attrib.attribute(Broken().eval(), torch.randn(1, 4), "gradient", target=0)


def test_model_state_is_restored():
    net = small_convnet(torch.float32)
    net[0].weight.requires_grad_(True)
    net[2].weight.requires_grad_(False)
    attrib.attribute(net, torch.randn(1, 3, 12, 12), "gradient")
    assert net[0].weight.requires_grad and not net[2].weight.requires_grad
    assert net[0].weight.is_contiguous()
    assert net[0].weight.grad is None


class _OwnCode(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.linear(x)


@pytest.mark.parametrize("net", [nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Linear(4, 2)),
                                 nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)),
                                 nn.Sequential(nn.LSTM(4, 4, 2, dropout=0.1)), _OwnCode()],
                         ids=["dropout", "batchnorm", "lstm-dropout", "own-code"])
def test_training_mode_warns_where_it_may_change_the_outputs(net):
    with pytest.warns(UserWarning, match="training mode"):
        with contextlib.suppress(TypeError, ValueError):  # an LSTM's tuple, BatchNorm on one row: warned first
            attrib.attribute(net.train(), torch.randn(2, 4), "gradient")


def test_training_mode_of_layers_that_ignore_it_is_not_warned_about():
    net = small_convnet().train()  # convolutions, smooth activations, linear: the same in either mode
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attrib.attribute(net, torch.randn(1, 3, 12, 12, dtype=torch.float64), "gradient")


def test_a_model_failing_in_training_mode_is_told_to_use_eval_mode():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2)).train()  # one row: one value per channel
    with pytest.warns(UserWarning, match="training mode"), pytest.raises(ValueError, match=r"call model\.eval\(\)"):
        attrib.attribute(net, torch.randn(1, 3, 12, 12), "gradient")
    assert attrib.attribute(net.eval(), torch.randn(1, 3, 12, 12), "gradient").values.shape == (1, 3, 12, 12)


def test_a_model_without_batchnorm_failing_in_training_mode_is_not_blamed_on_batchnorm():
    """A model of its own code failing in training mode got "(the model is in training mode: BatchNorm then takes
    its statistics from each chunk of rows; ...)" appended to its own error, though it holds no BatchNorm."""

    class Failing(_OwnCode):
        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.warns(UserWarning, match="training mode"), pytest.raises(RuntimeError, match="boom$"):
        attrib.attribute(Failing().train(), torch.randn(2, 4), "gradient")


def test_auto_chunk_does_not_grow_with_rows():
    net = small_convnet(torch.float32)
    x = torch.randn(1, 3, 12, 12)
    with Engine(net) as engine:
        most = engine._max_chunk(x)
    for samples in (3, 50, 400):
        seen = []
        attrib.attribute(net, x, "smoothgrad", n_samples=samples, progress=seen.append)
        assert max(seen) == min(most, samples) and sum(seen) == samples


def test_padded_rows_are_few_shapes_within_the_chunk():
    from attrib.engine import padded_rows

    for size in (1, 4, 7, 8, 100, 256):
        shapes = {padded_rows(n, size) for n in range(1, size + 1)}
        assert all(n <= padded_rows(n, size) <= max(size, n) for n in range(1, 2 * size))
        assert all(padded_rows(n, size) <= max(8, 2 * n) for n in range(1, size + 1))
        assert len(shapes) <= 2 + size.bit_length() - 3 if size > 8 else len(shapes) <= 2


def test_padding_partial_chunks_changes_no_result(monkeypatch):
    """The padded rows (copies of a chunk's last row) cost compute only: adaptive IG, whose chunks come in many
    sizes, gives the same map, gap and passes, and the model sees only the few padded batch sizes."""
    import attrib.engine as engine_module

    net, x = small_convnet(), torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(4),
                                          dtype=torch.float64)
    sizes = []

    def model(rows):
        sizes.append(len(rows))
        return net(rows)

    plain = attrib.attribute(model, x, "ig", target=[0, 1, 2], chunk_size=64, tol=1e-6)
    unpadded = set(sizes)
    sizes.clear()
    monkeypatch.setattr(engine_module, "_pads", lambda device: True)
    padded = attrib.attribute(model, x, "ig", target=[0, 1, 2], chunk_size=64, tol=1e-6)
    assert len(unpadded) > 4 and set(sizes) <= {8, 16, 32, 64}
    assert padded.passes == plain.passes
    assert torch.allclose(padded.values, plain.values, rtol=1e-12, atol=1e-14)
    assert torch.allclose(padded.completeness_gap, plain.completeness_gap, rtol=1e-9, atol=1e-14)


def test_a_model_without_tensors_runs_where_its_inputs_are():
    from attrib.api import _where

    x = torch.zeros(2, 3, device="meta")
    assert _where(lambda t: t, x, None) == x.device and _where(torch.nn.ReLU(), x, None) == x.device
    assert _where(torch.nn.Linear(3, 2), x, None) is None  # the engine takes the parameters' device
    assert _where(lambda t: t, x, "cpu") == "cpu"


def test_plain_callable_and_callable_target():
    w = torch.randn(6)

    def fn(x):
        return torch.stack([x @ w, (x ** 2).sum(dim=1)], dim=1)

    x = torch.randn(3, 6)
    res = attrib.attribute(fn, x, "gradient", target=lambda out: out[:, 1])
    assert torch.allclose(res.values, 2 * x, atol=1e-6)
    assert res.target is None
    res = attrib.attribute(fn, x, "gradient", target=torch.tensor([0, 1, 0]))
    assert res.target == [0, 1, 0]
    assert torch.allclose(res.values[0], w) and torch.allclose(res.values[1], 2 * x[1])


def test_predicted_target_is_fixed_at_the_input():
    net, x = small_convnet(), torch.randn(4, 3, 12, 12, dtype=torch.float64)
    res = attrib.attribute(net, x, "ig", n_steps=8)
    assert res.target == net(x).argmax(dim=1).tolist()
    explicit = attrib.attribute(net, x, "ig", n_steps=8, target=res.target)
    assert torch.equal(res.values, explicit.values)


def test_progress_reports_every_row():
    seen = []
    net, x = small_convnet(), torch.randn(2, 3, 12, 12, dtype=torch.float64)
    attrib.attribute(net, x, "smoothgrad", n_samples=9, chunk_size=4, progress=seen.append)
    assert sum(seen) == 18 and max(seen) == 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net, x = small_convnet(torch.float32), torch.randn(2, 3, 12, 12)
    cpu = attrib.attribute(net, x, "ig", n_steps=16)
    gpu = attrib.attribute(net, x, "ig", n_steps=16, device="cuda")
    assert gpu.device.startswith("cuda") and torch.allclose(cpu.values, gpu.values, atol=1e-4)


@pytest.mark.parametrize("precision,inside", [("fp32", False), ("tf32", True), ("bf16", False)])
def test_fp32_means_fp32_tf32_only_when_asked(precision, inside):
    """The TF32 switch (a no-op on the CPU, where the flags do nothing) is set while attributing, then restored."""
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = small_convnet(torch.float32)

        def forward(self, x):
            seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
            return self.inner(x)

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not inside
    try:
        attrib.attribute(Spy().eval(), torch.randn(1, 3, 12, 12), "gradient", precision=precision,
                         fold_batchnorm=False)
        assert seen and all(flags == (inside, inside) for flags in seen)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (not inside, not inside)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_gpu_chunk_policy_caps_memory_and_size():
    """The GPU chunk rule, checked against a simulated card (no GPU needed)."""
    from attrib.engine import GPU_MAX_CHUNK, gpu_chunk_rows

    gib = 1 << 30
    assert gpu_chunk_rows(10 << 20, free=140 * gib, total=141 * gib) == GPU_MAX_CHUNK  # small rows: capped
    rows = gpu_chunk_rows(400 << 20, free=140 * gib, total=141 * gib, fraction=0.25)
    assert rows % 8 == 0 and 2 * (400 << 20) * rows <= 0.25 * 141 * gib < 2 * (400 << 20) * (rows + 8)
    assert gpu_chunk_rows(400 << 20, free=2 * gib, total=141 * gib) == 1  # a nearly full card: one row at a time
    assert gpu_chunk_rows(1 << 20, free=gib, total=gib, fraction=0.01) == 5  # below 8: not rounded


def test_the_gpu_memory_fraction_from_the_environment_is_checked(monkeypatch):
    """ATTRIB_GPU_MEMORY_FRACTION=abc failed `import attrib.engine` with a traceback; 5 (500% of the card) ran."""
    from attrib.engine import gpu_chunk_rows

    gib = 1 << 30
    monkeypatch.setenv("ATTRIB_GPU_MEMORY_FRACTION", "0.01")
    assert gpu_chunk_rows(1 << 20, free=gib, total=gib) == 5
    for bad in ("abc", "5", "0", "-0.5", "nan"):
        monkeypatch.setenv("ATTRIB_GPU_MEMORY_FRACTION", bad)
        with pytest.raises(attrib.AttribError, match=rf"^ATTRIB_GPU_MEMORY_FRACTION={bad}: the share of the card "
                                                     r"one chunk may take, in \(0, 1\]$"):
            gpu_chunk_rows(1 << 20, free=gib, total=gib)


def test_layout_rule_channels_last_on_the_cpu_and_for_bf16_on_a_card_without_grouped_convolutions(monkeypatch):
    """NCHW on a card in fp32 and for depthwise convolutions (measured there: faster, and no seconds-long cost
    per new batch size); ATTRIB_CHANNELS_LAST overrides the rule; a net without convolutions is left as it is."""
    import attrib.engine as engine

    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))
    depthwise = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=8))
    cpu, card = torch.device("cpu"), torch.device("cuda")
    rule = engine._channels_last
    assert rule(plain, cpu, "fp32") and rule(depthwise, cpu, "bf16")
    assert not rule(plain, card, "fp32") and not rule(plain, card, "tf32") and rule(plain, card, "bf16")
    assert not rule(depthwise, card, "bf16") and not rule(depthwise, card, "fp32")
    assert not rule(nn.Linear(4, 2), cpu, "fp32") and not rule(lambda x: x, card, "bf16")
    monkeypatch.setattr(engine, "CHANNELS_LAST", True)
    assert rule(depthwise, card, "fp32") and not rule(nn.Linear(4, 2), card, "bf16")
    monkeypatch.setattr(engine, "CHANNELS_LAST", False)
    assert not rule(plain, cpu, "fp32")
    assert Engine(plain, device="cpu").channels_last is False


def test_the_layout_from_the_environment_is_read_when_used_and_checked(monkeypatch):
    """ATTRIB_CHANNELS_LAST=true (or yes, or 2) was ignored without a word, and was read once, at import."""
    import attrib.engine as engine

    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    monkeypatch.setenv("ATTRIB_CHANNELS_LAST", "0")
    assert Engine(plain, device="cpu").channels_last is False
    monkeypatch.setenv("ATTRIB_CHANNELS_LAST", " 1 ")
    assert engine._channels_last(plain, torch.device("cuda"), "fp32")
    for bad in ("true", "yes", "2"):
        monkeypatch.setenv("ATTRIB_CHANNELS_LAST", bad)
        with pytest.raises(attrib.AttribError, match=rf"^ATTRIB_CHANNELS_LAST={bad}: 1 \(channels_last\), 0 "):
            Engine(plain, device="cpu")


@pytest.mark.parametrize("capability, hip, native", [((7, 5), None, False), ((7, 0), None, False),
                                                     ((8, 0), None, True), ((9, 0), None, True),
                                                     ((7, 5), "6.2", True)])
def test_bf16_and_tf32_are_native_on_cards_from_ampere_on(monkeypatch, capability, hip, native):
    """torch.cuda.is_bf16_supported() says yes on a T4 (7.5) or a V100 (7.0), where bf16 is emulated: slower than
    fp32, and attrib did not warn."""
    from attrib.engine import has_tf32, native_bf16

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.version, "hip", hip)
    assert native_bf16("cuda") is native and native_bf16("cuda:1") is native
    assert has_tf32("cuda:0") is native and not has_tf32("cpu")  # TF32 came with Ampere too


def test_row_bytes_leave_out_what_a_chunk_saves_once_whatever_its_size():
    """Under bf16 autocast the weights' bf16 copies are saved for the backward once per chunk; counted as every
    row's, they made a ViT-B's chunks 3x too small on a card. A wide linear layer saves 8 MB of such a copy and
    about 2 KB per row."""
    net = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 2)).eval()
    for precision in ("fp32", "bf16"):
        with Engine(net, device="cpu", precision=precision) as engine:
            per_row = engine._row_bytes(torch.zeros(1, 2048))
        assert 2048 * 2 <= per_row <= 2048 * 4 * 4, (precision, per_row)
