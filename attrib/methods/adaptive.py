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
reference is 0.85-0.91 of it). The same model gives a fixed ``match_steps``-point Gauss-Legendre rule's error
from the same roughness (its local node spacing is (pi / n) sqrt(a (1 - a))), and the map counts as converged
when its estimate is no larger than that rule's (so as accurate as 200-step Gauss-Legendre by default), or
under ``floor`` (half the gap's tolerance: smooth paths, where Gauss-Legendre is near exact, stop there).
Measured on the sample images: the estimated ratio of the two errors is 3-4% above the true one, 22% on rocket,
where Gauss-Legendre's realised error is worse than the model expects (bench/RESULTS.md, "The stop on today's
inputs"; on other pictures it errs either way by about 10%).

Starting from a uniform grid, rounds bisect, for each target not yet met, the panels holding the largest
shares of it (bulk marking: the fewest panels holding MARK_FRACTION of |r|'s total for the gap, of the sum of
sqrt(e) for the map), but for the map no more panels than the model predicts are needed (a bisected panel
keeps a quarter of its e), reusing every evaluation (nested nodes), until both targets are met or the budget
of nodes is spent (flagged). When F(x) = F(x') exactly (at the compute precision) the relative gap is
undefined (reported as inf) and the map's target alone decides. All inputs of a batch are refined together:
each round is one engine call over the new nodes of the inputs still refining, so chunks stay full and
converged inputs drop out.

Every decision depends on the input's own numbers only: results do not depend on the batch or the chunking.
cost = the nodes used per input (at most the budget) x (forward + input-backward); no extra forward: F at the
baseline is the node a = 0.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import torch

MIN_WIDTH = 1e-9  # panels are not bisected below this width: F jumping within it is a discontinuity
MARK_FRACTION = 0.2  # bulk marking: split the fewest panels holding this share of an unmet target's total
KEPT = 0.25  # the share of its error variance a bisected panel keeps (two halves of h^3 / 8 each)
ROUGH_GROUP = 32  # interior nodes whose roughness is computed in one batch (bounds the temporaries)


class GrowingRows:
    """Rows appended in blocks to one tensor whose storage doubles as it fills (amortised copies)."""

    def __init__(self) -> None:
        self.data: torch.Tensor | None = None
        self.size = 0

    def append(self, rows: torch.Tensor) -> range:
        need = self.size + len(rows)
        if self.data is None or need > len(self.data):
            grown = rows.new_empty((max(need, 16, 2 * self.size), *rows.shape[1:]))
            if self.data is not None:
                grown[:self.size] = self.data[:self.size]
            self.data = grown
        self.data[self.size:need] = rows
        added, self.size = range(self.size, need), need
        return added

    def view(self) -> torch.Tensor:
        return self.data[:self.size]

    def take(self, rows: list[int]) -> torch.Tensor:
        return self.data.index_select(0, torch.tensor(rows, device=self.data.device))


@dataclass
class Path:
    """One input's nested grid: nodes (sorted), and per node F, <d, g> and d * g (rows of one tensor on the
    compute device, so that each round's bookkeeping is a few batched operations, not a few per node)."""

    delta: torch.Tensor
    match_steps: int = 200  # the Gauss-Legendre rule whose estimated error the map must match (0: none)
    floor: float = 0.005  # an estimated relative map error under this counts as converged whatever the rule says
    nodes: list[float] = field(default_factory=list)
    phi: dict[float, float] = field(default_factory=dict)
    state: str = "refining"  # "converged" | "budget" | "not finite"
    _terms: GrowingRows = field(default_factory=GrowingRows)  # d * g(a) per node
    _row: dict[float, int] = field(default_factory=dict)  # node -> its row in _terms
    _dot: dict[float, float] = field(default_factory=dict)  # node -> <d, g>, filled in by _sync
    _rough: dict[tuple[float, float, float], float] = field(default_factory=dict)  # (l, m, r) -> S(m), cached
    _norm: tuple[int, float] = (0, 0.0)  # (nodes, ||map||_1) when last computed

    def add(self, alpha: float, grad: torch.Tensor, score: float) -> None:
        self.add_many([alpha], grad.unsqueeze(0), [score])

    def add_many(self, alphas: list[float], grads: torch.Tensor, scores: list[float]) -> None:
        """New nodes ``alphas`` with their gradients (k, *delta.shape) and F values."""
        for alpha, row, score in zip(alphas, self._terms.append(self.delta * grads), scores):
            self._row[alpha], self.phi[alpha] = row, score
            bisect.insort(self.nodes, alpha)

    def _sync(self) -> None:
        """<d, g> of the nodes added since the last call, in one reduction (the rows at the end of _terms)."""
        pending = len(self._row) - len(self._dot)
        if pending:
            dots = self._terms.view()[-pending:].flatten(1).sum(1).tolist()
            self._dot.update(zip(list(self._row)[-pending:], dots))  # (dicts keep insertion order: row order)

    def finite(self) -> bool:
        """Whether every F value and every node's <d, g> so far is finite."""
        self._sync()
        return all(map(math.isfinite, self.phi.values())) and all(map(math.isfinite, self._dot.values()))

    def panels(self) -> list[tuple[float, float]]:
        return list(zip(self.nodes[:-1], self.nodes[1:]))

    def residual(self, a: float, b: float) -> float:
        self._sync()
        return self.phi[b] - self.phi[a] - (b - a) / 2 * (self._dot[a] + self._dot[b])

    def map(self) -> torch.Tensor:
        """The attribution map by the trapezoid rule over the current nodes: d * sum_k w_k g(a_k)."""
        weights = [0.0] * len(self._row)
        for a, b in self.panels():
            weights[self._row[a]] += (b - a) / 2
            weights[self._row[b]] += (b - a) / 2
        terms = self._terms.view()
        return torch.tensordot(torch.tensor(weights, dtype=terms.dtype, device=terms.device), terms, dims=1)

    def gap(self) -> float:
        """|sum of panel residuals| / |phi(1) - phi(0)| (inf when phi(1) = phi(0) and the residual is not 0)."""
        total = abs(sum(self.residual(a, b) for a, b in self.panels()))
        scale = abs(self.phi[1.0] - self.phi[0.0])
        return total / scale if scale > 0 else (0.0 if total == 0 else math.inf)

    def gap_defined(self) -> bool:
        """False when F(x) = F(x') exactly (at the compute precision): no refinement can bring a gap relative to
        0 within a tolerance, so the rule refines for the map alone."""
        return self.phi[1.0] != self.phi[0.0]

    def roughness(self) -> dict[float, float]:
        """S(m) at every interior node m: the path's roughness there, summed over pixels (see the module
        docstring); the triples (l, m, r) not seen before are computed together, ROUGH_GROUP at a time."""
        triples = list(zip(self.nodes[:-2], self.nodes[1:-1], self.nodes[2:]))
        missing = [t for t in triples if t not in self._rough]
        for start in range(0, len(missing), ROUGH_GROUP):
            group = missing[start:start + ROUGH_GROUP]
            self._rough.update(zip(group, self._roughness(group)))
        return {m: self._rough[(l, m, r)] for l, m, r in triples}

    def _roughness(self, triples: list[tuple[float, float, float]]) -> list[float]:
        """S(m) of each (l, m, r): || d g(m) - (h_r d g(l) + h_l d g(r)) / (h_l + h_r) ||_1, scaled; batched."""
        h_l = torch.tensor([m - l for l, m, _ in triples], dtype=torch.float64)
        h_r = torch.tensor([r - m for _, m, r in triples], dtype=torch.float64)
        left, mid, right = ([self._row[a] for a in column] for column in zip(*triples))
        off_line = self._terms.take(mid).flatten(1)
        weight = lambda h: (-h / (h_l + h_r)).to(off_line).unsqueeze(1)  # noqa: E731
        off_line.addcmul_(self._terms.take(left).flatten(1), weight(h_r))
        off_line.addcmul_(self._terms.take(right).flatten(1), weight(h_l))
        spread = (h_l * h_r / (h_l + h_r)).sqrt()
        return (math.sqrt(math.pi / 2) * off_line.abs_().sum(1).cpu().double() / spread).tolist()

    def variances(self) -> list[float]:
        """Per panel, S^2 of the model: the mean roughness of its end nodes, squared."""
        rough = self.roughness()
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
        if self._norm[0] != len(self.nodes):
            self._norm = (len(self.nodes), float(self.map().abs().sum()))
        return self._norm[1]

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
    return [(a + b) / 2 for a, b in order if b - a > MIN_WIDTH][:budget]


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
    if not path.finite():
        path.state = "not finite"  # a NaN or inf gradient or score stays one whatever the grid: no refinement helps
        return []
    gap_unmet = path.gap_defined() and path.gap() > tol
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
