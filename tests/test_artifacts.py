"""Atomic writes and run folders."""

import os

import numpy as np
import pytest

from attrib.artifacts import RunDir, atomic_write_bytes, atomic_write_json, load_run, slug


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_json(target, {"a": 2})
    assert target.read_text().strip().endswith("}") and '"a": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_written_files_have_normal_permissions(tmp_path):
    atomic_write_bytes(tmp_path / "f.bin", b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~mask


def test_run_dir_round_trip(tmp_path):
    run = RunDir.open(tmp_path / "r")
    run.record = {"inputs": [{"name": "x"}]}
    run.arrays["x/ig"] = np.arange(6, dtype=np.float32).reshape(2, 3)
    run.save()
    record, arrays = load_run(tmp_path / "r")
    assert record == run.record and np.array_equal(arrays["x/ig"], run.arrays["x/ig"])
    with pytest.raises(FileNotFoundError, match="not an attrib run directory"):
        load_run(tmp_path)


def test_slugs_are_safe_and_unique():
    taken = set()
    assert slug("sample:chelsea", taken) == "chelsea"
    assert slug("photos/cat 1.jpg", taken) == "cat_1.jpg"
    assert slug("other/cat 1.jpg", taken) == "cat_1.jpg-2"
    assert slug("../..", taken) == "input"
