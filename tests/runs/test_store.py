"""Atomic writes and the run store: per-input arrays, lazy loading, folders from attrib 0.1."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from attrib.runs import RunError, RunStore, id_key, load_run, slug
from attrib.runs.atomic import ABANDONED_AFTER_S, atomic_write_bytes, atomic_write_json, atomic_write_npz, \
    sweep_unfinished

# a writer stuck between creating its temp file and renaming it over the target
_STUCK_WRITER = """
import os, sys, time
from attrib.runs.atomic import atomic_write_bytes
os.fsync = lambda fd: time.sleep(600)
atomic_write_bytes(sys.argv[1], b"half")
"""


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


FULL_DISK = """
import errno, os, resource, signal, sys
from attrib.runs import RunStore
store = RunStore(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    store.append_input({"name": "b", "id": "b", "status": "ok", "note": "x" * 100})
except OSError as error:
    print(errno.errorcode[error.errno], error.filename)
"""


@pytest.mark.skipif(os.name != "posix", reason="a file size limit stands in for a full disk")
def test_a_record_that_cannot_be_written_whole_leaves_the_earlier_ones(tmp_path):
    store = RunStore(tmp_path / "r")
    store.append_input({"name": "a", "id": "a", "status": "ok"})
    size = (tmp_path / "r" / "inputs.jsonl").stat().st_size
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path / "r"), str(size + 40)],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["EFBIG", str(tmp_path / "r" / "inputs.jsonl")], done.stderr  # it names the file
    assert (tmp_path / "r" / "inputs.jsonl").stat().st_size == size  # no part of the line: nothing half-written
    assert [e["name"] for e in store.read_inputs()] == ["a"]


@pytest.mark.skipif(os.name != "posix", reason="tells live writers by their process id")
def test_the_sweep_removes_a_killed_writers_temp_file_and_keeps_a_live_ones(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", _STUCK_WRITER, str(tmp_path / "result.json")])
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".result.json.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.01)
        [tmp] = list(tmp_path.glob(".result.json.*.tmp"))
        assert f"-{writer.pid}." in tmp.name
        assert sweep_unfinished(tmp_path) == [] and tmp.exists()  # its writer is still at work
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert sweep_unfinished(tmp_path) == [tmp] and list(tmp_path.iterdir()) == []


_HOLDER = """
import sys, time
from attrib.runs import RunStore
store = RunStore(sys.argv[1])
store.open("explain")
print("open", flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_one_process_at_a_time_runs_into_a_folder_and_a_killed_one_leaves_it_free(tmp_path):
    from attrib.runs.lock import FolderBusy

    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        with pytest.raises(FolderBusy, match=rf"is being written by another attrib run \(process {holder.pid}\)"):
            RunStore(tmp_path).open("explain")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    first, second = RunStore(tmp_path), RunStore(tmp_path)
    first.open("explain")
    second.open("explain")  # this process again (jobs one after another, or nested): counted, not refused
    first.close()
    second.close()
    second.close()  # given back once only
    again = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert again.stdout.readline() == "open\n"  # free again: another process takes it
    finally:
        again.kill()
        again.wait()


def test_the_sweep_judges_other_machines_temp_files_by_age_and_untagged_ones_as_abandoned(tmp_path):
    (tmp_path / "jobs").mkdir()
    fresh, old = tmp_path / "jobs" / ".a.json.0123abcd-7.xyz.tmp", tmp_path / "jobs" / ".b.json.0123abcd-7.xyz.tmp"
    untagged = tmp_path / ".run.json.k3j4.tmp"
    for path in (fresh, old, untagged):
        path.write_bytes(b"half")
    stale = time.time() - ABANDONED_AFTER_S - 60
    os.utime(old, (stale, stale))
    assert sorted(sweep_unfinished(tmp_path)) == sorted([old, untagged])
    assert fresh.exists()


def test_written_files_have_normal_permissions(tmp_path):
    atomic_write_bytes(tmp_path / "f.bin", b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~mask


def test_run_store_round_trip_reads_arrays_lazily(tmp_path):
    store = RunStore(tmp_path / "r")
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    store.write_arrays("x", {"integrated_gradients": values, "gradient": -values})
    store.write_record({"kind": "explain", "inputs": [{"name": "x", "id": "x"}]})
    record, arrays = load_run(tmp_path / "r")
    assert record["inputs"] == [{"name": "x", "id": "x"}]
    assert np.array_equal(arrays[("x", "integrated_gradients")], values)
    assert np.array_equal(arrays["x/gradient"], -values)  # "id/method" strings work too
    assert set(arrays) == {("x", "integrated_gradients"), ("x", "gradient")} and len(arrays) == 2
    with pytest.raises(KeyError):
        arrays[("x", "smoothgrad")]
    with pytest.raises(RunError, match="not an attrib run directory"):
        load_run(tmp_path)
    assert load_run(tmp_path / "r" / "run.json").record == record  # its run.json names the folder
    with pytest.raises(RunError, match=r"x\.npz is a file, not an attrib run directory \(give the folder"):
        load_run(next((tmp_path / "r").rglob("*.npz")))


def test_folders_written_by_attrib_0_1_still_load(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"command": "explain", "inputs": []}))
    atomic_write_npz(tmp_path / "attributions.npz", {"cat.png/integrated_gradients": np.ones((3, 2, 2))})
    record, arrays = load_run(tmp_path)
    assert record["kind"] == "explain" and "command" not in record
    assert list(arrays) == [("cat.png", "integrated_gradients")]
    assert arrays[("cat.png", "integrated_gradients")].sum() == 12


def test_each_input_writes_its_own_file(tmp_path):
    store = RunStore(tmp_path)
    for i in range(3):
        store.write_arrays(f"in{i}", {"gradient": np.full((1, 2, 2), i, dtype=np.float32)})
    assert sorted(p.name for p in (tmp_path / "arrays").iterdir()) == ["in0.npz", "in1.npz", "in2.npz"]
    store.write_record({"kind": "explain", "inputs": []})
    assert [float(load_run(tmp_path).arrays[(f"in{i}", "gradient")].mean()) for i in range(3)] == [0.0, 1.0, 2.0]


def test_slugs_are_safe_and_unique():
    taken = set()
    assert slug("sample:chelsea", taken) == "chelsea"
    assert slug("photos/cat 1.jpg", taken) == "cat_1.jpg"
    assert slug("other/cat 1.jpg", taken) == "cat_1.jpg-2"
    assert slug("../..", taken) == "input"


def test_slugs_keep_every_script_and_stay_apart_where_case_is_ignored():
    """Names in other scripts all became 'jpg' ('猫.jpg', '写真.jpg'); 'Cat.jpg' and 'cat.jpg' from two folders
    shared one folder of outputs on macOS and Windows, whose file systems ignore case, and so did a name macOS
    wrote decomposed ('cafe' + U+0301) and its composed twin; 'con.png' cannot be made on Windows; 80 CJK
    characters were 240 bytes, near the file-name limit of 255 before a suffix."""
    taken = set()
    ids = [slug(name, taken) for name in ("a/猫.jpg", "b/写真 1.jpg", "a/Cat.jpg", "b/cat.jpg", "c/CAT.JPG",
                                          "a/cafe\u0301.png", "b/caf\u00e9.png", "con.png", "a/नमस्ते.jpg")]
    assert ids == ["猫.jpg", "写真_1.jpg", "Cat.jpg", "cat.jpg-2", "CAT.JPG-3", "caf\u00e9.png", "caf\u00e9.png-2",
                   "_con.png", "नमस्ते.jpg"]
    long = slug("猫" * 100 + ".jpg", set())
    assert long.endswith("猫.jpg") and len(long.encode()) <= 160
    again = {id_key(i) for i in ids}  # a resumed run's ids, taken as before
    assert slug("d/CAT.jpg", again) == "CAT.jpg-4"


def test_records_are_strict_json_with_null_for_non_finite_numbers(tmp_path):
    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))

    record = {"gap": float("inf"), "rows": [{"r": float("nan")}, (np.float32("-inf"), np.float64(2.5))],
              "n": np.int64(3), "ok": 0.5}
    expected = {"gap": None, "rows": [{"r": None}, [None, 2.5]], "n": 3, "ok": 0.5}
    atomic_write_json(tmp_path / "r.json", record)
    assert strict((tmp_path / "r.json").read_text()) == expected
    store = RunStore(tmp_path / "run")
    store.append_input({"id": "a", **record})
    assert strict((tmp_path / "run" / "inputs.jsonl").read_text()) == {"id": "a", **expected}


def test_a_file_system_without_locks_runs_unlocked(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    first, second = RunStore(tmp_path), RunStore(tmp_path)
    first.open("explain")
    second.open("explain")  # not refused as "being written by another attrib run"
    first.close()
    second.close()
