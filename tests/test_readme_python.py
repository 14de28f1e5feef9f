"""The README's Python examples run as written, and say what they print."""

import re
from pathlib import Path

from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


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
