"""Line plots of evaluation results (matplotlib, Agg backend), written atomically as PNG."""

from __future__ import annotations

import io
from pathlib import Path

from attrib.artifacts import atomic_write_bytes


def diffroar_plot(rows: list[dict], path: Path, title: str) -> str:
    """DiffROAR vs k per method (error bars: std over seeds; the random control dashed); returns the file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["k"])
        ax.errorbar([r["k"] for r in mine], [r["diffroar"] for r in mine], yerr=[r["std"] for r in mine],
                    marker="o", capsize=3, label=method, linestyle="--" if method == "random" else "-")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("k (fraction of coordinates kept)")
    ax.set_ylabel("DiffROAR = acc(top-k) - acc(bottom-k)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path.name
