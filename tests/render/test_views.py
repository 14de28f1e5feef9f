"""Pictures land where the attribution is: a known blob, every view, degenerate maps, the contact sheet."""

import numpy as np
import pytest
from PIL import Image

from attrib.render.heatmap import VIEWS, render, view_image

CENTRE = (40, 92)  # (row, column) of the blob in a 128 x 128 image


def _blob(sign=1.0, size=128):
    rows, cols = np.indices((size, size))
    bump = np.exp(-((rows - CENTRE[0]) ** 2 + (cols - CENTRE[1]) ** 2) / (2 * 6.0 ** 2))
    noise = np.random.default_rng(0).normal(0, 0.02, (3, size, size))
    return sign * np.repeat(bump[None] / 3, 3, axis=0) + noise


def _photo(size=128):
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(60, 200, (size, size, 3), dtype=np.uint8))


def _centroid(weights):
    weights = np.clip(weights, 0, None)
    rows, cols = np.indices(weights.shape)
    return (rows * weights).sum() / weights.sum(), (cols * weights).sum() / weights.sum()


def _heat(picture, reference):
    """How far each pixel of a view moved from the same view of a zero map (the backdrop)."""
    return np.abs(np.asarray(picture, float) - np.asarray(reference, float)).sum(axis=2)


@pytest.mark.parametrize("view", ["blend", "magnitude", "signed"])
def test_the_heat_of_an_overlay_lands_on_the_blob(view):
    photo = _photo()
    backdrop = view_image(photo, _blob() * 1e-9 + 1e-12, True, "blend") if view == "blend" else photo
    picture = view_image(photo, _blob(), True, view)
    heat = _heat(picture, np.asarray(photo.convert("L").convert("RGB"), float) * 0.45 + 40
                 if view != "signed" else backdrop)
    heat[heat < np.percentile(heat, 99 if view == "signed" else 95)] = 0  # signed: noise shows as speckle
    row, col = _centroid(heat)
    assert abs(row - CENTRE[0]) < 4 and abs(col - CENTRE[1]) < 4, (view, row, col)


def test_mask_keeps_the_image_only_around_the_blob():
    photo = _photo()
    kept = np.asarray(view_image(photo, _blob(), True, "mask"), float).sum(axis=2) / np.asarray(photo, float).sum(2)
    assert kept[CENTRE] > 0.9 and kept[5, 5] < 0.3 and abs(_centroid(kept > 0.5)[0] - CENTRE[0]) < 4


def test_negative_evidence_shows_in_the_negative_view_only():
    photo = _photo()
    against = _blob(sign=-1.0)
    shown = view_image(photo, against, True, "negative")
    heat = _heat(shown, np.asarray(photo.convert("L").convert("RGB"), float) * 0.45 + 40)
    heat[heat < np.percentile(heat, 95)] = 0
    assert np.hypot(*(np.array(_centroid(heat)) - CENTRE)) < 4
    signed = np.asarray(render(against, True).image, float)
    assert signed[CENTRE][2] > signed[CENTRE][0] + 50  # blue where the evidence is against the class


@pytest.mark.parametrize("values", [np.zeros((3, 32, 32)), np.full((3, 32, 32), np.nan)])
@pytest.mark.parametrize("view", VIEWS)
def test_degenerate_maps_are_hatched_in_every_view(values, view):
    picture = np.asarray(view_image(_photo(32), values, True, view))
    stripes = {tuple(picture[r, c]) for r, c in ((20, 20), (20, 22), (22, 22), (30, 30))}
    assert picture.std() > 5 and not np.allclose(picture, picture[0, 0])  # never one solid colour
    assert len(stripes) >= 1


def test_unknown_view_is_refused():
    with pytest.raises(ValueError, match="unknown view"):
        view_image(_photo(), _blob(), True, "sparkles")


def test_contact_sheet_of_a_run(run_cli_tiny, tmp_path):
    out = run_cli_tiny
    sheet = Image.open(out / "overview.png")
    assert sheet.size[0] == 176 * 3 and sheet.size[1] > 176 * 2  # input + 2 methods, 2 rows
    pixels = np.asarray(sheet)
    assert pixels[40:200, 10:160].std() > 5  # the first thumbnail is a picture, not blank


@pytest.fixture
def run_cli_tiny(tmp_path):
    from click.testing import CliRunner

    from attrib.cli import main

    for i, colour in enumerate([(200, 30, 30), (20, 180, 40)]):
        Image.new("RGB", (64, 48), colour).save(tmp_path / f"im{i}.png")
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["explain", str(tmp_path), "-M", "timm:test_resnet", "--no-pretrained",
                                       "-m", "gradient", "-m", "gxi", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(main, ["report", str(out), "--png", str(tmp_path / "again.png")])
    with Image.open(tmp_path / "again.png") as sheet, Image.open(out / "overview.png") as overview:
        assert again.exit_code == 0 and sheet.size == overview.size
    return out


def _printed(renderables, width: int) -> str:
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), record=True)
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


def test_terminal_tables_keep_names_and_spreads_whole_at_80_columns():
    """A narrow terminal cut DiffROAR's spreads ("-0.348 ±…") and long method names ("integrated_grad…")."""
    from attrib.render.terminal import diffroar_table

    rows = [{"method": m, "k": k, "diffroar": 0.5, "std": 0.0123, "acc_top": 1.0, "acc_bottom": 0.5, "n_seeds": 3}
            for m in ("gradient", "integrated_gradients", "random") for k in (0.05, 0.1, 0.2, 0.3, 0.5)]
    record = {"results": rows, "model": {"name": "sample:synthetic-standard"}, "dataset": {"name": "synthetic"}}
    text = _printed([diffroar_table(record)], 80)
    assert "…" not in text and "integrated_gradients " in text and text.count("± 0.012") == 15
    assert all(len(line) <= 80 for line in text.splitlines())
    narrow = _printed([diffroar_table(record)], 70)  # the name folded where it cannot fit, the numbers whole
    assert "…" not in narrow and narrow.count("± 0.012") == 15 and all(len(line) <= 70 for line in narrow.splitlines())


def test_sanity_tables_drop_no_column_at_80_or_120_columns():
    """A method column held at its name's width made rich crop whole columns: the randomization table lost its
    "hog" column at 120 columns and half of "ssim" at 80."""
    from attrib.render.terminal import sanity_tables

    rows = [{"method": m, "mode": mode, "layer": "vit.encoder.layer.11 (ViTLayer)", "depth": 3, "spearman_abs": 0.25,
             "spearman_signed": -0.5, "ssim": 0.125, "hog": 0.75, "draws": 3,
             "spread": {"spearman_abs": 0.011, "spearman_signed": 0.012, "ssim": 0.013, "hog": 0.014}}
            for m in ("gradient", "integrated_gradients") for mode in ("cascading", "independent")]
    record = {"verdicts": [], "randomization": rows, "robustness": [], "completeness": []}
    for width, tables in ((80, 2), (120, 1)):  # 80: one table per method, under its name
        text = _printed(sanity_tables(record), width)
        assert "…" not in text and all(len(line) <= width for line in text.splitlines())
        for shown in ("hog", "ssim", "0.750", "± 0.014", "depth"):
            assert text.count(shown) == (tables if shown in ("hog", "ssim", "depth") else 4), (width, shown)
    narrow = _printed(sanity_tables(record), 80)
    assert narrow.count("\nintegrated_gradients\n") == 1
    assert sum(line.startswith("independent ") for line in narrow.splitlines()) == 2


def test_a_narrow_sanity_table_wraps_at_spaces_never_inside_a_word():
    """Rich narrowed every column alike at 80 columns: "perturbatio|n", "independen|t", "integra|ted_gra|dients";
    and with a least width per column it cut the last column's numbers short ("0.85")."""
    from attrib.render.terminal import sanity_tables

    rows = [{"method": m, "perturbation": p, "radius": 2.0, "topk_intersection": 0.719, "kendall_tau": 0.665,
             "spearman": 0.846, "cosine": 0.966, "ssim": 0.85, "draws": 3,
             "spread": {k: 0.005 for k in ("topk_intersection", "kendall_tau", "spearman", "cosine", "ssim")}}
            for m in ("gradient", "integrated_gradients") for p in ("random l2", "top-k attack l2")]
    record = {"verdicts": [], "randomization": [], "robustness": rows, "completeness": []}
    text = _printed(sanity_tables(record), 80)
    words = {w for line in text.splitlines() for w in line.replace("│", " ").replace("┃", " ").split()}
    assert {"perturbation", "intersection", "integrated_gradients", "0.850", "0.005"} <= words
    assert text.count("0.850") == 4 and all(len(line) <= 80 for line in text.splitlines())


def test_a_narrow_correlation_table_folds_long_method_names_never_cuts_them():
    from attrib.render.terminal import correlation_table

    names = ["olm", "olm_s", "unk", "delete", "gradient_x_input", "integrated_gradients"]
    table = {a: {b: 0.5 for b in names if b != a} for a in names}
    counts = {a: {b: 2 for b in names if b != a} for a in names}
    text = _printed([correlation_table(table, counts)], 80)
    assert "…" not in text and "gradient_x_in" in text and text.count("0.50") == 30
    assert all(len(line) <= 80 for line in text.splitlines())
    assert " integrated_gradients " in _printed([correlation_table(table, counts)], 120)


def test_a_narrow_input_table_folds_method_names_never_cuts_them():
    """At 50 columns the input's table cut names short: "gradient…", "smoothgr…"."""
    from attrib.render.terminal import input_table

    entry = {"name": "cat.png", "predictions": [{"label": "limpkin, Aramus pictus", "prob": 0.5, "index": 135}],
             "attributions": [{"method": m, "target_label": "limpkin, Aramus pictus", "target": 135,
                               "completeness_gap": 0.0714, "seconds": 0.1}
                              for m in ("gradient_x_input", "smoothgrad_squared", "integrated_gradients")]}
    text = _printed([input_table(entry)], 50)
    assert "…" not in text and all(len(line) <= 50 for line in text.splitlines())
    assert "gradient_x_" in text and text.count("7.14%") == 3 and "(135)" in text
    assert " integrated_gradients │ limpkin, Aramus pictus (135) │" in _printed([input_table(entry)], 120)


def test_a_narrow_text_panel_wraps_scores_never_cuts_them():
    """At 50 columns the strongest words' scores were cut short ("movie=-1.5e-…")."""
    from attrib.render.terminal import text_panel

    words = "the movie was great and the acting was good".split()
    entry = {"name": "text 1", "prediction": {"label": "negative", "prob": 0.501}, "target_label": "negative",
             "words": words, "scores": {m: [-(i + 1) * 1.5e-6 for i in range(len(words))]
                                        for m in ("olm", "gradient_x_input")}}
    text = _printed([text_panel(entry)], 50)
    assert "…" not in text and all(len(line) <= 50 for line in text.splitlines())
    assert text.count("good=-1.3e-05,") == 2 and text.count("was=-1.2e-05,") == 2 and "gradient_x_input" in text


def test_a_narrow_diffroar_table_keeps_its_legend_on_one_line():
    """One k made the table 22 columns wide, and rich wrapped its caption over four lines under it."""
    import io

    from rich.console import Console

    from attrib.render.terminal import diffroar_table

    rows = [{"method": m, "k": 0.2, "diffroar": 0.0, "std": 0.0, "acc_top": 0.27, "acc_bottom": 0.27, "n_seeds": 1}
            for m in ("gradient", "random")]
    record = {"results": rows, "model": {"name": "timm:resnet18"}, "dataset": {"name": "folder:digits"}}
    console = Console(width=120, file=io.StringIO(), record=True)
    console.print(diffroar_table(record))
    assert "DiffROAR (± std over seeds); dim: acc(top-k kept)/acc(bottom-k kept)" in console.export_text()


def test_a_long_input_name_loses_its_middle_so_the_prediction_stays_on_the_contact_sheet():
    from PIL import Image, ImageDraw

    from attrib.render.contact import _caption, _font

    draw, font = ImageDraw.Draw(Image.new("RGB", (8, 8))), _font(13)
    entry = {"name": "roll/IMG_2026_11_29_000123456789_exported_from_a_phone_final_v2.png",
             "predictions": [{"label": "tabby, tabby cat", "prob": 0.61, "index": 281}],
             "attributions": [{"target_label": "tabby, tabby cat", "target": 281}]}
    caption = _caption(entry, draw, font, 344)
    assert caption.startswith("roll/IMG_") and "…" in caption
    assert caption.endswith("v2.png  |  predicted tabby (0.61)")
    assert draw.textlength(caption, font=font) <= 344
    assert _caption({**entry, "name": "cat.png"}, draw, font, 344) == "cat.png  |  predicted tabby (0.61)"


def test_a_misclassified_input_says_its_true_class_at_a_glance():
    """With true classes (--truth), a contact sheet's caption, a terminal table and the report say which inputs the
    model got wrong, and as what, without repeating the class a map explains when it is that one."""
    from PIL import Image, ImageDraw
    from rich.console import Console

    from attrib.render.contact import _caption, _font
    from attrib.render.terminal import input_table

    draw, font = ImageDraw.Draw(Image.new("RGB", (8, 8))), _font(13)
    pred = {"name": "cat.png", "given": 281, "true_label": "tabby, tabby cat", "status": "ok",
            "predictions": [{"label": "tiger cat", "prob": 0.61, "index": 282}],
            "attributions": [{"method": "gradient", "target_label": "tiger cat", "target": 282,
                              "completeness_gap": None, "seconds": 0.1}]}
    truth = {**pred, "attributions": [{**pred["attributions"][0], "target_label": "tabby, tabby cat", "target": 281}]}
    assert _caption(pred, draw, font, 900) == "cat.png  |  predicted tiger cat (0.61)\ntrue class tabby"
    assert _caption(truth, draw, font, 900) == "cat.png  |  predicted tiger cat (0.61)\ntrue class tabby"
    other = {**pred, "attributions": [{**pred["attributions"][0], "target_label": "lynx", "target": 287}]}
    assert _caption(other, draw, font, 900) == "cat.png  |  predicted tiger cat (0.61)\ntrue class tabby  |  " \
        "explaining lynx"
    assert _caption(pred, draw, font, 344).split("\n")[1] == "true class tabby"  # a narrow sheet: its own line
    right = {**pred, "given": 282, "true_label": "tiger cat"}
    assert _caption(right, draw, font, 900) == "cat.png  |  predicted tiger cat (0.61)"
    console = Console(width=120, record=True)
    console.print(input_table(pred))
    assert "cat.png misclassified: its true class is tabby, tabby cat (281)" in console.export_text()
    console = Console(width=120, record=True)
    console.print(input_table(right))
    assert "misclassified" not in console.export_text()


def test_a_contrast_names_both_classes_on_the_contact_sheet_and_in_the_terminal():
    from PIL import Image, ImageDraw
    from rich.console import Console

    from attrib.render.contact import _caption, _font
    from attrib.render.terminal import input_table

    draw, font = ImageDraw.Draw(Image.new("RGB", (8, 8))), _font(13)
    explained = {"method": "gradient", "target_label": "tiger cat", "target": 282, "versus": 281,
                 "versus_label": "tabby, tabby cat", "completeness_gap": None, "seconds": 0.1}
    wrong = {"name": "cat.png", "given": 281, "true_label": "tabby, tabby cat", "status": "ok",
             "predictions": [{"label": "tiger cat", "prob": 0.61, "index": 282}], "attributions": [explained]}
    assert _caption(wrong, draw, font, 900) == "cat.png  |  predicted tiger cat (0.61)\ntrue class tabby  |  " \
        "explaining tiger cat vs tabby"
    plain = {**wrong, "given": None, "true_label": None}  # the prediction against its runner-up: said all the same
    assert _caption(plain, draw, font, 900) == "cat.png  |  predicted tiger cat (0.61)\nexplaining tiger cat vs tabby"
    console = Console(width=120, record=True)
    console.print(input_table(wrong))
    assert "tiger cat (282) vs tabby, tabby cat (281)" in console.export_text()


def test_a_contact_sheet_makes_room_for_a_second_caption_line(tmp_path):
    """The true class went on a second line that overlapped the next row's pictures (and fell off the last row)."""
    from PIL import Image

    from attrib.render.contact import CELL, LABEL, LINE, contact_sheet

    Image.new("RGB", (32, 32), "red").save(tmp_path / "in.png")
    entry = {"name": "cat.png", "status": "ok", "view": "in.png", "given": 282, "true_label": "tiger cat",
             "predictions": [{"label": "tiger cat", "prob": 0.61, "index": 282}], "attributions": []}
    record = {"methods": [{"method": "gradient"}], "inputs": [entry, entry]}
    assert contact_sheet(record, tmp_path).height == LABEL + 2 * (CELL + LABEL)  # classified right: one line
    wrong = {**entry, "given": 281, "true_label": "tabby"}
    sheet = contact_sheet({**record, "inputs": [wrong, entry]}, tmp_path)
    assert sheet.height == LABEL + 2 * (CELL + LABEL + LINE)
    strip = sheet.crop((0, LABEL + CELL + LINE, sheet.width, LABEL + CELL + LABEL + LINE))  # under the first row
    assert strip.getextrema() != ((255, 255),) * 3  # its second line is drawn there


def test_a_contact_sheet_names_a_view_that_blend_could_be_taken_for(tmp_path):
    """Negative evidence and magnitudes are drawn in blend's colours: a sheet of them read as positive evidence."""
    from PIL import Image

    from attrib.render.contact import CELL, LABEL, LINE, contact_sheet

    Image.new("RGB", (32, 32), "red").save(tmp_path / "in.png")
    entry = {"name": "cat.png", "status": "ok", "view": "in.png", "drawn_as": "blend",
             "predictions": [{"label": "tiger cat", "prob": 0.61, "index": 282}], "attributions": []}

    def note_strip(view: str) -> Image.Image:  # under the method's title, above its pictures
        sheet = contact_sheet({"methods": [{"method": "gradient"}], "inputs": [{**entry, "drawn_as": view}]},
                              tmp_path)
        assert sheet.height == LABEL + CELL + LABEL  # the header keeps its height
        return sheet.crop((CELL + 70, LINE, CELL + 90, LABEL))  # past the end of the title "gradient"

    assert note_strip("blend").getextrema() == ((255, 255),) * 3  # the default: the title alone
    for view in ("negative", "magnitude", "mask", "signed"):
        assert note_strip(view).getextrema() != ((255, 255),) * 3, view
