"""Integrated Gradients (Sundararajan, Taly, Yan 2017).

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x'))/dx_i da
            ~ (x_i - x'_i) * sum_k w_k dF(x' + a_k (x - x'))/dx_i

Completeness: sum_i IG_i = F(x) - F(x'); the gap is reported for every input. The default rule, "adaptive",
refines a nested trapezoid grid where the gap and the map's error are made until the gap is within ``tol``
and the map's estimated error is no larger than ``match_steps``-point Gauss-Legendre's
(attrib/methods/adaptive.py); fixed rules (Gauss-Legendre, Riemann, trapezoid) use exactly ``n_steps`` points.
cost = n_steps x (forward + input-backward) per input (adaptive: at most n_steps), plus, for fixed rules, one
forward at the baseline.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from attrib.engine import Rows
from attrib.methods import adaptive
from attrib.methods._registry import Context, MethodOutput, register_method
from attrib.methods.baselines import PIXEL_BASELINES, check_baseline, make_baseline

RULES = ("adaptive", "gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "trapezoid")
DEFAULT_STEPS = {"adaptive": 256}  # the adaptive rule's budget; fixed rules: 50 (the official code)


@dataclass(frozen=True)
class IGConfig:
    """Attributes:
        n_steps: quadrature points along the path: fixed rules use exactly this many (default 50, as the
            official code); the adaptive rule at most this many (default 256).
        baseline: "zero" (the all-zero input: a normalised image model's mean colour), "blur" (the input
            Gaussian-blurred, sigma = blur_sigma_frac x its larger side; images only), "uniform" (noise drawn
            uniformly in each input's [min, max], from the seed), "black" or "white" (that picture as the model
            reads it; the commands only: attribute() is given it as a tensor) or a tensor broadcastable to the
            inputs.
        rule: "adaptive" (nested trapezoid refined until the completeness gap is within tol and the map is as
            accurate as match_steps-point Gauss-Legendre's, by its own estimate), or a fixed rule:
            "gausslegendre" (exact for polynomials of degree 2 n_steps - 1), "riemann_left", "riemann_right",
            "riemann_middle", or "trapezoid" (a true trapezoid rule whose weights sum to 1; needs n_steps >= 2).
        tol: adaptive rule: the relative completeness gap to reach.
        match_steps: adaptive rule: the map is refined too, until its estimated error is no larger than a fixed
            Gauss-Legendre rule's with this many points (default 200; 0: the gap alone), or under tol / 2
            (attrib/methods/adaptive.py).
        start_steps: adaptive rule: panels of the uniform grid it starts from.
        blur_sigma_frac: for the "blur" baseline, sigma as a fraction of the image's larger side.
    """

    n_steps: int | None = None
    baseline: str | torch.Tensor = "zero"
    rule: str = "adaptive"
    tol: float = 0.01
    match_steps: int = 200
    start_steps: int = 8
    blur_sigma_frac: float = 0.1

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; valid rules: {', '.join(RULES)}")
        if self.n_steps is None:  # the rule's default, resolved so that records show it
            object.__setattr__(self, "n_steps", DEFAULT_STEPS.get(self.rule, 50))
        if not isinstance(self.n_steps, int) or self.n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}")
        least = {"trapezoid": 2, "adaptive": 3}.get(self.rule, 1)  # adaptive: an interior node shows roughness
        if self.n_steps < least:
            raise ValueError(f"the {self.rule} rule needs n_steps >= {least}")
        if not self.tol > 0:
            raise ValueError(f"tol must be > 0, got {self.tol!r}")
        if not isinstance(self.start_steps, int) or self.start_steps < 2:
            raise ValueError(f"start_steps must be an integer >= 2, got {self.start_steps!r}")
        if not isinstance(self.match_steps, int) or self.match_steps < 0:
            raise ValueError(f"match_steps must be an integer >= 0, got {self.match_steps!r}")
        check_baseline(self.baseline)
        if not self.blur_sigma_frac > 0:  # nan fails too; 0 would make the baseline the input itself
            raise ValueError(f"blur_sigma_frac must be > 0, got {self.blur_sigma_frac}")

    def _blurs(self) -> bool:
        return isinstance(self.baseline, str) and self.baseline == "blur"

    def image_only(self) -> str | None:
        """Why this configuration takes image inputs (B, C, H, W) only (None: any shape)."""
        if self._blurs():
            return "the blur baseline blurs images"
        colour = self.baseline if isinstance(self.baseline, str) and self.baseline in PIXEL_BASELINES else None
        return f"the {colour} baseline is a picture" if colour else None

    def ignored(self) -> dict[str, str]:
        """The options this configuration does not use, each with why (a user who set one is told)."""
        out = {}
        if self.rule != "adaptive":
            out = dict.fromkeys(("tol", "match_steps", "start_steps"), f"it is for the adaptive rule, not {self.rule}")
        if not self._blurs():
            out["blur_sigma_frac"] = "it is for the blur baseline"
        return out


def quadrature(rule: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes a_k in [0, 1] and weights w_k (float64) of an n-point fixed rule for integrals over [0, 1]."""
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
                 cost="n_steps x (forward + input-backward) (adaptive: at most n_steps)",
                 summary="path integral of gradients from a baseline",
                 reference=True, knob="n_steps", budget={"n_steps": 32}, smoke={"n_steps": 6},
                 call_rows=lambda c: min(c.start_steps + 1, c.n_steps) if c.rule == "adaptive" else c.n_steps)
def integrated_gradients(ctx: Context, config: IGConfig) -> MethodOutput:
    x = ctx.inputs
    base = make_baseline(config.baseline, x, ctx.seed, config.blur_sigma_frac, ctx.keys)
    if config.rule == "adaptive":
        return _adaptive(ctx, base, config)
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


def _adaptive(ctx: Context, base: torch.Tensor, config: IGConfig) -> MethodOutput:
    """Rounds of nested refinement for all inputs together (see attrib/methods/adaptive.py)."""
    x = ctx.inputs
    delta = x - base
    paths = [adaptive.Path(delta[i], config.match_steps, config.tol / 2) for i in range(len(x))]
    todo = {i: adaptive.start_grid(config.start_steps, config.n_steps) for i in range(len(x))}
    while todo:
        _evaluate(ctx, base, delta, paths, todo)
        todo = {i: new for i, path in enumerate(paths) if path.state == "refining"
                for new in [adaptive.step(path, config.tol, config.n_steps)] if new}
    values = torch.stack([p.map() for p in paths])
    reference = torch.tensor([p.phi[0.0] for p in paths], dtype=values.dtype, device=x.device)
    extras = {"steps": torch.tensor([len(p.nodes) for p in paths]),
              "converged": torch.tensor([p.state == "converged" for p in paths]),
              "map_error": torch.tensor([p.map_error() for p in paths])}
    return MethodOutput(values, reference, extras)


def _evaluate(ctx: Context, base: torch.Tensor, delta: torch.Tensor, paths: list, todo: dict[int, list[float]]):
    """One engine call over every new node of every input still refining."""
    rows = [(i, a) for i, alphas in todo.items() for a in alphas]
    owners = torch.tensor([i for i, _ in rows], device=delta.device)
    alphas = torch.tensor([a for _, a in rows], dtype=delta.dtype, device=delta.device)
    shape = (-1,) + (1,) * (delta.ndim - 1)

    def points(b: torch.Tensor, r: torch.Tensor):
        return base[b] + alphas[r].view(shape) * delta[b], None

    def consume(b: torch.Tensor, r: torch.Tensor, grads: torch.Tensor, scores: torch.Tensor, aux: None) -> None:
        grads, scores, start = grads.to(delta.dtype), scores.tolist(), 0
        for i, group in itertools.groupby(r.tolist(), key=lambda k: rows[k][0]):  # rows come grouped by input
            alphas = [rows[k][1] for k in group]
            stop = start + len(alphas)
            paths[i].add_many(alphas, grads[start:stop], scores[start:stop])
            start = stop

    ctx.engine.each_row(owners, torch.arange(len(rows), device=delta.device), points, ctx.target, ctx.inputs[:1],
                        consume)
