"""OLM and OLM-S (Harbecke & Alt, 2020): occlusion with replacements drawn from a masked language model.

For word i, a masked LM proposes replacements at its position; n draws (with replacement) are grouped into
candidates t with counts c_t (sum c_t = n), and the classifier scores each candidate sentence x_{i:=t}:

    OLM    r_i = p(x) - sum_t (c_t / n) p(x_{i:=t})            (expected drop in the class probability)
    OLM-S  s_i = sqrt( sum_t (c_t / n) (p(x_{i:=t}) - mean)^2 )  (how much the class probability varies)

cost = one LM forward per word + one classifier forward per distinct candidate (deduplicated per text).
Draws for word i of text j come from their own generator keyed by (seed, j, i): batch sizes do not matter.
"""

from __future__ import annotations

import torch

from attrib.rng import generator

STREAM = 201


def sample_counts(probs: torch.Tensor, n_samples: int, seed: int, text_index: int) -> list[dict[int, int]]:
    """Per word, {replacement id: count} from n draws of its distribution (rows of ``probs``, (W, V))."""
    out = []
    for i, row in enumerate(probs):
        draws = torch.multinomial(row.double(), n_samples, replacement=True,
                                  generator=generator(seed, STREAM, text_index, i))
        ids, counts = torch.unique(draws, return_counts=True)
        out.append(dict(zip(ids.tolist(), counts.tolist())))
    return out


def olm(p_original: torch.Tensor, candidates: list[torch.Tensor], counts: list[torch.Tensor]) -> torch.Tensor:
    """OLM relevance (W, C) for every class: p(x) minus the count-weighted mean of the candidates' p."""
    return torch.stack([p_original - _mean(p, c) for p, c in zip(candidates, counts)])


def olm_s(candidates: list[torch.Tensor], counts: list[torch.Tensor]) -> torch.Tensor:
    """OLM-S (W, C): the count-weighted standard deviation of the candidates' p."""
    rows = []
    for p, c in zip(candidates, counts):
        w = (c.double() / c.sum())[:, None]
        rows.append((w * (p.double() - _mean(p, c).double()) ** 2).sum(0).sqrt().to(p.dtype))
    return torch.stack(rows)


def _mean(p: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Count-weighted mean over candidates: p (K, C), c (K,) -> (C,)."""
    return ((c.double() / c.sum())[:, None] * p.double()).sum(0).to(p.dtype)
