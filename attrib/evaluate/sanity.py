"""Sanity checks for saliency maps: does a map depend on the model, survive a small perturbation, add up?

- Randomization (Adebayo et al. 2018): cascading and independent re-initialisation of layer groups
  (attrib/evaluate/randomization.py); the randomized model explains its own predicted class; similarity to
  the original maps by Spearman on |.| maps, Spearman on signed maps, SSIM and HOG Spearman. Sample models
  also get data randomization: the same recipe trained on permuted labels.
- Robustness (Ghorbani et al.; Wang & Kong 2022): random perturbations of a given norm and the top-k attack
  (attrib/evaluate/robustness.py), keeping the predicted label; top-k intersection, Kendall's tau-b, Spearman,
  cosine and SSIM between clean and perturbed magnitude maps.
- Completeness: |sum of attributions - (F(x) - F(x'))| / |F(x) - F(x')| for IG (n_steps) and EG (n_samples),
  at several budgets and at the method's default (the verdict's), with passes used, the share of inputs an
  adaptive rule converged on, and EG's Monte Carlo error.
Values are averaged over inputs. Verdicts compare them with the thresholds in ``THRESHOLDS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attrib.errors import UsageError, counted
from attrib.evaluate import similarity as sim
from attrib.evaluate.randomization import layer_groups, randomized, select
from attrib.evaluate.robustness import random_perturbations, topk_attack
from attrib.formats import percent
from attrib.targets import decisions

TESTS = ("randomization", "robustness", "completeness")
THRESHOLDS = {"randomization": 0.5, "robustness": 0.5, "completeness": 0.05}
REPEATS = 3  # draws of random weights (randomization) and of noise (robustness) per report
MAX_LAYERS = 4  # layer groups reported when none are named (the command line's default too)
ATTACK_METHOD = "gradient"  # the top-k attack moves the input to change this method's top-k
DEFAULT_PATH_METHOD = "integrated_gradients"  # completeness is reported for it when no path method is asked


def path_methods(methods: list[str]) -> list[str]:
    """The methods with a completeness gap (a reference score and a cost knob), in order."""
    from attrib.methods import METHODS

    return [m for m in methods if METHODS[m].reference and METHODS[m].knob]


@dataclass
class SanityConfig:
    """What to check; ``configs`` holds each method's option overrides (incl. an EG background)."""

    methods: list[str]
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tests: list[str] = field(default_factory=lambda: list(TESTS))
    layers: list[str] | None = None
    max_layers: int = MAX_LAYERS
    radii: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    norm: str = "l2"
    fraction: float = 0.1
    attack_steps: int = 10
    steps: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    repeats: int = REPEATS
    seed: int = 0
    device: str = "cpu"
    versus: int | str | None = None  # each model's predicted class against this one (RUNNER_UP, a class) or none
    verdict_steps: dict[str, int] = field(default_factory=dict)  # a path method's budget set by the user

    @property
    def draw_seeds(self) -> list[int]:
        """One seed per draw of random weights / noise: seed x 1000 + k (draw 0 of seed 0 is seed 0)."""
        return [self.seed * 1000 + k for k in range(self.repeats)]


class Checker:
    """Runs the checks for one model and a batch of inputs."""

    def __init__(self, model, x: torch.Tensor, config: SanityConfig,
                 advance: Callable[[str], None] = lambda method: None) -> None:
        self.model, self.x, self.config = model, x.to(config.device), config
        self.advance = advance  # called after each map with the method's name
        self.module = model.module.to(config.device).eval()
        with torch.no_grad():
            outputs = self.module(self.x)
        self.labels, self.decided = outputs.argmax(1), decisions(outputs)  # explained classes; labels to keep
        self.fixed_gradient = False  # robustness(): no input's gradient map changes with the input

    def explain(self, module: torch.nn.Module, x: torch.Tensor, method: str, **extra: Any) -> np.ndarray:
        from attrib.api import attribute

        options = {**self.config.configs.get(method, {}), **extra}
        values = attribute(module, x, method, None, seed=self.config.seed, device=self.config.device,
                           versus=self.config.versus, **options)
        self.advance(method)
        return values.values.numpy()

    def clean_maps(self) -> dict[str, np.ndarray]:
        return {m: self.explain(self.module, self.x, m) for m in self.config.methods}

    def randomization(self, clean: dict[str, np.ndarray], permuted: torch.nn.Module | None = None) -> list[dict]:
        """Rows per (method, mode, layer): mean similarities to the clean maps; ``strips`` keeps input 0's maps."""
        groups = layer_groups(self.module)
        report = select(groups, self.config.layers, self.config.max_layers)
        self.strips = {m: [("original", clean[m][0])] for m in self.config.methods}
        draws: dict[tuple, list[dict]] = {}  # (method, mode, layer, depth) -> one mean row per draw
        for k, seed in enumerate(self.config.draw_seeds):
            for mode in ("cascading", "independent")[:2 if k == 0 else 1]:  # independent: one draw (no verdict)
                for group, depth, copy_ in randomized(self.module, groups, report, mode, seed):
                    self._compare_model(copy_, clean, (mode, group.label, depth), draws, strip=k == 0)
        if permuted is not None:
            self._compare_model(permuted.to(self.config.device).eval(), clean, ("data", "labels permuted", 0), draws)
        return [{"method": m, "mode": mode, "layer": layer, "depth": depth, **summarize(values)}
                for (m, mode, layer, depth), values in draws.items()]

    def _compare_model(self, module, clean, key: tuple, draws: dict, strip: bool = False) -> None:
        for method in self.config.methods:
            maps = self.explain(module, self.x, method)
            if strip and key[0] == "cascading":
                self.strips[method].append((key[1], maps[0]))
            pairs = [(a, b) for a, b, keep in zip(clean[method], maps, varies(clean[method])) if keep]
            if pairs:
                draws.setdefault((method, *key), []).append(_mean(compare_maps(a, b) for a, b in pairs))

    def robustness(self, clean: dict[str, np.ndarray]) -> list[dict]:
        """Rows per (method, perturbation, radius) over the inputs that kept their label."""
        rows = []
        gradient = clean.get(ATTACK_METHOD)
        if gradient is None:
            gradient = self.explain(self.module, self.x, ATTACK_METHOD)
        for radius in self.config.radii:
            noise = [random_perturbations(self.module, self.x, self.decided, radius, self.config.norm, seed)
                     for seed in self.config.draw_seeds]
            *attacked, fixed = topk_attack(self.module, self.x, self.labels, self.decided,
                                           torch.from_numpy(gradient).to(self.x), radius, self.config.norm,
                                           fraction=self.config.fraction, steps=self.config.attack_steps)
            self.fixed_gradient = bool(fixed.all())
            rows += self._compare_points(clean, noise, f"random {self.config.norm}", radius)
            rows += self._compare_points(clean, [attacked], f"top-k attack {self.config.norm}", radius)
        return rows

    def _compare_points(self, clean, draws: list, name: str, radius: float) -> list[dict]:
        """Per method: the mean over draws (each a mean over the inputs that kept their label) and its spread."""
        rows = []
        for method in self.config.methods:
            scores, counts = [], []
            keep = torch.from_numpy(varies(clean[method]))
            for points, ok in draws:
                index = (ok & keep.to(ok.device)).nonzero()[:, 0]
                if len(index) == 0:
                    continue
                maps = self.explain(self.module, points[index.to(points.device)], method)
                pairs = zip(clean[method][index.numpy()], maps)
                scores.append(_mean(robustness_scores(a, b, self.config.fraction) for a, b in pairs))
                counts.append(len(index))
            if scores:
                rows.append({"method": method, "perturbation": name, "radius": radius, "n_inputs": min(counts),
                             **summarize(scores)})
        return rows

    def completeness(self) -> list[dict]:
        """Per path method and budget (``steps`` and the method's own default, the verdict's): mean gap over the
        inputs, passes used, the share of inputs an adaptive rule converged on, and the Monte Carlo error."""
        rows = []
        for method in path_methods(self.config.methods) or [DEFAULT_PATH_METHOD]:
            budgets, default, chosen = completeness_budgets(method, self.config)
            for steps in budgets:
                mark = {"default": steps == default} | ({"set": True} if steps == chosen else {})
                rows.append({"method": method, "steps": steps, **mark, **self._gap(method, steps)})
        return rows

    def _gap(self, method: str, steps: int) -> dict[str, float | None]:
        from attrib.api import attribute

        from attrib.methods import METHODS

        options = {**self.config.configs.get(method, {}), METHODS[method].knob: steps}
        result = attribute(self.module, self.x, method, None, seed=self.config.seed, device=self.config.device,
                           versus=self.config.versus, **options)
        self.advance(method)
        extras, n = result.extras, len(self.x)
        return {**_mean_gap(result.completeness_gap, extras.get("gap_stderr")), "passes": result.passes / n,
                "converged": float(extras["converged"].float().mean()) if "converged" in extras else None}


def _mean_gap(gaps: torch.Tensor, stderr: torch.Tensor | None) -> dict[str, float | int | None]:
    """The mean gap (and its Monte Carlo error) over the inputs where the gap is a number; ``undefined``: inputs
    with F(x) = F(baseline) (a relative gap of inf); ``not_finite``: inputs whose map or score is NaN."""
    finite = gaps.isfinite()
    k = int(finite.sum())
    return {"gap": float(gaps[finite].abs().mean()) if k else None,
            "gap_stderr": float(stderr.cpu()[finite].pow(2).sum().sqrt()) / k if stderr is not None and k else None,
            "undefined": int(gaps.isinf().sum()), "not_finite": int(gaps.isnan().sum())}


def default_budget(method: str, options: dict[str, Any]) -> int:
    """The method's own default for its cost knob under the user's other options (IG: 256 for the adaptive
    rule's budget, 50 for a fixed rule)."""
    from attrib.methods import METHODS

    spec = METHODS[method]
    return getattr(spec.config(**{k: v for k, v in options.items() if k != spec.knob}), spec.knob)


def completeness_budgets(method: str, config: SanityConfig) -> tuple[list[int], int, int | None]:
    """The budgets the completeness test runs a path method at (``config.steps``, its default and the one the
    user set, which the verdict is judged at), its default, and the one set (None)."""
    default = default_budget(method, config.configs.get(method, {}))
    chosen = config.verdict_steps.get(method)
    return sorted(set(config.steps) | {default} | ({chosen} if chosen else set())), default, chosen


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


def summarize(draws: list[dict[str, float | None]]) -> dict[str, Any]:
    """Each metric's mean over draws, with ``spread``: its standard deviation over draws (0 for one draw)."""
    mean = _mean(draws)
    spread = {}
    for key in mean:
        values = [d[key] for d in draws if d[key] is not None and not np.isnan(d[key])]
        spread[key] = float(np.std(values, ddof=1)) if len(values) > 1 else (0.0 if values else None)
    return {**mean, "spread": spread, "draws": len(draws)}


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
        groups = min(n_groups, config.max_layers if not config.layers else len(config.layers))
        total += m * (groups * (config.repeats + 1) + int(data_randomization))
    if "robustness" in config.tests:
        total += m * len(config.radii) * (config.repeats + 1) + int(ATTACK_METHOD not in config.methods)
    if "completeness" in config.tests:
        methods = path_methods(config.methods) or [DEFAULT_PATH_METHOD]
        total += sum(len(completeness_budgets(m, config)[0]) for m in methods)
    return total


def varies(maps: np.ndarray) -> np.ndarray:
    """Per map, whether it is not constant. A constant clean map (all zero: the model's output does not depend
    on the input there, or the method's map vanishes) ranks nothing, and its rank similarity would read 0,
    "independent of the model"; such inputs are left out of the similarity tests."""
    return np.array([np.ptp(m) > 0 for m in maps], dtype=bool)


def run_sanity(model, x: torch.Tensor, config: SanityConfig, permuted: torch.nn.Module | None = None,
               advance: Callable[[str], None] = lambda method: None) -> dict[str, Any]:
    """All selected checks; returns the result tables, verdicts, and input 0's randomized maps (``strips``)."""
    checker = Checker(model, x, config, advance)
    clean = checker.clean_maps()
    out: dict[str, Any] = {"randomization": [], "robustness": [], "completeness": [], "strips": {},
                           "layers": [g.label for g in layer_groups(checker.module)],
                           "constant_maps": {m: int((~varies(clean[m])).sum()) for m in config.methods},
                           "n_inputs": len(x)}
    if "randomization" in config.tests:
        out["randomization"] = checker.randomization(clean, permuted)
        out["strips"] = checker.strips
    if "robustness" in config.tests:
        out["robustness"] = checker.robustness(clean)
        out["fixed_gradient"] = checker.fixed_gradient
    if "completeness" in config.tests:
        out["completeness"] = checker.completeness()
    out["verdicts"] = verdicts(out, config)
    return out


def verdicts(out: dict[str, Any], config: SanityConfig) -> list[dict[str, Any]]:
    """One readable verdict per method and test, with the numbers and thresholds it used."""
    rows = []
    for method in config.methods:
        rows += _constant_verdicts(method, out, config) or (_randomization_verdicts(method, out["randomization"]) +
                                                            _robustness_verdict(method, out, config))
    for method in dict.fromkeys(r["method"] for r in out["completeness"]):
        rows.append(_completeness_verdict(method, [r for r in out["completeness"] if r["method"] == method]))
    return rows


def _constant_verdicts(method: str, out: dict[str, Any], config: SanityConfig) -> list[dict[str, Any]]:
    """"unsure" for each similarity test run, when the method's map of every input is constant (nothing to
    compare: see :func:`varies`); [] otherwise."""
    if out.get("constant_maps", {}).get(method, 0) < out.get("n_inputs", 1):
        return []
    reason = ("unsure — the method's map of every input is constant (one value, as a one-word text's, or all zero: "
              "the model's output does not depend on its input there, or the map vanishes), so no similarity to it "
              "says anything")
    tests = [t for t in ("randomization", "robustness") if t in config.tests]
    return [{"method": method, "test": test, "passed": None, "reason": reason} for test in tests]


def judge(mean: float, spread: float, limit: float, below: bool) -> bool | None:
    """True / False when every draw within one spread of the mean is on the same side of the limit (pass:
    below it when ``below``, else at or above it); None ("unsure") when the draws straddle it."""
    low, high = mean - spread, mean + spread
    passes, fails = (high < limit, low >= limit) if below else (low >= limit, high < limit)
    return True if passes else False if fails else None


def _band(row: dict, key: str) -> str:
    spread = row.get("spread", {}).get(key) or 0.0
    draws = row.get("draws", 1)
    return f"{row[key]:.2f} ± {spread:.2f} (sd over {draws} draws)" if draws > 1 else f"{row[key]:.2f}"


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
        passed = judge(abs_, row.get("spread", {}).get("spearman_abs") or 0.0, limit, below=True)
        rule = f"pass: mean + sd < {limit}" if row.get("draws", 1) > 1 else f"pass: < {limit}"
        if passed:
            text = f"depends on the model — abs-Spearman falls to {_band(row, 'spearman_abs')} {what} ({rule}); " \
                   f"signed {signed:.2f}"
        elif passed is None:
            text = f"unsure — abs-Spearman {_band(row, 'spearman_abs')} {what}: the draws straddle {limit}"
        else:
            text = (f"abs-Spearman stays {_band(row, 'spearman_abs')} {what} ({rule}) — see signed: {signed:.2f}"
                    + (": the map's sign follows the model, its magnitude follows the input" if signed < limit else ""))
        out.append({"method": method, "test": test, "passed": passed, "reason": text})
    return out


def _robustness_verdict(method: str, out: dict[str, Any], config: SanityConfig) -> list[dict]:
    mine = [r for r in out["robustness"] if r["method"] == method]
    if not mine:
        return []
    radius = max(r["radius"] for r in mine)
    at = {r["perturbation"].split()[0]: r for r in mine if r["radius"] == radius}
    limit = THRESHOLDS["robustness"]
    noise, attack = at.get("random"), at.get("top-k")
    attacked = f"{attack['topk_intersection']:.2f} under the top-k attack" if attack else \
        "the top-k attack has nothing to move: the gradient map does not change with the input (a model linear in " \
        "it)" if out.get("fixed_gradient") else "the top-k attack found no step that keeps a label"
    if noise is None:  # nothing to judge: no draw kept any input's label at this radius
        return [{"method": method, "test": "robustness", "passed": None,
                 "reason": f"unsure — no draw of random {config.norm} noise of radius {radius:g} kept an input's "
                           f"label (a smaller --radii?); {attacked}"}]
    passed = judge(noise["topk_intersection"], noise["spread"].get("topk_intersection") or 0.0, limit, below=False)
    rule = f"pass: mean - sd >= {limit}" if noise.get("draws", 1) > 1 else f"pass: >= {limit}"
    text = (f"{'unsure — ' if passed is None else ''}top-{config.fraction:.0%} intersection "
            f"{_band(noise, 'topk_intersection')} under random {config.norm} noise of radius {radius:g} ({rule}); "
            f"{attacked}")
    return [{"method": method, "test": "robustness", "passed": passed, "reason": text}]


def _completeness_verdict(method: str, rows: list[dict]) -> dict:
    """Judged at the budget the user set, else the method's default (the largest in records without one; EG:
    unsure while its gap is within one Monte Carlo error of the limit); the smallest budget's gap for contrast."""
    from attrib.methods import METHODS

    limit = THRESHOLDS["completeness"]
    last = next((r for r in rows if r.get("set")), None) or \
        next((r for r in rows if r.get("default")), max(rows, key=lambda r: r["steps"]))
    first = min(rows, key=lambda r: r["steps"])
    unit = METHODS[method].knob.replace("n_", "")
    stderr = last.get("gap_stderr")
    noise = f" ± {stderr:.1%} (Monte Carlo error)" if stderr is not None else ""
    where = f"the {last['steps']} {unit} set" if last.get("set") else f"its default {last['steps']} {unit}" \
        if last.get("default") else f"{last['steps']} {unit}"
    rule = f"pass: gap + error < {limit:.0%}, fail: gap - error >= {limit:.0%}" if stderr is not None \
        else f"pass: < {limit:.0%}"
    if last.get("converged") is not None:
        rule = f"{last['passes']:.0f} passes on average, {last['converged']:.0%} of inputs converged; {rule}"
    if last.get("not_finite"):
        return {"method": method, "test": "completeness", "passed": False,
                "reason": f"the maps of {counted(last['not_finite'], 'input')} are not finite at {where}: the "
                          "model's gradient or score is not finite on the path from the baseline"}
    if last["gap"] is None:
        return {"method": method, "test": "completeness", "passed": None,
                "reason": "unsure — F(x) equals F(baseline) on every input: the relative gap is undefined"}
    left_out = f"; {counted(last['undefined'], 'input')} with F(x) = F(baseline) left out" \
        if last.get("undefined") else ""
    contrast = "not a number" if first["gap"] is None else percent(first["gap"], 1)
    text = f"gap {percent(last['gap'], 1)}{noise} at {where} ({rule}{left_out}); {contrast} at {first['steps']}"
    return {"method": method, "test": "completeness", "passed": judge(last["gap"], stderr or 0.0, limit, below=True),
            "reason": text}


def with_budget(methods: list[str], configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each method's reduced budget for this report (its spec's ``budget``: every map is recomputed for each
    randomized model and perturbation), under the user's own options, which win."""
    from attrib.methods import METHODS

    return {m: {**METHODS[m].budget, **configs.get(m, {})} for m in methods}


def set_budgets(methods: list[str], overrides: dict[str, dict[str, Any]]) -> dict[str, int]:
    """The cost knob (IG's n_steps, EG's n_samples) of each method whose --set gives it: the completeness
    verdict's budget for a path method, in place of its default."""
    from attrib.methods import METHODS

    return {m: overrides[m][METHODS[m].knob] for m in methods if METHODS[m].knob in overrides.get(m, {})}


DEFAULT_RADII = ("2%", "5%")
NORMS = ("l2", "linf")


def resolve_radii(given: list[float | str] | None, x: torch.Tensor, norm: str) -> list[float]:
    """Perturbation radii, sorted: numbers as given, "N%" entries as N% of the inputs' median norm in ``norm``
    (l2: |x|_2; linf: max |x_i|), rounded to two significant digits; None: DEFAULT_RADII. A UsageError for
    another norm, an entry that is neither, or a radius that is not positive and finite."""
    if norm not in NORMS:
        raise UsageError(f"unknown norm {norm!r}; choose from {', '.join(NORMS)}")
    flat = x.flatten(1)
    median = float((flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)).median())
    radii = {_radius(r, median) for r in (DEFAULT_RADII if given is None else given)}
    if not radii or not all(0 < r < math.inf for r in radii):
        raise UsageError(f"perturbation radii must be positive and finite, got "
                         f"{', '.join(map(str, given or DEFAULT_RADII))} (median |x| in {norm}: {median:.3g})")
    return sorted(radii)


def _radius(given: float | str, median: float) -> float:
    try:
        if isinstance(given, str):
            if not given.endswith("%"):
                raise ValueError
            return float(f"{float(given[:-1]) / 100 * median:.2g}")
        return float(given)
    except (TypeError, ValueError):
        raise UsageError(f"a radius is a number or N% of the inputs' median norm, got {given!r}") from None
