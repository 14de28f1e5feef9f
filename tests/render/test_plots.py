"""The sanity plots: what a reader needs to read them at a glance is drawn on them."""

import numpy as np
import pytest

from attrib.render import plots


@pytest.fixture
def drawn(monkeypatch):
    """The figure a plot function draws (instead of its PNG bytes), kept open for the test to read."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda plt, fig: (fig.canvas.draw(), figures.append(fig)))
    yield figures
    import matplotlib.pyplot as plt

    for fig in figures:
        plt.close(fig)


def _row(method, depth, layer, value):
    return {"method": method, "mode": "cascading", "layer": layer, "depth": depth, "spearman_abs": value,
            "spearman_signed": value / 2, "spread": {"spearman_abs": 0.01, "spearman_signed": 0.02}}


def _beside(fig, ax) -> bool:
    renderer = fig.canvas.get_renderer()
    return ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def test_randomization_names_each_depth_by_its_layer_group_and_shows_the_threshold(drawn):
    rows = [_row(m, d, layer, v) for m in ("gradient", "smoothgrad")
            for d, layer, v in ((1, "fc (Linear)", 0.7), (2, "layer4", 0.4), (3, "stem (Conv2d)", 0.1))]
    rows.append({**_row("gradient", 1, "layer4", 0.3), "mode": "independent"})  # a diagnostic: not on the axis
    plots.randomization_plot(rows, threshold=0.5)
    (fig,) = drawn
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "fc (Linear)", "layer4", "stem (Conv2d)"]
    assert list(ax.get_xticks()) == [0, 1, 2, 3]
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert [tuple(line.get_ydata()) for line in dotted] == [(0.5, 0.5)]
    assert "threshold 0.5 (pass below)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert _beside(fig, ax)  # the legend hides no curve


def test_robustness_ticks_the_radii_and_names_the_share_compared(drawn):
    rows = [{"method": "gradient", "perturbation": f"{kind} l2", "radius": radius, "topk_intersection": value,
             "spread": {"topk_intersection": 0.01}}
            for kind in ("random", "top-k attack") for radius, value in ((0.23, 0.9), (0.58, 0.8))]
    plots.robustness_plot(rows, fraction=0.1, threshold=0.5)
    (fig,) = drawn
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.23", "0.58"]
    assert ax.get_ylabel() == "top-10% intersection with the clean map"
    assert {"gradient (random l2)", "gradient (top-k attack l2)", "threshold 0.5 (pass above)"} <= \
        {t.get_text() for t in ax.get_legend().get_texts()}
    assert _beside(fig, ax)
    plots.robustness_plot(rows, fraction=0.125)
    assert drawn[1].axes[0].get_ylabel() == "top-12.5% intersection with the clean map"


def test_diffroar_ticks_each_k_and_keeps_its_legend_off_the_curves(drawn):
    rows = [{"method": method, "k": k, "diffroar": value * (1 - k), "std": 0.02}
            for method, value in (("gradient", 0.3), ("random", 0.0)) for k in (0.05, 0.2, 0.6)]
    plots.diffroar_plot(rows, "model on data")
    (fig,) = drawn
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.05", "0.2", "0.6"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gradient", "random"]
    assert _beside(fig, ax)


def test_the_randomized_maps_open_with_the_input_they_are_of(drawn):
    from PIL import Image

    maps = {method: [("original", np.ones((4, 3))), ("fc (Linear)", np.zeros((4, 3)))]
            for method in ("gradient", "smoothgrad")}
    plots.strip_plot(maps, Image.new("L", (3, 4), 128))
    (fig,) = drawn
    titles = [[ax.get_title() for ax in fig.axes[row * 3:(row + 1) * 3]] for row in range(2)]
    assert titles == [["input", "gradient\noriginal", "fc (Linear)"], ["", "smoothgrad\noriginal", "fc (Linear)"]]
    assert [len(ax.get_images()) for ax in fig.axes] == [1, 1, 1, 0, 1, 1]
    plots.strip_plot(maps)  # text-free, picture-free: the maps only
    assert [ax.get_title() for ax in drawn[1].axes[:2]] == ["gradient\noriginal", "fc (Linear)"]
