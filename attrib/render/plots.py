"""Plots of evaluation results (matplotlib, Agg backend), returned as PNG bytes for the run store to write."""

from __future__ import annotations

import io


def diffroar_plot(rows: list[dict], title: str) -> bytes:
    """DiffROAR vs k per method (error bars: std over seeds; the random control dashed); as PNG bytes."""
    plt, fig, ax = _figure(7.5, 4)
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["k"])
        ax.errorbar([r["k"] for r in mine], [r["diffroar"] for r in mine], yerr=[r["std"] for r in mine],
                    marker="o", capsize=3, label=method, linestyle="--" if method == "random" else "-")
    ax.axhline(0, color="grey", linewidth=0.8)
    ks = sorted({r["k"] for r in rows})
    if len(ks) <= 12:
        ax.set_xticks(ks, [f"{k:g}" for k in ks])
    ax.set_xlabel("k (fraction of coordinates kept)")
    ax.set_ylabel("DiffROAR = acc(top-k) - acc(bottom-k)")
    ax.set_title(title, fontsize=10)
    _legend_beside(ax)
    return _save(plt, fig)


def _figure(width: float = 6, height: float = 4, rows: int = 1, columns: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(rows, columns, figsize=(width, height), dpi=110, squeeze=False if rows * columns > 1
                                 else True)


def _save(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def randomization_plot(rows: list[dict], threshold: float | None = None) -> bytes:
    """Cascading randomization: abs-Spearman (solid) and signed Spearman (dashed) vs depth, per method, each depth
    named by the layer group it randomizes last; bands: one standard deviation over the draws of random weights;
    dotted: the verdict's ``threshold`` (a map that depends on the model falls below it)."""
    cascading = sorted((r for r in rows if r["mode"] == "cascading"), key=lambda r: r["depth"])
    groups = dict((r["depth"], r["layer"]) for r in cascading)
    plt, fig, ax = _figure(max(8.0, 4.5 + 0.35 * len(groups)), 4.2)
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        mine = [r for r in cascading if r["method"] == method]
        depths = [0] + [r["depth"] for r in mine]
        colour = f"C{i}"
        for key, style, label in (("spearman_abs", "o-", "|.|"), ("spearman_signed", "s--", "signed")):
            mean = [1.0] + [r[key] for r in mine]
            sd = [0.0] + [(r.get("spread") or {}).get(key) or 0.0 for r in mine]
            ax.plot(depths, mean, style, color=colour, alpha=1.0 if key == "spearman_abs" else 0.6,
                    label=f"{method} {label}")
            ax.fill_between(depths, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                            color=colour, alpha=0.15, linewidth=0)
    slanted = len(groups) > 6 or max(map(len, groups.values()), default=0) > 14
    ax.set_xticks([0, *groups], ["none", *groups.values()], rotation=35 if slanted else 0,
                  ha="right" if slanted else "center", fontsize=7)
    ax.set_xlabel("randomized from the top down to layer group")
    ax.set_ylabel("Spearman to the original map")
    ax.axhline(0, color="grey", linewidth=0.8)
    _threshold(ax, threshold, "pass below")
    _legend_beside(ax)
    return _save(plt, fig)


def _threshold(ax, value: float | None, meaning: str) -> None:
    """A verdict's threshold, dotted, with what it means."""
    if value is not None:
        ax.axhline(value, color="black", linestyle=":", linewidth=1, label=f"threshold {value:g} ({meaning})")


def _legend_beside(ax) -> None:
    """The legend right of the plot, where it hides no curve."""
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)


def robustness_plot(rows: list[dict], fraction: float | None = None, threshold: float | None = None) -> bytes:
    """Top-k intersection vs radius per method (random noise solid, top-k attack dashed; ``fraction``: k, as a
    share of the features); error bars: one standard deviation over the noise draws; dotted: the verdict's
    ``threshold`` (a robust map stays above it)."""
    plt, fig, ax = _figure(7.5, 4)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for i, method in enumerate(methods):
        for kind, style in (("random", "o-"), ("top-k", "s--")):
            mine = sorted((r for r in rows if r["method"] == method and r["perturbation"].startswith(kind)),
                          key=lambda r: r["radius"])
            if mine:
                sd = [(r.get("spread") or {}).get("topk_intersection") or 0.0 for r in mine]
                ax.errorbar([r["radius"] for r in mine], [r["topk_intersection"] for r in mine], yerr=sd,
                            fmt=style, color=f"C{i}", capsize=3, label=f"{method} ({mine[0]['perturbation']})")
    radii = sorted({r["radius"] for r in rows})
    ax.set_xticks(radii, [f"{r:.3g}" for r in radii])
    ax.set_xlabel("perturbation radius")
    share = "top-k" if fraction is None else f"top-{100 * fraction:.3g}%"
    ax.set_ylabel(f"{share} intersection with the clean map")
    ax.set_ylim(0, 1.05)
    _threshold(ax, threshold, "pass above")
    _legend_beside(ax)
    return _save(plt, fig)


def strip_plot(strips: dict[str, list], picture=None) -> bytes:
    """Input 0's magnitude maps: one row per method, the original then each cascading depth; ``picture`` (a PIL
    image: the input as the model sees it), first in the top row."""
    import numpy as np

    from attrib.evaluate.similarity import magnitude_map

    methods = list(strips)
    lead = 0 if picture is None else 1
    columns = lead + max(len(v) for v in strips.values())
    plt, fig, axes = _figure(1.6 * columns, 2.0 * len(methods), len(methods), columns)
    axes = np.atleast_2d(axes).reshape(len(methods), columns)
    for r, method in enumerate(methods):
        for c in range(columns):
            ax = axes[r, c]
            ax.axis("off")
            if c < lead:
                if r == 0:
                    ax.imshow(picture, cmap="gray" if picture.mode == "L" else None, vmin=0, vmax=255)
                    ax.set_title("input", fontsize=6)
            elif c - lead < len(strips[method]):
                label, values = strips[method][c - lead]
                label = label.replace(" (", "\n(") if len(label) > 24 else label  # a layer and its block's class
                ax.imshow(magnitude_map(values), cmap="magma")
                ax.set_title(f"{method}\n{label}" if c == lead else label, fontsize=6)
    return _save(plt, fig)
