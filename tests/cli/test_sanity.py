"""attrib sanity: --json schema, test selection, bad inputs, usage errors, the HTML section."""

import io
import json

import pytest
import torch
from PIL import Image
from rich.console import Console

from attrib.render.terminal import sanity_tables

from tests.cli.conftest import TINY, parse_json

SAMPLE = ["-M", "sample:blockdigits-standard", "--n", "3"]


def test_json_schema(run_cli, tmp_path):
    result = run_cli("sanity", *SAMPLE, "-m", "gradient", "-m", "ig", "--set", "n_steps=8", "--radii", "0.5",
                     "--max-layers", "2", "--out", tmp_path, "--json", "--html", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert set(data) == {"randomization", "robustness", "completeness", "verdicts", "warnings", "out_dir"}
    assert data["warnings"] == []  # a sample model says how it reads its data
    assert set(data["randomization"][0]) == {"method", "mode", "layer", "depth", "spearman_abs", "spearman_signed",
                                             "ssim", "hog", "spread", "draws"}
    assert data["randomization"][0]["draws"] == 3 and set(data["randomization"][0]["spread"]) == {
        "spearman_abs", "spearman_signed", "ssim", "hog"}
    assert {r["mode"] for r in data["randomization"]} == {"cascading", "independent", "data"}
    assert set(data["robustness"][0]) == {"method", "perturbation", "radius", "n_inputs", "topk_intersection",
                                          "kendall_tau", "spearman", "cosine", "ssim", "spread", "draws"}
    assert set(data["completeness"][1]) == {"method", "steps", "default", "passes", "converged", "gap", "gap_stderr",
                                            "undefined", "not_finite"}
    # --set n_steps=8: the verdict is judged at the budget set (marked), the default's row shown beside it
    assert [(r["steps"], r["default"], r.get("set")) for r in data["completeness"]] == [
        (8, False, True), (16, False, None), (32, False, None), (64, False, None), (256, True, None)]
    verdict = next(v for v in data["verdicts"] if v["test"] == "completeness")
    assert " at the 8 steps set (" in verdict["reason"]
    assert all(r["undefined"] == 0 and r["not_finite"] == 0 for r in data["completeness"])
    assert {(v["method"], v["test"]) for v in data["verdicts"]} >= {("gradient", "randomization"),
                                                                     ("integrated_gradients", "completeness")}
    assert all(set(v) == {"method", "test", "passed", "reason"} for v in data["verdicts"])
    for name in ("run.json", "randomization.png", "randomized_maps.png", "robustness.png"):
        assert (tmp_path / name).is_file()
    html = (tmp_path / "r.html").read_text()
    assert "Verdicts" in html and html.count("data:image/png;base64,") == 3 and "<script" not in html
    assert "<td>256 (default)</td>" in html and "<td>8 (set)</td>" in html and "<th>converged</th>" in html
    (tmp_path / "robustness.png").unlink()  # a plot gone from the run folder is named, not drawn broken
    assert run_cli("report", tmp_path, "-o", tmp_path / "bare.html").exit_code == 0
    html = (tmp_path / "bare.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and 'src=""' not in html
    assert "(plot missing from the run folder, or damaged: robustness.png)" in html


def test_tests_can_be_selected(run_cli, tmp_path):
    for name in ("randomization.png", "robustness.png"):  # an earlier run's plots, into this folder
        (tmp_path / name).write_bytes(b"\x89PNG")
    (tmp_path / "run.json").write_text(json.dumps({"kind": "sanity", "attrib_version": "0.1.0",
                                                   "plots": {"robustness": "robustness.png"}}))
    result = run_cli("sanity", *SAMPLE, "-m", "ig", "--tests", "completeness", "--out", tmp_path, "--json")
    data = parse_json(result)
    assert result.exit_code == 0 and data["randomization"] == [] and data["robustness"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".attrib.lock", "randomization.png", "run.json"]
    # the earlier run's plot is gone (not this run's); a file its record did not name stays
    assert [r["steps"] for r in data["completeness"]] == [8, 16, 32, 64, 256]  # 256: the adaptive rule's budget
    assert [r["default"] for r in data["completeness"]] == [False] * 4 + [True]
    console = Console(width=120, record=True, file=io.StringIO())
    for table in sanity_tables(json.loads((tmp_path / "run.json").read_text())):
        console.print(table)
    text = console.export_text()  # the terminal's table: IG's columns, not EG's Monte Carlo error
    assert "Completeness gap" in text and "converged" in text and "100%" in text and "gap stderr" not in text


def test_options_for_a_test_left_out_are_warned_of(run_cli, tmp_path):
    """--radii, --layers and friends were silently ignored when --tests left their test out, and the header
    listed radii for a run without robustness."""
    result = run_cli("sanity", *SAMPLE, "-m", "gradient", "--tests", "completeness", "--radii", "5%", "--norm",
                     "linf", "--layers", "9", "--repeats", "2", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    for flag, test in (("--layers", "randomization"), ("--radii", "robustness"), ("--norm", "robustness")):
        assert f"warning: {flag} is ignored: it is for the {test} test, which --tests completeness leaves out" \
            in result.output
    assert "warning: --repeats is ignored" in result.output and "--max-layers" not in result.output
    assert "radii:" not in result.output
    assert "completeness of integrated_gradients (no method asked for has a completeness gap)" in result.output
    quiet = run_cli("sanity", *SAMPLE, "-m", "ig", "--tests", "robustness,completeness", "--radii", "0.5",
                    "--out", tmp_path / "b")
    assert quiet.exit_code == 0 and "warning" not in quiet.output and "radii: 0.5 (l2)" in quiet.output


def test_a_bad_image_fails_alone(run_cli, tmp_path):
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    result = run_cli("sanity", tmp_path / "ok.png", tmp_path / "bad.png", "-M", "timm:test_resnet",
                     "--no-pretrained", "-m", "gradient", "--tests", "randomization", "--out", tmp_path / "o",
                     "--json")
    assert result.exit_code == 1 and "bad.png" in result.stderr
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["inputs"] == [str(tmp_path / "ok.png")]


def test_an_image_enlarged_over_four_times_is_warned_of(run_cli, tmp_path):
    """Its maps are of the enlargement's blur: sanity says so as explain does, and not of a 4x image."""
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "thumb.png")
    Image.new("RGB", (40, 40), (10, 200, 10)).save(tmp_path / "four.png")
    result = run_cli("sanity", tmp_path / "thumb.png", tmp_path / "four.png", "-M", "timm:test_resnet",
                     "--no-pretrained", "-m", "gradient", "--tests", "randomization", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert said.count(f"{tmp_path / 'thumb.png'}: the image is 40x30 px, enlarged 5x to the model's 160x160 "
                      "input") == 1 and "four.png:" not in said


def test_n_takes_the_first_images_too(run_cli, tmp_path):
    """--n was for --dataset only: with images it was silently ignored (--n 3 checked all 4 samples)."""
    for i in range(4):
        Image.new("RGB", (40, 30), (60 * i, 10, 10)).save(tmp_path / f"{i}.png")
    args = ("-M", "timm:test_resnet", "--no-pretrained", "-m", "gradient", "--tests", "completeness")
    result = run_cli("sanity", tmp_path, *args, "--n", "3", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "run.json").read_text())["inputs"] == [str(tmp_path / f"{i}.png")
                                                                             for i in range(3)]
    assert run_cli("sanity", tmp_path, *args, "--out", tmp_path / "all").exit_code == 0  # default: every image
    assert len(json.loads((tmp_path / "all" / "run.json").read_text())["inputs"]) == 4


def test_radii_may_be_percentages_of_the_inputs_norm(run_cli, tmp_path):
    result = run_cli("sanity", *SAMPLE, "-m", "gradient", "--tests", "robustness", "--repeats", "1", "--radii",
                     "5%,0.3", "--norm", "linf", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["radii"] == [0.05, 0.3] and record["norm"] == "linf"  # blockdigits pixels peak at 1
    assert {r["radius"] for r in parse_json(result)["robustness"]} == {0.05, 0.3}


def test_usage_errors(run_cli, tmp_path):
    cases = [(["--tests", "speed"], "unknown test 'speed'"),
             (["--tests", ","], "no test to run; choose from randomization"),
             (["--tests", ""], "--tests is empty (an unset shell variable?)"),
             (["--layers", "head"], "unknown layer 'head'"),
             (["-m", "nosuch"], "unknown method"),
             (["--radii", "-1"], "radii must be positive"),
             (["--radii", "nan,0.5"], "radii must be positive and finite"),
             (["--radii", "5%%"], "expected comma-separated radii like 0.5,1 or 2%,5%, got '5%%'"),
             (["--dataset", "nope"], "unknown data set"),
             (["--dataset", "synthetic"],  # was "unexpected RuntimeError: Expected 3D (unbatched) or 4D ..."
              "sample:blockdigits-standard cannot take synthetic inputs of shape (10,)"),
             (["--dataset", "blockdigits", str(tmp_path / "cat.png")],  # the image was silently ignored
              "give images or --dataset blockdigits, not both"),
             (["--versus", "truth"], "--versus truth: the sanity checks have no true classes; use --versus runner-up"),
             (["--versus", "pred"], "--versus pred contrasts the class explained with itself"),
             (["--versus", "12"], "--versus: target 12 is out of range: the model has 10 classes"),
             (["-M", "sample:synthetic-standard", "-m", "ig", "--set", "baseline=blur"],  # "unexpected ValueError"
              "integrated_gradients takes images (C, H, W) only, as configured (the blur baseline blurs images); "
              "the inputs, of shape (10,), are not")]
    for args, message in cases:
        result = run_cli("sanity", *SAMPLE, *args, "--out", tmp_path / "x")
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_tables_in_a_log_are_120_columns_wide(run_cli, tmp_path, monkeypatch):
    """Off a terminal rich drew tables 80 columns wide, folding a sanity table's layer names and modes into
    three lines each ("independe / nt"); COLUMNS still wins."""
    from attrib.cli.ui import LOG_WIDTH

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "red.png")
    args = ("sanity", tmp_path / "red.png", "-M", "timm:test_resnet", "--no-pretrained", "-m", "gradient",
            "--tests", "randomization", "--repeats", "1")
    monkeypatch.delenv("COLUMNS", raising=False)
    result = run_cli(*args, "--out", tmp_path / "a")
    widths = [len(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and " independent " in result.stdout and 80 < max(widths) <= LOG_WIDTH
    monkeypatch.setenv("COLUMNS", "70")
    assert max(len(line) for line in run_cli(*args, "--out", tmp_path / "b").stdout.splitlines()) <= 70


def test_a_gap_that_is_not_a_number_is_shown_as_such(run_cli, tmp_path):
    """A model whose gradient is NaN on IG's path wrote a gap of null; the report then failed on 100 * None."""
    assert run_cli("sanity", *SAMPLE, "-m", "ig", "--tests", "completeness", "--out", tmp_path).exit_code == 0
    record = json.loads((tmp_path / "run.json").read_text())
    record["completeness"][-1].update(gap=None, not_finite=3)  # as such a run writes it
    (tmp_path / "run.json").write_text(json.dumps(record))
    result = run_cli("report", tmp_path, "-o", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text()
    assert "<th>inputs left out</th>" in html and "<td>—</td><td>3 not finite</td>" in html
    console = Console(width=120, record=True, file=io.StringIO())
    for table in sanity_tables(record):
        console.print(table)
    assert "not finite" in console.export_text()


def test_a_folder_data_set_is_read_as_the_model_reads_pictures(tmp_path):
    """Folders were read at 64 px with mean = std = 0.5: a timm model's maps were of other pixels than its own."""
    import numpy as np

    from attrib.data.images import load_image
    from attrib.errors import UsageError
    from attrib.jobs.sanity import sanity_inputs
    from attrib.models import load_model

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    model = load_model("timm:test_resnet", pretrained=False)
    inputs, names, errors = sanity_inputs(model, [], f"folder:{tmp_path}", None)
    assert inputs.shape == (2, 3, 160, 160) and errors == [] and names[0].endswith("test #0")
    pictures = [model.preprocess(load_image(str(p))) for p in sorted(tmp_path.glob("*/*.png"))]
    assert all(any(torch.equal(x, p) for p in pictures) for x in inputs)
    assert sanity_inputs(model, [], f"folder:{tmp_path}", 1, image_size=48)[0].shape == (1, 3, 48, 48)
    with pytest.raises(UsageError, match="^--image-size resizes the pictures of a --dataset; images are read at "):
        sanity_inputs(model, [str(tmp_path / "a")], None, None, image_size=48)


def test_the_report_of_a_model_of_flat_inputs_has_no_strip_of_maps(run_cli, tmp_path, capsys):
    """A model of 1-D inputs has no picture of its maps as layers are randomized; its report renders without
    one (it failed on the missing plot), and a report that cannot render is one line with the run kept."""
    result = run_cli("sanity", "-M", "sample:synthetic-standard", "-m", "gradient", "--tests", "randomization",
                     "--repeats", "1", "--out", tmp_path / "s", "--html", tmp_path / "s.html")
    assert result.exit_code == 0, result.output
    assert "randomization.png" in (tmp_path / "s" / "run.json").read_text() and \
        not (tmp_path / "s" / "randomized_maps.png").exists()
    assert "Model-parameter randomization" in (tmp_path / "s.html").read_text()
    record = json.loads((tmp_path / "s" / "run.json").read_text())
    del record["verdicts"]
    (tmp_path / "s" / "run.json").write_text(json.dumps(record))
    from attrib.cli.common import write_html
    from attrib.cli.ui import UI

    with pytest.raises(SystemExit) as stop:
        write_html(UI(), tmp_path / "s", str(tmp_path / "t.html"))
    assert stop.value.code == 1 and not (tmp_path / "t.html").exists()
    line = " ".join(capsys.readouterr().err.split())
    assert f"cannot write the report {tmp_path / 't.html'}: {tmp_path / 's'}/run.json is not a complete sanity " \
        "record" in line and "Traceback" not in line


def test_versus_checks_each_models_contrast_with_its_runner_up(run_cli, tmp_path):
    """`--versus runner-up`: the record and the report say so; the maps checked are contrasts, so the numbers
    differ from the plain check's (the test in tests/evaluate/test_sanity.py checks the maps themselves)."""
    runs = {}
    for name, extra in (("plain", []), ("contrast", ["--versus", "runner-up"])):
        result = run_cli("sanity", *SAMPLE, "-m", "gradient", "--tests", "randomization,completeness", "--max-layers",
                         "2", "--repeats", "1", "--out", tmp_path / name, "--json", "--html", tmp_path / f"{name}.html",
                         *extra)
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((tmp_path / name / "run.json").read_text())
    assert "each model's predicted class is explained against its runner-up" in " ".join(result.output.split())
    assert runs["contrast"]["versus"] == "runner-up" and runs["plain"]["versus"] is None
    similarity = {k: [r["spearman_signed"] for r in run["randomization"]] for k, run in runs.items()}
    gaps = {k: [r["gap"] for r in run["completeness"]] for k, run in runs.items()}
    assert similarity["plain"] != similarity["contrast"] and gaps["plain"] != gaps["contrast"]
    html = (tmp_path / "contrast.html").read_text()
    assert "each model's predicted class against its runner-up" in html and "two classes' logits" in html
    assert "<td>contrast</td>" not in (tmp_path / "plain.html").read_text()


def test_your_own_model_on_a_data_set_of_tensors_is_not_warned_about_pictures(run_cli, tmp_path, monkeypatch):
    """How a model from code reads pictures is assumed and warned of where pictures are read (images given, or
    the built-in ones); a data set of tensors reads none, so nothing is said."""
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "small.py").write_text("from torch import nn\n\ndef small():\n    return nn.Sequential(nn.Conv2d(1, 2, "
                                       "3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 10))\n")
    spec = f"{tmp_path / 'small.py'}:small"
    tensors = run_cli("sanity", "-M", spec, "--dataset", "blockdigits", "--n", "2", "-m", "gradient",
                      "--tests", "completeness", "--out", tmp_path / "a")
    assert tensors.exit_code == 0, tensors.output
    assert "reads pictures" not in tensors.output
    assert json.loads((tmp_path / "a" / "run.json").read_text())["warnings"] == []
    pictures = run_cli("sanity", "-M", spec, "--n", "2", "-m", "gradient", "--tests", "completeness",
                       "--out", tmp_path / "b", "--html", tmp_path / "b.html", "--json")
    assert pictures.exit_code == 0 and "small says nothing of how it reads pictures" in pictures.output
    kept = json.loads((tmp_path / "b" / "run.json").read_text())["warnings"]  # and the report says it
    assert len(kept) == 1 and "small says nothing of how it reads pictures" in (tmp_path / "b.html").read_text()
    assert parse_json(pictures)["warnings"] == kept


def test_a_rerun_stopped_while_drawing_leaves_no_earlier_record_beside_its_plots(run_cli, images, tmp_path,
                                                                                 monkeypatch):
    # a run into the folder, then another with other methods, stopped after its first plot is written
    args = [images, *TINY, "--tests", "randomization,robustness", "--max-layers", "2", "--repeats", "1", "--radii",
            "0.5", "--out", tmp_path / "run"]
    assert run_cli("sanity", *args, "-m", "gradient").exit_code == 0
    from attrib.render import plots

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "robustness_plot", stopped)
    assert run_cli("sanity", *args, "-m", "gradient", "-m", "gxi").exit_code != 0
    assert (tmp_path / "run" / "randomization.png").is_file()  # this run's, drawn before the stop
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    # this run's record, naming no plot yet; the first run's record would stand beside this run's randomization plot
    assert [m["method"] for m in record["methods"]] == ["gradient", "gradient_x_input"] and record["plots"] == {}
    assert run_cli("report", tmp_path / "run", "-o", tmp_path / "r.html").exit_code == 0  # its numbers, no plot
    assert "data:image/png" not in (tmp_path / "r.html").read_text()
    monkeypatch.undo()
    assert run_cli("sanity", *args, "-m", "gradient", "-m", "gxi").exit_code == 0
    assert set(json.loads((tmp_path / "run" / "run.json").read_text())["plots"]) == {"randomization", "strip",
                                                                                    "robustness"}


def test_an_unwritable_run_folder_is_one_line_that_promises_no_resume(run_cli, images, tmp_path, monkeypatch):
    from attrib.runs import RunStore

    def refuse(self, record):
        raise PermissionError(13, "Permission denied", str(self.root / "run.json"))

    monkeypatch.setattr(RunStore, "write_record", refuse)
    result = run_cli("sanity", images, *TINY, "-m", "gradient", "--tests", "completeness", "--out", tmp_path / "o")
    said = " ".join(result.output.split())  # a sanity run keeps nothing a rerun goes on from
    assert result.exit_code == 1 and said.endswith(
        f"cannot write the run folder: Permission denied: {tmp_path / 'o' / 'run.json'}")


def test_the_report_says_which_method_completeness_was_checked_with(run_cli, tmp_path):
    """-m gradient --tests completeness checks IG in its place, as the terminal says; the report showed IG's rows
    under a methods row of gradient alone, and perturbation radii of a robustness test it did not run."""
    result = run_cli("sanity", *SAMPLE, "-m", "gradient", "--tests", "completeness", "--out", tmp_path / "run",
                     "--html", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text()
    assert "; completeness of integrated_gradients (no method asked for has a completeness gap)" in html
    assert "perturbation radii" not in html
