"""Shell completion (attrib/cli/completion.py): what Tab offers, through click's completion protocol as the
shells' scripts call it, and once through bash itself."""

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from attrib.cli import main
from attrib.cli import completion_cache
from attrib.cli.completion import rejoined
from attrib.jobs.explain_text import available
from attrib.methods import METHODS
from attrib.models.samples import samples

@pytest.fixture(autouse=True)
def lists_kept_here(tmp_path, monkeypatch):
    """Each test keeps its lists in a folder of its own (not in ~/.cache)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


CODE = "import torch\n\n\ndef build():\n    return Net()\n\n\nclass Net(torch.nn.Module):\n    pass\n"


def offered(words: str, current: int | None = None, shell: str = "bash") -> list[tuple[str, str]]:
    """(type, value) of each item offered for the word ``current`` of ``words`` (default: the last one, a new one
    after a space)."""
    current = len(words.split()) - (not words.endswith(" ")) if current is None else current
    env = {"_ATTRIB_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": str(current)}
    result = CliRunner().invoke(main, [], env=env, prog_name="attrib", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line]
    if shell == "zsh":  # type, value, help: three lines an item
        return [(lines[i], lines[i + 1]) for i in range(0, len(lines), 3)]
    return [tuple(line.split(",", 1)) for line in lines]


def values(words: str, current: int | None = None, shell: str = "bash") -> list[str]:
    return [value for kind, value in offered(words, current, shell) if kind == "plain"]


def test_bash_words_split_at_colons_are_joined_again():
    assert rejoined(["attrib", "explain", "-M", "timm", ":", "res"], 5) == (["attrib", "explain", "-M", "timm:res"], 3)
    assert rejoined(["attrib", "-M", "timm", ":"], 3) == (["attrib", "-M", "timm:"], 2)
    assert rejoined(["attrib", "-M", "a.py", ":", "Net", "x.jpg"], 5) == (["attrib", "-M", "a.py:Net", "x.jpg"], 3)
    assert rejoined(["attrib", "-M", "timm", ":"], 4) == (["attrib", "-M", "timm:"], 3)  # a new word after them


def test_models_after_a_prefix_are_offered_as_bash_replaces_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    items = offered("attrib explain -M timm : resnet1", 5)
    assert items[0] == ("file", "timm:resnet1")  # first: bash clears what came before a file item
    names = [value for kind, value in items[1:]]
    assert "resnet18" in names and all(n.startswith("resnet1") for n in names)  # bash keeps "timm:" itself
    assert values("attrib diffroar -M sample :", 4) == sorted(samples())
    assert values("attrib explain -M tv : resnet50.", 5) == ["resnet50.IMAGENET1K_V1", "resnet50.IMAGENET1K_V2"]
    assert values("attrib explain -M t", 3) == ["timm:", "torchvision:", "tv:"]
    assert values("attrib explain -M timm:resnet5", 3, shell="zsh")[:2] == ["timm:resnet50", "timm:resnet50_clip"]


def test_a_code_file_offers_what_it_defines_models_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(CODE)
    assert values("attrib explain -M nets.py :", 4) == ["Net", "build"]
    assert values("attrib sanity -M nets.py : N", 5) == ["Net"]


def test_names_never_hide_a_path_that_begins_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert values("attrib explain sa") == ["sample:chelsea", "sample:coffee", "sample:rocket", "sample:astronaut"]
    assert values("attrib explain sample : co", 4) == ["coffee"]
    (tmp_path / "sand.jpg").write_bytes(b"")
    assert offered("attrib explain sa") == [("file", "sa")]
    assert offered("attrib explain ") == [("file", "")]  # nothing typed: the files
    (tmp_path / "timm-nets").mkdir()
    assert offered("attrib explain -M ti") == [("file", "ti")]


def test_data_sets_by_name_and_folders_after_their_prefix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert values("attrib diffroar -d block") == ["blockdigits", "blockdigits-top"]
    assert "torchvision:CIFAR10" in values("attrib diffroar --dataset t") and "folder:" in values("attrib diffroar -d ")
    (tmp_path / "pets").mkdir()
    (tmp_path / "pets.zip").write_bytes(b"")
    assert values("attrib diffroar -d folder : pe", 5) == ["pets/", "pets.zip"]


def test_methods_are_the_commands_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image = set(values("attrib explain -m "))
    assert image == {alias for name in METHODS.of_kind("tensor") for alias in (name, *METHODS[name].aliases)}
    assert values("attrib sanity -m IG") == ["ig"]  # names are read as the registry reads them, any case
    text = set(values("attrib explain-text -m "))
    assert text == {alias for name in available() for alias in (name, *METHODS[name].aliases)}  # as it says
    assert {"olm", "olm_s", "ig"} <= text and "olm" not in image
    assert set(values("attrib sanity-text -m ")) == text


def test_settings_are_the_given_methods_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert values("attrib explain -m sg --set n") == ["n_samples=", "noise_frac="]
    assert values("attrib explain -m ig --set n") == ["n_steps="]
    assert values("attrib explain --set ig.t") == ["ig.tol="]
    everything = values("attrib explain --set n")  # no method given yet: every image method's
    assert {"n_samples=", "n_steps=", "noise_frac="} <= set(everything)
    assert values("attrib explain-text -m olm --set n") == ["n_samples="]


def test_an_empty_value_earlier_on_the_line_does_not_stop_completion(tmp_path, monkeypatch):
    """The command refuses an option given an empty value, but not while Tab parses the line."""
    monkeypatch.chdir(tmp_path)
    assert values("attrib explain --out '' -m ig --set n") == ["n_steps="]


def test_a_failing_completion_offers_nothing(monkeypatch):
    import attrib.models

    def broken(text):
        raise RuntimeError("no")

    monkeypatch.setattr(attrib.models, "spec_completions", broken)
    assert offered("attrib explain -M timm : res", 5) == []


def test_lists_are_kept_until_the_code_or_a_library_changes(tmp_path, monkeypatch):
    made = []

    def make():
        made.append(1)
        return ["a", "b"]

    assert completion_cache.remembered("x", make) == ["a", "b"] == completion_cache.remembered("x", make)
    assert len(made) == 1 and completion_cache.cache_file().is_file()
    monkeypatch.setattr(completion_cache, "_stamp", lambda: "another torch")
    assert completion_cache.remembered("x", make) == ["a", "b"] and len(made) == 2
    completion_cache.cache_file().write_text("{half")
    assert completion_cache.remembered("x", make) == ["a", "b"] and len(made) == 3
    completion_cache.cache_file().write_text(json.dumps({"stamp": "another torch", "lists": 5}))
    assert completion_cache.remembered("x", make) == ["a", "b"] and len(made) == 4
    assert json.loads(completion_cache.cache_file().read_text())["lists"] == {"x": ["a", "b"]}
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache" / "attrib" / "completion.json"))  # not a folder
    assert completion_cache.remembered("x", make) == ["a", "b"] and len(made) == 5  # made, not kept


def test_a_code_file_is_read_again_once_edited(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(CODE)
    assert values("attrib explain -M nets.py :", 4) == ["Net", "build"]
    (tmp_path / "nets.py").write_text(CODE + "\n\nclass Wide(torch.nn.Module):\n    pass\n")
    assert values("attrib explain -M nets.py :", 4) == ["Net", "Wide", "build"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_a_model_after_its_prefix(tmp_path):
    """The script `_ATTRIB_COMPLETE=bash_source attrib` prints, run by bash on the words bash makes of
    `attrib explain -M timm:resnet1` (split at ':')."""
    command = tmp_path / "attrib"
    program = "import atexit, sys; atexit.register(lambda: print('torch', 'torch' in sys.modules, file=sys.stderr)); " \
        "from attrib.cli import main; main(prog_name='attrib')"
    command.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{program}" "$@"\n')
    command.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    source = subprocess.run([str(command)], env={**env, "_ATTRIB_COMPLETE": "bash_source"}, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    script = source + '\nCOMP_WORDS=(attrib explain -M timm : resnet1); COMP_CWORD=5\n_attrib_completion attrib\n' \
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    for first in (True, False):
        done = subprocess.run(["bash", "--norc", "-c", script], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert "resnet18" in done.stdout.split() and "timm:resnet18" not in done.stdout, done.stdout + done.stderr
        assert f"torch {first}" in done.stderr  # the second Tab reads the kept list: no torch imported
