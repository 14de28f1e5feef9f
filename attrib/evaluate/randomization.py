"""Model-parameter randomization (Adebayo et al. 2018): re-initialise layers and see whether maps change.

Layers are discovered from the module tree: every module that owns parameters, grouped by its top-level name,
or by "name.index" when the top level is a list of blocks (timm's ``blocks.0``, ``stages.1``, ``layer3.0``).
Groups keep registration order, which is forward order for the usual vision nets; "top" is the last group
(the logits). Cascading randomization re-initialises the top k groups cumulatively; independent
randomization one group at a time. Re-initialisation uses each module's own ``reset_parameters`` (as built);
parameters of modules without one are redrawn from a normal with their own standard deviation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from attrib.errors import UsageError


@dataclass(frozen=True)
class LayerGroup:
    name: str
    modules: tuple[str, ...]
    kind: str  # class name of the group's first parameterised module

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind})"


def layer_groups(module: torch.nn.Module) -> list[LayerGroup]:
    """The parameterised layer groups of ``module``, bottom (input) to top (logits)."""
    groups: dict[str, list[tuple[str, torch.nn.Module]]] = {}
    for name, sub in module.named_modules():
        if name and any(True for _ in sub.parameters(recurse=False)):
            groups.setdefault(_group_key(name), []).append((name, sub))
    return [LayerGroup(key, tuple(n for n, _ in members), type(members[0][1]).__name__)
            for key, members in groups.items()]


def _group_key(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


def select(groups: list[LayerGroup], names: list[str] | None, max_groups: int | None) -> list[LayerGroup]:
    """Groups to report on: the named ones, else all, thinned evenly to ``max_groups`` (always the top one and
    the bottom one). ValueError naming the available groups for an unknown name."""
    if names:
        known = {g.name: g for g in groups}
        missing = [n for n in names if n not in known]
        if missing:
            raise UsageError(f"unknown layer {missing[0]!r}; layers (bottom to top): {', '.join(known)}")
        return [g for g in groups if g.name in names]
    if max_groups is None or len(groups) <= max_groups:
        return groups
    picks = sorted({round(i * (len(groups) - 1) / (max_groups - 1)) for i in range(max_groups)})
    return [groups[i] for i in picks]


def reinitialise(module: torch.nn.Module, group: LayerGroup, seed: int) -> None:
    """Re-initialise every parameter in ``group`` (in place) with the modules' own initialisers, seeded."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for name in group.modules:
            sub = module.get_submodule(name)
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
                continue
            for p in sub.parameters(recurse=False):
                p.normal_(0.0, float(p.std()) if p.numel() > 1 and float(p.std()) > 0 else 0.02)


def randomized(module: torch.nn.Module, groups: list[LayerGroup], report: list[LayerGroup], mode: str,
               seed: int) -> Iterator[tuple[LayerGroup, int, torch.nn.Module]]:
    """(group, depth, randomized copy) for each reported group.

    "cascading": top-down and cumulative, so the copy at ``group`` has it and every group above it
    re-initialised (depth = how many groups that is). "independent": only ``group`` (depth 1).
    """
    if mode == "independent":
        for group in reversed(report):
            copy_ = copy.deepcopy(module)
            reinitialise(copy_, group, seed + groups.index(group))
            yield group, 1, copy_.eval()
        return
    current = copy.deepcopy(module)
    wanted = {g.name for g in report}
    for depth, group in enumerate(reversed(groups), 1):
        reinitialise(current, group, seed + groups.index(group))
        if group.name in wanted:
            yield group, depth, copy.deepcopy(current).eval()
