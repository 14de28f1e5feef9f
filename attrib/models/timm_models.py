"""timm models: ``timm:NAME[.TAG]`` with hub weights when online, a local file, or random weights."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from attrib.models.base import Model, ModelError
from attrib.models.checkpoint import load_state_dict
from attrib.models.preprocess import Preprocess
from attrib.models.registry import register_loader


def load_timm(name: str, *, weights: str | Path | None = None, pretrained: bool = True, **_: object) -> Model:
    """Create a timm model; download pretrained weights only when no local file is given."""
    import timm

    if not timm.is_model(name.split(".")[0]):
        close = timm.list_models(f"*{name.split('.')[0][:6]}*")[:5]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise ModelError(f"unknown timm model {name!r}{hint}")
    use_hub = pretrained and weights is None
    try:
        module = timm.create_model(name, pretrained=use_hub)
    except Exception as error:  # noqa: BLE001 - hub and network errors come in many types
        if use_hub:
            raise ModelError(f"cannot download pretrained weights for timm:{name} ({type(error).__name__}); "
                             "offline? use --weights FILE for a local state dict or --no-pretrained") from None
        raise ModelError(f"cannot create timm:{name}: {error}") from None
    if weights is not None:
        load_state_dict(module, weights)
    factory = partial(timm.create_model, name, pretrained=False, num_classes=module.num_classes,
                      in_chans=timm_preprocess(module).channels)
    return Model(module.eval(), timm_preprocess(module), _labels(module), "image", f"timm:{name}", factory)


def timm_preprocess(module) -> Preprocess:
    """Preprocessing from the model's timm data config."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=module)
    _, height, width = cfg["input_size"]
    return Preprocess(size=(height, width), crop_pct=float(cfg.get("crop_pct", 0.875)),
                      mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
                      interpolation=cfg.get("interpolation", "bicubic"), channels=cfg["input_size"][0])


def _labels(module) -> list[str]:
    n = module.num_classes
    if n == 1000:
        from attrib.models.builtin import imagenet_labels

        return imagenet_labels()
    return [f"class {i}" for i in range(n)]


register_loader("timm", load_timm)
