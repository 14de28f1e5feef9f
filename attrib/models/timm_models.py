"""timm models: ``timm:NAME[.TAG]`` with hub weights when online, a local file, or random weights."""

from __future__ import annotations

import json
import warnings
from functools import partial
from pathlib import Path

from attrib.errors import similar
from attrib.models.base import Model, ModelError, hub_offline, hub_unreachable, out_of_reach
from attrib.models.checkpoint import load_state_dict, read_state_dict, unwrapped
from attrib.models.preprocess import Preprocess, for_channels
from attrib.models.registry import register_loader


def load_timm(name: str, *, weights: str | Path | None = None, pretrained: bool = True, **_: object) -> Model:
    """Create a timm model; download pretrained weights only when no local file is given."""
    import timm

    repo = name.removeprefix("hf-hub:")
    if "/" in repo:  # a hub repo in timm's format, as timm names one: timm:timm/resnet50.a1_in1k
        folder = timm_repo(repo, pretrained and weights is None)
        if folder is None:
            raise ModelError(f"timm:{name}: no timm model in {repo} on the Hugging Face hub, or the hub cannot be "
                             "reached (offline? use timm:NAME --weights FILE, or a folder of the repo's files)")
        return load_timm_folder(folder, weights=weights, pretrained=pretrained, name=f"timm:{name}")
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
            raise ModelError(f"cannot download pretrained weights for timm:{name} ({type(error).__name__}); offline? "
                             "use --weights FILE for a local state dict or --no-pretrained"
                             f"{hub_unreachable(error)}") from None
        raise ModelError(f"cannot create timm:{name}: {error}") from None
    if state is not None:
        load_state_dict(module, weights, state)
    in_chans = shape.get("in_chans", 3)
    factory = partial(timm.create_model, name, pretrained=False, num_classes=module.num_classes, in_chans=in_chans)
    return Model(module.eval(), timm_preprocess(module, in_chans), _labels(module), "image", f"timm:{name}", factory)


def timm_repo(name: str, with_weights: bool) -> str | None:
    """The folder of a model in timm's own format (see :func:`is_timm_folder`): ``name`` itself, or a hub repo's
    config.json and weights fetched to the hub's cache (``hf:timm/resnet50.a1_in1k``, ``timm:timm/...``); None
    for any other model, or a repo that cannot be fetched. (transformers' timm wrapper reads no preprocessing from
    such a repo, which has no preprocessor_config.json: attrib would squash pictures at 224 px, mean = std = 0.5.)"""
    if Path(name).is_dir():
        return name if is_timm_folder(name) else None
    from huggingface_hub import hf_hub_download

    try:
        folder = Path(hf_hub_download(name, "config.json")).parent
    except Exception as error:  # noqa: BLE001 - no such repo, not a timm repo, ...: the caller says so
        if out_of_reach(error):  # not worth a second try (transformers would retry the hub as long again)
            why = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub cannot be reached"
            raise ModelError(f"cannot fetch {name!r} from the Hugging Face hub: it is not in the cache and {why}; "
                             f"offline, pass a folder of its files (huggingface-cli download {name} --local-dir DIR)"
                             f"{hub_unreachable(error)}") from None
        return None
    if not is_timm_folder(str(folder)):
        return None
    for weights in ("model.safetensors", "pytorch_model.bin") if with_weights else ():
        try:
            hf_hub_download(name, weights)  # into the same snapshot folder as its config
            break
        except Exception:  # noqa: BLE001 - this repo has the other file (none: load_timm_folder says so)
            continue
    return str(folder)


def is_timm_folder(spec: str) -> bool:
    """Whether ``spec`` is a folder in timm's own format, as the hub serves timm's models (``huggingface-cli
    download timm/resnet50.a1_in1k --local-dir r50``) and ``timm.models.push_to_hf_hub`` writes them: a
    config.json naming the ``architecture`` (and no transformers ``model_type``) beside the weights."""
    config = _folder_config(Path(spec))
    return isinstance(config.get("architecture"), str) and "model_type" not in config


def _folder_config(folder: Path) -> dict:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def load_timm_folder(spec: str, *, weights: str | Path | None = None, pretrained: bool = True,
                     name: str | None = None, **_: object) -> Model:
    """A timm folder (:func:`is_timm_folder`): its architecture built by timm with the folder's model arguments
    and pretrained config (the preprocessing), its weights (model.safetensors, else pytorch_model.bin, or
    ``weights``) read as any checkpoint is, never through pickle; class names from the config's label_names.
    ``name``: the model's name where the folder is a hub repo's copy in the cache."""
    import timm

    folder = Path(spec)
    config = _folder_config(folder)
    architecture = config["architecture"]
    if not timm.is_model(architecture):
        raise ModelError(f"{name or folder}: its config.json names {architecture!r}, which this timm "
                         f"({timm.__version__}) does not know; upgrade timm")
    arguments = {**config.get("model_args", {}), "num_classes": config.get("num_classes", 1000)}
    module = timm.create_model(architecture, pretrained=False,
                               pretrained_cfg=_known_fields(config.get("pretrained_cfg")), **arguments)
    weights = _folder_weights(folder, name or str(folder)) if weights is None and pretrained else weights
    if weights is not None:
        load_state_dict(module, weights)
    factory = partial(timm.create_model, architecture, pretrained=False,
                      **{k: v for k, v in arguments.items() if isinstance(v, int | float | str | bool)})
    preprocess = timm_preprocess(module, int(arguments.get("in_chans", 3)))
    return Model(module.eval(), preprocess, _folder_labels(config, module), "image", name or str(folder), factory)


def _folder_weights(folder: Path, name: str) -> Path:
    found = next((folder / f for f in ("model.safetensors", "pytorch_model.bin") if (folder / f).is_file()), None)
    if found is None:
        raise ModelError(f"{name} holds no model.safetensors or pytorch_model.bin (timm's weights files)")
    return found


def _folder_labels(config: dict, module) -> list[str]:
    """The config's label_names (timm's hub configs may hold them), else timm's defaults."""
    labels = _labels(module)
    names = (config.get("pretrained_cfg") or {}).get("label_names") or config.get("label_names")
    return [str(n) for n in names] if isinstance(names, list) and len(names) == len(labels) else labels


def _known_fields(cfg: object) -> dict | None:
    """A pretrained config's fields that this timm knows (a newer timm's config may hold more)."""
    import dataclasses

    from timm.models import PretrainedCfg

    known = {f.name for f in dataclasses.fields(PretrainedCfg)}
    return {k: v for k, v in cfg.items() if k in known} if isinstance(cfg, dict) else None


def _similar_names(base: str) -> list[str]:
    """Up to five timm architectures whose names hold the typed one (closest first), else five that look alike."""
    import timm

    return similar(base, timm.list_models(), cutoff=0.7)


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
    mean, std = for_channels(tuple(cfg["mean"]), in_chans), for_channels(tuple(cfg["std"]), in_chans)
    mode = cfg.get("crop_mode") or "center"
    if mode not in ("center", "squash", "border"):
        warnings.warn(f"timm's crop_mode {mode!r} is unknown to attrib: approximated by a centre crop", stacklevel=2)
    return Preprocess(size=(height, width), crop_pct=float(cfg.get("crop_pct", 0.875)), mean=mean, std=std,
                      interpolation=cfg.get("interpolation", "bicubic"), channels=in_chans, squash=mode == "squash",
                      pad=mode == "border")


def _labels(module) -> list[str]:
    from attrib.models.builtin import class_names

    return class_names(module.num_classes)


def _names(text: str) -> list[str]:
    """timm's architectures that begin with ``text``; after a dot, its pretrained tags (``resnet50.a1_in1k``)."""
    import timm

    return timm.list_models(f"{text}*", pretrained="." in text)


register_loader("timm", load_timm, names=_names)
register_loader("timm-folder", load_timm_folder, matches=is_timm_folder)  # before "hf", which takes any folder
