"""A method defined outside attrib, the way a user adds one: one module, one decorator, no other edit.

tests/conftest.py imports this module, so the registry-wide tests (tests/methods/test_registry.py) cover it
and tests/test_plugin_method.py runs it through `attrib explain` and `attrib sanity`.
"""

from dataclasses import dataclass

from attrib.engine import Rows
from attrib.methods import Context, MethodOutput, register_method

NAME = "scaled_gradient_test"


@dataclass(frozen=True)
class ScaledConfig:
    """Attributes:
        scale: the gradient is multiplied by this number.
    """

    scale: float = 0.5


@register_method(NAME, aliases=("sgt",), config=ScaledConfig, rows=lambda c: 1,
                 cost="1 x (forward + input-backward)", summary="the gradient times a constant (a test plugin)")
def scaled_gradient(ctx: Context, config: ScaledConfig) -> MethodOutput:
    rows = Rows(1, lambda b, r: (ctx.inputs[b], None))
    grad = ctx.engine.accumulate(rows, len(ctx.inputs), ctx.target, ctx.inputs[:1]).terms[0]
    return MethodOutput(config.scale * grad)
