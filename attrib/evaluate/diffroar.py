"""DiffROAR (Shah, Jain & Netrapalli, NeurIPS 2021): do attributions rank the coordinates a model needs?

DiffROAR(A, k) = acc(retrained on the top-k fraction of coordinates by |A|, others masked)
               - acc(retrained on the bottom-k fraction)
Attributions come from the model under evaluation (each example's true-label logit) on the train and test
splits; masked coordinates take the scalar mean of the normalised training data; a fresh model of the same
architecture is trained on each masked train set (standard training, the model's recipe) and scored on the
identically masked test set. A ``random`` attribution is always run as the control (it should give ~0).

Layout of a run folder (every file written atomically, so an interrupted run resumes):
    attributions/METHOD.npz   train and test attributions (cached; reused when the config matches)
    jobs/ID.json              one retrain: method, k, side, seed, and everything needed to run it anywhere
    jobs/ID.result.json       its accuracy, written when it completes
    run.json, diffroar.png    the aggregate, written at the end
Each job is independent (``python -m attrib.evaluate.diffroar OUT/jobs/*.json`` runs any subset), so the
retrains can be spread over processes, GPUs or machines and collected by rerunning ``attrib diffroar``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrib.artifacts import atomic_write_json, atomic_write_npz, describe_tensors
from attrib.evaluate.masking import apply_mask, keep_mask, mass_share, random_attributions
from attrib.training import Recipe, accuracy, init_seeded, train

CONTROL = "random"
SIDES = ("top", "bottom")
DEFAULT_KS = (0.05, 0.1, 0.2, 0.3, 0.5)
ATTRIBUTION_BLOCK = 256  # examples per attribute() call (bounds memory, paces the progress bar)


class DiffRoarError(Exception):
    """A DiffROAR run that cannot start; one line for the user."""


@dataclass
class DiffRoarConfig:
    """What to evaluate. ``methods`` excludes the control, which is always added; ``configs`` holds each
    method's option overrides; ``lr``/``batch_size`` None take the model's own recipe."""

    model: str
    dataset: dict[str, Any]
    methods: list[str]
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    ks: list[float] = field(default_factory=lambda: list(DEFAULT_KS))
    seeds: int = 1
    epochs: int = 10
    lr: float | None = None
    batch_size: int | None = None
    attribution_seed: int = 0
    device: str = "cpu"

    @property
    def all_methods(self) -> list[str]:
        return [*self.methods, CONTROL]


@dataclass
class Events:
    """Progress callbacks (all optional)."""

    stage: Callable[[str, int], None] = lambda name, total: None
    advance: Callable[[int], None] = lambda n: None
    job_done: Callable[[dict], None] = lambda result: None


def job_id(method: str, k: float, side: str, seed: int) -> str:
    return f"{method}-k{k:g}-{side}-s{seed}"


@lru_cache(maxsize=4)
def _dataset(spec_json: str):
    from attrib.data.datasets import load_dataset

    return load_dataset(**json.loads(spec_json))


@lru_cache(maxsize=4)
def _model(spec: str):
    """The model a job's architecture comes from (its weights are not needed: jobs train fresh copies)."""
    from attrib.models import load_model

    return load_model(spec, pretrained=False)


def dataset_of(spec: dict[str, Any]):
    """The (cached) data set for a spec dict."""
    return _dataset(json.dumps(spec, sort_keys=True))


def retrain_recipe(model, config: DiffRoarConfig) -> Recipe:
    """The model's own recipe with standard training, ``config.epochs`` epochs and any lr/batch override."""
    base = Recipe(**model.card["recipe"]) if "recipe" in model.card else Recipe(lower=None, upper=None)
    changes: dict[str, Any] = {"eps": 0.0, "epochs": config.epochs, "warmup_epochs": 0}
    if config.lr is not None:
        changes["lr"] = config.lr
    if config.batch_size is not None:
        changes["batch_size"] = config.batch_size
    return replace(base, **changes)


def compute_attributions(model, data, method: str, options: dict[str, Any], out: Path, seed: int,
                         device: str, events: Events) -> Path:
    """Attributions of ``method`` on both splits, cached in ``out/attributions/METHOD.npz``."""
    path = out / "attributions" / f"{method}.npz"
    stamp = json.dumps({"method": method, "options": describe_tensors(options), "seed": seed, "model": model.name,
                        "dataset": data.spec}, sort_keys=True, default=str)
    if path.is_file():
        with np.load(path) as cached:
            if str(cached["stamp"]) == stamp:
                return path
    arrays = {"stamp": np.array(stamp)}
    for split in ("train", "test"):
        x, y = data.split(split)
        arrays[split] = _attribute_split(model, x, y, method, options, seed, device, events).numpy()
    atomic_write_npz(path, arrays)
    return path


def _attribute_split(model, x, y, method, options, seed, device, events) -> torch.Tensor:
    from attrib.api import attribute

    parts = []
    for start in range(0, len(y), ATTRIBUTION_BLOCK):
        block = slice(start, start + ATTRIBUTION_BLOCK)
        result = attribute(model.module, x[block], method, y[block].tolist(), seed=seed + start, device=device,
                           **options)
        parts.append(result.values)
        events.advance(len(y[block]))
    return torch.cat(parts)


def method_options(method: str, config: DiffRoarConfig, data) -> dict[str, Any]:
    """The method's overrides; expected_gradients gets 64 random training examples as its background."""
    options = dict(config.configs.get(method, {}))
    if method == "expected_gradients" and "background" not in options:
        pick = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(config.attribution_seed))
        options["background"] = data.train_x[pick[:64]]
    return options


def plan_jobs(config: DiffRoarConfig, out: Path, attribution_files: dict[str, Path], recipe: Recipe,
              fill: float) -> list[Path]:
    """Write one job file per (method, k, side, seed); returns their paths."""
    paths = []
    for method in config.all_methods:
        for k in config.ks:
            for seed in range(config.seeds):
                for side in SIDES:
                    job = {"id": job_id(method, k, side, seed), "method": method, "k": k, "side": side,
                           "seed": seed, "model": config.model, "dataset": config.dataset, "fill": fill,
                           "attributions": _relative(attribution_files.get(method), out),
                           "recipe": recipe.to_dict(), "device": config.device}
                    path = out / "jobs" / f"{job['id']}.json"
                    if not path.is_file() or json.loads(path.read_text()) != job:
                        atomic_write_json(path, job)
                    paths.append(path)
    return paths


def _relative(path: Path | None, root: Path) -> str | None:
    return None if path is None else str(path.relative_to(root))


def result_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.name.replace(".json", ".result.json"))


def done_result(job_path: Path) -> dict | None:
    """The job's result when it completed with exactly this job's inputs, else None."""
    path = result_path(job_path)
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return result if result.get("job") == json.loads(job_path.read_text()) else None


def run_job(job_path: str | Path) -> dict:
    """Run one retrain job and write its result file next to it; returns the result."""
    job_path = Path(job_path)
    job = json.loads(job_path.read_text())
    start = time.perf_counter()
    data = dataset_of(job["dataset"])
    masked = {split: _masked_split(job, data, split, job_path.parent.parent) for split in ("train", "test")}
    device = job["device"]
    factory = _model(job["model"]).factory
    model = init_seeded(factory, job["seed"]).to(device)
    (train_x, train_y), (test_x, test_y) = masked["train"], masked["test"]
    train(model, train_x.to(device), train_y.to(device), Recipe(**job["recipe"]), seed=job["seed"])
    result = {"job": job, "accuracy": accuracy(model, test_x.to(device), test_y.to(device)),
              "train_accuracy": accuracy(model, train_x.to(device), train_y.to(device)),
              "seconds": round(time.perf_counter() - start, 2)}
    atomic_write_json(result_path(job_path), result)
    return result


def _masked_split(job: dict, data, split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = data.split(split)
    values = load_attributions(root, job, split, tuple(x.shape))
    keep = keep_mask(values, job["k"], job["side"], job["seed"], split)
    return apply_mask(x, keep, job["fill"]), y


def load_attributions(root: Path, job: dict, split: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A job's attributions for one split (the control draws its own per seed)."""
    if job["method"] == CONTROL:
        return random_attributions(shape, job["seed"], split)
    with np.load(root / job["attributions"]) as arrays:
        return torch.from_numpy(arrays[split])


def aggregate(results: list[dict]) -> list[dict]:
    """Per (method, k): DiffROAR = mean over seeds of acc(top) - acc(bottom), with its std over seeds."""
    table: dict[tuple[str, float], dict[int, dict[str, float]]] = {}
    for r in results:
        job = r["job"]
        table.setdefault((job["method"], job["k"]), {}).setdefault(job["seed"], {})[job["side"]] = r["accuracy"]
    rows = []
    for (method, k), seeds in table.items():
        pairs = [(s["top"], s["bottom"]) for s in seeds.values() if "top" in s and "bottom" in s]
        if not pairs:
            continue
        top, bottom = np.array(pairs).T
        diff = top - bottom
        rows.append({"method": method, "k": k, "diffroar": float(diff.mean()),
                     "std": float(diff.std(ddof=1)) if len(diff) > 1 else 0.0, "acc_top": float(top.mean()),
                     "acc_bottom": float(bottom.mean()), "n_seeds": len(diff)})
    return rows


def null_block_shares(root: Path, config: DiffRoarConfig, data) -> dict[str, float] | None:
    """blockdigits: per method, the mean share of |attribution| on the null block over test examples."""
    if data.null_masks is None:
        return None
    region = data.null_masks["test"]
    shares = {}
    for method in config.all_methods:
        job = {"method": method, "seed": 0, "attributions": f"attributions/{method}.npz"}
        values = load_attributions(root, job, "test", tuple(data.test_x.shape))
        shares[method] = float(np.nanmean(mass_share(values, region).numpy()))
    return shares


def epoch_seconds(model, data, recipe: Recipe, device: str) -> float:
    """Seconds one training epoch of a fresh model takes here (for the time estimate)."""
    fresh = init_seeded(model.factory, 0).to(device)
    x, y = data.train_x.to(device), data.train_y.to(device)
    train(fresh, x[:recipe.batch_size], y[:recipe.batch_size], replace(recipe, epochs=1))  # warm-up
    start = time.perf_counter()
    train(fresh, x, y, replace(recipe, epochs=1))
    return time.perf_counter() - start


def run_diffroar(model, config: DiffRoarConfig, out: Path, events: Events | None = None,
                 plan_only: bool = False, on_plan: Callable[[int, int, float], None] | None = None) -> dict:
    """The whole evaluation: attributions, job files, pending retrains, aggregate; returns the run record.

    ``on_plan(n_jobs, n_pending, estimated_seconds)`` is called before the first retrain.
    """
    events = events or Events()
    data = dataset_of(config.dataset)
    check_compatible(model, data)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    events.stage("attributions", len(config.methods) * (len(data.train_y) + len(data.test_y)))
    files = {m: compute_attributions(model, data, m, method_options(m, config, data), out,
                                     config.attribution_seed, config.device, events) for m in config.methods}
    recipe = retrain_recipe(model, config)
    paths = plan_jobs(config, out, files, recipe, data.fill_value())
    pending = [p for p in paths if done_result(p) is None]
    if on_plan is not None:
        per_job = 1.2 * epoch_seconds(model, data, recipe, config.device) * recipe.epochs if pending else 0.0
        on_plan(len(paths), len(pending), per_job * len(pending))  # 1.2: masking and evaluation
    if not plan_only:
        events.stage("retrains", len(pending))
        for path in pending:
            events.job_done(run_job(path))
            events.advance(1)
    results = [r for r in (done_result(p) for p in paths) if r is not None]
    record = _record(model, config, data, recipe, results, started, len(paths))
    record["null_block_share"] = null_block_shares(out, config, data)
    if record["complete"]:
        from attrib.render.plots import diffroar_plot

        record["plot"] = diffroar_plot(record["results"], out / "diffroar.png", f"{model.name} on {data.name}")
    atomic_write_json(out / "run.json", record)
    return record


def check_compatible(model, data) -> None:
    """DiffROAR needs a buildable architecture that accepts the data set's inputs and labels."""
    if model.factory is None:
        raise DiffRoarError(f"{model.name}: attrib cannot build a fresh copy of this architecture to retrain; "
                            "use a sample: or timm: model")
    try:
        with torch.no_grad():
            outputs = model.module.eval()(data.test_x[:2].to(next(model.module.parameters()).device))
    except Exception as error:  # noqa: BLE001 - shape errors come in many types
        raise DiffRoarError(f"{model.name} cannot take {data.name} inputs of shape {data.input_shape}: "
                            f"{str(error).splitlines()[0][:120]}") from None
    n_labels = int(max(data.train_y.max(), data.test_y.max())) + 1
    if outputs.ndim != 2 or outputs.shape[1] < n_labels:
        raise DiffRoarError(f"{model.name} has {outputs.shape[-1]} outputs but {data.name} has {n_labels} classes")


def _record(model, config, data, recipe, results, started, n_jobs) -> dict:
    from attrib import __version__

    return {"kind": "diffroar", "attrib_version": __version__, "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "model": {"name": model.name, "card": model.card},
            "dataset": {**data.spec, "name": data.name, "n_train": len(data.train_y), "n_test": len(data.test_y),
                        "input_shape": list(data.input_shape), "fill": data.fill_value()},
            "model_test_accuracy": accuracy(model.module, data.test_x, data.test_y),
            "config": config_dict(config), "retrain_recipe": recipe.to_dict(), "target": "true label logit",
            "results": aggregate(results), "jobs": n_jobs, "jobs_done": len(results),
            "complete": len(results) == n_jobs, "retrain_seconds": round(sum(r["seconds"] for r in results), 1),
            "versions": {"torch": torch.__version__}}


def config_dict(config: DiffRoarConfig) -> dict[str, Any]:
    out = asdict(config)
    out["configs"] = {m: describe_tensors(c) for m, c in config.configs.items()}
    return out


def main(argv: list[str]) -> int:
    """Run the given job files (a worker: ``python -m attrib.evaluate.diffroar OUT/jobs/*.json``)."""
    jobs = [Path(p) for p in argv if not p.endswith(".result.json")]
    for path in jobs:
        if done_result(path) is None:
            result = run_job(path)
            print(f"{path.stem}: accuracy {result['accuracy']:.4f} ({result['seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
