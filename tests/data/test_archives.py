"""Images read from inside a .zip or .tar (ImageNet's validation set ships as one tar), never extracted."""

import io
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from attrib.data.images import InputError, expand_inputs, load_image, portable

MEMBERS = {"n02123159/a.jpg": "JPEG", "n02123159/b.png": "PNG", "dogs/c.png": "PNG"}
LEFT_OUT = ("readme.txt", ".hidden/d.png", "dogs/._c.png", "__MACOSX/dogs/._c.png")


def _pictures() -> dict[str, bytes]:
    out = {}
    for i, (name, kind) in enumerate(MEMBERS.items()):
        buffer = io.BytesIO()
        Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(buffer, kind)
        out[name] = buffer.getvalue()
    return out | {name: b"not a picture" for name in LEFT_OUT} | {"broken.png": b"\x89PNG cut"}


def _tar(path, files, prefix="./"):
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("make", [_tar, _zip])
def test_an_image_or_folder_in_an_archive_is_named_as_a_run_names_it(tmp_path, make):
    """A run names an archive's image ``ARCHIVE/PATH``; given back (to explain it again, or in a list of the
    ones to look at) that name was "no such file"."""
    files = _pictures() | {"n02123159.jpg": _pictures()["n02123159/a.jpg"]}  # sorts between the folder's name
    archive = make(tmp_path / f"set{'.tar' if make is _tar else '.zip'}", files)  # and its files
    asked = [f"{archive}/dogs/c.png", f"{archive}/n02123159", f"{archive}/nope.png", f"{archive}/dogs/._c.png"]
    sources = expand_inputs(asked)
    assert [s.name for s in sources] == [f"{archive}/dogs/c.png", f"{archive}/n02123159/a.jpg",
                                         f"{archive}/n02123159/b.png", f"{archive}/nope.png", f"{archive}/dogs/._c.png"]
    whole = {s.name: s for s in expand_inputs([str(archive)])}
    for source in sources[:3]:
        assert np.array_equal(np.asarray(source.load()), np.asarray(whole[source.name].load()))
    for source, inner in zip(sources[3:], ("nope.png", "dogs/._c.png")):  # a hidden file is no input, as in a folder
        with pytest.raises(InputError, match=f"^{archive}/{inner}: {archive} holds no image {inner}$"):
            source.load()


@pytest.mark.parametrize("make", [_tar, _zip])
def test_the_images_of_an_archive_are_inputs_named_by_their_path_in_it(tmp_path, make):
    """Hidden files, macOS's __MACOSX/ and other files are left out, as a folder search leaves them; each image
    decodes as the same file would, and one that does not fails alone with its own line."""
    files = _pictures()
    archive = make(tmp_path / f"set{'.tar' if make is _tar else '.zip'}", files)
    sources = expand_inputs([str(archive)])
    names = ["broken.png", "dogs/c.png", "n02123159/a.jpg", "n02123159/b.png"]
    assert [s.name for s in sources] == [f"{archive}/{n}" for n in names] == [s.path for s in sources]
    for source, name in zip(sources[1:], names[1:]):
        (tmp_path / "file").write_bytes(files[name])
        expected = np.asarray(load_image(tmp_path / "file"))
        assert np.array_equal(np.asarray(source.load()), expected)
        assert np.array_equal(np.asarray(portable(source).load()), expected)  # its bytes, read here for Ray
    with pytest.raises(Exception, match=f"^{archive}/broken.png: "):
        sources[0].load()


def test_unusable_archives_fail_in_one_line(tmp_path):
    files = _pictures()
    whole = _tar(tmp_path / "whole.tar", files, prefix="")
    with tarfile.open(whole) as tar:
        last = max((i for i in tar if i.name in MEMBERS), key=lambda i: i.offset_data)
    (tmp_path / "cut.tar").write_bytes(whole.read_bytes()[:last.offset_data + 10])  # its header, then 10 bytes
    (tmp_path / "short.tar").write_bytes(whole.read_bytes()[:100])  # not even one header
    with tarfile.open(tmp_path / "set.tar.gz", "w:gz") as tar:
        tar.add(whole, "whole.tar")
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    _zip(tmp_path / "text.zip", {"readme.txt": b"no pictures"})
    lines = {"set.tar.gz": "a compressed tar cannot be read one image at a time; decompress it to a .tar (gunzip, "
                           "bunzip2, unxz) or extract it",
             "short.tar": "not a readable .tar archive (truncated header)",
             "junk.zip": "not a readable .zip archive (File is not a zip file)",
             "text.zip": "the archive holds no image files"}
    for name, line in lines.items():
        assert [s.error for s in expand_inputs([str(tmp_path / name)])] == [f"{tmp_path / name}: {line}"]
    cut = tmp_path / "cut.tar"  # a download that stopped: the images before the cut are read, the cut one fails
    sources = expand_inputs([str(cut)])
    assert [s.name for s in sources] == [f"{cut}/{n}" for n in ("dogs/c.png", "n02123159/a.jpg", "n02123159/b.png")] \
        + [str(cut)]
    assert sources[-1].error == f"{cut}: the archive is cut short (unexpected end of data) after dogs/c.png: what " \
                                "followed is missing"
    assert sources[1].load().size == (30, 20)
    with pytest.raises(InputError, match=f"^{cut}/dogs/c.png: cannot be read from its archive "
                                         r"\(the archive ends 81 bytes into this file\)$"):
        sources[0].load()


def test_archives_within_an_input_of_no_images_are_said(tmp_path):
    """An archive of archives (ImageNet's train set is a tar of 1,000 tars) and a folder of archives (shards) said
    only "holds no image files"; they now say what they hold, and what to do."""
    shards = tmp_path / "shards"
    shards.mkdir()
    _tar(shards / "part1.tar", _pictures(), prefix="")
    _zip(shards / "part2.zip", {"a.png": b"x"})
    _zip(tmp_path / "nested.zip", {"n01440764.tar": (shards / "part1.tar").read_bytes(), "notes.txt": b"-"})
    assert [s.error for s in expand_inputs([str(shards)])] == [
        f"{shards}: folder holds no image files; it holds 2 archives ({shards / 'part1.tar'}, ...): give them as "
        "inputs (a folder's archives are not opened)"]
    assert [s.error for s in expand_inputs([str(tmp_path / "nested.zip")])] == [
        f"{tmp_path / 'nested.zip'}: the archive holds no image files; it holds 1 archive (n01440764.tar): extract "
        "it (archives inside an archive are not opened)"]
    assert len(expand_inputs([str(shards / "*")])) == 5  # given as inputs: the tar's 4 images, the zip's one


def test_a_zip_is_read_by_many_threads_at_once(tmp_path):
    """Decoding threads share one open ZipFile per archive (its index is read once, not per image)."""
    files = {f"{i}.png": data for i, data in enumerate(v for k, v in _pictures().items() if k in MEMBERS)}
    sources = expand_inputs([str(_zip(tmp_path / "z.zip", files))])
    expected = [np.asarray(s.load()) for s in sources]
    with ThreadPoolExecutor(8) as pool:
        loaded = list(pool.map(lambda i: np.asarray(sources[i % 3].load()), range(300)))
    assert all(np.array_equal(image, expected[i % 3]) for i, image in enumerate(loaded))
