"""Sanity checks for a text classifier's word scores: do they depend on the classifier, do IG's add up?

- Randomization (Adebayo et al. 2018), as for images (attrib/evaluate/randomization.py): the classifier's layer
  groups (a BERT's embeddings, each encoder layer, the pooler, the head) re-initialised top down (cascading) and
  one at a time (independent); the randomized classifier explains its own predicted class; each text's word
  scores are compared with the original's by Spearman on |scores| and on signed scores. The masked LM that OLM
  draws replacements from is not randomized: the check is of the classifier.
- Completeness: IG's gap on the input embeddings, mean over the texts, at several step counts and at the run's
  own (the verdict's).
Robustness to perturbations has no counterpart here: a text is not perturbed by a small norm. Verdicts are the
image checks' (attrib/evaluate/sanity.py), from rows of the same shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from attrib.evaluate import similarity as sim
from attrib.evaluate.randomization import layer_groups, randomized, select
from attrib.evaluate.sanity import SanityConfig, _mean, _mean_gap, summarize, verdicts

TEXT_TESTS = ("randomization", "completeness")
Maps = list[dict[str, np.ndarray]]  # per text: method -> one score per word


def compare_scores(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    """Two word-score vectors of one text: Spearman on |scores| and on signed scores (no image measures)."""
    return {"spearman_abs": sim.spearman(np.abs(a), np.abs(b)), "spearman_signed": sim.spearman(a, b),
            "ssim": None, "hog": None}


def randomization(classifier, maps_of: Callable[[Any], Maps], clean: Maps, config: SanityConfig,
                  strips: dict[str, list] | None = None) -> list[dict]:
    """Rows per (method, mode, layer): the mean similarity of the randomized classifier's scores to ``clean``
    over the texts whose clean scores vary, per draw of random weights, summarized over draws. ``strips``, when
    given, gets the first text's scores per method as the first draw randomizes the layers top down."""
    groups = layer_groups(classifier.model)
    report = select(groups, config.layers, config.max_layers)
    draws: dict[tuple, list[dict]] = {}
    if strips is not None:
        strips.update({m: [("original", clean[0][m])] for m in config.methods})
    for k, seed in enumerate(config.draw_seeds):
        for mode in ("cascading", "independent")[:2 if k == 0 else 1]:  # independent: one draw (no verdict)
            for group, depth, module in randomized(classifier.model, groups, report, mode, seed):
                maps = maps_of(dataclasses.replace(classifier, model=module))
                if strips is not None and k == 0 and mode == "cascading":
                    for method in config.methods:
                        strips[method].append((group.label, maps[0][method]))
                for method in config.methods:
                    pairs = [(a[method], b[method]) for a, b in zip(clean, maps) if np.ptp(a[method]) > 0]
                    if pairs:
                        draws.setdefault((method, mode, group.label, depth), []).append(
                            _mean(compare_scores(a, b) for a, b in pairs))
    return [{"method": m, "mode": mode, "layer": layer, "depth": depth, **summarize(values)}
            for (m, mode, layer, depth), values in draws.items()]


def completeness(method: str, gaps_at: Callable[[int], tuple[list[dict], float]], budgets: list[int],
                 default: int, chosen: int | None = None) -> list[dict]:
    """Per step count: the mean gap over the texts (those with F(x) = F(baseline), or a map that is not finite,
    counted apart) and the passes per text; ``gaps_at(steps)`` gives each text's attribution row and the mean
    passes. The row of ``chosen``, the steps the user set, is marked ``set``."""
    rows = []
    for steps in budgets:
        per_text, passes = gaps_at(steps)
        gaps = torch.tensor([r["gap"] if r["gap"] is not None else float("inf") if r["gap_undefined"]
                             else float("nan") for r in per_text])
        rows.append({"method": method, "steps": steps, "default": steps == default,
                     **({"set": True} if steps == chosen else {}), **_mean_gap(gaps, None), "passes": passes,
                     "converged": None})
    return rows


def run_text_sanity(classifier, maps_of: Callable[[Any], Maps], gaps_at: Callable[[str, int], tuple[list, float]],
                    config: SanityConfig, path_method: str | None, default_steps: int) -> dict[str, Any]:
    """The selected checks on the texts ``maps_of`` explains: result tables and verdicts, shaped as
    :func:`attrib.evaluate.sanity.run_sanity`'s (``strips``: the first text's scores per method and layer)."""
    clean = maps_of(classifier)
    out: dict[str, Any] = {"randomization": [], "robustness": [], "completeness": [], "strips": {},
                           "layers": [g.label for g in layer_groups(classifier.model)], "n_inputs": len(clean),
                           "constant_maps": {m: sum(np.ptp(c[m]) == 0 for c in clean) for m in config.methods}}
    if "randomization" in config.tests:
        out["randomization"] = randomization(classifier, maps_of, clean, config, out["strips"])
    if "completeness" in config.tests and path_method:
        budgets = sorted(set(config.steps) | {default_steps})
        out["completeness"] = completeness(path_method, lambda steps: gaps_at(path_method, steps), budgets,
                                           default_steps, config.verdict_steps.get(path_method))
    out["verdicts"] = verdicts(out, config)
    return out
