"""Small-model training used by the sample-model recipes and by DiffROAR's retraining: standard or PGD.

PGD adversarial training (Madry et al. 2018): each minibatch is replaced by its worst case found by ``steps``
signed-gradient (l_inf) or normalised-gradient (l2) ascent steps on the loss, projected onto the eps-ball and the
data range, from a uniform random start. Everything is seeded: the same seed gives the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from attrib.errors import AttribError


class TrainingDiverged(AttribError):
    """The loss became NaN or infinite: the weights are garbage and so would be every accuracy from them."""


@dataclass(frozen=True)
class Recipe:
    """How a model is trained. ``eps`` = 0 means standard training; ``norm`` is "linf" or "l2"; the data range
    (``lower``, ``upper``) bounds adversarial inputs (None = unbounded); eps ramps up linearly over the first
    ``warmup_epochs`` epochs."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    eps: float = 0.0
    norm: str = "linf"
    pgd_steps: int = 10
    warmup_epochs: int = 0
    lower: float | None = 0.0
    upper: float | None = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    def attack(self, eps: float | None = None) -> "PGD":
        return PGD(self.eps if eps is None else eps, self.norm, self.pgd_steps, self.lower, self.upper)


@dataclass(frozen=True)
class PGD:
    """An l_inf or l2 PGD attack on the cross-entropy loss with a random start; step = 2.5 eps / steps."""

    eps: float
    norm: str = "linf"
    steps: int = 10
    lower: float | None = 0.0
    upper: float | None = 1.0

    def __call__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        if self.eps <= 0:
            return x
        step = 2.5 * self.eps / self.steps
        delta = self._project(self._start(x, generator), x)
        for _ in range(self.steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta), y)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = self._project(delta.detach() + step * self._direction(grad), x)
        return (x + delta).detach()

    def _start(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) * 2 - 1
        if self.norm == "linf":
            return noise * self.eps
        return noise * self.eps / _norms(noise).clamp_min(1e-12)[(...,) + (None,) * (x.ndim - 1)] * 0.5

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return grad.sign()
        return grad / _norms(grad).clamp_min(1e-12)[(...,) + (None,) * (grad.ndim - 1)]

    def _project(self, delta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            scale = (self.eps / _norms(delta).clamp_min(1e-12)).clamp(max=1.0)
            delta = delta * scale[(...,) + (None,) * (x.ndim - 1)]
        if self.lower is not None or self.upper is not None:
            delta = (x + delta).clamp(self.lower, self.upper) - x
        return delta


def _norms(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe, *, seed: int = 0,
          on_epoch: Callable[[int], None] | None = None) -> torch.nn.Module:
    """Train ``model`` in place with Adam on cross-entropy (adversarially when ``recipe.eps`` > 0)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    finite = torch.ones((), dtype=torch.bool, device=next(model.parameters()).device)
    for epoch in range(recipe.epochs):
        attack = recipe.attack(recipe.eps * min(1.0, (epoch + 1) / (recipe.warmup_epochs + 1)))
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), recipe.batch_size):
            batch = order[start:start + recipe.batch_size]
            xb, yb = x[batch], y[batch]
            if attack.eps > 0:
                model.eval()
                xb = attack(model, xb, yb, generator)
                model.train()
            loss = F.cross_entropy(model(xb), yb)
            finite &= loss.detach().isfinite()  # read once an epoch: no device sync per step
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if not bool(finite):
            raise TrainingDiverged(f"training diverged in epoch {epoch + 1} of {recipe.epochs}: the loss became NaN "
                                   f"or infinite at learning rate {recipe.lr:g}; try a lower --lr")
        if on_epoch is not None:
            on_epoch(epoch)
    return model.eval()


def init_seeded(factory: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """Build a fresh model whose initial weights depend only on ``seed`` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy in eval mode, with each batch moved to the model's device."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        correct = sum(int((model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size].cpu()).sum())
                      for i in range(0, len(y), batch_size))
    return correct / max(1, len(y))


def robust_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, attack: PGD, *, seed: int = 0,
                    batch_size: int = 512) -> float:
    """Accuracy on PGD adversarial examples (same attack family as training)."""
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        adv = attack(model, x[i:i + batch_size], y[i:i + batch_size], generator)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(1, len(y))
