"""Errors a person sees: user errors are one usage line (exit 2); an unexpected error in one input is one line
naming the input with a pointer to -v (exit 1, the rest of the batch runs); -v shows the traceback."""

import json

import pytest
import torch

from attrib.models import Model
from attrib.models.preprocess import Preprocess
from attrib.models.samples import SAMPLES, register_sample
from tests.cli.conftest import TINY, parse_json


class Picky(torch.nn.Module):
    """Fails with a TypeError (an 'unexpected' error) on any batch holding an input whose mean is above 0."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x):
        if bool((x.detach().flatten(1).mean(dim=1) > 0).any()):
            raise TypeError("picky model refuses bright images")
        return self.linear(x.mean(dim=(2, 3)))


@pytest.fixture
def picky():
    register_sample("picky", "fails on bright images", lambda: Model(
        Picky().eval(), Preprocess(size=(8, 8), crop_pct=1.0, mean=(0.5,) * 3, std=(0.5,) * 3), ["a", "b"], "image",
        "sample:picky"))
    yield "sample:picky"
    SAMPLES.pop("picky")


@pytest.fixture
def bright_and_dark(tmp_path):
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (8, 8), (250, 250, 250)).save(folder / "bright.png")
    Image.new("RGB", (8, 8), (5, 5, 5)).save(folder / "dark.png")
    return folder


def test_an_unexpected_error_fails_one_input_with_one_line(run_cli, picky, bright_and_dark, tmp_path):
    result = run_cli("explain", bright_and_dark, "-M", picky, "-m", "gradient", "--out", tmp_path / "o", "--json")
    assert result.exit_code == 1
    inputs = {i["path"].rsplit("/", 1)[-1]: i for i in parse_json(result)["inputs"]}
    assert inputs["dark.png"]["status"] == "ok"
    error = inputs["bright.png"]["error"]
    assert "bright.png" in error and "unexpected TypeError: picky model refuses bright images" in error
    assert "run with -v for the traceback" in error and "Traceback" not in result.output


def test_a_failed_input_or_text_comes_to_the_jobs_error_event_once(run_cli, bright_and_dark, text_models,
                                                                     tmp_path):
    """Python callers see a failed input's line through Events.error, as the command line prints it: once."""
    from attrib.jobs import explain, explain_text
    from attrib.jobs.common import Events
    from attrib.runs import RunStore

    (bright_and_dark / "broken.png").write_bytes(b"not a png")
    seen = []

    class Errors(Events):
        def error(self, text):
            seen.append(text)

    options = explain.Options([str(bright_and_dark)], *TINY[1:2], pretrained=False, methods=["gradient"])
    explain.run(options, RunStore(tmp_path / "a"), Errors())
    texts = explain_text.Options(["fine", " "], model=text_models["clf"], methods=["unk"])
    explain_text.run(texts, RunStore(tmp_path / "b"), Errors())
    assert len(seen) == 2 and "broken.png" in seen[0] and seen[1] == "text 2: empty text (no words to explain)"
    said = run_cli("explain", bright_and_dark, *TINY, "-m", "gradient", "--out", tmp_path / "c").output
    errors = [line for line in said.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0] and said.count("broken.png") == 1  # no table repeats it


@pytest.mark.parametrize("job,fields,match", [
    ("explain", {"top_k": -1}, r"top_k must be an integer >= 1, got -1"),  # was torch's "selected index k out of range"
    ("explain", {"seed": -3}, r"seed must be a non-negative integer, got -3"),  # was every input failing
    ("sanity", {"seed": 2 ** 63}, r"seed must be at most 2\*\*32 - 1"),  # was torch's "Overflow when unpacking"
    ("explain", {"workers": 0}, r"workers must be an integer >= 1, got 0"),
    ("explain", {"precision": "fp16"}, r"precision must be one of fp32, tf32, bf16, got 'fp16'"),
    ("sanity", {"max_layers": 1}, r"max_layers must be an integer >= 2, got 1"),
    ("sanity", {"repeats": 2.5}, r"repeats must be an integer >= 1, got 2\.5"),
    ("diffroar", {"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
    ("explain_text", {"n_samples": True}, r"n_samples must be an integer >= 1, got True"),
    ("diffroar", {"ks": [0.0]}, r"ks must be fractions of coordinates kept, each in \(0, 1\], got \[0\.0\]"),
    ("diffroar", {"ks": []}, r"ks must be fractions"),  # both ran, retraining on nothing
    ("sanity", {"norm": "l3"}, r"unknown norm 'l3'; choose from l2, linf"),  # ran, in l2's place
    ("sanity", {"radii": ["abc"]}, r"a radius is a number or N% of the inputs' median norm, got 'abc'"),
    ("explain", {"model": ""}, r"^model is empty: give it a value, or leave it out for the default$"),  # default model
    ("explain", {"target": " "}, r"^target is empty"),  # explained the predicted class
    ("diffroar", {"dataset": ""}, r"^dataset is empty"),  # the sample model's own data set
    ("explain_text", {"lm": ""}, r"^lm is empty"),
])
def test_python_callers_get_the_command_lines_checks_before_any_work(tmp_path, job, fields, match):
    import importlib

    from attrib.errors import UsageError
    from attrib.runs import RunStore

    module = importlib.import_module(f"attrib.jobs.{job}")
    if job == "sanity":  # radii and norm are read against the inputs: give it small ones
        fields = {"inputs": ["sample:chelsea"], "model": "timm:test_resnet", "pretrained": False,
                  "methods": ["gradient"], **fields}
    with pytest.raises(UsageError, match=match):
        module.run(module.Options(**fields), RunStore(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_an_empty_run_folder_name_is_refused(tmp_path, monkeypatch):
    """run(options, "") wrote the run into the current folder (Path("") is ".")."""
    from attrib.jobs import explain
    from attrib.runs import RunError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError, match="the run folder's name is empty"):
        explain.run(explain.Options(["sample:chelsea"], model="timm:test_resnet", pretrained=False), "")
    assert list(tmp_path.iterdir()) == []


def test_one_value_where_options_take_a_list_is_a_list_of_one(tmp_path):
    """methods="gradient" was read as the methods "g", "r", "a", ...; inputs="cat.png" as one file per letter."""
    from attrib.jobs import diffroar, explain, explain_text, sanity
    from attrib.runs import RunStore

    assert explain.Options(inputs="cat.png", methods="ig").inputs == ["cat.png"]
    assert explain_text.Options(texts="great fun", methods="unk").methods == ["unk"]
    assert sanity.Options(tests="completeness", radii="5%").tests == ["completeness"]
    assert diffroar.Options(ks=0.1, classes=3).ks == [0.1] and diffroar.Options().ks == list(diffroar.DEFAULT_KS)
    record = explain.run(explain.Options(inputs="sample:rocket", model="timm:test_resnet", pretrained=False,
                                         methods="gradient"), RunStore(tmp_path))
    assert record["summary"]["done"] == 1 and [m["method"] for m in record["methods"]] == ["gradient"]


def test_paths_where_options_take_strings_are_their_strings(images, tmp_path):
    """inputs=[Path(...)] failed deep inside ("'PosixPath' object has no attribute 'startswith'"), as did one Path."""
    from attrib.jobs import explain, explain_text
    from attrib.runs import RunStore

    one, two = images / "im0.png", images / "im1.png"
    assert explain.Options(inputs=one).inputs == [str(one)]
    assert explain.Options(inputs=(one, str(two)), labels=one).inputs == [str(one), str(two)]
    assert explain.Options(labels=one).labels == str(one) and explain.Options().labels is None
    assert explain_text.Options(file=tmp_path / "t.txt").file == str(tmp_path / "t.txt")
    record = explain.run(explain.Options(inputs=[one, two], model="timm:test_resnet", pretrained=False,
                                         methods="gradient"), RunStore(tmp_path / "run"))
    assert record["summary"]["done"] == 2


def test_numbers_for_text_are_read_as_the_command_line_reads_them_and_other_values_are_refused(images, tmp_path):
    """inputs=[{...}] failed deep inside ("'dict' object has no attribute 'startswith'"); a run folder given as a
    path failed at the end ("'str' object has no attribute 'close'")."""
    from attrib.jobs import explain, sanity
    from attrib.runs import load_run

    assert explain.Options(target=281, versus=3).target == "281" and sanity.Options(layers=[9]).layers == ["9"]
    assert explain.Options(labels=None).labels is None and explain.Options(top_k=3).top_k == 3  # not text: kept
    for fields, shown in (({"inputs": [{"path": "cat.png"}]}, "inputs takes text .* got dict {'path': 'cat.png'}"),
                          ({"model": ["timm:resnet18"]}, "model takes text .* got list"),
                          ({"methods": [None]}, "methods takes text .* got NoneType None")):
        with pytest.raises(TypeError, match=f"^{shown}"):
            explain.Options(**fields)
    options = explain.Options(inputs=images / "im0.png", model="timm:test_resnet", pretrained=False,
                              methods="gradient", target=3)
    record = explain.run(options, tmp_path / "run")  # a path for the store: its folder
    assert record["summary"]["done"] == 1 and (tmp_path / "run" / "run.json").is_file()
    assert load_run(tmp_path / "run").record["inputs"][0]["attributions"][0]["target"] == 3


def test_a_dict_of_settings_is_its_key_value_items(images, tmp_path):
    """settings={"n_steps": 4} said "--set expects KEY=VALUE, got 'n_steps'" (the dict's keys were the items)."""
    from attrib.jobs import explain, sanity
    from attrib.runs import RunStore, load_run

    assert sanity.Options(settings={"ig.n_steps": 4, "abs": True}).settings == ["ig.n_steps=4", "abs=True"]
    options = explain.Options(inputs=images / "im0.png", model="timm:test_resnet", pretrained=False,
                              methods=["ig", "gradient"], settings={"ig.rule": "gausslegendre", "n_steps": 4},
                              preprocess={"size": 48})
    entry = explain.run(options, RunStore(tmp_path / "run"))
    assert [a["passes"] for a in load_run(tmp_path / "run").record["inputs"][0]["attributions"]] == [4, 1]
    assert entry["model"]["input_size"] == [48, 48]


def test_verbose_shows_the_traceback(run_cli, picky, bright_and_dark, tmp_path):
    result = run_cli("explain", bright_and_dark, "-M", picky, "-m", "gradient", "--out", tmp_path / "o", "-v")
    assert result.exit_code == 1 and "Traceback" in result.output and "picky model refuses" in result.output


def test_an_unexpected_error_outside_inputs_is_one_line(run_cli, images, tmp_path, monkeypatch):
    from attrib.jobs import explain

    def broken(*args, **kwargs):
        raise KeyError("internal")

    monkeypatch.setattr(explain, "prepare", broken)
    result = run_cli("explain", images, *TINY, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "unexpected KeyError" in result.output and "-v" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(KeyError):
        run_cli("explain", images, *TINY, "--out", tmp_path / "o", "-v")


def test_attrib_errors_are_the_user_errors():
    from attrib.data.datasets import DatasetError
    from attrib.data.images import InputError
    from attrib.data.text import TextInputError
    from attrib.errors import AttribError, UsageError
    from attrib.evaluate.diffroar import DiffRoarError
    from attrib.methods import UnknownMethodError
    from attrib.models import ModelError
    from attrib.runs import RunError

    for error in (DatasetError, InputError, TextInputError, DiffRoarError, UnknownMethodError, ModelError,
                  RunError, UsageError):
        assert issubclass(error, AttribError), error
    assert issubclass(UsageError, ValueError)  # library callers catching ValueError keep working


def test_durations_give_short_spans_to_a_tenth_and_long_ones_in_minutes():
    from attrib.errors import duration

    assert [duration(s) for s in (0.04, 3.26, 12.4, 89.4, 150)] == ["0.0 s", "3.3 s", "12 s", "89 s", "2.5 min"]


def test_old_run_folders_still_render(run_cli, images, tmp_path):
    out = tmp_path / "run"
    assert run_cli("explain", images, *TINY, "-m", "gradient", "--out", out, "-q").exit_code == 0
    record = json.loads((out / "run.json").read_text())
    record["command"] = record.pop("kind")  # attrib 0.1 said "command"
    (out / "run.json").write_text(json.dumps(record))
    result = run_cli("report", out, "-o", tmp_path / "r.html")
    assert result.exit_code == 0 and "gradient" in (tmp_path / "r.html").read_text()
    record["command"] = "from-the-future"
    (out / "run.json").write_text(json.dumps(record))
    result = run_cli("report", out, "-o", tmp_path / "r2.html")
    assert result.exit_code == 2 and "newer attrib" in result.output


def test_old_sanity_records_still_render(run_cli, tmp_path):
    out = tmp_path / "run"
    args = ("sanity", "-M", "sample:blockdigits-standard", "--n", "2", "-m", "ig", "--tests", "completeness")
    assert run_cli(*args, "--out", out, "-q").exit_code == 0
    record = json.loads((out / "run.json").read_text())
    record["configs"] = {m["method"]: m["config"] for m in record["methods"]}  # attrib 0.1: names + configs
    record["methods"] = list(record["configs"])
    (out / "run.json").write_text(json.dumps(record))
    assert run_cli("report", out, "-o", tmp_path / "r.html").exit_code == 0
    assert "integrated_gradients (<code>n_steps=32</code>" in (tmp_path / "r.html").read_text()


def test_a_run_folder_of_another_kind_is_refused_untouched(run_cli, images, text_models, tmp_path):
    """Writing one kind of run into another's folder would mix their files and replace its record."""
    out = tmp_path / "run"
    assert run_cli("explain", images / "im0.png", *TINY, "-m", "gradient", "--out", out, "-q").exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for command in (["sanity", "-M", "sample:blockdigits-standard", "-m", "gradient", "--tests", "completeness"],
                    ["diffroar", "-M", "sample:synthetic-standard", "-m", "gradient"],
                    ["explain-text", "good fun", "-M", text_models["clf"], "-m", "unk"]):
        result = run_cli(*command, "--out", out)
        assert result.exit_code == 2, result.output
        kind = "explain_text" if command[0] == "explain-text" else command[0]
        assert f"{out} holds an attrib explain run; write this {kind} run to another folder (--out)" in \
            " ".join(result.output.split())
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    again = run_cli("explain", images / "im1.png", *TINY, "-m", "gradient", "--out", out, "-q")
    assert again.exit_code == 0  # the same kind goes on


@pytest.mark.parametrize("args, said", [
    (["-M", "{long}"], "Error: {long}: File name too long"),  # was "unexpected OSError"
    (["-M", "timm:test_resnet", "--weights", "{long}.pt"], "Error: {long}.pt: File name too long"),
    (["-M", "timm:test_resnet", "--no-pretrained", "--out", "{tmp}/{long}"],  # was a traceback
     "Error: cannot write the run folder {tmp}/{long}: File name too long"),
    (["-M", "timm:test_resnet", "--no-pretrained", "--html", "{tmp}/{long}.html"],
     "Error: cannot write the report {tmp}/{long}.html: File name too long"),
])
def test_a_name_too_long_for_the_file_system_is_one_usage_line(run_cli, images, tmp_path, args, said):
    """A name over the file system's 255 bytes raised OSError from pathlib's checks (Python 3.11 ignores only
    missing files there): a traceback for --out and --html, "unexpected OSError" for a model or its weights."""
    long = "z" * 300
    filled = [a.format(long=long, tmp=tmp_path) for a in args]
    result = run_cli("explain", images / "im0.png", "-m", "gradient", *filled)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == said.format(long=long, tmp=tmp_path)
    assert "Traceback" not in result.output and "unexpected" not in result.output


@pytest.mark.parametrize("command, given", [
    (["explain", "{img}", "-M", ""], "-M"),  # explained with the default model
    (["explain", "{img}", *TINY, "--out="], "--out"),  # wrote into attrib-runs/<time>
    (["explain", "{img}", *TINY, "--html", " "], "--html"),  # wrote no report
    (["explain", "{img}", *TINY, "--target", ""], "--target"),  # explained the predicted class
    (["explain", "{img}", *TINY, "--inputs-from", ""], "--inputs-from"),  # read no list
    (["explain-text", "a film", "-M", "{tmp}", "--lm", ""], "--lm"),  # loaded bert-base-uncased from the hub
    (["diffroar", "--dataset", ""], "--dataset"),  # the sample model's own data set
    (["sanity", *TINY, "--versus", ""], "--versus"),
    (["report", "{tmp}", "-o", ""], "-o"),
])
def test_an_option_given_an_empty_value_is_refused_before_any_work(run_cli, images, tmp_path, command, given):
    """An option given "" (an unset shell variable) read as left out: its default took the place of what was
    meant, silently."""
    args = [a.format(img=images / "im0.png", tmp=tmp_path) for a in command]
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == \
        f"Error: {given} is empty (an unset shell variable?): give it a value, or leave it out"
    assert list(tmp_path.iterdir()) == [images]  # nothing written


def test_an_empty_input_fails_alone_instead_of_naming_the_current_folder(run_cli, images, tmp_path, monkeypatch):
    """`attrib explain "$UNSET"` explained every picture under the current folder (Path("") is ".")."""
    monkeypatch.chdir(images)
    result = run_cli("explain", "", "im1.png", *TINY, "-m", "gradient", "--out", tmp_path / "run", "--json")
    assert result.exit_code == 1
    assert "error: '': an empty name (an unset shell variable?): give an image, a folder or a glob" in result.output
    assert [e["path"] for e in parse_json(result)["inputs"]] == ["''", "im1.png"]  # im0.png was not taken
    text = run_cli("explain-text", "a film", "--pair", "", "-M", tmp_path / "none", "--out", tmp_path / "t")
    assert "--pair is empty" not in text.output  # an empty pair is its text's own error (its model is missing here)
