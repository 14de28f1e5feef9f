"""Files inside a .zip or an uncompressed .tar, read one at a time as they are needed, never extracted (ImageNet's
validation set ships as ILSVRC2012_img_val.tar: 50,000 JPEGs in one file). attrib.data.images makes the
images among them inputs.

A tar member's bytes are read by offset (one seek, no scan); a zip's through one open ZipFile per archive,
which serialises its reads itself, so that decoding threads may read at once.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath

from attrib.errors import first_line

ARCHIVES = (".zip", ".tar")
COMPRESSED_TARS = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")  # no reading one file alone
ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz"})  # (is_archive: which)
SKIPPED_FOLDERS = ("__MACOSX",)  # what macOS's Finder adds to the zips it makes: resource forks, not pictures

Reader = Callable[[], bytes]


class ArchiveError(Exception):
    """An archive, or a file in it, that cannot be read; one line."""


def is_archive(path: Path) -> bool:
    """Whether ``path`` names an archive by its suffix (a compressed tar too: it is refused in one line)."""
    name = path.name.lower()
    return name.endswith(ARCHIVES) or name.endswith(COMPRESSED_TARS)


def archive_members(path: Path, suffixes: Collection[str]) -> tuple[Sequence[tuple[str, Reader]], str | None]:
    """(path in the archive, its reader) for each file with one of ``suffixes`` (hidden files and folders and
    ``__MACOSX/`` left out, as a folder search leaves them), sorted; and, for a tar cut short (a download that
    stopped), what is missing (the files before the cut stay readable). ArchiveError when the archive cannot be
    read file by file, or at all. Listed once per archive (and version of it): inputs that each name one of its
    images (``val.tar/ILSVRC2012_val_00000001.JPEG``, a list of them) do not each read its headers again."""
    name = path.name.lower()
    if name.endswith(COMPRESSED_TARS):
        raise ArchiveError("a compressed tar cannot be read one image at a time; decompress it to a .tar (gunzip, "
                           "bunzip2, unxz) or extract it")
    try:
        stat = path.stat()
        members, cut = _listed(str(path), stat.st_mtime_ns, stat.st_size, frozenset(suffixes))
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
        raise ArchiveError(f"not a readable {path.suffix.lower()} archive ({first_line(error)})") from None
    return members, cut


@lru_cache(maxsize=8)
def _listed(path: str, mtime_ns: int, size: int, suffixes: frozenset[str]) -> tuple[tuple, str | None]:
    members, cut = _tar_members(Path(path)) if path.lower().endswith(".tar") else (_zip_members(Path(path)), None)
    return tuple(sorted(((m, read) for m, read in members if _wanted(m, suffixes)), key=lambda member: member[0])), cut


def read_member(read: Reader) -> bytes:
    """A member's bytes; ArchiveError with the reason when they cannot be read (a cut archive, an encrypted or
    unsupported zip entry)."""
    try:
        return read()
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as error:
        raise ArchiveError(first_line(error)) from None


def _wanted(member: str, suffixes: Collection[str]) -> bool:
    parts = PurePosixPath(member).parts
    return bool(parts) and PurePosixPath(member).suffix.lower() in suffixes and \
        not any(part.startswith(".") or part in SKIPPED_FOLDERS for part in parts)


def _member_name(member: str) -> str:
    """A member's path as ``tar tf`` shows it, without the ./ or / that archivers may put first."""
    return str(PurePosixPath(member)).lstrip("/")


def _tar_members(path: Path) -> tuple[list[tuple[str, Reader]], str | None]:
    """Every regular file, from the headers alone (a tar's index is its headers); and what a cut leaves out."""
    members, last = [], None
    with tarfile.open(path, "r:") as tar:
        try:
            for info in tar:
                last = info.name
                if info.isreg() and not info.issparse():
                    members.append((_member_name(info.name), partial(_tar_bytes, str(path), info.offset_data,
                                                                      info.size)))
        except tarfile.ReadError as error:
            return members, f"the archive is cut short ({first_line(error)}) after {_member_name(last)}: what " \
                            "followed is missing"
    return members, None


def _tar_bytes(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(size)
    if len(data) < size:
        raise OSError(f"the archive ends {size - len(data)} bytes into this file")
    return data


def _zip_members(path: Path) -> list[tuple[str, Reader]]:
    return [(_member_name(info.filename), partial(_zip_bytes, str(path), info.filename))
            for info in _open_zip(str(path), path.stat().st_mtime_ns).infolist() if not info.is_dir()]


@lru_cache(maxsize=8)
def _open_zip(path: str, mtime_ns: int) -> zipfile.ZipFile:
    """One open ZipFile per archive (and version of it): its index is read once, not per image."""
    return zipfile.ZipFile(path)


def _zip_bytes(path: str, member: str) -> bytes:
    return _open_zip(path, Path(path).stat().st_mtime_ns).read(member)
