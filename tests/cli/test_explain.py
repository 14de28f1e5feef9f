"""`attrib explain` end to end through click's CliRunner (offline, small models)."""

import hashlib
import json
import os
import shutil
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import attrib
from tests.cli.conftest import FAST, TINY, parse_json


def test_help_does_not_import_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom attrib.cli import main\n"
            "for args in (['--help'], ['explain', '--help'], ['report', '--help'], ['sanity-text', '--help']):\n"
            "    r = CliRunner().invoke(main, args)\n    assert r.exit_code == 0, r.output\n"
            "    assert 'Examples' in r.output\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_default_run_explains_the_samples(run_cli, tmp_path):
    out = tmp_path / "run"
    result = run_cli("explain", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert [i["path"] for i in data["inputs"]] == ["sample:chelsea", "sample:coffee", "sample:rocket",
                                                   "sample:astronaut"]
    chelsea = data["inputs"][0]
    assert chelsea["status"] == "ok" and chelsea["error"] is None
    assert chelsea["predictions"][0]["index"] in (281, 282, 285) and "cat" in chelsea["predictions"][0]["label"]
    assert len(chelsea["predictions"]) == 5 and abs(sum(p["prob"] for p in chelsea["predictions"]) - 1) < 0.1
    (ig,) = chelsea["attributions"]
    assert ig["method"] == "integrated_gradients" and ig["target"] == chelsea["predictions"][0]["index"]
    for entry in data["inputs"]:  # the default rule meets its own targets on every sample: no warning
        (run,) = entry["attributions"]
        assert run["converged"] and 0 <= run["completeness_gap"] <= 0.01 and run["passes"] < 256
        assert 0 < run["map_error"] < 0.05
    assert "warning:" not in result.output.lower()
    for key in ("overlay", "heatmap"):
        with Image.open(ig[key]) as image:
            assert image.size == (224, 224)
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["name"].startswith("default") and record["seed"] == 0
    config = record["methods"][0]["config"]
    assert (config["rule"], config["n_steps"], config["tol"]) == ("adaptive", 256, 0.01) and "torch" in record["versions"]
    assert attrib.load_run(out).arrays[("chelsea", "integrated_gradients")].shape == (3, 224, 224)


def test_resume_redoes_an_input_changed_on_disk_and_only_it(run_cli, images, tmp_path):
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(images / "im0.png", "x/a.png")
    out = tmp_path / "o"
    command = ("explain", images, archive, *TINY, "-m", "gradient", "--out", out)
    assert "3 explained" in run_cli(*command).output
    record = {e["name"]: e for e in attrib.load_run(out).record["inputs"]}
    os.utime(images / "im0.png")  # touched: the same bytes
    assert "3 already done" in run_cli(*command).output
    Image.new("RGB", (90, 70), (30, 30, 200)).save(images / "im1.png")  # overwritten in place
    again = run_cli(*command, "--json")
    assert "1 explained, 2 already done" in again.output and "1 input changed on disk" in again.output
    name = str(images / "im1.png")
    redone = {e["name"]: e for e in attrib.load_run(out).record["inputs"]}[name]
    assert redone["id"] == record[name]["id"] and redone["fingerprint"] != record[name]["fingerprint"]
    assert redone["predictions"] != record[name]["predictions"]
    with zipfile.ZipFile(archive, "w") as z:  # the archive's image replaced
        z.write(images / "im1.png", "x/a.png")
    assert "1 explained, 2 already done" in run_cli(*command).output
    one = parse_json(run_cli("explain", images / "im1.png", *TINY, "-m", "gradient", "--out", out, "--json"))
    assert [i["path"] for i in one["inputs"]] == [name] and one["summary"]["inputs"] == 1  # this run's, not 3
    lines = [json.loads(line) for line in (out / "inputs.jsonl").read_text().splitlines()]
    (out / "inputs.jsonl").write_text("".join(json.dumps({k: v for k, v in e.items() if k != "fingerprint"}) + "\n"
                                              for e in lines))  # as attrib 0.1 kept them: taken as they are
    assert "3 already done" in run_cli(*command).output
    (images / "im1.png").write_bytes(b"not a picture")  # changed again, to something that cannot be read
    failed = run_cli(*command, "--force")
    assert failed.exit_code == 1 and "1 failed" in failed.output
    assert sorted(attrib.load_run(out).arrays) == [("a.png", "gradient"), ("im0.png", "gradient")]
    assert not (out / "images" / "im1.png").exists()  # its maps were of the picture it no longer is


def test_json_paths_are_absolute_for_a_relative_out(run_cli, images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = parse_json(run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--out", "rel", "--json"))
    overlay = data["inputs"][0]["attributions"][0]["overlay"]
    assert data["out_dir"] == str(tmp_path / "rel") and overlay.startswith(str(tmp_path / "rel"))
    assert Path(overlay).is_file()


def test_json_schema_and_options(run_cli, images, tmp_path):
    result = run_cli("explain", images, *FAST, "-m", "ig", "-m", "sg", "-m", "gradient", "--target", "7",
                     "--top-k", "3", "--set", "sg.noise_frac=0.2", "--set", "n_samples=4", "--out", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert set(data) >= {"inputs", "out_dir", "model", "methods", "seed"}
    for entry in data["inputs"]:
        assert set(entry) == {"path", "status", "error", "given", "predictions", "attributions"} and entry["given"] == 7
        assert len(entry["predictions"]) == 3 and set(entry["predictions"][0]) == {"index", "label", "prob"}
        assert [a["method"] for a in entry["attributions"]] == ["integrated_gradients", "smoothgrad", "gradient"]
        for a in entry["attributions"]:
            assert set(a) == {"method", "target", "target_label", "versus", "versus_label", "completeness_gap",
                              "gap_stderr", "seconds", "passes", "converged", "map_error", "warning", "overlay",
                              "heatmap"} and a["target"] == 7 and a["versus"] is None
        ig, sg, _ = entry["attributions"]  # IG's budget of 4 steps cannot meet its targets; the terminal said so
        assert ig["warning"].startswith("the adaptive rule spent its budget of 4 steps") and sg["warning"] is None
        assert ig["warning"].endswith("raise n_steps (--set integrated_gradients.n_steps=N) for a more faithful map")
    configs = {m["method"]: m["config"] for m in data["methods"]}
    assert configs["smoothgrad"]["noise_frac"] == 0.2 and configs["integrated_gradients"]["n_steps"] == 4


def test_target_by_label_name(run_cli, images, tmp_path):
    result = run_cli("explain", images / "im0.png", *FAST, "--target", "Tabby Cat", "--out", tmp_path / "o",
                     "--json")
    assert result.exit_code == 0, result.output
    assert parse_json(result)["inputs"][0]["attributions"][0]["target"] == 281


def test_target_folder_explains_each_image_as_its_folder_names(run_cli, tmp_path):
    """ImageFolder layouts (ImageNet's val/n02123045/...) name each image's class by its folder; there was no way
    to explain the true class of each image, only the predicted one or one class for all."""
    for folder, colour in (("n02123045", (200, 30, 30)), ("7", (20, 180, 40)), ("Tiger Cat", (9, 9, 9)),
                           ("xqzv", (90, 90, 90)), ("n02085620-Chihuahua", (1, 2, 3)), ("n99999999-x", (4, 5, 6))):
        (tmp_path / "val" / folder).mkdir(parents=True)
        Image.new("RGB", (90, 70), colour).save(tmp_path / "val" / folder / "a.png")
    (tmp_path / "val" / "n02123045" / "link.png").symlink_to(tmp_path / "val" / "7" / "a.png")  # its own folder
    result = run_cli("explain", tmp_path / "val", *TINY, "-m", "gradient", "-m", "ig", "--set", "n_steps=4",
                     "--target", "folder", "--out", tmp_path / "o", "--json")
    assert result.exit_code == 1
    inputs = {Path(i["path"]).parent.name: i for i in parse_json(result)["inputs"] if "link" not in i["path"]}
    (link,) = [i for i in parse_json(result)["inputs"] if "link" in i["path"]]
    assert [a["target"] for a in link["attributions"]] == [281, 281]
    for folder, index in (("n02123045", 281), ("7", 7), ("Tiger Cat", 282), ("n02085620-Chihuahua", 151)):
        assert [a["target"] for a in inputs[folder]["attributions"]] == [index, index], folder  # Stanford Dogs'
    assert inputs["n99999999-x"]["error"].endswith("its folder 'n99999999-x' names no class of the model (--target "
                                                   "folder): unknown target label 'n99999999-x' (use pred, a class "
                                                   "index or a label name)")
    assert inputs["xqzv"]["error"].endswith("a.png: its folder 'xqzv' names no class of the model (--target "
                                            "folder): unknown target label 'xqzv' (use pred, a class index or "
                                            "a label name)")
    assert json.loads((tmp_path / "o" / "run.json").read_text())["target"] == "folder"
    assert "--target folder gives no class to 2 of 7 inputs: they fail alone" in " ".join(result.stderr.split())
    samples = run_cli("explain", *TINY, "-m", "gradient", "--target", "folder", "--out", tmp_path / "s", "--json")
    assert samples.exit_code == 2 and not (tmp_path / "s").exists()  # not one input would get a class
    assert "--target folder gives no input a class; the first: sample:chelsea: not a file in a folder, so no folder " \
        "names its class (--target folder)" in " ".join(samples.output.split())


def test_target_table_explains_each_image_as_a_file_names_it(run_cli, tmp_path):
    """ImageNet's validation set ships flat, its classes in a table (Kaggle's LOC_val_solution.csv): only the
    predicted class or one class for all could be explained. An edited table redoes the inputs it changed."""
    (tmp_path / "val").mkdir()
    for i, colour in enumerate([(200, 30, 30), (20, 180, 40), (9, 9, 9)]):
        Image.new("RGB", (90, 70), colour).save(tmp_path / "val" / f"ILSVRC2012_val_0000000{i}.JPEG")
    table = tmp_path / "val" / "LOC_val_solution.csv"
    table.write_text("ImageId,PredictionString\nILSVRC2012_val_00000000,n02123045 1 2 3 4\n"
                     "ILSVRC2012_val_00000001,7\n")
    command = ["explain", tmp_path / "val", *TINY, "-m", "gradient", "--target", table, "--out", tmp_path / "o",
               "--json"]
    result = run_cli(*command)
    inputs = parse_json(result)["inputs"]
    assert result.exit_code == 1 and [[a["target"] for a in i["attributions"]] for i in inputs] == [[281], [7], []]
    assert inputs[2]["error"] == f"{tmp_path}/val/ILSVRC2012_val_00000002.JPEG: --target {table} gives it no class"
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["target"] == "table" and record["target_table"]["file"] == str(table)
    table.write_text(table.read_text().replace(",7\n", ",8\nILSVRC2012_val_00000002,tiger cat\n"))
    again = parse_json(run_cli(*command))
    assert [[a["target"] for a in i["attributions"]] for i in again["inputs"]] == [[281], [8], [282]]
    assert again["summary"]["skipped"] == 1 and again["summary"]["done"] == 2  # the first one's class is the same
    hits = sum(i["predictions"][0]["index"] == i["attributions"][0]["target"] for i in again["inputs"])
    assert again["summary"]["top1"] == {"correct": hits, "of": 3, "accuracy": round(hits / 3, 4)}  # skipped too
    assert run_cli("report", tmp_path / "o", "-o", tmp_path / "r.html").exit_code == 0
    assert f"table: {table} (sha256 " in (tmp_path / "r.html").read_text()
    assert f"<td>{100 * hits / 3:.1f}% of 3 inputs against their true classes</td>" in (tmp_path / "r.html").read_text()
    misses = [i for i in again["inputs"] if i["predictions"][0]["index"] != i["attributions"][0]["target"]]
    assert (tmp_path / "r.html").read_text().count("), not the top prediction</span>") == len(misses) > 0
    (tmp_path / "stems.csv").write_text("ILSVRC2012_val_9,3\n")  # rows keyed otherwise than the inputs
    keyed = run_cli("explain", tmp_path / "val", *TINY, "--target", tmp_path / "stems.csv", "--out", tmp_path / "k")
    assert keyed.exit_code == 2 and not (tmp_path / "k").exists()
    assert f"--target {tmp_path / 'stems.csv'} gives no input a class (its rows name images as 'ILSVRC2012_val_9'); " \
        f"the first: {tmp_path}/val/ILSVRC2012_val_00000000.JPEG: --target" in " ".join(keyed.output.split())
    missing = run_cli("explain", *TINY, "--target", tmp_path / "none.csv", "--out", tmp_path / "n")
    assert missing.exit_code == 2 and "cannot read the table of classes (No such file" in missing.output


@pytest.mark.parametrize("args,message", [
    (["-m", "integrated_gradient"], "unknown method 'integrated_gradient'; valid methods: gradient"),
    (["--target", "tabby kat"], "unknown target label 'tabby kat'; did you mean 'tabby cat'"),
    (["--target", "1000"], "target 1000 is out of range: the model has 1000 classes"),
    (["--set", "n_stepz=3"], "unknown option 'n_stepz'"),
    (["--set", "n_steps=many"], "option integrated_gradients.n_steps expects an integer, got 'many'"),
    (["-m", "ig", "-m", "mg", "--set", "mg.antithetic=maybe"],
     "option moreaugrad.antithetic expects true or false, got 'maybe'"),
    (["--set", "tol=1%"], "option integrated_gradients.tol expects a number, got '1%'"),
    (["--set", "nonsense"], "--set expects KEY=VALUE"),
    (["--device", "cuda:0"], "CUDA is not available"),
    (["--device", "tpu"], "unknown device 'tpu'; use auto, cpu, cuda, cuda:N or mps"),
    (["--device", "mps"], "device 'mps' requested but MPS is not available here"),
    (["-M", "timm:not_a_model"], "unknown timm model 'not_a_model'"),
    (["-M", "banana"], "unknown model spec 'banana'"),
    (["--view", "mask", "--magnitude"], "--magnitude is --view magnitude: it contradicts --view mask"),  # was: silent
    (["--no-images", "--view", "signed"], "--no-images draws no pictures: --view and --magnitude have nothing"),
    (["--executor", "ray", "--device", "cuda"], "the workers' device follows --gpus-per-worker (cpu here), not"),
])
def test_usage_errors_exit_2_with_one_line(run_cli, images, tmp_path, args, message):
    torch = __import__("torch")
    if ("cuda:0" in args and torch.cuda.is_available()) or ("mps" in args and torch.backends.mps.is_available()):
        pytest.skip("the device is available here")
    base = [a for a in FAST if a not in ("-M", "timm:test_resnet")] if "-M" in args else FAST
    result = run_cli("explain", images, *base, *args, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name, value", [("ATTRIB_CHANNELS_LAST", "yes"), ("ATTRIB_GPU_MEMORY_FRACTION", "2")])
def test_a_bad_engine_setting_is_refused_before_the_run_folder_is_made(run_cli, images, tmp_path, monkeypatch, name,
                                                                       value):
    """ATTRIB_CHANNELS_LAST=yes was ignored without a word; refused when the engine was built, it left OUT/run.json."""
    monkeypatch.setenv(name, value)
    result = run_cli("explain", images, *FAST, "--out", tmp_path / "o")
    assert result.exit_code == 2 and f"Error: {name}={value}: " in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_black_baseline_is_the_black_picture_as_the_model_reads_it(run_cli, images, tmp_path):
    """The official IG code's black baseline: "zero" is the normalisation's mean colour (grey for mean 0.5), so a
    black one had to be made by hand as a tensor, which the command line cannot take."""
    import torch

    from attrib.models import load_model

    ig = ["-m", "ig", "--set", "rule=gausslegendre", "--set", "n_steps=8"]
    result = run_cli("explain", images / "im0.png", *TINY, *ig, "--set", "baseline=black", "--out", tmp_path / "o",
                     "--json")
    assert result.exit_code == 0, result.output
    run = attrib.load_run(tmp_path / "o")
    assert run.record["methods"][0]["config"]["baseline"] == "black"  # as given, in the record
    model = load_model("timm:test_resnet", pretrained=False)
    black = model.preprocess.solid(0.0)
    assert np.asarray(model.preprocess.picture(black.expand(3, 4, 4))).max() == 0  # the picture it is: black
    with Image.open(images / "im0.png") as picture:
        x = model.preprocess(picture)[None]
    entry = run.record["inputs"][0]
    expected = attrib.attribute(model.module, x, "ig", target=entry["attributions"][0]["target"], input_keys=[0],
                                baseline=black, rule="gausslegendre", n_steps=8)
    assert np.allclose(run.arrays[(entry["id"], "integrated_gradients")], expected.values.numpy(), atol=1e-6)
    assert not torch.allclose(black, torch.zeros(3, 1, 1))  # (not the zero baseline)
    diffroar = ["diffroar", "--k", "0.5", "--n-train", "50", "--n-test", "50", "--epochs", "1"]
    for command in (["sanity", "--dataset", "synthetic", "--tests", "completeness"], diffroar):
        tensors = run_cli(*command, "-M", "sample:synthetic-robust", "-m", "ig", "--set", "baseline=white",
                          "--out", tmp_path / command[0])
        assert tensors.exit_code == 2 and "integrated_gradients: the white baseline is a picture's colour, and " \
            "sample:synthetic-robust reads no pictures; use baseline=zero" in " ".join(tensors.output.split())
    with pytest.raises(ValueError, match=r"the black baseline is a picture as the model reads it, which depends "):
        attrib.attribute(model.module, x, "ig", baseline="black")  # model inputs: the tensor is the user's to give


def test_an_all_zero_sparse_map_says_which_penalty_to_lower(run_cli, images, tmp_path):
    """Sparse MoreauGrad on a random-weight model thresholds every entry away: the warning said only 'all zero'."""
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "mg_sparse", "-m", "gradient", "--set", "n_iter=2",
                     "--set", "n_samples=2", "--out", tmp_path / "o")
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "im0.png / moreaugrad_sparse: attribution map is all zero: its penalty " \
        "eta=0.005 thresholded every entry away (small gradients, as a random-weight model's, do that): a smaller " \
        "eta (--set moreaugrad_sparse.eta=0.0005) keeps the strongest" in said
    assert "gradient: attribution map" not in said  # its map is not blank


def test_malformed_weights_exit_2(run_cli, images, tmp_path):
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"\x00\x01 not a checkpoint")
    result = run_cli("explain", images, "-M", "timm:test_resnet", "--weights", bad, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "cannot read weights" in result.output and "Traceback" not in result.output


def test_bad_inputs_are_reported_and_the_rest_runs(run_cli, images, tmp_path, monkeypatch):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notimage.jpg").write_text("hello")
    good = images / "im0.png"
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:70])
    big = tmp_path / "big.png"
    Image.new("RGB", (400, 400)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    (tmp_path / "link.png").symlink_to("gone.png")
    bad = [tmp_path / "missing.png", tmp_path / "empty.png", tmp_path / "notimage.jpg", tmp_path / "cut.png", big,
           tmp_path / "link.png"]
    result = run_cli("explain", good, *bad, images / "im1.png", *FAST, "--out", tmp_path / "o", "--json")
    assert result.exit_code == 1
    data = parse_json(result)
    status = {e["path"]: (e["status"], e["error"]) for e in data["inputs"]}
    assert status[str(good)][0] == "ok" and status[str(images / "im1.png")][0] == "ok"
    reasons = ["file not found", "empty file", "not an image", "truncated or corrupt", "decompression bomb",
               "a link to gone.png, which does not exist"]
    for path, reason in zip(bad, reasons):
        assert status[str(path)][0] == "error" and reason in status[str(path)][1]
        assert str(path) in status[str(path)][1]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad) and "Traceback" not in result.output


def test_a_pipe_named_as_an_image_is_refused_unread(run_cli, images, tmp_path):
    """A named pipe (mkfifo) was opened to take its fingerprint: the run waited for a writer forever."""
    import threading
    import time

    pipe = tmp_path / "pipe.jpg"
    os.mkfifo(pipe)
    opened, done = [], threading.Event()

    def unblock() -> None:  # a reader waiting on the pipe lets a writer in: let it through, and count it
        while not done.is_set():
            try:
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
                opened.append(1)
            except OSError:  # ENXIO: nobody is reading
                time.sleep(0.01)

    writer = threading.Thread(target=unblock, daemon=True)
    writer.start()
    try:
        result = run_cli("explain", pipe, images / "im0.png", "-M", "timm:test_resnet", "--no-pretrained", "-m",
                         "gradient", "--out", tmp_path / "o")
    finally:
        done.set()
        writer.join()
    assert result.exit_code == 1 and f"error: {pipe}: not a regular file" in result.stderr
    assert "1 explained, 1 failed" in result.stderr and not opened


def test_the_summary_names_only_what_the_run_folder_holds(run_cli, images, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    failed = run_cli("explain", tmp_path / "empty.png", *FAST, "--out", tmp_path / "a")
    assert failed.exit_code == 1 and not (tmp_path / "a" / "arrays").exists()
    assert f"wrote {tmp_path / 'a'}/run.json and inputs.jsonl" in " ".join(failed.stderr.split())
    done = run_cli("explain", images / "im0.png", *FAST, "--out", tmp_path / "b", "--no-images")
    assert done.exit_code == 0 and "inputs.jsonl and arrays/" in " ".join(done.stderr.split())


def test_resume_skips_done_inputs_and_force_redoes(run_cli, images, tmp_path):
    out = tmp_path / "o"
    first = run_cli("explain", images, *FAST, "--out", out)
    assert first.exit_code == 0
    png = out / "images" / "im0.png" / "integrated_gradients_overlay.png"
    stamp = png.stat().st_mtime_ns
    again = run_cli("explain", images, *FAST, "--out", out, "-v")
    assert again.exit_code == 0 and "already done" in again.output and png.stat().st_mtime_ns == stamp
    more = run_cli("explain", images, *FAST, "-m", "ig", "-m", "gradient", "--out", out, "--json")
    assert png.stat().st_mtime_ns != stamp  # a new method means the input is not done
    assert [a["method"] for a in parse_json(more)["inputs"][0]["attributions"]] == ["integrated_gradients",
                                                                                    "gradient"]
    fewer = run_cli("explain", images, *TINY, "-m", "gradient", "--out", out, "--json")  # done: reports gradient
    assert "already done" in fewer.stderr and "integrated_gradients" not in fewer.stderr  # (its table said so)
    assert [[a["method"] for a in e["attributions"]] for e in parse_json(fewer)["inputs"]] == [["gradient"]] * 2
    stamp = png.stat().st_mtime_ns
    forced = run_cli("explain", images, *FAST, "-m", "ig", "-m", "gradient", "--out", out, "--force")
    assert forced.exit_code == 0 and png.stat().st_mtime_ns != stamp and "held a run" not in forced.output
    assert not [p for p in out.rglob("*.tmp")]
    abandoned = out / "images" / "im0.png" / ".gradient_overlay.png.k3j4.tmp"  # a killed run's unfinished write
    abandoned.write_bytes(b"\x89PNG")
    other = run_cli("explain", images, *FAST, "--seed", "3", "--out", out)  # other settings: starts over, said
    assert other.exit_code == 0 and "held a run with other settings (seed); starting it over" in \
        " ".join(other.output.split())
    assert not abandoned.exists()


def test_a_rerun_draws_the_pictures_its_view_asks_for(run_cli, images, tmp_path):
    out, args = tmp_path / "o", (images / "im0.png", *TINY, "-m", "gradient", "--out", tmp_path / "o")
    assert run_cli("explain", *args, "--no-images").exit_code == 0 and not (out / "images").exists()
    sheet = run_cli("report", out, "--png", tmp_path / "sheet.png")  # what draws the pictures is said
    assert sheet.exit_code == 2 and "(made with --no-images: the same explain command without it, into this " \
        "folder, draws them from the maps)" in " ".join(sheet.output.split())
    assert run_cli("report", out, "-o", tmp_path / "r0.html").exit_code == 0
    assert "without <code>--no-images</code>, into this folder, draws them" in (tmp_path / "r0.html").read_text()
    drawn = run_cli("explain", *args)  # done without pictures: drawn from its maps and the input decoded again
    said = " ".join(drawn.output.split())  # (it was explained again: hours for a large --no-images run)
    assert "1 already done" in said and "1 input done earlier here drawn again in --view blend" in said
    assert [e["drawn_as"] for e in attrib.load_run(out)[0]["inputs"]] == ["blend"]
    blend = tmp_path / "blend"  # the same pictures as a run drawing them at once
    assert run_cli("explain", *args[:-1], blend).exit_code == 0
    for name in ("input.png", "gradient_overlay.png", "gradient_heatmap.png"):
        assert (out / "images" / "im0.png" / name).read_bytes() == (blend / "images" / "im0.png" / name).read_bytes()
    entries = [attrib.load_run(run)[0]["inputs"][0] for run in (out, blend)]  # the same record, but for times
    for entry in entries:
        entry["attributions"] = [{k: v for k, v in a.items() if k != "seconds"} for a in entry["attributions"]]
    assert entries[0] == entries[1] and entries[0]["view"] == "images/im0.png/input.png"
    assert "1 already done" in run_cli("explain", *args).output
    redrawn = run_cli("explain", *args, "--view", "magnitude")  # drawn again from the arrays: no model pass
    said = " ".join(redrawn.output.split())
    assert "1 already done" in said and "1 input done earlier here drawn again in --view magnitude" in said
    record = attrib.load_run(out)[0]
    assert record["view"] == "magnitude" and [e["drawn_as"] for e in record["inputs"]] == ["magnitude"]
    fresh = tmp_path / "fresh"  # the same pictures as a run in that view draws
    assert run_cli("explain", *args[:-1], fresh, "--view", "magnitude").exit_code == 0
    for name in ("input.png", "gradient_overlay.png", "gradient_heatmap.png"):
        assert (out / "images" / "im0.png" / name).read_bytes() == (fresh / "images" / "im0.png" / name).read_bytes()
    summaries = [{k: v for k, v in attrib.load_run(run)[0]["inputs"][0]["attributions"][0].items() if k != "seconds"}
                 for run in (out, fresh)]
    assert summaries[0] == summaries[1] and summaries[0]["signed"] is False  # its scale and sign as drawn
    lines = (out / "inputs.jsonl").read_text().splitlines()  # as attrib wrote it before it said drawn_as
    (out / "inputs.jsonl").write_text("".join(json.dumps({k: v for k, v in json.loads(line).items()
                                                          if k != "drawn_as"}) + "\n" for line in lines))
    assert "1 already done" in run_cli("explain", *args, "--view", "magnitude").output  # the record's view
    both = (images / "im0.png", *TINY, "-m", "gradient", "-m", "gxi", "--out", out)
    assert run_cli("explain", *both, "--view", "magnitude").exit_code == 0
    one = run_cli("explain", *args, "--view", "negative")  # gxi's maps would stay in another view: explained again
    assert "1 input done earlier here cannot be drawn in --view negative from what the folder holds (maps of other " \
        "methods too" in " ".join(one.output.split())
    assert run_cli("explain", images / "im1.png", *TINY, "-m", "gradient", "--out", out).exit_code == 0  # blend
    assert run_cli("report", out, "-o", tmp_path / "r.html").exit_code == 0
    html = (tmp_path / "r.html").read_text()  # the report says which pictures another view drew
    assert html.count("overlays drawn in --view") == 1 and "overlays drawn in --view negative" in html


def test_a_damaged_map_file_is_explained_again_not_drawn(run_cli, images, tmp_path):
    """A --no-images run's maps file cut short (a damaged disk): drawing its pictures later stopped the whole run
    with "unexpected BadZipFile"; load_run's arrays raised it too. That input is now explained again, the others
    drawn from their maps, and load_run names the file."""
    out = tmp_path / "o"
    args = (images, *TINY, "-m", "gradient", "--out", out)
    assert run_cli("explain", *args, "--no-images").exit_code == 0
    damaged = out / "arrays" / "im0.png.npz"
    damaged.write_bytes(damaged.read_bytes()[:40])
    with pytest.raises(attrib.RunError, match=rf"^{damaged}: its maps cannot be read \(File is not a zip file\)$"):
        attrib.load_run(out).arrays[("im0.png", "gradient")]
    drawn = run_cli("explain", *args)
    said = " ".join(drawn.output.split())
    assert drawn.exit_code == 0 and "1 explained, 1 already done" in said, said
    assert "1 input done earlier here drawn again in --view blend" in said and "1 input done earlier here cannot " \
        "be drawn in --view blend from what the folder holds (maps of other methods too, or files gone or " \
        "damaged)" in said
    assert attrib.load_run(out).arrays[("im0.png", "gradient")].shape == (3, 160, 160)  # made again


def test_inputs_drawn_again_by_worker_threads_come_out_as_a_fresh_run_draws_them(run_cli, images, tmp_path):
    for i in range(2, 6):
        Image.new("RGB", (50 + 10 * i, 60), (30 * i, 200 - 30 * i, 90)).save(images / f"im{i}.png")
    out, fresh = tmp_path / "o", tmp_path / "fresh"
    args = (images, *TINY, "-m", "gradient", "--workers", "3")
    assert run_cli("explain", *args, "--out", out).exit_code == 0
    result = run_cli("explain", *args, "--out", out, "--view", "mask", "--json")
    assert result.exit_code == 0 and "6 inputs done earlier here drawn again in --view mask" in \
        " ".join(result.stderr.split())
    assert [Path(e["path"]).name for e in parse_json(result)["inputs"]] == [f"im{i}.png" for i in range(6)]
    assert parse_json(result)["summary"]["seconds"] > 0  # the drawing counts
    assert run_cli("explain", *args, "--out", fresh, "--view", "mask").exit_code == 0
    for i in range(6):
        for name in ("gradient_overlay.png", "gradient_heatmap.png"):
            assert (out / f"images/im{i}.png" / name).read_bytes() == (fresh / f"images/im{i}.png" / name).read_bytes()


def test_a_rerun_shows_the_predictions_its_top_k_asks_for(run_cli, images, tmp_path):
    out = tmp_path / "o"
    args = (images / "im0.png", *TINY, "-m", "gradient", "--no-images", "--out", out)

    def shown(*more: str) -> tuple[str, list[int]]:
        result = run_cli("explain", *args, *more, "--json")
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split()), [len(e["predictions"]) for e in parse_json(result)["inputs"]]

    assert shown("--top-k", "2")[1] == [2]
    said, counts = shown("--top-k", "4")  # the outputs are not kept: more classes need the model again
    assert counts == [4] and "1 input done earlier here with fewer predictions than --top-k 4: explaining it" in said
    said, counts = shown("--top-k", "3")  # fewer: the earlier ones, cut
    assert counts == [3] and "1 already done" in said
    assert [len(e["predictions"]) for e in attrib.load_run(out)[0]["inputs"]] == [3]  # the report shows as many
    assert "1 already done" in shown("--top-k", "3")[0]


def test_an_input_explained_again_keeps_only_the_files_its_record_names(run_cli, images, tmp_path):
    out = tmp_path / "o"
    args = (images / "im0.png", *TINY, "--target", "3", "--out", out)

    def files() -> list[str]:
        return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.suffix in (".png", ".npz")
                      and p.name != "overview.png")

    assert run_cli("explain", *args, "-m", "gradient").exit_code == 0
    (out / "images" / "im0.png" / "mine.png").write_bytes(b"mine")  # not attrib's: stays
    other = run_cli("explain", *args, "-m", "gxi")  # explained again with another method: said
    assert other.exit_code == 0 and "warning: 1 input done earlier here with gradient is explained again with " \
        "gradient_x_input: its gradient maps are replaced (add -m gradient to make them again, or use another " \
        "--out to keep them)" in " ".join(other.output.split())
    assert files() == ["arrays/im0.png.npz", "images/im0.png/gradient_x_input_heatmap.png",
                       "images/im0.png/gradient_x_input_overlay.png", "images/im0.png/input.png",
                       "images/im0.png/mine.png"]
    assert sorted(attrib.load_run(out).arrays) == [("im0.png", "gradient_x_input")]
    predicted = attrib.load_run(out)[0]["inputs"][0]["predictions"][0]["index"]
    only = "wrong" if predicted == 3 else "right"  # left out now: its maps go with the maps it no longer has
    result = run_cli("explain", *args, "-m", "gxi", "--only", only)
    assert result.exit_code == 0 and attrib.load_run(out)[0]["inputs"][0]["status"] == "excluded"
    assert files() == ["images/im0.png/mine.png"] and not attrib.load_run(out).arrays


def test_the_report_shows_the_maps_an_earlier_run_made_with_other_methods(run_cli, images, tmp_path):
    out = tmp_path / "o"
    assert run_cli("explain", images / "im0.png", images / "im1.png", *TINY, "-m", "gradient", "--out", out) \
        .exit_code == 0
    assert run_cli("explain", images / "im0.png", *TINY, "-m", "gxi", "--out", out).exit_code == 0
    assert run_cli("report", out, "-o", tmp_path / "r.html").exit_code == 0
    html = (tmp_path / "r.html").read_text()
    assert re.findall(r"<th>(\w+)</th>", html.split('class="grid"')[1])[1:] == ["gradient_x_input", "gradient"]
    assert html.count("maps an earlier run into this folder made") == 1  # gradient's row: no options to show
    shown = re.findall(r'alt="(\w+) overlay for [^"]*(im\d).png"', html)
    assert shown == [("gradient_x_input", "im0"), ("gradient", "im1")]  # im0's earlier gradient maps: replaced
    from attrib.render.contact import CELL

    with Image.open(out / "overview.png") as sheet:  # the contact sheet too: input, gxi, gradient (earlier run)
        assert sheet.width == 3 * CELL


def test_maps_an_earlier_run_made_keep_their_options_on_record(run_cli, images, tmp_path):
    out = tmp_path / "o"

    def explain(image: str, *method: str) -> str:
        result = run_cli("explain", images / image, *TINY, *method, "--out", out)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    ig4 = ("-m", "ig", "--set", "rule=gausslegendre", "--set", "n_steps=4")
    explain("im0.png", *ig4)
    explain("im1.png", "-m", "gradient")  # im0's IG maps stay: their options with them
    kept = attrib.load_run(out).record["earlier_methods"]
    assert [(row["method"], row["config"]["n_steps"]) for row in kept] == [("integrated_gradients", 4)]
    assert run_cli("report", out, "-o", tmp_path / "r.html").exit_code == 0
    html = (tmp_path / "r.html").read_text()
    assert "<code>n_steps=4</code>" in html and "its options are not in" not in html
    assert "1 already done" in explain("im0.png", *ig4)  # made as asked
    said = explain("im0.png", *ig4[:-1], "n_steps=8")  # not as asked: not taken for maps of 8 steps
    assert "starting it over" in said and "(integrated_gradients options)" in said and "1 explained" in said
    explain("im1.png", "-m", "gradient")
    record = json.loads((out / "run.json").read_text())
    del record["earlier_methods"]  # as attrib wrote a folder before it kept them: how they were made is unknown
    (out / "run.json").write_text(json.dumps(record))
    said = explain("im0.png", *ig4[:-1], "n_steps=8")
    assert "(integrated_gradients options (not recorded))" in said and "1 explained" in said


def test_options_of_maps_no_input_holds_any_longer_are_not_kept(run_cli, images, tmp_path):
    """im0 explained again without IG loses its IG maps, but run.json kept IG's options as those of maps the
    folder holds: a later IG run of other options into the folder then started it over, removing im0."""
    out = tmp_path / "o"

    def explain(image: str, *args: str) -> str:
        result = run_cli("explain", images / image, *TINY, *args, "--out", out)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    explain("im0.png", "-m", "ig", "--set", "n_steps=4", "-m", "gradient")
    assert "its integrated_gradients maps are replaced" in explain("im0.png", "-m", "gradient", "--top-k", "8")
    assert attrib.load_run(out).record["earlier_methods"] == []
    said = explain("im1.png", "-m", "ig", "--set", "n_steps=8")
    assert "starting it over" not in said
    assert [entry["path"].endswith("im0.png") for entry in attrib.load_run(out).record["inputs"]] == [True, False]


def test_a_run_started_over_keeps_no_map_of_the_earlier_one(run_cli, images, tmp_path):
    out = tmp_path / "o"
    (out / "arrays").mkdir(parents=True)
    np.savez(out / "arrays" / "data.npz", x=np.ones(3))  # the user's, in a folder that holds no run yet
    assert run_cli("explain", images, *FAST, "-m", "ig", "-m", "gradient", "--out", out).exit_code == 0
    assert (out / "arrays" / "data.npz").is_file()
    (out / "arrays" / "data.npz").unlink()
    mine = [out / "notes.txt", out / "images" / "im0.png" / "my_crop.png"]  # files attrib did not write stay
    for path in mine:
        path.write_text("mine")
    other = run_cli("explain", images / "im1.png", *TINY, "-m", "gradient", "--seed", "3", "--out", out)
    assert other.exit_code == 0 and "starting it over" in " ".join(other.output.split())
    record, arrays = attrib.load_run(out)
    assert [e["id"] for e in record["inputs"]] == ["im1.png"]
    assert sorted(arrays) == [("im1.png", "gradient")]  # not im0's maps of the earlier seed
    pictures = sorted(str(p.relative_to(out)) for p in (out / "images").rglob("*.png") if p.is_file())
    assert pictures == ["images/im0.png/my_crop.png", "images/im1.png/gradient_heatmap.png",
                        "images/im1.png/gradient_overlay.png", "images/im1.png/input.png"]
    assert all(path.read_text() == "mine" for path in mine) and (out / "overview.png").is_file()


def test_a_folder_without_a_run_keeps_the_users_files_or_is_refused(run_cli, images, tmp_path):
    """A user's overview.png in a folder holding no run was written over, and a run.json of another tool's was
    taken for an attrib 0.1 record and replaced."""
    for name, content, message in (("overview.png", b"my sheet", "holds overview.png, which this explain run would "
                                                                  "write over; write it to another folder (--out)"),
                                   ("inputs.jsonl", b"{}\n", "holds inputs.jsonl, which"),
                                   ("run.json", b'{"epochs": 3}', "run.json is not an attrib run record")):
        out = tmp_path / name
        out.mkdir()
        (out / name).write_bytes(content)
        refused = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--out", out)
        assert refused.exit_code == 2 and message in " ".join(refused.output.split()), refused.output
        assert sorted(p.name for p in out.iterdir()) == [name] and (out / name).read_bytes() == content
    sanity = tmp_path / "sanity"
    sanity.mkdir()
    (sanity / "robustness.png").write_bytes(b"mine")
    refused = run_cli("sanity", images / "im0.png", *TINY, "-m", "gradient", "--out", sanity)
    assert refused.exit_code == 2 and "holds robustness.png, which this sanity run" in " ".join(refused.output.split())


def test_the_run_folder_is_not_a_folder_of_inputs(run_cli, images, tmp_path):
    """--out photos, the folder explained, mixed the run's files with the pictures: the next run over the folder
    took the contact sheet and the maps for inputs (9 where there were 2)."""
    refused = run_cli("explain", images, *TINY, "-m", "gradient", "--out", images)
    assert refused.exit_code == 2 and f"--out {images} is the folder of inputs {images}: the run's files would mix " \
        f"with its pictures" in " ".join(refused.output.split())
    assert not (images / "run.json").exists()
    refused = run_cli("sanity", images, *TINY, "-m", "gradient", "--out", images)  # its plots likewise
    assert refused.exit_code == 2 and f"--out {images} is the folder of inputs" in " ".join(refused.output.split())
    inside = images / "attrib-run"  # as the message suggests: a run folder inside is left out of the inputs
    try:
        for _ in range(2):
            result = run_cli("explain", images, *TINY, "-m", "gradient", "--out", inside, "--json")
            assert result.exit_code == 0 and len(parse_json(result)["inputs"]) == 2
    finally:
        shutil.rmtree(inside)


def test_names_holding_emoji_codes_are_printed_as_they_are(run_cli, images, tmp_path):
    """rich made ":dog:" in a name a dog: "error: sample🐶 unknown sample", "x🐶y.png" over its table."""
    shutil.copy(images / "im0.png", tmp_path / "x:dog:y.png")
    result = run_cli("explain", tmp_path / "x:dog:y.png", "sample:dog", *TINY, "-m", "gradient", "--out",
                     tmp_path / "o")
    assert result.exit_code == 1 and "\U0001f436" not in result.output
    assert "error: sample:dog: unknown sample" in result.output and "x:dog:y.png\n" in result.output


def test_progress_descriptions_are_shown_as_they_are():
    """A text file's name in sanity-text's progress bar was read as markup: "[/x]" in it stopped the run."""
    import io

    from rich.console import Console

    from attrib.cli.ui import UI

    ui = UI()
    ui.err = Console(file=io.StringIO(), force_terminal=True, width=100)
    with ui.progress() as progress:
        task = progress.add_task("sanity: data[/x]:dog:.csv:3", total=1)
        progress.update(task, advance=1)
    assert "sanity: data[/x]:dog:.csv:3" in ui.err.file.getvalue()


def test_a_background_no_method_takes_is_warned_of(run_cli, images, tmp_path):
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--background", images,
                     "--out", tmp_path / "a")
    assert result.exit_code == 0
    assert f"warning: --background {images} is not used: no method of gradient takes a reference set " \
        "(expected_gradients does)" in " ".join(result.output.split())


def test_a_set_option_the_configured_method_does_not_use_is_warned_of(run_cli, images, tmp_path):
    result = run_cli("explain", images / "im0.png", *FAST, "-m", "ig", "-m", "gradient", "--set", "rule=trapezoid",
                     "--set", "start_steps=4", "--set", "blur_sigma_frac=0.3", "--out", tmp_path / "a")
    said = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "warning: --set integrated_gradients.start_steps is ignored: it is for the adaptive rule, not " \
        "trapezoid" in said
    assert "warning: --set integrated_gradients.blur_sigma_frac is ignored: it is for the blur baseline" in said
    assert "tol is ignored" not in said  # not set
    used = run_cli("explain", images / "im0.png", *FAST, "--set", "baseline=blur", "--set", "blur_sigma_frac=0.3",
                   "--set", "start_steps=2", "--out", tmp_path / "b")
    assert used.exit_code == 0 and "ignored" not in used.output


def test_an_image_enlarged_over_four_times_is_warned_of_once_and_in_each_map(run_cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, size in (("thumb.png", (30, 40)), ("strip.png", (200, 8)), ("small.png", (40, 40))):
        Image.new("RGB", size, (200, 30, 30)).save(folder / name)  # test_resnet's input: 160 x 160
    moving = [Image.new("RGB", (30, 40), colour) for colour in ((200, 30, 30), (30, 200, 30))]
    moving[0].save(folder / "moving.gif", save_all=True, append_images=moving[1:])  # two notes in one line
    result = run_cli("explain", folder, *TINY, "-m", "gradient", "-m", "gxi", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.count("warning: thumb.png: the image is 30x40 px, enlarged 5x to the model's 160x160 input") == 1
    assert "warning: strip.png: the image is 200x8 px, enlarged 20x" in said
    assert "small.png:" not in said  # 4x: no more than a thumbnail's usual
    record, _ = attrib.load_run(tmp_path / "run")
    warnings = {Path(e["name"]).name: [a["warning"] for a in e["attributions"]] for e in record["inputs"]}
    assert warnings["small.png"] == [None, None]
    assert all(w.startswith("the image is 200x8 px, enlarged 20x") for w in warnings["strip.png"])
    assert said.count("warning: moving.gif: the image is 30x40 px, enlarged 5x to the model's 160x160 input; an "
                      "animated or multi-page image: only its first frame (of 2) is used") == 1
    assert all("only its first frame (of 2) is used" in w for w in warnings["moving.gif"])


def test_expected_gradients_background_is_named(run_cli, images, tmp_path):
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "eg", "--set", "n_samples=4", "--out", tmp_path / "a")
    assert result.exit_code == 0 and "built-in: 4 sample images" in result.output
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "eg", "--set", "n_samples=4", "--background", images,
                     "--out", tmp_path / "b", "--json")
    data = parse_json(result)
    assert re.fullmatch(rf"2 images from {re.escape(str(images))} \(sha256 [0-9a-f]{{12}}\)", data["background"])
    eg = data["inputs"][0]["attributions"][0]
    background = ["-m", "eg", "--set", "n_samples=4", "--background", images, "--out", tmp_path / "b"]
    assert "1 already done" in run_cli("explain", images / "im0.png", *TINY, *background).output
    Image.new("RGB", (90, 70), (10, 10, 250)).save(images / "im1.png")  # another picture under the same name
    again = run_cli("explain", images / "im0.png", *TINY, *background)
    assert "held a run with other settings (expected_gradients options)" in again.output
    assert "1 explained" in again.output
    assert abs(eg["completeness_gap"]) <= 4 * eg["gap_stderr"]  # Monte Carlo noise (the input is one background)
    assert eg["warning"].endswith("(Monte Carlo) > 5%; raise n_samples (--set expected_gradients.n_samples=N) for "
                                  "a faithful map")  # EG's own knob, not IG's n_steps
    (images / "broken.png").write_bytes(b"")
    (images / "notes.jpg").write_text("not an image")
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "eg", "--background", images, "--out", tmp_path / "c")
    assert result.exit_code == 2 and not (tmp_path / "c").exists()
    assert f"background {images}: 2 of 4 files cannot be read, e.g. {images / 'broken.png'}: empty file" in \
        " ".join(result.output.split())
    (tmp_path / "empty").mkdir()
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "eg", "--background", tmp_path / "empty",
                     "--out", tmp_path / "d")
    assert result.exit_code == 2
    assert f"background {tmp_path / 'empty'}: folder holds no image files" in " ".join(result.output.split())


def test_sample_model_kind(run_cli, images, tmp_path):
    import torch

    from attrib.models import Model
    from attrib.models.preprocess import Preprocess
    from attrib.models.samples import SAMPLES, register_sample

    def tiny():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 2))
        return Model(net.eval(), Preprocess(size=(8, 8), crop_pct=1.0, mean=(0.5,), std=(0.5,), channels=1),
                     ["zero", "one"], "image", "sample:tiny")

    register_sample("tiny", "a test model", tiny)
    try:
        result = run_cli("explain", images, "-M", "sample:tiny", "--out", tmp_path / "o", "--json")
        assert result.exit_code == 0, result.output
        assert parse_json(result)["inputs"][0]["predictions"][0]["label"] in ("zero", "one")
        listing = run_cli("models")
        assert "sample:tiny" in listing.output and "a test model" in listing.output
    finally:
        SAMPLES.pop("tiny")


def test_methods_listing(run_cli):
    result = run_cli("methods", "--json")
    rows = {r["method"]: r for r in json.loads(result.stdout)}
    assert rows["integrated_gradients"]["aliases"] == ["ig"]
    assert {o["name"]: o["default"] for o in rows["smoothgrad"]["options"]} == {"n_samples": 50, "noise_frac": 0.15}
    assert "fraction of each input's own value range" in rows["smoothgrad"]["options"][1]["doc"]
    assert rows["expected_gradients"]["options"][0]["default"] == "required"
    text = run_cli("methods").output  # an overview: names, options with defaults, cost; meanings by NAME
    assert "integrated_gradients" in text and "(ig)" in text and "n_steps=auto," in text and "tol=0.01," in text
    assert "quadrature points" not in text and "`attrib methods NAME` says what each option means" in text
    result = run_cli("methods", "sg", "IG", "--json")
    assert [r["method"] for r in json.loads(result.stdout)] == ["smoothgrad", "integrated_gradients"]
    result = run_cli("methods", "nosuch")
    assert result.exit_code == 2 and "unknown method 'nosuch'; valid methods: gradient" in result.output
    undocumented = [(r["method"], o["name"]) for r in rows.values() for o in r["options"] if not o["doc"]]
    assert undocumented == []  # MoreauGrad's variants inherit their base's words (they listed 11 blank options)
    lines = run_cli("methods", "mg_sparse").output.splitlines()  # by name: a block, one option per line
    assert lines[0] == "moreaugrad_sparse (mg_sparse) — MoreauGrad with an L1 penalty (sparse maps)"
    assert "  eta (0.005)" in [line.rstrip() for line in lines] and "  map: signed" in [line.rstrip() for line in lines]


def test_methods_listing_of_one_option_as_set_names_it(run_cli):
    rows = json.loads(run_cli("methods", "ig.tol", "sg", "--json").stdout)  # METHOD.KEY: that option alone
    assert [[o["name"] for o in r["options"]] for r in rows] == [["tol"], ["n_samples", "noise_frac"]]
    text = run_cli("methods", "ig.n_steps").output
    assert text.startswith("integrated_gradients (ig)") and "n_steps (auto)" in text and "tol" not in text
    result = run_cli("methods", "ig.nsteps")
    assert result.exit_code == 2 and "unknown option 'nsteps' for integrated_gradients; valid: n_steps" in result.output
    result = run_cli("methods", "gxi.x")
    assert result.exit_code == 2 and "'x' for gradient_x_input; it takes no options" in result.output
    assert "unknown method 'nosuch'" in run_cli("methods", "nosuch.n_steps").output


def test_moreaugrad_and_magnitude_view(run_cli, images, tmp_path):
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "mg", "-m", "mg_sparse", "--set", "n_iter=3",
                     "--set", "average_last=2", "--set", "n_samples=2", "--magnitude", "--out", tmp_path / "o",
                     "--json")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert [a["method"] for a in data["inputs"][0]["attributions"]] == ["moreaugrad", "moreaugrad_sparse"]
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["view"] == "magnitude"
    assert {m["method"]: m["config"]["preset"] for m in record["methods"]} == {"moreaugrad": "fast",
                                                                              "moreaugrad_sparse": "fast"}
    assert attrib.load_run(tmp_path / "o").record["inputs"][0]["attributions"][0]["passes"] == 6


def test_fine_tuned_weights_with_a_labels_file(run_cli, images, tmp_path):
    import timm
    import torch

    torch.save(timm.create_model("test_resnet", num_classes=3).state_dict(), tmp_path / "tuned.pt")
    (tmp_path / "labels.txt").write_text("normal\npneumonia\ncovid\n")
    model = ["-M", "timm:test_resnet", "--weights", tmp_path / "tuned.pt", "--labels", tmp_path / "labels.txt"]
    result = run_cli("explain", images / "im0.png", *model, "-m", "gradient", "--target", "Pneumonia",
                     "--out", tmp_path / "a", "--json")
    assert result.exit_code == 0, result.output
    entry = parse_json(result)["inputs"][0]
    assert {p["label"] for p in entry["predictions"]} == {"normal", "pneumonia", "covid"}
    assert entry["attributions"][0]["target"] == 1
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["model"]["weights"]["sha256"] == hashlib.sha256((tmp_path / "tuned.pt").read_bytes()).hexdigest()
    again = run_cli("explain", images / "im0.png", *model, "-m", "gradient", "--target", "1", "--out", tmp_path / "a")
    assert "1 already done" in again.output  # the same weights: resumed
    torch.save(timm.create_model("test_resnet", num_classes=3).state_dict(), tmp_path / "tuned.pt")  # retrained
    other = run_cli("explain", images / "im0.png", *model, "-m", "gradient", "--target", "1", "--out", tmp_path / "a")
    assert "held a run with other settings (model)" in other.output and "1 explained" in other.output
    (tmp_path / "labels.txt").write_text("normal\npneumonia\n")
    result = run_cli("explain", images / "im0.png", *model, "-m", "gradient", "--out", tmp_path / "b")
    assert result.exit_code == 2 and "2 names for a model with 3 classes" in result.output


def test_a_resumed_run_names_classes_as_an_edited_labels_file_does(run_cli, images, tmp_path):
    import timm
    import torch

    torch.save(timm.create_model("test_resnet", num_classes=3).state_dict(), tmp_path / "tuned.pt")
    (tmp_path / "labels.txt").write_text("normal\npneumonia\ncovid\n")
    (tmp_path / "truth.csv").write_text("im0.png,pneumonia\nim1.png,normal\n")
    command = ["explain", images, "-M", "timm:test_resnet", "--weights", tmp_path / "tuned.pt", "--labels",
               tmp_path / "labels.txt", "--truth", tmp_path / "truth.csv", "--versus", "runner-up",
               "-m", "gradient", "--out", tmp_path / "a"]
    assert "2 explained" in run_cli(*command).output
    png = tmp_path / "a" / "images" / "im0.png" / "gradient_overlay.png"
    written = png.stat().st_mtime_ns
    (tmp_path / "labels.txt").write_text("healthy\npneumonia\ncovid-19\n")  # names edited: the classes stand
    (tmp_path / "truth.csv").write_text("im0.png,pneumonia\nim1.png,healthy\n")
    again = run_cli(*command, "--json")
    assert "2 already done" in again.output and png.stat().st_mtime_ns == written
    names = {"healthy", "pneumonia", "covid-19"}
    for entry in (*parse_json(again)["inputs"], *attrib.load_run(tmp_path / "a").record["inputs"]):
        assert {p["label"] for p in entry["predictions"]} == names
        (a,) = entry["attributions"]
        assert {a["target_label"], a["versus_label"]} <= names and a["target_label"] != a["versus_label"]
    assert {e.get("true_label") for e in attrib.load_run(tmp_path / "a").record["inputs"]} == {"pneumonia", "healthy"}
    lines = (tmp_path / "a" / "inputs.jsonl").read_text().count("\n")
    assert "2 already done" in run_cli(*command).output  # the same names now: nothing committed again
    assert (tmp_path / "a" / "inputs.jsonl").read_text().count("\n") == lines == 4


def test_an_unwritable_run_folder_is_one_line(run_cli, images, tmp_path, monkeypatch):
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--out", images / "im0.png" / "run")
    assert result.exit_code == 2 and f"{images / 'im0.png'} is a file" in result.output
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--out", tmp_path / "h",
                     "--html", images / "im0.png" / "r.html")
    assert result.exit_code == 2 and "cannot write the report" in result.output and not (tmp_path / "h").exists()

    from attrib.runs import RunStore

    def refuse(self, record):
        raise PermissionError(13, "Permission denied", str(self.root / "run.json"))

    monkeypatch.setattr(RunStore, "write_record", refuse)
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot write the run folder: Permission denied: {tmp_path / 'o' / 'run.json'}" in \
        " ".join(result.output.split()) and "what finished is kept there" in " ".join(result.output.split())
    monkeypatch.undo()

    def unmade(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr("attrib.runs.lock.Path.mkdir", unmade)
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--out", tmp_path / "p")
    said = " ".join(result.output.split())  # a folder that could not be made keeps nothing
    assert result.exit_code == 1 and said.endswith(f"cannot write the run folder: Permission denied: {tmp_path / 'p'}")


def test_a_full_disk_is_one_line_naming_the_file(run_cli, images, tmp_path, monkeypatch):
    """A full disk raises OSError without a file name: it went past the run folder's handler as a traceback."""
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("attrib.runs.atomic.os.fsync", full)
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--out", tmp_path / "o")
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot write the run folder: No space left on device: {tmp_path / 'o'}" in said
    assert not list((tmp_path / "o").rglob("*.tmp"))  # nothing half-written


def test_expected_gradients_default_references_for_sample_and_grayscale_models(run_cli, images, tmp_path):
    import timm
    import torch

    result = run_cli("explain", images / "im0.png", "-M", "sample:blockdigits-standard", "-m", "eg", "--set",
                     "n_samples=4", "--out", tmp_path / "a", "--json")
    assert result.exit_code == 0, result.output
    assert parse_json(result)["background"] == "64 training examples (seed 0)"  # the model's own data set
    torch.save(timm.create_model("test_resnet", in_chans=1, num_classes=3).state_dict(), tmp_path / "gray.pt")
    result = run_cli("explain", images / "im0.png", "-M", "timm:test_resnet", "--weights", tmp_path / "gray.pt",
                     "-m", "eg", "--set", "n_samples=4", "--out", tmp_path / "b", "--json")
    assert result.exit_code == 0, result.output
    assert parse_json(result)["background"].startswith("built-in: 4 sample images")  # in grayscale


def test_an_interrupted_run_keeps_what_finished_and_goes_on(run_cli, images, tmp_path, monkeypatch):
    from attrib.jobs import explain
    from attrib.runs import RunStore

    def interrupt_while_loading(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:  # Ctrl-C while the model loads: no folder said to keep anything
        patched.setattr(explain, "prepare", interrupt_while_loading)
        result = run_cli("explain", images, *TINY, "--out", tmp_path / "o")
    assert result.exit_code == 130 and result.output.strip().endswith("error: interrupted before any work")
    append = RunStore.append_input

    def interrupt_after_one(self, entry):
        append(self, entry)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "append_input", interrupt_after_one)
    result = run_cli("explain", images, *TINY, "-m", "gradient", "--out", tmp_path / "o", "--batch-size", "1")
    assert result.exit_code == 130 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert f"interrupted; what finished is kept in {tmp_path / 'o'}: the same command goes on from there" in said
    monkeypatch.setattr(RunStore, "append_input", append)
    result = run_cli("explain", images, *TINY, "-m", "gradient", "--out", tmp_path / "o", "--batch-size", "1",
                     "--json")
    assert result.exit_code == 0, result.output
    assert parse_json(result)["summary"]["skipped"] == 1


def _as_recorded(out: Path) -> None:
    """Each input's files are those its record names (no more), its arrays hold its maps' methods (no other); the
    contact sheet is there where the record names it."""
    run = attrib.load_run(out)
    named = set()
    for entry in run.record["inputs"]:
        named |= {p for p in [entry["view"], *(a[k] for a in entry["attributions"] for k in ("heatmap", "overlay"))]
                  if p}
        methods = sorted(a["method"] for a in entry["attributions"])
        if entry["status"] == "ok":
            named.add(f"arrays/{entry['id']}.npz")
            with np.load(out / "arrays" / f"{entry['id']}.npz") as arrays:
                assert sorted(arrays.files) == methods, entry["id"]
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.suffix in (".png", ".npz")}
    on_disk.discard("overview.png")
    assert on_disk == named
    assert (out / "overview.png").exists() == ("overview" in run.record)  # a run's contact sheet, or none


def test_a_run_stopped_part_way_leaves_no_file_its_records_do_not_name(run_cli, images, tmp_path, monkeypatch):
    from attrib.runs import RunStore

    out, write = tmp_path / "o", RunStore.write_arrays
    args = (images, *TINY, "--target", "1", "--out", out, "--batch-size", "1")

    def stop_at(name: str):
        def written_then_stopped(self, input_id, arrays):  # its files written, not committed: Ctrl-C
            write(self, input_id, arrays)
            if input_id == name:
                raise KeyboardInterrupt
        monkeypatch.setattr(RunStore, "write_arrays", written_then_stopped)

    stop_at("im1.png")
    assert run_cli("explain", *args, "-m", "gradient").exit_code == 130
    _as_recorded(out)
    assert [e["id"] for e in attrib.load_run(out).record["inputs"]] == ["im0.png"]
    monkeypatch.setattr(RunStore, "write_arrays", write)
    assert run_cli("explain", *args, "-m", "gradient").exit_code == 0
    stop_at("im0.png")  # explained again with another method: its gradient maps are overwritten first
    assert run_cli("explain", *args, "-m", "gxi").exit_code == 130
    _as_recorded(out)
    entries = {e["id"]: e for e in attrib.load_run(out).record["inputs"]}
    assert entries["im0.png"]["status"] == "error" and "stopped while it was explained again" in \
        entries["im0.png"]["error"]
    kept = [e for e in entries.values() if e["status"] == "ok"]  # (im1, unless its files were being written too)
    assert all(a["method"] == "gradient" for e in kept for a in e["attributions"])
    monkeypatch.setattr(RunStore, "write_arrays", write)
    result = run_cli("explain", *args, "-m", "gradient", "--json")
    assert result.exit_code == 0 and parse_json(result)["summary"]["skipped"] == len(kept)  # im0 explained again
    _as_recorded(out)


def test_a_rerun_removes_the_files_a_killed_run_left_that_no_record_names(run_cli, images, tmp_path):
    out = tmp_path / "o"
    args = (*TINY, "-m", "gradient", "--target", "1", "--out", out)
    assert run_cli("explain", images, *args).exit_code == 0
    # as kill -9 leaves a folder: the files of an input not committed yet, and of one committed as stopped
    (out / "arrays/ghost.png.npz").write_bytes((out / "arrays/im0.png.npz").read_bytes())
    (out / "images/ghost.png").mkdir()
    (out / "images/ghost.png/gradient_overlay.png").write_bytes(b"")
    (out / "images/im1.png/mine.png").write_bytes(b"mine")  # not attrib's: stays
    im1 = {e["id"]: e for e in attrib.load_run(out).record["inputs"]}["im1.png"]
    with open(out / "inputs.jsonl", "a") as f:
        f.write(json.dumps({**im1, "status": "error", "error": "stopped", "view": None, "attributions": []}) + "\n")
    assert run_cli("explain", images / "im0.png", *args).exit_code == 0  # (im1 is not explained again)
    assert not (out / "arrays/ghost.png.npz").exists() and not (out / "images/ghost.png").exists()
    assert sorted(p.name for p in (out / "images/im1.png").iterdir()) == ["mine.png"]
    (out / "images/im1.png/mine.png").unlink()
    _as_recorded(out)


def test_a_redraw_stopped_part_way_is_drawn_again(run_cli, images, tmp_path, monkeypatch):
    from attrib.runs import RunStore

    out, append = tmp_path / "o", RunStore.append_input
    args = (images / "im0.png", *TINY, "-m", "gradient", "--out", out)
    assert run_cli("explain", *args).exit_code == 0

    def stopped_before_its_commit(self, entry):  # its pictures drawn in --view magnitude: Ctrl-C
        if entry.get("drawn_as") == "magnitude":
            raise KeyboardInterrupt
        append(self, entry)

    monkeypatch.setattr(RunStore, "append_input", stopped_before_its_commit)
    assert run_cli("explain", *args, "--view", "magnitude").exit_code == 130
    monkeypatch.setattr(RunStore, "append_input", append)
    said = " ".join(run_cli("explain", *args).output.split())  # blend: not as they are now
    assert "1 input done earlier here drawn again in --view blend" in said
    fresh = tmp_path / "fresh"
    assert run_cli("explain", *args[:-1], fresh).exit_code == 0
    assert (out / "images/im0.png/gradient_overlay.png").read_bytes() == \
        (fresh / "images/im0.png/gradient_overlay.png").read_bytes()


def test_runs_started_in_the_same_second_get_a_default_folder_each(run_cli, images, tmp_path, monkeypatch):
    import attrib.cli.common
    from attrib.runs import RunStore

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(attrib.cli.common.time, "strftime", lambda pattern: pattern.replace("%Y%m%d-%H%M%S", "t"))
    assert run_cli("explain", images, "-M", "timm:no_such_net").exit_code == 2
    assert not (tmp_path / "attrib-runs").exists()  # a usage error leaves no folder, nor their parent
    first = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient")
    second = run_cli("explain", images / "im1.png", *TINY, "-m", "ig", "--set", "n_steps=4")
    assert first.exit_code == second.exit_code == 0
    runs = tmp_path / "attrib-runs"
    assert [e["id"] for e in attrib.load_run(runs / "t")[0]["inputs"]] == ["im0.png"]  # kept, not started over
    assert [e["id"] for e in attrib.load_run(runs / "t-2")[0]["inputs"]] == ["im1.png"]
    assert run_cli("explain", images, "-M", "timm:no_such_net").exit_code == 2
    assert sorted(p.name for p in runs.iterdir()) == ["t", "t-2"]  # nor an empty one beside them

    def interrupt(self, entry):
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "append_input", interrupt)
    result = run_cli("explain", images, *TINY, "-m", "gradient")
    said = " ".join(result.output.split())
    assert result.exit_code == 130 and f"the same command with --out {Path('attrib-runs') / 't-3'} goes on" in said



def test_a_processor_attrib_only_approximates_is_a_warning_line(run_cli, images, tmp_path):
    from transformers import LevitImageProcessor, ViTConfig, ViTForImageClassification

    ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=32, num_labels=3)
                              ).save_pretrained(tmp_path / "m")
    LevitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "m")  # LeViT's own rule: resize to 256/224 of the shortest edge, then crop
    result = run_cli("explain", images / "im0.png", "-M", tmp_path / "m", "-m", "gradient", "--out", tmp_path / "o")
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "warning: " in said and "differ from its processor's by" in said and "LevitImageProcessor" in said
    assert "UserWarning" not in said


@pytest.mark.parametrize("extra,kind", [({"problem_type": "multi_label_classification"}, "sigmoid"),
                                        ({"num_labels": 1}, "output"), ({}, "softmax")])
def test_predictions_are_read_as_the_head_is_meant(run_cli, images, tmp_path, extra, kind):
    """A one-output model's softmax is 1 whatever the image; a multi-label model's classes are independent."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = {"num_labels": 3, **extra}
    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=32, **config)).eval()
    model.save_pretrained(tmp_path / "m")
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    processor.save_pretrained(tmp_path / "m")
    result = run_cli("explain", images / "im0.png", "-M", tmp_path / "m", "-m", "gradient", "--out", tmp_path / "o",
                     "--json")
    assert result.exit_code == 0, result.output
    record = parse_json(result)
    with torch.no_grad():
        logits = model(**processor(Image.open(images / "im0.png"), return_tensors="pt")).logits[0]
    expected = {"sigmoid": logits.sigmoid(), "output": logits, "softmax": logits.softmax(0)}[kind]
    assert json.loads((tmp_path / "o" / "run.json").read_text())["model"]["scores"] == kind
    top = record["inputs"][0]["predictions"][0]
    assert top["prob"] == pytest.approx(float(expected.max()), abs=1e-4)


def test_tf32_off_a_card_says_it_is_fp32(run_cli, images, tmp_path):
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--precision", "tf32", "--device",
                     "cpu", "--out", tmp_path / "o")
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "warning: --precision tf32 changes CUDA matrix products only, on cards of " \
        "compute capability 8.0 or more; on cpu this run is fp32" in said


@pytest.mark.parametrize("native", [False, True])
def test_bf16_where_it_is_emulated_is_warned_of(run_cli, images, tmp_path, monkeypatch, native):
    """On a CPU without bfloat16 arithmetic bf16 ran 25x slower than fp32 per pass, unannounced (IG on one
    sample image: 5 minutes)."""
    monkeypatch.setattr("attrib.jobs.explain.native_bf16", lambda device: native)
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--precision", "bf16", "--out",
                     tmp_path / "o")
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and ("has no bfloat16 arithmetic, so torch emulates it" in said) is not native


def test_a_folder_explained_twice_leaves_out_the_first_runs_pictures(run_cli, tmp_path):
    from attrib.data.images import expand_inputs

    Image.new("RGB", (32, 32), (200, 90, 10)).save(tmp_path / "photo.png")
    for _ in range(2):  # `attrib explain .` twice, its runs under ./attrib-runs
        result = run_cli("explain", tmp_path, *TINY, "-m", "gradient", "--out", tmp_path / "attrib-runs" / "run",
                         "--force", "--json")
        assert result.exit_code == 0 and [i["path"] for i in parse_json(result)["inputs"]] == [
            str(tmp_path / "photo.png")]
    assert len(list((tmp_path / "attrib-runs").rglob("*.png"))) >= 3  # pictures that would have been explained
    (tmp_path / "other").mkdir()  # another tool's run.json does not hide a folder
    (tmp_path / "other" / "run.json").write_text('{"tool": "x"}')
    Image.new("RGB", (8, 8)).save(tmp_path / "other" / "p.png")
    assert [s.name for s in expand_inputs([str(tmp_path)])] == [str(tmp_path / "other" / "p.png"),
                                                              str(tmp_path / "photo.png")]


def test_a_large_runs_warnings_past_twenty_are_counted_not_printed(run_cli, tmp_path):
    from attrib.cli.common import WARNINGS_SHOWN

    for i in range(WARNINGS_SHOWN + 5):  # IG with a budget of 4 steps warns on every map
        Image.new("RGB", (48, 48), (10 * i, 90, 200 - 5 * i)).save(tmp_path / f"{i:02d}.png")  # not enlarged 4x
    for verbose, printed in (([], WARNINGS_SHOWN), (["-v"], WARNINGS_SHOWN + 5)):
        result = run_cli("explain", tmp_path, *FAST, "-m", "ig", "--no-images", "--force", "--out", tmp_path / "o",
                         *verbose)
        said = " ".join(result.stderr.split())
        assert result.exit_code == 0 and said.count("the adaptive rule spent its budget of 4 steps") == printed
        assert ("5 more warnings not shown (-v shows every one" in said) is not verbose
    kept = [entry["attributions"][0]["warning"] for entry in attrib.load_run(tmp_path / "o").record["inputs"]]
    assert len(kept) == WARNINGS_SHOWN + 5 and all("spent its budget of 4 steps" in w for w in kept)


def test_inputs_listed_in_a_file_or_on_standard_input(run_cli, images, tmp_path):
    """A selection of thousands of images (the misclassified ones, say) did not fit on a command line, and
    xargs split it into several runs."""
    from click.testing import CliRunner

    from attrib.cli import main

    listing = tmp_path / "list.txt"
    listing.write_text(f"{images / 'im1.png'}\n\n  {images / 'im0.png'}  \n")
    result = run_cli("explain", images / "im1.png", "--inputs-from", listing, *TINY, "-m", "gradient",
                     "--out", tmp_path / "a", "--json")
    assert result.exit_code == 0, result.output
    assert [Path(i["path"]).name for i in parse_json(result)["inputs"]] == ["im1.png", "im0.png"]  # once each
    piped = CliRunner().invoke(main, ["explain", "--inputs-from", "-", *TINY, "-m", "gradient", "--out",
                                      str(tmp_path / "b"), "--json"], input=f"{images / 'im0.png'}\n")
    assert piped.exit_code == 0 and [Path(i["path"]).name for i in parse_json(piped)["inputs"]] == ["im0.png"]
    (tmp_path / "ps.txt").write_text(f"{images / 'im0.png'}\r\n", encoding="utf-16")  # PowerShell 5's `dir > ps.txt`
    result = run_cli("explain", "--inputs-from", tmp_path / "ps.txt", *TINY, "-m", "gradient", "--out",
                     tmp_path / "d", "--json")
    assert result.exit_code == 0 and [Path(i["path"]).name for i in parse_json(result)["inputs"]] == ["im0.png"]
    (tmp_path / "blank.txt").write_text("\n \n")
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9.png\n".encode("latin-1"))
    for path, message in ((tmp_path / "blank.txt", "blank.txt: the list of inputs names none"),
                          (tmp_path / "latin1.txt", "latin1.txt: not UTF-8 text (byte 0xe9 at offset 3); save it"),
                          (tmp_path / "nope.txt", "nope.txt: cannot read the list of inputs (No such file")):
        refused = run_cli("explain", "--inputs-from", path, *TINY, "--out", tmp_path / "c")
        assert refused.exit_code == 2 and message in refused.output  # never the built-in samples instead


def test_a_picture_given_as_a_list_of_inputs_says_so(run_cli, images, tmp_path):
    """`--inputs-from cat.jpg` read the JPEG's bytes as names: "unexpected OSError: [Errno 36] File name too
    long" and garbage, the whole run stopped. An image, or an archive of them, is named as such."""
    from click.testing import CliRunner

    from attrib.cli import main

    picture = images / "im0.png"
    with zipfile.ZipFile(tmp_path / "shots.zip", "w") as archive:
        archive.write(picture, "im0.png")
    for listed, said in ((picture, f"{picture}: a PNG image, not a list of inputs; give it as an input: attrib "
                                   f"explain {picture}"),
                         (tmp_path / "shots.zip", "shots.zip: an archive of images, not a list of inputs")):
        refused = run_cli("explain", "--inputs-from", listed, *TINY, "--out", tmp_path / "c")
        assert refused.exit_code == 2 and said in " ".join(refused.output.split()), refused.output
    piped = CliRunner().invoke(main, ["explain", "--inputs-from", "-", *TINY, "--out", str(tmp_path / "c")],
                               input=picture.read_bytes())
    assert piped.exit_code == 2 and "standard input: a PNG image, not a list of inputs; save it to a file and give " \
        "the file as an input" in " ".join(piped.output.split())
    assert not (tmp_path / "c").exists()


def test_a_name_too_long_for_the_file_system_fails_alone(run_cli, images, tmp_path):
    """A name over the file system's 255 bytes stopped the whole run ("unexpected OSError: [Errno 36] File name
    too long"); it now fails alone and the rest of the batch runs."""
    long = "x" * 300 + ".png"
    result = run_cli("explain", images / "im0.png", long, *TINY, "-m", "gradient", "--out", tmp_path / "a")
    assert result.exit_code == 1 and f"error: {long}: cannot read it: File name too long" in result.output
    record, arrays = attrib.load_run(tmp_path / "a")
    assert [i["status"] for i in record["inputs"]] == ["ok", "error"]


@pytest.mark.parametrize("n_classes, correct, of, trained, warned", [
    (1000, 0, 50, True, True),  # a trained ImageNet model with a table in the devkit's order
    (1000, 1, 50, True, False),  # 2%: twenty times chance
    (1000, 0, 49, True, False),  # too few to judge
    (1000, 0, 50, False, False),  # random weights: chance is expected
    (3, 5, 60, True, True),  # MNLI numbered as GLUE does, against roberta-large-mnli: below chance
    (2, 33, 50, True, True), (2, 34, 50, True, False),  # 25 + 2.33 * 3.54 = 33.2
])
def test_top1_accuracy_against_given_classes_and_chance_warned(n_classes, correct, of, trained, warned):
    """With classes given (folders, a table, gold labels), a run says how often the top prediction is that class,
    and warns when a trained model is no better than chance: the classes are numbered otherwise than the model's,
    and every map explains a class the input is not."""
    from attrib.jobs.common import Accuracy

    accuracy = Accuracy(n_classes, "the table gives")
    for i in range(of):
        accuracy.count(i, i if i < correct else i + 1)
    assert accuracy.summary()["top1"] == {"correct": correct, "of": of, "accuracy": round(correct / of, 4)}
    assert accuracy.at_chance(trained) == warned
    assert Accuracy(10, "x").summary() == {}
    if n_classes == 1000:
        assert accuracy.warning().startswith(f"top-1 accuracy {correct / of:.1%} on {of} inputs against the "
                                             "classes the table gives is no better than chance (1/1000 = 0.1%)")


def test_the_most_frequent_confusions_are_counted_with_their_labels():
    """What a labelled run's misclassified inputs were taken for, most frequent first (ties in the order met), at
    most ten pairs: the first question of an error analysis, answered from the predictions the run has anyway."""
    from attrib.jobs.common import Accuracy

    accuracy = Accuracy(3, "the folders name", ["cat", "dog", "fox"])
    for predicted, given in [(1, 0), (2, 1), (1, 0), (0, 0), (2, 1), (1, 0), (0, 2)]:
        accuracy.count(predicted, given)
    assert accuracy.summary()["confusions"] == [
        {"given": 0, "predicted": 1, "count": 3, "given_label": "cat", "predicted_label": "dog"},
        {"given": 1, "predicted": 2, "count": 2, "given_label": "dog", "predicted_label": "fox"},
        {"given": 2, "predicted": 0, "count": 1, "given_label": "fox", "predicted_label": "cat"}]
    many = Accuracy(100, "the table gives")
    for i in range(30):
        many.count(i + 1, i)
    assert len(many.summary()["confusions"]) == 10 and "given_label" not in many.summary()["confusions"][0]
    from attrib.render.terminal import confusions_line

    assert confusions_line(accuracy.summary()["confusions"], shown=2) == "most confused: cat (0) as dog (1) x3, " \
        "dog (1) as fox (2) x2"
    assert confusions_line([]) is None


DIGITS = ["-M", "sample:blockdigits-standard", "-m", "gradient", "--json"]  # a fast trained model


def _digit_predictions(run_cli, tmp_path, n: int, step: int) -> dict[str, int]:
    """n grey pictures in tmp_path/val and the digit model's prediction for each, by file name."""
    (tmp_path / "val").mkdir()
    for i in range(n):
        Image.new("L", (28, 28), step * i).save(tmp_path / "val" / f"{i}.png")
    found = parse_json(run_cli("explain", tmp_path / "val", *DIGITS, "--no-images", "--out", tmp_path / "p"))
    return {Path(i["path"]).name: i["predictions"][0]["index"] for i in found["inputs"]}


def test_a_trained_model_at_chance_against_a_table_is_warned_of(run_cli, tmp_path):
    """A table numbered otherwise than the model's classes: every map explains a class the image is not."""
    model = [*DIGITS, "--no-images"]
    predicted = _digit_predictions(run_cli, tmp_path, 50, 4)
    for name, shift in (("right.csv", 0), ("shifted.csv", 1)):
        (tmp_path / name).write_text("".join(f"{n},{(p + shift) % 10}\n" for n, p in predicted.items()))
    right = run_cli("explain", tmp_path / "val", *model, "--target", tmp_path / "right.csv", "--out", tmp_path / "r")
    assert parse_json(right)["summary"]["top1"]["accuracy"] == 1.0 and "warning" not in right.stderr
    shifted = run_cli("explain", tmp_path / "val", *model, "--target", tmp_path / "shifted.csv", "--html",
                      tmp_path / "s.html", "--out", tmp_path / "s")
    warning = ("top-1 accuracy 0.0% on 50 inputs against the classes the table gives is no better than chance "
               "(1/10 = 10.0%): do they follow the model's class order? The maps explain those classes")
    assert parse_json(shifted)["summary"]["top1"] == {"correct": 0, "of": 50, "accuracy": 0.0}
    assert f"warning: {warning}" in " ".join(shifted.stderr.split())
    assert f"warning: {warning}".replace("'", "&#39;") in (tmp_path / "s.html").read_text()
    pairs = Counter(((p + 1) % 10, p) for p in predicted.values()).most_common()
    top = parse_json(shifted)["summary"]["confusions"]
    assert [(c["given"], c["predicted"]) for c in top] == [pair for pair, _ in pairs][:10]
    assert [c["count"] for c in top] == [n for _, n in pairs][:10] and top[0]["given_label"] == str(top[0]["given"])
    (given, predicted_class), n = pairs[0]
    assert f"most confused: {given} as {predicted_class} x{n}" in shifted.stderr  # labels that are their index
    assert f"<td>{given}</td><td>{predicted_class}</td><td>{n}</td>" in \
        (tmp_path / "s.html").read_text()


def test_tables_in_a_log_have_no_trailing_spaces(run_cli, images, tmp_path):
    """rich pads each table line with spaces to the table's width: a log or a diff of two runs was full of them."""
    result = run_cli("explain", images, *TINY, "-m", "gradient", "--out", tmp_path / "o")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and len(lines) > 10 and "┃ class" in result.stdout
    assert [line for line in lines if line != line.rstrip()] == []


def test_only_wrong_explains_the_misclassified_inputs_and_counts_all(run_cli, tmp_path):
    """Looking at what a model gets wrong is what a labelled set is for: --only wrong explains those alone, records
    the others with their predictions (counted in the accuracy, no files) and a rerun switches without redoing
    work."""
    model = DIGITS
    predicted = _digit_predictions(run_cli, tmp_path, 8, 30)
    given = {name: (p + i % 2) % 10 for i, (name, p) in enumerate(sorted(predicted.items()))}  # odd ones: wrong
    (tmp_path / "val.csv").write_text("".join(f"{n},{c}\n" for n, c in given.items()))
    command = ["explain", tmp_path / "val", *model, "--target", tmp_path / "val.csv", "--out", tmp_path / "o"]
    result = run_cli(*command, "--only", "wrong", "--html", tmp_path / "r.html")
    out = parse_json(result)
    wrong = sorted(n for n in given if given[n] != predicted[n])
    explained = sorted(Path(i["path"]).name for i in out["inputs"] if i["status"] == "ok")
    assert result.exit_code == 0 and explained == wrong and len(wrong) == 4
    assert all(i["attributions"][0]["target"] == given[Path(i["path"]).name]
               for i in out["inputs"] if i["attributions"])
    left = [i for i in out["inputs"] if i["status"] == "excluded"]
    assert len(left) == 4 and all(i["predictions"] and not i["attributions"] for i in left)
    assert out["summary"]["done"] == 4 and out["summary"]["excluded"] == 4
    assert out["summary"]["top1"] == {"correct": 4, "of": 8, "accuracy": 0.5}  # every input counts
    record = attrib.load_run(tmp_path / "o")[0]
    assert record["only"] == "wrong" and sorted(e["given"] for e in record["inputs"]) == sorted(given.values())
    arrays = sorted(p.stem for p in (tmp_path / "o" / "arrays").iterdir())
    assert arrays == sorted(e["id"] for e in record["inputs"] if e["status"] == "ok")  # no files for the others
    html = (tmp_path / "r.html").read_text()
    assert "only the inputs classified wrong: 4 of 8 (4 left out, 0 failed)" in html
    assert all((f"<b>{tmp_path / 'val' / n}</b>" in html) == (n in wrong) for n in given)
    again = parse_json(run_cli(*command, "--only", "wrong"))["summary"]
    assert (again["done"], again["skipped"], again["excluded"]) == (0, 4, 4)  # nothing redone
    right = parse_json(run_cli(*command, "--only", "right"))
    assert (right["summary"]["done"], right["summary"]["skipped"], right["summary"]["excluded"]) == (4, 0, 4)
    explained = sorted(Path(i["path"]).name for i in right["inputs"] if i["status"] == "ok")
    assert explained == sorted(set(given) - set(wrong))
    every = parse_json(run_cli(*command))["summary"]
    assert (every["done"], every["skipped"], every["excluded"]) == (4, 4, 0)
    assert run_cli("explain", tmp_path / "val", *model, "--only", "wrong").exit_code == 2  # no classes to judge by
    assert "--only wrong judges each prediction against the input's true class: give the classes (--truth folder or " \
        "FILE, or one class with --target)" in " ".join(run_cli("explain", *TINY, "--only", "wrong", "--out",
                                                         tmp_path / "x").output.split())


def test_truth_judges_predictions_and_target_chooses_what_to_explain(run_cli, tmp_path):
    """--truth gives each image's true class apart from the class explained: the images a model gets wrong,
    explained as what it took them for (--only wrong), or as what they are (--target truth, which --target FILE
    is short for)."""
    model = [*DIGITS, "--no-images"]
    predicted = _digit_predictions(run_cli, tmp_path, 6, 40)
    given = {name: (p + i % 2) % 10 for i, (name, p) in enumerate(sorted(predicted.items()))}  # odd ones: wrong
    table = tmp_path / "truth.csv"
    table.write_text("".join(f"{n},{c}\n" for n, c in given.items()))
    why = parse_json(run_cli("explain", tmp_path / "val", *model, "--truth", table, "--only", "wrong", "--out",
                             tmp_path / "w", "--html", tmp_path / "w.html"))
    explained = {Path(i["path"]).name: i["attributions"][0]["target"] for i in why["inputs"] if i["status"] == "ok"}
    assert explained == {n: predicted[n] for n in given if given[n] != predicted[n]} and len(explained) == 3
    assert {Path(i["path"]).name: i["given"] for i in why["inputs"]} == given
    assert why["summary"]["top1"] == {"correct": 3, "of": 6, "accuracy": 0.5}
    record = json.loads((tmp_path / "w" / "run.json").read_text())
    assert (record["target"], record["truth"], record["truth_table"]["file"]) == ("pred", "table", str(table))
    assert all(e["true_label"] == str(e["given"]) for e in attrib.load_run(tmp_path / "w")[0]["inputs"])
    assert (tmp_path / "w.html").read_text().count("misclassified: its true class is ") == 3
    truth = parse_json(run_cli("explain", tmp_path / "val", *model, "--truth", table, "--target", "truth", "--out",
                               tmp_path / "t"))
    short = parse_json(run_cli("explain", tmp_path / "val", *model, "--target", table, "--out", tmp_path / "s"))
    assert [a["target"] for i in truth["inputs"] for a in i["attributions"]] == [given[n] for n in sorted(given)]
    assert [a["target"] for i in short["inputs"] for a in i["attributions"]] == [given[n] for n in sorted(given)]
    (record, arrays), (_, shorts) = attrib.load_run(tmp_path / "t"), attrib.load_run(tmp_path / "s")
    assert all(np.array_equal(arrays[e["id"], "gradient"], shorts[e["id"], "gradient"]) for e in record["inputs"])
    assert json.loads((tmp_path / "s" / "run.json").read_text())["target"] == "table"  # as before --truth
    for args, message in ((["--target", "truth"], "--target truth explains each input's true class: give the "
                           "classes with --truth folder or --truth FILE"),
                          (["--target", table, "--truth", "folder"], f"--target {table} and --truth folder both give "
                           "the true classes: give them once"),
                          (["--truth", "banana"], "--truth takes folder or a table file (.csv, .tsv, .txt or .json)")):
        result = run_cli("explain", tmp_path / "val", *model, *args, "--out", tmp_path / "x")
        assert result.exit_code == 2 and message in " ".join(result.output.split()), args
    table.write_text("0.png,3\n")
    some = run_cli("explain", tmp_path / "val", *model, "--truth", table, "--out", tmp_path / "m")
    assert some.exit_code == 1 and f"1.png: --truth {table} gives it no class" in some.stderr


def test_versus_explains_why_one_class_rather_than_another(run_cli, tmp_path):
    """--versus: each map explains one logit minus another. With --truth and --only wrong: why each image the model
    gets wrong was taken for what it was rather than for what it is (a linear method: the two maps' difference)."""
    predicted = _digit_predictions(run_cli, tmp_path, 6, 40)
    given = {name: (p + i % 2) % 10 for i, (name, p) in enumerate(sorted(predicted.items()))}  # odd ones: wrong
    table = tmp_path / "truth.csv"
    table.write_text("".join(f"{n},{c}\n" for n, c in given.items()))
    why = run_cli("explain", tmp_path / "val", *DIGITS, "--truth", table, "--only", "wrong", "--versus", "truth",
                  "--out", tmp_path / "w", "--html", tmp_path / "w.html")
    assert why.exit_code == 0 and "explaining each input's predicted class against its true class" in why.stderr
    pairs = {Path(i["path"]).name: (a["target"], a["versus"], a["versus_label"])
             for i in parse_json(why)["inputs"] for a in i["attributions"]}
    assert pairs == {n: (predicted[n], given[n], str(given[n])) for n in given if given[n] != predicted[n]}
    record, arrays = attrib.load_run(tmp_path / "w")
    assert (record["versus"], record["view"]) == ("truth", "signed")  # evidence both ways: a signed overlay
    run_cli("explain", tmp_path / "val", *DIGITS, "--no-images", "--out", tmp_path / "p")
    run_cli("explain", tmp_path / "val", *DIGITS, "--no-images", "--truth", table, "--target", "truth", "--out",
            tmp_path / "t")
    plain, truths = attrib.load_run(tmp_path / "p")[1], attrib.load_run(tmp_path / "t")[1]
    for entry in (e for e in record["inputs"] if e["status"] == "ok"):
        key = entry["id"], "gradient"
        assert np.allclose(arrays[key], plain[key] - truths[key], atol=1e-6)
    page = (tmp_path / "w.html").read_text()
    assert all(f"target: {p} ({p}) against {g} ({g})<br>" in page for p, g, _ in pairs.values())
    assert "each input&#39;s true class (its runner-up where that is the class explained)" in page
    runner_up = run_cli("explain", tmp_path / "val", *DIGITS, "--versus", "runner-up", "--out", tmp_path / "w")
    assert "held a run with other settings (truth, versus)" in " ".join(runner_up.stderr.split())
    found = parse_json(runner_up)["inputs"]
    assert [i["attributions"][0]["versus"] for i in found] == [i["predictions"][1]["index"] for i in found]
    for args, message in ((["--versus", "truth"], "--versus truth contrasts with each input's true class: give the "
                           "classes with --truth folder or --truth FILE"),
                          (["--versus", "pred"], "--versus pred contrasts the class explained with itself (pred); "
                           "use --versus runner-up, or another class"),
                          (["--target", "3", "--versus", "3"], "with itself (class 3)"),
                          (["--truth", table, "--target", "truth", "--versus", "truth"], "with itself (truth)"),
                          (["--versus", "banana"], "--versus: unknown target label 'banana'")):
        result = run_cli("explain", tmp_path / "val", *DIGITS, *args, "--out", tmp_path / "x")
        assert result.exit_code == 2 and message in " ".join(result.output.split()), args


def test_an_archive_is_read_and_its_folders_name_the_classes(run_cli, tmp_path):
    """`attrib explain val.tar --target folder`: the folder an image lies in inside the archive is its class. A
    glob that matches nothing says so (with --target folder it used to say that no folder names its class)."""
    import io
    import tarfile

    picture = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 30, 30)).save(picture, "PNG")
    archive = tmp_path / "val.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("./1/a.png")
        info.size = len(picture.getvalue())
        tar.addfile(info, io.BytesIO(picture.getvalue()))
    result = run_cli("explain", archive, str(tmp_path / "none*.png"), *TINY, "-m", "gradient", "--target",
                     "folder", "--out", tmp_path / "o", "--json")
    assert result.exit_code == 1, result.output
    inputs = parse_json(result)["inputs"]
    assert (inputs[0]["path"], inputs[0]["given"], inputs[0]["status"]) == (f"{archive}/1/a.png", 1, "ok")
    assert inputs[1]["error"] == f"{tmp_path / 'none*.png'}: no files match this pattern"


def test_inputs_listed_with_nul_terminators(images, tmp_path):
    """``find -print0 | attrib explain --inputs-from -``: names that start with a space, hold a line break or are not
    UTF-8 (a Latin-1 file system's) cannot go through a list of lines; a NUL-separated one read as text failed
    on its first NUL. A name with a line break then failed the whole run at its end, in the contact sheet."""
    from click.testing import CliRunner

    from attrib.cli import main

    names = [b" starts with a space.png", b"line\nbreak.png", b"caf\xe9.png"]
    for name in names:
        os.link(images / "im0.png", bytes(images) + b"/" + name)
    listed = b"".join(bytes(images) + b"/" + name + b"\0" for name in names)
    piped = CliRunner().invoke(main, ["explain", "--inputs-from", "-", *TINY, "-m", "gradient", "--out",
                                      str(tmp_path / "a"), "--json"], input=listed)
    assert piped.exit_code == 0, piped.output  # the contact sheet's captions failed on the line break
    assert [os.fsencode(Path(i["path"]).name) for i in parse_json(piped)["inputs"]] == names
    assert (tmp_path / "a" / "overview.png").is_file()
    utf16 = "im0.png\n".encode("utf-16-le")  # UTF-16 without its byte-order mark: still text, refused as before
    refused = CliRunner().invoke(main, ["explain", "--inputs-from", "-", *TINY, "--out", str(tmp_path / "b")],
                                 input=utf16)
    assert refused.exit_code == 2 and "line 1 holds a NUL character" in refused.output


def test_binary_data_is_not_taken_for_a_nul_ended_list(run_cli, images, tmp_path):
    """Random bytes given to --inputs-from were read as 19,348 NUL-ended names: 19,347 failed, and one, a glob by
    chance, matched a picture in the working folder and was explained."""
    blob = tmp_path / "blob.bin"
    blob.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    refused = run_cli("explain", "--inputs-from", blob, *TINY, "--out", tmp_path / "a")
    assert refused.exit_code == 2 and f"{blob}: binary data, not a list of inputs" in refused.output
    assert not (tmp_path / "a").exists()
    odd = bytes(images) + b"/odd\x01name.png"  # one name with a control character among others: still a list
    os.link(images / "im0.png", odd)
    listed = tmp_path / "list"
    listed.write_bytes(odd + b"\0" + bytes(images / "im0.png") + b"\0" + bytes(images / "im1.png") + b"\0")
    result = run_cli("explain", "--inputs-from", listed, *TINY, "-m", "gradient", "--out", tmp_path / "b", "--json")
    assert result.exit_code == 0, result.output
    assert len(parse_json(result)["inputs"]) == 3


def test_preprocess_settings_reach_the_model_the_record_and_the_pictures(run_cli, images, tmp_path):
    result = run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--preprocess", "size=48x64",
                     "--preprocess", "mean=0.5", "--preprocess", "std=0.5", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    record, arrays = attrib.load_run(tmp_path / "run")
    assert (record["model"]["input_size"], record["model"]["mean"]) == ([48, 64], [0.5, 0.5, 0.5])
    entry = record["inputs"][0]
    assert arrays[(entry["id"], "gradient")].shape == (3, 48, 64)
    assert Image.open(tmp_path / "run" / entry["view"]).size == (64, 48)
    refused = run_cli("explain", images / "im0.png", *TINY, "--preprocess", "mean=1,2", "--out", tmp_path / "b")
    assert refused.exit_code == 2
    assert "--preprocess mean=1,2: one finite number, or one per channel (3)" in refused.output
    vector = run_cli("sanity", "-M", "sample:synthetic-standard", "--preprocess", "size=8", "--out", tmp_path / "c")
    assert vector.exit_code == 2 and "--preprocess: sample:synthetic-standard takes vectors, not pictures" in vector.output


def test_an_mlp_on_pictures_is_explained_given_their_size(run_cli, images, tmp_path):
    """`-M mlp.py:net` (nn.Flatten, then Linear(3 x 8 x 8, ...)) was refused as a model of vectors."""
    (tmp_path / "mlp.py").write_text("from torch import nn\n\ndef net():\n    return nn.Sequential(nn.Flatten(), "
                                     "nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 4))\n")
    refused = run_cli("explain", images / "im0.png", "-M", tmp_path / "mlp.py:net", "--out", tmp_path / "a")
    assert refused.exit_code == 2 and "its data set; a model of your own code that flattens pictures reads them " \
        "given their size: --preprocess size=HxW" in " ".join(refused.output.split())
    result = run_cli("explain", images / "im0.png", "-M", tmp_path / "mlp.py:net", "--preprocess", "size=8",
                     "-m", "gradient_x_input", "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    record, arrays = attrib.load_run(tmp_path / "b")
    assert record["model"]["input_size"] == [8, 8] and arrays[(record["inputs"][0]["id"], "gradient_x_input")].shape \
        == (3, 8, 8)


def test_a_size_the_model_cannot_take_is_one_line_before_any_work(run_cli, images, tmp_path):
    """`--preprocess size=96` on a ViT made for 160 px: every input failed with "unexpected AssertionError: Input
    height (96) doesn't match model (160)" (exit 1); the model is now tried at that size when it is loaded."""
    out = tmp_path / "run"
    result = run_cli("explain", images, "-M", "timm:test_vit3", "--no-pretrained", "-m", "gradient",
                     "--preprocess", "size=96", "--out", out)
    assert result.exit_code == 2, result.output
    assert "--preprocess: timm:test_vit3 cannot take inputs of shape (3, 96, 96): Input height (96) doesn't match " \
        "model (160); it was made for 160x160" in result.output
    assert "unexpected" not in result.output and not (out / "run.json").exists()
    takes = run_cli("explain", images / "im0.png", "-M", "timm:test_vit", "--no-pretrained", "-m", "gradient",
                    "--preprocess", "size=96", "--out", tmp_path / "ok")  # a ViT that takes any size
    assert takes.exit_code == 0, takes.output


def test_your_own_model_code_is_explained_and_an_edit_starts_the_folder_over(run_cli, images, tmp_path, monkeypatch):
    """`-M nets.py:Net(classes=2)`: the user's class, built with literal arguments; run.json records the code's
    sha256, so a rerun after the code changed starts over rather than mixing two models' maps."""
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    code = tmp_path / "nets.py"
    net = ("from torch import nn\n\nclass Net(nn.Sequential):\n    def __init__(self, classes):\n        super()."
           "__init__(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))\n")
    code.write_text(net)
    spec = f"{code}:Net(classes=2)"
    out = tmp_path / "run"
    result = run_cli("explain", images, "-M", spec, "--preprocess", "size=32", "-m", "gradient", "--out", out)
    assert result.exit_code == 0, result.output
    record, arrays = attrib.load_run(out)
    assert record["model"]["name"] == f"py:{spec}" and record["model"]["n_classes"] == 2
    assert arrays[(record["inputs"][0]["id"], "gradient")].shape == (3, 32, 32)
    assert "says nothing of how it reads pictures" not in result.output  # --preprocess said how
    code.write_text(net.replace("nn.ReLU()", "nn.Tanh()"))
    again = run_cli("explain", images, "-M", spec, "--preprocess", "size=32", "-m", "gradient", "--out", out)
    assert again.exit_code == 0 and "held a run with other settings (model)" in again.output
    code.write_text(net.replace("nn.ReLU()", "nn.Relu()"))
    broken = run_cli("explain", images, "-M", spec, "--out", tmp_path / "b")
    assert broken.exit_code == 2 and f"{spec} failed (nets.py line 5): AttributeError: module 'torch.nn' has no " \
        "attribute 'Relu'" in broken.output


def test_what_was_assumed_of_how_a_model_reads_pictures_is_kept_for_the_report(run_cli, images, tmp_path,
                                                                               monkeypatch):
    """The terminal said that attrib guessed how your own model reads pictures; the run record and the report,
    which a person reads later, did not."""
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "own.py").write_text("from torch import nn\n\ndef small():\n    return nn.Sequential(nn.Conv2d(3, 2, "
                                     "3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))\n")
    spec = f"{tmp_path / 'own.py'}:small"
    result = run_cli("explain", images / "im0.png", "-M", spec, "-m", "gradient", "--out", tmp_path / "a",
                     "--html", tmp_path / "a.html", "--json")
    assert result.exit_code == 0, result.output
    said = json.loads((tmp_path / "a" / "run.json").read_text())["warnings"]
    assert len(said) == 1 and said[0].startswith(f"py:{spec} says nothing of how it reads pictures")
    assert parse_json(result)["warnings"] == said
    assert "says nothing of how it reads pictures" in (tmp_path / "a.html").read_text()
    told = run_cli("explain", images / "im0.png", "-M", spec, "--preprocess", "size=32", "-m", "gradient", "--out",
                   tmp_path / "b")
    assert json.loads((tmp_path / "b" / "run.json").read_text())["warnings"] == []


def test_a_model_folder_retrained_in_place_starts_the_run_over(run_cli, images, tmp_path, tiny_vit_folder):
    import shutil

    import torch
    from transformers import AutoModelForImageClassification

    folder = tmp_path / "vit"
    shutil.copytree(tiny_vit_folder, folder)
    command = ["explain", images / "im0.png", "-M", folder, "-m", "gradient", "--out", tmp_path / "run"]
    assert run_cli(*command).exit_code == 0
    assert "1 already done" in run_cli(*command).output
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["model"]["weights"]["file"] == str(folder) and len(record["model"]["weights"]["sha256"]) == 64
    retrained = AutoModelForImageClassification.from_pretrained(folder)
    with torch.no_grad():
        retrained.classifier.weight.add_(0.5)
    retrained.save_pretrained(folder)
    again = run_cli(*command)
    assert "held a run with other settings (model)" in again.output and "1 explained" in again.output
