"""Targets: what scalar of the model's output an attribution explains.

A target maps the model output of shape (rows, C) to a (rows,) tensor to differentiate. Class targets are
resolved once, at the explained inputs, into one class index per input; every row evaluated for input ``b``
(path points, noisy copies, ...) then explains that same class.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from attrib.errors import UsageError, a_type, counted

TargetSpec = Any  # None | int | Sequence[int] | Target | Callable[[Tensor], Tensor]


class Target:
    """Base class. ``resolve`` fixes per-input state; ``score`` maps row outputs to scalars."""

    versus_classes: list[int] | None = None  # a contrast's other class per input, once resolved

    def resolve(self, outputs: torch.Tensor) -> list[int] | None:
        """Fix the target for inputs whose outputs are ``outputs`` (B, C); return class indices or None."""
        return None

    def score(self, outputs: torch.Tensor, rows_input: torch.Tensor) -> torch.Tensor:
        """Scalar per row; ``rows_input`` (rows,) gives the input each row belongs to."""
        raise NotImplementedError


class ClassLogit(Target):
    """The logit of a class: one index for all inputs, one per input, or ``None`` for the predicted class."""

    def __init__(self, index: int | Sequence[int] | None = None) -> None:
        self.index = index
        self._classes: torch.Tensor | None = None

    def resolve(self, outputs: torch.Tensor) -> list[int]:
        n_inputs, n_classes = _check_outputs(outputs)
        chosen = _per_input(self.index, n_inputs, n_classes, "target")
        predicted = outputs.detach().argmax(dim=1).tolist()
        classes = [predicted[b] if c is None else c for b, c in enumerate(chosen)]
        self._classes = torch.tensor(classes, dtype=torch.long, device=outputs.device)
        return classes

    def _rows_classes(self, outputs: torch.Tensor, rows_input: torch.Tensor) -> torch.Tensor:
        if self._classes is None:
            raise RuntimeError("target used before resolve()")
        return self._classes.to(outputs.device)[rows_input.to(outputs.device)]

    def _values(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs

    def score(self, outputs: torch.Tensor, rows_input: torch.Tensor) -> torch.Tensor:
        classes = self._rows_classes(outputs, rows_input)
        return self._values(outputs).gather(1, classes[:, None])[:, 0]


class ClassProb(ClassLogit):
    """The softmax probability of a class (as the official IG code attributes)."""

    def _values(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().softmax(dim=1)


class Predicted(ClassLogit):
    """The logit of the class the model predicts at each explained input."""

    def __init__(self) -> None:
        super().__init__(None)


RUNNER_UP = "runner-up"  # a contrast's other class: the highest-scoring class other than the one explained


class Contrast(ClassLogit):
    """A class's logit minus another's: under softmax, log p(a) / p(b), what makes the model prefer class a to
    class b ("why a rather than b"); a logit shift shared by all classes cancels. ``versus``: one class, one per
    input (None entries: that input's runner-up), or RUNNER_UP. Where an input's other class is the class
    explained, the runner-up (the highest-scoring class other than the one explained) stands in for it."""

    def __init__(self, index: int | Sequence[int | None] | None = None,
                 versus: int | Sequence[int | None] | str = RUNNER_UP) -> None:
        super().__init__(index)
        self.versus = None if versus == RUNNER_UP else versus
        self._versus: torch.Tensor | None = None

    def resolve(self, outputs: torch.Tensor) -> list[int]:
        classes = super().resolve(outputs)
        if outputs.shape[1] < 2:
            raise UsageError("a contrast needs two classes, and this model has one output: its logit already "
                             "weighs one class against the other")
        wanted = _per_input(self.versus, len(classes), outputs.shape[1], "versus")
        versus = [runner_up(outputs[b], c) if v is None or v == c else v
                  for b, (c, v) in enumerate(zip(classes, wanted))]
        self._versus = torch.tensor(versus, dtype=torch.long, device=outputs.device)
        self.versus_classes = versus
        return classes

    def score(self, outputs: torch.Tensor, rows_input: torch.Tensor) -> torch.Tensor:
        if self._versus is None:
            raise RuntimeError("target used before resolve()")
        versus = self._versus.to(outputs.device)[rows_input.to(outputs.device)]
        return super().score(outputs, rows_input) - outputs.gather(1, versus[:, None])[:, 0]


def runner_up(outputs: torch.Tensor, explained: int) -> int:
    """The highest-scoring class of one output row (C,) other than ``explained``."""
    others = outputs.detach().float().clone()
    others[explained] = -math.inf
    return int(others.argmax())


class CallableTarget(Target):
    """Wraps a user function mapping outputs (rows, C) to (rows,)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.fn = fn

    def score(self, outputs: torch.Tensor, rows_input: torch.Tensor) -> torch.Tensor:
        value = self.fn(outputs)
        if value.shape != (outputs.shape[0],):
            raise ValueError(f"target function must return shape ({outputs.shape[0]},), got {tuple(value.shape)}")
        if not value.is_floating_point():  # argmax, a comparison: no gradient to attribute
            raise ValueError(f"target function must return floating-point scores, got {value.dtype} (a class "
                             "index from argmax, or a comparison, has no gradient: return the score itself)")
        return value


def make_target(spec: TargetSpec, versus: Any = None) -> Target:
    """Turn the public API's ``target`` argument into a fresh Target; with ``versus`` (RUNNER_UP, a class, or one
    per input), the contrast of that class target with it."""
    if versus is not None:
        return _contrast(spec, versus)
    if spec is None:
        return Predicted()
    if isinstance(spec, Contrast):
        return Contrast(spec.index, spec.versus)
    if isinstance(spec, ClassLogit):
        return type(spec)(spec.index) if type(spec) is not Predicted else Predicted()
    if isinstance(spec, Target):
        return spec
    if isinstance(spec, bool | np.bool_):
        raise TypeError("target must be None, an int, a sequence of ints or a callable, not a bool")
    if isinstance(spec, numbers.Integral):  # numpy's integers too
        return ClassLogit(int(spec))
    if isinstance(spec, torch.Tensor | np.ndarray):
        if spec.ndim == 0:
            return ClassLogit(_as_int(spec))
        return ClassLogit([_as_int(i) for i in spec.reshape(-1).tolist()])
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return ClassLogit([_as_int(i) for i in spec])
    if callable(spec):
        return CallableTarget(spec)
    raise TypeError(f"target must be None, an int, a sequence of ints or a callable, not {type(spec).__name__}")


def _contrast(spec: TargetSpec, versus: Any) -> Contrast:
    """The Contrast of a class target (None, a class or one per input) with ``versus``."""
    index = make_target(spec)
    if type(index) not in (ClassLogit, Predicted):
        raise TypeError("versus contrasts two classes' logits: target must then be None, an int or a sequence of "
                        f"ints, not {type(spec).__name__}")
    if isinstance(versus, str) and versus != RUNNER_UP:
        raise TypeError(f"versus must be {RUNNER_UP!r}, an int or a sequence of ints (None: runner-up), "
                        f"got {versus!r}")
    if isinstance(versus, torch.Tensor | np.ndarray):
        versus = _as_int(versus) if versus.ndim == 0 else versus.reshape(-1).tolist()
    if isinstance(versus, Sequence) and not isinstance(versus, str):
        versus = [None if v is None else _as_int(v) for v in versus]
    elif not isinstance(versus, str):
        versus = _as_int(versus)
    return Contrast(index.index, versus)


def as_logits(out: Any) -> torch.Tensor:
    """The model's output as a tensor: itself, or the ``logits`` of a Hugging Face output or a dict."""
    if isinstance(out, torch.Tensor):
        return out
    logits = out.get("logits") if isinstance(out, Mapping) else getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    tensors = [key for key, value in out.items() if isinstance(value, torch.Tensor)] if isinstance(out, Mapping) \
        else []
    pick = f"[{tensors[0]!r}]" if len(tensors) == 1 else "[0]" if isinstance(out, (tuple, list)) else ""
    how = f", e.g. lambda x: model(x){pick}" if pick else ""
    held = f" (its tensors: {', '.join(map(repr, tensors))})" if tensors else ""
    raise TypeError(f"the model returned {a_type(out)}{held}, not a tensor of shape (B, C); wrap it so "
                    f"that it returns one{how}")


SCORE_KINDS = {"softmax": "softmax probability", "sigmoid": "sigmoid probability (a multi-label model)",
               "output": "output (a one-output model)"}


def score_kind(n_outputs: int, multi_label: bool = False) -> str:
    """How a classifier's outputs are read: "softmax", "sigmoid" (multi-label) or "output" (one output)."""
    return "sigmoid" if multi_label else "output" if n_outputs == 1 else "softmax"


def decisions(outputs: torch.Tensor) -> torch.Tensor:
    """The label a classifier gives each input (B, C) -> (B,): the arg-max class, or for a one-output model the
    side of zero its output falls on (1 where output > 0: a binary classifier's logit)."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0).long()
    return outputs.argmax(1)


def read_scores(logits: torch.Tensor, kind: str, dim: int = -1) -> torch.Tensor:
    """Logits read as ``kind`` says: softmax along ``dim``, element-wise sigmoid, or as they are."""
    return logits.softmax(dim) if kind == "softmax" else logits.sigmoid() if kind == "sigmoid" else logits


def _as_int(value: Any) -> int:
    """An int from an int, a numpy integer or a 0-d integer tensor; anything else (bools, floats) is refused."""
    if isinstance(value, torch.Tensor | np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"target classes must be ints, got {value!r}")
    return int(value)


def _per_input(spec: int | Sequence[int | None] | None, n_inputs: int, n_classes: int, what: str
               ) -> list[int | None]:
    """One class (or None) per input from one class, one per input, or None; a UsageError when the count or a
    class is wrong."""
    if spec is None or (isinstance(spec, int) and not isinstance(spec, bool)):
        classes = [spec] * n_inputs
    else:
        classes = [None if i is None else int(i) for i in spec]
        if len(classes) != n_inputs:
            raise UsageError(f"{what} lists {counted(len(classes), 'class', 'classes')} for "
                             f"{counted(n_inputs, 'input')}; give one per input")
    for c in classes:
        if c is not None and not 0 <= c < n_classes:
            has = counted(n_classes, "class", "classes")
            raise UsageError(f"{what} class {c} is out of range: the model has {has} "
                             f"(valid indices 0..{n_classes - 1})")
    return classes


def _check_outputs(outputs: torch.Tensor) -> tuple[int, int]:
    if outputs.ndim != 2:
        one = " (one score per input: give target=lambda out: out)" if outputs.ndim == 1 else ""
        raise ValueError(f"class targets need model outputs of shape (B, C); got {tuple(outputs.shape)}{one}")
    if outputs.shape[1] == 0:
        raise ValueError("the model returns no classes (outputs of shape (B, 0)): a backbone without a head?")
    return outputs.shape[0], outputs.shape[1]


FEW_CLASSES = 20  # a model with at most this many classes has them all named when a label is not found


def parse_class(text: str, labels: list[str]) -> int | None:
    """Resolve a user's class: "pred" -> None, an index, a label name (case-insensitive, any comma-separated
    synonym of ImageNet-style labels; else with underscores read as spaces, :func:`_loose`) or, for a model of ImageNet-1k's 1000 classes, its WordNet id
    ("n02123045", as ImageNet's folders are named); UsageError with suggestions on a miss, and with the
    candidates when a name belongs to several classes (ImageNet has two "crane"s)."""
    text = str(text).strip()
    if text.lower() in ("pred", "predicted", ""):
        return None
    if len(labels) == IMAGENET_CLASSES and WORDNET_ID.match(text):
        index = imagenet_ids().get(text)
        if index is None:
            raise UsageError(f"{text!r} is not the WordNet id of an ImageNet-1k class")
        return index
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(labels):
            has = counted(len(labels), "class", "classes")
            raise UsageError(f"target {index} is out of range: the model has {has} "
                             f"(valid indices 0..{len(labels) - 1})")
        return index
    names = _label_names(tuple(labels))
    found = names.get(text.lower()) or _loose_names(tuple(labels)).get(_loose(text))
    if found and len(found) > 1:
        listed = ", ".join(f"{i} ({labels[i]})" for i in found)
        raise UsageError(f"target label {text!r} names {len(found)} classes: {listed}; give the class index")
    if found:
        return found[0]
    hint = _suggestions(text.lower(), names)
    listed = f": {', '.join(labels)}" if len(labels) <= FEW_CLASSES else ""
    raise UsageError(f"unknown target label {text!r}{hint} (use pred, a class index or a label name{listed})")


@functools.lru_cache(maxsize=8)
def _label_names(labels: tuple[str, ...]) -> dict[str, list[int]]:
    """Every name a class answers to (its label and each comma-separated synonym, lower case) -> its indices;
    built once per label set (an image's folder is parsed per image: 3 ms each for ImageNet's labels)."""
    names: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        for name in {label.strip().lower(), *(part.strip().lower() for part in label.split(","))}:
            names.setdefault(name, []).append(i)
    return names


IMAGENET_CLASSES = 1000
WORDNET_ID = re.compile(r"^n\d{8}$")
LEADING_WORDNET_ID = re.compile(r"^(n\d{8})(?:[\s_-]|$)")


def leading_wordnet_id(text: str) -> str | None:
    """The WordNet id a text starts with, followed by a space, "-" or "_" or nothing: Stanford Dogs' folders
    ("n02085620-Chihuahua"), Kaggle's ImageNet PredictionString ("n01751748 187 55 448 351 ..."); else None."""
    found = LEADING_WORDNET_ID.match(text.strip())
    return found.group(1) if found else None


@functools.cache
def imagenet_ids() -> dict[str, int]:
    """ImageNet-1k's WordNet ids ("n01440764") by class index, the order every ImageNet-1k model uses."""
    from timm.data import ImageNetInfo

    return {name: i for i, name in enumerate(ImageNetInfo().label_names())}


def _loose(name: str) -> str:
    """A name as written loosely: lower case, underscores as spaces, runs of spaces as one (folders and Keras'
    ImageNet index say "golden_retriever" for "golden retriever")."""
    return " ".join(name.lower().replace("_", " ").split())


@functools.lru_cache(maxsize=8)
def _loose_names(labels: tuple[str, ...]) -> dict[str, list[int]]:
    """:func:`_label_names` by their :func:`_loose` forms, for names that match no label as they are."""
    loose: dict[str, list[int]] = {}
    for name, indices in _label_names(labels).items():
        found = loose.setdefault(_loose(name), [])
        found.extend(i for i in indices if i not in found)
    return loose


def _suggestions(text: str, names: dict[str, list[int]]) -> str:
    """Up to five names holding the word (a 'cat' finds 'tabby cat'), else up to three that look alike."""
    import difflib

    holding = [name for name in names if "," not in name and text in name.split()][:5]
    close = holding or difflib.get_close_matches(text, list(names), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
