"""The Ray executor against the local one, on one session-scoped loopback cluster (see conftest.py):
same DiffROAR results (weights digests included) and the same explain run folder; retries after a crashed or
SIGKILLed worker; a killed driver's rerun runs only the missing jobs; GPU shares reach the tasks."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from attrib.evaluate.diffroar import DiffRoarConfig
from attrib.executors import ExecutorSpec
from attrib.jobs import diffroar, explain, explain_text
from attrib.jobs.common import Events
from attrib.models import load_model
from attrib.runs import RunStore
from tests.executors import ray_helpers

pytestmark = pytest.mark.usefixtures("ray_cluster")
SYNTHETIC = {"name": "synthetic", "n_train": 400, "n_test": 200}


@pytest.fixture(scope="module", autouse=True)
def _helpers_by_value():
    """Workers cannot import the tests: send the helpers' code with the calls."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(ray_helpers)
    yield
    ray.cloudpickle.unregister_pickle_by_value(ray_helpers)


def _ray(**kwargs):
    from attrib.executors.ray_cluster import RayExecutor

    return RayExecutor(ExecutorSpec("ray", **kwargs))


class _Wrapping:
    """A Ray executor whose every call goes through ``wrap(fn, *args)`` (crash and kill injection)."""

    def __init__(self, wrap):
        self.inner, self.wrap = _ray(), wrap
        self.name, self.remote, self.address, self.share = "ray", True, self.inner.address, self.inner.share

    def map_unordered(self, fn, calls):
        return self.inner.map_unordered(partial(self.wrap, fn), calls)


def _config(ks=(0.5,), seeds=1, epochs=3, device="cpu"):
    return DiffRoarConfig("sample:synthetic-standard", SYNTHETIC, ["gradient"], ks=list(ks), seeds=seeds,
                          epochs=epochs, device=device, retrain_device="cpu")


def _evaluate(out, executor, config=None):
    config = config or _config()
    return diffroar.evaluate(load_model(config.model), config, RunStore(out), Events(), executor=executor)


def _results(out: Path) -> dict[str, dict]:
    """Every result file of a run, without its timing."""
    results = {}
    for path in sorted((out / "jobs").glob("*.result.json")):
        result = json.loads(path.read_text())
        result.pop("seconds")
        results[path.name] = result
    return results


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_the_cluster_is_a_private_loopback_one(ray_cluster):
    import ray

    resources = ray.cluster_resources()
    assert resources["CPU"] == 2 and resources["GPU"] == 2
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert _ray().address.startswith("127.0.0.1:")


def test_diffroar_on_ray_equals_the_local_run_weights_included(tmp_path):
    config = _config(ks=(0.1, 0.5), seeds=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tasks' thread count: identical arithmetic
    try:
        local = _evaluate(tmp_path / "local", ExecutorSpec(), config)
    finally:
        torch.set_num_threads(threads)
    remote = _evaluate(tmp_path / "ray", _ray(), config)
    assert local["complete"] and remote["complete"] and local["jobs"] == 16
    a, b = _results(tmp_path / "local"), _results(tmp_path / "ray")
    assert len(a) == 16 and a == b
    assert len({r["weights_sha256"] for r in a.values()}) == 16  # every retrain is its own model
    assert local["results"] == remote["results"]


def test_diffroar_workers_retrain_on_the_drivers_data(tmp_path, monkeypatch):
    """The data set goes to the tasks through the object store: a worker reads no data set files (here the
    workers cannot build it at all: only the driver's loader, patched, knows it)."""
    from attrib.data.datasets import load_dataset

    nowhere = {"name": f"folder:{tmp_path / 'only-the-driver-has-it'}", "seed": 0}
    synthetic = load_dataset("synthetic", n_train=400, n_test=200)
    monkeypatch.setattr(diffroar, "dataset_of", lambda spec: synthetic if spec == nowhere else None)
    config = replace(_config(), dataset=nowhere)
    remote = _evaluate(tmp_path / "ray", _ray(), config)
    assert remote["complete"] and remote["jobs"] == 4
    job = json.loads(next((tmp_path / "ray" / "jobs").glob("gradient-*.result.json")).read_text())["job"]
    assert job["dataset"] == nowhere and job["data_sha256"] == synthetic.digest


def _shipped_to_nodes_without_them(monkeypatch, folder: Path) -> list:
    """Make the driver tell workers that the local files it ships lie under ``folder``, where nothing is (as on
    a node without them); the shipments sent (their written copies removed by :func:`_unwritten`)."""
    from attrib.jobs import shipping

    sent, real = [], shipping.ship

    def elsewhere(options, share):
        parcel = real(options, share)
        moved = tuple(replace(s, path=f"{folder}/{Path(s.path).name}") for s in parcel.shipments)
        sent.extend(moved)
        return replace(parcel, shipments=moved)

    monkeypatch.setattr(shipping, "ship", elsewhere)
    return sent


def _written(shipment) -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / "attrib-shipped" / shipment.digest[:32]


def _unwritten(sent: list) -> None:
    import shutil

    for shipment in sent:
        shutil.rmtree(_written(shipment), ignore_errors=True)


def test_diffroar_retrains_of_your_code_on_nodes_without_it(tmp_path, monkeypatch):
    """Your model code's file goes to the retrain tasks with them (here they are told it lies where nothing is)."""
    (tmp_path / "mlp.py").write_text("from torch import nn\n\ndef mlp():\n    return nn.Sequential(nn.Linear(10, 8), "
                                     "nn.ReLU(), nn.Linear(8, 2))\n")
    sent = _shipped_to_nodes_without_them(monkeypatch, tmp_path / "not-on-this-node")
    config = replace(_config(), model=f"py:{tmp_path}/mlp.py:mlp")
    try:
        record = diffroar.evaluate(load_model(config.model), config, RunStore(tmp_path / "ray"), Events(),
                                   executor=_ray())
        assert record["complete"] and [s.option for s in sent] == ["model"]
        assert (_written(sent[0]) / "mlp.py").is_file()
    finally:
        _unwritten(sent)


def test_a_job_whose_worker_crashes_is_retried_and_written_once(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    record = _evaluate(tmp_path / "run", _Wrapping(partial(ray_helpers.crash_once, str(marks),
                                                           "gradient-k0.5-top-s0")))
    assert (marks / "gradient-k0.5-top-s0.crashed").exists()  # the first attempt did die
    assert record["complete"] and record["jobs_done"] == record["jobs"] == 4
    assert sorted(p.name for p in (tmp_path / "run/jobs").glob("gradient-k0.5-top-s0*")) == \
        ["gradient-k0.5-top-s0.json", "gradient-k0.5-top-s0.result.json"]
    assert _leftovers(tmp_path / "run") == []


def test_a_worker_killed_mid_job_is_retried(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    job = "random-k0.5-bottom-s0"
    killer = threading.Thread(target=lambda: ray_helpers.kill_when_written(marks / f"{job}.pid"), daemon=True)
    killer.start()
    record = _evaluate(tmp_path / "run", _Wrapping(partial(ray_helpers.hang_once, str(marks), job)))
    killer.join(timeout=5)
    assert not killer.is_alive()
    assert record["complete"] and len(_results(tmp_path / "run")) == 4
    assert _leftovers(tmp_path / "run") == []


def test_a_killed_driver_reruns_only_the_missing_jobs(tmp_path, ray_cluster):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "attrib", "diffroar", "-M", "sample:synthetic-standard", "-d", "synthetic",
               "--n-train", "400", "--n-test", "200", "-m", "gradient", "--k", "0.1,0.3,0.5", "--seeds", "2",
               "--epochs", "20", "--executor", "ray", "--address", ray_cluster.address_info["gcs_address"],
               "--cpus-per-job", "1", "--out", str(out), "-q"]
    env = {k: v for k, v in os.environ.items()  # a fresh shell's: attrib finds the loopback mode and the token
           if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE")}
    driver = subprocess.Popen(command, env={**env, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("jobs/*.result.json"))) < 2 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    finished = driver.poll()
    driver.send_signal(signal.SIGKILL)
    assert finished is None, driver.communicate()[1][-2000:]
    driver.wait()
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("jobs/*.result.json")}
    assert 2 <= len(first) < 24, "the driver should die part-way"

    seen = []

    class Seen(Events):
        def item(self, result):
            seen.append(result["job"]["id"] + ".result.json")

    options = diffroar.Options("sample:synthetic-standard", dataset="synthetic", n_train=400, n_test=200,
                               methods=["gradient"], ks=[0.1, 0.3, 0.5], seeds=2, epochs=20, device="cpu",
                               executor=ExecutorSpec("ray", ray_cluster.address_info["gcs_address"]))
    record = diffroar.run(options, RunStore(out), Seen())
    assert record["complete"] and record["jobs"] == 24
    assert sorted(seen) == sorted(set(_results(out)) - set(first))  # only the missing ones ran
    assert {name: (out / "jobs" / name).stat().st_mtime_ns for name in first} == first  # none rewritten
    assert _leftovers(out) == []


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_a_ray_driver_as_ctrl_c_does(tmp_path, ray_cluster, name):
    """ray.init put its own SIGTERM handlers in place: the driver aborted (exit 134, a stack dump from Ray's core)
    instead of stopping as attrib's commands do (exit 143 or 129, what finished kept and said)."""
    from PIL import Image

    folder, out = tmp_path / "in", tmp_path / "run"
    folder.mkdir()
    for i in range(60):
        Image.new("RGB", (64, 64), (4 * i, 100, 255 - 4 * i)).save(folder / f"im{i:02d}.png")
    command = [sys.executable, "-m", "attrib", "explain", str(folder), "-M", "timm:test_resnet", "--no-pretrained",
               "-m", "ig", "--set", "n_steps=8", "--batch-size", "2", "--no-images", "--executor", "ray",
               "--address", ray_cluster.address_info["gcs_address"], "--out", str(out), "-q"]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE")}
    driver = subprocess.Popen(command, env={**env, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    records, deadline = out / "inputs.jsonl", time.monotonic() + 120
    while driver.poll() is None and time.monotonic() < deadline and (
            not records.is_file() or records.read_text().count("\n") < 2):
        time.sleep(0.02)
    driver.send_signal(getattr(signal, name))
    said = " ".join(driver.communicate(timeout=120)[1].split())
    assert driver.returncode == 128 + getattr(signal, name) and 2 <= records.read_text().count("\n") < 60, \
        said[-2000:]
    assert f"stopped by {name}; what finished is kept in {out}: the same command goes on from there" in said
    assert _leftovers(out) == []


def _images(folder: Path, n: int = 6) -> Path:
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40 + 8 * i, 56, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    hour_ago = time.time_ns() - 3600 * 10**9
    for path in folder.iterdir():  # (one written just before it is read keeps no time in its fingerprint)
        os.utime(path, ns=(hour_ago, hour_ago))
    return folder


def _run_folder(out: Path) -> tuple[list[dict], dict[str, dict[str, np.ndarray]], list[str]]:
    entries = [json.loads(line) for line in (out / "inputs.jsonl").read_text().splitlines()]
    for entry in entries:
        for a in entry["attributions"]:
            a.pop("seconds")
    arrays = {p.name: dict(np.load(p)) for p in sorted((out / "arrays").glob("*.npz"))}
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "run.json")
    return entries, arrays, files


def _explain_with_one_thread(options, out: Path) -> None:
    """A local run with a worker's thread count (one): the same arithmetic as the workers'."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        explain.run(options, RunStore(out))
    finally:
        torch.set_num_threads(threads)


def test_explain_on_ray_writes_the_local_run_folder(tmp_path):
    images = _images(tmp_path / "images")
    options = dict(inputs=[str(images)], methods=["gradient", "smoothgrad"], settings=["sg.n_samples=3"],
                   device="cpu", batch_size=2)
    _explain_with_one_thread(explain.Options(**options), tmp_path / "local")
    record = explain.run(explain.Options(**options, executor=ExecutorSpec("ray", workers=2)),
                         RunStore(tmp_path / "ray"))
    assert record["summary"]["done"] == 6 and record["summary"]["failed"] == 1
    local, remote = _run_folder(tmp_path / "local"), _run_folder(tmp_path / "ray")
    assert local[0] == remote[0]  # the records, in input order, the broken file's error included
    assert local[1].keys() == remote[1].keys() and len(local[1]) == 6
    for name in local[1]:
        for method, values in local[1][name].items():
            assert np.array_equal(values, remote[1][name][method])
    assert local[2] == remote[2]  # the same files (PNGs, overview, arrays, inputs.jsonl)
    assert (tmp_path / "ray/images/im0.png/gradient_overlay.png").read_bytes() == \
        (tmp_path / "local/images/im0.png/gradient_overlay.png").read_bytes()


def test_explain_on_ray_sends_local_files_to_workers_without_them(tmp_path, monkeypatch):
    """Workers on nodes without the driver's --weights and --labels files get their bytes from the object store
    (here the workers are told the files lie where nothing is), and explain as the local run does."""
    import timm

    images = _images(tmp_path / "images", n=2)
    torch.save(timm.create_model("test_resnet", num_classes=3).state_dict(), tmp_path / "tuned.pt")
    (tmp_path / "labels.txt").write_text("normal\npneumonia\ncovid\n")
    options = dict(inputs=[str(images)], model="timm:test_resnet", weights=str(tmp_path / "tuned.pt"),
                   labels=str(tmp_path / "labels.txt"), methods=["gradient"], device="cpu")
    _explain_with_one_thread(explain.Options(**options), tmp_path / "local")
    sent = _shipped_to_nodes_without_them(monkeypatch, tmp_path / "not-on-this-node")
    try:
        explain.run(explain.Options(**options, executor=ExecutorSpec("ray", workers=1)), RunStore(tmp_path / "ray"))
        assert [s.option for s in sent] == ["weights", "labels"]
        assert (_written(sent[0]) / "tuned.pt").read_bytes() == (tmp_path / "tuned.pt").read_bytes()
        assert (_written(sent[1]) / "labels.txt").read_bytes() == (tmp_path / "labels.txt").read_bytes()
    finally:
        _unwritten(sent)
    local, remote = _run_folder(tmp_path / "local"), _run_folder(tmp_path / "ray")
    assert local[0] == remote[0] and {p["label"] for p in remote[0][0]["predictions"]} <= {"normal", "pneumonia",
                                                                                            "covid"}
    for name in local[1]:
        assert np.array_equal(local[1][name]["gradient"], remote[1][name]["gradient"])


def test_explain_on_ray_explains_the_classes_a_table_gives(tmp_path, monkeypatch):
    """Each input's class is found where the paths were given (relative to this folder here), not on a worker,
    whose working folder is another; an input the table leaves out fails alone, with the same line."""
    monkeypatch.chdir(tmp_path)
    _images(tmp_path / "images", n=3)
    (tmp_path / "labels.csv").write_text("images/im0.png,7\nim1.png,tabby cat\nbroken.png,3\n")
    options = explain.Options(inputs=["images"], model="timm:test_resnet", pretrained=False, methods=["gradient"],
                              device="cpu", target="labels.csv",
                              executor=ExecutorSpec("ray", workers=2), batch_size=2)
    record = explain.run(options, RunStore(tmp_path / "ray"))
    entries = {e["name"]: e for e in _run_folder(tmp_path / "ray")[0]}
    assert record["summary"]["done"] == 2 and record["target"] == "table"
    assert [a["target"] for a in entries["images/im0.png"]["attributions"]] == [7]
    assert [a["target"] for a in entries["images/im1.png"]["attributions"]] == [281]
    assert entries["images/im2.png"]["error"] == "images/im2.png: --target labels.csv gives it no class"
    assert entries["images/broken.png"]["error"] == "images/broken.png: not an image Pillow can read"
    record = explain.run(replace(options, only="right"), RunStore(tmp_path / "right"))  # shards carry --only
    entries = {e["name"]: e for e in _run_folder(tmp_path / "right")[0]}
    for name in ("images/im0.png", "images/im1.png"):
        right = entries[name]["predictions"][0]["index"] == entries[name]["given"]
        assert entries[name]["status"] == ("ok" if right else "excluded")
        arrays = tmp_path / "right" / "arrays" / f"{entries[name]['id']}.npz"
        assert bool(entries[name]["attributions"]) == right == arrays.exists()
    assert record["summary"]["done"] + record["summary"]["excluded"] == 2
    record = explain.run(replace(options, target="pred", truth="labels.csv", only="wrong", versus="truth"),
                         RunStore(tmp_path / "why"))  # the wrong ones, as what they were taken for, not what they are
    entries = {e["name"]: e for e in _run_folder(tmp_path / "why")[0]}
    for name in ("images/im0.png", "images/im1.png"):
        best, given = entries[name]["predictions"][0]["index"], entries[name]["given"]
        assert [(a["target"], a["versus"]) for a in entries[name]["attributions"]] == \
            ([(best, given)] if best != given else [])


def test_gpu_shares_reach_the_tasks(tmp_path):
    whole = tmp_path / "whole"
    whole.mkdir()
    with _ray(gpus=1.0, cpus=0.5) as executor:
        seen = dict(executor.map_unordered(ray_helpers.devices_together, [(str(whole), i, 2) for i in range(2)]))
    assert sorted(device for device, _ in seen.values()) == ["0", "1"]  # one whole GPU each

    halves = tmp_path / "halves"
    halves.mkdir()
    with _ray(gpus=0.5, cpus=0.5) as executor:
        seen = dict(executor.map_unordered(ray_helpers.devices_together, [(str(halves), i, 4) for i in range(4)]))
    assert Counter(device for device, _ in seen.values()) == {"0": 2, "1": 2}  # two jobs on each device
    assert all(threads == 1 for _, threads in seen.values())


def test_a_stateful_worker_that_crashes_is_rebuilt_from_the_shared_arguments(tmp_path):
    weights = torch.ones(300_000)  # 1.2 MB: held in the object store, not copied into each worker's constructor
    with _ray(workers=2) as executor:
        out = list(executor.map_ordered(ray_helpers.ScaledWorker, (weights, str(tmp_path), 3), "scale", range(8)))
    assert [value for value, _ in out] == [300_000.0 * i for i in range(8)]  # all, in order, the crashed one too
    assert out[3][1] != int((tmp_path / "crashed").read_text())  # item 3 was answered by the restarted worker


def test_an_error_raised_by_the_work_reaches_the_driver_as_itself():
    with _ray() as executor:
        with pytest.raises(ValueError, match="invalid literal"):
            list(executor.map_unordered(int, [("12",), ("twelve",)]))


def test_explain_text_on_ray_equals_the_local_run(tmp_path, text_models, monkeypatch):
    """Shards of texts to workers that load the classifier and masked LM once each: the same entries in the same
    order as a local run (OLM's and OLM-S's draws depend on a text's position, which the shards carry), the empty
    text's one-line error included; a rerun into the folder reuses every text."""
    texts = ["the movie was great", "a dull , boring film", "   ", "an excellent and moving story",
             "bad jokes and worse acting", "it was fine"] * 2
    options = dict(texts=texts, model=text_models["clf"], lm=text_models["lm"], methods=["olm", "olm_s", "unk", "ig"],
                   n_samples=8, n_steps=8, device="cpu")
    local = explain_text.run(explain_text.Options(**options), RunStore(tmp_path / "local"))
    spec = ExecutorSpec("ray", workers=2)

    def not_here(*args):
        raise AssertionError("a text was explained in the driver")

    monkeypatch.setattr(explain_text, "explain_one", not_here)  # the workers import their own, unpatched
    remote = explain_text.run(explain_text.Options(**options, executor=spec), RunStore(tmp_path / "ray"))

    def entries(record):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in record["texts"]]

    assert entries(remote) == entries(local) and len(remote["texts"]) == 12
    assert [e["status"] for e in remote["texts"]].count("error") == 2
    assert remote["device"] == "cpu" and remote["correlations"] == local["correlations"]
    again = explain_text.run(explain_text.Options(**options, executor=spec), RunStore(tmp_path / "ray"))
    assert again["already_done"] == 10 and entries(again) == entries(local)
