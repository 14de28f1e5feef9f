"""timm models: ``timm:NAME[.TAG]`` with hub weights when online, a local file, or random weights."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

from attrib.models.base import Model, ModelError
from attrib.models.checkpoint import load_state_dict, read_state_dict, unwrapped
from attrib.models.preprocess import Preprocess
from attrib.models.registry import register_loader


def load_timm(name: str, *, weights: str | Path | None = None, pretrained: bool = True, **_: object) -> Model:
    """Create a timm model; download pretrained weights only when no local file is given."""
    import timm

    if not timm.is_model(name.split(".")[0]):
        close = _similar_names(name.split(".")[0])
        hint = f"; did you mean {', '.join(close)}?" if close else " (see timm.list_models())"
        raise ModelError(f"unknown timm model {name!r}{hint}")
    use_hub = pretrained and weights is None
    state = read_state_dict(weights) if weights is not None else None
    shape = checkpoint_shape(name, state) if state is not None else {}
    try:
        module = timm.create_model(name, pretrained=use_hub, **shape)
    except Exception as error:  # noqa: BLE001 - hub and network errors come in many types
        if use_hub:
            raise ModelError(f"cannot download pretrained weights for timm:{name} ({type(error).__name__}); "
                             "offline? use --weights FILE for a local state dict or --no-pretrained") from None
        raise ModelError(f"cannot create timm:{name}: {error}") from None
    if state is not None:
        load_state_dict(module, weights, state)
    in_chans = shape.get("in_chans", 3)
    factory = partial(timm.create_model, name, pretrained=False, num_classes=module.num_classes, in_chans=in_chans)
    return Model(module.eval(), timm_preprocess(module, in_chans), _labels(module), "image", f"timm:{name}", factory)


def _similar_names(base: str) -> list[str]:
    """Up to five timm architectures whose names hold the typed one, else up to five that look alike."""
    import difflib

    import timm

    return timm.list_models(f"*{base}*")[:5] or difflib.get_close_matches(base, timm.list_models(), n=5, cutoff=0.7)


def checkpoint_shape(name: str, state: dict) -> dict[str, int]:
    """``num_classes`` and ``in_chans`` of a checkpoint (a fine-tuned head, a grayscale stem), read from the
    weights of the layers timm names as the architecture's classifier and first convolution."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    state = {**unwrapped(state), **state}  # the keys as saved win; a wrapper's prefix is looked through
    shape = {}
    for layer, dim, arg in ((getattr(cfg, "classifier", None), 0, "num_classes"),
                            (getattr(cfg, "first_conv", None), 1, "in_chans")):
        layer = layer[0] if isinstance(layer, (tuple, list)) else layer
        weight = state.get(f"{layer}.weight") if layer else None
        if weight is not None and weight.dim() > dim:
            shape[arg] = int(weight.shape[dim])
    if shape.get("in_chans", 3) not in (1, 3):
        raise ModelError(f"timm:{name}: the weights take {shape['in_chans']} input channels; attrib feeds RGB "
                         "(3) or grayscale (1) images")
    return shape


def timm_preprocess(module, in_chans: int = 3) -> Preprocess:
    """Preprocessing from the model's timm data config, as timm's eval transform does it (crop_mode "center":
    shorter side to size / crop_pct, centre crop; "squash": both sides to size / crop_pct, centre crop;
    "border": longer side to size / crop_pct, padded with the mean colour, centre crop); a
    grayscale model (``in_chans`` 1) takes the mean of the RGB statistics (timm's pretrained configs describe
    RGB)."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=module)
    _, height, width = cfg["input_size"]
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if in_chans == 1:
        mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
    mode = cfg.get("crop_mode") or "center"
    if mode not in ("center", "squash", "border"):
        warnings.warn(f"timm's crop_mode {mode!r} is unknown to attrib: approximated by a centre crop", stacklevel=2)
    return Preprocess(size=(height, width), crop_pct=float(cfg.get("crop_pct", 0.875)), mean=mean, std=std,
                      interpolation=cfg.get("interpolation", "bicubic"), channels=in_chans, squash=mode == "squash",
                      pad=mode == "border")


def _labels(module) -> list[str]:
    n = module.num_classes
    if n == 1000:
        from attrib.models.builtin import imagenet_labels

        return imagenet_labels()
    return [f"class {i}" for i in range(n)]


register_loader("timm", load_timm)
