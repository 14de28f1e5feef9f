"""attrib: explain why a classifier made a prediction, and check whether the explanation deserves trust.

Public API (imported lazily, so that ``attrib --help`` does not import torch)::

    import attrib
    result = attrib.attribute(model, inputs, method="ig", target=None, seed=0)
    attrib.METHODS["ig"]          # the method registry (aliases resolved)
    record, arrays = attrib.load_run("attrib-runs/20261127-101500")   # arrays[(input id, method)], lazily
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "attribute": "attrib.api",
    "predict": "attrib.api",
    "load_run": "attrib.runs",
    "RunError": "attrib.runs",
    "AttribError": "attrib.errors",
    "TooLargeError": "attrib.errors",
    "Attribution": "attrib.api",
    "completeness_gap": "attrib.api",
    "METHODS": "attrib.methods",
    "register_method": "attrib.methods",
    "UnknownMethodError": "attrib.methods",
    "ClassLogit": "attrib.targets",
    "ClassProb": "attrib.targets",
    "Contrast": "attrib.targets",
    "Predicted": "attrib.targets",
    "Engine": "attrib.engine",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'attrib' has no attribute {name!r}")
