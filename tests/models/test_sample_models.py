"""Sample models: load from the package, match their model cards, rebuild fresh, reach a wheel."""

import subprocess
import sys
import zipfile

import pytest
import torch

from attrib.data.datasets import load_dataset
from attrib.models import ModelError, load_model
from attrib.sample_models import RECIPES
from attrib.training import PGD, accuracy, robust_accuracy


@pytest.mark.parametrize("name", list(RECIPES))
def test_sample_loads_and_matches_its_card(name):
    model = load_model(f"sample:{name}")
    card = model.card
    assert card["name"] == name and card["command"].endswith(name) and card["seed"] == 0
    data = load_dataset(card["dataset"], **card["dataset_args"])
    assert accuracy(model.module, data.test_x, data.test_y) == pytest.approx(card["test_accuracy"], abs=1e-3)
    assert model.kind == ("vector" if name.startswith("synthetic") else "image")
    fresh = model.factory()
    old, new = model.module.state_dict(), fresh.state_dict()
    assert old.keys() == new.keys() and all(old[k].shape == new[k].shape for k in old)
    assert not all(torch.equal(old[k], new[k]) for k in old)


@pytest.mark.parametrize("task,eps", [("blockdigits", 0.1), ("synthetic", 0.45)])
def test_robust_samples_resist_pgd_and_standard_ones_do_not(task, eps):
    data = load_dataset(task)
    bounds = (0.0, 1.0) if task == "blockdigits" else (None, None)
    attack = PGD(eps, "linf", 10, *bounds)
    robust = robust_accuracy(load_model(f"sample:{task}-robust").module, data.test_x, data.test_y, attack)
    standard = robust_accuracy(load_model(f"sample:{task}-standard").module, data.test_x, data.test_y, attack)
    assert robust > 0.5 > 0.1 > standard


def test_recipe_reproduces_a_sample(tmp_path):
    from attrib.sample_models.train import main

    assert main(["synthetic-standard", "--out", str(tmp_path)]) == 0
    import json

    card = json.loads((tmp_path / "synthetic-standard.json").read_text())
    shipped = load_model("sample:synthetic-standard").card
    assert card["test_accuracy"] == shipped["test_accuracy"] and card["recipe"] == shipped["recipe"]
    assert (tmp_path / "MODEL_CARD.md").read_text().count("sample:synthetic-standard") == 1


def test_unknown_sample_lists_the_shipped_ones():
    with pytest.raises(ModelError, match="blockdigits-robust.*synthetic-standard"):
        load_model("sample:mnist")


@pytest.mark.slow
def test_a_wheel_carries_the_weights_and_templates(tmp_path):
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(root)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("attrib-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in RECIPES:
        assert f"attrib/sample_models/weights/{name}.safetensors" in names
        assert f"attrib/sample_models/weights/{name}.json" in names
    assert {"attrib/report/templates/base.html", "attrib/report/templates/diffroar.html"} <= names
