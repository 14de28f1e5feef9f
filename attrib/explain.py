"""The explain job: inputs x methods -> attributions, heatmaps, run directory. The CLI only calls this.

Per input: decode, preprocess, predict (top-k), then each method explains the chosen target; overlay and
heatmap PNGs, the raw values and the record are written atomically after each input, so a re-run into the same
folder skips what is done (unless ``force``). A bad input is recorded with its reason and the batch goes on.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attrib.artifacts import RunDir, slug
from attrib.data.images import ImageSource, InputError
from attrib.evaluate.similarity import magnitude_map
from attrib.models import Model
from attrib.render.heatmap import overlay, render

GAP_WARNING = 0.05  # the IG authors' advice: check completeness within ~5%


@dataclass
class ExplainOptions:
    """What to run. ``configs`` maps a canonical method name to its option overrides."""

    methods: list[str]
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    target: int | None = None  # None: the predicted class
    top_k: int = 5
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    background: torch.Tensor | None = None
    background_name: str = ""
    force: bool = False
    magnitude: bool = False  # render sum_c |a_c| maps instead of signed channel sums


@dataclass
class Events:
    """Callbacks the CLI uses for progress and messages (all optional)."""

    input_started: Callable[[int, str], None] = lambda i, name: None
    input_done: Callable[[dict], None] = lambda record: None
    rows: Callable[[int], None] | None = None
    warning: Callable[[str], None] = lambda text: None


def resolve_device(name: str) -> str:
    """"auto" -> "cuda" when available, else "cpu"; validates explicit CUDA devices."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here (use --device cpu or auto)")
    torch.device(name)  # raises on a malformed name
    return name


def run_explain(model: Model, sources: list[ImageSource], options: ExplainOptions, run: RunDir,
                events: Events | None = None) -> dict[str, Any]:
    """Explain every source with every method into ``run``; returns the run record."""
    events = events or Events()
    model.module.to(options.device).eval()
    old = run.record
    record = _start_record(model, options, run)
    previous = {r["name"]: r for r in old.get("inputs", [])} if _compatible(old, record) else {}
    taken = {r["id"] for r in previous.values()}
    processed: list[dict] = []
    for index, source in enumerate(sources):
        events.input_started(index, source.name)
        prev = previous.pop(source.name, None)
        if prev and prev["status"] == "ok" and not options.force and _covers(prev, options.methods):
            entry = {**prev, "skipped": True}
        else:
            input_id = prev["id"] if prev else slug(source.name, taken)
            entry = _explain_one(model, source, input_id, options, run, events)
        processed.append(entry)
        record["inputs"] = processed + list(previous.values())
        run.save()
        events.input_done(entry)
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    run.save()
    return record


def rows_per_input(options: ExplainOptions) -> int:
    """Forward + input-backward rows one input costs with these methods (for progress bars)."""
    from attrib.methods import METHODS

    return sum(METHODS[m].rows(METHODS[m].make_config(**method_kwargs(m, options))) for m in options.methods)


def _compatible(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an earlier run's results can be reused: same model, target, seed, precision and configs."""
    keys = ("model", "target", "seed", "precision")
    if not old or any(old.get(k) != new.get(k) for k in keys):
        return False
    old_cfg = {m["method"]: m["config"] for m in old.get("methods", [])}
    return all(old_cfg.get(m["method"], m["config"]) == m["config"] for m in new["methods"])


def _covers(previous: dict, methods: list[str]) -> bool:
    return {a["method"] for a in previous.get("attributions", [])} >= set(methods)


def _start_record(model: Model, options: ExplainOptions, run: RunDir) -> dict[str, Any]:
    from attrib import __version__
    from attrib.methods import METHODS

    run.record = {
        "attrib_version": __version__,
        "command": "explain",
        "model": {"name": model.name, "kind": model.kind, "n_classes": model.n_classes,
                  "input_size": list(model.preprocess.size), "mean": list(model.preprocess.mean),
                  "std": list(model.preprocess.std)},
        "methods": [{"method": m, "config": describe_config(m, options), "cost": METHODS[m].cost,
                     "signed": METHODS[m].is_signed(METHODS[m].make_config(**method_kwargs(m, options)))}
                    for m in options.methods],
        "target": "pred" if options.target is None else options.target,
        "seed": options.seed, "device": options.device, "precision": options.precision,
        "view": "magnitude" if options.magnitude else "signed",
        "background": options.background_name or None,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "inputs": [],
    }
    return run.record


def method_kwargs(method: str, options: ExplainOptions) -> dict[str, Any]:
    """The method's options for this run (the --set overrides, plus the background for expected_gradients)."""
    config = dict(options.configs.get(method, {}))
    if method == "expected_gradients":
        config["background"] = options.background
    return config


def describe_config(method: str, options: ExplainOptions) -> dict[str, Any]:
    """The resolved config with tensors replaced by a description (for run.json and reports)."""
    from attrib.methods import METHODS

    cfg = METHODS[method].make_config(**method_kwargs(method, options))
    out = {}
    for key, value in vars(cfg).items():
        if isinstance(value, torch.Tensor):
            value = options.background_name if key == "background" else f"tensor{tuple(value.shape)}"
        out[key] = value
    return out


def _explain_one(model: Model, source: ImageSource, input_id: str, options: ExplainOptions, run: RunDir,
                 events: Events) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": source.name, "path": source.path, "id": input_id, "status": "ok",
                             "error": None, "predictions": [], "attributions": []}
    try:
        view = model.preprocess.view(source.load())
    except InputError as error:
        return {**entry, "status": "error", "error": str(error)}
    x = model.preprocess.tensor(view)[None]
    entry["view"] = run.write_png(f"images/{input_id}/input.png", view)
    entry["predictions"] = top_predictions(model, x, options)
    for method in options.methods:
        try:
            entry["attributions"].append(_attribute_one(model, x, view, method, input_id, options, run, events))
        except (RuntimeError, ValueError) as error:  # e.g. an input size this model cannot take
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return {**entry, "status": "error", "error": f"{source.name}: {method} failed: {reason}"}
    return entry


def top_predictions(model: Model, x: torch.Tensor, options: ExplainOptions) -> list[dict[str, Any]]:
    """The top-k classes with labels and softmax probabilities."""
    with torch.inference_mode():
        probs = model.module(x.to(options.device)).float().softmax(dim=1)[0].cpu()
    values, indices = probs.topk(min(options.top_k, len(probs)))
    return [{"index": int(i), "label": model.labels[int(i)], "prob": float(v)} for v, i in zip(values, indices)]


def _attribute_one(model: Model, x: torch.Tensor, view, method: str, input_id: str, options: ExplainOptions,
                   run: RunDir, events: Events) -> dict[str, Any]:
    from attrib.api import attribute

    result = attribute(model.module, x, method, options.target, seed=options.seed, device=options.device,
                       precision=options.precision, progress=events.rows, **method_kwargs(method, options))
    values = result.values[0].numpy()
    run.arrays[f"{input_id}/{method}"] = values
    heat = render(magnitude_map(values), False) if options.magnitude else render(values, result.signed)
    if heat.warning:
        events.warning(f"{input_id} / {method}: {heat.warning}")
    gap = None if result.completeness_gap is None else float(result.completeness_gap[0])
    if gap is not None and gap > GAP_WARNING:
        events.warning(f"{input_id} / {method}: completeness gap {gap:.1%} > {GAP_WARNING:.0%}; "
                       "raise n_steps / n_samples (--set) for a faithful map")
    return {"method": method, "target": result.target[0] if result.target else None,
            "target_label": model.labels[result.target[0]] if result.target else None,
            "completeness_gap": gap, "seconds": round(result.seconds, 3), "passes": result.passes,
            "scale": heat.scale, "warning": heat.warning,
            "heatmap": run.write_png(f"images/{input_id}/{method}_heatmap.png", heat.image),
            "overlay": run.write_png(f"images/{input_id}/{method}_overlay.png", overlay(view, heat))}
