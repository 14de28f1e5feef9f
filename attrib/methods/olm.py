"""OLM and OLM-S (Harbecke & Alt, 2020): occlusion with replacements drawn from a masked language model.

For word i, a masked LM proposes replacements at its position; n draws (with replacement) are grouped into
candidates t with counts c_t (sum c_t = n), and the classifier scores each candidate sentence x_{i:=t}:

    OLM    r_i = p(x) - sum_t (c_t / n) p(x_{i:=t})            (expected drop in the class probability)
    OLM-S  s_i = sqrt( sum_t (c_t / n) (p(x_{i:=t}) - mean)^2 )  (how much the class probability varies)

cost = one LM forward per word + one classifier forward per distinct candidate (deduplicated per text).
Draws for word i of text j come from their own generator keyed by (seed, j, i): batch sizes do not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attrib.data.text import replace_word
from attrib.methods._registry import TEXT, TextContext, register_method
from attrib.rng import Stream, generator

COST = "one masked-LM forward per word + one classifier forward per distinct candidate sentence"


@dataclass(frozen=True)
class OLMConfig:
    """Attributes:
        n_samples: replacements drawn from the masked LM per word (the paper: 100).
    """

    n_samples: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {self.n_samples!r}")


def sample_counts(probs: torch.Tensor, n_samples: int, seed: int, text_index: int) -> list[dict[int, int]]:
    """Per word, {replacement id: count} from n draws of its distribution (rows of ``probs``, (W, V))."""
    out = []
    for i, row in enumerate(probs):
        draws = torch.multinomial(row.double(), n_samples, replacement=True,
                                  generator=generator(seed, Stream.OLM_DRAWS, text_index, i))
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


def lm_candidates(ctx: TextContext, n_samples: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per word: the candidate rows and their counts (identical sentences merge their counts). Computed once
    per text and shared by olm and olm_s (the same draws)."""
    key = f"olm/{n_samples}"
    if key not in ctx.cache:
        probs, vocab = ctx.lm.word_distributions(ctx.text, ctx.words)
        ids, counts = [], []
        for word, drawn in zip(ctx.words, sample_counts(probs, n_samples, ctx.seed, ctx.position)):
            merged: dict[int, int] = {}
            for token, count in drawn.items():
                row = ctx.add(replace_word(ctx.text, word, vocab[token]))
                merged[row] = merged.get(row, 0) + count
            ids.append(torch.tensor(list(merged)))
            counts.append(torch.tensor(list(merged.values())))
        ctx.cache[key] = ids, counts
    return ctx.cache[key]


_COMMON = dict(config=OLMConfig, inputs=TEXT, needs=("lm",), rows=lambda c: 0, stochastic=True, knob="n_samples",
               cost=COST, smoke={"n_samples": 8})


@register_method("olm", summary="expected drop in p when the word is resampled by a masked LM", **_COMMON)
def olm_method(ctx: TextContext, config: OLMConfig):
    ids, counts = lm_candidates(ctx, config.n_samples)
    return lambda p, original: olm(p[original], [p[i] for i in ids], counts)


@register_method("olm_s", aliases=("olms",), signed=False,
                 summary="standard deviation of p over the masked LM's replacements", **_COMMON)
def olm_s_method(ctx: TextContext, config: OLMConfig):
    ids, counts = lm_candidates(ctx, config.n_samples)
    return lambda p, original: olm_s([p[i] for i in ids], counts)
