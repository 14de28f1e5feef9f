import json

import pytest
from click.testing import CliRunner
from PIL import Image

from attrib.cli import main

FAST = ["-M", "timm:test_resnet", "--no-pretrained", "--set", "n_steps=4"]  # for runs that include ig
TINY = ["-M", "timm:test_resnet", "--no-pretrained"]


@pytest.fixture
def run_cli():
    def invoke(*args):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        return result

    return invoke


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, colour in enumerate([(200, 30, 30), (20, 180, 40)]):
        Image.new("RGB", (90, 70), colour).save(folder / f"im{i}.png")
    return folder


def parse_json(result):
    return json.loads(result.stdout)
