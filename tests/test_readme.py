"""The README says what the code does: its Python examples run as written and print what they say, its methods
table gives the defaults the code has, its sample models' table the numbers of their cards. (Its command lines:
tests/cli/test_docs.py.)"""

import ast
import json
import re
from pathlib import Path

from PIL import Image

from attrib.methods import METHODS, describe_options
from attrib.sample_models import RECIPES

README = Path(__file__).resolve().parents[1] / "README.md"
CARDS = Path(__file__).resolve().parents[1] / "attrib" / "sample_models" / "weights"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_api_example_runs_and_its_comments_hold():
    example = blocks()[0]
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)  # noqa: S102 - our own README
    res, x = scope["res"], scope["x"]
    assert str(res.values.dtype) == "torch.float32" and res.values.device.type == "cpu"  # "float32 CPU tensor"
    assert tuple(res.values.shape) == tuple(x.shape) and len(res.target) == len(x)
    stated = int(re.search(r"(\d+) here", example).group(1))  # "... at most 2 x 64; 24 here"
    assert res.passes == stated and res.passes <= 2 * 64
    assert set(res.extras) >= {"steps", "converged", "map_error"}


def test_the_job_example_runs(tmp_path, monkeypatch):
    from skimage.data import chelsea

    monkeypatch.chdir(tmp_path)
    Image.fromarray(chelsea()).save("cat.jpg")
    example = blocks()[1]
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)  # noqa: S102
    record = scope["record"]
    assert [m["method"] for m in record["methods"]] == ["integrated_gradients", "smoothgrad"]
    assert (tmp_path / "runs" / "cat" / "run.json").is_file()


def method_rows() -> list[tuple[list[str], list[tuple[str, str]]]]:
    """The README's methods table: the names in each row's first cell, the ``KEY=VALUE`` options in its second."""
    text = README.read_text()
    table = text[text.index("| name (aliases) |"):]
    rows = [line.split(" | ") for line in table.split("\n\n")[0].splitlines()[2:]]
    return [(re.findall(r"`(\w+)`", row[0]), re.findall(r"`(\w+)=([^`]*)`", row[1])) for row in rows]


def test_the_methods_table_lists_every_method_with_its_defaults():
    rows = method_rows()
    listed = {name for names, _ in rows for name in names}
    ours = {name for name in METHODS.of_kind("tensor") if METHODS[name].fn.__module__.startswith("attrib.")}
    assert listed >= ours  # (the tests register a method of their own)
    for names, options in rows:
        defaults = {}
        for name in names:
            spec = METHODS[name]
            for o in describe_options(spec.config, spec.needs):
                defaults.setdefault(o["name"], []).append(o["default"])
        for key, shown in options:
            first = shown.split("\\|")[0]  # "adaptive"|"gausslegendre": the first is the default
            assert key in defaults, f"{names[0]}: no option {key}"
            if first != "tensor" and "auto" not in defaults[key]:
                assert ast.literal_eval(first) in defaults[key], f"{names[0]}: {key}={first}, code: {defaults[key]}"


def test_the_sample_models_table_shows_their_cards():
    text = README.read_text()
    rows = re.findall(r"^\| `sample:([\w-]+)` \| [^|]+ \| ([\d.]+) \| ([\d.]+) at eps ([\d.]+) \|$", text, re.M)
    assert sorted(name for name, *_ in rows) == sorted(RECIPES)
    for name, accuracy, robust, eps in rows:
        card = json.loads((CARDS / f"{name}.json").read_text())
        assert (float(accuracy), float(robust)) == (round(card["test_accuracy"], 3), round(card["robust_accuracy"], 3))
        assert float(eps) == card["robust_attack"]["eps"]
