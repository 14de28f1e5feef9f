"""Similarity between attribution maps (used for preset agreement, robustness and sanity checks).

Maps are compared as "magnitude maps": |attribution| summed over channels, as the MoreauGrad paper and most
robustness work do.
"""

from __future__ import annotations

import numpy as np


def magnitude_map(values: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) attributions to an (H, W) map of sum_c |a_c|."""
    values = np.asarray(values, dtype=np.float64)
    return np.abs(values).sum(axis=0) if values.ndim == 3 else np.abs(values)


def topk_intersection(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """|top-k(a) & top-k(b)| / k with k = fraction of the entries (ties broken by position)."""
    a, b = np.ravel(a), np.ravel(b)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in size: {a.shape} vs {b.shape}")
    k = max(1, int(round(fraction * a.size)))
    top_a = np.argpartition(-a, k - 1)[:k]
    top_b = np.argpartition(-b, k - 1)[:k]
    return len(np.intersect1d(top_a, top_b)) / k


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (0 when either is constant)."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation (NaN when either vector is constant or shorter than 2)."""
    a, b = np.ravel(np.asarray(a, dtype=np.float64)), np.ravel(np.asarray(b, dtype=np.float64))
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def mean_pairwise_pearson(per_item: list[dict[str, list[float]]]) -> dict[str, dict[str, float | None]]:
    """For each pair of methods, the Pearson correlation of their scores per item, averaged over the items where
    it is defined (as the OLM paper reports); None where it is defined for no item."""
    methods = list(dict.fromkeys(m for scores in per_item for m in scores))
    table: dict[str, dict[str, float | None]] = {m: {} for m in methods}
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            values = [pearson(s[a], s[b]) for s in per_item if a in s and b in s]
            values = [v for v in values if not np.isnan(v)]
            table[a][b] = table[b][a] = float(np.mean(values)) if values else None
    return table
