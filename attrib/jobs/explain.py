"""The explain job: image inputs x methods -> attributions, heatmaps and a run folder.

Per input: decode, preprocess, predict (top-k), then each method explains the chosen target; the input's
arrays, PNGs and record are written atomically as soon as it is done, so a re-run into the same folder skips
what is finished (unless ``force``). A bad input is recorded with its reason and the batch goes on.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attrib.errors import AttribError, UsageError, first_line
from attrib.jobs.common import (Events, describe_methods, header, method_kwargs, now, resolve_device,
                                resolve_methods, supplies)
from attrib.runs.store import RunStore, slug

class MethodFailed(AttribError):
    """A method that could not explain one input (e.g. an input size the model cannot take)."""


GAP_WARNING = 0.05  # the IG authors' advice: check completeness within ~5%
KIND = "explain"


@dataclass
class Options:
    """What to explain, with what. Method names may be aliases; ``settings`` are ``--set`` items."""

    inputs: list[str] = field(default_factory=list)  # files, folders, globs, sample:NAME; [] = built-in samples
    model: str | None = None
    weights: str | None = None
    pretrained: bool = True
    trust_remote_code: bool = False
    methods: list[str] = field(default_factory=lambda: ["integrated_gradients"])
    settings: list[str] = field(default_factory=list)
    target: str = "pred"
    top_k: int = 5
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    background: str | None = None  # a folder of reference images for methods that need one
    magnitude: bool = False  # render sum_c |a_c| maps instead of signed channel sums
    force: bool = False


@dataclass
class Plan:
    """Everything validated and loaded before the first input runs."""

    model: Any
    methods: list[str]
    kwargs: dict[str, dict[str, Any]]
    target: int | None
    device: str
    background: str | None
    record: dict[str, Any]


def prepare(options: Options, events: Events) -> Plan:
    """Validate the options and load the model; a usage error raises an AttribError before any work."""
    from attrib.models import load_model
    from attrib.targets import parse_class

    names, overrides = resolve_methods(options.methods or ["integrated_gradients"], options.settings,
                                       inputs="tensor", supplied={"background"}, where="attrib explain")
    device = resolve_device(options.device)
    events.info("loading model ...")
    model = load_model(options.model, weights=options.weights, pretrained=options.pretrained,
                       trust_remote_code=options.trust_remote_code)
    if model.kind != "image":
        raise UsageError(f"{model.name} takes {model.kind} inputs, not images; evaluate it with "
                         "`attrib diffroar` or `attrib sanity` on its data set")
    target = parse_class(options.target, model.labels)
    supplied, descriptions = supplies(names, model, events, folder=options.background, seed=options.seed)
    kwargs = {n: method_kwargs(n, overrides.get(n, {}), supplied) for n in names}
    methods = describe_methods(names, kwargs, descriptions)
    record = header(KIND, model=model.describe(), methods=methods, seed=options.seed, device=device,
                    precision=options.precision, target="pred" if target is None else target,
                    view="magnitude" if options.magnitude else "signed",
                    background=descriptions.get("background"), inputs=[])
    events.info(f"model: {model.name}; methods: {', '.join(names)}; device: {device}")
    return Plan(model, names, kwargs, target, device, descriptions.get("background"), record)


def rows_per_input(plan: Plan) -> int:
    """Forward + input-backward rows one input costs with these methods (for progress bars)."""
    from attrib.methods import METHODS

    return sum(METHODS[m].rows(METHODS[m].make_config(**plan.kwargs[m])) for m in plan.methods)


def run(options: Options, store: RunStore, events: Events | None = None) -> dict[str, Any]:
    """Explain every input with every method into ``store``; returns the run record."""
    from attrib.data.images import expand_inputs

    events = events or Events()
    plan = prepare(options, events)
    sources = expand_inputs(options.inputs)
    plan.model.module.to(plan.device).eval()
    record = plan.record
    old = store.read_record()
    previous = {r["name"]: r for r in old.get("inputs", [])} if _compatible(old, record) else {}
    taken = {r["id"] for r in previous.values()}
    processed: list[dict] = []
    events.task("inputs", "inputs", len(sources))
    for index, source in enumerate(sources):
        events.advance("inputs", 0, f"[{index + 1}/{len(sources)}] {source.name}")
        events.task("rows", "passes", rows_per_input(plan))
        prev = previous.pop(source.name, None)
        if prev and prev["status"] == "ok" and not options.force and _covers(prev, plan.methods):
            entry = {**prev, "skipped": True}
        else:
            entry = explain_one(plan, source, prev["id"] if prev else slug(source.name, taken), options, store,
                                events)
        processed.append(entry)
        record["inputs"] = processed + list(previous.values())
        store.write_record(record)
        events.advance("inputs", 1)
        events.item(entry)
    record["finished"] = now()
    store.write_record(record)
    return record


def _compatible(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an earlier run's results can be reused: same model, target, seed, precision and configs."""
    keys = ("model", "target", "seed", "precision")
    if not old or old.get("kind") != KIND or any(old.get(k) != new.get(k) for k in keys):
        return False
    old_cfg = {m["method"]: m["config"] for m in old.get("methods", [])}
    return all(old_cfg.get(m["method"], m["config"]) == m["config"] for m in new["methods"])


def _covers(previous: dict, methods: list[str]) -> bool:
    return {a["method"] for a in previous.get("attributions", [])} >= set(methods)


def explain_one(plan: Plan, source, input_id: str, options: Options, store: RunStore,
                events: Events) -> dict[str, Any]:
    """One input: predictions, then every method; its files are written before this returns."""
    from attrib.data.images import InputError

    entry: dict[str, Any] = {"name": source.name, "path": source.path, "id": input_id, "status": "ok",
                             "error": None, "predictions": [], "attributions": []}
    try:
        view = plan.model.preprocess.view(source.load())
    except InputError as error:
        return {**entry, "status": "error", "error": str(error)}
    x = plan.model.preprocess.tensor(view)[None]
    entry["view"] = store.write_png(f"images/{input_id}/input.png", view)
    arrays = {}
    try:
        outputs = _predict(plan, x, options)
        entry["predictions"] = top_predictions(outputs[0], plan.model.labels, options.top_k)
        target = int(outputs[0].argmax()) if plan.target is None else plan.target
        for method in plan.methods:
            values, summary = _attribute(plan, x, view, method, target, input_id, options, store, events)
            arrays[method] = values
            entry["attributions"].append(summary)
    except Exception as error:  # noqa: BLE001 - one input's failure must not stop the batch
        return {**entry, "status": "error", "error": _failure(source.name, error, events)}
    store.write_arrays(input_id, arrays)
    return entry


def _failure(name: str, error: BaseException, events: Events) -> str:
    """One line for a failed input; the traceback goes to the detail channel (-v) when it is unexpected."""
    if isinstance(error, (AttribError, RuntimeError, ValueError)):
        return f"{name}: {first_line(error)}"
    events.detail("".join(traceback.format_exception(error)))
    return f"{name}: unexpected {type(error).__name__}: {first_line(error)} (run with -v for the traceback)"


def _predict(plan: Plan, x: torch.Tensor, options: Options) -> torch.Tensor:
    from attrib.api import predict

    return predict(plan.model.module, x, device=plan.device, precision=options.precision)


def top_predictions(outputs: torch.Tensor, labels: list[str], k: int) -> list[dict[str, Any]]:
    """The top-k classes of one output row, with labels and softmax probabilities."""
    probs = outputs.float().softmax(dim=0)
    values, indices = probs.topk(min(k, len(probs)))
    return [{"index": int(i), "label": labels[int(i)], "prob": float(v)} for v, i in zip(values, indices)]


def _attribute(plan: Plan, x, view, method: str, target: int, input_id: str, options: Options, store: RunStore,
               events: Events):
    from attrib.api import attribute
    from attrib.evaluate.similarity import magnitude_map
    from attrib.render.heatmap import overlay, render

    try:
        result = attribute(plan.model.module, x, method, target, seed=options.seed, device=plan.device,
                           precision=options.precision, progress=lambda n: events.advance("rows", n),
                           **plan.kwargs[method])
    except (RuntimeError, ValueError) as error:  # e.g. an input size this model cannot take
        raise MethodFailed(f"{method} failed: {first_line(error)}") from error
    values = result.values[0].numpy()
    heat = render(magnitude_map(values), False) if options.magnitude else render(values, result.signed)
    if heat.warning:
        events.warning(f"{input_id} / {method}: {heat.warning}")
    gap = None if result.completeness_gap is None else float(result.completeness_gap[0])
    if gap is not None and gap > GAP_WARNING:
        events.warning(f"{input_id} / {method}: completeness gap {gap:.1%} > {GAP_WARNING:.0%}; "
                       "raise n_steps / n_samples (--set) for a faithful map")
    return values, {
        "method": method, "target": result.target[0] if result.target else None,
        "target_label": plan.model.labels[result.target[0]] if result.target else None,
        "completeness_gap": gap, "seconds": round(result.seconds, 3), "passes": result.passes,
        "scale": heat.scale, "warning": heat.warning,
        "heatmap": store.write_png(f"images/{input_id}/{method}_heatmap.png", heat.image),
        "overlay": store.write_png(f"images/{input_id}/{method}_overlay.png", overlay(view, heat))}


def json_view(record: dict[str, Any], out: Path) -> dict[str, Any]:
    """The ``--json`` object: the run's facts with file paths made absolute."""
    def files(entry: dict) -> list[dict]:
        return [{"method": a["method"], "target": a["target"], "target_label": a.get("target_label"),
                 "completeness_gap": a["completeness_gap"], "seconds": a["seconds"],
                 "overlay": str(out / a["overlay"]), "heatmap": str(out / a["heatmap"])}
                for a in entry.get("attributions", [])]

    inputs = [{"path": r["path"] or r["name"], "status": r["status"], "error": r["error"],
               "predictions": r.get("predictions", []), "attributions": files(r)} for r in record["inputs"]]
    return {"inputs": inputs, "out_dir": str(out), "model": record["model"]["name"],
            "methods": record["methods"], "seed": record["seed"], "device": record["device"],
            "background": record["background"]}


def exit_code(record: dict[str, Any]) -> int:
    """0 when every input was explained, 1 when some failed."""
    return 1 if any(r["status"] != "ok" for r in record["inputs"]) else 0
