"""Words and text inputs."""

import codecs
import json
import re

import pytest

from attrib.data.text import TextInputError, read_texts, replace_word, split_words


def test_words_keep_punctuation_as_units_and_inner_apostrophes():
    assert [w.text for w in split_words("It wasn't bad -- really, well-made!")] == \
        ["It", "wasn't", "bad", "-", "-", "really", ",", "well-made", "!"]
    assert split_words("   ") == []
    assert split_words("\u200b\u200b \ufeff") == []  # invisible characters are no units (a text of them is empty)
    assert [w.text for w in split_words("co\u00adoperate\u200bnow")] == ["co", "operate", "now"]


def test_each_cjk_ideograph_is_a_unit_and_other_scripts_keep_their_words():
    assert [w.text for w in split_words("BERT模型很好。")] == ["BERT", "模", "型", "很", "好", "。"]
    assert [w.text for w in split_words("naïve café, 123_x 𠀀a")] == ["naïve", "café", ",", "123_x", "𠀀", "a"]
    text = "我喜欢这部电影"
    words = split_words(text)
    assert len(words) == 7 and replace_word(text, words[2], "") == "我喜这部电影"


def test_combining_marks_and_emoji_modifiers_stay_in_their_unit():
    assert [w.text for w in split_words("हिन्दी फ़िल्म अच्छी है")] == ["हिन्दी", "फ़िल्म", "अच्छी", "है"]  # vowel signs, viramas
    assert [w.text for w in split_words("cafe\u0301, ดี")] == ["cafe\u0301", ",", "ดี"]  # a separate accent; Thai
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # three emoji joined by zero-width joiners
    assert [w.text for w in split_words(f"{family} fun \U0001f44d\U0001f3fd! \u2764\ufe0f")] == \
        [family, "fun", "\U0001f44d\U0001f3fd", "!", "\u2764\ufe0f"]  # a skin tone, a variation selector


def test_replace_and_delete_edit_only_the_word():
    text = "a good film , really"
    words = split_words(text)
    assert replace_word(text, words[1], "bad") == "a bad film , really"
    assert replace_word(text, words[1], "") == "a film , really"
    assert replace_word(text, words[0], "") == "good film , really"
    assert replace_word(text, words[-1], "") == "a good film ,"
    assert replace_word(text, words[1], words[1].text) == text


def test_read_texts_from_lines_csv_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\nsecond line\n")
    (tmp_path / "b.csv").write_text('sentence,label\n"good, fun",positive\nbad,0\n')
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "hi", "y": 1}) + "\n")
    assert [i.text for i in read_texts(["arg"], str(tmp_path / "a.txt"))] == ["arg", "first line", "second line"]
    rows = read_texts([], str(tmp_path / "b.csv"), "sentence", "label")
    assert [(r.text, r.label) for r in rows] == [("good, fun", "positive"), ("bad", "0")]
    assert read_texts([], str(tmp_path / "c.jsonl"), "text", "y")[0].label == "1"
    with pytest.raises(TextInputError, match="no column 'text'; columns: sentence, label"):
        read_texts([], str(tmp_path / "b.csv"), "text")
    # without --column: the column named text or sentence, as Hugging Face datasets name it (sst2, imdb)
    assert [r.text for r in read_texts([], str(tmp_path / "b.csv"))] == ["good, fun", "bad"]
    assert [r.text for r in read_texts([], str(tmp_path / "c.jsonl"))] == ["hi"]
    (tmp_path / "d.csv").write_text("sentence;text\na;b\n")  # both (split at semicolons: they name them)
    with pytest.raises(TextInputError, match=r"say which column holds the text with --column \(columns: sentence, "
                                             r"text\)$"):
        read_texts([], str(tmp_path / "d.csv"))
    (tmp_path / "e.jsonl").write_text(json.dumps({"review": "hi", "y": 1}) + "\n")  # neither
    with pytest.raises(TextInputError, match=r"say which column holds the text with --column \(columns: review, "
                                             r"y\)$"):
        read_texts([], str(tmp_path / "e.jsonl"))
    with pytest.raises(TextInputError, match="file not found"):
        read_texts([], str(tmp_path / "nope.txt"))


def test_every_text_from_a_file_is_named_by_its_line(tmp_path):
    """FILE:N is a line number for plain lines, CSV (the line a row starts on) and JSONL alike."""
    (tmp_path / "a.txt").write_text("one\n\nthree\n")
    (tmp_path / "b.csv").write_text('sentence,label\n"good,\nfun",positive\n\nbad,0\n')
    (tmp_path / "c.jsonl").write_text('{"t": "a"}\n\n{"t": "b"}\n')
    assert [i.name for i in read_texts([], str(tmp_path / "a.txt"))] == ["a.txt:1", "a.txt:3"]
    rows = read_texts([], str(tmp_path / "b.csv"), "sentence", "label")
    assert [(r.name, r.text) for r in rows] == [("b.csv:2", "good,\nfun"), ("b.csv:5", "bad")]  # break kept
    assert [i.name for i in read_texts([], str(tmp_path / "c.jsonl"), "t")] == ["c.jsonl:1", "c.jsonl:3"]


def test_a_json_array_of_rows_is_read_with_its_items_named_by_index(tmp_path):
    """A .json file holding one array (as json.dump writes a list) was read as JSON lines: on one line it was one
    bad row, pretty-printed one bad row per line with the objects between them read."""
    rows = [{"premise": "a man plays", "hypothesis": "a man sings", "label": "neutral"}, 3, {"premise": "ok"}]
    (tmp_path / "one.json").write_text(json.dumps(rows))
    (tmp_path / "pretty.json").write_text(json.dumps(rows, indent=2))
    for name in ("one.json", "pretty.json"):
        items = read_texts([], str(tmp_path / name), "premise", "label", pair_column="hypothesis")
        assert [i.name for i in items] == [f"{name}[0]", f"{name}[1]", f"{name}[2]"]
        assert (items[0].text, items[0].pair, items[0].label, items[0].error) == ("a man plays", "a man sings",
                                                                                 "neutral", None)
        assert items[1].error == f"{tmp_path / name}[1]: not a JSON object (each item of the array must be one, " \
            'e.g. {"text": ...})'
        assert items[2].error == f"{name}[2]: no column 'hypothesis' in this row"
    (tmp_path / "bad.json").write_text('[{"t": "a"},\n]')
    with pytest.raises(TextInputError, match=r"bad.json: not a JSON array \(\w.* at line \d, column \d+\); give a JSON "
                                             "array of objects, or one JSON object per line"):  # Python's words
        read_texts([], str(tmp_path / "bad.json"), "t")
    (tmp_path / "empty.json").write_text("[]")
    assert read_texts([], str(tmp_path / "empty.json"), "t") == []


def test_only_newlines_break_lines_not_the_other_unicode_separators(tmp_path):
    """Scraped text holds U+2028 and form feeds; str.splitlines broke a JSON line there ("not a JSON line") and
    split a CSV row in two (the first half with the label None)."""
    (tmp_path / "a.jsonl").write_text(json.dumps({"t": "one\u2028two"}, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("s,l\none\u2028two,1\nnext,0\n", encoding="utf-8")
    (tmp_path / "c.txt").write_text("one\x0cpage\ntwo\n", encoding="utf-8")
    assert [(i.name, i.text) for i in read_texts([], str(tmp_path / "a.jsonl"), "t")] == [("a.jsonl:1", "one\u2028two")]
    assert [(i.name, i.text, i.label) for i in read_texts([], str(tmp_path / "b.csv"), "s", "l")] == \
        [("b.csv:2", "one\u2028two", "1"), ("b.csv:3", "next", "0")]
    assert [i.text for i in read_texts([], str(tmp_path / "c.txt"))] == ["one\x0cpage", "two"]


def test_utf16_and_utf32_files_with_a_byte_order_mark_are_read(tmp_path):
    """Excel's "Unicode text" and PowerShell 5's `>` write UTF-16 with a byte-order mark: once refused as "not
    UTF-8". Without a mark (or with bytes the mark's codec cannot read) a file is still refused in one line."""
    table = "text\tlabel\nh\u00e9llo \U0001f600\t1\n"
    for i, codec in enumerate(("utf-16", "utf-16-be", "utf-32", "utf-32-be")):
        data = table.encode(codec)
        (tmp_path / f"{i}.tsv").write_bytes(data if codec in ("utf-16", "utf-32") else "\ufeff".encode(codec) + data)
        items = read_texts([], str(tmp_path / f"{i}.tsv"), "text", "label")
        assert [(item.text, item.label) for item in items] == [("h\u00e9llo \U0001f600", "1")], codec
    (tmp_path / "excel.txt").write_text("sentence\tlabel\r\na fine, fun film\t1\r\n", encoding="utf-16")
    (tmp_path / "semi.csv").write_text('sentence;label\n"a fine; fun film";1\n')  # Excel's, with decimal commas
    for name, text in (("excel.txt", "a fine, fun film"), ("semi.csv", "a fine; fun film")):
        items = read_texts([], str(tmp_path / name), "sentence", "label")  # was: no column; columns: sentence\tlabel
        assert [(item.text, item.label) for item in items] == [(text, "1")], name
    (tmp_path / "cut.txt").write_bytes(codecs.BOM_UTF16_LE + "ok\n".encode("utf-16-le") + b"\x00\xd8")
    with pytest.raises(TextInputError, match=re.escape("cut.txt: not UTF-16 text (byte 0x00 at offset 8); save it")):
        read_texts([], str(tmp_path / "cut.txt"))
    (tmp_path / "nobom.txt").write_bytes("fine\nok\n".encode("utf-8") + "ok\n".encode("utf-16-le"))
    with pytest.raises(TextInputError, match=re.escape("nobom.txt: line 3 holds a NUL character (binary data, or "
                                                       "UTF-16 without a byte-order mark?); save it as UTF-8")):
        read_texts([], str(tmp_path / "nobom.txt"))  # once read as texts "o", "k" with NULs between


def test_bad_text_files_name_the_line_or_the_byte(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"t": "ok"}\nnot json\n')
    (tmp_path / "e.jsonl").write_text('{"t": "ok"}\n\n[1, 2]\n')
    (tmp_path / "f.txt").write_bytes(b"fine\n\xff\xfe bad")
    (tmp_path / "g.csv").write_bytes("\ufefftext\nh\u00e9llo\n".encode("utf-8"))  # a byte-order mark, dropped
    (tmp_path / "dev.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(TextInputError, match=r"dev.xlsx: a .xlsx file is not text; give plain lines, CSV/TSV, "
                                             r"JSONL or a JSON array \(convert it, e.g. with pandas"):
        read_texts([], str(tmp_path / "dev.xlsx"), "text")
    undecodable = "f.txt: not UTF-8 text (byte 0xff at offset 5); save it as UTF-8"
    with pytest.raises(TextInputError, match=re.escape(undecodable)):
        read_texts([], str(tmp_path / "f.txt"))
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "photo.jpg")  # was "not UTF-8 text (byte 0xff at offset 0)"
    Image.new("RGB", (8, 8)).save(tmp_path / "shot.txt", format="PNG")  # known by its bytes, not its name
    for name, kind in (("photo.jpg", "JPEG"), ("shot.txt", "PNG")):
        with pytest.raises(TextInputError, match=re.escape(f"{name}: a {kind} image, not text; explain pictures "
                                                           "with `attrib explain`")):
            read_texts([], str(tmp_path / name))
    assert [i.text for i in read_texts([], str(tmp_path / "g.csv"), "text")] == ["h\u00e9llo"]
    # a bad JSON line, or a row without the column, fails alone (the run's other texts go on): its item says why
    (tmp_path / "h.jsonl").write_text('{"t": "fine"}\n{"u": 1}\n')  # (columns: the first row's)
    for name, message, good in (("d.jsonl", "d.jsonl:2: not a JSON line (Expecting value)", "ok"),
                                ("e.jsonl", "e.jsonl:3: not a JSON object", "ok"),
                                ("h.jsonl", "h.jsonl:2: no column 't' in this row", "fine")):
        items = read_texts([], str(tmp_path / name), "t")
        bad = [i for i in items if i.error]
        assert len(bad) == 1 and message in bad[0].error and [i.text for i in items if not i.error] == [good]


def test_saving_the_growing_record_stays_a_bounded_share_of_a_long_run():
    """Simulated clock: 100 texts/s, a save costing 0.1 ms per text in the record, 100,000 texts. Saving every
    5 s alone would spend half the run saving (a save of 100,000 texts takes 10 s)."""
    from attrib.jobs.explain_text import SAVE_EVERY, SAVE_SHARE, save_due

    clock = saved = cost = saving = 0.0
    for n in range(1, 100_001):
        clock += 0.01
        if save_due(clock - saved, cost):
            cost = 1e-4 * n
            clock += cost
            saving += cost
            saved = clock
    assert saving / clock <= SAVE_SHARE
    assert save_due(SAVE_EVERY, 0.0) and not save_due(SAVE_EVERY - 0.1, 0.0)  # cheap saves: every SAVE_EVERY s


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_files_read_as_the_file_inside(tmp_path, suffix):
    """Data sets ship as dev.jsonl.gz: it was refused ("not text; convert it")."""
    import bz2
    import gzip
    import lzma

    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]
    rows = "".join(json.dumps({"t": f"text {i}", "l": i % 2}) + "\n" for i in range(3)) + "\n"
    (tmp_path / "dev.jsonl").write_text(rows)
    (tmp_path / f"dev.jsonl{suffix}").write_bytes(compress(rows.encode()))
    plain = [(i.name, i.text, i.label) for i in read_texts([], str(tmp_path / "dev.jsonl"), "t", "l")]
    packed = [(i.name, i.text, i.label) for i in read_texts([], str(tmp_path / f"dev.jsonl{suffix}"), "t", "l")]
    assert len(plain) == 3 and packed == [(n.replace("dev.jsonl", f"dev.jsonl{suffix}"), t, lab) for n, t, lab in plain]
    (tmp_path / f"lines{suffix}").write_bytes(compress("one\ntwo\n".encode()))  # no inner suffix: plain lines
    assert [i.text for i in read_texts([], str(tmp_path / f"lines{suffix}"))] == ["one", "two"]
    (tmp_path / f"cut.csv{suffix}").write_bytes(compress(b"t\n" + b"word " * 2000)[:-12])
    with pytest.raises(TextInputError, match=rf"cut.csv{re.escape(suffix)}: not a readable \{suffix} file \("):
        read_texts([], str(tmp_path / f"cut.csv{suffix}"), "t")
    (tmp_path / f"dev.parquet{suffix}").write_bytes(compress(b"PAR1\x15\x04"))
    with pytest.raises(TextInputError, match=r"a compressed Parquet file; decompress it"):
        read_texts([], str(tmp_path / f"dev.parquet{suffix}"), "t")


def test_a_zip_holding_one_table_is_read_as_that_table(tmp_path):
    """Kaggle ships text sets as a zip of one CSV ("IMDB Dataset.csv.zip"): it was refused as "not text"."""
    import zipfile

    rows = 'review,sentiment\n"a fine, quiet film",positive\ndull,negative\n'
    (tmp_path / "imdb.csv").write_text(rows)
    with zipfile.ZipFile(tmp_path / "IMDB Dataset.csv.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IMDB Dataset.csv", rows)
        archive.writestr("__MACOSX/._IMDB Dataset.csv", b"\0resource fork")
    plain = [(i.text, i.label) for i in read_texts([], str(tmp_path / "imdb.csv"), "review", "sentiment")]
    packed = read_texts([], str(tmp_path / "IMDB Dataset.csv.zip"), "review", "sentiment")
    assert [(i.text, i.label) for i in packed] == plain == [("a fine, quiet film", "positive"), ("dull", "negative")]
    assert packed[0].name == "IMDB Dataset.csv.zip:2"
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("train.csv", rows)
        archive.writestr("test.csv", rows)
    with zipfile.ZipFile(tmp_path / "pictures.zip", "w") as archive:
        archive.writestr("cat.png", b"\x89PNG")
    for name, message in (("two.zip", "two.zip: holds 2 text files (test.csv, train.csv); extract the one to read"),
                          ("pictures.zip", "pictures.zip: holds no .csv, .tsv, .jsonl, .json, .txt file")):
        with pytest.raises(TextInputError, match=re.escape(message)):
            read_texts([], str(tmp_path / name), "review")


def test_parquet_files_as_hugging_face_datasets_ship_them(tmp_path):
    """glue/sst2's validation split is a Parquet file: its rows are read by column (gold labels as the ints a
    ClassLabel stores), named FILE[i]; a missing column, a broken file and a missing pyarrow are one line each."""
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "validation-00000-of-00001.parquet"
    pq.write_table(pa.table({"idx": [0, 1, 2], "sentence": ["it 's a charming journey .", None, "dull"],
                             "label": [1, 0, 0]}), path)
    items = read_texts(["an argument"], str(path), "sentence", "label")
    assert [(i.name, i.text, i.label) for i in items] == [
        ("text 1", "an argument", None), ("validation-00000-of-00001.parquet[0]", "it 's a charming journey .", "1"),
        ("validation-00000-of-00001.parquet[1]", "", "0"), ("validation-00000-of-00001.parquet[2]", "dull", "0")]
    with pytest.raises(TextInputError, match=r"parquet: no label column 'gold'; columns: idx, sentence, label$"):
        read_texts([], str(path), "sentence", "gold")
    assert read_texts([], str(path))[2].text == "dull"  # its column named sentence, without --column
    pq.write_table(pa.table({"review": ["fine"]}), tmp_path / "reviews.parquet")
    with pytest.raises(TextInputError, match=r"parquet: say which column holds the text with --column \(columns: "
                                             r"review\)$"):
        read_texts([], str(tmp_path / "reviews.parquet"))
    (tmp_path / "broken.parquet").write_bytes(b"PAR1\x15\x04")
    with pytest.raises(TextInputError, match=r"broken.parquet: not a readable Parquet file \("):
        read_texts([], str(tmp_path / "broken.parquet"), "t")
    with pytest.raises(TextInputError, match=r"none.parquet: file not found"):
        read_texts([], str(tmp_path / "none.parquet"), "t")


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails as if it were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "dev.parquet").write_bytes(b"PAR1")
    with pytest.raises(TextInputError, match=r"dev.parquet: reading Parquet needs pyarrow: pip install "
                                             r"'attrib\[parquet\]' \(or convert it to CSV or JSONL\)"):
        read_texts([], str(tmp_path / "dev.parquet"), "t")
