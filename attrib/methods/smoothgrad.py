"""SmoothGrad (Smilkov et al. 2017), SmoothGrad-squared and VarGrad (Adebayo et al. 2018).

    g_j = dF/dx (x + e_j),  e_j ~ N(0, s^2),  s = noise_frac * (max(x) - min(x))   (per input)
    SmoothGrad = mean_j g_j     SmoothGrad-squared = mean_j g_j^2     VarGrad = mean_j g_j^2 - (mean_j g_j)^2

Running sums of g and g^2 are accumulated chunk by chunk, so memory does not grow with n_samples.
cost = n_samples x (forward + input-backward) per input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attrib.engine import Rows, Sums
from attrib.methods._registry import Context, MethodOutput, register_method
from attrib.rng import Stream, normal, row_keys


@dataclass(frozen=True)
class SmoothGradConfig:
    """Attributes:
        n_samples: noisy copies per input (paper: ~50).
        noise_frac: noise standard deviation as a fraction of each input's own value range (max - min);
            0 gives the plain gradient (paper: 0.1-0.2).
    """

    n_samples: int = 50
    noise_frac: float = 0.15

    def __post_init__(self) -> None:
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {self.n_samples!r}")
        if not self.noise_frac >= 0:
            raise ValueError(f"noise_frac must be >= 0, got {self.noise_frac!r}")


@dataclass(frozen=True)
class VarGradConfig(SmoothGradConfig):
    """Attributes:
        n_samples: noisy copies per input, at least 2 (a variance of one draw is 0).
        noise_frac: noise standard deviation as a fraction of each input's own value range (max - min); > 0
            (without noise every draw is the same gradient).
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be >= 2 for a variance (one draw's is 0), got {self.n_samples}")
        if self.noise_frac == 0:
            raise ValueError("noise_frac must be > 0 for a variance (without noise every draw is the same gradient)")


def noisy_gradient_sums(ctx: Context, config: SmoothGradConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Means over samples of g and of g^2."""
    x = ctx.inputs
    flat = x.reshape(len(x), -1)
    sigma = config.noise_frac * (flat.max(dim=1).values - flat.min(dim=1).values)
    shape = (-1,) + (1,) * (x.ndim - 1)

    def points(b: torch.Tensor, r: torch.Tensor):
        noise = normal(row_keys(ctx.seed, Stream.SMOOTHGRAD_NOISE, ctx.keys[b], r), tuple(x.shape[1:]), x.dtype)
        return x[b] + sigma[b].view(shape) * noise, None

    def reduce(grad: torch.Tensor, aux: None, b: torch.Tensor, r: torch.Tensor):
        return grad, grad * grad

    sums: Sums = ctx.engine.accumulate(Rows(config.n_samples, points, reduce), len(x), ctx.target, x[:1])
    return sums.terms[0] / config.n_samples, sums.terms[1] / config.n_samples


_COMMON = dict(config=SmoothGradConfig, rows=lambda c: c.n_samples, stochastic=True,
               cost="n_samples x (forward + input-backward)", knob="n_samples",
               budget={"n_samples": 16}, smoke={"n_samples": 6})


@register_method("smoothgrad", aliases=("sg",), summary="gradient averaged over noisy copies", **_COMMON)
def smoothgrad(ctx: Context, config: SmoothGradConfig) -> MethodOutput:
    return MethodOutput(noisy_gradient_sums(ctx, config)[0])


@register_method("smoothgrad_squared", aliases=("sg_sq", "sgsq"), signed=False,
                 summary="squared gradient averaged over noisy copies", **_COMMON)
def smoothgrad_squared(ctx: Context, config: SmoothGradConfig) -> MethodOutput:
    return MethodOutput(noisy_gradient_sums(ctx, config)[1])


@register_method("vargrad", signed=False, summary="variance of the gradient over noisy copies",
                 **{**_COMMON, "config": VarGradConfig})
def vargrad(ctx: Context, config: VarGradConfig) -> MethodOutput:
    mean, mean_sq = noisy_gradient_sums(ctx, config)
    return MethodOutput((mean_sq - mean * mean).clamp_min(0))
