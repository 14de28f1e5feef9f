"""The pictures of one map that explain draws: its heatmap and its overlay on the input as the model saw it, in a
--view, as PNG bytes by the relative path they go to in the run folder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrib.runs.store import MAP_PICTURES, image_path

if TYPE_CHECKING:
    from attrib.jobs.explain import Options


def pictures(picture, input_id: str, method: str, values, signed: bool, options: Options) -> tuple[Any, dict]:
    """One map's heatmap (attrib.render.heatmap.Heatmap) and, with pictures, the PNG bytes of it and of its
    overlay in ``options.view`` on ``picture`` (the input as the model saw it), by relative path."""
    from attrib.evaluate.similarity import magnitude_map
    from attrib.render.heatmap import render, view_image
    from attrib.runs.atomic import png_bytes

    heat = render(magnitude_map(values), False) if options.view == "magnitude" else render(values, signed)
    if not options.images:
        return heat, {}
    return heat, {image_path(input_id, method, "heatmap"): png_bytes(heat.image),
                  image_path(input_id, method, "overlay"): png_bytes(view_image(picture, values, signed, options.view))}


def drawn_fields(heat, input_id: str, method: str, options: Options) -> dict[str, Any]:
    """A map's record fields that depend on how it was drawn: colour scale, signed, picture paths."""
    return {"scale": heat.scale, "signed": heat.signed and options.view != "magnitude",
            **{kind: image_path(input_id, method, kind) if options.images else None for kind in MAP_PICTURES}}
