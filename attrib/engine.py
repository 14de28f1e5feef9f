"""The one place that evaluates input-gradients in batches.

Methods describe *rows*: for each of the B inputs, ``per_input`` points at which the gradient of the target is
needed, plus how each row's gradient contributes to per-input sums. The engine folds all B x per_input rows
into chunks (auto-sized to a memory budget, halved on out-of-memory), evaluates forward + input-only backward
with the model's parameters frozen, and accumulates detached sums in float32 (float64 for float64 inputs).
Forward-only work (predictions, reference scores) runs under ``torch.inference_mode()`` in chunks too.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from attrib.errors import TooLargeError, UsageError, first_line
from attrib.targets import Target, as_logits

Points = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, Any]]
Reduce = Callable[[torch.Tensor, Any, torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]

CPU_BUDGET_BYTES = 768 << 20  # activations saved for backward per chunk on the CPU (measured best: 8-25 rows)
CPU_MAX_CHUNK = 32  # measured: per-row time rises past ~32 rows on a 2-core CPU
GPU_MEMORY_FRACTION = 0.25  # of the card, per chunk (ATTRIB_GPU_MEMORY_FRACTION changes it: gpu_memory_fraction)
GPU_MAX_CHUNK = 256  # rows, on an H200: 1024 thrashed the allocator, 512 was at most 7% faster on conv nets
BACKWARD_FACTOR = 2  # the backward's own buffers about match the activations the forward saves
CHANNELS_LAST: bool | None = None  # set: overrides ATTRIB_CHANNELS_LAST and _channels_last's rule (benchmarks)
PRECISIONS = ("fp32", "tf32", "bf16")

def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: an NVIDIA card of compute capability 8.0 or more (Ampere
    on; torch's ``is_bf16_supported()`` also says yes where it only emulates bf16, as on a T4 or V100), an AMD
    card, or a CPU with AVX-512 BF16 or AMX (oneDNN's test). Elsewhere torch emulates bf16, far slower than fp32
    (26x per pass for the default model on this project's 2-core AVX2 CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return _ampere_on(device)
    try:
        return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def has_tf32(device: str | torch.device) -> bool:
    """Whether ``--precision tf32`` changes anything on ``device``: TF32 tensor cores are on NVIDIA cards of compute
    capability 8.0 or more; elsewhere (a CPU, a T4 or V100) the run is fp32. AMD cards: assumed to."""
    device = torch.device(device)
    return device.type == "cuda" and _ampere_on(device)


def _ampere_on(device: torch.device) -> bool:
    """An NVIDIA card of compute capability 8.0 or more (Ampere on), or an AMD card."""
    if not torch.cuda.is_available():
        return False
    return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8


_ROW_BYTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(shape, dtype, ...): bytes}


def _gradient_only(grad: torch.Tensor, aux: Any, rows_input: torch.Tensor, rows_index: torch.Tensor):
    return (grad,)


@dataclass
class Rows:
    """What a method asks of the engine.

    Attributes:
        per_input: number of rows (gradient evaluations) per input.
        points: maps (rows_input, rows_index) index tensors to the points (rows, ...) and any auxiliary data.
        reduce: maps a chunk's gradients (and aux) to tensors (rows, ...) to add into per-input sums.
    """

    per_input: int
    points: Points
    reduce: Reduce = _gradient_only


@dataclass
class Sums:
    """Per-input sums returned by :meth:`Engine.accumulate`."""

    terms: list[torch.Tensor]
    scores: torch.Tensor  # (B,) sum over rows of the target score at each row


def is_oom(error: BaseException) -> bool:
    """True for CUDA or CPU allocation failures."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@dataclass
class Engine:
    """Batched forward / input-gradient evaluation for one model.

    Args:
        model: a ``torch.nn.Module`` or any callable mapping (B, ...) inputs to (B, C) outputs.
        device: where to compute; None means where the model's parameters are (CPU for plain callables).
        precision: "fp32" (true float32: TF32 matmuls and convolutions are switched off while the engine runs),
            "tf32" (float32 with TF32 tensor cores allowed on GPUs), or "bf16" for bfloat16 autocast (sums stay
            float32).
        chunk_size: rows per chunk; None chooses it from a memory budget.
        progress: called with the number of rows finished after each chunk.
        pad_shapes: pad partial chunks to a few fixed sizes (:func:`padded_rows`); None means on CUDA devices,
            where a batch size met for the first time can cost seconds (on an H200, 4-12 s for
            EfficientNet-Lite0's depthwise convolutions channels_last, 0.1-0.6 s NCHW, which is why the engine
            runs such nets NCHW there: :func:`_channels_last`), and adaptive methods' chunks would otherwise come
            in many sizes.
    """

    model: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device | str | None = None
    precision: str = "fp32"
    chunk_size: int | None = None
    progress: Callable[[int], None] | None = None
    fold_batchnorm: bool = True
    pad_shapes: bool | None = None
    passes: int = 0
    _restore: list = field(default_factory=list, repr=False)
    _net: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int) or self.chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer or None, got {self.chunk_size!r}")
        if self.progress is not None and not callable(self.progress):
            raise TypeError(f"progress must be a callable taking the rows finished, or None; got {self.progress!r}")
        self.device = _device(self.device) if self.device is not None else _model_device(self.model)
        if self.device.type == "cuda" and not (torch.cuda.is_available() and
                                               (self.device.index or 0) < torch.cuda.device_count()):
            raise ValueError(f"device {str(self.device)!r} requested but this machine has "
                             f"{torch.cuda.device_count() if torch.cuda.is_available() else 'no'} CUDA devices")
        if self.pad_shapes is None:
            self.pad_shapes = _pads(self.device)
        self.channels_last = _channels_last(self.model, self.device, self.precision)

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs on the engine's device, in the dtype of the model's parameters when they share one (float64
        arrays from numpy fed to a float32 model, or the reverse, are the model's inputs all the same)."""
        return x.to(self.device, _floating_dtype(self.model) or x.dtype)

    # -- model preparation -------------------------------------------------------------------------------------

    def __enter__(self) -> "Engine":
        self._restore.append(_set_tf32(self.precision == "tf32"))
        if isinstance(self.model, torch.nn.Module) and self.model.training and _mode_matters(self.model):
            import warnings
            warnings.warn("the model is in training mode; call model.eval() so that batch statistics and "
                          "dropout do not change attributions", stacklevel=3)
        return self

    def __exit__(self, *exc: object) -> None:
        while self._restore:
            self._restore.pop()()
        self._net = None

    def _network(self, probe: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The module that runs, prepared on first use with one input row as probe.

        An eval-mode conv net with BatchNorm runs as a cached copy with BatchNorm folded into its convolutions
        (attrib/fold.py); any other module is frozen, moved and made channels_last in place, undone on exit.
        """
        if self._net is None:
            with torch.inference_mode(False), torch.no_grad():  # parameters must not become inference tensors
                probe = probe.clone()
                self._net = self._folded(probe) or self._prepared_in_place()
        return self._net

    def _folded(self, probe: torch.Tensor) -> torch.nn.Module | None:
        from attrib.fold import folded_copy, foldable

        if not (self.fold_batchnorm and foldable(self.model)):
            return None
        return folded_copy(self.model, self.device, self.channels_last, probe)

    def _prepared_in_place(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Freeze, move and reformat the user's module; on exit its original tensors are put back as they were
        (same storage, same version counters), so later cache lookups still recognise it."""
        if not isinstance(self.model, torch.nn.Module):
            return self.model
        params = [(p, p.data, p.requires_grad) for p in self.model.parameters()]
        buffers = [(m, name, t) for m in self.model.modules() for name, t in m._buffers.items()]

        def restore() -> None:
            for p, data, flag in params:
                p.data = data
                p.requires_grad_(flag)
            for module, name, tensor in buffers:
                module._buffers[name] = tensor

        self._restore.append(restore)
        for p, _, _ in params:  # not module.requires_grad_, which TorchScript modules refuse
            p.requires_grad_(False)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=fmt)
        return self.model

    # -- forward only ------------------------------------------------------------------------------------------

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Model outputs (B, C) for inputs x, as float32 (float64 for float64 inputs), no gradient."""
        parts: list[torch.Tensor] = []

        def work(start: int, stop: int, size: int) -> None:
            with torch.inference_mode():
                out = self._forward(self._layout(self._pad(x[start:stop].to(self.device), size)))
            parts.append(out[:stop - start].to(_acc_dtype(x)).clone())

        self._run_chunks(len(x), 4 * self._max_chunk(x[:1]), work, x)
        return torch.cat(parts)

    def scores(self, x: torch.Tensor, target: Target, rows_input: torch.Tensor) -> torch.Tensor:
        """Target score per row for points x, no gradient."""
        out = self.outputs(x)
        return target.score(out, rows_input.to(out.device)).detach()

    # -- gradients ---------------------------------------------------------------------------------------------

    def accumulate(self, rows: Rows, n_inputs: int, target: Target, like: torch.Tensor) -> Sums:
        """Evaluate every row's input-gradient and sum the method's contributions per input.

        Args:
            rows: the method's row description.
            n_inputs: B.
            target: a resolved target.
            like: one input with its batch dimension, e.g. ``x[:1]`` (sizes the chunks and sums).
        """
        dtype = _acc_dtype(like)
        sums = Sums([], torch.zeros(n_inputs, dtype=dtype, device=self.device))

        def consume(b: torch.Tensor, r: torch.Tensor, grads: torch.Tensor, row_scores: torch.Tensor, aux) -> None:
            contributions = [*rows.reduce(grads, aux, b, r), row_scores]
            parts = [segment_sums(b, c.to(dtype)) for c in contributions]  # allocate before adding anything,
            if not sums.terms:  # so that an out-of-memory retry never counts a row twice
                sums.terms = [torch.zeros((n_inputs, *c.shape[1:]), dtype=dtype, device=self.device)
                              for c in contributions[:-1]]
            for acc, part in zip([*sums.terms, sums.scores], parts):
                for index, total in part:
                    acc[index] += total

        flat = torch.arange(n_inputs * rows.per_input, device=self.device)
        self.each_row(*_split(flat, rows.per_input), rows.points, target, like, consume)
        return sums

    def each_row(self, rows_input: torch.Tensor, rows_index: torch.Tensor, points: Points, target: Target,
                 like: torch.Tensor, consume: Callable[..., None]) -> None:
        """Evaluate the input-gradient of the target at any list of rows (input b, row r), chunk by chunk, and hand
        each chunk over: ``consume(b, r, grads, scores, aux)`` (scores: the target at each row). Inputs may have
        different numbers of rows (adaptive methods); chunks are filled across inputs."""
        total = len(rows_input)

        def work(start: int, stop: int, size: int) -> None:
            b, r = rows_input[start:stop], rows_index[start:stop]
            grads, row_scores, aux = self._grad_chunk(points, b, r, target, size)
            consume(b, r, grads, row_scores, aux)
            self.passes += stop - start
            if self.progress is not None:
                self.progress(stop - start)

        if total:
            self._run_chunks(total, self._max_chunk(like), work, like)

    def _grad_chunk(self, points_fn: Points, b: torch.Tensor, r: torch.Tensor, target: Target, size: int):
        points, aux = points_fn(b, r)
        points = self._layout(self._pad(points.to(self.device), size)).detach().requires_grad_(True)
        with torch.enable_grad():
            out = self._forward(points)[:len(b)]
            score = target.score(out, b)
            if not score.requires_grad:
                raise RuntimeError(f"the model's output is {out.dtype}, not floating point: it has no gradient"
                                   if not out.is_floating_point() else "the model's output does not depend on its "
                                   "input through autograd (is the forward wrapped in torch.no_grad or detached?)")
            (grad,) = torch.autograd.grad(score.sum(), points, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(points)
        return grad[:len(b)].detach().contiguous(), score.detach(), aux

    def _pad(self, x: torch.Tensor, size: int) -> torch.Tensor:
        """``x`` with copies of its last row appended up to :func:`padded_rows` (when the engine pads shapes);
        the copies' outputs are dropped and they add nothing to the score that is differentiated."""
        rows = padded_rows(len(x), size) if self.pad_shapes else len(x)
        if rows == len(x):
            return x
        return torch.cat([x, x[-1:].expand(rows - len(x), *x.shape[1:])])

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self._network(x[:1].detach())
        try:
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    return as_logits(net(x))
            return as_logits(net(x))
        except (RuntimeError, ValueError) as error:
            if is_oom(error) or not _batchnorm_training(self.model):
                raise
            kind = ValueError if isinstance(error, ValueError) else RuntimeError
            raise kind(f"{first_line(error)} (the model is in training mode: BatchNorm then takes "
                              "its statistics from each chunk of rows; call model.eval())") from error

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    # -- chunking ----------------------------------------------------------------------------------------------

    def _run_chunks(self, total: int, size: int, work: Callable[[int, int, int], None], like: torch.Tensor) -> None:
        """Call ``work(start, stop, size)`` over consecutive row ranges, halving ``size`` on out-of-memory; a
        TooLargeError when one row (shaped like a row of ``like``) does not fit alone."""
        start = 0
        while start < total:
            stop = min(start + size, total)
            try:
                work(start, stop, size)
            except Exception as error:
                if not is_oom(error):
                    raise
                if size == 1:
                    raise self._too_large(error, like) from error
                size = max(1, size // 2)
                _free_cache(self.device)
                continue
            start = stop

    def chunk_rows(self, like: torch.Tensor) -> int:
        """Rows per chunk this engine runs for inputs shaped like ``like`` (its memory/throughput policy, or the
        caller's chunk_size): callers batch enough inputs to keep the chunks full."""
        return self._max_chunk(like[:1].detach().to(self.device))

    def _max_chunk(self, one_row: torch.Tensor) -> int:
        if self.chunk_size is not None:
            return self.chunk_size
        per_row = max(1, self._row_bytes(one_row))
        if self.device.type == "cuda":
            free, total = torch.cuda.mem_get_info(self.device)
            cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
            return gpu_chunk_rows(per_row, free + cached, total)  # memory PyTorch caches but no tensor holds is ours
        return int(min(CPU_MAX_CHUNK, max(1, CPU_BUDGET_BYTES // per_row)))

    def _row_bytes(self, one_row: torch.Tensor) -> int:
        """Bytes of activations autograd saves for one row (measured once per model and input shape)."""
        key = (tuple(one_row.shape[1:]), one_row.dtype, self.device, self.precision, self.fold_batchnorm)
        cache = _ROW_BYTES.setdefault(self.model, {}) if _weakrefable(self.model) else {}
        if key not in cache:
            cache[key] = self._measure_row_bytes(one_row)
        return cache[key]

    def _measure_row_bytes(self, one_row: torch.Tensor) -> int:
        """What two rows save minus what one row saves: tensors saved once per chunk whatever its size (weights
        cast to bf16 under autocast, 170 MB for a ViT-B) are not counted as every row's."""
        x = self._layout(one_row.detach().to(self.device))
        params = _storages(self._network(x))
        try:
            one = self._saved_bytes(x.clone(), params)
        except Exception as error:
            if is_oom(error):
                raise self._too_large(error, x) from error
            raise
        try:
            two = self._saved_bytes(self._layout(x.expand(2, *x.shape[1:]).clone()), params)
        except Exception as error:
            if not is_oom(error):
                raise
            _free_cache(self.device)
            two = 2 * one  # two rows do not fit: what one saves, all of it counted as the row's
        return max(1, two - one) + x.numel() * x.element_size()

    def _too_large(self, error: BaseException, like: torch.Tensor) -> TooLargeError:
        return TooLargeError(f"out of memory on {self.device}: one input of shape {tuple(like.shape[1:])} does not "
                             f"fit even alone{_asked(error)}; give smaller inputs, or run where there is more memory")

    def _saved_bytes(self, x: torch.Tensor, params: set[int]) -> int:
        """Bytes of the tensors autograd saves for a forward at x, beyond the model's own parameters."""
        saved: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            if storage.data_ptr() not in params:
                saved[storage.data_ptr()] = storage.nbytes()
            return t

        x = x.requires_grad_(True)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            self._forward(x)
        return sum(saved.values())


def segment_sums(rows_input: torch.Tensor, values: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """(b, sum of the rows of ``values`` that belong to input b) for each input in a chunk (rows come grouped).

    Per-input sums rather than ``index_add_``, whose parallel CPU kernel spins badly on small tensors when
    the cores are busy.
    """
    inputs, counts = torch.unique_consecutive(rows_input, return_counts=True)
    return [(index, part.sum(dim=0)) for index, part in zip(inputs.tolist(), values.split(counts.tolist()))]


def padded_rows(n: int, size: int) -> int:
    """Rows a chunk of ``n`` runs with when shapes are padded: a full chunk as it is, a partial one padded to
    the next power of two from 8, at most ``size``; a run then meets at most about log2(size) batch shapes."""
    if n >= size:
        return n
    rows = 8
    while rows < n:
        rows *= 2
    return min(rows, size)


def gpu_chunk_rows(row_bytes: int, free: int, total: int, fraction: float | None = None) -> int:
    """Rows per chunk on a GPU: as many as fit in ``fraction`` of the card (ATTRIB_GPU_MEMORY_FRACTION, default
    0.25) and in half of what is free, counting the backward's buffers with the saved activations, at most
    GPU_MAX_CHUNK, rounded down to a multiple of 8 (tensor-core friendly) when above 8."""
    fraction = gpu_memory_fraction() if fraction is None else fraction
    budget = min(fraction * total, 0.5 * free)
    rows = int(min(GPU_MAX_CHUNK, max(1, budget // max(1, BACKWARD_FACTOR * row_bytes))))
    return rows - rows % 8 if rows > 8 else rows


def gpu_memory_fraction() -> float:
    """The share of a card one chunk may take: ATTRIB_GPU_MEMORY_FRACTION, else GPU_MEMORY_FRACTION; a
    UsageError for a value that is not a fraction in (0, 1]."""
    text = os.environ.get("ATTRIB_GPU_MEMORY_FRACTION", "").strip()
    try:
        fraction = float(text) if text else GPU_MEMORY_FRACTION
    except ValueError:
        fraction = float("nan")
    if not 0 < fraction <= 1:  # (nan too)
        raise UsageError(f"ATTRIB_GPU_MEMORY_FRACTION={text}: the share of the card one chunk may take, in (0, 1]")
    return fraction


def channels_last_setting() -> bool | None:
    """CHANNELS_LAST if set, else ATTRIB_CHANNELS_LAST=1 (True) or 0 (False), else None (the layout rule); a
    UsageError for any other value."""
    if CHANNELS_LAST is not None:
        return CHANNELS_LAST
    text = os.environ.get("ATTRIB_CHANNELS_LAST", "").strip()
    if text not in ("", "0", "1"):
        raise UsageError(f"ATTRIB_CHANNELS_LAST={text}: 1 (channels_last), 0 (NCHW) or unset (attrib's rule)")
    return {"1": True, "0": False}.get(text)


def check_environment() -> None:
    """A UsageError, before any work, for an ATTRIB_* setting the engine would refuse later."""
    channels_last_setting()
    gpu_memory_fraction()


def _set_tf32(allowed: bool) -> Callable[[], None]:
    """Allow or forbid TF32 in CUDA matmuls and cuDNN convolutions; returns the function that restores the
    previous settings (a no-op on machines without CUDA, where the flags do nothing)."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed

    def restore() -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before

    return restore


def _split(flat: torch.Tensor, per_input: int) -> tuple[torch.Tensor, torch.Tensor]:
    return flat // per_input, flat % per_input


def _acc_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _device(spec: Any) -> torch.device:
    try:
        return torch.device(spec)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {str(spec)!r}; use cpu, cuda, cuda:N or mps") from err


def _model_device(model: Any) -> torch.device:
    for t in _tensors(model):
        return t.device
    return torch.device("cpu")


def _channels_last(model: Any, device: torch.device, precision: str) -> bool:
    """Whether a conv net runs channels_last: ATTRIB_CHANNELS_LAST=1 or 0 if set, else on a CPU (measured faster)
    and on a GPU in bf16 for nets without grouped convolutions. On an H200 (bench/RESULTS.md, session 30) fp32 ran
    NCHW 1.15x faster on ResNet-50, while bf16 ran channels_last 1.26x faster; and each batch size met for the
    first time cost EfficientNet-Lite0's depthwise convolutions 5-12 s channels_last, against 0.1-0.6 s NCHW."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)] if isinstance(model, torch.nn.Module) \
        else []
    if not convs:
        return False
    forced = channels_last_setting()
    if forced is not None:
        return forced
    if device.type != "cuda":
        return True
    return precision == "bf16" and all(conv.groups == 1 for conv in convs)


def _pads(device: torch.device) -> bool:
    return device.type == "cuda"


def has_tensors(model: Any) -> bool:
    """True for a module with at least one parameter or buffer (its device is then the model's device)."""
    return next(_tensors(model), None) is not None


def _floating_dtype(model: Any) -> torch.dtype | None:
    """The floating dtype of a module's parameters and buffers when they share one, else None."""
    dtypes = {t.dtype for t in _tensors(model) if t.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def _tensors(model: Any):
    if isinstance(model, torch.nn.Module):
        yield from model.parameters()
        yield from model.buffers()


def _storages(model: Any) -> set[int]:
    if not isinstance(model, torch.nn.Module):
        return set()
    tensors = [*model.parameters(), *model.buffers()]
    return {t.untyped_storage().data_ptr() for t in tensors}


def _mode_matters(model: torch.nn.Module) -> bool:
    """Whether training mode may change the model's outputs: it holds BatchNorm, InstanceNorm with running
    statistics, dropout (a layer, or attention or recurrent layers dropping out) or RReLU, or code of its own,
    which may read ``self.training``; a model of torch's other layers computes the same in either mode."""
    nn = torch.nn
    for module in model.modules():
        if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, nn.RReLU)):
            return True
        if isinstance(module, nn.modules.instancenorm._InstanceNorm) and module.track_running_stats:
            return True
        if isinstance(module, (nn.MultiheadAttention, nn.RNNBase)) and module.dropout > 0:
            return True
        if not type(module).__module__.startswith("torch.nn."):
            return True
    return False


def _batchnorm_training(model: Any) -> bool:
    """Whether a module in training mode holds BatchNorm (which then fails on a chunk of one row)."""
    return isinstance(model, torch.nn.Module) and model.training and any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _asked(error: BaseException) -> str:
    """' (it asked for 122 MiB more)' from an allocator's message (the CPU's counts bytes, CUDA's says 2.00 GiB)."""
    import re

    found = re.search(r"tried to allocate ([\d.]+) ?(\w+)", str(error), re.I)
    if not found:
        return f" ({first_line(error)})"
    amount = f"{float(found[1]) / 2**20:,.0f} MiB" if found[2] == "bytes" else f"{found[1]} {found[2]}"
    return f" (it asked for {amount} more)"


def _weakrefable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:
        return False
    return True


def _free_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
