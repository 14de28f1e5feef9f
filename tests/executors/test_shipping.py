"""Local files a job names, sent to cluster workers: a worker's own copy where it is the same, else the driver's."""

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import pytest

from attrib.jobs import explain_text
from attrib.jobs.explain import Options
from attrib.jobs.shipping import ship


def _here(files):
    return files  # a local executor's share()


@pytest.fixture
def driver(tmp_path, monkeypatch):
    """A driver's folder of local files, and a worker's temp folder of its own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "worker-tmp"))
    (tmp_path / "worker-tmp").mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.pt").write_bytes(b"weights")
    (tmp_path / "labels.txt").write_text("a\nb\n")
    (tmp_path / "nets.py").write_text("net = None\n")
    clf = tmp_path / "clf"
    (clf / "checkpoint-500").mkdir(parents=True)
    (clf / "config.json").write_text("{}")
    (clf / "model.safetensors").write_bytes(b"tensors")
    (clf / ".cache").write_text("hidden")
    (clf / "checkpoint-500" / "model.safetensors").write_bytes(b"old")
    return tmp_path


def test_a_worker_with_the_same_files_reads_its_own(driver):
    parcel = ship(Options(["a.jpg"], model="nets.py:Net(n=3)", weights="w.pt", labels="labels.txt"), _here)
    sent = parcel.options
    assert (sent.model, sent.weights, sent.labels) == \
        (f"py:{driver}/nets.py:Net(n=3)", f"{driver}/w.pt", f"{driver}/labels.txt")
    assert parcel.opened() == sent and not list((driver / "worker-tmp").iterdir())  # nothing written


def test_a_worker_whose_copy_differs_or_is_missing_reads_the_drivers(driver):
    parcel = ship(Options(["a.jpg"], model="clf", weights="w.pt", labels="labels.txt"), _here)
    (driver / "w.pt").write_bytes(b"other weights")  # this worker's copy is not the driver's
    (driver / "labels.txt").unlink()
    (driver / "clf" / "config.json").write_text('{"edited": true}')
    opened = parcel.opened()
    assert opened.weights != f"{driver}/w.pt" and open(opened.weights, "rb").read() == b"weights"
    assert opened.weights.endswith("/w.pt") and opened.weights.startswith(f"{driver}/worker-tmp/attrib-shipped/")
    assert open(opened.labels).read() == "a\nb\n"
    folder = sorted(p.name for p in Path(opened.model).iterdir())
    assert folder == ["config.json", "model.safetensors"]  # its top level, not hidden: as a model folder is read
    assert parcel.opened() == opened  # written once, then read where it was written
    shipped = driver / "worker-tmp" / "attrib-shipped"
    left, writing = shipped / ".incoming-killed", shipped / ".incoming-now"  # a killed worker's; another's
    left.mkdir()
    writing.mkdir()
    os.utime(left, (time.time() - 7200, time.time() - 7200))
    (driver / "labels.txt").write_text("c\nd\n")
    other = ship(Options(["a.jpg"], labels="labels.txt"), _here)
    (driver / "labels.txt").unlink()
    assert open(other.opened().labels).read() == "c\nd\n"  # another file written: the killed worker's swept
    assert not left.exists() and writing.exists()
    (driver / "w.pt").write_bytes(b"weights")
    assert parcel.opened().weights == f"{driver}/w.pt"  # the same again: its own copy


def test_text_options_ship_the_lm_folder_too(driver):
    options = explain_text.Options(texts=["fine"], model="clf", lm="clf")
    parcel = ship(options, _here)
    assert {s.option for s in parcel.shipments} == {"model", "lm"}
    elsewhere = dataclasses.replace(parcel, shipments=tuple(dataclasses.replace(s, path=f"{driver}/not-here/clf")
                                                            for s in parcel.shipments))  # a node without them
    opened = elsewhere.opened()
    assert opened.model == opened.lm and opened.model.startswith(f"{driver}/worker-tmp/attrib-shipped/")
    assert (Path(opened.model) / "model.safetensors").read_bytes() == b"tensors"


def test_files_too_large_to_send_must_be_on_the_node(driver, monkeypatch):
    from attrib.errors import UsageError
    from attrib.jobs import shipping

    monkeypatch.setattr(shipping, "SHIP_LIMIT", len(b"weights") - 1)
    parcel = ship(Options(["a.jpg"], weights="w.pt", labels="labels.txt"), _here)
    assert [s.files is None for s in parcel.shipments] == [True, False]  # the labels (4 bytes) are sent
    assert parcel.opened().weights == f"{driver}/w.pt"  # the node has the same file
    (driver / "w.pt").write_bytes(b"weights, retrained")
    with pytest.raises(UsageError, match=rf"^{driver}/w.pt is another file on this worker's node \(the driver's "
                                         r"has sha256 [0-9a-f]{12}\), and at over 0 GiB it is too large to send"):
        parcel.opened()
    (driver / "w.pt").unlink()
    with pytest.raises(UsageError, match="w.pt is missing on this worker's node"):
        parcel.opened()
