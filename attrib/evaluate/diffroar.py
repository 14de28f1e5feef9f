"""DiffROAR (Shah, Jain & Netrapalli, NeurIPS 2021): do attributions rank the coordinates a model needs?

DiffROAR(A, k) = acc(retrained on the top-k fraction of coordinates by |A|, others masked)
               - acc(retrained on the bottom-k fraction)
Attributions come from the model under evaluation (each example's true-label logit) on the train and test
splits; masked coordinates take the scalar mean of the normalised training data; a fresh model of the same
architecture is trained on each masked train set (standard training, the model's recipe) and scored on the
identically masked test set. A ``random`` attribution is always run as the control (it should give ~0).

This module holds the numbers only; job files, caches and the run record live in attrib/runs/diffroar.py and
attrib/jobs/diffroar.py.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from attrib.errors import AttribError
from attrib.rng import GENERATOR, MAX_SEED
from attrib.evaluate.masking import apply_mask, keep_mask, mass_share
from attrib.training import Recipe, accuracy, init_seeded, train

CONTROL = "random"
SIDES = ("top", "bottom")
DEFAULT_KS = (0.05, 0.1, 0.2, 0.3, 0.5)
ATTRIBUTION_BLOCK = 256  # examples per attribute() call (bounds memory, paces the progress bar)


class DiffRoarError(AttribError):
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
    retrain_device: str | None = None  # where the retrains run (None: ``device``; a cluster's task device)
    architecture: dict[str, Any] = field(default_factory=dict)  # the factory's build arguments (build_arguments)
    code: str | None = None  # the sha256 of the model's code (your own), so that an edit retrains every job

    @property
    def all_methods(self) -> list[str]:
        return [*self.methods, CONTROL]


def build_arguments(factory: Callable[[], torch.nn.Module]) -> dict[str, Any]:
    """The keyword arguments a model's factory builds with (timm: ``num_classes`` and ``in_chans``, read from
    ``--weights``), as plain data: a job rebuilds its fresh model from the spec with them, since the spec alone
    gives the architecture's defaults (1000 classes) and the weights file may not be where the job runs."""
    keywords = getattr(factory, "keywords", {})
    return {k: v for k, v in keywords.items() if k != "pretrained" and isinstance(v, int | float | str | bool)}


def job_id(method: str, k: float, side: str, seed: int) -> str:
    return f"{method}-k{k:g}-{side}-s{seed}"


def retrain_recipe(card: dict[str, Any], config: DiffRoarConfig) -> Recipe:
    """The model's own recipe with standard training, ``config.epochs`` epochs and any lr/batch override."""
    base = Recipe(**card["recipe"]) if "recipe" in card else Recipe(lower=None, upper=None)
    changes: dict[str, Any] = {"eps": 0.0, "epochs": config.epochs, "warmup_epochs": 0}
    if config.lr is not None:
        changes["lr"] = config.lr
    if config.batch_size is not None:
        changes["batch_size"] = config.batch_size
    return replace(base, **changes)


def plan(config: DiffRoarConfig, recipe: Recipe, fill: float, attribution_files: dict[str, str],
         stamps: dict[str, str] | None = None, data: str | None = None) -> list[dict]:
    """One job per (method, k, side, seed): everything a retrain needs, as plain data; ``stamps``: a digest of
    what each method's attributions were made from, so that a result made from other attributions (other
    method options, other weights) is not taken as this job's; ``data``: the data set's digest (``Dataset.digest``),
    so that a result made from other data is not either, and a retrain refuses data built otherwise."""
    stamps = stamps or {}
    return [{"id": job_id(method, k, side, seed), "method": method, "k": k, "side": side, "seed": seed,
             "model": config.model, "architecture": config.architecture, "dataset": config.dataset,
             **({"data_sha256": data} if data else {}), "fill": fill,
             "attributions": attribution_files.get(method), "attributions_stamp": stamps.get(method),
             "recipe": recipe.to_dict(), **({"code": config.code} if config.code else {}),
             "device": config.retrain_device or config.device, "random": GENERATOR}
            for method in config.all_methods for k in config.ks for seed in range(config.seeds) for side in SIDES]


def attribute_split(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, method: str,
                    options: dict[str, Any], seed: int, device: str,
                    advance: Callable[[int], None] = lambda n: None) -> torch.Tensor:
    """Attributions of each example's true-label logit, in blocks of ATTRIBUTION_BLOCK examples."""
    from attrib.api import attribute

    parts = []
    for start in range(0, len(y), ATTRIBUTION_BLOCK):
        block = slice(start, start + ATTRIBUTION_BLOCK)
        block_seed = (seed + start) % (MAX_SEED + 1)  # the same as seed + start below the largest seeds
        result = attribute(module, x[block], method, y[block].tolist(), seed=block_seed, device=device, **options)
        parts.append(result.values)
        advance(len(y[block]))
    return torch.cat(parts)


def retrain(job: dict, factory: Callable[[], torch.nn.Module], splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
            attributions: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Train a fresh model on the job's masked train split; its accuracy on the masked test split."""
    start = time.perf_counter()
    device = job["device"]
    masked = {}
    for split, (x, y) in splits.items():
        keep = keep_mask(attributions[split], job["k"], job["side"], job["seed"], split)
        masked[split] = apply_mask(x, keep, job["fill"]).to(device), y.to(device)
    model = init_seeded(factory, job["seed"]).to(device)
    (train_x, train_y), (test_x, test_y) = masked["train"], masked["test"]
    train(model, train_x, train_y, Recipe(**job["recipe"]), seed=job["seed"])
    return {"job": job, "accuracy": accuracy(model, test_x, test_y),
            "train_accuracy": accuracy(model, train_x, train_y), "weights_sha256": weights_digest(model),
            "seconds": round(time.perf_counter() - start, 2)}


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the trained state (names, shapes, dtypes and values in order): equal runs give equal digests."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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


def null_block_share(values: torch.Tensor, region: torch.Tensor) -> float:
    """The mean share of |attribution| on the null block over examples (blockdigits)."""
    return float(np.nanmean(mass_share(values, region).numpy()))


def epoch_seconds(factory: Callable[[], torch.nn.Module], x: torch.Tensor, y: torch.Tensor, recipe: Recipe,
                  device: str) -> float:
    """Seconds one training epoch of a fresh model takes here (for the time estimate)."""
    fresh = init_seeded(factory, 0).to(device)
    x, y = x.to(device), y.to(device)
    train(fresh, x[:recipe.batch_size], y[:recipe.batch_size], replace(recipe, epochs=1))  # warm-up
    start = time.perf_counter()
    train(fresh, x, y, replace(recipe, epochs=1))
    return time.perf_counter() - start


def check_compatible(model, data) -> None:
    """DiffROAR needs a buildable architecture that accepts the data set's inputs and labels."""
    if model.factory is None:
        raise DiffRoarError(f"{model.name}: attrib cannot build a fresh copy of this architecture to retrain; "
                            "use a sample: or timm: model")
    if len(set(data.train_y.tolist())) < 2:
        raise DiffRoarError(f"{data.name}: its training examples are all of one class; DiffROAR retrains a "
                            "classifier, which needs two classes or more")
    outputs = model.outputs_on(data.test_x, data.name)
    n_labels = int(max(data.train_y.max(), data.test_y.max())) + 1
    if outputs.ndim != 2 or outputs.shape[1] < n_labels:
        raise DiffRoarError(f"{model.name} has {outputs.shape[-1]} outputs but {data.name} has {n_labels} classes")
