"""The model-loader registry: a spec prefix (``timm:``, ``hf:``, ``sample:``) -> a loader.

Filled in one direction: each loader module imports this one and registers itself; this module imports no
loader. ``attrib.models`` imports the built-in loader modules, so that ``load_model`` knows them all.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attrib.errors import UsageError, counted, first_line
from attrib.models.base import Model, ModelError, check_finite
from attrib.models.checkpoint import a_program, file_kind, file_sha256, folder_weights
from attrib.models.preprocess import overridden

Loader = Callable[..., Model]  # loader(rest_of_spec, *, weights, pretrained, trust_remote_code) -> Model


@dataclass(frozen=True)
class LoaderEntry:
    prefix: str
    loader: Loader
    matches: Callable[[str], bool] | None = None  # also claims specs without the prefix (e.g. a local folder)
    names: Callable[[str], list[str]] | None = None  # the names after "PREFIX:" that begin with a text (for Tab)


LOADERS: dict[str, LoaderEntry] = {}
DEFAULT = "default"
RANDOM_WEIGHTS_SEED = 1234  # --no-pretrained models are initialised from this seed (not 0: a common seed)
FLATTENS = "a model of your own code that flattens pictures reads them given their size: --preprocess size=HxW"


def register_loader(prefix: str, loader: Loader, matches: Callable[[str], bool] | None = None,
                    names: Callable[[str], list[str]] | None = None) -> None:
    """Make ``PREFIX:REST`` specs (and specs ``matches`` accepts) load through ``loader``; ``names(text)`` lists
    the models that may follow the prefix and begin with ``text`` (what the shell offers on Tab)."""
    LOADERS[prefix] = LoaderEntry(prefix, loader, matches, names)


def spec_completions(text: str) -> list[str]:
    """Model specs that begin with ``text``: the prefixes of the kinds that list their models (``timm:``), then,
    after one, its models; after ``FILE.py:``, what the code defines (read, not run)."""
    prefix, sep, rest = text.partition(":")
    if not sep:
        return [f"{p}:" for p, entry in LOADERS.items() if entry.names and p.startswith(prefix)]
    if prefix in LOADERS and LOADERS[prefix].names:
        return [f"{prefix}:{name}" for name in LOADERS[prefix].names(rest)]
    if prefix.endswith(".py") and Path(prefix).is_file():
        return [f"{prefix}:{name}" for name in defined_models(Path(prefix)) if name.startswith(rest)]
    return []


def load_model(spec: str | Path | None = None, *, weights: str | Path | None = None, pretrained: bool = True,
               trust_remote_code: bool = False, labels: str | Path | None = None,
               preprocess: list[str] | tuple[str, ...] = (), pictures: bool = True) -> Model:
    """Resolve a model spec into a :class:`Model` in eval mode (specs: ``attrib models``); ``labels``: a file
    naming its classes (see :func:`read_labels`); ``preprocess``: ``KEY=VALUE`` changes to how it reads pictures
    (see :func:`attrib.models.preprocess.overridden`); ``pictures`` False: none will be read through its
    preprocessing (a data set of tensors), so what the loader assumed of it goes unsaid."""
    preprocess = (preprocess,) if isinstance(preprocess, str) else tuple(preprocess)  # one change, not its letters
    with seeded_weights(not pretrained and weights is None):
        model = _load(spec, weights=weights, pretrained=pretrained, trust_remote_code=trust_remote_code,
                      preprocess=preprocess)
    if preprocess or not pictures:  # said how, or nothing read through it: nothing left assumed to say
        model.assumed = ""
    if model.assumed:
        warnings.warn(model.assumed, stacklevel=2)
    check_finite(model.module, f"{model.name} with weights {weights}" if weights else model.name)
    model.weights = {"file": str(weights), "sha256": file_sha256(weights)} if weights is not None else \
        folder_weights(str(spec or ""))
    if model.n_classes == 0:
        raise ModelError(f"{model.name} has no classifier head (0 classes: a feature extractor or backbone); attrib "
                         "explains classifiers: give --weights with a fine-tuned head, or a classification model")
    if labels is not None:
        model.labels = read_labels(labels, model.n_classes)
    if preprocess:
        if model.preprocess is None:
            raise UsageError(f"--preprocess: {model.name} takes vectors, not pictures; {FLATTENS}")
        before = model.preprocess.size
        model.preprocess = overridden(model.preprocess, preprocess)
        if model.preprocess.size != before:
            _takes_size(model, before)
    return model


def _takes_size(model: Model, before: tuple[int, int]) -> None:
    """A ModelError when the model cannot take pictures of the size --preprocess gave (a ViT built for its own
    size): one line before any work, rather than every input failing with the model's own assertion."""
    try:
        model.outputs_on(torch.zeros(1, model.preprocess.channels, *model.preprocess.size))
    except ModelError as error:
        raise ModelError(f"--preprocess: {str(error).rstrip('.')}; it was made for {before[0]}x{before[1]}") from None


@contextmanager
def seeded_weights(random_weights: bool = True) -> Iterator[None]:
    """Random weights (``pretrained=False``) drawn from a fixed seed on a forked generator: the same model on
    every run and every Ray worker, and the caller's own random state left as it was."""
    if not random_weights:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        yield


def anchored(spec: str | Path | None) -> str | None:
    """A model spec or file option as a process in another folder reads it (a cluster worker, a DiffROAR job run
    elsewhere): a local file or folder it names, a code spec's file (``nets.py:Net``), ``hf:FOLDER`` or a
    ``folder:`` data set by an absolute path; hub names, other specs and absolute paths as they are."""
    part = local_part(spec)
    if part is None or part[1].is_absolute():
        return None if spec is None else str(spec)
    prefix, path, rest = part
    return f"{prefix}{path.resolve()}{rest}"


def local_part(spec: str | Path | None) -> tuple[str, Path, str] | None:
    """(what comes before, the local file or folder, what comes after) in a model spec or file option that names
    one that exists here (see :func:`anchored`); None for any other."""
    if spec is None:
        return None
    text = str(spec)
    code = re.fullmatch(r"(?:py:)?(.+?\.py)(:[A-Za-z_].*)", text, re.S)
    prefix = "py:" if code else next((p for p in ("hf:", "folder:") if text.startswith(p)), "")
    path, rest = (code[1], code[2]) if code else (text[len(prefix):], "")
    local = Path(path).expanduser()
    return (prefix, local, rest) if path and local.exists() else None


SYNSET_LINE = re.compile(r"^(n\d{8})\s+(\S.*)$")  # Caffe's synset_words.txt, Kaggle's LOC_synset_mapping.txt


def read_labels(path: str | Path, n_classes: int) -> list[str]:
    """Class names from a file: one per line (lines of a WordNet id and names, as Caffe's synset_words.txt: see
    :func:`_synsets`), a JSON list, or a JSON object {index: name} (as Hugging Face's id2label); exactly
    ``n_classes`` of them, else one ModelError line."""
    from attrib.data import unicode_text

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelError(f"cannot read labels {path}: {error.strerror or error}") from None
    text = unicode_text(data, f"labels {path}", ModelError)
    names = _synsets(_parse_labels(text, path), n_classes)
    if len(names) != n_classes:
        raise ModelError(f"labels {path}: {counted(len(names), 'name')} for a model with "
                         f"{counted(n_classes, 'class', 'classes')}")
    return names


def _synsets(names: list[str], n_classes: int) -> list[str]:
    """Lines that all start with a WordNet id ("n01440764 tench, Tinca tinca") name each class by the rest; for
    a model of other than ImageNet-1k's 1000 classes (whose ids attrib knows) the id stays as the last synonym,
    so that ``--truth folder`` finds ImageFolder's id-named folders (an ImageNet-100 subset's ``n01558993/``)."""
    if not names or not all(SYNSET_LINE.match(name) for name in names):
        return names
    parts = [SYNSET_LINE.match(name).groups() for name in names]
    return [rest if n_classes == 1000 else f"{rest}, {wordnet_id}" for wordnet_id, rest in parts]


def _parse_labels(text: str, path: Path) -> list[str]:
    if path.suffix.lower() != ".json":
        return [line.strip() for line in text.strip().splitlines()]
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            index = {_class_index(key): name for key, name in data.items()}
            if sorted(index) != list(range(len(index))):
                raise ValueError("its keys are not 0..N-1")
            data = [index[i] for i in range(len(index))]
        if not isinstance(data, list):
            raise ValueError("expected a list of names or an object {index: name}")
    except (ValueError, TypeError) as error:
        raise ModelError(f"labels {path}: {first_line(error)}") from None
    return [_json_label(name) for name in data]


def _class_index(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise ValueError(f"its key {key!r} is not a class index (an object maps indices 0..N-1 to names)") from None


def _json_label(item: Any) -> str:
    """One class of a JSON labels file: its name, or a list of names; Keras's imagenet_class_index.json gives
    [WordNet id, name], read as a synset_words.txt line."""
    if not isinstance(item, list) or not item or not all(isinstance(part, str) for part in item):
        return str(item)
    return " ".join(item) if len(item) == 2 and re.fullmatch(r"n\d{8}", item[0]) else ", ".join(item)


EXAMPLES = {"timm": "timm:resnet50", "torchvision": "torchvision:resnet50", "tv": "tv:resnet50",
            "hf": "hf:google/vit-base-patch16-224", "sample": "sample:blockdigits-standard"}


def claimed_by(spec: str) -> str | None:
    """The prefix of the loader that loads ``spec`` (``default`` for the embedded model), or None where none does."""
    spec = spec.strip() or DEFAULT
    if spec == DEFAULT and DEFAULT in LOADERS:
        return DEFAULT
    prefix, sep, _ = spec.partition(":")
    if sep and prefix in LOADERS:
        return prefix
    return next((e.prefix for e in LOADERS.values() if e.matches is not None and e.matches(spec)), None)


def _load(spec: str | None, **options: Any) -> Model:
    spec = str(spec if spec is not None else "").strip() or DEFAULT  # a local folder may come as a Path
    claimer = claimed_by(spec)
    if claimer == DEFAULT:
        return LOADERS[DEFAULT].loader("", **options)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == claimer:
        if not rest.strip():
            raise ModelError(f"--model {spec!r} names no model: give one after the prefix, e.g. "
                             f"{EXAMPLES.get(prefix, prefix + ':NAME')} (see `attrib models`)")
        return LOADERS[prefix].loader(rest.strip(), **options)
    if claimer is not None:
        return LOADERS[claimer].loader(spec, **options)
    if Path(spec).is_file():
        raise ModelError(_a_file(Path(spec)))
    raise ModelError(f"unknown model spec {spec!r}: use 'timm:NAME', 'torchvision:NAME', 'hf:ORG/NAME', a local "
                     "Hugging Face folder, 'sample:NAME', your code's 'FILE.py:NAME' or leave --model out for the "
                     "embedded default (see `attrib models`)")


def _a_file(path: Path) -> str:
    """What to say of a file given as a model: Python code names its model (its classes are listed, read without
    running it); a state dict needs its architecture."""
    program = a_program(path)
    if program:
        return f"--model {program}"
    kind = file_kind(path)
    if kind.endswith("image"):
        return f"--model {path} is {kind}, not a model; explain it as an input: attrib explain {path}"
    if path.suffix != ".py":
        return (f"--model {path} is a file; a state dict needs its architecture: --model timm:NAME (or "
                f"torchvision:NAME, or your code's FILE.py:NAME) --weights {path} (a Hugging Face model is a folder "
                "saved with save_pretrained)")
    names = defined_models(path)
    listed = f" (it defines {', '.join(names[:8])})" if names else ""
    return f"--model {path} is Python code: name the class or function in it that builds the model, as " \
           f"{path}:{names[0] if names else 'NAME'}{listed}"


def defined_models(path: Path) -> list[str]:
    """What Python code at ``path`` may build its model with, read without running it: its classes of a
    ``...Module`` base, then its functions (none where the file cannot be read or parsed)."""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    defined = [node for node in tree.body if isinstance(node, ast.ClassDef | ast.FunctionDef)]
    models = [node for node in defined if isinstance(node, ast.ClassDef) and "Module" in ast.unparse(node.bases)]
    return [node.name for node in models + [node for node in defined if isinstance(node, ast.FunctionDef)]]
