"""The public entry point: ``attribute(model, inputs, method, target, ...)``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attrib.engine import Engine, has_tensors, is_oom
from attrib.errors import UsageError
from attrib.methods import METHODS, TENSOR, Context
from attrib.rng import check_seed
from attrib.targets import TargetSpec, make_target


@dataclass
class Attribution:
    """The result of :func:`attribute`.

    Attributes:
        values: attributions, a float32 CPU tensor with the inputs' shape.
        method: the canonical method name.
        config: the resolved config as a dict.
        target: one class index per input where the target is a class, else None.
        versus: for a contrast (``versus=``), the other class of each input, else None.
        completeness_gap: (B,) |sum(values) - (F(x) - F(x'))| / |F(x) - F(x')| for IG and EG, else None.
        passes: forward + input-backward rows evaluated.
        signed: whether values are signed (diverging colour map) or magnitudes.
        outputs: model outputs at the inputs (B, C), float32 CPU.
        seed: the seed the randomness came from.
        seconds: wall time of the attribution.
        device: where it ran.
        precision: "fp32", "tf32" or "bf16".
        extras: method-specific diagnostics (MoreauGrad: "objective", (B, n_iter), per iteration).
    """

    values: torch.Tensor
    method: str
    config: dict[str, Any]
    target: list[int] | None
    completeness_gap: torch.Tensor | None
    passes: int
    signed: bool
    outputs: torch.Tensor
    seed: int
    seconds: float
    device: str
    precision: str
    extras: dict[str, Any] = field(default_factory=dict)
    versus: list[int] | None = None

    def __repr__(self) -> str:
        """One line a notebook shows whole: the tensors by shape, the gaps as numbers, the extras by name."""
        gaps = None if self.completeness_gap is None else [round(g, 6) for g in self.completeness_gap.tolist()]
        return (f"Attribution(method={self.method!r}, values={_shape(self.values)}, target={_short(self.target)}"
                + (f", versus={_short(self.versus)}" if self.versus is not None else "")
                + f", completeness_gap={_short(gaps)}, passes={self.passes}, seed={self.seed}, device={self.device!r}, "
                f"precision={self.precision!r}, seconds={self.seconds:.3g}, extras=[{', '.join(self.extras)}])")


def _shape(t: torch.Tensor) -> str:
    return f"<{str(t.dtype).removeprefix('torch.')} {tuple(t.shape)}>"


def _short(items: list | None) -> str:
    return str(items if items is None or len(items) <= 8 else [*items[:8], "..."]).replace("'...'", "...")


def attribute(model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
              method: str = "ig", target: TargetSpec = None, *, seed: int = 0,
              device: torch.device | str | None = None, precision: str = "fp32", chunk_size: int | None = None,
              progress: Callable[[int], None] | None = None, fold_batchnorm: bool = True,
              input_keys: Sequence[int] | None = None, versus: Any = None, **config: Any) -> Attribution:
    """Explain ``model``'s outputs at ``inputs`` with an attribution method.

    Args:
        model: a ``torch.nn.Module`` (put it in eval mode) or any callable mapping (B, ...) to (B, C) scores.
        inputs: a (B, ...) float tensor (or numpy array), in the model's input space (already normalised); cast
            to the dtype of the model's parameters.
        method: a name or alias from ``attrib.METHODS`` (or its entry, ``attrib.METHODS["ig"]``).
        target: None (the predicted class), a class index, one index per input (a list, or an integer
            tensor or numpy array), or a callable mapping the outputs (rows, C) to (rows,) scalars.
        seed: seed of every random draw (noise, references, baselines); same seed, same result.
        device: where to compute; None means where the model's parameters are (for a plain callable, or a
            module without parameters, where the inputs are).
        precision: "fp32" (true float32, TF32 off), "tf32" (TF32 tensor cores allowed on GPUs) or "bf16" autocast.
        chunk_size: rows per forward+backward chunk; None sizes chunks to a memory budget.
        progress: called with the number of rows finished after each chunk.
        fold_batchnorm: run eval-mode conv nets with BatchNorm folded into their convolutions (same function,
            faster; see attrib/fold.py). The model itself is never changed.
        input_keys: one int per input keying its random draws (default: its position in the batch). Inputs
            given the same key draw the same noise / references whatever batch they are in.
        versus: explain ``target`` against another class: the attributions then explain the difference of the
            two logits (log p(target) / p(versus) under softmax: "why this class rather than that one"). None (no
            contrast), "runner-up" (each input's highest-scoring class other than its target), a class index, or
            one per input (None entries: that input's runner-up). Where it is an input's target class, the
            runner-up stands in for it.
        **config: the method's options (see ``attrib methods`` or the method's config dataclass).

    Returns:
        An :class:`Attribution`.
    """
    spec = METHODS[method]
    if spec.inputs != TENSOR:
        raise UsageError(f"{spec.name} explains text (strings), not tensors; use `attrib explain-text` or "
                         "attrib.jobs.explain_text")
    cfg = spec.make_config(**config)
    x = _check_inputs(inputs)
    seed = check_seed(seed)
    start = time.perf_counter()
    with Engine(model, device=_where(model, x, device), precision=precision, chunk_size=chunk_size,
                progress=progress, fold_batchnorm=fold_batchnorm) as engine:
        x = engine.place(x)
        outputs = _outputs(engine, x)
        tgt = make_target(target, versus)
        classes = tgt.resolve(outputs)
        _check_outputs(outputs, tgt)
        result = spec.fn(Context(engine, x, tgt, seed, _keys(input_keys, len(x))), cfg)
        gap = _gap(result, tgt, outputs)
    return Attribution(
        values=result.values.detach().float().cpu(), method=spec.name, config=_config_dict(cfg),
        target=classes, completeness_gap=gap, passes=engine.passes, signed=spec.is_signed(cfg),
        outputs=outputs.detach().float().cpu(), seed=seed, seconds=time.perf_counter() - start,
        device=str(engine.device), precision=precision, extras=result.extras, versus=tgt.versus_classes)


def _gap(result, tgt, outputs: torch.Tensor) -> torch.Tensor | None:
    """The completeness gap of a method with a reference (None without one), F(x) - F(reference) taken from the
    outputs at the inputs; a Monte Carlo method's error of the map's sum becomes the gap's, extras["gap_stderr"]."""
    if result.reference_scores is None:
        return None
    scores = tgt.score(outputs, torch.arange(len(outputs), device=outputs.device))
    expected = scores - result.reference_scores.to(scores)
    if "sum_stderr" in result.extras:
        result.extras["gap_stderr"] = result.extras.pop("sum_stderr") / expected.abs().float().cpu()
    return completeness_gap(result.values, expected)


def predict(model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, *,
            device: torch.device | str | None = None, precision: str = "fp32",
            fold_batchnorm: bool = True) -> torch.Tensor:
    """The model's outputs (B, C) at ``inputs``, float32 on the CPU, by the same forward path that
    :func:`attribute` resolves its targets with (so "the predicted class" means the same class in both)."""
    x = _check_inputs(inputs)
    with Engine(model, device=_where(model, x, device), precision=precision,
                fold_batchnorm=fold_batchnorm) as engine:
        return _outputs(engine, engine.place(x)).detach().float().cpu()


def chunk_rows(model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor], like: torch.Tensor, *,
               device: torch.device | str | None = None, precision: str = "fp32") -> int:
    """Rows (forward + input-backward) per chunk :func:`attribute` runs for inputs shaped like ``like``."""
    like = _check_inputs(like)
    with Engine(model, device=_where(model, like, device), precision=precision) as engine:
        return engine.chunk_rows(engine.place(like))


def _outputs(engine: Engine, x: torch.Tensor) -> torch.Tensor:
    """The model's outputs at x; a model that fails on them says what shape it was given (and, for shapes one
    input alone has, that inputs are batched)."""
    try:
        return engine.outputs(x)
    except RuntimeError as error:
        if is_oom(error):
            raise
        hint = (f" (read as a batch of {len(x)}; one input needs a batch dimension: x.unsqueeze(0))"
                if x.ndim in (1, 3) else "")
        raise RuntimeError(f"the model failed on inputs of shape {tuple(x.shape)}{hint}: {error}") from error


def _check_outputs(outputs: torch.Tensor, target) -> None:
    """ValueError for inputs where the model's output is NaN or +inf, or the explained score is not finite
    (-inf logits of classes never explained are allowed): nothing there can be attributed."""
    scores = target.score(outputs, torch.arange(len(outputs), device=outputs.device))
    bad = (outputs.isnan() | outputs.isposinf()).reshape(len(outputs), -1).any(dim=1) | ~scores.isfinite()
    if bool(bad.any()):
        where = "at this input" if len(outputs) == 1 else \
            f"at input(s) {', '.join(map(str, bad.nonzero().flatten().tolist()[:5]))}"
        raise ValueError(f"the model's outputs are NaN or infinite {where}: nothing there can be attributed "
                         "(check the weights and the preprocessing)")


def _where(model: object, x: torch.Tensor, device: torch.device | str | None) -> torch.device | str | None:
    """The device asked for; else None (the engine then takes the model's) unless the model holds no tensors,
    in which case the inputs' device: a closure over a GPU model, given GPU inputs, runs on the GPU."""
    if device is not None or has_tensors(model):
        return device
    return x.device


def completeness_gap(values: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """|sum(values) - expected| / |expected| per input, as float32 CPU: 0 where both are 0, inf where only
    expected is, NaN where the values or the reference score are not finite."""
    total = values.reshape(len(values), -1).sum(dim=1).cpu().double()  # float64 on the CPU: MPS has none
    expected = expected.cpu().double()
    gap = (total - expected).abs() / expected.abs()
    return torch.where((total == 0) & (expected == 0), 0.0, gap).float()  # NaN: something is not finite


def _keys(keys: Sequence[int] | None, n: int) -> torch.Tensor:
    if keys is None:
        return torch.arange(n)
    out = torch.as_tensor(list(keys), dtype=torch.long)
    if out.shape != (n,) or bool((out < 0).any()):
        raise UsageError(f"input_keys must be {n} non-negative ints, one per input")
    return out


def _check_inputs(inputs: Any) -> torch.Tensor:
    if isinstance(inputs, np.ndarray):
        inputs = torch.tensor(inputs)  # a copy: the array may be read-only
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor or numpy array of shape (B, ...), got "
                        f"{type(inputs).__name__}")
    if inputs.ndim < 1 or len(inputs) == 0:
        raise ValueError(f"inputs must have a non-empty batch dimension, got shape {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        hint = " (pixels? convert and normalise them as the model expects, e.g. x.float() / 255)" \
            if inputs.dtype == torch.uint8 else ""
        raise TypeError(f"inputs must be floating point, got {inputs.dtype}{hint}")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or infinite values")
    inputs = inputs.detach()
    return inputs if inputs.dtype in (torch.float32, torch.float64) else inputs.float()


def _config_dict(cfg: Any) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
