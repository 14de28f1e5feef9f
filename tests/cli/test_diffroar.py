"""attrib diffroar: the --json schema, files, resume, plan-only + workers, errors, the HTML section."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import parse_json

SYN = ["-M", "sample:synthetic-robust", "-m", "gradient", "--k", "0.1,0.5", "--n-train", "400", "--n-test", "200",
       "--epochs", "5"]


def test_json_schema_and_run_folder(run_cli, tmp_path):
    out = tmp_path / "run"
    result = run_cli("diffroar", *SYN, "--out", out, "--json", "--html", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert set(data) == {"model", "dataset", "results", "warnings", "jobs", "jobs_done", "out_dir"}  # no null block
    assert data["jobs"] == data["jobs_done"]  # on synthetic
    assert data["model"] == "sample:synthetic-robust" and data["dataset"] == "synthetic"
    assert {(r["method"], r["k"]) for r in data["results"]} == {(m, k) for m in ("gradient", "random")
                                                                for k in (0.1, 0.5)}
    for r in data["results"]:
        assert set(r) == {"method", "k", "diffroar", "std", "acc_top", "acc_bottom"}
        assert abs(r["diffroar"] - (r["acc_top"] - r["acc_bottom"])) < 1e-9
    assert (out / "run.json").is_file() and (out / "diffroar.png").is_file()
    assert len(list((out / "jobs").glob("*.result.json"))) == 8
    assert "8 retrains = 2 methods x 2 k x 2 sides x 1 seed" in result.stderr
    html = (tmp_path / "r.html").read_text()
    assert "DiffROAR" in html and "data:image/png;base64," in html and "<script" not in html
    record = json.loads((out / "run.json").read_text())
    assert record["warnings"] == data["warnings"]  # what the terminal warned of, kept for the report
    assert all(" ".join(w.split()) in " ".join(result.stderr.split()) for w in data["warnings"])
    record["warnings"] = ["the random control is +0.300 at k = 0.1: <retrain noise>"]  # as the terminal said it
    (out / "run.json").write_text(json.dumps(record))
    assert run_cli("report", out, "-o", tmp_path / "w.html").exit_code == 0
    html = (tmp_path / "w.html").read_text()
    assert "warning: the random control is +0.300 at k = 0.1: &lt;retrain noise&gt;" in html


def test_blockdigits_json_has_null_block_shares(run_cli, tmp_path):
    result = run_cli("diffroar", "-m", "gradient", "--k", "0.5", "--n-train", "200", "--n-test", "100",
                     "--epochs", "1", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    shares = parse_json(result)["null_block_share"]
    assert set(shares) == {"gradient", "random"} and 0 < shares["gradient"] < 0.5 < shares["random"] + 0.02


def test_plan_only_then_workers_then_collect(run_cli, tmp_path):
    first = run_cli("diffroar", *SYN, "--out", tmp_path, "--plan-only", "--json")
    assert first.exit_code == 0 and "python -m attrib.jobs.diffroar" in first.stderr
    assert "8 still to run" in first.stderr and "again without --plan-only" in first.stderr
    planned = parse_json(first)  # --json after --plan-only: what is left, not nothing
    assert (planned["jobs"], planned["jobs_done"], planned["results"]) == (8, 0, [])
    jobs = sorted(str(p) for p in (tmp_path / "jobs").glob("*-s0.json"))
    assert len(jobs) == 8 and not list((tmp_path / "jobs").glob("*.result.json"))
    for half in (jobs[:4], jobs[4:]):  # e.g. two machines
        subprocess.run([sys.executable, "-m", "attrib.jobs.diffroar", *half], check=True, capture_output=True)
    collect = run_cli("diffroar", *SYN, "--out", tmp_path, "--json")
    assert collect.exit_code == 0 and "0 to run" in collect.stderr
    assert len(parse_json(collect)["results"]) == 4
    replanned = run_cli("diffroar", *SYN, "--out", tmp_path, "--plan-only")  # all done: the results, no plan
    assert replanned.exit_code == 0 and "job files" not in replanned.stderr and "DiffROAR" in replanned.stdout
    ray = run_cli("diffroar", *SYN, "--out", tmp_path, "--plan-only", "--executor", "ray")
    assert "warning: --executor ray is not used with --plan-only" in ray.stderr
    (tmp_path / "jobs" / "bad.json").write_text("{")
    worker = subprocess.run([sys.executable, "-m", "attrib.jobs.diffroar", str(tmp_path / "gone.json"),
                             str(tmp_path / "jobs" / "bad.json"), jobs[0]], capture_output=True, text=True)
    assert worker.returncode == 1 and "Traceback" not in worker.stderr  # a bad job file is one line; the rest run
    assert worker.stderr.splitlines() == [f"error: {tmp_path / 'gone.json'}: No such file or directory",
                                          f"error: {tmp_path / 'jobs' / 'bad.json'}: not a job file of attrib "
                                          "diffroar (JSONDecodeError: Expecting property name enclosed in double "
                                          "quotes: line 1 column 2 (char 1))"]
    assert worker.stdout == f"{Path(jobs[0]).stem}: already done\n"
    worker = subprocess.run([sys.executable, "-m", "attrib.jobs.diffroar"], capture_output=True, text=True)
    assert worker.returncode == 2 and worker.stderr.startswith("usage: python -m attrib.jobs.diffroar")
    assert (tmp_path / "diffroar.png").is_file()
    wider = [{"0.1,0.5": "0.1,0.5,0.9"}.get(a, a) for a in SYN]
    assert run_cli("diffroar", *wider, "--out", tmp_path, "--plan-only").exit_code == 0
    assert not (tmp_path / "diffroar.png").exists()  # the plot of fewer jobs is not this plan's
    more = sorted(str(p) for p in (tmp_path / "jobs").glob("*-s0.json") if str(p) not in jobs)
    assert len(more) == 4 and all("0.9" in Path(p).name for p in more)
    subprocess.run([sys.executable, "-m", "attrib.jobs.diffroar", *more], check=True, capture_output=True)
    assert run_cli("diffroar", *SYN, "--out", tmp_path, "--plan-only").exit_code == 0
    planned = sorted(str(p) for p in (tmp_path / "jobs").glob("*.json") if not p.name.endswith(".result.json"))
    assert planned == sorted([*jobs, str(tmp_path / "jobs" / "bad.json")])  # none a worker's glob would run now
    again = run_cli("diffroar", *wider, "--out", tmp_path, "--plan-only")  # the wider plan's results still count
    assert again.exit_code == 0 and "12 retrains" in again.stderr and "(12 already done" in again.stderr


def test_list_options_may_be_repeated(run_cli, tmp_path):
    """--k 0.1 --k 0.5 kept only the last k (click's rule for a repeated option), silently."""
    from attrib.cli.common import listed

    assert listed(("0.1", " 0.2,0.3 ", "")) == ["0.1", "0.2", "0.3"] and listed("a,b") == ["a", "b"]
    assert listed(None) == listed(()) == []
    args = [a for a in SYN if a != "0.1,0.5"]
    args.insert(args.index("--k") + 1, "0.1")
    planned = run_cli("diffroar", *args, "--k", "0.5", "--classes", "0", "--classes", "1", "--out", tmp_path,
                      "--plan-only", "--json")
    assert planned.exit_code == 0 and parse_json(planned)["jobs"] == 8  # 2 methods x 2 k x 2 sides
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["config"]["ks"] == [0.1, 0.5] and record["dataset"]["classes"] == [0, 1]
    assert "k=1 keeps" not in planned.stderr
    whole = run_cli("diffroar", *SYN, "--k", "1", "--out", tmp_path / "whole", "--plan-only")
    assert whole.exit_code == 0 and "warning: k=1 keeps every coordinate on both sides, so its DiffROAR is 0" \
        in whole.stderr


def test_usage_errors_exit_2_with_one_line(run_cli, tmp_path):
    cases = [(["--k", "0,0.1"], "each k must be a fraction"),
             (["--k", "abc"], "comma-separated fractions"),
             (["--dataset", "imagenet"], "unknown data set 'imagenet'"),
             (["-M", "sample:synthetic-robust", "--dataset", "blockdigits"], "cannot take blockdigits inputs"),
             (["-m", "nosuch"], "unknown method"),
             (["-M", "sample:nope"], "unknown sample model"),
             (["--classes", "x"], "blockdigits has no class 'x'; its classes: 0, 1, 2"),
             (["-M", "sample:synthetic-standard", "-m", "mg_group"],  # was "unexpected ValueError" after the start
              "moreaugrad_group takes images (C, H, W) only, as configured (its penalty acts on square pixel blocks); "
              "synthetic's inputs, of shape (10,), are not"),
             (["-M", "timm:test_resnet", "--no-pretrained"], "--dataset is required")]
    for args, message in cases:
        result = run_cli("diffroar", *args, "--out", tmp_path / "x")
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_report_command_renders_a_diffroar_run(run_cli, tmp_path):
    assert run_cli("diffroar", *SYN, "--out", tmp_path / "run", "-q").exit_code == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    record["model"]["name"] = "<b>evil</b>"
    (tmp_path / "run" / "run.json").write_text(json.dumps(record))
    result = run_cli("report", tmp_path / "run", "-o", tmp_path / "r.html")
    assert result.exit_code == 0
    html = (tmp_path / "r.html").read_text()
    assert "&lt;b&gt;evil&lt;/b&gt;" in html and "<b>evil</b>" not in html


def _colour_folder(root, n: int) -> None:
    """An image folder of two classes, ``n`` shades of red and of blue."""
    from PIL import Image

    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (32, 32), tuple(max(0, c - 15 * i) for c in colour)).save(root / label / f"{i}.png")


def test_timm_architecture_on_an_image_folder(run_cli, tmp_path):
    _colour_folder(tmp_path / "data", 4)
    result = run_cli("diffroar", "-M", "timm:test_resnet", "--no-pretrained", "--dataset",
                     f"folder:{tmp_path / 'data'}", "--classes", "Red,blue", "-m", "gradient", "--k", "0.5",
                     "--epochs", "1", "--out", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert data["dataset"].startswith("folder:") and len(data["results"]) == 2 and "null_block_share" not in data
    (tmp_path / "data" / "red" / "broken.png").write_bytes(b"not a png")
    result = run_cli("diffroar", "-M", "timm:test_resnet", "--no-pretrained", "--dataset",
                     f"folder:{tmp_path / 'data'}", "-m", "gradient", "--k", "0.5", "--epochs", "1", "--out",
                     tmp_path / "run2")
    said = "".join(result.output.split())  # a long path may be wrapped anywhere
    assert result.exit_code == 1 and "error:leftoutofthedataset:" in said and "broken.png:notanimage" in said
    assert "DiffROAR" in said  # the evaluation ran without it
    # a 1000-class model of random weights on a 2-class folder: the warning says why it has not learned it
    assert "hasnotlearned" in said and "(ithas1000classes,thedataset2:giveit--weightstrainedonfolder:" in said
    assert "testsplitholds2examples:eachaccuracymovesinstepsof50%,toocoarsetotellmethodsapart" in said
    shutil.copytree(tmp_path / "data" / "red", tmp_path / "reds" / "red")  # one class folder (--classes says so)
    one = run_cli("diffroar", "-M", "timm:test_resnet", "--no-pretrained", "--dataset", f"folder:{tmp_path / 'reds'}",
                  "-m", "gradient", "--k", "0.5", "--epochs", "1", "--out", tmp_path / "run3")
    assert one.exit_code == 2 and "its training examples are all of one class; DiffROAR retrains a classifier, " \
        "which needs two classes or more" in " ".join(one.output.split())  # it retrained, and said chance was 1.0


def test_what_was_assumed_of_a_models_pictures_is_said_once(run_cli, tmp_path, monkeypatch):
    """A model of your own code on a folder: the warning that attrib assumes how it reads pictures came twice,
    once at planning and again when the retrains built its architecture."""
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    _colour_folder(tmp_path / "data", 3)
    (tmp_path / "own.py").write_text("from torch import nn\n\ndef small():\n    return nn.Sequential(nn.Conv2d(3, 4, "
                                     "3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n")
    result = run_cli("diffroar", "-M", f"{tmp_path / 'own.py'}:small", "--dataset", f"folder:{tmp_path / 'data'}",
                     "-m", "gradient", "--k", "0.5", "--epochs", "1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    said = "".join(result.output.split())
    assert said.count("saysnothingofhowitreadspictures") == 1 and said.count("testsplitholds1example:") == 1
    kept = json.loads((tmp_path / "run" / "run.json").read_text())["warnings"]  # for the report, which says them
    assert "says nothing of how it reads pictures" in kept[0] and "test split holds 1 example:" in kept[1]


def test_retrains_build_the_head_the_weights_have(run_cli, tmp_path):
    """With --weights of a 2-class timm model the retrains were built from the spec alone, with timm's 1000
    classes: on a 2-class folder every retrained model scored 0.000 (train accuracy too)."""
    import json

    import timm
    import torch

    from attrib.jobs.diffroar import _architecture

    _colour_folder(tmp_path / "data", 3)
    torch.save(timm.create_model("test_resnet", num_classes=2).state_dict(), tmp_path / "two.pt")
    result = run_cli("diffroar", "-M", "timm:test_resnet", "--weights", tmp_path / "two.pt", "--dataset",
                     f"folder:{tmp_path / 'data'}", "-m", "gradient", "--k", "0.5", "--epochs", "1", "--out",
                     tmp_path / "run")
    assert result.exit_code == 0, result.output
    job = json.loads((tmp_path / "run" / "jobs" / "gradient-k0.5-top-s0.json").read_text())
    assert job["architecture"] == {"num_classes": 2, "in_chans": 3}
    fresh = _architecture(job["model"], json.dumps(job["architecture"]))().eval()
    assert fresh(torch.zeros(1, 3, 32, 32)).shape == (1, 2)


def test_a_folder_is_read_at_the_models_size_and_resized_on_request(run_cli, tmp_path):
    """Folders were read at 64 px with mean = std = 0.5 whatever the model: a ViT could not take them."""
    import json

    _colour_folder(tmp_path / "data", 3)
    common = ("diffroar", "-M", "timm:vit_tiny_patch16_224", "--no-pretrained", "--dataset", f"folder:{tmp_path / 'data'}",
              "-m", "gradient", "--k", "0.5", "--epochs", "1")
    result = run_cli(*common, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    job = json.loads((tmp_path / "run" / "jobs" / "gradient-k0.5-top-s0.json").read_text())
    assert job["dataset"]["preprocess"]["size"] == [224, 224] and "image_size" not in job["dataset"]
    small = run_cli(*common, "--image-size", "64", "--out", tmp_path / "small")
    said = " ".join(small.output.split())
    assert small.exit_code == 2 and "cannot take" in said and "inputs of shape (3, 64, 64)" in said
    assert said.endswith("; resize its pictures to the model's with --image-size 224")
    tuned = run_cli("diffroar", "-M", "timm:test_resnet", "--no-pretrained", "--dataset", f"folder:{tmp_path / 'data'}",
                    "-m", "gradient", "--k", "0.5", "--preprocess", "size=40", "--preprocess", "mean=0.5",
                    "--plan-only", "--out", tmp_path / "tuned")  # a fine-tune's own way of reading pictures
    assert tuned.exit_code == 0, tuned.output
    job = json.loads((tmp_path / "tuned" / "jobs" / "gradient-k0.5-top-s0.json").read_text())
    assert job["dataset"]["preprocess"]["size"] == [40, 40] and job["dataset"]["preprocess"]["mean"] == [0.5] * 3


def test_accuracies_at_chance_are_warned_about():
    import torch

    from attrib.jobs.diffroar import _chance_warnings

    data = type("D", (), {"test_y": torch.tensor([0, 0, 0, 1]), "name": "d", "labels": ["a", "b"]})()  # chance 0.75
    model = {"n_classes": 2}
    learned = {"model": model, "model_test_accuracy": 0.9,
               "results": [{"method": m, "acc_top": 0.9, "acc_bottom": 0.6} for m in ("gradient", "random")]}
    assert _chance_warnings(learned, data) == []
    said = _chance_warnings({"model": model, "model_test_accuracy": 0.76,
                             "results": [{"method": "random", "acc_top": 0.75, "acc_bottom": 0.5}]}, data)
    assert len(said) == 2 and "chance is 0.750" in said[0] and "classes" not in said[0]
    assert "no retrained model beat chance (best test accuracy 0.750" in said[1]
    # a method's masks learned (from their shapes?), the random control's did not: said of the control
    control = _chance_warnings({"model": model, "model_test_accuracy": 0.9,
                                "results": [{"method": "gradient", "acc_top": 1.0, "acc_bottom": 0.5},
                                            {"method": "random", "acc_top": 0.5, "acc_bottom": 0.75}]}, data)
    assert len(control) == 1 and control[0].startswith("no retrain of the random control beat chance (best test "
                                                       "accuracy 0.750, chance 0.750)")
    other = _chance_warnings({"model": {"n_classes": 10}, "model_test_accuracy": 0.0, "results": []}, data)
    assert other == ["the evaluated model's test accuracy is 0.000, chance is 0.750: its attributions explain a "
                     "model that has not learned d (it has 10 classes, the data set 2: give it --weights trained "
                     "on d)"]


def test_your_own_architecture_is_retrained(run_cli, tmp_path, monkeypatch):
    """`-M mlp.py:MLP(features=10)` on the synthetic set: a model of vectors from the user's code, evaluated and
    retrained as its own class; no warning about how it reads pictures, since it reads none."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "mlp.py").write_text("from torch import nn\n\nBUILT = []\n\nclass MLP(nn.Sequential):\n    def "
                                     "__init__(self, features):\n        BUILT.append(self)\n        super().__init__("
                                     "nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, 2))\n")
    spec = f"{tmp_path / 'mlp.py'}:MLP(features=10)"
    result = run_cli("diffroar", "-M", spec, "--dataset", "synthetic", "-m", "gradient", "--k", "0.5",
                     "--n-train", "200", "--n-test", "100", "--epochs", "2", "--out", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.output
    assert parse_json(result)["model"] == f"py:{spec}" and "reads pictures" not in result.output
    code = str(tmp_path / "mlp.py")
    built = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == code).BUILT
    assert len(built) >= 1 + 4 and len({id(m) for m in built}) == len(built)  # the evaluated model + 4 retrains
    (tmp_path / "mlp.py").write_text((tmp_path / "mlp.py").read_text().replace("16", "12"))  # the code edited
    again = run_cli("diffroar", "-M", spec, "--dataset", "synthetic", "-m", "gradient", "--k", "0.5",
                    "--n-train", "200", "--n-test", "100", "--epochs", "2", "--out", tmp_path / "run")
    assert again.exit_code == 0 and "4 to run" in again.stderr  # every retrain: the architecture is another


def test_a_rerun_with_other_attributions_retrains_again(run_cli, tmp_path):
    """Retrain results are of masks made from the attributions: when other method options (or other weights)
    make other attributions, the retrains run again rather than being taken as done."""
    import torch

    base = ["diffroar", "-M", "sample:synthetic-standard", "-m", "gradient", "--k", "0.5", "--n-train", "100",
            "--n-test", "50", "--epochs", "1", "--out", tmp_path / "run"]
    assert run_cli(*base).exit_code == 0
    again = run_cli(*base)
    assert "(4 already done in" in again.stderr and "0 to run" in again.stderr
    other = run_cli(*base, "--set", "abs=true")
    assert other.exit_code == 0 and "2 to run" in other.stderr  # gradient's two; random's are as they were
    from attrib.models import load_model

    weights = tmp_path / "w.pt"
    module = load_model("sample:synthetic-standard").module
    torch.save({k: v * 2 for k, v in module.state_dict().items()}, weights)
    assert "2 to run" in run_cli(*base, "--set", "abs=true", "--weights", weights).stderr
    assert "0 to run" in run_cli(*base, "--set", "abs=true", "--weights", weights).stderr


def test_a_job_of_your_own_model_runs_from_another_folder(run_cli, tmp_path, monkeypatch):
    """The job files name the code by its absolute path, so that `python -m attrib.jobs.diffroar` finds it
    wherever it runs (another folder, another machine sharing the files)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    Path("mlp.py").write_text("from torch import nn\n\ndef mlp():\n    return nn.Sequential(nn.Linear(10, 8), "
                              "nn.ReLU(), nn.Linear(8, 2))\n")
    planned = run_cli("diffroar", "-M", "mlp.py:mlp", "--dataset", "synthetic", "-m", "gradient", "--k", "0.5",
                      "--n-train", "100", "--n-test", "50", "--epochs", "1", "--out", "run", "--plan-only")
    assert planned.exit_code == 0, planned.output
    job = sorted((tmp_path / "run" / "jobs").glob("gradient-*.json"))[0]
    assert json.loads(job.read_text())["model"] == f"py:{tmp_path / 'mlp.py'}:mlp"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-m", "attrib.jobs.diffroar", str(job)], cwd=elsewhere,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert job.with_name(job.name.replace(".json", ".result.json")).is_file()


def test_a_data_set_edited_in_place_is_evaluated_again(run_cli, tmp_path):
    """Attributions and retrain results are of the data they were made from: after an image of a folder data set
    is replaced, they are made again; a job planned before the edit refuses the edited data."""
    from PIL import Image

    _colour_folder(tmp_path / "data", 3)
    base = ["diffroar", "-M", "timm:test_resnet", "--no-pretrained", "--dataset", f"folder:{tmp_path / 'data'}",
            "-m", "gradient", "--k", "0.5", "--epochs", "1", "--out", tmp_path / "run"]
    assert "4 to run" in run_cli(*base).stderr
    assert "0 to run" in run_cli(*base).stderr
    digest = json.loads((tmp_path / "run" / "run.json").read_text())["dataset"]["sha256"]
    Image.new("RGB", (32, 32), (20, 220, 20)).save(tmp_path / "data" / "red" / "0.png")  # same name, other pixels
    assert "4 to run" in run_cli(*base).stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["dataset"]["sha256"] not in (digest, None)
    planned = run_cli(*base, "--set", "abs=true", "--plan-only")
    assert "2 still to run" in planned.stderr
    Image.new("RGB", (32, 32), (220, 220, 20)).save(tmp_path / "data" / "red" / "0.png")
    job = sorted((tmp_path / "run" / "jobs").glob("gradient-*.json"))[0]
    worker = subprocess.run([sys.executable, "-m", "attrib.jobs.diffroar", str(job)], capture_output=True, text=True)
    assert worker.returncode == 1 and len(worker.stderr.splitlines()) == 1
    assert f"error: {job}: folder:" in worker.stderr and "is not the data set this job was planned with" in \
        worker.stderr


def test_damaged_files_of_the_run_folder_are_made_again(run_cli, tmp_path):
    """A job, result or attributions file that cannot be read (edited by hand, a damaged disk) gave "unexpected
    JSONDecodeError" (or BadZipFile) and stopped the run; each is now made again, and only the retrain whose result
    was lost runs (a job file written again is the same job: its result stands)."""
    base = ["diffroar", "-M", "sample:synthetic-standard", "-m", "gradient", "--k", "0.5", "--n-train", "100",
            "--n-test", "50", "--epochs", "1", "--out", tmp_path / "run", "--json"]
    first = run_cli(*base)
    assert first.exit_code == 0
    jobs = tmp_path / "run" / "jobs"
    (jobs / "gradient-k0.5-top-s0.result.json").write_text("garbage")
    (jobs / "random-k0.5-top-s0.json").write_bytes(b"\xff\xfe")
    again = run_cli(*base)
    assert again.exit_code == 0 and "1 to run" in again.stderr, again.output
    assert parse_json(again)["results"] == parse_json(first)["results"]
    cache = tmp_path / "run" / "attributions" / "gradient.npz"
    kept = cache.read_bytes()
    cache.write_bytes(kept[:30])  # cut short
    remade = run_cli(*base)
    assert remade.exit_code == 0 and "0 to run" in remade.stderr and cache.read_bytes() == kept, remade.output
    assert parse_json(remade)["results"] == parse_json(first)["results"]
