"""The explain-text job: texts x methods -> one relevance per word, for the explained class.

Forward-only methods (olm, olm_s, unk, delete) put every candidate sentence of a text into one deduplicated
list that the classifier scores in batches under inference mode; identical candidates are scored once and
weighted by their counts. Gradient methods (gradient, gradient_x_input, ig) run through ``attrib.attribute`` on
the input embeddings (IG from the zero embedding) and are summed over embedding dimensions and over the
sub-word tokens of each word. All scores explain the softmax probability of the target class.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from attrib.data.text import TextInputError, TextItem, Word, replace_word, split_words
from attrib.methods import occlusion
from attrib.methods.olm import olm, olm_s, sample_counts

TEXT_METHODS = {
    "olm": "OLM: expected drop in p when the word is resampled by a masked LM",
    "olm_s": "OLM-S: standard deviation of p over the LM's replacements",
    "unk": "occlusion by the classifier's unknown token",
    "delete": "occlusion by deleting the word",
    "gradient": "gradient of p w.r.t. the input embeddings, summed per word",
    "gradient_x_input": "gradient x embedding, summed per word",
    "ig": "integrated gradients from the zero embedding, summed per word",
}
ALIASES = {"olm-s": "olm_s", "olms": "olm_s", "integrated_gradients": "ig", "grad": "gradient",
           "gxi": "gradient_x_input", "occlusion": "unk", "deletion": "delete"}
NEEDS_LM = {"olm", "olm_s"}
GRADIENT = {"gradient", "gradient_x_input", "ig"}


def canonical_method(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in TEXT_METHODS:
        raise ValueError(f"unknown text method {name!r}; choose from {', '.join(TEXT_METHODS)}")
    return key


@dataclass
class TextOptions:
    methods: list[str]
    n_samples: int = 100
    n_steps: int = 100
    seed: int = 0
    target: int | None = None  # None: the predicted class (a row's gold label overrides)


class _Unique:
    """Candidate sentences, each stored once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def add(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))

    @property
    def texts(self) -> list[str]:
        return list(self.index)


def explain_one(classifier, lm, item: TextItem, position: int, options: TextOptions) -> dict[str, Any]:
    """Scores of every method for one text; TextInputError for an empty text or a bad gold label."""
    start = time.perf_counter()
    words = split_words(item.text)
    if not words:
        raise TextInputError(f"{item.name}: empty text (no words to explain)")
    unique = _Unique()
    original = unique.add(item.text)
    plans = _forward_plans(classifier, lm, item.text, words, position, options, unique)
    probs = classifier.probabilities(unique.texts)
    target = _target(item, options, probs[original], classifier.labels)
    scores = {m: fn(probs, original)[:, target].tolist() for m, fn in plans.items()}
    for method in (m for m in options.methods if m in GRADIENT):
        scores[method] = gradient_scores(classifier, item.text, words, method, target, options).tolist()
    labels = classifier.labels
    top = int(probs[original].argmax())
    return {"name": item.name, "text": item.text, "words": [w.text for w in words], "status": "ok", "error": None,
            "prediction": {"index": top, "label": labels[top], "prob": float(probs[original, top])},
            "target": target, "target_label": labels[target], "target_prob": float(probs[original, target]),
            "scores": {m: scores[m] for m in options.methods}, "candidates": len(unique.index),
            "seconds": round(time.perf_counter() - start, 3)}


def _forward_plans(classifier, lm, text: str, words: list[Word], position: int, options: TextOptions,
                   unique: _Unique) -> dict[str, Callable[[torch.Tensor, int], torch.Tensor]]:
    """Register every forward-only candidate; return, per method, a function of the scored probabilities."""
    plans: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {}
    if NEEDS_LM & set(options.methods):
        ids, counts = _olm_candidates(lm, text, words, position, options, unique)
        if "olm" in options.methods:
            plans["olm"] = lambda p, o: olm(p[o], [p[i] for i in ids], counts)
        if "olm_s" in options.methods:
            plans["olm_s"] = lambda p, o: olm_s([p[i] for i in ids], counts)
    for method in ("unk", "delete"):
        if method in options.methods:
            unk = occlusion.unk_token(classifier.tokenizer) if method == "unk" else None
            rows = torch.tensor([unique.add(t) for t in occlusion.candidates(text, words, method, unk)])
            plans[method] = lambda p, o, rows=rows: occlusion.occlusion(p[o], p[rows])
    return plans


def _olm_candidates(lm, text, words, position, options, unique):
    """Per word: the candidate rows and their counts (identical sentences merge their counts)."""
    probs, vocab = lm.word_distributions(text, words)
    ids, counts = [], []
    for word, drawn in zip(words, sample_counts(probs, options.n_samples, options.seed, position)):
        merged: dict[int, int] = {}
        for token, count in drawn.items():
            row = unique.add(replace_word(text, word, vocab[token]))
            merged[row] = merged.get(row, 0) + count
        ids.append(torch.tensor(list(merged)))
        counts.append(torch.tensor(list(merged.values())))
    return ids, counts


def _target(item: TextItem, options: TextOptions, p: torch.Tensor, labels: list[str]) -> int:
    from attrib.targets import parse_class

    if item.label is not None:
        try:
            value = parse_class(item.label, labels)
        except ValueError as error:
            raise TextInputError(f"{item.name}: gold label: {error}") from None
        if value is not None:
            return value
    return int(p.argmax()) if options.target is None else options.target


def gradient_scores(classifier, text: str, words: list[Word], method: str, target: int,
                    options: TextOptions) -> torch.Tensor:
    """Per-word sums of an embedding-gradient attribution of the target's probability."""
    from attrib.api import attribute
    from attrib.targets import ClassProb

    if not hasattr(classifier, "embedding_forward"):
        raise ValueError(f"{method} needs a Hugging Face classifier with input embeddings")
    batch, owner = classifier.token_words(text, words)
    embeddings, forward = classifier.embedding_forward(batch)
    config = {"n_steps": options.n_steps, "baseline": "zero"} if method == "ig" else {}
    name = "integrated_gradients" if method == "ig" else method
    values = attribute(forward, embeddings, name, ClassProb(target), seed=options.seed, **config).values[0]
    per_token = values.sum(-1)
    keep = owner >= 0
    return torch.zeros(len(words)).index_add_(0, owner[keep], per_token[keep].float())


def run_explain_text(classifier, lm, items: list[TextItem], options: TextOptions,
                     on_done: Callable[[dict], None] = lambda entry: None) -> list[dict[str, Any]]:
    """Explain each item; a bad item is recorded with its reason and the rest go on."""
    entries = []
    for position, item in enumerate(items):
        try:
            entry = explain_one(classifier, lm, item, position, options)
        except TextInputError as error:
            entry = {"name": item.name, "text": item.text, "status": "error", "error": str(error)}
        entries.append(entry)
        on_done(entry)
    return entries
