"""The command lines the README and the commands' help show name commands, options, choices, methods and method
options that exist: a renamed flag or method fails here, not in a reader's terminal."""

import re
import shlex
from pathlib import Path

import click
import pytest

from attrib.cli import main
from attrib.methods import METHODS, describe_options

README = Path(__file__).resolve().parents[2] / "README.md"
STOP = {"|", "&&", ";", "...", ">", "2>&1"}  # what ends a command line in an example


def readme_lines() -> list[str]:
    text = README.read_text().replace("\\\n", " ")
    blocks = [line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]
    return blocks + re.findall(r"`(attrib [^`]*)`", text)


def help_lines() -> list[str]:
    """Each example line of the help texts, without the words explaining it (two or more spaces on)."""
    epilogs = [command.epilog or "" for command in main.commands.values()] + [main.epilog]
    return [re.split(r" {2,}", line.strip())[0] for epilog in epilogs
            for line in epilog.replace("\\\n", " ").splitlines()]


def command_lines() -> list[list[str]]:
    out = []
    for line in readme_lines() + help_lines():
        start = line.find("attrib ")
        words = shlex.split(line[start:], comments=True) if start >= 0 else []
        if len(words) > 1 and re.fullmatch(r"[a-z-]+", words[1]):
            out.append(words)
    return out


def problems(words: list[str]) -> list[str]:
    command = main.get_command(click.Context(main), words[1])
    if command is None:
        return [f"no command {words[1]!r}"]
    options = {name: param for param in command.params for name in param.opts + param.secondary_opts}
    kind = "text" if words[1] in ("explain-text", "sanity-text") else "tensor"
    out = []
    for word, value in zip(words[2:], words[3:] + [""]):
        if word in STOP:
            break
        name = word.split("=")[0]
        if not word.startswith("-") or word in ("-", "-h", "--help") or re.fullmatch(r"-?[\d.]+%?", word):
            continue
        if name not in options:
            out.append(f"no option {name}")
        elif choices(options[name]) and value not in STOP and value not in choices(options[name]):
            out.append(f"{name} {value}: not one of {choices(options[name])}")
        elif name in ("-m", "--method") and value not in METHODS:
            out.append(f"no method {value!r}")
        elif name == "--set":
            out += unknown_setting(value, kind)
    return out


def choices(param: click.Parameter) -> list[str]:
    return list(param.type.choices) if isinstance(param.type, click.Choice) else []


def unknown_setting(item: str, kind: str) -> list[str]:
    key = item.split("=")[0]
    method, _, key = key.rpartition(".")
    names = [METHODS.canonical(method)] if method else METHODS.of_kind(kind) + METHODS.of_kind("text")
    keys = {o["name"] for name in names for o in describe_options(METHODS[name].config, METHODS[name].needs)}
    return [] if key in keys else [f"--set {item}: no method option {key!r}"]


def test_the_examples_are_many_enough_to_mean_something():
    lines = command_lines()
    assert len(lines) > 80 and {words[1] for words in lines} >= {"explain", "explain-text", "diffroar", "sanity",
                                                                   "sanity-text", "report", "methods", "models"}


@pytest.mark.parametrize("words", command_lines(), ids=lambda words: " ".join(words)[:80])
def test_an_example_names_what_exists(words):
    assert problems(words) == []


def test_the_check_finds_what_drifted():
    assert problems(["attrib", "explain", "x.jpg", "--steps", "3"]) == ["no option --steps"]
    assert problems(["attrib", "explain", "-m", "integrated-gradient"]) == ["no method 'integrated-gradient'"]
    assert problems(["attrib", "explain", "--set", "ig.steps=3"]) == ["--set ig.steps=3: no method option 'steps'"]
    assert problems(["attrib", "explain", "--view", "heat"])[0].startswith("--view heat: not one of")
    assert problems(["attrib", "explian"]) == ["no command 'explian'"]
