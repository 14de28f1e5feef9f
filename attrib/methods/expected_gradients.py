"""Expected Gradients (Erion et al. 2021): Integrated Gradients averaged over references from a data set.

    EG(x) = E_{x'~D, a~U(0,1)} [ (x - x') * dF(x' + a (x - x'))/dx ]
          ~ (1/k) sum_j (x - x'_j) * dF(x'_j + a_j (x - x'_j))/dx      (k Monte Carlo pairs (x'_j, a_j))

In expectation sum_i EG_i = F(x) - E_{x'~D} F(x'); the gap is reported against the mean over the whole
background set, with its Monte Carlo standard error (``extras["gap_stderr"]``) so that noise can be told from a
bad estimate. Each (reference, alpha) pair is drawn from the row's own counter-based key (see attrib/rng.py).
cost = n_samples x (forward + input-backward) per input, plus one forward per background input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attrib.engine import Rows
from attrib.methods._registry import Context, MethodOutput, register_method
from attrib.methods.baselines import as_reference
from attrib.rng import Stream, integers, row_keys, uniform


@dataclass(frozen=True)
class EGConfig:
    """Attributes:
        background: reference inputs D, a tensor (N, ...) with the inputs' per-example shape (required).
        n_samples: Monte Carlo (reference, alpha) pairs per input (papers: 100-200 for reliable maps).
    """

    background: torch.Tensor | None = None
    n_samples: int = 64

    def __post_init__(self) -> None:
        if self.background is None:
            raise ValueError("needs background=<tensor (N, ...) of reference inputs>")
        if not isinstance(self.background, torch.Tensor) or self.background.ndim < 1 or len(self.background) < 1:
            raise ValueError("background must be a non-empty tensor of reference inputs (N, ...)")
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {self.n_samples!r}")


def check_background(background: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The background on x's device and dtype, or a ValueError if its per-example shape differs from x's."""
    if tuple(background.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"background must have shape (N, {', '.join(map(str, x.shape[1:]))}) to match the "
                         f"inputs; got {tuple(background.shape)}")
    return as_reference(background, x, "background")


@register_method("expected_gradients", aliases=("eg",), config=EGConfig, rows=lambda c: c.n_samples,
                 cost="n_samples x (forward + input-backward)", stochastic=True, needs=("background",),
                 reference=True, knob="n_samples", budget={"n_samples": 32}, smoke={"n_samples": 6},
                 summary="integrated gradients averaged over references drawn from a background set")
def expected_gradients(ctx: Context, config: EGConfig) -> MethodOutput:
    x = ctx.inputs
    background = check_background(config.background, x)
    shape = (-1,) + (1,) * (x.ndim - 1)

    def points(b: torch.Tensor, r: torch.Tensor):
        keys = row_keys(ctx.seed, Stream.EG_PAIRS, ctx.keys[b], r)
        alphas = uniform(keys, 1, x.dtype, offset=1)[:, 0]
        ref = background[integers(keys, len(background))]
        return ref + alphas.view(shape) * (x[b] - ref), x[b] - ref

    def reduce(grad: torch.Tensor, delta: torch.Tensor, b: torch.Tensor, r: torch.Tensor):
        term = delta.to(grad.dtype) * grad
        total = term.flatten(1).sum(dim=1)  # this pair's estimate of sum_i EG_i
        return term / config.n_samples, total, total * total

    sums = ctx.engine.accumulate(Rows(config.n_samples, points, reduce), len(x), ctx.target, x[:1])
    extras = {"sum_stderr": _stderr(sums.terms[1], sums.terms[2], config.n_samples)}
    return MethodOutput(sums.terms[0], _mean_reference_scores(ctx, background), extras)


def _stderr(total: torch.Tensor, squares: torch.Tensor, k: int) -> torch.Tensor:
    """The Monte Carlo standard error of the estimate of sum_i EG_i (per input; 0 for a single sample)."""
    if k < 2:
        return torch.zeros_like(total).cpu()
    mean = total / k
    variance = ((squares / k - mean * mean) * k / (k - 1)).clamp_min(0)
    return (variance / k).sqrt().float().cpu()


def _mean_reference_scores(ctx: Context, background: torch.Tensor) -> torch.Tensor:
    """E_{x'~D} F(x') for each input's target (targets may differ per input)."""
    outputs = ctx.engine.outputs(background)
    every = torch.arange(len(background), device=outputs.device)
    return torch.stack([ctx.target.score(outputs, torch.full_like(every, b)).mean()
                        for b in range(len(ctx.inputs))])
