"""Adaptive quadrature for path integrals of gradients (Integrated Gradients' ``rule="adaptive"``).

Along the straight path x(a) = x' + a (x - x'), phi(a) = F(x(a)) comes out of the same forward pass as the
gradient g(a), so every trapezoid panel [a, b] (width h) knows its exact share of the completeness gap:

    r = phi(b) - phi(a) - (h/2) (<d, g(a)> + <d, g(b)>),        d = x - x'

The map needs more than the gap (errors cancel across pixels). Along a ReLU network's path the gradient is
piecewise constant with very many small jumps: measured on the sample images it behaves like a random walk
(its variation doubles when the grid is refined four times), so a panel's trapezoid error is the unknowable
wiggle between its ends, of variance sigma^2 h^3 / 12 per pixel, where sigma^2 is the path's local roughness.
Each interior node estimates it from how far its gradient lies off the line through its two neighbours
(zero where the gradient is linear in a, so smooth paths converge on a coarse grid):

    dev(m) = d * (g(m) - (h_r g(l) + h_l g(r)) / (h_l + h_r)),   Var = sigma^2 h_l h_r / (h_l + h_r)
    S(m) = sqrt(pi/2) ||dev(m)||_1 / sqrt(h_l h_r / (h_l + h_r))     (sum over pixels of sigma)

A panel takes the mean S of its end nodes; its error variance is e = S^2 h^3 / 12, and the map's estimated
relative L1 error is sqrt(sum e) / ||map||_1 (measured on the sample images: the true error against a 2048-node
reference is 0.85-0.93 of it). The same model gives a fixed ``match_steps``-point Gauss-Legendre rule's error
from the same roughness (its local node spacing is (pi / n) sqrt(a (1 - a))), and the map counts as converged
when its estimate is no larger than that rule's (so as accurate as 200-step Gauss-Legendre by default), or
under ``floor`` (half the gap's tolerance: smooth paths, where Gauss-Legendre is near exact, stop there).
Measured on the sample images: the estimated ratio of the two errors is within 2-5% of the true one (above it).

Starting from a uniform grid, rounds bisect, for each target not yet met, the panels holding the largest
shares of it (bulk marking: the fewest panels holding MARK_FRACTION of |r|'s total for the gap, of the sum of
sqrt(e) for the map), but for the map no more panels than the model predicts are needed (a bisected panel
keeps a quarter of its e), reusing every evaluation (nested nodes), until both targets are met or the budget
of nodes is spent (flagged). All inputs of a batch are refined together: each round is one engine call over
the new nodes of the inputs still refining, so chunks stay full and converged inputs drop out.

Every decision depends on the input's own numbers only: results do not depend on the batch or the chunking.
cost = the nodes used per input (at most the budget) x (forward + input-backward); no extra forward: F at the
baseline is the node a = 0.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import torch

MARK_FRACTION = 0.2  # bulk marking: split the fewest panels holding this share of an unmet target's total
KEPT = 0.25  # the share of its error variance a bisected panel keeps (two halves of h^3 / 8 each)


@dataclass
class Path:
    """One input's nested grid: nodes (sorted), and per node the gradient, F, and <d, g>."""

    delta: torch.Tensor
    match_steps: int = 200  # the Gauss-Legendre rule whose estimated error the map must match (0: none)
    floor: float = 0.005  # an estimated relative map error under this counts as converged whatever the rule says
    nodes: list[float] = field(default_factory=list)
    grads: dict[float, torch.Tensor] = field(default_factory=dict)
    phi: dict[float, float] = field(default_factory=dict)
    dot: dict[float, float] = field(default_factory=dict)
    _rough: dict[tuple[float, float, float], float] = field(default_factory=dict)  # (l, m, r) -> S(m), cached
    state: str = "refining"  # "converged" | "budget"

    def add(self, alpha: float, grad: torch.Tensor, score: float) -> None:
        self.grads[alpha] = grad
        self.phi[alpha] = score
        self.dot[alpha] = float((self.delta * grad).sum())
        bisect.insort(self.nodes, alpha)

    def panels(self) -> list[tuple[float, float]]:
        return list(zip(self.nodes[:-1], self.nodes[1:]))

    def residual(self, a: float, b: float) -> float:
        return self.phi[b] - self.phi[a] - (b - a) / 2 * (self.dot[a] + self.dot[b])

    def integral(self) -> torch.Tensor:
        """Trapezoid rule over the current nodes: sum_k w_k g(a_k)."""
        total = torch.zeros_like(self.delta)
        for a, b in self.panels():
            total += (b - a) / 2 * (self.grads[a] + self.grads[b])
        return total

    def gap(self) -> float:
        """|sum of panel residuals| / |phi(1) - phi(0)| (inf when phi(1) = phi(0) and the residual is not 0)."""
        total = abs(sum(self.residual(a, b) for a, b in self.panels()))
        scale = abs(self.phi[1.0] - self.phi[0.0])
        return total / scale if scale > 0 else (0.0 if total == 0 else math.inf)

    def roughness(self, left: float, mid: float, right: float) -> float:
        """S(mid): the path's roughness at an interior node, summed over pixels (see the module docstring)."""
        key = (left, mid, right)
        if key not in self._rough:
            h_l, h_r = mid - left, right - mid
            line = (h_r * self.grads[left] + h_l * self.grads[right]) / (h_l + h_r)
            spread = math.sqrt(h_l * h_r / (h_l + h_r))
            self._rough[key] = math.sqrt(math.pi / 2) * float((self.delta * (self.grads[mid] - line)).abs().sum()) \
                / spread
        return self._rough[key]

    def variances(self) -> list[float]:
        """Per panel, S^2 of the model: the mean roughness of its end nodes, squared."""
        nodes = self.nodes
        rough = {m: self.roughness(l, m, r) for l, m, r in zip(nodes[:-2], nodes[1:-1], nodes[2:])}
        out = []
        for a, b in self.panels():
            known = [rough[n] for n in (a, b) if n in rough]
            out.append((sum(known) / len(known)) ** 2 if known else 0.0)
        return out

    def errors(self) -> tuple[list[float], float]:
        """Per panel, its error variance S^2 h^3 / 12; and the matched Gauss-Legendre rule's total."""
        ours, theirs = [], 0.0
        for s2, (a, b) in zip(self.variances(), self.panels()):
            ours.append(s2 * (b - a) ** 3 / 12)
            if self.match_steps:
                theirs += s2 * gl_spacing_squared(a, b, self.match_steps) / 12
        return ours, theirs

    def map_norm(self) -> float:
        return float((self.delta * self.integral()).abs().sum())

    def map_error(self) -> float:
        """The map's estimated relative L1 error (0 for an exact map, inf for a zero map that is not exact)."""
        total, norm = sum(self.errors()[0]), self.map_norm()
        return math.sqrt(total) / norm if norm > 0 else (0.0 if total == 0 else math.inf)

    def targets(self) -> tuple[list[float], float]:
        """Per panel, its error variance; and the total to bring them down to: the matched rule's estimate, or
        the floor's, whichever is larger (inf, no target for the map, when match_steps is 0)."""
        ours, theirs = self.errors()
        if not self.match_steps:
            return ours, math.inf
        return ours, max(theirs, (self.floor * self.map_norm()) ** 2)


def gl_spacing_squared(a: float, b: float, n: int) -> float:
    """integral_a^b s(t)^2 dt, s(t) = (pi / n) sqrt(t (1 - t)): n-point Gauss-Legendre's local node spacing."""
    antiderivative = lambda t: t * t / 2 - t ** 3 / 3  # noqa: E731
    return (math.pi / n) ** 2 * (antiderivative(b) - antiderivative(a))


def to_split(path: Path, budget: int, gap_unmet: bool, errors: list[float], target: float) -> list[float]:
    """The midpoints of the panels to bisect next (at most ``budget``): for the gap when unmet, the panels
    holding the largest shares of it; for the map (per-panel error variances ``errors``, to bring down to
    ``target``) when unmet, likewise, but no more than the model predicts are needed; largest first."""
    panels = path.panels()
    marked: dict[tuple[float, float], float] = {}
    if gap_unmet:
        _mark(marked, _bulk([(abs(path.residual(a, b)), (a, b)) for a, b in panels]))
    if sum(errors) > target:
        chosen = _bulk([(math.sqrt(e), (a, b)) for e, (a, b) in zip(errors, panels)])
        _mark(marked, chosen[:_needed(sorted(errors, reverse=True), target)])
    order = sorted(marked, key=marked.get, reverse=True)
    return [(a + b) / 2 for a, b in order if b - a > 1e-9][:budget]


def _needed(errors: list[float], target: float) -> int:
    """How many of the panels (largest error first) the model says must be bisected to bring the sum to target."""
    total = sum(errors)
    for count, e in enumerate(errors):
        if total <= target:
            return max(count, 1)
        total -= (1 - KEPT) * e
    return len(errors)


def _bulk(scored: list[tuple[float, tuple[float, float]]]) -> list[tuple[float, tuple[float, float]]]:
    """The smallest set of panels holding MARK_FRACTION of the total score, largest first, as (share, panel)."""
    scored = sorted(scored, reverse=True)
    total, running, chosen = sum(s for s, _ in scored), 0.0, []
    for score, panel in scored:
        if running >= MARK_FRACTION * total and running > 0:
            break
        chosen.append((score / total if total else 0.0, panel))
        running += score
    return chosen


def _mark(marked: dict, chosen: list[tuple[float, tuple[float, float]]]) -> None:
    for share, panel in chosen:
        marked[panel] = max(marked.get(panel, 0.0), share)


def step(path: Path, tol: float, max_nodes: int) -> list[float]:
    """Decide the input's next round: new nodes to evaluate, or [] with ``path.state`` set when it is done."""
    gap_unmet = path.gap() > tol
    errors, target = path.targets()
    if not gap_unmet and sum(errors) <= target:
        path.state = "converged"
        return []
    picks = to_split(path, max_nodes - len(path.nodes), gap_unmet, errors, target)
    if not picks:
        path.state = "budget"
    return picks


def start_grid(n_panels: int, max_nodes: int) -> list[float]:
    """A uniform grid of min(n_panels + 1, max_nodes) nodes on [0, 1], endpoints included."""
    n = max(2, min(n_panels + 1, max_nodes))
    return [k / (n - 1) for k in range(n)]
