"""Hugging Face text models behind two small interfaces the text methods use.

``TextClassifier.scores(texts)`` scores strings (batched, inference mode) as the model's head is meant to be
read: softmax probabilities, sigmoid probabilities for a multi-label model, the raw output of a one-output
(regression) model; ``.target(c)`` is the same score as a target for the gradient methods, and
``.embedding_forward`` gives them a function of the input embeddings. ``MaskedLM.word_distributions(text,
words)`` gives, for each word, the LM's distribution over replacement words when that word is masked.

Replacement vocabulary (a documented choice): only whole-word vocabulary entries can be drawn. Special tokens,
"[unusedN]"/"<...>" entries, WordPiece continuations ("##ing") and, for BPE/SentencePiece vocabularies, pieces
that do not start a word get probability 0, and the rest is renormalised. A word spanning several LM tokens is
replaced by a single mask (as the official OLM code does).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attrib.data.text import TextInput, Word, replace_word
from attrib.errors import first_line
from attrib.models.base import ModelError, check_finite, hub_unreachable
from attrib.models.checkpoint import folder_weights
from attrib.models.hf_models import check_folder, from_pretrained_checked, home_expanded, multi_label, wrong_kind
from attrib.models.registry import claimed_by
from attrib.targets import SCORE_KINDS, ClassLogit, ClassProb, read_scores, score_kind

DEFAULT_LM = "bert-base-uncased"
TASKS = {"AutoModelForSequenceClassification": "a sequence classifier",
         "AutoModelForMaskedLM": "a masked language model"}
HINTS = {"AutoModelForSequenceClassification": "an image classifier? explain it with `attrib explain`",
         "AutoModelForMaskedLM": "--lm takes a masked language model such as bert-base-uncased"}
IMAGE_MODELS = {"default": "the built-in image model", "timm": "a timm model", "sample": "a sample image model",
                "torchvision": "a torchvision model", "tv": "a torchvision model", "py": "your code's image model"}
_SPECIAL = re.compile(r"^(\[.*\]|<.*>)$")


def _load(kind: str, spec: str, trust_remote_code: bool):
    """(model, tokenizer) from a hub id or a local folder; one-line ModelError when that cannot work."""
    import transformers

    name = home_expanded((spec[3:] if spec.startswith("hf:") else spec).strip())
    if not name:
        raise ModelError(f"{spec!r} names no model: give {TASKS[kind]} as a Hugging Face hub id or a local folder "
                         "saved with save_pretrained")
    image_model = None if Path(name).exists() else IMAGE_MODELS.get(claimed_by(spec), None)
    if image_model:
        raise ModelError(f"{spec!r} names {image_model} (for `attrib explain`, `sanity` or `diffroar`), not "
                         f"{TASKS[kind]}: give a Hugging Face hub id or a local save_pretrained folder")
    auto = getattr(transformers, kind)
    check_folder(name)
    try:
        model = from_pretrained_checked(auto, name, TASKS[kind], trust_remote_code=trust_remote_code)
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        wrong_kind(error, name, TASKS[kind], HINTS[kind])
        where = "the folder" if Path(name).is_dir() else "the Hugging Face hub (offline?)"
        raise ModelError(f"cannot load {name!r} as {kind[12:]} from {where}: {first_line(error, 160)}; pass a local "
                         f"folder saved with save_pretrained instead{hub_unreachable(error)}") from None
    if not tokenizer.is_fast:
        raise ModelError(f"{name}: attrib needs a fast tokenizer (character offsets) and this one is not")
    check_finite(model, name)
    return model.eval(), tokenizer


@dataclass
class TextClassifier:
    """A sequence classifier and its tokenizer."""

    model: torch.nn.Module
    tokenizer: object
    name: str
    batch_size: int = 64
    device: str = "cpu"
    names: list[str] | None = None  # the classes' names from a --labels file (default: the config's id2label)

    def __post_init__(self) -> None:
        self.max_tokens = token_limit(self.model, self.tokenizer)
        pad_right(self.model, self.tokenizer, self.name)
        quiet = logging.getLogger(type(self.model).__module__)  # the logger transformers' modelling code writes to
        if not any(isinstance(f, _UnpaddedEmbeddings) for f in quiet.filters):
            quiet.addFilter(_UnpaddedEmbeddings())

    @property
    def labels(self) -> list[str]:
        if self.names:
            return list(self.names)
        id2label = getattr(self.model.config, "id2label", None) or {}
        return [str(id2label.get(i, f"class {i}")) for i in range(self.model.config.num_labels)]

    def describe(self) -> dict[str, Any]:
        """The classifier as run records hold it; a local folder's weights by digest (retrained in place, it is
        another model to a run folder)."""
        weights = folder_weights(self.name)
        return {"name": self.name, "kind": "text", "n_classes": len(self.labels), "labels": self.labels,
                **({"weights": weights} if weights else {})}

    def encode(self, texts: list[TextInput]) -> dict[str, torch.Tensor]:
        batch = tokenize(self.tokenizer, texts, padding=True, truncation=True, max_length=self.max_tokens,
                         return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    @property
    def score_kind(self) -> str:
        """How the head's outputs are read: "softmax", "sigmoid" (multi-label) or "output" (one output)."""
        return score_kind(self.model.config.num_labels, multi_label(self.model.config))

    @property
    def score_name(self) -> str:
        return SCORE_KINDS[self.score_kind]

    @torch.inference_mode()
    def scores(self, texts: list[TextInput]) -> torch.Tensor:
        """Each class's score (len(texts), C), in float32 on the CPU (see ``score_kind``)."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            logits = self.model(**self.encode(texts[start:start + self.batch_size])).logits
            out.append(read_scores(logits.float(), self.score_kind).cpu())
        return torch.cat(out) if out else torch.empty(0, len(self.labels))

    def target(self, index: int, versus: int | None = None):
        """Class ``index``'s score (minus class ``versus``'s) as a target of the model's logits, for the gradient
        methods."""
        if versus is not None:
            kind = self.score_kind
            return lambda logits: read_scores(logits.float(), kind)[:, index] - read_scores(logits.float(), kind)[
                :, versus]
        if self.score_kind == "softmax":
            return ClassProb(index)
        if self.score_kind == "output":
            return ClassLogit(index)
        return lambda logits: logits[:, index].float().sigmoid()

    def token_words(self, text: TextInput, words: list[Word]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The encoded text and, per token, the index of the word it lies in (-1 for special tokens)."""
        batch = tokenize(self.tokenizer, [text], truncation=True, max_length=self.max_tokens, return_tensors="pt",
                         return_offsets_mapping=True)
        offsets, segments = batch.pop("offset_mapping")[0].tolist(), batch.sequence_ids(0)
        owner = [_word_at(words, start, end, segment) for (start, end), segment in zip(offsets, segments)]
        return {k: v.to(self.device) for k, v in batch.items()}, torch.tensor(owner)

    def embedding_forward(self, batch: dict[str, torch.Tensor]):
        """(input embeddings (1, T, D), f) with f mapping embeddings (R, T, D) to logits (R, C)."""
        embed = self.model.get_input_embeddings()
        embeddings = embed(batch["input_ids"]).detach()
        rest = {k: v for k, v in batch.items() if k != "input_ids"}

        def forward(e: torch.Tensor) -> torch.Tensor:
            expanded = {k: v.expand(len(e), *v.shape[1:]) for k, v in rest.items()}
            # a copy: DeBERTa-v2 of transformers 4.40 adds its position embeddings to inputs_embeds in place
            return self.model(inputs_embeds=e.clone(), **expanded).logits

        return embeddings, forward


class _UnpaddedEmbeddings(logging.Filter):
    """Drops transformers' warning that a decoder's classifier cannot find padding in ``inputs_embeds``: the
    gradient methods give it one text's embeddings, which hold no padding, so its last position is the text's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "padding tokens in `inputs_embeds`" not in record.getMessage()


def _word_at(words: list[Word], start: int, end: int, segment: int | None) -> int:
    """The index of the word of text ``segment`` that the character span overlaps (-1: none, or a special token,
    whose segment is None)."""
    if start == end or segment is None:
        return -1
    for i, w in enumerate(words):
        if w.segment == segment and start < w.end and end > w.start:
            return i
    return -1


def tokenize(tokenizer, texts: list[TextInput], **kwargs):
    """The tokenizer's batch of ``texts``: strings, or (text, pair) tuples encoded as pairs (all of one kind)."""
    if texts and isinstance(texts[0], tuple):
        first, second = zip(*texts)
        return tokenizer(list(first), list(second), **kwargs)
    return tokenizer(list(texts), **kwargs)


@dataclass
class MaskedLM:
    """A masked language model used to draw replacement words."""

    model: torch.nn.Module
    tokenizer: object
    name: str
    device: str = "cpu"
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.tokenizer.mask_token is None:
            raise ModelError(f"{self.name} has no mask token: --lm must be a masked language model")
        self._allowed = allowed_replacements(self.tokenizer)
        if not self._allowed.any():
            raise ModelError(f"{self.name}: no entry of its vocabulary can replace a whole word (all are special "
                             "tokens or word pieces): --lm must be a masked language model with a word vocabulary")
        self._strings: dict[int, str] = {}
        self.max_tokens = token_limit(self.model, self.tokenizer)
        pad_right(self.model, self.tokenizer, self.name)

    @torch.inference_mode()
    def word_distributions(self, text: TextInput, words: list[Word]) -> tuple[torch.Tensor, "Vocab"]:
        """For each word, the LM's probabilities (W, V) over whole-word replacements at its position (a text with
        a pair is read as a pair: BERT was trained on sentence pairs)."""
        masked = [replace_word(text, w, self.tokenizer.mask_token) for w in words]
        rows = []
        for start in range(0, len(masked), self.batch_size):
            batch = tokenize(self.tokenizer, masked[start:start + self.batch_size], padding=True, truncation=True,
                             max_length=self.max_tokens, return_tensors="pt").to(self.device)
            logits = self.model(**batch).logits
            first_mask = (batch["input_ids"] == self.tokenizer.mask_token_id).int().argmax(1)
            rows.append(logits[torch.arange(len(first_mask)), first_mask].float().cpu())
        logits = torch.cat(rows)
        logits[:, ~self._allowed[:logits.shape[1]]] = float("-inf")
        return logits.softmax(-1), Vocab(self)

    def string(self, token_id: int) -> str:
        if token_id not in self._strings:
            token = self.tokenizer.convert_ids_to_tokens(token_id)
            self._strings[token_id] = self.tokenizer.convert_tokens_to_string([token]).strip()
        return self._strings[token_id]


class Vocab:
    """Maps a sampled id to its replacement string (lazily)."""

    def __init__(self, lm: MaskedLM) -> None:
        self.lm = lm

    def __getitem__(self, token_id: int) -> str:
        return self.lm.string(token_id)


def pad_right(model, tokenizer, name: str) -> None:
    """Batches are padded on the right, so that every text's tokens keep the positions they have alone (left
    padding, the default of Llama's and Qwen's tokenizers, shifts them and changes the scores), with a pad token
    the model's config knows too: a decoder's classifier (GPT-2, Llama) reads each text's last token that is not
    padding, found through ``config.pad_token_id``, and refuses batches without one. Tokenizers with no pad
    token pad with the model's pad token, else their end-of-text token, as Hugging Face advises."""
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        pad_id = getattr(model.config, "pad_token_id", None)
        pad_id = tokenizer.eos_token_id if pad_id is None else pad_id
        if pad_id is None:
            raise ModelError(f"{name}: its tokenizer has neither a padding nor an end-of-text token, so texts "
                             "cannot be batched; save the tokenizer with a pad_token")
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(int(pad_id))
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id


def token_limit(model, tokenizer) -> int:
    """The most tokens (special ones included) the model reads: its tokenizer's limit, else its position table's."""
    limits = [position_limit(model) or 10**9]
    if tokenizer.model_max_length < 10**6:  # tokenizers without a limit say 1e30
        limits.append(tokenizer.model_max_length)
    return min(limits)


def position_limit(model) -> int | None:
    """The positions the model's table holds: a table with a padding row numbers positions after it (RoBERTa
    and its kin: 514 rows, padding index 1, 512 positions); else the config's max_position_embeddings."""
    table = getattr(getattr(model.base_model, "embeddings", None), "position_embeddings", None)
    if isinstance(table, torch.nn.Embedding):
        return table.num_embeddings - (0 if table.padding_idx is None else table.padding_idx + 1)
    return getattr(model.config, "max_position_embeddings", None)


def words_within(models, text: str, words: list[Word]) -> int:
    """How many of ``text``'s leading words every model in ``models`` reads whole: the words that end before the
    first token past a model's ``max_tokens`` (models without one read everything)."""
    fit = len(words)
    for model in (m for m in models if getattr(m, "max_tokens", None)):
        tokenizer = model.tokenizer
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                            verbose=False)["offset_mapping"]
        room = model.max_tokens - tokenizer.num_special_tokens_to_add(pair=False)
        if len(offsets) > room:
            fit = min(fit, sum(w.end <= offsets[max(room, 0)][0] for w in words))
    return fit


def pair_overflow(models, pair: tuple[str, str]) -> tuple[int, int] | None:
    """(tokens, limit) for the first model in ``models`` that cannot read a text and its pair whole (special
    tokens included); None when every model can."""
    for model in (m for m in models if getattr(m, "max_tokens", None)):
        tokens = len(model.tokenizer(*pair, verbose=False)["input_ids"])
        if tokens > model.max_tokens:
            return tokens, model.max_tokens
    return None


def allowed_replacements(tokenizer) -> torch.Tensor:
    """Bool (V,): the vocabulary entries that can replace a whole word (see the module docstring)."""
    vocab = tokenizer.get_vocab()
    allowed = torch.zeros(max(len(tokenizer), max(vocab.values()) + 1), dtype=torch.bool)
    special = set(tokenizer.all_special_ids)
    word_start = _word_start_marker(vocab)
    for token, index in vocab.items():
        if index in special or _SPECIAL.match(token) or token.startswith("##"):
            continue
        if word_start and not token.startswith(word_start):
            continue
        allowed[index] = bool(token.strip(word_start or "").strip())
    return allowed


def _word_start_marker(vocab: dict[str, int]) -> str | None:
    """"Ġ" for byte-level BPE, "▁" for SentencePiece, None for WordPiece (which marks continuations instead)."""
    for marker in ("Ġ", "▁"):
        if sum(t.startswith(marker) for t in vocab) > len(vocab) // 10:
            return marker
    return None


def load_text_classifier(spec: str, *, trust_remote_code: bool = False, batch_size: int = 64,
                         device: str = "cpu", labels: str | None = None) -> TextClassifier:
    """A sequence classifier; ``labels``: a file naming its classes (many fine-tuned models only say LABEL_0)."""
    from attrib.models.registry import read_labels

    model, tokenizer = _load("AutoModelForSequenceClassification", spec, trust_remote_code)
    names = read_labels(labels, model.config.num_labels) if labels else None
    return TextClassifier(model.to(device), tokenizer, spec, batch_size, device, names)


def load_masked_lm(spec: str | None = None, *, trust_remote_code: bool = False, device: str = "cpu") -> MaskedLM:
    model, tokenizer = _load("AutoModelForMaskedLM", spec or DEFAULT_LM, trust_remote_code)
    return MaskedLM(model.to(device), tokenizer, spec or DEFAULT_LM, device)
