"""The method registry: a leaf module (it imports no method and nothing above ``attrib.errors``).

Each method lives in its own module and registers itself with :func:`register_method`. ``METHODS`` maps
canonical names and aliases to :class:`MethodSpec`; an unknown name raises :class:`UnknownMethodError` listing
the valid ones. A spec carries everything other code needs to know about its method (what it consumes, what it
costs, its reduced budget for sanity reports), so no code outside the method's module names it.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from attrib.errors import UsageError

if TYPE_CHECKING:
    from attrib.engine import Engine
    from attrib.targets import Target

TENSOR, TEXT = "tensor", "text"
NEEDS = {"background": "reference inputs (Expected Gradients' data set)",
         "lm": "a masked language model proposing replacement words"}


@dataclass
class Context:
    """What a tensor method sees: the engine, the inputs (on the engine's device), a resolved target, the seed,
    and ``keys`` (B,): the key of each input's random draws (its position unless the caller says otherwise, so
    that an input explained inside a batch can draw exactly what it draws alone)."""

    engine: Engine
    inputs: torch.Tensor
    target: Target
    seed: int
    keys: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.keys is None:
            import torch

            self.keys = torch.arange(len(self.inputs))
        self.keys = self.keys.to(self.inputs.device)  # rows are indexed on the compute device


@dataclass
class TextContext:
    """What a text method sees for one text.

    Attributes:
        text: the original string, or a (text, pair) tuple of strings read together (attrib.data.text.TextInput);
            ``words`` its words (attrib.data.text.Word, with character spans and the index of their text).
        position: the text's index in the run (keys its random draws).
        classifier, lm: the text classifier and the masked LM (None unless the method needs "lm").
        add: registers a candidate sentence to be scored, returning its row in the probabilities.
        cache: shared by the methods of one text (e.g. the LM's replacement distributions, computed once).
    """

    text: str | tuple[str, str]
    words: list
    position: int
    seed: int
    classifier: Any
    lm: Any
    add: Callable[[str | tuple[str, str]], int]
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodOutput:
    """A tensor method's result: attributions (B, ...) and, for path methods, the reference score F(x')."""

    values: torch.Tensor
    reference_scores: torch.Tensor | None = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: canonical name (the one used in every record and output).
        fn: tensor methods: ``fn(Context, config) -> MethodOutput``; text methods: ``fn(TextContext, config)``
            returning ``scores(probs (N, C), original_row) -> (words, C)`` over the registered candidates.
        config: the frozen config dataclass.
        aliases: other names.
        signed: whether values carry a meaningful sign (a bool, or a function of the config).
        cost: the cost formula in words, e.g. "n_steps x (forward + input-backward)".
        rows: forward + input-backward rows per input for a config (0 for forward-only text methods).
        stochastic: whether the result depends on the seed.
        summary: one line for listings.
        inputs: "tensor" (images, vectors, embeddings: through the engine) or "text" (strings, forward-only).
        needs: what the caller must supply beyond the inputs (keys of ``NEEDS``).
        reference: whether it returns F at a reference, so that a completeness gap is defined.
        knob: the option that sets its cost (n_steps, n_samples), if any.
        budget: reduced options for reports that recompute every map many times (``attrib sanity``).
        smoke: the smallest options that still exercise the method (registry-wide tests, quick runs).
        call_rows: for a method that works in rounds (adaptive IG), about the rows one input sends to each
            engine call, for a config (None: ``rows``, all in one call); callers size batches by it.
    """

    name: str
    fn: Callable[..., Any]
    config: type
    aliases: tuple[str, ...]
    signed: bool | Callable[[Any], bool]
    cost: str
    rows: Callable[[Any], int]
    stochastic: bool
    summary: str
    inputs: str = TENSOR
    needs: tuple[str, ...] = ()
    reference: bool = False
    knob: str | None = None
    budget: Mapping[str, Any] = field(default_factory=dict)
    smoke: Mapping[str, Any] = field(default_factory=dict)
    call_rows: Callable[[Any], int] | None = None

    def rows_per_call(self, config: Any) -> int:
        """About the rows one input sends to one engine call under ``config`` (see ``call_rows``)."""
        return (self.call_rows or self.rows)(config)

    def is_signed(self, config: Any) -> bool:
        """Whether this method's values, under ``config``, are signed."""
        return bool(self.signed(config)) if callable(self.signed) else bool(self.signed)

    def option_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.config)]

    def _types(self) -> dict[str, str]:
        """Each option's declared type as written ("int | None"), for :func:`_check_type`."""
        return {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
                for f in dataclasses.fields(self.config)}

    def make_config(self, **overrides: Any) -> Any:
        """The config with ``overrides`` applied; a bad key or value raises a UsageError naming the valid ones."""
        valid = self.option_names()
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise UsageError(f"unknown option(s) {', '.join(unknown)} for method {self.name!r}; "
                             f"valid options: {', '.join(valid) or '(none)'}")
        overrides = {name: _plain(value) for name, value in overrides.items()}
        types = self._types()
        for name, value in overrides.items():
            _check_type(self.name, name, value, types[name])
        try:
            return self.config(**overrides)
        except UsageError:
            raise
        except (ValueError, TypeError) as error:
            raise UsageError(f"{self.name}: {error}") from None


def _plain(value: Any) -> Any:
    """A numpy scalar as the plain number it holds; a numpy array (a baseline, a background) as a tensor."""
    if isinstance(value, np.generic):
        return value.item()
    return torch.tensor(value) if isinstance(value, np.ndarray) else value


def _check_type(method: str, name: str, value: Any, annotation: str) -> None:
    """A UsageError when an option declared bool, int or float is given another kind of value (``abs="yes"``
    would be truthy; ``n_samples=2.5`` or ``True`` a count); None where the declaration allows it."""
    kinds = {part.strip() for part in annotation.split("|")}
    if value is None and "None" in kinds:
        return
    wanted = next((kind for kind in ("bool", "float", "int") if kind in kinds), None)  # "int | float": a number
    ok = {"bool": lambda v: isinstance(v, bool),
          "int": lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)}
    if wanted and not ok[wanted](value):
        noun = {"bool": "True or False", "int": "an integer", "float": "a number"}[wanted]
        raise UsageError(f"{method}: {name} must be {noun}, got {value!r}")


class UnknownMethodError(UsageError, KeyError):
    """An unknown method name (a UsageError for the CLI, a KeyError for dict lookups)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Mapping):
    """Name -> MethodSpec with aliases resolved; iterates over canonical names only."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] = {}
        self._aliases: dict[str, str] = {}

    def add(self, spec: MethodSpec) -> None:
        for key in (spec.name, *spec.aliases):
            if key in self._aliases:
                warnings.warn(f"method name {key!r} registered again; the new one replaces it", stacklevel=3)
            self._aliases[key] = spec.name
        self._specs[spec.name] = spec

    def remove(self, name: str) -> None:
        """Unregister a method and its aliases (tests that register throwaway methods clean up with this)."""
        spec = self._specs.pop(self.canonical(name))
        for key in (spec.name, *spec.aliases):
            self._aliases.pop(key, None)

    def canonical(self, name: str, inputs: str | None = None) -> str:
        """The canonical name for a name, an alias or a registry entry; ``inputs`` restricts to methods that take
        that kind."""
        key = (name.name if isinstance(name, MethodSpec) else str(name)).strip().lower().replace("-", "_")
        if key in self._aliases and inputs and self._specs[self._aliases[key]].inputs != inputs:
            kind = self._specs[self._aliases[key]].inputs
            where = "`attrib explain-text`" if kind == TEXT else "`attrib explain` or attrib.attribute"
            raise UnknownMethodError(f"{name!r} explains {kind} inputs, not {inputs}s: use it with {where}; "
                                     f"valid methods here: {self.names_with_aliases(inputs)}")
        if key not in self._aliases:
            raise UnknownMethodError(f"unknown method {name!r}; valid methods: {self.names_with_aliases(inputs)}")
        return self._aliases[key]

    def names_with_aliases(self, inputs: str | None = None) -> str:
        return ", ".join(s.name + (f" ({', '.join(s.aliases)})" if s.aliases else "")
                         for s in self._specs.values() if inputs is None or s.inputs == inputs)

    def of_kind(self, inputs: str) -> list[str]:
        """Canonical names of the methods that take ``inputs`` ("tensor" or "text")."""
        return [n for n, s in self._specs.items() if s.inputs == inputs]

    def __getitem__(self, name: str) -> MethodSpec:
        return self._specs[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and str(name).strip().lower().replace("-", "_") in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


METHODS = Registry()


def register_method(name: str, *, config: type, cost: str, rows: Callable[[Any], int], summary: str,
                    aliases: tuple[str, ...] = (), signed: bool | Callable[[Any], bool] = True,
                    stochastic: bool = False, inputs: str = TENSOR, needs: tuple[str, ...] = (),
                    reference: bool = False, knob: str | None = None, budget: Mapping[str, Any] | None = None,
                    smoke: Mapping[str, Any] | None = None, call_rows: Callable[[Any], int] | None = None):
    """Decorator registering a method function under ``name`` and ``aliases`` (see :class:`MethodSpec`)."""
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"unknown need(s) {sorted(unknown)}; known: {', '.join(NEEDS)}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        METHODS.add(MethodSpec(name, fn, config, tuple(aliases), signed, cost, rows, stochastic, summary, inputs,
                               tuple(needs), reference, knob, dict(budget or {}), dict(smoke or {}), call_rows))
        return fn

    return decorate


def describe_options(config: type, needs: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Each config field's name, default ("required" for what the method needs, "auto" for other None
    defaults, which the config resolves) and the meaning given in the config's docstring (or, for a field it
    inherits, its base class's)."""
    docs: dict[str, str] = {}
    for cls in reversed(config.__mro__):  # a subclass's words win over its base's
        docs.update(_field_docs(cls.__dict__.get("__doc__") or ""))

    def default(f: dataclasses.Field) -> Any:
        return f.default if f.default is not None else "required" if f.name in needs else "auto"

    return [{"name": f.name, "default": default(f), "doc": docs.get(f.name, "")} for f in dataclasses.fields(config)]


def _field_docs(doc: str) -> dict[str, str]:
    """``name: meaning`` entries of a docstring (continuation lines joined)."""
    docs: dict[str, str] = {}
    current = None
    for line in doc.splitlines():
        head, sep, rest = line.strip().partition(":")
        if sep and head.isidentifier() and head not in ("Attributes",):
            current, docs[head] = head, rest.strip()
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return docs


def check_needs(name: str, supplied: set[str], where: str) -> None:
    """A UsageError when method ``name`` needs something that ``where`` (a command) cannot supply."""
    missing = [n for n in METHODS[name].needs if n not in supplied]
    if missing:
        raise UsageError(f"{name} needs {NEEDS[missing[0]]}, which {where} does not supply")
