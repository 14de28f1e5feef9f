"""Fold eval-mode BatchNorm into the convolution before it: the same function, fewer passes over memory.

In eval mode BatchNorm is a per-channel affine map y = g (x - m) / sqrt(v + eps) + b, so conv -> BN equals one
conv with weights W g / sqrt(v + eps) and bias (c - m) g / sqrt(v + eps) + b. Gradients with respect to the input
are therefore the same (up to float rounding), but each folded BN saves a forward and a backward pass over its
activations (about a quarter of EfficientNet-Lite0's time on a CPU).

The model is traced with torch.fx; only a conv whose output feeds nothing but an eval-mode BatchNorm (and
shape or rank checks) is folded,
into a new module (the user's model is never changed). Models that fx cannot trace are used as they are, and a
folded copy whose outputs drift from the original's on a probe input is discarded.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attrib.targets import as_logits

TOLERANCE = 1e-3  # relative drift of the outputs that rejects a folded copy

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (fingerprint, folded copy or None)


def foldable(model: Any) -> bool:
    """An eval-mode module with at least one BatchNorm (worth a try)."""
    return (isinstance(model, nn.Module) and not model.training
            and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()))


def folded_copy(model: nn.Module, device: torch.device, channels_last: bool, probe: torch.Tensor) -> nn.Module | None:
    """A frozen copy of ``model`` on ``device`` with BatchNorm folded, cached while the model's tensors are unchanged.

    The cache key holds each parameter's and buffer's storage address and version counter, so loading new
    weights, re-initialising a layer or replacing ``.data`` all invalidate it. The user's model is not touched.
    """
    key = (str(device), channels_last, _fingerprint(model))
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        twin = copy.deepcopy(model).to(device).requires_grad_(False)
    except Exception:  # noqa: BLE001 - a model that cannot be copied is used as it is
        return None
    if channels_last:
        twin.to(memory_format=torch.channels_last)
    folded = fold_batchnorm(twin, probe.to(device))
    _CACHE[model] = (key, folded)
    return folded


def _fingerprint(model: nn.Module) -> tuple:
    tensors = [*model.parameters(), *model.buffers()]
    return tuple((t.data_ptr(), t._version, tuple(t.shape)) for t in tensors)


def fold_batchnorm(model: nn.Module, probe: torch.Tensor) -> nn.Module | None:
    """A copy of ``model`` with BatchNorms folded into convolutions, or None if nothing could be folded."""
    if model.training:
        return None
    try:
        graph_module = torch.fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - any tracing failure means: use the model as it is
        return None
    if not _fold_all(graph_module):
        return None
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    return graph_module if _agrees(model, graph_module, probe) else None


def _fold_all(gm: torch.fx.GraphModule) -> int:
    modules = dict(gm.named_modules())
    folded = 0
    for node in list(gm.graph.nodes):
        params = _bn_params(node, modules, gm)
        if params is None:
            continue
        conv_node = node.args[0]
        conv = modules.get(conv_node.target) if conv_node.op == "call_module" else None
        if type(conv) is not nn.Conv2d or any(u is not node and not _metadata_only(u) for u in conv_node.users):
            continue
        name = f"attrib_folded_{folded}"
        gm.add_submodule(name, _fused(conv, *params))
        conv_node.target = name
        node.replace_all_uses_with(conv_node)
        gm.graph.erase_node(node)
        folded += 1
    return folded


METADATA = {"shape", "ndim", "dtype", "device", "size", "dim"}


def _metadata_only(node: torch.fx.Node) -> bool:
    """A use that reads only a tensor's shape, rank, dtype or device (e.g. timm's ndim assertions)."""
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] in METADATA
    return node.op == "call_method" and node.target in ("size", "dim")


def _bn_params(node: torch.fx.Node, modules: dict[str, nn.Module], gm: torch.fx.GraphModule) -> tuple | None:
    """(mean, var, weight, bias, eps) of an eval-mode batch norm node, or None."""
    if node.op == "call_module" and type(modules.get(node.target)) is nn.BatchNorm2d:
        bn = modules[node.target]
        if bn.training or bn.running_mean is None:
            return None
        return bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps
    if node.op == "call_function" and node.target is F.batch_norm:
        args = _batch_norm_args(node)
        if args is None or args["training"] is not False:
            return None
        tensors = [_attr(gm, args[k]) for k in ("running_mean", "running_var", "weight", "bias")]
        if tensors[0] is None or tensors[1] is None:
            return None
        return (*tensors, float(args["eps"]))
    return None


def _batch_norm_args(node: torch.fx.Node) -> dict[str, Any] | None:
    names = ["input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"]
    defaults = {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5}
    args = {**defaults, **dict(zip(names, node.args)), **node.kwargs}
    return args if all(k in args for k in names[:3]) else None


def _attr(gm: torch.fx.GraphModule, arg: Any) -> torch.Tensor | None:
    if arg is None or not isinstance(arg, torch.fx.Node) or arg.op != "get_attr":
        return None
    value: Any = gm
    for part in arg.target.split("."):
        value = getattr(value, part)
    return value if isinstance(value, torch.Tensor) else None


@torch.no_grad()
def _fused(conv: nn.Conv2d, mean, var, weight, bias, eps: float) -> nn.Conv2d:
    scale = (var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1), requires_grad=False)
    old_bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
    new_bias = (old_bias - mean) * scale + (bias if bias is not None else 0)
    fused.bias = nn.Parameter(new_bias, requires_grad=False)
    fmt = torch.channels_last if conv.weight.is_contiguous(memory_format=torch.channels_last) else None
    if fmt is not None and not conv.weight.is_contiguous():
        fused.weight.data = fused.weight.data.contiguous(memory_format=fmt)
    return fused


@torch.no_grad()
def _agrees(model: nn.Module, folded: nn.Module, probe: torch.Tensor) -> bool:
    try:
        expected, got = as_logits(model(probe)).float(), as_logits(folded(probe)).float()
    except Exception:  # noqa: BLE001
        return False
    if expected.shape != got.shape:
        return False
    scale = expected.abs().max().clamp_min(1e-12)
    return bool(((expected - got).abs().max() / scale) < TOLERANCE)
