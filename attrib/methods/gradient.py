"""Plain gradient ("saliency", Simonyan et al. 2014) and gradient x input (Shrikumar et al. 2016).

    gradient(x)_i         = dF/dx_i (x)            (signed; |.| with abs=True)
    gradient_x_input(x)_i = x_i * dF/dx_i (x)

cost = 1 x (forward + input-backward) per input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attrib.engine import Rows
from attrib.methods._registry import Context, MethodOutput, register_method


@dataclass(frozen=True)
class GradientConfig:
    """Attributes:
        abs: return |gradient| (captum's Saliency default) instead of the signed gradient.
    """

    abs: bool = False


@dataclass(frozen=True)
class GradientXInputConfig:
    """Gradient x input takes no options."""


def input_gradient(ctx: Context) -> torch.Tensor:
    """dF/dx at each input, one row per input."""
    rows = Rows(1, lambda b, r: (ctx.inputs[b], None))
    return ctx.engine.accumulate(rows, len(ctx.inputs), ctx.target, ctx.inputs[:1]).terms[0]


@register_method("gradient", aliases=("saliency", "grad"), config=GradientConfig, rows=lambda c: 1,
                 signed=lambda c: not c.abs,
                 cost="1 x (forward + input-backward)", summary="the input-gradient of the target")
def gradient(ctx: Context, config: GradientConfig) -> MethodOutput:
    grad = input_gradient(ctx)
    return MethodOutput(grad.abs() if config.abs else grad)


@register_method("gradient_x_input", aliases=("gxi", "input_x_gradient"), config=GradientXInputConfig,
                 rows=lambda c: 1, cost="1 x (forward + input-backward)", summary="input times its gradient")
def gradient_x_input(ctx: Context, config: GradientXInputConfig) -> MethodOutput:
    return MethodOutput(ctx.inputs * input_gradient(ctx))
