"""Image decoding: every Pillow mode becomes RGB; each bad file gets one clear reason."""

import glob
import math
import re
from pathlib import Path

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


@pytest.mark.parametrize("limit, scale", [(20_000, 2), (12_000, 2), (7_499, 4), (1_000, 8)])
def test_a_jpeg_over_the_pixel_limit_is_decoded_smaller(tmp_path, monkeypatch, limit, scale):
    """A 100-megapixel photo was refused as a possible decompression bomb. A JPEG decodes at 1/2, 1/4 or 1/8 of
    its size by itself: the least reduction that fits Pillow's limit is taken (over the limit, Pillow warns;
    over twice the limit, it refuses), EXIF orientation kept; any other format over the limit is still refused."""
    rows, cols = np.mgrid[0:150, 0:200]
    picture = Image.fromarray(np.stack([rows, cols, rows + cols], -1).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    photo = _save(tmp_path / "photo.jpg", picture, exif=exif, quality=95)
    picture.save(tmp_path / "photo.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    out = load_image(photo)
    assert out.size == (math.ceil(150 / scale), math.ceil(200 / scale)) and out.mode == "RGB"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # the whole photo, reduced as the model's resize would
    whole = load_image(photo).resize(out.size, Image.Resampling.BOX)
    assert np.abs(np.asarray(out, dtype=float) - np.asarray(whole, dtype=float)).mean() < 2
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(InputError, match="photo.png: image too large.*decompression bomb"):
        load_image(tmp_path / "photo.png")


def test_images_over_the_limit_are_refused_by_every_decoding_thread(tmp_path, monkeypatch):
    """Decoding threads each turned Pillow's over-the-limit warning into an error with warnings.catch_warnings,
    which is process-wide: overlapping, they undid each other's filter and such images were decoded whole."""
    from concurrent.futures import ThreadPoolExecutor

    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1,200 pixels: Pillow warns (it refuses over 2,000)

    def refused(_) -> bool:
        try:
            load_image(tmp_path / "big.png")
        except InputError:
            return True
        return False

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(refused, range(2000)))


def test_linked_folders_are_searched_and_a_loop_ends(tmp_path):
    """An ImageNet subset made of links to the full set's class folders held "no image files": os.walk did not
    follow links. A folder linked twice is searched twice, as a glob would; a link to a folder above it (a loop,
    here through another link) is not followed."""
    store = tmp_path / "store" / "n01440764"
    store.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(store / "fish.png")
    subset = tmp_path / "subset"
    (subset / "own").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(subset / "own" / "a.png")
    (subset / "n01440764").symlink_to(store, target_is_directory=True)
    (subset / "again").symlink_to(store, target_is_directory=True)
    (subset / "own" / "up").symlink_to(subset, target_is_directory=True)  # a loop
    (store / "back").symlink_to(subset / "own", target_is_directory=True)  # a loop through n01440764/
    names = [s.name for s in expand_inputs([str(subset)])]
    assert names == [str(subset / p) for p in ("again/back/a.png", "again/fish.png", "n01440764/back/a.png",
                                                "n01440764/fish.png", "own/a.png")]


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
    (stdin,) = expand_inputs(["-"])  # piped in: there are flags for that; a file named "-" is that file
    with pytest.raises(InputError, match="-: an image is not read from standard input: save it to a file, or pipe "
                                         "a list of image files to --inputs-from -"):
        stdin.load()
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


def test_phone_photos_heif_and_avif_are_found_in_folders_and_read(tmp_path):
    """iPhones save HEIC by default: a folder of them was searched for nothing and explained nothing."""
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import features

    from attrib.data.images import image_files

    photo = Image.fromarray((np.arange(48 * 32 * 3) % 251).astype(np.uint8).reshape(32, 48, 3))
    pillow_heif.from_pillow(photo).save(tmp_path / "IMG_0001.HEIC", quality=95)  # Pillow itself is not taught
    names = ["IMG_0001.HEIC"]
    if features.check("avif"):
        photo.save(tmp_path / "still.avif", quality=95)
        names.append("still.avif")
    assert [p.name for p in image_files(tmp_path)] == sorted(names)
    for name in names:
        out = load_image(tmp_path / name)
        assert out.mode == "RGB" and out.size == (48, 32)
        assert np.abs(np.asarray(out, dtype=float) - np.asarray(photo, dtype=float)).mean() < 20  # lossy


def test_a_heif_photo_without_pillow_heif_says_what_to_install(tmp_path):
    """Checked in a process where pillow-heif cannot be imported; the file is told by its content (ftyp heic),
    so a HEIF photo named .jpg gets the same line."""
    import subprocess
    import sys

    head = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    (tmp_path / "IMG_0002.jpg").write_bytes(head + bytes(200))
    script = ("import sys; sys.modules['pillow_heif'] = None\n"
              "from attrib.data.images import InputError, load_image\n"
              f"try:\n    load_image({str(tmp_path / 'IMG_0002.jpg')!r})\n"
              "except InputError as error:\n    print(error)\n")
    said = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert said.strip() == f"{tmp_path / 'IMG_0002.jpg'}: a HEIF image (as phones save photos); reading it " \
        "needs pillow-heif: pip install 'attrib[heif]'"


@pytest.mark.parametrize("content, reason", [
    (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2mp41", "a video or other ISO media file (MP4, MOV)"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document, not an image: export its pages as PNG first"),
    (b'<?xml version="1.0"?>\n<SVG xmlns="http://www.w3.org/2000/svg"/>', "an SVG drawing (vector graphics)")])
def test_files_that_are_no_raster_image_are_named_by_their_content(tmp_path, content, reason):
    (tmp_path / "input.png").write_bytes(content)
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'input.png'}: {reason}")):
        load_image(tmp_path / "input.png")


def test_animations_and_pages_say_that_their_first_frame_is_used(tmp_path):
    """An animated GIF or WebP, or a multi-page TIFF, was explained by its first frame without a word; a phone's
    JPEG with a second picture (MPO: a depth map, a large preview) is one photo and gets no note."""
    from attrib.data.images import input_notes
    from attrib.models.preprocess import Preprocess

    frames = [Image.new("RGB", (64, 48), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    for name in ("a.gif", "a.webp", "a.tif", "a.mpo", "one.gif"):
        more = frames[1:] if name != "one.gif" else []
        frames[0].save(tmp_path / name, save_all=True, append_images=more)
    preprocess = Preprocess(size=(64, 64))
    for name in ("a.gif", "a.webp", "a.tif"):
        image = load_image(tmp_path / name)
        assert max(abs(a - b) for a, b in zip(image.getpixel((0, 0)), (255, 0, 0))) <= 4  # the first (WebP: lossy)
        assert input_notes(image, preprocess) == ["an animated or multi-page image: only its first frame (of 3) is "
                                                  "used"]
    with Image.open(tmp_path / "a.mpo") as mpo:
        assert (mpo.format, mpo.n_frames) == ("MPO", 3)
    for name in ("a.mpo", "one.gif"):
        assert input_notes(load_image(tmp_path / name), preprocess) == []
    frames[0].resize((10, 8)).save(tmp_path / "small.gif", save_all=True, append_images=[frames[1].resize((10, 8))])
    notes = input_notes(load_image(tmp_path / "small.gif"), preprocess)
    assert notes == [preprocess.enlarged((10, 8)), "an animated or multi-page image: only its first frame (of 2) is "
                                                   "used"] and notes[0]
