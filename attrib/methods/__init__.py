"""Attribution methods: the registry (``_registry.py``, a leaf) and one module per method.

Importing this package imports every method module, which registers itself; the order below is the order
of listings.
"""

from attrib.methods._registry import (METHODS, TENSOR, TEXT, Context, MethodOutput, MethodSpec, Registry,
                                      TextContext, UnknownMethodError, check_needs, describe_options,
                                      register_method)
from attrib.methods import gradient, integrated_gradients, expected_gradients, smoothgrad, moreaugrad  # noqa: I001
from attrib.methods import olm, occlusion

__all__ = ["METHODS", "TENSOR", "TEXT", "Context", "MethodOutput", "MethodSpec", "Registry", "TextContext",
           "UnknownMethodError", "check_needs", "describe_options", "register_method", "gradient",
           "integrated_gradients", "expected_gradients", "smoothgrad", "moreaugrad", "olm", "occlusion"]
