"""Tables naming each image's class (``--target labels.csv``): formats, keys, headers and one-line errors."""

import json

import pytest
from PIL import Image

from attrib.data import class_table
from attrib.data.class_table import is_class_table, read_class_table
from attrib.data.images import ImageSource, InputError
from attrib.errors import UsageError
from attrib.targets import imagenet_ids

IMAGENET = [f"class {i}" for i in range(1000)]
IMAGENET[281], IMAGENET[282] = "tabby, tabby cat", "tiger cat"
FEW = ["cat", "dog", "bird"]


def _source(path):
    return ImageSource(str(path), lambda: None, str(path))


def _table(tmp_path, name, text, labels=FEW):
    (tmp_path / name).write_text(text)
    return read_class_table(str(tmp_path / name), labels)


def test_kaggles_imagenet_solution_file_with_paths_names_and_stems(tmp_path, monkeypatch):
    """Kaggle's LOC_val_solution.csv (a header, the image's stem, boxes after the WordNet id); paths relative
    to the table's folder or to the working folder; bare names."""
    (tmp_path / "val" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    table = _table(tmp_path / "val", "solution.csv",
                   "ImageId,PredictionString\n"
                   "ILSVRC2012_val_00008726,n02123045 7 8 300 200 n02123045 1 2 3 4\n"
                   "a/x.png,tiger cat\n"
                   "val/a/y.png,7\n"
                   "z.jpg,n01440764\n"
                   "w.jpg,n02085620-Chihuahua\n", IMAGENET)
    wid = imagenet_ids()
    assert table.class_of(_source("val/b/ILSVRC2012_val_00008726.JPEG")) == wid["n02123045"] == 281
    assert table.class_of(_source("val/a/x.png")) == 282  # relative to the table's folder
    assert table.class_of(_source(tmp_path / "val/a/x.png")) == 282  # the same file, given absolutely
    assert table.class_of(_source("val/a/y.png")) == 7  # relative to the working folder
    assert table.class_of(_source("elsewhere/z.jpg")) == 0  # a bare name: any folder
    assert table.class_of(_source("w.jpg")) == 151  # Stanford Dogs' names
    with pytest.raises(InputError, match=r"^val/b/x.png: --target .*solution.csv gives it no class$"):
        table.class_of(_source("val/b/x.png"))  # x.png is keyed by a path, not a name
    with pytest.raises(InputError, match=r"^sample:chelsea: not a file, so --target .* gives it no class$"):
        table.class_of(ImageSource("sample:chelsea", lambda: None))


def test_a_first_row_is_a_header_only_when_it_names_no_class_and_no_image(tmp_path):
    assert _table(tmp_path, "a.csv", "cat.png,dog\nx.png,cat\n").by_name == {"cat.png": 1, "x.png": 0}
    assert _table(tmp_path, "b.csv", "file,label\nx.png,bird\n").by_name == {"x.png": 2}
    with pytest.raises(UsageError, match=r"c.csv line 1: unknown target label 'dgo'; did you mean 'dog'"):
        _table(tmp_path, "c.csv", "x.png,dgo\ny.png,cat\n")  # an image's row, not a header: its typo is named


def test_a_map_of_class_names_given_as_a_table_says_what_takes_it(tmp_path):
    """{index: name} is what --labels reads; as --target it named no image, and every image failed unexplained."""
    table = _table(tmp_path, "classes.json", json.dumps({"0": "cat", "1": "dog", "2": "bird"}))
    with pytest.raises(InputError, match=r"x.png: --target .*classes.json gives it no class \(.*classes.json is "
                                         r"keyed by numbers: if it names the model's classes, --labels takes it\)$"):
        table.class_of(_source("x.png"))
    with pytest.raises(InputError, match=r"x.png: --target .*t.csv gives it no class$"):
        _table(tmp_path, "t.csv", "y.png,cat\n").class_of(_source("x.png"))


def test_tsv_txt_and_json_tables(tmp_path):
    assert _table(tmp_path, "t.tsv", "image\tclass\tsource\na b.png\tcat\tme\n").by_name == {"a b.png": 0}
    caffe = _table(tmp_path, "val.txt", "ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_00000002.JPEG tiger cat\n",
                   IMAGENET)
    assert caffe.by_name == {"ILSVRC2012_val_00000001.JPEG": 65, "ILSVRC2012_val_00000002.JPEG": 282}
    assert _table(tmp_path, "t.json", json.dumps({"x.png": 2, "d/y.png": "Dog"})).by_name == {"x.png": 2}
    assert list(_table(tmp_path, "u.json", json.dumps({"d/y.png": "Dog"})).by_path.values()) == [1, 1]
    assert is_class_table("labels.CSV") and is_class_table(" t.json") and not is_class_table("tiger cat")
    # Excel's CSV where the decimal mark is a comma, and its "Unicode text" (UTF-16, tabs)
    assert _table(tmp_path, "semi.csv", "image;class\nx.png;dog\ny, z.png;2\n").by_name == {"x.png": 1, "y, z.png": 2}
    (tmp_path / "excel.txt").write_text("image\tclass\r\nx.png\tbird\r\n", encoding="utf-16")
    assert read_class_table(str(tmp_path / "excel.txt"), FEW).by_name == {"x.png": 2}


@pytest.mark.parametrize("name, text, message", [
    ("a.csv", "x.png,cat\ny.png\n", r"a.csv line 2: expected an image and its class, got \['y.png'\]"),
    ("b.csv", "x.png,cat\nx.png,dog\n", r"b.csv line 2: 'x.png' has class 1 here but 0 at line 1; give each"),
    ("c.csv", "file,label\n\n", r"--target .*c.csv: the table names no images"),
    ("d.csv", "x.png,pred\n", r"d.csv line 1: 'pred' is not a class"),
    ("e.csv", 'x.png,"cat\n', r"e.csv: not a readable table"),
    ("f.json", "[1, 2]", r"f.json: expected a JSON object \{image: class\}, got a list"),
    ("g.json", '{"x.png": [1]}', r"g.json: entry 'x.png': expected an image name and a class"),
    ("g2.json", '{"x.png": " "}', r"g2.json: entry 'x.png': expected an image name and a class"),
    ("h.json", '{"x.png": 1', r"h.json: not valid JSON \(Expecting"),
    ("i.txt", "x.png 9\n", r"i.txt line 1: target 9 is out of range: the model has 3 classes"),
    ("j.csv", "x.png,n01440764 1 2 3 4\n", r"j.csv line 1: unknown target label 'n01440764'"),  # not ImageNet
])
def test_a_bad_table_is_one_line_naming_where(tmp_path, name, text, message):
    with pytest.raises(UsageError, match=message):
        _table(tmp_path, name, text)


def test_unreadable_tables(tmp_path):
    with pytest.raises(UsageError, match=r"--target .*none.csv: cannot read the table of classes \(No such file"):
        read_class_table(str(tmp_path / "none.csv"), FEW)
    (tmp_path / "latin.csv").write_bytes("x.png,caf\xe9\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"latin.csv: not UTF-8 text \(byte 0xe9"):
        read_class_table(str(tmp_path / "latin.csv"), FEW)
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.csv", format="PNG")  # a picture where a table was asked for
    with pytest.raises(UsageError, match=r"photo.csv: a PNG image, not text$"):  # was "not UTF-8 (byte 0x89 ...)"
        read_class_table(str(tmp_path / "photo.csv"), FEW)


def test_each_distinct_class_is_parsed_once(tmp_path, monkeypatch):
    """ImageNet's validation table has 50,000 rows of 1,000 classes: parsing each row's class against every
    label's synonyms took minutes."""
    calls = []
    real = class_table._Classes._parse
    monkeypatch.setattr(class_table._Classes, "_parse", lambda self, v, w: calls.append(v) or real(self, v, w))
    rows = "".join(f"im{i}.png,{['cat', 'dog', '2'][i % 3]}\n" for i in range(3000))
    table = _table(tmp_path, "many.csv", rows)
    assert len(table.by_name) == 3000 and sorted(calls) == ["2", "cat", "dog"]
