"""A method registered from a test module (tests/throwaway_method.py) runs everywhere with no other edit:
the registry-wide tests, `attrib explain`, `attrib sanity` and `attrib methods`."""

import numpy as np

import attrib
from attrib.runs import load_run
from tests.cli.conftest import TINY, parse_json
from tests.methods.test_registry import METHOD_NAMES
from tests.throwaway_method import NAME


def test_the_registry_wide_tests_cover_it():
    assert NAME in METHOD_NAMES and attrib.METHODS["sgt"].name == NAME


def test_it_runs_through_attrib_explain(run_cli, images, tmp_path):
    result = run_cli("explain", images, *TINY, "-m", "sgt", "-m", "gradient", "--set", f"{NAME}.scale=2",
                     "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert [m["method"] for m in data["methods"]] == [NAME, "gradient"]
    assert data["methods"][0]["config"] == {"scale": 2.0}
    run = load_run(tmp_path)
    for entry in run.record["inputs"]:
        ours, gradient = run.arrays[(entry["id"], NAME)], run.arrays[(entry["id"], "gradient")]
        assert np.allclose(ours, 2 * gradient, rtol=1e-5, atol=1e-8)


def test_it_runs_through_attrib_sanity(run_cli, tmp_path):
    result = run_cli("sanity", "-M", "sample:blockdigits-standard", "--n", "3", "-m", NAME, "--tests",
                     "randomization", "--max-layers", "2", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    verdicts = {(v["method"], v["test"]) for v in parse_json(result)["verdicts"]}
    assert (NAME, "randomization") in verdicts and (NAME, "data randomization") in verdicts


def test_it_is_listed(run_cli):
    result = run_cli("methods", "--json")
    rows = {r["method"]: r for r in parse_json(result)}
    assert rows[NAME]["aliases"] == ["sgt"] and rows[NAME]["options"][0]["name"] == "scale"
