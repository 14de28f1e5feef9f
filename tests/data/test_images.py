"""Image decoding: every Pillow mode becomes RGB; each bad file gets one clear reason."""

import glob

import numpy as np
import pytest
from PIL import Image

from attrib.data.images import InputError, expand_inputs, load_image, to_rgb


def _save(path, image, **kw):
    image.save(path, **kw)
    return path


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "1", "CMYK", "I;16", "I", "F", "RGB"])
def test_modes_become_rgb(tmp_path, mode):
    base = Image.fromarray((np.arange(30 * 20 * 3) % 251).astype(np.uint8).reshape(20, 30, 3))
    image = base.convert(mode) if mode not in ("I;16", "I", "F") else base.convert("L").convert(mode)
    suffix = ".tif" if mode in ("CMYK", "I;16", "I", "F") else ".png"
    out = load_image(_save(tmp_path / f"img{suffix}", image))
    assert out.mode == "RGB" and out.size == (30, 20)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    array = np.linspace(0, 65535, 64 * 8).astype(np.uint16).reshape(8, 64)
    out = np.asarray(load_image(_save(tmp_path / "deep.png", Image.fromarray(array))))
    assert out.max() > 250 and out.min() < 5 and len(np.unique(out)) > 100


def test_transparency_composites_over_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 10), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    out = load_image(_save(tmp_path / "rot.jpg", image, exif=exif))
    assert out.size == (10, 40)


def test_bad_files_have_one_line_reasons(tmp_path, monkeypatch):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image at all")
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])  # "Truncated File Read"
    cases = {"missing.png": "file not found", "empty.png": "empty file (0 bytes)",
             "text.jpg": "not an image Pillow can read", "cut.png": "truncated or corrupt",
             "cut.jpg": "truncated or corrupt"}
    for name, reason in cases.items():
        with pytest.raises(InputError) as err:
            load_image(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name}: {reason}" or reason in str(err.value)
        assert "\n" not in str(err.value) and name in str(err.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InputError, match="too large.*decompression bomb"):
        load_image(good)


def test_a_folder_skips_hidden_files_as_a_glob_does(tmp_path):
    root = tmp_path / ".photos"  # the folder given may itself be hidden: only what lies under it counts
    for rel in ("cat.png", "._cat.png", ".ipynb_checkpoints/cat-checkpoint.png", "sub/dog.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / rel, format="PNG")
    names = [s.name for s in expand_inputs([str(root)])]
    assert names == [str(root / "cat.png"), str(root / "sub/dog.png")]
    assert sorted(names) == sorted(glob.glob(str(root / "**" / "*.png"), recursive=True))


def test_expand_folders_globs_and_missing(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/1.png", "a/b/2.jpg", "a/notes.txt"):
        Image.new("RGB", (8, 8)).save(tmp_path / rel) if rel.endswith(("png", "jpg")) else \
            (tmp_path / rel).write_text("x")
    (tmp_path / "empty").mkdir()
    (url,) = expand_inputs(["https://example.com/cat.jpg"])
    with pytest.raises(InputError, match="https://example.com/cat.jpg: attrib reads local files only"):
        url.load()
    names = [s.name for s in expand_inputs([str(tmp_path / "a"), str(tmp_path / "a" / "*.png"),
                                            str(tmp_path / "nomatch*.png"), str(tmp_path / "empty")])]
    assert names == [str(tmp_path / "a/1.png"), str(tmp_path / "a/b/2.jpg"), str(tmp_path / "nomatch*.png"),
                     str(tmp_path / "empty")]
    sources = expand_inputs([str(tmp_path / "nomatch*.png"), str(tmp_path / "empty")])
    for source, reason in zip(sources, ["no files match", "no image files"]):
        with pytest.raises(InputError, match=reason):
            source.load()
    assert [s.name for s in expand_inputs([])] == ["sample:chelsea", "sample:coffee", "sample:rocket",
                                                   "sample:astronaut"]
