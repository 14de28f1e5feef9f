"""MoreauGrad (Zhang & Farnia, ICCV 2023): the gradient of the Moreau envelope of the noise-smoothed logit.

    f_s(x) = E_e f(x + e),  e ~ N(0, s^2),  s = noise_frac * (max(x) - min(x))
    f^r(x) = min_d f_s(x + d) + ||d||^2 / (2 r)  (+ eta ||d||_1 sparse, + eta sum_g ||d_g||_2 group-sparse)
    MoreauGrad(x) = -d* / r      (= grad f^r(x) for the vanilla variant; = w for a linear f)

Proximal gradient on the perturbation d, as the official code: each iteration draws n_samples noise vectors,
g = mean_j grad f(x + e_j + d), v = d - lr (g + d / r), d = prox_{lr eta}(v); the result averages d over the
last ``average_last`` iterations. cost = n_iter x n_samples x (forward + input-backward) per input.

Presets: "paper" = the official settings (300 x 32 = 9,600 passes). "fast" (default) = 960 passes (10%): a warm
start at the linearised fixed point d = -r g(0), antithetic noise pairs (e, -e) and averaging of all iterates
after a short burn-in; the same fixed point, estimated with less noise per pass (see bench/moreaugrad.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attrib.engine import Rows
from attrib.methods._registry import Context, MethodOutput, register_method
from attrib.rng import MOREAUGRAD_STRIDE, Stream, normal, row_keys

PRESETS = {
    "paper": dict(lr=0.1, n_samples=32, n_iter=300, average_last=100, warm_start=False, antithetic=False,
                  average="iterates"),
    "fast": dict(lr=0.2, n_samples=16, n_iter=60, average_last=45, warm_start=False, antithetic=True,
                 average="gradients"),
}


@dataclass(frozen=True)
class MoreauGradConfig:
    """Attributes:
        preset: "fast" (10% of the paper's cost) or "paper" (the official settings); fills the options left None.
        rho: Moreau envelope parameter r (paper: 1.0).
        noise_frac: smoothing noise std as a fraction of each input's own value range (paper: 0.1).
        lr: proximal-gradient step size (paper 0.1, fast 0.2; any lr < 2 / (L + 1 / rho) has the same fixed point).
        n_samples: noise samples per iteration (paper 32, fast 16).
        n_iter: iterations (paper 300, fast 60).
        average_last: iterations averaged at the end (paper 100, fast 45; with n_iter given and this left out,
            the preset's share of n_iter: a third, three quarters).
        warm_start: start at d = -rho x the first iteration's mean gradient instead of 0 (both presets: no; it
            helps only where the logit is nearly linear over the noise scale).
        antithetic: draw noise in pairs (e, -e) (fast: yes).
        average: "iterates" (paper: MoreauGrad = -mean(d_k) / rho over the last average_last iterations) or
            "gradients" (fast: the fixed point d* = prox(-rho g*) evaluated at g* = the mean of the last
            average_last iterations' gradients, which weighs every noise sample equally).
        resample_noise: fresh noise every iteration (paper); False reuses the first draws (fixed objective).
    """

    preset: str = "fast"
    rho: float = 1.0
    noise_frac: float = 0.1
    lr: float | None = None
    n_samples: int | None = None
    n_iter: int | None = None
    average_last: int | None = None
    warm_start: bool | None = None
    antithetic: bool | None = None
    average: str | None = None
    resample_noise: bool = True

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}")
        preset = PRESETS[self.preset]
        if self.average_last is None and isinstance(self.n_iter, int) and self.n_iter >= 1:  # the preset's share
            object.__setattr__(self, "average_last", max(1, round(self.n_iter * preset["average_last"] /
                                                                  preset["n_iter"])))
        for key, value in preset.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        for key in ("n_samples", "n_iter", "average_last"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        if self.average_last > self.n_iter:
            raise ValueError(f"average_last ({self.average_last}) cannot exceed n_iter ({self.n_iter})")
        if self.average not in ("iterates", "gradients"):
            raise ValueError(f"average must be 'iterates' or 'gradients', got {self.average!r}")
        if self.antithetic and self.n_samples % 2:
            raise ValueError("antithetic noise needs an even n_samples")
        for key in ("rho", "lr"):
            if not getattr(self, key) > 0:  # nan fails too
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)!r}")
        for key in ("noise_frac", "eta"):
            if not getattr(self, key, 0.0) >= 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)!r}")
        if getattr(self, "group_size", 1) < 1:
            raise ValueError("group_size must be a positive integer")

    def blank_map(self, name: str) -> str | None:
        """What an all-zero map of this configuration most likely means, and what to change (sparse variants)."""
        eta = getattr(self, "eta", 0.0)
        return (f"its penalty eta={eta:g} thresholded every entry away (small gradients, as a random-weight model's, "
                f"do that): a smaller eta (--set {name}.eta={eta / 10:g}) keeps the strongest") if eta else None


@dataclass(frozen=True)
class SparseMoreauGradConfig(MoreauGradConfig):
    """Attributes:
        eta: L1 penalty weight; the prox soft-thresholds d at lr x eta (paper: 5e-3).
    """

    eta: float = 5e-3


@dataclass(frozen=True)
class GroupMoreauGradConfig(MoreauGradConfig):
    """Attributes:
        eta: group-L2 penalty weight; the prox shrinks each block's norm by lr x eta (paper: 5e-2).
        group_size: side of the square pixel blocks (all channels together; partial border blocks allowed).
    """

    eta: float = 5e-2
    group_size: int = 14

    def image_only(self) -> str | None:
        """Why this configuration takes image inputs (B, C, H, W) only (None: any shape)."""
        return "its penalty acts on square pixel blocks"


def soft_threshold(v: torch.Tensor, threshold: float) -> torch.Tensor:
    """sign(v) max(|v| - threshold, 0): the prox of threshold x ||.||_1."""
    return v.sign() * (v.abs() - threshold).clamp_min(0)


def _blocks(v: torch.Tensor, size: int) -> torch.Tensor:
    """v (B, C, H, W), zero-padded to multiples of size, as (B, C, H/size, size, W/size, size)."""
    if v.ndim != 4:
        raise ValueError(f"group-sparse MoreauGrad needs image inputs (B, C, H, W); got {tuple(v.shape)}")
    b, c, h, w = v.shape
    padded = F.pad(v, (0, -w % size, 0, -h % size))
    return padded.reshape(b, c, padded.shape[2] // size, size, padded.shape[3] // size, size)


def group_norms(v: torch.Tensor, size: int) -> torch.Tensor:
    """L2 norm of each (all channels x size x size) block: (B, 1, H/size, 1, W/size, 1)."""
    return _blocks(v, size).pow(2).sum(dim=(1, 3, 5), keepdim=True).sqrt()


def group_threshold(v: torch.Tensor, threshold: float, size: int) -> torch.Tensor:
    """Shrink each block of v (B, C, H, W) by max(0, 1 - threshold / ||block||); border blocks may be partial."""
    blocks = _blocks(v, size)
    scale = (1 - threshold / group_norms(v, size).clamp_min(1e-30)).clamp_min(0)
    h, w = v.shape[2:]
    return (blocks * scale).reshape(len(v), v.shape[1], blocks.shape[2] * size, -1)[:, :, :h, :w]


def moreau_rows(n_iter: int, n_samples: int) -> int:
    return n_iter * n_samples


def run_moreaugrad(ctx: Context, config: MoreauGradConfig, prox, penalty) -> MethodOutput:
    """The proximal-gradient loop shared by the variants.

    Args:
        prox: ``prox(v, step)``, the proximal map of step x penalty.
        penalty: ``penalty(d)`` per input (B,), for the recorded objective.
    """
    x = ctx.inputs
    flat = x.reshape(len(x), -1)
    sigma = config.noise_frac * (flat.max(dim=1).values - flat.min(dim=1).values)
    shape = (-1,) + (1,) * (x.ndim - 1)
    d = torch.zeros_like(x)
    total_d, total_g = torch.zeros_like(x), torch.zeros_like(x)
    objective = []
    for k in range(config.n_iter):
        grad, value = _mean_gradient(ctx, config, x, d, sigma, shape, k)
        objective.append((value + _sq_norm(d) / (2 * config.rho) + penalty(d)).cpu())
        if k == 0 and config.warm_start:
            d = prox(-config.rho * grad, config.rho)
        else:
            d = prox(d - config.lr * (grad + d / config.rho), config.lr)
        if k >= config.n_iter - config.average_last:
            total_d += d
            total_g += grad
    if config.average == "gradients":
        values = -prox(-config.rho * total_g / config.average_last, config.rho) / config.rho
    else:
        values = -(total_d / config.average_last) / config.rho
    return MethodOutput(values, extras={"objective": torch.stack(objective, dim=1)})


def _sq_norm(d: torch.Tensor) -> torch.Tensor:
    return d.reshape(len(d), -1).pow(2).sum(dim=1)


def _mean_gradient(ctx, config, x, d, sigma, shape, iteration):
    key = iteration if config.resample_noise else 0

    def points(b: torch.Tensor, r: torch.Tensor):
        if config.noise_frac == 0:
            return x[b] + d[b], None
        pair = r // 2 if config.antithetic else r
        keys = row_keys(ctx.seed, Stream.MOREAUGRAD_NOISE + MOREAUGRAD_STRIDE * key, ctx.keys[b], pair)
        noise = normal(keys, tuple(x.shape[1:]), x.dtype)
        if config.antithetic:
            noise = noise * (1 - 2 * (r % 2)).to(x.dtype).view(shape)
        return x[b] + d[b] + sigma[b].view(shape) * noise, None

    sums = ctx.engine.accumulate(Rows(config.n_samples, points), len(x), ctx.target, x[:1])
    return sums.terms[0] / config.n_samples, sums.scores / config.n_samples


_COMMON = dict(rows=lambda c: moreau_rows(c.n_iter, c.n_samples), stochastic=True,
               cost="n_iter x n_samples x (forward + input-backward)", knob="n_iter",
               budget={"n_iter": 12, "average_last": 8, "n_samples": 4},
               smoke={"n_iter": 4, "average_last": 3, "n_samples": 6})


@register_method("moreaugrad", aliases=("mg",), config=MoreauGradConfig,
                 summary="gradient of the Moreau envelope of the smoothed logit", **_COMMON)
def moreaugrad(ctx: Context, config: MoreauGradConfig) -> MethodOutput:
    return run_moreaugrad(ctx, config, lambda v, step: v, lambda d: torch.zeros(len(d), device=d.device,
                                                                                  dtype=d.dtype))


@register_method("moreaugrad_sparse", aliases=("mg_sparse",), config=SparseMoreauGradConfig,
                 summary="MoreauGrad with an L1 penalty (sparse maps)", **_COMMON)
def moreaugrad_sparse(ctx: Context, config: SparseMoreauGradConfig) -> MethodOutput:
    return run_moreaugrad(ctx, config, lambda v, step: soft_threshold(v, step * config.eta),
                          lambda d: config.eta * d.reshape(len(d), -1).abs().sum(dim=1))


@register_method("moreaugrad_group", aliases=("mg_group",), config=GroupMoreauGradConfig,
                 summary="MoreauGrad with a group-L2 penalty on pixel blocks", **_COMMON)
def moreaugrad_group(ctx: Context, config: GroupMoreauGradConfig) -> MethodOutput:
    return run_moreaugrad(ctx, config, lambda v, step: group_threshold(v, step * config.eta, config.group_size),
                          lambda d: config.eta * group_norms(d, config.group_size).reshape(len(d), -1).sum(dim=1))
