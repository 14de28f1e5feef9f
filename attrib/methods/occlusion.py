"""Occlusion baselines for text (used with OLM in Harbecke & Alt, 2020): the drop in the class probability
when a word is replaced by the classifier's unknown (or mask) token, or deleted.

    unk     r_i = p(x) - p(x_{i:=[UNK]})
    delete  r_i = p(x) - p(x without word i)

cost = one classifier forward per word (deduplicated with every other candidate of the text).
"""

from __future__ import annotations

import torch

from attrib.data.text import Word, replace_word


def unk_token(tokenizer) -> str:
    """The replacement string: the unknown token, else the mask token."""
    token = tokenizer.unk_token or tokenizer.mask_token
    if token is None:
        raise ValueError("the classifier's tokenizer has neither an unknown nor a mask token; use delete or olm")
    return token


def candidates(text: str, words: list[Word], method: str, unk: str | None = None) -> list[str]:
    """One occluded sentence per word."""
    replacement = "" if method == "delete" else unk
    return [replace_word(text, w, replacement) for w in words]


def occlusion(p_original: torch.Tensor, p_occluded: torch.Tensor) -> torch.Tensor:
    """Relevance (W, C) for every class."""
    return p_original[None] - p_occluded
