"""Hugging Face image classifiers: ``hf:ORG/NAME`` from the hub, or a local folder saved with save_pretrained."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from attrib.errors import first_line
from attrib.models.base import Model, ModelError, hub_unreachable
from attrib.models.hf_processor import mismatch, processor_preprocess
from attrib.models.preprocess import Preprocess
from attrib.models.registry import register_loader


class LogitsOnly(torch.nn.Module):
    """Wraps a transformers classifier so that it maps pixel values (B, C, H, W) to logits (B, K). ``bgr``: the
    model reads its channels in BGR order (its processor flips them: MobileViT), so RGB inputs are flipped here
    and attributions stay in the picture's RGB order."""

    def __init__(self, inner: torch.nn.Module, bgr: bool = False) -> None:
        super().__init__()
        self.inner, self.bgr = inner, bgr

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.inner(pixel_values=pixel_values.flip(1) if self.bgr else pixel_values).logits


def from_pretrained_checked(auto, name: str, task: str, **kwargs):
    """``auto.from_pretrained(name)``, refusing a checkpoint that lacks some of the model's parameters (a base
    model or another task's model loaded as ``task``, e.g. "an image classifier": transformers would initialise
    the head at random and the explanations would explain noise). transformers' own load report is replaced by
    that one line."""
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()  # attrib draws its own progress
    try:
        module, info = auto.from_pretrained(name, output_loading_info=True, **kwargs)
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
    parameters = dict(module.named_parameters())
    missing = sorted(k for k in info.get("missing_keys", ()) if k in parameters)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ModelError(f"{name} is not {task} checkpoint: it has no weights for {', '.join(missing[:3])}{more} "
                         f"(loaded as {task}, they would be random)")
    return module


def multi_label(config) -> bool:
    """Whether a transformers config describes independent (sigmoid) classes."""
    return getattr(config, "problem_type", None) == "multi_label_classification"


def wrong_kind(error: Exception, name: str, task: str, hint: str) -> None:
    """Raise one clear ModelError when ``error`` is transformers saying the checkpoint's architecture has no
    ``task`` class (a text model given as an image classifier, ...); return otherwise."""
    found = re.search(r"configuration_(\w+)\.", str(error)) if "Unrecognized configuration" in str(error) else None
    if found:
        raise ModelError(f"{name} is a {found[1]} model: transformers cannot load it as {task} ({hint})") from None


def check_folder(name: str) -> None:
    """One clear ModelError when ``name`` is a local folder that holds no saved model (transformers would say
    "Unrecognized model" and attrib would guess the hub was offline), or a path to none: a name no hub id
    could be (NAME or ORG/NAME), as ./model, /models/x, a/b/c or a folder's name with a slash at its end; or a
    file."""
    if not Path(name).exists() and looks_like_path(name):
        raise ModelError(f"{name}: no such folder (a Hugging Face model is a local folder saved with save_pretrained "
                         "or a hub id, NAME or ORG/NAME)")
    if Path(name).is_file():  # transformers would read it as a config: "not a valid JSON file", "offline?"
        folder = f"give its folder, {Path(name).parent}" if Path(name).name == "config.json" else \
            "give a folder saved with save_pretrained (it holds config.json)"
        raise ModelError(f"{name} is a file, not a Hugging Face model: {folder}, or a hub id (NAME or ORG/NAME)")
    if Path(name).is_dir() and not (Path(name) / "config.json").is_file():
        raise ModelError(f"{name} is a folder but not a Hugging Face model saved with save_pretrained (it has no "
                         "config.json)")


def home_expanded(name: str) -> str:
    """``name`` with a leading ~ made the home folder (a quoted ~/models/x; no hub id starts with ~)."""
    return str(Path(name).expanduser()) if name.startswith("~") else name


def looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be a path: it starts with /, ./, ../ or ~, holds a backslash or more than one
    slash, or ends with one."""
    return name.startswith(("/", "./", "../", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")


def load_hf(name: str, *, trust_remote_code: bool = False, weights: object = None, pretrained: bool = True,
            **_: object) -> Model:
    """Load model + image processor (``pretrained`` False: the architecture from its config, randomly
    initialised); remote code runs only when ``trust_remote_code`` is set."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    from attrib.models.timm_models import load_timm_folder, timm_repo

    name = home_expanded(name)
    folder = timm_repo(name, pretrained and weights is None)
    if folder is not None:
        return load_timm_folder(folder, weights=weights, pretrained=pretrained,
                                name=name if folder != name else None)
    if weights is not None:
        raise ModelError(f"--weights is for timm, torchvision and sample models; a Hugging Face model ({name}) loads "
                         "its own: pass a folder saved with save_pretrained")
    check_folder(name)
    try:
        if pretrained:
            module = from_pretrained_checked(AutoModelForImageClassification, name, "an image classifier",
                                             trust_remote_code=trust_remote_code)
        else:
            config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
            module = AutoModelForImageClassification.from_config(config, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        wrong_kind(error, name, "an image classifier", "a text classifier? explain it with `attrib explain-text`, "
                   "check it with `attrib sanity-text`")
        raise ModelError(f"cannot load Hugging Face model {name!r}: {first_line(error)} (offline? pass a local "
                         f"folder saved with save_pretrained{hub_unreachable(error)})") from None
    try:
        processor = AutoImageProcessor.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        processor = None
    labels = [str(module.config.id2label.get(i, f"class {i}")) for i in range(module.config.num_labels)]
    preprocess = _preprocess(processor, module)
    bgr = bool(getattr(processor, "do_flip_channel_order", False))
    differs = mismatch(processor, preprocess, bgr) if processor is not None else None
    if differs:
        warnings.warn(f"{name}: {differs} ({type(processor).__name__} has rules attrib does not follow); "
                      "predictions and maps may differ from those on the processor's inputs", stacklevel=2)
    assumed = "" if processor is not None else \
        f"{name} has no image processor (preprocessor_config.json): attrib squashes images to " \
        f"{preprocess.size[0]} x {preprocess.size[1]} and normalises with mean = std = 0.5; save the model's " \
        "processor beside it, or say how with --preprocess, if it was trained otherwise"
    return Model(LogitsOnly(module, bgr).eval(), preprocess, labels, "image", f"hf:{name}",
                 multi_label=multi_label(module.config), assumed=assumed)


def _preprocess(processor, module) -> Preprocess:
    size = getattr(module.config, "image_size", 224)
    height = width = size if isinstance(size, int) else size[0]
    channels = getattr(module.config, "num_channels", 3)
    if channels not in (1, 3):
        raise ModelError(f"the model takes {channels} input channels; attrib feeds RGB (3) or grayscale (1) images")
    if processor is None:
        return Preprocess(size=(height, width), crop_pct=1.0, mean=(0.5,) * channels, std=(0.5,) * channels,
                          squash=True, channels=channels)
    return processor_preprocess(processor, height, width, channels)


register_loader("hf", load_hf, matches=lambda spec: Path(spec).is_dir())
