"""One self-contained HTML file from a run directory: images inlined as base64, no external URL, no script.

All text goes through Jinja2 autoescaping; image paths from run.json are only read inside the run folder. The
report renders records only: it never imports the methods or the engine, and recomputes nothing.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from attrib.errors import first_line
from attrib.formats import percent
from attrib.render.heatmap import colorbar_stops
from attrib.runs.atomic import atomic_write_text, png_bytes
from attrib.runs.store import INPUTS, RunError, load_run

VIEW_NOTES = {"blend": "the positive evidence for the explained class, brighter where stronger",
              "negative": "the evidence against the explained class, brighter where stronger",
              "magnitude": "the attribution's magnitude, brighter where larger",
              "mask": "the image kept where the positive evidence is in its top 20%",
              "signed": "the signed heatmap blended over the image"}
MAX_INPUTS = 200  # inputs (texts) shown in an explain (explain-text) report by default: about 14 MB per method
#                  for photos (measured); a file of 50,000 texts would make a report no browser opens
PHOTO_QUALITY = 90  # WebP quality of an explain report's input views and overlays
TEMPLATES = {"explain": "explain.html", "explain_text": "explain_text.html", "diffroar": "diffroar.html",
             "sanity": "sanity.html"}


def write_report(run_dir: str | Path, out_path: str | Path, max_inputs: int | None = MAX_INPUTS) -> None:
    """Render ``run_dir`` into ``out_path`` atomically (explain and explain-text runs: the first ``max_inputs``
    inputs or texts, with a note saying how many there are; None shows all)."""
    atomic_write_text(out_path, report_text(run_dir, max_inputs))


def report_text(run_dir: str | Path, max_inputs: int | None = MAX_INPUTS) -> str:
    """The HTML report of ``run_dir`` (see :func:`write_report`)."""
    return render_report(load_run(run_dir).record, Path(run_dir), max_inputs)


def contact_sheet_png(run_dir: str | Path) -> bytes:
    """The contact sheet of an explain run (inputs x methods) as PNG bytes; RunError where there is none."""
    from attrib.render.contact import contact_sheet

    record = load_run(run_dir).record
    sheet = contact_sheet(record, Path(run_dir)) if record.get("kind") == "explain" else None
    if sheet is None:
        why = "not an explain run" if record.get("kind") != "explain" else "no input was explained" \
            if record.get("images", True) else "made with --no-images: the same explain command without it, into " \
            "this folder, draws them from the maps"
        raise RunError(f"{run_dir}: no pictures to put on a contact sheet ({why})")
    return png_bytes(sheet)


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A record from attrib 0.1 in the current shape: methods as {"method", "config"} entries."""
    configs = record.get("configs", {})
    methods = [m if isinstance(m, dict) else {"method": m, "config": configs.get(m, {})}
               for m in record.get("methods", [])]
    return {**record, "methods": methods}


def render_report(record: dict[str, Any], run_dir: Path, max_inputs: int | None = MAX_INPUTS) -> str:
    """The report's HTML text."""
    import jinja2

    kind = record.get("kind", "explain")
    if kind not in TEMPLATES:
        raise RunError(f"{run_dir}: run kind {kind!r} is from a newer attrib; upgrade attrib to render it")
    env = jinja2.Environment(loader=jinja2.PackageLoader("attrib.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["pct"] = lambda v: "—" if v is None else percent(v)
    env.globals.update(image=lambda rel: data_uri(run_dir, rel), photo=lambda rel: data_uri(run_dir, rel, "lossy"),
                       exact=lambda rel: data_uri(run_dir, rel, "lossless"),
                       num=_num, band=_band,
                       max_abs=lambda xs: max((abs(x) for x in xs), default=0.0) or 1.0,
                       relevance_bg=relevance_colour, colorbar=colorbar_stops)
    try:
        return _render(env.get_template(TEMPLATES[kind]), upgrade(record), kind, max_inputs)
    except (jinja2.UndefinedError, KeyError, TypeError, ValueError, AttributeError) as error:
        files = "run.json or inputs.jsonl" if (run_dir / INPUTS).is_file() else "run.json"
        raise RunError(f"{run_dir}/{files} is not a complete {kind} record ({first_line(error)}); was it "
                       "edited, or cut short?") from None


def _render(template, record: dict[str, Any], kind: str, max_inputs: int | None) -> str:
    """``template`` filled in with ``record`` (an explain or explain-text run's first ``max_inputs`` inputs)."""
    inputs = record.get("texts" if kind == "explain_text" else "inputs", [])
    if kind in ("explain", "explain_text"):  # what --only left out is counted in the accuracy, not shown
        inputs = [e for e in inputs if e.get("status") != "excluded"]
    shown = inputs if max_inputs is None else inputs[:max_inputs]
    if kind == "explain":
        record = {**record, "methods": record["methods"] + _earlier_methods(record, shown)}
    return template.render(run=record, inputs=shown, n_inputs=len(inputs), view_note=VIEW_NOTES.get(
        record.get("view"), "the chosen view"), **(_diffroar_view(record) if kind == "diffroar" else {}))


def _earlier_methods(record: dict[str, Any], inputs: list[dict]) -> list[dict[str, Any]]:
    """Columns for the maps an earlier run into the folder made with methods this run does not have (of inputs
    it reused), with their options where the record keeps them (``earlier_methods``; folders written before it
    did have none)."""
    from attrib.render.contact import earlier_methods

    signed = {a["method"]: a.get("signed", True) for entry in inputs for a in entry.get("attributions", [])}
    kept = {row["method"]: row for row in record.get("earlier_methods", [])}
    return [{**kept.get(method, {"method": method, "config": {}}), "earlier": True, "signed": signed[method]}
            for method in earlier_methods(record, inputs)]


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _band(row: dict[str, Any], key: str) -> str:
    """A value with its spread over draws ("0.150 ± 0.050"), as sanity records hold them."""
    spread = (row.get("spread") or {}).get(key)
    return _num(row.get(key)) + (f" ± {spread:.3f}" if spread is not None and row.get("draws", 1) > 1 else "")


def _diffroar_view(record: dict[str, Any]) -> dict[str, Any]:
    rows = record.get("results", [])
    cells = {(r["method"], r["k"]): r for r in rows}
    return {"ks": sorted({r["k"] for r in rows}), "methods": list(dict.fromkeys(r["method"] for r in rows)),
            "cell": lambda method, k: cells.get((method, k))}


def data_uri(run_dir: Path, relative: str | None, webp: str | None = None) -> str:
    """A PNG under the run folder as a data: URI ('' when missing, damaged or outside the folder), as it is or
    re-encoded as WebP: "lossy" (at PHOTO_QUALITY: an input view or overlay, a few 8-bit levels off in a sixth of
    the bytes) or "lossless" (a heatmap, exact in about a third of the bytes). The run folder keeps its PNGs either
    way."""
    if not relative:
        return ""
    root = run_dir.resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file():
        return ""
    data = path.read_bytes()
    picture = _decoded(data)
    if picture is None:
        return ""  # damaged: said as missing, never shown as a broken picture
    encoded = _as_webp(picture, lossless=webp == "lossless") if webp else None
    if encoded is not None:
        return "data:image/webp;base64," + base64.b64encode(encoded).decode("ascii")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _decoded(data: bytes):
    """A picture's bytes decoded (a PIL image), or None where they do not read as a whole picture (cut short, a
    damaged chunk)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            return picture.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):  # (UnidentifiedImageError is an OSError)
        return None


def _as_webp(picture, lossless: bool) -> bytes | None:
    """The picture encoded as WebP, or None where Pillow has no WebP or cannot write it (then the PNG goes in as
    it is)."""
    from PIL import features

    if not features.check("webp"):
        return None
    options = {"lossless": True, "method": 2} if lossless else {"quality": PHOTO_QUALITY}
    out = io.BytesIO()
    try:
        picture.save(out, "WEBP", **options)
    except (OSError, ValueError):
        return None
    return out.getvalue()


def relevance_colour(value: float, scale: float) -> str:
    """White to red for positive, white to blue for negative relevance (CSS rgb)."""
    v = max(-1.0, min(1.0, value / scale)) if scale else 0.0
    fade = int(round(255 - 150 * abs(v)))  # lightest at 0; black text stays legible
    return f"rgb(255,{fade},{fade})" if v >= 0 else f"rgb({fade},{fade},255)"
