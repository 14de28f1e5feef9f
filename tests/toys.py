"""Toy models with closed-form attributions."""

import torch


class Linear(torch.nn.Module):
    """F(x) = [w.x + c, -(w.x + c)] over flattened inputs (two 'classes')."""

    def __init__(self, w: torch.Tensor, c: float = 0.3) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.reshape(len(x), -1) @ self.w.reshape(-1) + self.c
        return torch.stack([s, -s], dim=1)


class Quadratic(torch.nn.Module):
    """F(x) = 0.5 x^T A x + b.x (one output) with A symmetric."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(a.clone())
        self.b = torch.nn.Parameter(b.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.reshape(len(x), -1)
        return (0.5 * ((v @ self.a) * v).sum(dim=1) + v @ self.b)[:, None]


def small_convnet(dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.nn.Module:
    """A small nonlinear conv net on (B, 3, 12, 12) inputs with 4 classes."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.Softplus(), torch.nn.Conv2d(6, 8, 3, stride=2),
        torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(8 * 5 * 5, 4))
    return net.to(dtype).eval()
