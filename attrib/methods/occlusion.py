"""Occlusion baselines for text (used with OLM in Harbecke & Alt, 2020): the drop in the class probability
when a word is replaced by the classifier's unknown (or mask) token, or deleted.

    unk     r_i = p(x) - p(x_{i:=[UNK]})
    delete  r_i = p(x) - p(x without word i)

cost = one classifier forward per word (deduplicated with every other candidate of the text).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attrib.data.text import Word, replace_word
from attrib.errors import UsageError
from attrib.methods._registry import TEXT, TextContext, register_method


def unk_token(tokenizer) -> str:
    """The replacement string: the unknown token, else the mask token."""
    token = tokenizer.unk_token or tokenizer.mask_token
    if token is None:
        raise UsageError("the classifier's tokenizer has neither an unknown nor a mask token; use delete or olm")
    return token


def candidates(text: str, words: list[Word], method: str, unk: str | None = None) -> list[str]:
    """One occluded sentence per word."""
    replacement = "" if method == "delete" else unk
    return [replace_word(text, w, replacement) for w in words]


def occlusion(p_original: torch.Tensor, p_occluded: torch.Tensor) -> torch.Tensor:
    """Relevance (W, C) for every class."""
    return p_original[None] - p_occluded


@dataclass(frozen=True)
class OcclusionConfig:
    """Occlusion takes no options."""


def _plan(ctx: TextContext, method: str):
    unk = unk_token(ctx.classifier.tokenizer) if method == "unk" else None
    rows = torch.tensor([ctx.add(t) for t in candidates(ctx.text, ctx.words, method, unk)])
    return lambda p, original: occlusion(p[original], p[rows])


_COMMON = dict(config=OcclusionConfig, inputs=TEXT, rows=lambda c: 0, cost="one classifier forward per word")


@register_method("unk", aliases=("occlusion",), summary="occlusion by the classifier's unknown token", **_COMMON)
def unk_method(ctx: TextContext, config: OcclusionConfig):
    return _plan(ctx, "unk")


@register_method("delete", aliases=("deletion",), summary="occlusion by deleting the word", **_COMMON)
def delete_method(ctx: TextContext, config: OcclusionConfig):
    return _plan(ctx, "delete")
