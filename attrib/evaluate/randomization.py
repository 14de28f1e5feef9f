"""Model-parameter randomization (Adebayo et al. 2018): re-initialise layers and see whether maps change.

Layers are discovered from the module tree. A list of blocks (a ModuleList, or a Sequential whose children are
numbered) gives one group per block (timm's ``blocks.0``, ``stages.1``, ``layer3.0``, a Hugging Face ViT's
encoder layers); a module with such a list somewhere inside is split into its children; any other module
is one group. Wrappers with a single child are looked through (attrib's ``inner`` around a Hugging Face model is
not a group name), and a split module's own parameters (a ViT's ``cls_token``, ``pos_embed``) are a group of
their own. Groups keep registration order, which is forward order for the usual vision nets; "top" is the
last group (the logits). Cascading randomization re-initialises the top k groups cumulatively; independent
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
    path = []
    while not _own(module) and len(children := _owning_children(module)) == 1:  # look through wrappers
        name, module = children[0]
        path.append(name)
    return [LayerGroup(name, tuple(".".join(path + [m] if m else path) for m in members), kind)
            for name, members, kind in _split(module, "", top=True) if members]


def _split(module: torch.nn.Module, name: str, top: bool = False) -> list[tuple[str, tuple[str, ...], str]]:
    """The groups of ``module`` called ``name``: (group name, its parameterised modules' names, its class); the
    top module is always split."""
    children = [(f"{name}.{child}" if name else child, sub) for child, sub in _owning_children(module)]
    if _is_block_list(module):
        return [_whole(sub, child) for child, sub in children]
    if not top and not any(_is_block_list(sub) for sub in module.modules()):
        return [_whole(module, name)]
    own = [(name or "root", (name,), type(module).__name__)] if _own(module) else []
    return own + [group for child, sub in children for group in _split(sub, child)]


def _whole(module: torch.nn.Module, name: str) -> tuple[str, tuple[str, ...], str]:
    """One group: ``module`` and everything in it; named for its class, or for its first block's in a list."""
    members = tuple(sub_name for sub_name, sub in module.named_modules(prefix=name) if _own(sub))
    while isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList)) and _owning_children(module):
        module = _owning_children(module)[0][1]
    return name, members, type(module).__name__


def _own(module: torch.nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def _owning_children(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(name, sub) for name, sub in module.named_children() if any(True for _ in sub.parameters())]


def _is_block_list(module: torch.nn.Module) -> bool:
    """A ModuleList, or a Sequential of numbered children (not a Sequential of named layers)."""
    return isinstance(module, torch.nn.ModuleList) or (
        isinstance(module, torch.nn.Sequential) and all(name.isdigit() for name, _ in module.named_children()))


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
