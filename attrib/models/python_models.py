"""Your own model code: ``py:FILE.py:NAME`` or ``py:package.module:NAME`` (a spec ``FILE.py:NAME`` needs no
prefix). NAME is a class or function that builds a ``torch.nn.Module`` (or a module instance); ``NAME(k=v, ...)``
passes it arguments written as Python literals. The code is yours, named by you, and runs as ``python FILE.py``
would import it; weights come from ``--weights``, the classes from a probe of its outputs, and how it reads
pictures from ``--preprocess`` (else timm's config where the model has one, else ImageNet's usual reading)."""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
from functools import partial
from pathlib import Path
from typing import Any

import torch

from attrib.errors import UsageError, a_type
from attrib.models.base import Model, ModelError
from attrib.models.builtin import class_names
from attrib.models.checkpoint import file_sha256, load_state_dict
from attrib.models.preprocess import Preprocess, for_channels, overridden
from attrib.models.registry import register_loader, seeded_weights
from attrib.targets import as_logits

SPEC = re.compile(r"(?P<source>.+?):(?P<name>[A-Za-z_][\w.]*)\s*(?P<args>\(.*\))?\s*", re.S)
SAFE_NAME = re.compile(r"\W")


def is_code_spec(spec: str) -> bool:
    """A spec that names a Python file's model without the ``py:`` prefix: ``models.py:Net``."""
    return re.match(r".+?\.py:", spec) is not None


def load_python(spec: str, *, weights: str | Path | None = None, pretrained: bool = True,
                preprocess: tuple[str, ...] = (), **_: object) -> Model:
    """Build the model the code names (under a fixed seed, so that reruns and Ray workers build the same one);
    ``pretrained`` False re-draws its weights (:func:`redrawn`); ``weights`` loads a state dict into it. The
    classes are counted from its outputs on one input of the size it reads."""
    source, name, args = _parsed(spec)
    label = f"py:{source}:{name}{args}"
    with seeded_weights():  # the import apart: a model the module builds as it is imported is the same every time
        code = _imported(source)
    with seeded_weights():
        module = build_model(source, name, args, fresh=not pretrained)
    if weights is not None:
        load_state_dict(module.inner if isinstance(module, Adapted) else module, weights)
    reading, assumed = _reading(module, label, preprocess)
    model = Model(module.eval(), reading, [], "image" if reading else "vector", label, None,
                  card=_provenance(code), assumed=assumed)
    n_classes, logits = _probe(model, preprocess)
    model.factory = partial(build_model, source, name, args, fresh=True, logits=logits)
    if logits:
        model.module = Adapted(model.module, logits=True).eval()
    model.labels = class_names(n_classes)
    return model


def _parsed(spec: str) -> tuple[str, str, str]:
    found = SPEC.fullmatch(spec.strip())
    if not found:
        raise UsageError(f"--model py:{spec}: expected py:FILE.py:NAME or py:package.module:NAME, NAME a class or "
                         "function building the model (NAME(num_classes=10) passes it arguments)")
    return found["source"].strip(), found["name"], (found["args"] or "").strip()


def build_model(source: str, name: str, args: str = "", fresh: bool = False, logits: bool = False) -> torch.nn.Module:
    """The model the code builds: ``NAME(*args)`` for a class or function, a copy of a module instance; with
    ``fresh`` (random weights, DiffROAR's retrains) every layer re-drawn, since a function or an instance may
    hand out trained weights; :class:`Adapted` where its mode cannot be switched or (``logits``) its output is a
    dict or Hugging Face output holding the logits. One ModelError line when the code fails, saying where."""
    label = f"{source}:{name}{args}"
    code = _imported(source)
    target = _attribute(code, source, name)
    positional, keywords = _arguments(args, label)
    if isinstance(target, torch.nn.Module):
        if args:
            raise UsageError(f"--model {label}: {name} is a model already built, which takes no arguments")
        module = copy.deepcopy(target)
    elif callable(target):
        module = _called(target, positional, keywords, label, code)
    else:
        raise ModelError(f"{label}: {name} is {a_type(target)}, not a class or function building a model")
    if fresh:
        redrawn(module, label)
    try:
        module.eval()
    except NotImplementedError:  # torch.export's programs: their graph is fixed in the mode it was exported in
        return Adapted(module, fixed_mode=True, logits=logits)
    return Adapted(module, logits=True) if logits else module


def _called(target: Any, positional: list, keywords: dict, label: str, code) -> torch.nn.Module:
    try:
        module = target(*positional, **keywords)
    except Exception as error:  # noqa: BLE001 - the user's code may raise anything
        missing = re.findall(r"'(\w+)'", str(error)) if "required" in str(error) else []
        given = ", ".join(f"{m}=..." for m in missing)
        hint = f" (give them: {label.partition('(')[0]}({given}))" if missing else ""
        raise ModelError(f"{label} failed{_where(error, code)}: {_said(error)}{hint}") from None
    if not isinstance(module, torch.nn.Module):
        forgot = " (no return statement?)" if module is None else ""
        raise ModelError(f"{label} returned {a_type(module)}{forgot}, not a torch.nn.Module")
    return module


def redrawn(module: torch.nn.Module, label: str) -> torch.nn.Module:
    """``module`` with all its weights re-drawn from the current seed, as the randomization checks re-draw a
    layer: each layer by its own ``reset_parameters`` (as built), the parameters of one without it (a ViT's
    class token) from a normal of their own spread. A ModelError when no layer has ``reset_parameters`` (a
    TorchScript or exported program), whose re-drawn weights would be noise of the trained ones' spread."""
    from attrib.evaluate.randomization import LayerGroup, reinitialise

    if not any(callable(getattr(layer, "reset_parameters", None)) for layer in module.modules()):
        raise ModelError(f"{label}: cannot draw random weights for it: none of its layers has reset_parameters "
                         "(a TorchScript or exported program?)")
    owners = tuple(name for name, layer in module.named_modules() if any(True for _ in layer.parameters(False)))
    reinitialise(module, LayerGroup("all", owners, type(module).__name__), int(torch.randint(2**31 - 1, ())))
    return module


class Adapted(torch.nn.Module):
    """The code's model as attrib takes models: the logits out of a dict or Hugging Face output (``logits``);
    a torch.export program (``torch.export.load(...).module()``), whose train/eval mode cannot be switched,
    left in the mode it was exported in (``fixed_mode``)."""

    def __init__(self, inner: torch.nn.Module, fixed_mode: bool = False, logits: bool = False) -> None:
        super().__init__()
        self.inner, self.fixed_mode, self.logits = inner, fixed_mode, logits

    def train(self, mode: bool = True) -> Adapted:
        if not self.fixed_mode:
            return super().train(mode)
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> Any:
        out = self.inner(x)
        return as_logits(out) if self.logits else out


def _imported(source: str):
    """The code's module: a file imported as ``python FILE.py`` would import it (its folder first on the path,
    so that it imports its neighbours), or an importable module (the working folder on the path, as ``python -m``
    has it)."""
    if source.endswith(".py") or "/" in source or "\\" in source:
        return _imported_file(Path(source).expanduser())
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as error:
        if error.name and source.startswith(error.name):
            raise ModelError(f"--model py:{source}: no module {error.name!r} here or on the Python path (a file? "
                             f"name it as one: py:path/to/{source.rsplit('.', 1)[-1]}.py:NAME)") from None
        raise ModelError(f"cannot import {source}: {_said(error)}") from None
    except Exception as error:  # noqa: BLE001 - importing runs the user's code
        raise ModelError(f"cannot import {source}{_where(error, None)}: {_said(error)}") from None


def _imported_file(path: Path):
    try:
        text = path.read_bytes()
    except OSError as error:
        raise ModelError(f"cannot read model code {path}: {error.strerror or error}") from None
    digest = hashlib.sha256(str(path.resolve()).encode() + b"\0" + text).hexdigest()[:12]
    name = f"_attrib_code_{SAFE_NAME.sub('_', path.stem)}_{digest}"  # one module per file and content
    if name in sys.modules:
        return sys.modules[name]
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    code = importlib.util.module_from_spec(spec)
    sys.modules[name] = code  # dataclasses and pickling look classes up here
    try:
        spec.loader.exec_module(code)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - importing runs the user's code
        del sys.modules[name]
        hint = " (a package's module? name it py:package.module:NAME)" if "relative import" in str(error) else ""
        raise ModelError(f"cannot import {path}{_where(error, code)}: {_said(error)}{hint}") from None
    return code


def _attribute(code, source: str, name: str) -> Any:
    found: Any = code
    for part in name.split("."):
        if not hasattr(found, part):
            defined = [key for key, value in vars(code).items() if _defined_model(value, code)]
            hint = f"; it defines {', '.join(defined[:8])}" if defined else ""
            raise ModelError(f"{source} has no {name!r}{hint}")
        found = getattr(found, part)
    return found


def _defined_model(value: Any, code) -> bool:
    """A class of model or a function defined in the code itself (not imported into it)."""
    if getattr(value, "__module__", None) != code.__name__:
        return isinstance(value, torch.nn.Module)
    return (isinstance(value, type) and issubclass(value, torch.nn.Module)) or \
        (callable(value) and not isinstance(value, type))


def _arguments(args: str, label: str) -> tuple[list, dict]:
    """``(1, width=64)`` as literals: never evaluated as code."""
    if not args:
        return [], {}
    try:
        call = ast.parse(f"f{args}", mode="eval").body
        if not isinstance(call, ast.Call) or any(kw.arg is None for kw in call.keywords) or \
                any(isinstance(arg, ast.Starred) for arg in call.args):
            raise ValueError("not a list of arguments")
        return [ast.literal_eval(arg) for arg in call.args], \
            {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError, TypeError):
        raise UsageError(f"--model {label}: the arguments must be Python literals (numbers, strings, True, None, "
                         "lists, dicts), as in NAME(num_classes=10, widths=[32, 64])") from None


def _where(error: BaseException, code) -> str:
    """`` (models.py line 12)``: where in the user's code the error was raised, or the last place it passed
    through there (not Python's, torch's or attrib's own files); a syntax error's own place."""
    if isinstance(error, SyntaxError) and error.filename:
        return f" ({Path(error.filename).name} line {error.lineno})"
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if code is not None and f.filename == getattr(code, "__file__", None)] or \
        [f for f in frames if not f.filename.startswith("<") and not _library(f.filename)]
    return f" ({Path(own[-1].filename).name} line {own[-1].lineno})" if own else ""


def _library(filename: str) -> bool:
    """A file of Python's, of an installed package or of attrib itself."""
    import sysconfig

    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib")} | {str(Path(__file__).parents[1])}
    return any(str(Path(filename)).startswith(root) for root in roots)


def _said(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def _reading(module: torch.nn.Module, label: str, settings: tuple[str, ...]) -> tuple[Preprocess | None, str]:
    """How the model reads its inputs, and what was assumed of it: None for a model of vectors (no 4-D weight,
    a convolution's, and a matrix first) unless ``settings`` give the size of the pictures it flattens; timm's
    data config where the code built a timm model; else ImageNet's usual reading (224 px, crop 0.875, ImageNet's
    mean and std) for as many channels as its first convolution takes. Read from the weights' shapes, so that
    TorchScript and exported programs are read too."""
    weights = _weights(module)
    if weights and weights[0].dim() == 2 and not any(w.dim() == 4 for w in weights):
        return _flattened(int(weights[0].shape[1]), label, settings), ""
    channels = next((int(w.shape[1]) for w in weights if w.dim() == 4), 3)
    if channels not in (1, 3):
        raise ModelError(f"{label} takes {channels} input channels; attrib feeds RGB (3) or grayscale (1) images")
    if getattr(module, "pretrained_cfg", None):
        from attrib.models.timm_models import timm_preprocess

        return overridden(timm_preprocess(module, channels), settings), ""
    base = Preprocess(mean=for_channels(Preprocess.mean, channels), std=for_channels(Preprocess.std, channels),
                      channels=channels)
    assumed = (f"{label} says nothing of how it reads pictures: attrib reads them as ImageNet models commonly do "
               "(shorter side to 256, centre crop 224, bicubic, ImageNet's mean and std); say how it was trained "
               "with --preprocess size=... mean=... std=...")
    return overridden(base, settings), assumed


def _flattened(features: int, label: str, settings: tuple[str, ...]) -> Preprocess | None:
    """How a model of vectors reads the pictures it flattens (an MLP on MNIST or CIFAR-10, nn.Flatten first) when
    ``settings`` give their size: in as many channels as make C x H x W its input's length; else None."""
    sizes = [s for s in settings if s.partition("=")[0].strip() == "size"]
    if not sizes:
        return None
    height, width = overridden(Preprocess(), sizes[-1:]).size
    channels = features // (height * width) if features % (height * width) == 0 else 0
    if channels not in (1, 3):
        raise ModelError(f"{label} takes vectors of {features} numbers, not pictures of {height}x{width} pixels "
                         f"in 1 or 3 channels ({features} / {height * width} = {features / (height * width):g})")
    base = Preprocess(mean=for_channels(Preprocess.mean, channels), std=for_channels(Preprocess.std, channels),
                      channels=channels)
    return overridden(base, settings)


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """Its weights of two or more dimensions (matrices, kernels), in order, lazy ones left out."""
    from torch.nn.parameter import is_lazy

    return [p for p in module.parameters() if not is_lazy(p) and p.is_floating_point() and p.dim() >= 2]


def _probe(model: Model, settings: tuple[str, ...]) -> tuple[int, bool]:
    """The number of classes, and whether the model's logits come in a dict or Hugging Face output (else as a
    tensor), from its output on one zero input; one line when it cannot take an input of the size it reads, or
    returns anything else."""
    hint = "" if model.preprocess is None or any(s.startswith("size") for s in settings) else \
        "; give the input size it takes with --preprocess size=H or HxW"
    if model.preprocess is not None and _weights(model.module)[0].dim() == 2:
        hint = "; a model of vectors reads pictures only where it flattens them itself (nn.Flatten first)"
    x = torch.zeros(1, _weights(model.module)[0].shape[1]) if model.preprocess is None else \
        torch.zeros(1, model.preprocess.channels, *model.preprocess.size)
    try:
        outputs = model.outputs_on(x)
    except ModelError as error:
        raise ModelError(f"{error}{hint}") from None
    try:
        logits = as_logits(outputs)
    except TypeError:
        logits = None
    if logits is None or logits.dim() != 2:
        shown = tuple(logits.shape) if logits is not None else type(outputs).__name__
        raise ModelError(f"{model.name} returns {shown}, not a (batch, classes) tensor of logits (or a dict or "
                         "Hugging Face output holding one as its logits)")
    return int(logits.shape[1]), logits is not outputs


def _provenance(code) -> dict[str, Any]:
    """The code's file and its sha256, so that a run folder's record changes when the code does."""
    path = getattr(code, "__file__", None)
    if not path:
        return {}
    return {"code": {"file": str(path), "sha256": file_sha256(path)}}


register_loader("py", load_python, matches=is_code_spec)
