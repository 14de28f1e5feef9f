"""A contact sheet: one labelled picture of a whole explain run (inputs x methods), from its record and PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from attrib.runs.atomic import utf8

CELL = 176  # thumbnail side in pixels
LABEL = 34  # label strip under each row / above each column
LINE = 17  # a caption's second line (13 px type)
MAX_INPUTS = 12
VIEW_NOTES = {"negative": "negative evidence", "magnitude": "magnitude: sum |a|",
              "mask": "top 20% shown", "signed": "red raises, blue lowers"}  # under the methods' titles ("blend": none)


def contact_sheet(record: dict[str, Any], root: Path, max_inputs: int = MAX_INPUTS) -> Image.Image | None:
    """Rows: the first ``max_inputs`` explained inputs; columns: the input as the model saw it, then each
    method's overlay. None when the run wrote no pictures."""
    rows = [e for e in record.get("inputs", []) if e.get("status") == "ok" and e.get("view")][:max_inputs]
    if not rows:
        return None
    earlier = earlier_methods(record, rows)
    methods = [m["method"] for m in record.get("methods", [])] + earlier
    font, width = _font(13), CELL * (1 + len(methods))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    captions = [_caption(entry, measure, font, width - 8) for entry in rows]
    label = LABEL + LINE * max(c.count("\n") for c in captions)  # room for a second line where one has it
    sheet = Image.new("RGB", (width, LABEL + len(rows) * (CELL + label)), "white")
    draw = ImageDraw.Draw(sheet)
    note = VIEW_NOTES.get(rows[0].get("drawn_as") or record.get("view"))  # (a run draws all its rows in one view)
    for c, title in enumerate(["input (as the model saw it)", *methods[:len(methods) - len(earlier)],
                               *(f"{method} (earlier run)" for method in earlier)]):
        draw.text((c * CELL + 4, 1 if note else 10), _fit(draw, title, font), fill="black", font=font)
        if note and c:
            draw.text((c * CELL + 4, LINE), _fit(draw, note, font), fill="dimgray", font=font)
    for r, (entry, caption) in enumerate(zip(rows, captions)):
        top = LABEL + r * (CELL + label)
        by_method = {a["method"]: a for a in entry.get("attributions", [])}
        paths = [entry["view"], *(by_method.get(m, {}).get("overlay") for m in methods)]
        for c, relative in enumerate(paths):
            if thumbnail := _thumbnail(root, relative):
                sheet.paste(thumbnail, (c * CELL + 2, top))
        draw.text((4, top + CELL + 2), caption, fill="black", font=font)
    return sheet


def _thumbnail(root: Path, relative: str | None) -> Image.Image | None:
    """A cell's picture, or None (the cell stays blank) where the file is gone or cannot be read (damaged)."""
    if not relative or not (root / relative).is_file():
        return None
    try:
        with Image.open(root / relative) as picture:
            return picture.convert("RGB").resize((CELL - 4, CELL - 4))
    except (OSError, ValueError, Image.DecompressionBombError):  # (UnidentifiedImageError is an OSError)
        return None


def earlier_methods(record: dict[str, Any], inputs: list[dict]) -> list[str]:
    """The methods of maps that an earlier run into the folder made (of inputs this run reused) and this run did
    not run, in the order they first appear (the record holds this run's methods only)."""
    known = {m["method"] for m in record.get("methods", [])}
    return list(dict.fromkeys(a["method"] for entry in inputs for a in entry.get("attributions", [])
                              if a["method"] not in known))


def _caption(entry: dict[str, Any], draw: ImageDraw.ImageDraw, font, width: int) -> str:
    """Name  |  prediction, within ``width``: a long name loses its middle first, so that the prediction stays
    readable (a camera-roll name used to push it off the sheet); then, on a second line where there is one, the
    true class of a misclassified input and the class explained when it is not the prediction."""
    best = entry["predictions"][0] if entry.get("predictions") else None
    explained = next((a for a in entry.get("attributions", []) if a.get("target_label")), None)
    rest = [f"predicted {best['label'].split(',')[0]} ({best['prob']:.2f})"] if best else []
    second = []
    wrong = entry.get("true_label") is not None and (not best or entry["given"] != best["index"])
    if wrong:
        second.append(f"true class {entry['true_label'].split(',')[0]}")
    versus = explained.get("versus_label") if explained else None
    if explained and (versus is not None or not best or explained["target"] != best["index"]) and \
            not (versus is None and wrong and explained["target"] == entry["given"]):  # said just before
        second.append(f"explaining {explained['target_label'].split(',')[0]}"
                      + (f" vs {versus.split(',')[0]}" if versus is not None else ""))
    first = _first_line(_drawable(entry["name"]), rest, draw, font, width)
    return first + ("\n" + _fit(draw, "  |  ".join(second), font, width) if second else "")


def _first_line(name: str, rest: list[str], draw: ImageDraw.ImageDraw, font, width: int) -> str:
    head, tail = name[:len(name) // 2], name[len(name) // 2:]
    text = "  |  ".join([name, *rest])
    while draw.textlength(text, font=font) > width and len(head) + len(tail) > 12:
        head, tail = head[:-1], tail[1:]
        text = "  |  ".join([f"{head}…{tail}", *rest])
    return _fit(draw, text, font, width)


def _drawable(name: str) -> str:
    """``name`` on one line: a file name's bytes that are not UTF-8 as ``\\xe9`` (as run.json and the report show
    them), a line break or other control character as "?"."""
    return "".join(c if c.isprintable() else "?" for c in utf8(name).decode())


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int = CELL - 8) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def _font(size: int):
    return ImageFont.load_default(size=size)
