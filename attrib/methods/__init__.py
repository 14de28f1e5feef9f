"""The method registry.

Each method lives in its own module and registers itself with :func:`register_method`. ``METHODS`` maps
canonical names and aliases to :class:`MethodSpec`; an unknown name raises :class:`UnknownMethodError` listing
the valid ones.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from attrib.engine import Engine
from attrib.targets import Target


@dataclass
class Context:
    """What a method sees: the engine, the inputs (on the engine's device), a resolved target and the seed."""

    engine: Engine
    inputs: torch.Tensor
    target: Target
    seed: int


@dataclass
class MethodOutput:
    """A method's result: attributions (B, ...) and, for path methods, the reference score F(x') per input."""

    values: torch.Tensor
    reference_scores: torch.Tensor | None = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: canonical name.
        fn: ``fn(ctx, config) -> MethodOutput``.
        config: the frozen config dataclass.
        aliases: other names.
        signed: whether values carry a meaningful sign (renders diverging) or are magnitudes; a bool or a
            function of the config.
        cost: the cost formula in words, e.g. "n_steps x (forward + input-backward)".
        rows: rows (forward + input-backward passes) per input for a config.
        stochastic: whether the result depends on the seed.
        summary: one line for listings.
    """

    name: str
    fn: Callable[[Context, Any], MethodOutput]
    config: type
    aliases: tuple[str, ...]
    signed: bool | Callable[[Any], bool]
    cost: str
    rows: Callable[[Any], int]
    stochastic: bool
    summary: str

    def is_signed(self, config: Any) -> bool:
        """Whether this method's values, under ``config``, are signed."""
        return bool(self.signed(config)) if callable(self.signed) else bool(self.signed)

    def make_config(self, **overrides: Any) -> Any:
        """The config with ``overrides`` applied; unknown keys raise a ValueError naming the valid ones."""
        valid = [f.name for f in dataclasses.fields(self.config)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)} for method {self.name!r}; "
                             f"valid options: {', '.join(valid) or '(none)'}")
        return self.config(**overrides)


class UnknownMethodError(KeyError, ValueError):
    """An unknown method name (a KeyError for dict lookups, a ValueError for argument checks)."""

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

    def canonical(self, name: str) -> str:
        key = str(name).strip().lower().replace("-", "_")
        if key not in self._aliases:
            raise UnknownMethodError(f"unknown method {name!r}; valid methods: {self.names_with_aliases()}")
        return self._aliases[key]

    def names_with_aliases(self) -> str:
        return ", ".join(s.name + (f" ({', '.join(s.aliases)})" if s.aliases else "") for s in self._specs.values())

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
                    aliases: tuple[str, ...] = (), signed: bool | Callable[[Any], bool] = True, stochastic: bool = False):
    """Decorator registering ``fn(ctx, config) -> MethodOutput`` under ``name`` and ``aliases``."""

    def decorate(fn: Callable[[Context, Any], MethodOutput]) -> Callable[[Context, Any], MethodOutput]:
        METHODS.add(MethodSpec(name, fn, config, tuple(aliases), signed, cost, rows, stochastic, summary))
        return fn

    return decorate


def describe_options(config: type) -> list[dict[str, Any]]:
    """Each config field's name, default and the meaning given in the config's docstring."""
    docs: dict[str, str] = {}
    current = None
    for line in (config.__doc__ or "").splitlines():
        head, sep, rest = line.strip().partition(":")
        if sep and head.isidentifier() and head not in ("Attributes",):
            current, docs[head] = head, rest.strip()
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return [{"name": f.name, "default": "required" if f.default is None else f.default,
             "doc": docs.get(f.name, "")} for f in dataclasses.fields(config)]


# Importing the modules registers the methods (in this order, which listings follow).
from attrib.methods import gradient, integrated_gradients, expected_gradients  # noqa: E402,F401,I001
from attrib.methods import smoothgrad, moreaugrad  # noqa: E402,F401,I001
