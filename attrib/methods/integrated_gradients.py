"""Integrated Gradients (Sundararajan, Taly, Yan 2017).

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x'))/dx_i da
            ~ (x_i - x'_i) * sum_k w_k dF(x' + a_k (x - x'))/dx_i

Completeness: sum_i IG_i = F(x) - F(x'); the gap is reported for every input.
cost = n_steps x (forward + input-backward) per input, plus one forward at the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attrib.engine import Rows
from attrib.methods._registry import Context, MethodOutput, register_method
from attrib.methods.baselines import check_baseline, make_baseline

RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "trapezoid")


@dataclass(frozen=True)
class IGConfig:
    """Attributes:
        n_steps: quadrature points along the path (the official code: 50; check completeness within ~5%).
        baseline: "zero", "blur", "uniform" or a tensor broadcastable to the inputs (see methods/baselines.py).
        rule: quadrature rule: "gausslegendre" (exact for polynomials of degree 2 n_steps - 1),
            "riemann_left", "riemann_right", "riemann_middle", or "trapezoid" (a true trapezoid rule whose
            weights sum to 1; needs n_steps >= 2).
        blur_sigma_frac: for the "blur" baseline, sigma as a fraction of the image's larger side.
    """

    n_steps: int = 50
    baseline: str | torch.Tensor = "zero"
    rule: str = "gausslegendre"
    blur_sigma_frac: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.n_steps, int) or self.n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}")
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; valid rules: {', '.join(RULES)}")
        if self.rule == "trapezoid" and self.n_steps < 2:
            raise ValueError("the trapezoid rule needs n_steps >= 2")
        check_baseline(self.baseline)
        if self.blur_sigma_frac < 0:
            raise ValueError(f"blur_sigma_frac must be >= 0, got {self.blur_sigma_frac}")


def quadrature(rule: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes a_k in [0, 1] and weights w_k (float64) of an n-point rule for integrals over [0, 1]."""
    k = np.arange(n, dtype=np.float64)
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        alphas, weights = (nodes + 1) / 2, weights / 2
    elif rule == "trapezoid":
        alphas, weights = k / (n - 1), np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
    else:
        offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
        alphas, weights = (k + offset) / n, np.full(n, 1.0 / n)
    return torch.from_numpy(alphas), torch.from_numpy(weights)


@register_method("integrated_gradients", aliases=("ig",), config=IGConfig, rows=lambda c: c.n_steps,
                 cost="n_steps x (forward + input-backward)", summary="path integral of gradients from a baseline",
                 reference=True, knob="n_steps", budget={"n_steps": 32}, smoke={"n_steps": 6})
def integrated_gradients(ctx: Context, config: IGConfig) -> MethodOutput:
    x = ctx.inputs
    base = make_baseline(config.baseline, x, ctx.seed, config.blur_sigma_frac, ctx.keys)
    alphas, weights = (t.to(x.device, x.dtype) for t in quadrature(config.rule, config.n_steps))
    delta = x - base
    shape = (-1,) + (1,) * (x.ndim - 1)

    def points(b: torch.Tensor, r: torch.Tensor):
        return base[b] + alphas[r].view(shape) * delta[b], None

    def reduce(grad: torch.Tensor, aux: None, b: torch.Tensor, r: torch.Tensor):
        return (weights[r].view(shape).to(grad.dtype) * grad,)

    sums = ctx.engine.accumulate(Rows(config.n_steps, points, reduce), len(x), ctx.target, x[:1])
    reference = ctx.engine.scores(base, ctx.target, torch.arange(len(x), device=x.device))
    return MethodOutput(delta * sums.terms[0], reference)
