"""Model specs resolved into one adapter: :class:`Model` (module, preprocessing, labels, factory, card).

Specs:
    None / "default"        the embedded EfficientNet-Lite0 ImageNet classifier (offline)
    "timm:NAME[.TAG]"       a timm model; pretrained weights from the hub, or ``weights=FILE``, or pretrained=False
    "torchvision:NAME[.WEIGHTS]"  a torchvision classifier ("tv:" for short), read as its weights' transforms read
                            pictures; hub weights, ``weights=FILE`` or pretrained=False
    FOLDER                  a timm model in its hub format (config.json naming the architecture), else:
    "hf:ORG/NAME" / FOLDER  a Hugging Face image classifier (AutoModelForImageClassification + image processor)
    "sample:NAME"           a model shipped in attrib/sample_models (or registered with ``register_sample``)
    "py:FILE.py:NAME[(ARGS)]"  your own code's model (``FILE.py:NAME`` without the prefix; or
                            ``py:package.module:NAME``): a class or function building it, arguments as literals

Layout: ``base.py`` (types), ``registry.py`` (prefix -> loader), one module per loader that registers itself.
"""

from attrib.models.base import Model, ModelError
from attrib.models.registry import LOADERS, anchored, load_model, register_loader, spec_completions
# they register themselves, timm's before hf's (a timm folder is claimed before any folder is taken for hf's)
from attrib.models import builtin, timm_models, torchvision_models, hf_models, samples, python_models  # noqa: F401,I001

__all__ = ["LOADERS", "Model", "ModelError", "anchored", "load_model", "register_loader", "spec_completions"]
