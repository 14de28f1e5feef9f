"""Text inputs and the unit of text attribution: the word.

Words are maximal runs of letters/digits/underscore, with inner apostrophes or hyphens kept ("don't",
"well-made"); each CJK ideograph is a unit of its own (those scripts put no spaces between words; BERT-style
tokenizers split them per character too); every other non-space character (punctuation, symbols) is a unit of
its own, except invisible ones (format and control characters: zero-width spaces and joiners, soft hyphens),
which are no unit. Each unit keeps its character span, so replacing or deleting a unit edits the original
string and leaves the rest untouched.

A text may come with a second text, its pair (a premise and its hypothesis, a question and its passage), which
the classifier reads as one input, as it was trained to. Such an input is the tuple (text, pair); its words are
the first text's, then the pair's, each with the index of its text (``segment``).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import stat
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from attrib.data import not_a_file, picture_kind, piped_bytes, unicode_text
from attrib.errors import AttribError, counted, first_line

# CJK ideographs, each a unit of its own (the ranges BERT's tokenizer splits per character): Chinese and
# Japanese kanji are written without spaces, so a run of them is a sentence, not a word
IDEOGRAPH = ("\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ceaf"
             "\U0002f800-\U0002fa1f")
SKIN_TONES, JOINER = "\U0001f3fb-\U0001f3ff", "\u200d"


@functools.cache
def _units() -> re.Pattern:
    """The unit pattern (built once: the combining marks are read from Unicode's tables, not listed by hand).
    Combining marks (vowel signs, viramas, accents written as a separate code point, variation selectors) stay
    in the unit they modify, so "हिन्दी" is one word; an emoji's modifiers and zero-width-joined parts stay in it."""
    marks = _ranges(lambda c: unicodedata.category(c).startswith("M"), 0x20000) + "\U000e0100-\U000e01ef"
    letter = rf"(?:[^\W{IDEOGRAPH}]|[{marks}])"  # a word character that is not an ideograph, or a mark
    symbol = rf"[^\w\s](?:[{marks}{SKIN_TONES}]|{JOINER}[^\w\s])*"
    return re.compile(rf"[{IDEOGRAPH}][{marks}]*|{letter}+(?:['’-]{letter}+)*|{symbol}")


def _ranges(test, end: int) -> str:
    """A regex class body of the code points below ``end`` that pass ``test``."""
    out, start = [], None
    for point in range(end + 1):
        inside = point < end and test(chr(point))
        if inside and start is None:
            start = point
        elif not inside and start is not None:
            out.append(re.escape(chr(start)) + ("" if point - 1 == start else "-" + re.escape(chr(point - 1))))
            start = None
    return "".join(out)


NOT_TEXT = (".arrow", ".feather", ".xlsx", ".xls", ".pkl", ".pickle")
TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".txt")  # what a .zip may hold (see _unzipped)
PARQUET = ".parquet"  # Hugging Face datasets' format: read with pyarrow (pip install 'attrib[parquet]')
COMPRESSED = (".gz", ".bz2", ".xz")  # dev.jsonl.gz: read as dev.jsonl
DELIMITERS = (",", "\t", ";", "|")  # a table's, tried in this order (see _delimiter)
TEXT_COLUMNS = ("text", "sentence")  # the text column without --column, as Hugging Face datasets name it
NOT_AN_OBJECT = 'not a JSON object (each line must be one, e.g. {"text": ...})'
NOT_AN_ITEM = 'not a JSON object (each item of the array must be one, e.g. {"text": ...})'


class TextInputError(AttribError):
    """A text input that cannot be used; one line naming the input and the reason."""


TextInput = str | tuple[str, str]  # one text, or a text and its pair


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int
    segment: int = 0  # 0: the text, 1: its pair; the span is within that text


@dataclass(frozen=True)
class TextItem:
    """One text to explain: a display name, the text, an optional second text it is read with (its pair) and
    an optional gold label from a column."""

    name: str
    text: str
    label: str | None = None
    error: str | None = None  # a row that could not be read (a malformed JSON line): it fails alone
    pair: str | None = None

    @property
    def input(self) -> TextInput:
        """What the classifier reads: the text, or the tuple (text, pair)."""
        return self.text if self.pair is None else (self.text, self.pair)


def split_words(text: TextInput) -> list[Word]:
    """The text's units with their character spans; of a (text, pair) tuple, the text's then the pair's."""
    if isinstance(text, tuple):
        return [Word(w.text, w.start, w.end, segment) for segment, part in enumerate(text)
                for w in split_words(part)]
    return [Word(m.group(), m.start(), m.end()) for m in _units().finditer(text) if not _invisible(m.group())]


def _invisible(unit: str) -> bool:
    return all(unicodedata.category(c) in ("Cf", "Cc") for c in unit)


def replace_word(text: TextInput, word: Word, replacement: str) -> TextInput:
    """``text`` with one unit replaced (by "" to delete it, collapsing the space it leaves); of a (text, pair)
    tuple, in the word's own text."""
    if isinstance(text, tuple):
        parts = list(text)
        parts[word.segment] = replace_word(parts[word.segment], word, replacement)
        return tuple(parts)
    if replacement:
        return text[:word.start] + replacement + text[word.end:]
    left, right = text[:word.start], text[word.end:]
    if left.endswith(" ") and (right.startswith(" ") or not right):
        left = left[:-1]
    elif not left and right.startswith(" "):
        right = right[1:]
    return left + right


def read_texts(texts: list[str], file: str | None = None, column: str | None = None,
               label_column: str | None = None, pairs: list[str] | None = None,
               pair_column: str | None = None) -> list[TextItem]:
    """Texts from arguments (each with its pair from ``pairs``, in order, when given), then from ``file`` ("-":
    standard input): one per line, or a CSV / JSONL file's ``column`` (and ``pair_column``)."""
    if pairs and len(pairs) != len(texts):
        raise TextInputError(f"{counted(len(pairs), 'pair')} for {counted(len(texts), 'text')} given as arguments: "
                             "give one --pair per text, in order")
    items = [TextItem(f"text {i + 1}", t, pair=pairs[i] if pairs else None) for i, t in enumerate(texts)]
    if file is None:
        return items
    columns = Columns(column, label_column, pair_column)
    if file != "-" and Path(file).suffix.lower() == PARQUET:
        return items + _parquet_items(Path(file), columns)
    source = TextFile.open(file, column)
    if source.suffix in (".csv", ".tsv", ".jsonl", ".json") or column is not None:
        return items + _column_items(source, _table_rows(source, columns.text), columns)
    if pair_column is not None:
        raise TextInputError(f"{source.where}: --pair-column names a column of CSV or JSONL rows; this file is read "
                             "as plain lines (give --column too if it is a table)")
    lines = [line.rstrip("\r\n") for line in source.lines()]
    return items + [TextItem(f"{source.name}:{n}", line) for n, line in enumerate(lines, 1) if line.strip()]


def _text_of(data: bytes, where: str) -> str:
    """The text of a file of texts; a TextInputError naming a picture given instead (a JPEG is no UTF-8 text)."""
    picture = picture_kind(data)
    if picture:
        raise TextInputError(f"{where}: {picture}, not text; explain pictures with `attrib explain`")
    return unicode_text(data, where, TextInputError)


@dataclass(frozen=True)
class TextFile:
    """A file of texts, read whole: ``where`` names it in errors (its path, or "stdin"), ``name`` its rows."""

    where: str
    name: str
    suffix: str
    text: str

    @classmethod
    def open(cls, file: str, column: str | None) -> "TextFile":
        """The file, or standard input for "-" (its kind read from its first character when ``column`` says it is
        a table: JSON with "{" or "[", else CSV)."""
        if file == "-":
            return cls._piped("stdin", piped_bytes("--file"), column)
        path = Path(file)
        if _a_pipe(path):  # a shell's process substitution: --file <(zcat reviews.gz)
            return cls._piped(str(path), path.read_bytes(), column)
        if not path.is_file():
            raise TextInputError(not_a_file(path))
        suffix, data = path.suffix.lower(), None
        if suffix in COMPRESSED:
            data, suffix = _decompressed(path, suffix), Path(path.stem).suffix.lower()
        elif suffix == ".zip":
            data, suffix = _unzipped(path)
        if suffix == PARQUET:  # x.parquet.gz
            raise TextInputError(f"{path}: a compressed Parquet file; decompress it (Parquet compresses its own "
                                 "columns)")
        if suffix in NOT_TEXT:
            raise TextInputError(f"{path}: a {suffix} file is not text; give plain lines, CSV/TSV, JSONL or a JSON "
                                 "array (convert it, e.g. with pandas' to_json(..., orient='records', lines=True))")
        data = path.read_bytes() if data is None else data
        return cls(str(path), path.name, suffix, _text_of(data, str(path)))

    @classmethod
    def _piped(cls, where: str, data: bytes, column: str | None) -> "TextFile":
        """Texts that came through a pipe; a table's kind is read from its first character."""
        text = _text_of(data, where)
        kind = "" if column is None else {"{": ".jsonl", "[": ".json"}.get(text.lstrip()[:1], ".csv")
        return cls(where, where, kind, text)

    def lines(self) -> list[str]:
        """The lines, ends kept, broken at \\n, \\r and \\r\\n only, as editors and the csv module count them
        (str.splitlines also breaks at U+2028, form feeds and more, which split a JSON line or a CSV row)."""
        return io.StringIO(self.text, newline="").readlines()


def _a_pipe(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


def _decompressed(path: Path, suffix: str) -> bytes:
    """A gzip, bzip2 or xz file's contents; one line when it is not one, or is cut short."""
    import bz2
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[suffix]
    try:
        with opener(path) as stream:
            return stream.read()
    except (OSError, EOFError, lzma.LZMAError) as error:
        raise TextInputError(f"{path}: not a readable {suffix} file ({first_line(error)})") from None


def _unzipped(path: Path) -> tuple[bytes, str]:
    """The one text file a zip holds, as Kaggle ships a table ("IMDB Dataset.csv.zip"), and its suffix; one line
    when it holds none, or several (which to read is the user's call)."""
    from attrib.data.archives import ArchiveError, archive_members, read_member

    try:
        members, _ = archive_members(path, TEXT_SUFFIXES)
        if len(members) != 1:
            held = ", ".join(name for name, _ in members[:3]) + (", ..." if len(members) > 3 else "")
            raise TextInputError(f"{path}: holds {len(members)} text files ({held}); extract the one to read"
                                 if members else f"{path}: holds no {', '.join(TEXT_SUFFIXES)} file")
        (name, read), = members
        return read_member(read), PurePosixPath(name).suffix.lower()
    except ArchiveError as error:
        raise TextInputError(f"{path}: {error}") from None


def _table_rows(source: TextFile, column: str | None = None) -> list[tuple[str, dict | str]]:
    """(name, row): ``FILE:N`` with the line a CSV row starts on (after its header; a quoted text may span lines;
    its delimiter: :func:`_delimiter`) or a JSONL row's line, as for a file of plain lines; a JSON array's items
    by index (:func:`_array_rows`). A JSONL line that is not a JSON object is its one-line reason instead of a
    row."""
    lines = source.lines()  # with their ends: a quoted text keeps its line breaks
    if source.suffix not in (".jsonl", ".json"):
        reader = csv.DictReader(lines, delimiter=_delimiter(source.suffix, lines[0] if lines else "", column))
        rows, end = [], (reader.fieldnames, reader.line_num)[1]
        for row in reader:
            start = end + 1
            while start < reader.line_num and not lines[start - 1].strip():  # blank lines DictReader skipped
                start += 1
            rows.append((f"{source.name}:{start}", row))
            end = reader.line_num
        return rows
    if source.text.lstrip().startswith("["):
        return _array_rows(source)
    rows = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
                problem = None if isinstance(row, dict) else NOT_AN_OBJECT
            except json.JSONDecodeError as error:
                problem = f"not a JSON line ({error.msg})"
            rows.append((f"{source.name}:{n}", f"{source.where}:{n}: {problem}" if problem else row))
    return rows


def _delimiter(suffix: str, header: str, column: str | None) -> str:
    """A .tsv's tab; else the first of comma, tab (Excel's "Unicode text" .txt), semicolon (Excel's CSV where
    the decimal mark is a comma) and bar that makes the header name the text ``column`` (None: one of
    TEXT_COLUMNS); else comma."""
    if suffix == ".tsv":
        return "\t"
    wanted = {column} if column is not None else set(TEXT_COLUMNS)
    fits = (d for d in DELIMITERS if wanted & set(next(csv.reader([header], delimiter=d), [])))
    return next(fits, ",")


@dataclass(frozen=True)
class Columns:
    """The columns of a table's rows: the text's, and the optional gold label's and pair's."""

    text: str | None
    label: str | None = None
    pair: str | None = None


def _array_rows(source: TextFile) -> list[tuple[str, dict | str]]:
    """(name, row) for each item of a JSON file that holds one array, named ``FILE[i]`` (0-based, as jq and Python
    index it: items need not start lines of their own); an item that is not a JSON object is its one-line reason
    instead of a row. One line for the file when it is not valid JSON."""
    try:
        items = json.loads(source.text)
    except json.JSONDecodeError as error:
        raise TextInputError(f"{source.where}: not a JSON array ({error.msg} at line {error.lineno}, column "
                             f"{error.colno}); give a JSON array of objects, or one JSON object per line") from None
    return [(f"{source.name}[{i}]", item if isinstance(item, dict) else f"{source.where}[{i}]: {NOT_AN_ITEM}")
            for i, item in enumerate(items)]


def _column_items(source: TextFile, rows: list[tuple[str, dict | str]], columns: Columns) -> list[TextItem]:
    """The column's texts (and labels, pairs); the columns are checked against the first readable row."""
    first = next((row for _, row in rows if isinstance(row, dict)), None)
    columns = _checked_columns(source.where, None if first is None else list(first), columns)
    return [_column_item(name, row, columns) for name, row in rows]


def _checked_columns(where: str, names: list | None, columns: Columns) -> Columns:
    """``columns``, the text's being the table's column named as one of TEXT_COLUMNS where none is given; one line
    when there is none, or a given column is not among the table's ``names`` (None: unknown, as for a table
    without readable rows)."""
    if columns.text is None:
        found = [name for name in TEXT_COLUMNS if name in (names or ())]
        among = f" (columns: {', '.join(map(str, names))})" if names else ""
        if len(found) != 1:
            raise TextInputError(f"{where}: say which column holds the text with --column{among}")
        columns = replace(columns, text=found[0])
    named = (("", columns.text), ("label ", columns.label), ("pair ", columns.pair))
    for kind, column in named:
        if names is not None and column is not None and column not in names:
            raise TextInputError(f"{where}: no {kind}column {column!r}; columns: {', '.join(map(str, names))}")
    return columns


def _parquet_items(path: Path, columns: Columns) -> list[TextItem]:
    """A Parquet file's rows (Hugging Face datasets ship as such: ``glue/sst2/validation-*.parquet``), named
    ``FILE[i]`` as a JSON array's items; only the named columns are read."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TextInputError(f"{path}: reading Parquet needs pyarrow: pip install 'attrib[parquet]' (or convert "
                             "it to CSV or JSONL)") from None
    if not path.is_file():
        raise TextInputError(not_a_file(path))
    try:
        table = pq.ParquetFile(path)
        columns = _checked_columns(str(path), table.schema_arrow.names, columns)
        wanted = list(dict.fromkeys(c for c in (columns.text, columns.label, columns.pair) if c is not None))
        rows = table.read(columns=wanted).to_pylist()
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise TextInputError(f"{path}: not a readable Parquet file ({first_line(error)})") from None
    return [_column_item(f"{path.name}[{i}]", row, columns) for i, row in enumerate(rows)]


def _column_item(name: str, row: dict | str, columns: Columns) -> TextItem:
    """One row's text, label and pair, or its reason for failing alone (an unreadable line, a row without one of
    the columns)."""
    if isinstance(row, str):
        return TextItem(name, "", error=row)
    for column in (columns.text, columns.pair):
        if column is not None and column not in row:
            return TextItem(name, "", error=f"{name}: no column {column!r} in this row")
    label = row.get(columns.label) if columns.label is not None else None
    pair = None if columns.pair is None else str(row[columns.pair] or "")
    return TextItem(name, str(row[columns.text] or ""), None if label is None else str(label), pair=pair)
