"""Perturbations for attribution-robustness checks (Ghorbani et al. 2019; Wang & Kong 2022).

Every perturbed input keeps the model's predicted label: random perturbations are redrawn (up to ``tries``
times) until it does, and the top-k attack takes only label-preserving steps (halving an input's step when one
would change its label). An input for which neither finds such a point is reported as not kept.

The top-k attack pushes gradient mass out of the clean map's top-k set: it descends
D(x') = sum over the clean top-k positions of |grad_x' f_c(x')| (channels summed) with signed (l_inf) or
normalised (l2) steps, projected onto the ball. ReLU nets have zero second derivatives almost everywhere, so
D is differentiated through a copy of the network whose ReLUs are softplus(beta) (Chen et al.; the MoreauGrad
code); the attacked point is then explained by every method on the real network (a transfer attack for
methods other than the gradient).
"""

from __future__ import annotations

import copy

import torch

from attrib.rng import Stream, generator
from attrib.targets import decisions


def _norms(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12)[(...,) + (None,) * (t.ndim - 1)]


def project(delta: torch.Tensor, radius: float, norm: str) -> torch.Tensor:
    """Project perturbations onto the l_inf or l2 ball of ``radius``."""
    if norm == "linf":
        return delta.clamp(-radius, radius)
    return delta * (radius / _norms(delta)).clamp(max=1.0)


def random_direction(shape: tuple[int, ...], radius: float, norm: str, seed: int, key: int) -> torch.Tensor:
    """A random point on the l2 sphere (uniform direction) or at an l_inf corner-free uniform draw, scaled to
    ``radius``; seeded per input and try."""
    g = generator(seed, Stream.PERTURBATION, key)
    if norm == "linf":
        return (torch.rand(shape, generator=g) * 2 - 1) * radius
    d = torch.randn(shape, generator=g)
    return d / d.norm() * radius


@torch.no_grad()
def random_perturbations(model: torch.nn.Module, x: torch.Tensor, decided: torch.Tensor, radius: float, norm: str,
                         seed: int, tries: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(perturbed inputs, kept) where kept[i] says input i found a perturbation that keeps its label
    ``decided[i]`` (see ``attrib.targets.decisions``)."""
    out, kept = x.clone(), torch.zeros(len(x), dtype=torch.bool)
    for attempt in range(tries):
        todo = (~kept).nonzero()[:, 0]
        if len(todo) == 0:
            break
        deltas = torch.stack([random_direction(tuple(x.shape[1:]), radius, norm, seed, int(i) * 1000 + attempt)
                              for i in todo]).to(x)
        candidate = x[todo] + deltas
        same = decisions(model(candidate)).cpu() == decided[todo].cpu()
        out[todo[same]] = candidate[same]
        kept[todo[same]] = True
    return out, kept


class SoftReLU6(torch.nn.Module):
    """softplus(x) - softplus(x - 6): a smooth ReLU6."""

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.softplus = torch.nn.Softplus(beta=beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softplus(x) - self.softplus(x - 6.0)


def softplus_copy(model: torch.nn.Module, beta: float = 10.0) -> torch.nn.Module:
    """A copy of ``model`` with every ``nn.ReLU`` module replaced by ``nn.Softplus(beta)`` and every
    ``nn.ReLU6`` by its smooth counterpart."""
    smooth = copy.deepcopy(model).eval()
    for sub in list(smooth.modules()):
        for child_name, child in list(sub.named_children()):
            if isinstance(child, torch.nn.ReLU6):
                setattr(sub, child_name, SoftReLU6(beta))
            elif isinstance(child, torch.nn.ReLU):
                setattr(sub, child_name, torch.nn.Softplus(beta=beta))
    return smooth.requires_grad_(False)


def top_mask(values: torch.Tensor, fraction: float) -> torch.Tensor:
    """Per input, True on the top ``fraction`` of the magnitude map (channels summed for images)."""
    mags = _magnitudes(values)
    flat = mags.flatten(1)
    k = max(1, round(fraction * flat.shape[1]))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, flat.topk(k, dim=1).indices, True)
    return mask.reshape(mags.shape)


def _magnitudes(values: torch.Tensor) -> torch.Tensor:
    return values.abs().sum(1) if values.ndim == 4 else values.abs()


def _twice_differentiable():
    """Attention through the math kernel: the fused ones (flash, memory-efficient) have no double backward,
    which the attack's gradient of a gradient needs (transformers' ViT, DeiT, ... use them by default)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def topk_attack(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, decided: torch.Tensor,
                clean: torch.Tensor, radius: float, norm: str, *, fraction: float = 0.1, steps: int = 20,
                beta: float = 10.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(attacked inputs, found, fixed): points within ``radius`` of ``x`` that keep their labels ``decided``
    (``attrib.targets.decisions``) and whose gradient mass for the classes ``labels`` (output columns) leaves the
    clean top-k set; found[i] says input i moved at all (else it is returned as it was, and must not be scored:
    its map would match the clean one trivially); fixed[i] says no step could move it: its gradient map does not
    change with the input (a model linear in it). A step that would change an input's label is not taken: the
    input stays at its last label-keeping point and its step is halved, so a larger ball never makes the
    attack weaker by overshooting the decision boundary."""
    smooth = softplus_copy(model, beta)
    region = top_mask(clean, fraction).to(x.device)
    step = torch.full((len(x),) + (1,) * (x.ndim - 1), 2.5 * radius / steps, device=x.device, dtype=x.dtype)
    delta = torch.zeros_like(x)
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    fixed = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for _ in range(steps):
        with _twice_differentiable():
            point = (x + delta).requires_grad_(True)
            score = smooth(point).gather(1, labels[:, None].to(x.device)).sum()
            (grad,) = torch.autograd.grad(score, point, create_graph=True)
            direction = _slope((_magnitudes(grad) * region).flatten(1).sum(), point)
        move = direction.sign() if norm == "linf" else direction / _norms(direction)
        candidate = project(delta.detach() - step * move, radius, norm)
        with torch.no_grad():
            same = decisions(model(x + candidate)) == decided.to(x.device)
        delta[same] = candidate[same]
        step[~same] /= 2
        fixed &= (move == 0).flatten(1).all(1)
        found |= same & ~fixed  # a step taken, not a map that no step moves
    return (x + delta).detach(), found.cpu(), fixed.cpu()


def _slope(mass: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """d mass / d point; zero where the gradient map does not depend on the input at all (a model linear in its
    input, whose gradient is its weights), which no step can then move."""
    if not mass.requires_grad:
        return torch.zeros_like(point)
    (direction,) = torch.autograd.grad(mass, point, allow_unused=True)
    return torch.zeros_like(point) if direction is None else direction
