"""HTML reports: self-contained, escaped, rendered from the run folder; checked by parsing and in Chromium."""

import html.parser
import os
import shutil
import subprocess

import pytest
from PIL import Image

from tests.cli.conftest import FAST, TINY, parse_json


class Collector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.srcs, self.urls, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for key, value in attrs:
            if key == "src":
                self.srcs.append(value)
            if key in ("href", "src") and value and not value.startswith("data:"):
                self.urls.append(value)

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def report(run_cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (64, 64), (200, 100, 0)).save(folder / "a<img src=x onerror=alert(1)>&b.png")
    (folder / "broken.png").write_bytes(b"nope")
    out = tmp_path / "run"
    result = run_cli("explain", folder, *FAST, "-m", "ig", "-m", "gradient", "--out", out,
                     "--html", tmp_path / "explain.html")
    assert result.exit_code == 1  # one input is broken
    result = run_cli("report", out / "run.json", "-o", tmp_path / "report.html")  # the run folder, by its record
    assert result.exit_code == 0, result.output
    return tmp_path


def test_report_is_self_contained_and_escaped(report):
    text = (report / "report.html").read_text()
    assert text == (report / "explain.html").read_text()
    parsed = Collector()
    parsed.feed(text)
    assert "script" not in parsed.tags and parsed.urls == []
    assert len(parsed.srcs) == 1 + 2 * 2  # input + (overlay, heatmap) per method
    assert all(s.startswith("data:image/webp;base64,") for s in parsed.srcs)
    body = "".join(parsed.text)
    assert "a<img src=x onerror=alert(1)>&b.png" in body  # shown as text, not markup
    assert "a&lt;img src=x onerror=alert(1)&gt;&amp;b.png" in text and "not an image Pillow can read" in body
    for needle in ("integrated_gradients", "n_steps=4", "completeness gap", "estimated map error", "seed", "torch"):
        assert needle in body
    # the terminal's warnings travel with the report: a reader of the file alone learns the map is not faithful
    said = " ".join(body.split())
    assert "the adaptive rule spent its budget of 4 steps before reaching a gap within tol 1.0%" in said


def test_report_pictures_are_the_run_folders_in_fewer_bytes(tmp_path):
    """An explain report embeds its pictures as WebP: views and overlays lossy (within a few 8-bit levels, in
    under a third of the PNG's bytes for a photo), heatmaps lossless (the same pixels, fewer bytes); plots go in as
    their PNG bytes, and files Pillow cannot read (damaged) not at all: the report says so."""
    import base64
    import io

    import numpy as np
    from skimage import data

    from attrib.report.html import data_uri

    Image.fromarray(data.chelsea()[:224, :224]).save(tmp_path / "view.png")
    (tmp_path / "odd.png").write_bytes(b"not a picture")
    png = (tmp_path / "view.png").read_bytes()
    with Image.open(tmp_path / "view.png") as picture:
        truth = np.asarray(picture.convert("RGB"), dtype=float)
    for kind, bound in (("lossy", 0.3), ("lossless", 1.0)):
        uri = data_uri(tmp_path, "view.png", kind)
        assert uri.startswith("data:image/webp;base64,")
        webp = base64.b64decode(uri.split(",", 1)[1])
        with Image.open(io.BytesIO(webp)) as ours:
            error = np.abs(np.asarray(ours, dtype=float) - truth)
        assert len(webp) < bound * len(png)
        assert error.max() == 0 if kind == "lossless" else error.mean() < 3
    assert data_uri(tmp_path, "view.png") == "data:image/png;base64," + base64.b64encode(png).decode()
    assert data_uri(tmp_path, "odd.png", "lossy") == data_uri(tmp_path, "odd.png") == ""


def test_a_file_name_that_is_not_utf8_is_shown_by_its_bytes(run_cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: one lone surrogate in Python's str
    try:
        Image.new("RGB", (64, 64), (200, 100, 0)).save(folder / name)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 names")
    result = run_cli("explain", folder, *TINY, "-m", "gradient", "--out", tmp_path / "run",
                     "--html", tmp_path / "r.html")
    assert result.exit_code == 0, result.output  # the runner's stdout is strict UTF-8, as a UTF-8 locale's
    assert "caf\\xe9.png" in result.output
    assert "caf\\xe9.png" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_report_of_a_non_run_folder_is_a_usage_error(run_cli, tmp_path):
    result = run_cli("report", tmp_path, "-o", tmp_path / "r.html")
    assert result.exit_code == 2 and "not an attrib run directory" in result.output
    assert not (tmp_path / "r.html").exists()
    (tmp_path / "notes.txt").write_text("x")
    result = run_cli("report", tmp_path / "notes.txt", "-o", tmp_path / "r.html")  # click said "is a file"
    assert result.exit_code == 2 and "notes.txt is a file, not an attrib run directory" in result.output
    cases = {'{"kind": "explain"': "not a readable run record", "[1, 2]": "not a run record (a JSON list",
             '{"kind": "sanity"}': "is not a complete sanity record ('dict object' has no attribute 'model')",
             '{"kind": "explain", "model": {"name": "m"}, "methods": [], "inputs": [{"status": "ok"}]}':
             "is not a complete explain record",
             '{"kind": "explain", "model": {"name": "m"}, "methods": 5}':  # was: a traceback
             "is not a complete explain record ('int' object is not iterable)"}
    for text, message in cases.items():  # run_cli lets exceptions through: a traceback fails the test
        (tmp_path / "run.json").write_text(text)
        result = run_cli("report", tmp_path, "-o", tmp_path / "r.html")
        assert result.exit_code == 2 and message in " ".join(result.output.split()), (text, result.output)
        assert not (tmp_path / "r.html").exists()
        assert run_cli("report", tmp_path, "--png", tmp_path / "r.png").exit_code == 2


def test_a_damaged_line_of_the_inputs_record_is_named_in_one_line(run_cli, report):
    """A line of inputs.jsonl that is not an input's record (edited by hand, a damaged disk): the report was a
    traceback, and explaining into the folder again "unexpected JSONDecodeError"."""
    run = report / "run"
    lines = (run / "inputs.jsonl").read_bytes().splitlines(keepends=True)
    for damaged, why in ((b"garbage\n", "Expecting value"),
                         (b"[1, 2]\n", "not in the shape attrib writes: name, status"),
                         (b'{"name": "x", "status": "ok", "attributions": [5]}\n', "not in the shape attrib writes"),
                         (b"\xff\xfe\n", "'utf-8' codec can't decode byte 0xff")):
        (run / "inputs.jsonl").write_bytes(damaged + b"".join(lines[1:]))
        message = f"{run / 'inputs.jsonl'}:1: not an input's record ({why}"
        for args in (("report", run, "-o", report / "r.html"),
                     ("explain", report / "in", *FAST, "-m", "ig", "-m", "gradient", "--out", run)):
            result = run_cli(*args)
            said = " ".join(result.output.split())
            assert result.exit_code == 2 and message in said and "remove that line (its input is then explained " \
                "again by a rerun) or write the run to a new folder" in said, said
    (run / "inputs.jsonl").write_bytes(b"".join(lines[1:]))  # removed: that input is explained again
    result = run_cli("explain", report / "in", *FAST, "-m", "ig", "-m", "gradient", "--out", run, "--json")
    assert result.exit_code == 1 and parse_json(result)["summary"]["done"] == 1


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_report_stopped_part_way_says_so_and_leaves_nothing(run_cli, report, monkeypatch, name):
    """Ctrl-C while a report was written printed a traceback, and SIGTERM killed it without a word."""
    import signal
    import time

    import attrib.report.html as html

    def stopped(*args, **kwargs):
        os.kill(os.getpid(), getattr(signal, name))
        time.sleep(5)

    monkeypatch.setattr(html, "render_report", stopped)
    result = run_cli("report", report / "run", "-o", report / "stopped.html")
    assert result.exit_code == {"SIGTERM": 143, "SIGINT": 130}[name], result.output
    said = "stopped by SIGTERM" if name == "SIGTERM" else "interrupted"
    assert f"error: {said}: {report / 'stopped.html'} was not written" in " ".join(result.output.split())
    assert not (report / "stopped.html").exists() and not list(report.glob(".stopped.html*"))


def test_report_to_an_unwritable_place_is_one_line(run_cli, report, tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_cli("report", report / "run", "-o", tmp_path / "file" / "r.html")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"cannot write the output {tmp_path / 'file' / 'r.html'}: {tmp_path / 'file'} is" \
        " a file" in said
    result = run_cli("report", report / "run", "-o", tmp_path / "sheet.png")
    assert result.exit_code == 2 and "the contact sheet is --png FILE" in " ".join(result.output.split())
    assert not (tmp_path / "sheet.png").exists()
    result = run_cli("report", report / "run", "--png", tmp_path / "sheet.jpg")  # was PNG bytes under that name
    assert result.exit_code == 2 and f"--png writes a PNG picture: name it FILE.png (got {tmp_path / 'sheet.jpg'})" \
        in " ".join(result.output.split())
    assert not (tmp_path / "sheet.jpg").exists()
    result = run_cli("explain", report / "in", *TINY, "-m", "gradient", "--out", tmp_path / "new", "--html",
                     tmp_path / "page.png")  # HTML was written under that name: a broken picture
    assert result.exit_code == 2 and f"--html writes the HTML report, not a picture ({tmp_path / 'page.png'}); name " \
        "it FILE.html" in " ".join(result.output.split())
    assert not (tmp_path / "page.png").exists() and not (tmp_path / "new").exists()


def test_reports_never_overwrite_the_runs_own_files(run_cli, report, tmp_path):
    run = report / "run"
    record = (run / "run.json").read_bytes()
    for args in (["-o", run / "run.json"], ["-o", run / "inputs.jsonl"], ["--png", run / "images" / "x.png"]):
        result = run_cli("report", run, *args)
        assert result.exit_code == 2 and "belongs to the run (its record, arrays and pictures)" in result.output
    assert (run / "run.json").read_bytes() == record and not (run / "images" / "x.png").exists()
    for args in (["-o", run / "report.html"], ["-o", run / "report.html"], ["--png", run / "overview.png"]):
        assert run_cli("report", run, *args).exit_code == 0  # a report beside the record, again; the sheet itself
    result = run_cli("explain", report / "in", *TINY, "-m", "gradient", "--out", tmp_path / "new",
                     "--html", tmp_path / "new" / "run.json")
    assert result.exit_code == 2 and "run.json belongs to the run" in result.output and not (tmp_path / "new").exists()


def test_reports_never_overwrite_an_input_or_any_file_that_is_not_a_report(run_cli, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(photo)
    picture = photo.read_bytes()
    result = run_cli("explain", photo, *TINY, "-m", "gradient", "--out", tmp_path / "run", "--html", photo)
    assert result.exit_code == 2 and "--html writes the HTML report, not a picture" in result.output
    (tmp_path / "texts.txt").write_text("a fine film")
    result = run_cli("explain", photo, *TINY, "-m", "gradient", "--out", tmp_path / "run", "--html",
                     tmp_path / "texts.txt")
    assert result.exit_code == 2 and "that file exists and is not an HTML report (an input?)" in result.output
    assert (tmp_path / "texts.txt").read_text() == "a fine film"
    assert run_cli("explain", photo, *TINY, "-m", "gradient", "--out", tmp_path / "run").exit_code == 0
    result = run_cli("report", tmp_path / "run", "--png", photo)
    assert result.exit_code == 2 and "it is one of the run's input images" in result.output
    (tmp_path / "notes.txt").write_text("mine")
    assert run_cli("report", tmp_path / "run", "-o", tmp_path / "notes.txt").exit_code == 2
    assert photo.read_bytes() == picture and (tmp_path / "notes.txt").read_text() == "mine"


def test_pictures_gone_from_the_run_folder_are_said_not_shown_broken(run_cli, report):
    shutil.rmtree(report / "run" / "images")
    result = run_cli("report", report / "run", "-o", report / "bare.html")
    assert result.exit_code == 0, result.output
    parsed = Collector()
    parsed.feed((report / "bare.html").read_text())
    assert parsed.srcs == []  # no <img src=""> that a browser draws as a broken picture
    body = " ".join("".join(parsed.text).split())
    assert body.count("(pictures missing from the run folder, or damaged: images/") == 2  # one per method


def test_damaged_pictures_are_said_not_shown_broken_and_leave_a_blank_cell(run_cli, report):
    """A picture of the run folder cut short (a damaged disk) went into the report as it was (a broken picture),
    and the contact sheet stopped with "cannot write sheet.png: image file is truncated"."""
    run = report / "run"
    for picture in (run / "images").glob("*/*_overlay.png"):
        picture.write_bytes(picture.read_bytes()[:200])
    result = run_cli("report", run, "-o", report / "damaged.html", "--png", report / "sheet.png")
    assert result.exit_code == 0, result.output
    parsed = Collector()
    parsed.feed((report / "damaged.html").read_text())
    body = " ".join("".join(parsed.text).split())
    assert body.count("(pictures missing from the run folder, or damaged: images/") == 2  # one per method
    assert len(parsed.srcs) == 1  # the input as the model saw it; no overlay or heatmap of a damaged pair
    with Image.open(report / "sheet.png") as sheet:
        assert sheet.width == 3 * 176  # the input, then ig's and gradient's overlays
        cells = [sheet.crop((c * 176 + 2, 34, c * 176 + 174, 34 + 172)).convert("L").getextrema() for c in range(3)]
    assert cells[0] != (255, 255) and cells[1] == cells[2] == (255, 255)  # the input; two blank cells


def test_report_never_reads_outside_the_run_folder(tmp_path):
    from attrib.report.html import data_uri

    (tmp_path / "secret.png").write_bytes(b"x")
    (tmp_path / "run").mkdir()
    assert data_uri(tmp_path / "run", "../secret.png") == ""


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_chromium(report, tmp_path):
    probe = tmp_path / "probe.html"
    script = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
              "document.body.setAttribute('data-decoded', imgs.filter(i => i.naturalWidth > 0).length + '/'"
              " + imgs.length); });</script>")
    probe.write_text((report / "report.html").read_text().replace("</body>", script + "</body>"))
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert 'data-decoded="5/5"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1200,900", (report / "report.html").as_uri()], capture_output=True, timeout=120)
    with Image.open(shot) as picture:
        assert picture.size == (1200, 900)


def test_the_report_names_the_weights_and_the_model_code(run_cli, images, tmp_path, monkeypatch):
    """Which checkpoint and which code made the maps: their files and digests, escaped like everything else."""
    import hashlib
    import sys

    import torch

    monkeypatch.setattr(sys, "path", list(sys.path))
    code = tmp_path / "my<i>nets.py"
    code.write_text("from torch import nn\n\ndef net():\n    return nn.Sequential(nn.Conv2d(3, 2, 3), "
                    "nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))\n")
    weights = tmp_path / "best<b>.pt"
    from attrib.models import load_model

    torch.save(load_model(f"{code}:net", preprocess=["size=16"]).module.state_dict(), weights)
    out = tmp_path / "run"
    result = run_cli("explain", images / "im0.png", "-M", f"{code}:net", "--weights", weights, "--preprocess",
                     "size=16", "-m", "gradient", "--out", out, "--html", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    assert f"<tr><td>weights</td><td>{tmp_path}/best&lt;b&gt;.pt (sha256 {digest})</td></tr>" in html
    assert f"<tr><td>model code</td><td>{tmp_path}/my&lt;i&gt;nets.py (sha256 " in html and "my<i>" not in html


def test_a_dash_writes_the_report_or_the_contact_sheet_to_standard_output(run_cli, report, tmp_path, monkeypatch):
    """`attrib report RUN -o -` wrote a file named "-" (and `--html -` too), where a dash means standard output."""
    monkeypatch.chdir(tmp_path)
    result = run_cli("report", report / "run", "-o", "-")
    assert result.exit_code == 0 and result.stdout == (report / "report.html").read_text(encoding="utf-8")
    assert "wrote the report on standard output" in result.stderr
    assert run_cli("report", report / "run", "--png", tmp_path / "sheet.png").exit_code == 0
    result = run_cli("report", report / "run", "--png", "-")
    assert result.exit_code == 0 and result.stdout_bytes == (tmp_path / "sheet.png").read_bytes()
    result = run_cli("report", report / "run", "--png", "-", "-o", "-")
    assert result.exit_code == 2 and "-o - and --png - both write to standard output" in result.output
    result = run_cli("explain", report / "in", *TINY, "-m", "gradient", "--out", tmp_path / "new", "--html", "-")
    assert result.exit_code == 2 and "--html - would write the report into the results on standard output" in \
        " ".join(result.output.split())
    result = run_cli("explain", report / "in", *TINY, "-m", "gradient", "--out", "-")  # made a folder named "-"
    assert result.exit_code == 2 and "--out - names no folder" in result.output
    assert not (tmp_path / "-").exists() and not (tmp_path / "new").exists()


def test_the_contact_sheet_is_not_written_to_a_terminal(monkeypatch):
    import sys

    import click

    from attrib.cli.report import check_outputs

    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    with pytest.raises(click.UsageError, match="here a terminal: redirect it"):
        check_outputs(None, "-")
    check_outputs("-", None)  # HTML is text: a terminal may show it


def test_a_report_cut_short_by_its_reader_ends_quietly(run_cli, report, monkeypatch):
    """`attrib report RUN -o - | head` said "cannot write": click's convention for a closed pipe is a quiet exit 1."""
    import errno

    import attrib.cli.report as command

    def closed(path, data):
        assert path == "-"
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(command, "save", closed)
    result = run_cli("report", report / "run", "-o", "-")
    assert result.exit_code == 1 and "error" not in result.output.lower() and not result.stdout
