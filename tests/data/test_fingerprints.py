"""Input fingerprints: what tells a resumed explain run that an input file changed since it was explained."""

import hashlib
import os
import time
import zipfile

import pytest
from PIL import Image

from attrib.data import fingerprints
from attrib.data.fingerprints import fingerprint, unchanged
from attrib.data.images import expand_inputs, portable

HOUR = 3600 * 10**9


def _picture(path, colour, when=None):
    Image.new("RGB", (16, 12), colour).save(path)
    if when is not None:
        os.utime(path, ns=(when, when))
    return path


def _source(path):
    (source,) = expand_inputs([str(path)])
    return source


def test_a_file_is_known_by_its_size_time_and_digest(tmp_path):
    old = time.time_ns() - HOUR
    path = _picture(tmp_path / "a.bmp", (200, 0, 0), old)
    stamp = fingerprint(_source(path))
    assert stamp == {"size": path.stat().st_size, "mtime_ns": old,
                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert fingerprint(_source(_picture(tmp_path / "new.bmp", (0, 0, 0))))["mtime_ns"] is None  # just written
    assert fingerprint(_source("sample:coffee")) is None and unchanged(_source("sample:coffee"), None)
    assert fingerprint(_source(tmp_path / "missing.bmp")) is None  # (it fails with its own line)


def test_the_same_size_and_time_are_trusted_without_reading(tmp_path, monkeypatch):
    path = _picture(tmp_path / "a.bmp", (200, 0, 0), time.time_ns() - HOUR)
    stamp = fingerprint(_source(path))
    monkeypatch.setattr(fingerprints, "_bytes", lambda source: pytest.fail("read although its time is the same"))
    assert unchanged(_source(path), stamp)


def test_a_touched_or_copied_file_is_read_and_still_unchanged(tmp_path):
    path = _picture(tmp_path / "a.bmp", (200, 0, 0), time.time_ns() - HOUR)
    stamp = fingerprint(_source(path))
    os.utime(path)  # touch
    assert unchanged(_source(path), stamp)
    path.write_bytes(path.read_bytes())  # written again, the same bytes
    assert unchanged(_source(path), stamp)


def test_a_rewritten_or_removed_file_is_changed(tmp_path):
    old = time.time_ns() - HOUR
    path = _picture(tmp_path / "a.bmp", (200, 0, 0), old)
    stamp = fingerprint(_source(path))
    size = path.stat().st_size
    _picture(path, (0, 200, 0))
    assert path.stat().st_size == size and not unchanged(_source(path), stamp)  # same size, other pixels
    path.unlink()
    assert not unchanged(_source(path), stamp)


def test_a_file_rewritten_within_its_clock_tick_is_told_by_its_digest(tmp_path):
    """A file read just after it was written: a second write in the same tick of a coarse clock keeps its time and
    size, so its digest decides."""
    path = _picture(tmp_path / "a.bmp", (200, 0, 0))
    written = path.stat().st_mtime_ns
    stamp = fingerprint(_source(path))
    _picture(path, (0, 200, 0), written)  # the same size and time, as a coarse clock would leave them
    assert not unchanged(_source(path), stamp)


def test_an_archive_image_is_known_by_its_own_bytes(tmp_path):
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x/a.bmp", _picture(tmp_path / "a.bmp", (200, 0, 0)).read_bytes())
        z.writestr("x/b.bmp", _picture(tmp_path / "b.bmp", (0, 0, 200)).read_bytes())
    old = time.time_ns() - HOUR
    os.utime(archive, ns=(old, old))
    a, b = expand_inputs([str(archive)])
    stamps = [fingerprint(a), fingerprint(b)]
    assert stamps[0]["sha256"] == hashlib.sha256((tmp_path / "a.bmp").read_bytes()).hexdigest()
    assert stamps[0]["size"] == archive.stat().st_size  # (the archive's size and time)
    with zipfile.ZipFile(archive, "w") as z:  # b replaced, a the same
        z.writestr("x/a.bmp", (tmp_path / "a.bmp").read_bytes())
        z.writestr("x/b.bmp", (tmp_path / "a.bmp").read_bytes())
    a, b = expand_inputs([str(archive)])
    assert unchanged(a, stamps[0]) and not unchanged(b, stamps[1])


def test_a_portable_copy_carries_the_fingerprint_taken_where_the_file_is(tmp_path):
    path = _picture(tmp_path / "a.bmp", (200, 0, 0), time.time_ns() - HOUR)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(path, "a.bmp")
    for source in (_source(path), _source(archive)):
        copy = portable(source)
        assert copy.file is None and fingerprint(copy) == fingerprint(source) is not None
