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


def mean_pairwise_pearson(per_item: list[dict[str, list[float]]]) -> tuple[dict[str, dict[str, float | None]],
                                                                           dict[str, dict[str, int]]]:
    """For each pair of methods, the Pearson correlation of their scores per item, averaged over the items where
    it is defined (both vary; as the OLM paper reports), None where it is defined for no item; and the number of
    those items."""
    methods = list(dict.fromkeys(m for scores in per_item for m in scores))
    table: dict[str, dict[str, float | None]] = {m: {} for m in methods}
    counts: dict[str, dict[str, int]] = {m: {} for m in methods}
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            values = [pearson(s[a], s[b]) for s in per_item if a in s and b in s]
            values = [v for v in values if not np.isnan(v)]
            table[a][b] = table[b][a] = float(np.mean(values)) if values else None
            counts[a][b] = counts[b][a] = len(values)
    return table, counts


def signed_map(values: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) or (D,) attributions to a signed map (channels summed)."""
    values = np.asarray(values, dtype=np.float64)
    return values.sum(axis=0) if values.ndim == 3 else values


def unit_range(a: np.ndarray) -> np.ndarray:
    """``a`` rescaled to [0, 1] (all zeros when constant)."""
    a = np.asarray(a, dtype=np.float64)
    span = np.ptp(a)
    return np.zeros_like(a) if span == 0 else (a - a.min()) / span


def ssim(a: np.ndarray, b: np.ndarray) -> float | None:
    """SSIM of two 2-D maps after rescaling each to [0, 1] (None for maps that are not 2-D images)."""
    from skimage.metrics import structural_similarity

    if np.ndim(a) != 2 or min(np.shape(a)) < 7:
        return None
    return float(structural_similarity(unit_range(a), unit_range(b), data_range=1.0))


def hog_spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman between HOG features of two [0, 1]-rescaled 2-D maps (Adebayo et al.; None if not images)."""
    from skimage.feature import hog

    if np.ndim(a) != 2 or min(np.shape(a)) < 16:
        return None
    cell = (max(4, min(a.shape) // 8),) * 2
    features = [hog(unit_range(m), pixels_per_cell=cell, cells_per_block=(2, 2), feature_vector=True) for m in (a, b)]
    return spearman(*features)


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b of two maps (0 when either is constant)."""
    from scipy.stats import kendalltau

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(kendalltau(a, b, variant="b").statistic)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two maps (0 when either is all zero)."""
    a, b = np.ravel(np.asarray(a, dtype=np.float64)), np.ravel(np.asarray(b, dtype=np.float64))
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return 0.0 if norm == 0 else float(a @ b / norm)
