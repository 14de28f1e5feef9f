"""A table naming each image's class (``attrib explain --target labels.csv``): ground truth kept beside the
images rather than in their folders' names, as ImageNet's validation set is shipped (Kaggle's
``LOC_val_solution.csv``, Caffe's ``val.txt``).

Rows pair an image with a class: CSV or TSV (the first column the image, the second its class, further columns
ignored; a first row whose class names no class is its header), ``.txt`` (the image, white space, its class) or
a JSON object ``{image: class}``. The image is a path (relative to the table's folder or to the working folder)
or a bare file name, with or without its suffix (``ILSVRC2012_val_00000001``). The class is what ``--target``
takes: an index, a label name or an ImageNet WordNet id; a field that starts with a WordNet id (Kaggle's
``PredictionString``: "n01751748 187 55 448 351 ...") counts that id.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from attrib.errors import UsageError, a_type

SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": None, ".json": None}  # the table's kinds, by suffix: delimiter


def is_class_table(text: str) -> bool:
    """Whether a ``--target`` value names a table file (by its suffix) rather than one class."""
    return Path(str(text).strip()).suffix.lower() in SUFFIXES


@dataclass(frozen=True)
class ClassTable:
    """Each image's class, read from a table file; ``class_of`` finds an image's."""

    name: str  # the file as given
    digest: str  # sha256 of its bytes: a changed table is a changed target
    by_path: dict[str, int] = field(repr=False)  # absolute path -> class
    by_name: dict[str, int] = field(repr=False)  # file name, or name without its suffix -> class
    first_key: str = ""  # the first row's image, as written (for messages)
    numbered: bool = False  # every row keyed by a bare number: maybe a map of class names, which --labels takes
    flag: str = "--target"  # the option that named it (messages say "--truth labels.csv gives it no class")

    def describe(self) -> dict[str, str]:
        """The table as run.json records it (``target_table``): the file as given and its contents' digest."""
        return {"file": self.name, "sha256": self.digest}

    def class_of(self, source) -> int:
        """The class the table gives an image source; an InputError naming the image when it gives none."""
        from attrib.data.images import InputError

        if source.path is None:
            raise InputError(f"{source.name}: not a file, so {self.flag} {self.name} gives it no class")
        path = os.path.abspath(source.path)
        for found in (self.by_path.get(path), self.by_name.get(Path(path).name), self.by_name.get(Path(path).stem)):
            if found is not None:
                return found
        hint = f" ({self.name} is keyed by numbers: if it names the model's classes, --labels takes it)" \
            if self.numbered else ""
        raise InputError(f"{source.name}: {self.flag} {self.name} gives it no class{hint}")


def read_class_table(file: str, labels: list[str], flag: str = "--target") -> ClassTable:
    """The table in ``file`` (given with the option ``flag``), every class checked against the model's
    ``labels``; a UsageError naming the file and line of the first problem."""
    from attrib.data import unicode_text

    try:
        data = Path(file).read_bytes()
    except OSError as error:
        raise UsageError(f"{flag} {file}: cannot read the table of classes ({error.strerror or error}); a "
                         f"{flag} ending .csv, .tsv, .txt or .json names a file of images and their classes") from None
    rows = list(_rows(unicode_text(data, file), file))
    classes = _Classes(labels, file)
    if rows and classes.header(rows[0]):
        rows = rows[1:]
    if not rows:
        raise UsageError(f"{flag} {file}: the table names no images")
    base = os.path.dirname(os.path.abspath(file))
    by_path: dict[str, int] = {}
    by_name: dict[str, int] = {}
    seen: dict[str, tuple[int, str]] = {}
    for where, key, value in rows:
        index = classes.parse(value, where)
        if seen.setdefault(key, (index, where))[0] != index:
            raise UsageError(f"{file} {where}: {key!r} has class {index} here but {seen[key][0]} at "
                             f"{seen[key][1]}; give each image one class")
        if os.sep in key or "/" in key:
            by_path[os.path.abspath(os.path.join(base, key))] = index
            by_path.setdefault(os.path.abspath(key), index)
        else:
            by_name[key] = index
    numbered = not by_path and all(key.isdigit() for key in by_name)
    return ClassTable(file, hashlib.sha256(data).hexdigest(), by_path, by_name, rows[0][1], numbered, flag)


def _rows(text: str, file: str) -> Iterator[tuple[str, str, str]]:
    """(where, image, class) per row, in order; blank lines skipped."""
    suffix = Path(file).suffix.lower()
    if suffix == ".json":
        yield from _json_rows(text, file)
        return
    lines, delimiter = text.splitlines(), SUFFIXES[suffix]
    if delimiter == "," and lines and ";" in lines[0] and "," not in lines[0]:
        delimiter = ";"  # Excel's CSV where the decimal mark is a comma
    if delimiter:
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        numbered = ((reader.line_num, row) for row in reader)  # a quoted field may span lines
    else:
        numbered = enumerate((line.split(None, 1) for line in lines), 1)
    try:
        for number, row in numbered:
            row = [cell.strip() for cell in row]
            if not any(row):
                continue
            if len(row) < 2 or not row[0] or not row[1]:
                raise UsageError(f"{file} line {number}: expected an image and its class, got {row!r}")
            yield f"line {number}", row[0], row[1]
    except csv.Error as error:
        raise UsageError(f"{file}: not a readable table ({error})") from None


def _json_rows(text: str, file: str) -> Iterator[tuple[str, str, str]]:
    try:
        table = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{file}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") \
            from None
    if not isinstance(table, dict):
        raise UsageError(f"{file}: expected a JSON object {{image: class}}, got {a_type(table)}")
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not key.strip() or not str(value).strip():
            raise UsageError(f"{file}: entry {key!r}: expected an image name and a class name or index, got "
                             f"{value!r}")
        yield f"entry {key!r}", key.strip(), str(value).strip()


class _Classes:
    """Class fields to indices, each distinct field parsed once (tables run to 50,000 rows of 1,000 classes)."""

    def __init__(self, labels: list[str], file: str) -> None:
        self.labels, self.file, self.known = labels, file, {}

    def header(self, row: tuple[str, str, str]) -> bool:
        """Whether a first row is a header: its class names no class and its image is not an image file."""
        from attrib.data.images import IMAGE_SUFFIXES

        if Path(row[1]).suffix.lower() in IMAGE_SUFFIXES or row[0].startswith("entry "):
            return False
        try:
            self.parse(row[2], row[0])
        except UsageError:
            return True
        return False

    def parse(self, value: str, where: str) -> int:
        from attrib.targets import leading_wordnet_id

        value = leading_wordnet_id(value) or value  # Kaggle's "n01751748 187 55 448 351 n01751748 ..."
        if value not in self.known:
            self.known[value] = self._parse(value, where)
        return self.known[value]

    def _parse(self, value: str, where: str) -> int:
        from attrib.targets import parse_class

        try:
            index = parse_class(value, self.labels)
        except UsageError as error:
            raise UsageError(f"{self.file} {where}: {error}") from None
        if index is None:
            raise UsageError(f"{self.file} {where}: {value!r} is not a class (the table gives each image its class)")
        return index
