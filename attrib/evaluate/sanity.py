"""Sanity checks for saliency maps: does a map depend on the model, survive a small perturbation, add up?

- Randomization (Adebayo et al. 2018): cascading and independent re-initialisation of layer groups
  (attrib/evaluate/randomization.py); the randomized model explains its own predicted class; similarity to
  the original maps by Spearman on |.| maps, Spearman on signed maps, SSIM and HOG Spearman. Sample models
  also get data randomization: the same recipe trained on permuted labels.
- Robustness (Ghorbani et al.; Wang & Kong 2022): random perturbations of a given norm and the top-k attack
  (attrib/evaluate/robustness.py), keeping the predicted label; top-k intersection, Kendall's tau-b, Spearman,
  cosine and SSIM between clean and perturbed magnitude maps.
- Completeness: |sum of attributions - (F(x) - F(x'))| / |F(x) - F(x')| for IG (n_steps) and EG (n_samples).
Values are averaged over inputs. Verdicts compare them with the thresholds in ``THRESHOLDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attrib.evaluate import similarity as sim
from attrib.evaluate.randomization import layer_groups, randomized, select
from attrib.evaluate.robustness import random_perturbations, topk_attack

TESTS = ("randomization", "robustness", "completeness")
THRESHOLDS = {"randomization": 0.5, "robustness": 0.5, "completeness": 0.05}
PATH_METHODS = {"integrated_gradients": "n_steps", "expected_gradients": "n_samples"}


@dataclass
class SanityConfig:
    """What to check; ``configs`` holds each method's option overrides (incl. an EG background)."""

    methods: list[str]
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tests: list[str] = field(default_factory=lambda: list(TESTS))
    layers: list[str] | None = None
    max_layers: int = 4
    radii: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    norm: str = "l2"
    fraction: float = 0.1
    attack_steps: int = 10
    steps: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    seed: int = 0
    device: str = "cpu"


@dataclass
class Events:
    total: Callable[[int], None] = lambda n: None
    advance: Callable[[str], None] = lambda what: None


class Checker:
    """Runs the checks for one model and a batch of inputs."""

    def __init__(self, model, x: torch.Tensor, config: SanityConfig, events: Events | None = None) -> None:
        self.model, self.x, self.config = model, x.to(config.device), config
        self.events = events or Events()
        self.module = model.module.to(config.device).eval()
        with torch.no_grad():
            self.labels = self.module(self.x).argmax(1)

    def explain(self, module: torch.nn.Module, x: torch.Tensor, method: str, **extra: Any) -> np.ndarray:
        from attrib.api import attribute

        options = {**self.config.configs.get(method, {}), **extra}
        values = attribute(module, x, method, None, seed=self.config.seed, device=self.config.device, **options)
        self.events.advance(method)
        return values.values.numpy()

    def clean_maps(self) -> dict[str, np.ndarray]:
        return {m: self.explain(self.module, self.x, m) for m in self.config.methods}

    def randomization(self, clean: dict[str, np.ndarray], permuted: torch.nn.Module | None = None) -> list[dict]:
        """Rows per (method, mode, layer): mean similarities to the clean maps; ``strips`` keeps input 0's maps."""
        groups = layer_groups(self.module)
        report = select(groups, self.config.layers, self.config.max_layers)
        rows, self.strips = [], {m: [("original", clean[m][0])] for m in self.config.methods}
        for mode in ("cascading", "independent"):
            for group, depth, copy_ in randomized(self.module, groups, report, mode, self.config.seed):
                rows += self._compare_model(copy_, clean, mode, group.label, depth)
        if permuted is not None:
            rows += self._compare_model(permuted.to(self.config.device).eval(), clean, "data", "labels permuted", 0)
        return rows

    def _compare_model(self, module, clean, mode, layer, depth) -> list[dict]:
        rows = []
        for method in self.config.methods:
            maps = self.explain(module, self.x, method)
            if mode == "cascading":
                self.strips[method].append((layer, maps[0]))
            rows.append({"method": method, "mode": mode, "layer": layer, "depth": depth,
                         **_mean(compare_maps(a, b) for a, b in zip(clean[method], maps))})
        return rows

    def robustness(self, clean: dict[str, np.ndarray]) -> list[dict]:
        """Rows per (method, perturbation, radius) over the inputs that kept their label."""
        rows = []
        gradient = clean["gradient"] if "gradient" in clean else self.explain(self.module, self.x, "gradient")
        for radius in self.config.radii:
            noisy, kept = random_perturbations(self.module, self.x, self.labels, radius, self.config.norm,
                                               self.config.seed)
            attacked = topk_attack(self.module, self.x, self.labels, torch.from_numpy(gradient).to(self.x), radius,
                                   self.config.norm, fraction=self.config.fraction, steps=self.config.attack_steps)
            for name, points, ok in ((f"random {self.config.norm}", noisy, kept),
                                     (f"top-k attack {self.config.norm}", attacked, torch.ones_like(kept))):
                rows += self._compare_points(clean, points, ok, name, radius)
        return rows

    def _compare_points(self, clean, points, ok, name, radius) -> list[dict]:
        index = ok.nonzero()[:, 0]
        rows = []
        for method in self.config.methods:
            if len(index) == 0:
                continue
            maps = self.explain(self.module, points[index.to(points.device)], method)
            pairs = zip(clean[method][index.numpy()], maps)
            rows.append({"method": method, "perturbation": name, "radius": radius, "n_inputs": len(index),
                         **_mean(robustness_scores(a, b, self.config.fraction) for a, b in pairs)})
        return rows

    def completeness(self) -> list[dict]:
        """Mean completeness gap per path method and budget."""
        rows = []
        for method in [m for m in PATH_METHODS if m in self.config.methods] or ["integrated_gradients"]:
            for steps in self.config.steps:
                gap = self._gap(method, steps)
                rows.append({"method": method, "steps": steps, "gap": gap})
        return rows

    def _gap(self, method: str, steps: int) -> float:
        from attrib.api import attribute

        options = {**self.config.configs.get(method, {}), PATH_METHODS[method]: steps}
        result = attribute(self.module, self.x, method, None, seed=self.config.seed, device=self.config.device,
                           **options)
        self.events.advance(method)
        return float(result.completeness_gap.abs().mean())


def compare_maps(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    """Adebayo et al.'s similarities between two attributions of one input."""
    ma, mb = sim.magnitude_map(a), sim.magnitude_map(b)
    return {"spearman_abs": sim.spearman(ma, mb), "spearman_signed": sim.spearman(sim.signed_map(a), sim.signed_map(b)),
            "ssim": sim.ssim(ma, mb), "hog": sim.hog_spearman(ma, mb)}


def robustness_scores(a: np.ndarray, b: np.ndarray, fraction: float) -> dict[str, float | None]:
    """Similarities between a clean and a perturbed map (magnitude maps)."""
    ma, mb = sim.magnitude_map(a), sim.magnitude_map(b)
    return {"topk_intersection": sim.topk_intersection(ma, mb, fraction), "kendall_tau": sim.kendall_tau(ma, mb),
            "spearman": sim.spearman(ma, mb), "cosine": sim.cosine(ma, mb), "ssim": sim.ssim(ma, mb)}


def _mean(items) -> dict[str, float | None]:
    items = list(items)
    out = {}
    for key in items[0]:
        values = [i[key] for i in items if i[key] is not None and not np.isnan(i[key])]
        out[key] = float(np.mean(values)) if values else None
    return out


def n_explanations(config: SanityConfig, n_groups: int, data_randomization: bool) -> int:
    """How many attribute() calls the checks make (for one progress bar over the whole report)."""
    m = len(config.methods)
    total = m
    if "randomization" in config.tests:
        total += m * (2 * min(n_groups, config.max_layers if not config.layers else len(config.layers))
                      + int(data_randomization))
    if "robustness" in config.tests:
        total += 2 * m * len(config.radii) + int("gradient" not in config.methods)
    if "completeness" in config.tests:
        total += len(config.steps) * max(1, sum(p in config.methods for p in PATH_METHODS))
    return total


def run_sanity(model, x: torch.Tensor, config: SanityConfig, events: Events | None = None,
               permuted: torch.nn.Module | None = None) -> dict[str, Any]:
    """All selected checks; returns the result tables, verdicts, and input 0's randomized maps (``strips``)."""
    checker = Checker(model, x, config, events)
    n_groups = len(layer_groups(checker.module))
    checker.events.total(n_explanations(config, n_groups, permuted is not None))
    clean = checker.clean_maps()
    out: dict[str, Any] = {"randomization": [], "robustness": [], "completeness": [], "strips": {},
                           "layers": [g.label for g in layer_groups(checker.module)]}
    if "randomization" in config.tests:
        out["randomization"] = checker.randomization(clean, permuted)
        out["strips"] = checker.strips
    if "robustness" in config.tests:
        out["robustness"] = checker.robustness(clean)
    if "completeness" in config.tests:
        out["completeness"] = checker.completeness()
    out["verdicts"] = verdicts(out, config)
    return out


def verdicts(out: dict[str, Any], config: SanityConfig) -> list[dict[str, Any]]:
    """One readable verdict per method and test, with the numbers and thresholds it used."""
    rows = []
    for method in config.methods:
        rows += _randomization_verdicts(method, out["randomization"])
        rows += _robustness_verdict(method, out["robustness"], config)
    for method in dict.fromkeys(r["method"] for r in out["completeness"]):
        rows.append(_completeness_verdict(method, [r for r in out["completeness"] if r["method"] == method]))
    return rows


def _randomization_verdicts(method: str, rows: list[dict]) -> list[dict]:
    limit = THRESHOLDS["randomization"]
    out = []
    cascade = [r for r in rows if r["method"] == method and r["mode"] == "cascading"]
    for test, row, what in (("randomization", max(cascade, key=lambda r: r["depth"], default=None),
                             "after randomizing every layer"),
                            ("data randomization", next((r for r in rows if r["method"] == method
                                                         and r["mode"] == "data"), None),
                             "for a model trained on permuted labels")):
        if row is None:
            continue
        abs_, signed = row["spearman_abs"], row["spearman_signed"]
        passed = abs_ < limit
        text = (f"depends on the model — abs-Spearman falls to {abs_:.2f} {what} (pass: < {limit}); "
                f"signed {signed:.2f}" if passed else
                f"abs-Spearman stays {abs_:.2f} {what} (pass: < {limit}) — see signed: {signed:.2f}"
                + (": the map's sign follows the model, its magnitude follows the input" if signed < limit else ""))
        out.append({"method": method, "test": test, "passed": passed, "reason": text})
    return out


def _robustness_verdict(method: str, rows: list[dict], config: SanityConfig) -> list[dict]:
    mine = [r for r in rows if r["method"] == method]
    if not mine:
        return []
    radius = max(r["radius"] for r in mine)
    at = {r["perturbation"].split()[0]: r["topk_intersection"] for r in mine if r["radius"] == radius}
    limit = THRESHOLDS["robustness"]
    passed = at.get("random", 0.0) >= limit
    text = (f"top-{config.fraction:.0%} intersection {at.get('random', float('nan')):.2f} under random "
            f"{config.norm} noise of radius {radius:g} (pass: >= {limit}); {at.get('top-k', float('nan')):.2f} "
            "under the top-k attack")
    return [{"method": method, "test": "robustness", "passed": passed, "reason": text}]


def _completeness_verdict(method: str, rows: list[dict]) -> dict:
    limit = THRESHOLDS["completeness"]
    last = max(rows, key=lambda r: r["steps"])
    first = min(rows, key=lambda r: r["steps"])
    unit = PATH_METHODS[method].replace("n_", "")
    passed = last["gap"] <= limit
    text = (f"gap {last['gap']:.1%} at {last['steps']} {unit} (pass: <= {limit:.0%}); "
            f"{first['gap']:.1%} at {first['steps']}")
    return {"method": method, "test": "completeness", "passed": passed, "reason": text}


_MG_BUDGET = {"n_iter": 12, "average_last": 8, "n_samples": 4}
BUDGET = {"integrated_gradients": {"n_steps": 32}, "expected_gradients": {"n_samples": 32},
          "smoothgrad": {"n_samples": 16}, "smoothgrad_squared": {"n_samples": 16}, "vargrad": {"n_samples": 16},
          "moreaugrad": _MG_BUDGET, "moreaugrad_sparse": _MG_BUDGET, "moreaugrad_group": _MG_BUDGET}


def with_budget(methods: list[str], configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The sanity report's reduced per-map budget (each map is recomputed for every randomized model and
    perturbation), under the user's own options, which win."""
    return {m: {**BUDGET.get(m, {}), **configs.get(m, {})} for m in methods}


def default_radii(x: torch.Tensor, fractions: tuple[float, ...] = (0.02, 0.05)) -> list[float]:
    """Perturbation radii as fractions of the inputs' median l2 norm, rounded to two significant digits."""
    median = float(x.flatten(1).norm(dim=1).median())
    return [float(f"{f * median:.2g}") for f in fractions]


def permuted_label_model(model, seed: int = 0) -> torch.nn.Module | None:
    """Data randomization: a sample model's recipe retrained on its data with permuted labels (else None)."""
    from attrib.data.datasets import load_dataset
    from attrib.training import Recipe, init_seeded, train

    card = model.card
    if model.factory is None or "recipe" not in card or "dataset" not in card:
        return None
    data = load_dataset(card["dataset"], **card.get("dataset_args", {}))
    order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))
    fresh = init_seeded(model.factory, seed)
    return train(fresh, data.train_x, data.train_y[order], Recipe(**card["recipe"]), seed=seed)


def sanity_inputs(model, paths: list[str], dataset: str | None, n: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """(inputs, names, errors): image files / folders / globs through the model's preprocessing, else the first
    ``n`` test examples of ``dataset`` (default: a sample model's own data set, or the built-in images)."""
    from attrib.data.datasets import load_dataset
    from attrib.data.images import InputError, expand_inputs

    dataset = dataset or (None if paths else model.card.get("dataset"))
    if dataset:
        data = load_dataset(dataset, **(model.card.get("dataset_args", {}) if dataset == model.card.get("dataset")
                                        else {}))
        return data.test_x[:n], [f"{data.name} test #{i}" for i in range(min(n, len(data.test_y)))], []
    if model.preprocess is None:
        raise ValueError(f"{model.name} does not take images; give --dataset")
    xs, names, errors = [], [], []
    for source in expand_inputs(paths):
        try:
            xs.append(model.preprocess(source.load()))
            names.append(source.name)
        except InputError as error:
            errors.append(str(error))
    return (torch.stack(xs) if xs else torch.empty(0)), names, errors


def save_report(out, model, names: list[str], config: SanityConfig, result: dict[str, Any],
                seconds: float) -> dict[str, Any]:
    """Write run.json and the plots into ``out``; return the record."""
    from pathlib import Path

    from attrib import __version__
    from attrib.artifacts import atomic_write_json, describe_tensors
    from attrib.render.plots import randomization_plot, robustness_plot, strip_plot

    out = Path(out)
    plots = {}
    if result["randomization"]:
        plots["randomization"] = randomization_plot(result["randomization"], out / "randomization.png")
        if any(np.ndim(v) >= 2 for rows in result["strips"].values() for _, v in rows):
            plots["strip"] = strip_plot(result["strips"], out / "randomized_maps.png")
    if result["robustness"]:
        plots["robustness"] = robustness_plot(result["robustness"], out / "robustness.png")
    record = {"kind": "sanity", "attrib_version": __version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "model": {"name": model.name, "card": model.card}, "inputs": names,
              "methods": config.methods, "configs": {m: describe_tensors(c) for m, c in config.configs.items()},
              "tests": config.tests, "layers": result["layers"], "radii": config.radii, "norm": config.norm,
              "fraction": config.fraction, "seed": config.seed, "device": config.device, "thresholds": THRESHOLDS,
              "seconds": round(seconds, 1), "plots": plots, "versions": {"torch": torch.__version__},
              **{k: result[k] for k in ("randomization", "robustness", "completeness", "verdicts")}}
    atomic_write_json(out / "run.json", record)
    return record
