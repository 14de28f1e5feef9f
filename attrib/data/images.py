"""Image inputs: expand files, folders and globs; decode any Pillow mode into RGB; one clear error per bad file.

Built-in samples (no input given): scikit-image's chelsea, coffee, rocket and astronaut.
"""

from __future__ import annotations

import bisect
import glob
import io
import math
import os
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from operator import itemgetter
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps

from attrib.data import not_a_file, picture_kind
from attrib.errors import AttribError, counted, first_line

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif",
                  ".avif", ".jp2", ".heic", ".heif"}  # HEIF (phones' photos): with pillow-heif, attrib[heif]
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}  # ISO BMFF major brands
SAMPLE_NAMES = ("chelsea", "coffee", "rocket", "astronaut")
JPEG_START = b"\xff\xd8\xff"
FRAMES = "attrib.frames"  # a decoded image's info: how many frames its file holds (its first is decoded)
MOVING = {"GIF", "PNG", "WEBP", "TIFF"}  # animations and pages (not a phone JPEG's second, MPO, picture)
CONTROL_BYTES = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")  # in binary data, hardly ever in a file's name
_OPENING = threading.Lock()  # see _opened()


class InputError(AttribError):
    """An input that cannot be used; the message is one line naming the input and the reason."""


@dataclass(frozen=True)
class ImageSource:
    """One input: a display name and how to load it (None loader = an error found while expanding)."""

    name: str
    load: Callable[[], Image.Image]
    path: str | None = None
    read: Callable[[], bytes] | None = None  # its bytes, where they are not the file at ``path`` (an archive's)
    error: str | None = None  # the one line it fails with, where that is known without reading it
    file: str | None = None  # the file on disk its bytes are in (its archive, for an archive's image)
    stamp: dict | None = None  # its fingerprint, taken where the file is (a portable copy's: see fingerprints)


def sample_sources() -> list[ImageSource]:
    """The built-in sample images."""
    return [ImageSource(f"sample:{n}", partial(load_sample, n)) for n in SAMPLE_NAMES]


def load_sample(name: str) -> Image.Image:
    """A scikit-image sample as an RGB PIL image."""
    from skimage import data

    if name not in SAMPLE_NAMES:
        raise InputError(f"sample:{name}: unknown sample; available: {', '.join(SAMPLE_NAMES)}")
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def read_input_list(file: str) -> list[str]:
    """The inputs a list file names (files, folders, globs), "-" for standard input (``find photos -name '*.jpg' |
    attrib explain --inputs-from -``): one per line, blank lines skipped; or NUL-terminated, as ``find -print0``
    writes them (see :func:`_nul_separated`); an InputError when it names none."""
    from attrib.data import piped_bytes, unicode_text

    where = "standard input" if file == "-" else file
    if file == "-":
        data = piped_bytes("--inputs-from")
    else:
        try:
            data = Path(file).read_bytes()
        except OSError as error:
            raise InputError(f"{file}: cannot read the list of inputs ({error.strerror or error})") from None
    pictures = pictures_in(file, data)
    if pictures:
        how = "save it to a file and give the file as an input" if file == "-" else \
            f"give it as an input: attrib explain {file}"
        raise InputError(f"{where}: {pictures}, not a list of inputs; {how}")
    if _nul_separated(data):  # names taken byte for byte: spaces, line breaks and the file system's own encoding
        entries = [name for name in data.split(b"\0") if name]
        if sum(bool(CONTROL_BYTES.search(name)) for name in entries) * 2 > len(entries):
            raise InputError(f"{where}: binary data, not a list of inputs (most of its NUL-ended entries hold control "
                             "characters, which file names hardly ever do)")
        names = [os.fsdecode(name) for name in entries]
    else:
        names = [line.strip() for line in unicode_text(data, where, InputError).splitlines() if line.strip()]
    if not names:
        raise InputError(f"{where}: the list of inputs names none")
    return names


def pictures_in(file: str, data: bytes) -> str | None:
    """What a file given as a list of inputs is instead, where it is an image or an archive of images (a JPEG's
    bytes read as names made one input of each line); else None."""
    from attrib.data.archives import is_archive

    return "an archive of images" if file != "-" and is_archive(Path(file)) else picture_kind(data)


def _nul_separated(data: bytes) -> bool:
    """Whether ``data`` lists names ended by NULs (``find -print0``, ``xargs -0``) rather than lines of text. UTF-16
    text without a byte-order mark holds NULs too, but in one of every two bytes (each ASCII character's high
    byte), which names of two characters or more never do; that is refused as text, naming its NUL."""
    if b"\0" not in data:
        return False
    return all(half.count(0) * 2 <= len(half) for half in (data[0::2], data[1::2]))


def expand_inputs(args: list[str]) -> list[ImageSource]:
    """Files, folders (recursively, image suffixes only; see :func:`image_files`), globs and ``sample:NAME``;
    order kept, no duplicates.

    An argument that matches nothing still yields a source whose loading fails with a clear message, so a
    batch reports it and goes on.
    """
    if not args:
        return sample_sources()
    sources: list[ImageSource] = []
    seen: set[str] = set()
    for arg in args:
        for source in _expand_or_fail(arg):
            if source.name not in seen:
                seen.add(source.name)
                sources.append(source)
    return sources


def _expand_or_fail(arg: str) -> list[ImageSource]:
    """The sources ``arg`` names; where the file system cannot even look at it (a name too long), one that fails
    alone with the reason: a batch is never stopped by one name."""
    try:
        return _expand_one(arg)
    except OSError as error:
        return [_failing(arg, f"cannot read it: {error.strerror or first_line(error)}")]


def _expand_one(arg: str) -> list[ImageSource]:
    if not arg.strip():  # as a path, the current folder: every picture under it
        return [_failing(repr(arg), "an empty name (an unset shell variable?): give an image, a folder or a glob")]
    if arg.startswith("sample:"):
        return [ImageSource(arg, partial(load_sample, arg[7:]))]
    if re.match(r"^[a-z][a-z0-9+.-]*://", arg, re.I):
        return [_failing(arg, "attrib reads local files only (no downloads): save the image and give its path")]
    path = Path(arg)
    if arg == "-" and not path.exists():
        return [_failing(arg, "an image is not read from standard input: save it to a file, or pipe a list of "
                              "image files to --inputs-from -")]
    if path.is_dir():
        files = image_files(path)
        if not files:
            return [_failing(arg, "folder holds no image files" + _archives_within(path))]
        return [_file_source(p) for p in files]
    if any(c in arg for c in "*?[") and not path.exists():
        matches = sorted(Path(p) for p in glob.glob(arg, recursive=True) if Path(p).is_file())
        return [s for p in matches for s in _file_sources(p)] or [_failing(arg, "no files match this pattern")]
    archive = None if path.exists() else _archive_above(path)
    return _file_sources(path) if archive is None else _in_archive(archive, path)


def _archive_above(path: Path) -> Path | None:
    """The archive an ``ARCHIVE/MEMBER`` path (as attrib names an archive's images) lies in, if any."""
    from attrib.data.archives import is_archive

    return next((parent for parent in path.parents if is_archive(parent) and parent.is_file()), None)


def _in_archive(archive: Path, path: Path) -> list[ImageSource]:
    """The image ``ARCHIVE/MEMBER`` names, or the images in the archive's folder ``ARCHIVE/FOLDER``: an input is
    given back as a run named it (found by bisection: a list of many of a large archive's images stays fast)."""
    from attrib.data.archives import ArchiveError, archive_members

    inner = path.relative_to(archive).as_posix()
    try:
        members, cut = archive_members(archive, IMAGE_SUFFIXES)
    except ArchiveError as error:
        return [_failing(str(path), str(error))]
    name = itemgetter(0)
    at = bisect.bisect_left(members, inner, key=name)
    if at < len(members) and members[at][0] == inner:
        named = members[at:at + 1]
    else:  # the folder's files: from "inner/" up to "inner0" ("0" is the character after "/")
        named = members[bisect.bisect_left(members, f"{inner}/", key=name):
                        bisect.bisect_left(members, f"{inner}0", key=name)]
    if not named:
        return [_failing(str(path), f"{archive} holds no image {inner}" + (f"; {cut}" if cut else ""))]
    return [member_source(f"{archive}/{member}", read, archive) for member, read in named]


def _file_sources(path: Path) -> list[ImageSource]:
    """The image a file is, or the images in it when it is an archive (.zip, .tar: see attrib.data.archives)."""
    from attrib.data.archives import is_archive

    return _archive_sources(path) if is_archive(path) and path.is_file() else [_file_source(path)]


def _archive_sources(path: Path) -> list[ImageSource]:
    """One input per image file in an archive, named ``ARCHIVE/MEMBER`` (its path in the archive, as ``tar tf``
    lists it: its file name keys a ``--truth`` table, the folder it lies in names its class for ``--truth
    folder``); one failing input when the archive cannot be used, or for the part of it a cut left out."""
    from attrib.data.archives import ArchiveError, archive_members

    name = str(path)
    try:
        members, cut = archive_members(path, IMAGE_SUFFIXES)
    except ArchiveError as error:
        return [failing_source(name, f"{name}: {error}")]
    if not members and cut is None:
        return [failing_source(name, f"{name}: the archive holds no image files" + _archives_within(path))]
    sources = [member_source(f"{name}/{member}", read, path) for member, read in members]
    return sources + ([failing_source(name, f"{name}: {cut}")] if cut else [])


def _archives_within(path: Path) -> str:
    """What an input holding no image files holds instead: '; it holds N archives (FIRST): ...', else ''."""
    from attrib.data.archives import ARCHIVE_SUFFIXES, ArchiveError, archive_members, is_archive

    if path.is_dir():
        found = [str(p) for p in image_files(path, is_archive)]
        advice = "give them as inputs (a folder's archives are not opened)"
    else:
        try:
            found = [m for m, _ in archive_members(path, ARCHIVE_SUFFIXES)[0] if is_archive(PurePosixPath(m))]
        except ArchiveError:
            found = []
        advice = "extract it (archives inside an archive are not opened)"
    return f"; it holds {counted(len(found), 'archive')} ({found[0]}{', ...' * (len(found) > 1)}): {advice}" \
        if found else ""


def member_source(name: str, read: Callable[[], bytes], archive: Path | None = None) -> ImageSource:
    """The input an archive's file is, named ``name``, its bytes from ``read`` (out of ``archive``); loading it
    fails with one InputError line where they cannot be read or decoded."""
    checked = partial(_member_bytes, name, read)
    return ImageSource(name, partial(_decoded, name, checked), name, read=checked,
                       file=None if archive is None else str(archive))


def _member_bytes(name: str, read: Callable[[], bytes]) -> bytes:
    from attrib.data.archives import ArchiveError, read_member

    try:
        return read_member(read)
    except ArchiveError as error:
        raise InputError(f"{name}: cannot be read from its archive ({error})") from None


def _decoded(name: str, read: Callable[[], bytes]) -> Image.Image:
    return decode_image(read(), name)


def image_files(folder: Path, wanted: Callable[[Path], bool] | None = None) -> list[Path]:
    """Image files (or the files ``wanted`` says) under ``folder``, recursively, sorted. Left out: hidden files and
    folders, as globs leave them (macOS's ._cat.png, .ipynb_checkpoints/), and attrib's own run folders (``attrib
    explain .`` run twice must not explain the first run's overlays). Linked folders are followed, as globs and
    torchvision's ImageFolder follow them (a subset of ImageNet is often class folders linked to the full set's);
    a link to a folder the path already passed through (a loop) is not."""
    from attrib.runs.store import is_run_folder

    found, todo = [], [(Path(folder), frozenset({_identity(folder)}))]
    while todo:
        here, above = todo.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:  # unreadable: skipped, as os.walk skips it
            continue
        for entry in entries:
            path = here / entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_dir():  # through a link too
                identity = _identity(path)
                if identity is not None and identity not in above and not is_run_folder(path):
                    todo.append((path, above | {identity}))
            elif wanted(path) if wanted else Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
    return sorted(found)


def _identity(folder: Path) -> tuple[int, int] | None:
    """What tells a folder from another whatever the path to it (None: it cannot be read)."""
    try:
        status = os.stat(folder)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _file_source(path: Path) -> ImageSource:
    return ImageSource(str(path), partial(load_image, path), str(path), file=str(path))


def _failing(name: str, reason: str) -> ImageSource:
    return failing_source(name, f"{name}: {reason}")


def failing_source(name: str, message: str) -> ImageSource:
    """An input whose loading fails with ``message``, one line (no path: nothing is read for it)."""
    return ImageSource(name, partial(_fail, message), error=message)


def _fail(message: str) -> Image.Image:
    raise InputError(message)


def portable(source: ImageSource) -> ImageSource:
    """The same input with a file's bytes read here, so that another machine decodes it (no shared file
    system), with its fingerprint taken here; a file that cannot be read becomes a source that fails with the
    same one-line reason there."""
    from attrib.data.fingerprints import fingerprint_of

    if source.path is None:
        return source
    try:
        if source.read is None:
            _check_file(Path(source.path))
        status = None if source.file is None else os.stat(source.file)
        data = source.read() if source.read is not None else Path(source.path).read_bytes()
    except InputError as error:
        return ImageSource(source.name, partial(_fail, str(error)), source.path, error=str(error))
    except OSError as error:
        return _failing(source.name, error.strerror or str(error))
    return ImageSource(source.name, partial(decode_image, data, source.path), source.path,
                       stamp=None if status is None else fingerprint_of(status, data))


def _check_file(path: Path) -> Path:
    if not path.is_file():
        raise InputError(not_a_file(path))
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    return path


def load_image(path: str | Path) -> Image.Image:
    """Decode an image file into RGB (EXIF orientation applied); InputError with the reason otherwise."""
    path = _check_file(Path(path))
    return decode_image(path, str(path))


def input_notes(image: Image.Image, preprocess) -> list[str]:
    """What a user should know of how an image was taken in: enlarged over 4x to fill the model's input
    (:meth:`Preprocess.enlarged`), or only the first frame of an animated GIF or a multi-page TIFF used."""
    notes = [preprocess.enlarged(image.size)]
    if image.info.get(FRAMES, 1) > 1:
        notes.append(f"an animated or multi-page image: only its first frame (of {image.info[FRAMES]}) is used")
    return [note for note in notes if note]


def decode_image(file: Path | bytes, name: str) -> Image.Image:
    """Decode a file (or its bytes) into RGB, EXIF orientation applied; InputError naming ``name`` otherwise. A
    JPEG over Pillow's pixel limit (a 100-megapixel photo) is decoded smaller (:func:`_drafted`); any other
    image over it is refused as a possible decompression bomb."""
    _read_heif()
    try:
        try:
            with _opened(file) as image:
                image.load()
                rgb = to_rgb(ImageOps.exif_transpose(image))
                if image.format in MOVING and getattr(image, "n_frames", 1) > 1:
                    rgb.info[FRAMES] = image.n_frames  # only the first is decoded: input_notes() says so
                return rgb
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            if not _head(file, len(JPEG_START)).startswith(JPEG_START):
                raise
        return _drafted(file)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name}: image too large (over {Image.MAX_IMAGE_PIXELS:,} pixels; "
                         "possible decompression bomb)") from None
    except Image.UnidentifiedImageError:
        raise InputError(f"{name}: {_unreadable(_head(file))}") from None
    except (OSError, SyntaxError, ValueError) as error:
        text = str(error)
        reason = "truncated or corrupt image" if re.search("truncated|broken", text, re.I) else text
        raise InputError(f"{name}: {reason.splitlines()[0] if reason else 'unreadable'}") from None


def _opened(file: Path | bytes) -> Image.Image:
    """Image.open (the header only), with Pillow's warning of an image over its pixel limit raised as an error.
    warnings.catch_warnings changes the whole process's filters and puts back what it found on leaving: decoding
    threads that overlap there undo each other's filter (an image over the limit was then decoded whole), so
    they take turns."""
    with _OPENING, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(_stream(file))


def _stream(file: Path | bytes) -> Path | io.BytesIO:
    return io.BytesIO(file) if isinstance(file, bytes) else file


def _drafted(file: Path | bytes) -> Image.Image:
    """A JPEG over Pillow's pixel limit, decoded at 1/2, 1/4 or 1/8 of its size by the JPEG decoder's own
    scaling (the least reduction that fits the limit: still many times the model's input, in a fraction of the
    memory); DecompressionBombError where none fits. (Image.open refuses such a file before a size can be
    chosen; the JPEG reader itself does not.)"""
    from PIL import JpegImagePlugin

    with JpegImagePlugin.JpegImageFile(_stream(file)) as image:
        width, height = image.size
        fits = [s for s in (2, 4, 8) if math.ceil(width / s) * math.ceil(height / s) <= Image.MAX_IMAGE_PIXELS]
        if not fits:
            raise Image.DecompressionBombError(f"{width}x{height}")
        image.draft("RGB", (max(1, width // fits[0]), max(1, height // fits[0])))  # Pillow: scale = size // these
        if image.size != (math.ceil(width / fits[0]), math.ceil(height / fits[0])):
            raise Image.DecompressionBombError(f"{width}x{height}")  # a JPEG Pillow cannot decode scaled
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))


@cache
def _read_heif() -> bool:
    """Teach Pillow HEIF (HEIC) where pillow-heif is installed (once per process); whether it could."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _head(file: Path | bytes, size: int = 512) -> bytes:
    if isinstance(file, bytes):
        return file[:size]
    try:
        with open(file, "rb") as stream:
            return stream.read(size)
    except OSError:
        return b""


def _unreadable(head: bytes) -> str:
    """Why Pillow could not read a file, by its content (not its name): a HEIF photo without pillow-heif, or a
    kind of file that is no raster image."""
    if head[4:8] == b"ftyp":  # ISO media: HEIF's first box, or a video's
        if head[8:12] in HEIF_BRANDS:
            return "a HEIF image (as phones save photos); reading it needs pillow-heif: pip install 'attrib[heif]'"
        if head[8:12] in (b"avif", b"avis"):
            return "an AVIF image, which this Pillow cannot read (recent ones can: pip install -U pillow)"
        return "a video or other ISO media file (MP4, MOV), not an image: extract frames from it first"
    if head.startswith(b"%PDF"):
        return "a PDF document, not an image: export its pages as PNG first"
    if b"<svg" in head.lower():
        return "an SVG drawing (vector graphics): render it to PNG first"
    return "not an image Pillow can read"


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode (RGBA, LA, P, L, 1, CMYK, I;16, I, F, ...) to 8-bit RGB; transparency over white."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode.startswith("I") or image.mode == "F":
        return _scale_to_8bit(image).convert("RGB")
    return image.convert("RGB")


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    array = np.asarray(image, dtype=np.float64)
    if image.mode != "F" and array.max() > 255:
        array = array / 65535.0 * 255.0
    elif image.mode == "F":
        low, high = float(array.min()), float(array.max())
        array = (array - low) / (high - low or 1.0) * 255.0
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")
