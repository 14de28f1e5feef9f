"""Heatmap conventions: diverging for signed maps centred at 0, 99th-percentile scale, degenerate maps hatched."""

import numpy as np
import pytest
from PIL import Image

from attrib.evaluate.similarity import signed_map as to_2d
from attrib.render.heatmap import Heatmap, overlay, render


def test_signed_map_is_centred_and_symmetric():
    values = np.zeros((3, 10, 10))
    values[0, 0, 0], values[0, 9, 9] = 1.0, -1.0
    values[0, 5, 5] = 0.0
    heat = render(values, signed=True)
    rgb = np.asarray(heat.image)
    red, blue, middle = rgb[0, 0], rgb[9, 9], rgb[5, 5]
    assert red[0] > red[2] and blue[2] > blue[0]  # positive red, negative blue
    assert abs(int(middle[0]) - int(middle[2])) < 10 and middle.min() > 200  # zero is near white


def test_scale_is_the_99th_percentile_of_abs_after_summing_channels():
    values = np.random.default_rng(0).normal(size=(3, 50, 50))
    heat = render(values, signed=True)
    assert heat.scale == pytest.approx(np.percentile(np.abs(values.sum(axis=0)), 99))
    assert heat.warning is None and heat.strength.max() == 1.0


def test_unsigned_map_uses_a_sequential_colormap():
    values = np.linspace(0, 1, 100).reshape(1, 10, 10)
    rgb = np.asarray(render(values, signed=False).image).astype(int)
    brightness = rgb.sum(axis=2).reshape(-1)
    assert brightness[-1] > brightness[0] and np.all(np.diff(brightness[:90]) >= -5)


@pytest.mark.parametrize("fill,reason", [(0.0, "all zero"), (np.nan, "all NaN")])
def test_degenerate_maps_are_hatched_with_a_warning(fill, reason):
    heat = render(np.full((3, 40, 40), fill), signed=True)
    assert heat.warning == f"attribution map is {reason}"
    assert len(np.unique(np.asarray(heat.image).reshape(-1, 3), axis=0)) > 1  # not a solid colour


def test_the_note_on_a_hatched_panel_is_whole_or_absent():
    def text_pixels(size):  # the hatch is two greys; the note is drawn in black
        image = np.asarray(render(np.zeros((3, *size)), signed=True).image)
        return int((image.sum(axis=2) < 100).sum())

    assert text_pixels((224, 224)) > 50  # "attribution is all zero" fits
    assert text_pixels((64, 64)) > 50  # wrapped over lines
    assert text_pixels((28, 28)) == 0  # no word fits: the hatch alone, never a word cut off


def test_partial_nan_is_flagged():
    values = np.ones((8, 8))
    values[0, 0] = np.nan
    assert "1 NaN/inf" in render(values, signed=False).warning


def test_overlay_keeps_unattributed_pixels():
    view = Image.new("RGB", (8, 8), (10, 200, 30))
    values = np.zeros((8, 8))
    values[0, 0] = 1.0
    out = np.asarray(overlay(view, render(values, signed=True)))
    assert tuple(out[7, 7]) == (10, 200, 30) and tuple(out[0, 0]) != (10, 200, 30)
    assert to_2d(np.ones((3, 2, 2)))[0, 0] == 3.0
    assert isinstance(render(values, True), Heatmap)
