"""What Tab offers on the command line (click's shell completion; README, *Shell completion*).

Paths complete as the shell completes them. Other values come from where the code knows them: method names
and their options from the method registry, models from the loader registry (``timm:``, ``sample:``, ... and
the models after each; what ``FILE.py`` defines), sample images from the data module. Each callback imports
what it needs when Tab is pressed, never when a command runs. The registries import torch (1-3 s, timm's names
seconds more), so what they list is kept on disk (attrib/cli/completion_cache.py) and the next Tab reads it back
in milliseconds. A callback that fails (a library missing, a file unreadable) offers nothing: no traceback lands
in the prompt.

A name that is not a path is offered only where no path begins as typed: bash shows files only when nothing
else is offered, so a name never hides a file there. bash also splits words at ``:``; :class:`Bash` joins
them again, so that ``timm:res`` completes as one word.
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Callable, Iterable

import click
from click.shell_completion import BashComplete, CompletionItem, add_completion_class, split_arg_string

from attrib.cli.completion_cache import file_stamp, remembered

Complete = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]
IMAGES, TEXTS = "tensor", "text"  # the registry's kinds of inputs (attrib.methods.TENSOR, TEXT), which imports torch


def quiet(complete: Complete) -> Complete:
    """``complete``, offering nothing where it fails."""
    @functools.wraps(complete)
    def offer(ctx: click.Context, param: click.Parameter, text: str) -> list[CompletionItem]:
        try:
            return complete(ctx, param, text)
        except Exception:  # noqa: BLE001 - Tab must never print a traceback
            return []
    return offer


def _offered(names: Iterable[str | tuple[str, str]], text: str) -> list[CompletionItem]:
    """``names`` (or (name, help) pairs) that begin with ``text``, as plain items."""
    pairs = [(n, None) if isinstance(n, str) else n for n in names]
    return [CompletionItem(name, help=help_) for name, help_ in pairs if name.startswith(text)]


def _paths_or(names: list[str], text: str) -> list[CompletionItem]:
    """A path, or one of ``names`` where no path begins with ``text``."""
    path = CompletionItem(text, type="file")
    if glob.glob(glob.escape(os.path.expanduser(text)) + "*"):
        return [path]
    return [path, *_offered(names, text)]


@quiet
def model_spec(ctx: click.Context, param: click.Parameter, text: str) -> list[CompletionItem]:
    """``--model``: a path (a model folder, your code's file), a kind's prefix, a model after it. The specs that
    follow the text up to its last ``:`` or ``.`` (``timm:``, ``timm:resnet50.``) are listed once, and kept."""
    head = text[:max(text.rfind(":"), text.rfind(".")) + 1] if ":" in text else ""
    code = head.partition(":")[0]
    name = f"specs {head}" + (f" {file_stamp(code)}" if code.endswith(".py") and os.path.isfile(code) else "")

    def make() -> list[str]:
        from attrib.models import spec_completions

        return spec_completions(head)
    return _paths_or(remembered(name, make), text)


@quiet
def folder(ctx: click.Context, param: click.Parameter, text: str) -> list[CompletionItem]:
    """A Hugging Face model: a folder here (a hub id is not listed)."""
    return [CompletionItem(text, type="dir")]


@quiet
def image_inputs(ctx: click.Context, param: click.Parameter, text: str) -> list[CompletionItem]:
    """Images: paths, and the built-in samples (``sample:chelsea``)."""
    from attrib.data.images import SAMPLE_NAMES

    return _paths_or([f"sample:{name}" for name in SAMPLE_NAMES], text)


@quiet
def dataset(ctx: click.Context, param: click.Parameter, text: str) -> list[CompletionItem]:
    """``diffroar --dataset``: the data sets by name; after ``folder:``, the folders and files (archives) there."""
    if text.startswith("folder:"):
        found = sorted(glob.glob(glob.escape(text.removeprefix("folder:")) + "*"))
        return [CompletionItem(f"folder:{path}/" if os.path.isdir(path) else f"folder:{path}") for path in found]

    def make() -> list[str]:
        from attrib.data.datasets import DATASET_NAMES

        return [name.removesuffix("PATH") for name in DATASET_NAMES]
    return _offered(remembered("datasets", make), text)


def method_names(inputs: str) -> Complete:
    """``--method`` of a command for ``inputs`` (IMAGES, or TEXTS: what the text commands run)."""
    @quiet
    def complete(ctx: click.Context, param: click.Parameter, text: str) -> list[CompletionItem]:
        methods = _methods()
        return _offered([(alias, methods[name]["summary"]) for name in _of_kind(methods, inputs)
                         for alias in (name, *methods[name]["aliases"])], text.lower())
    return complete


def method_settings(inputs: str) -> Complete:
    """``--set``: ``KEY=`` of the methods given with ``-m`` (of every method where none is given yet), or
    ``METHOD.KEY=`` after ``METHOD.``."""
    @quiet
    def complete(ctx: click.Context, param: click.Parameter, text: str) -> list[CompletionItem]:
        methods = _methods()
        method, dot, _ = text.rpartition(".")
        given = [method] if dot else list(ctx.params.get("methods") or ())
        names = [n for n in (_canonical(methods, m) for m in given) if n] or ([] if dot else _of_kind(methods, inputs))
        prefix = f"{method}." if dot else ""
        options = {f"{prefix}{key}=": f"default {default}" for name in names
                   for key, default in methods[name]["options"].items()}
        return _offered(options.items(), text)
    return complete


def _methods() -> dict[str, dict]:
    """Each method by its name: aliases, kind of inputs, summary, options with their defaults, and whether the
    text commands run it."""
    def make() -> dict[str, dict]:
        from attrib.jobs.explain_text import available
        from attrib.methods import METHODS, describe_options

        text = set(available())
        return {name: {"aliases": list(spec.aliases), "inputs": spec.inputs, "summary": spec.summary,
                       "text": name in text,
                       "options": {o["name"]: str(o["default"]) for o in describe_options(spec.config, spec.needs)}}
                for name, spec in ((name, METHODS[name]) for name in METHODS)}
    return remembered("methods", make)


def _of_kind(methods: dict[str, dict], inputs: str) -> list[str]:
    return [name for name, m in methods.items() if (m["text"] if inputs == TEXTS else m["inputs"] == inputs)]


def _canonical(methods: dict[str, dict], given: str) -> str | None:
    return next((name for name, m in methods.items() if given.lower() in (name, *m["aliases"])), None)


class Bash(BashComplete):
    """click's bash completion, with words that bash split at ``:`` joined again (``timm``, ``:``, ``res`` is
    ``timm:res``); bash then replaces only what follows the last ``:``, so that is what each value offers."""

    def get_completion_args(self) -> tuple[list[str], str]:
        words, current = rejoined(split_arg_string(os.environ["COMP_WORDS"]), int(os.environ["COMP_CWORD"]))
        text = words[current] if current < len(words) else ""
        self.typed = text[:text.rfind(":") + 1]  # what bash keeps of the word
        return words[1:current], text

    def format_completion(self, item: CompletionItem) -> str:
        value = item.value[len(self.typed):] if item.type == "plain" and item.value.startswith(self.typed) \
            else item.value
        return f"{item.type},{value}"


def rejoined(words: list[str], current: int) -> tuple[list[str], int]:
    """``words`` with each ``:`` joined to its neighbours, and the new index of word ``current`` (the word being
    completed; past the end where it is a new, empty word)."""
    out: list[str] = []
    index = None
    for i, word in enumerate(words):
        if out and (word == ":" or out[-1].endswith(":")):
            out[-1] += word
        else:
            out.append(word)
        if i == current:
            index = len(out) - 1
    return out, len(out) if index is None else index


add_completion_class(Bash)
