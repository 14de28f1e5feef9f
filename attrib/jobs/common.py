"""What every job shares: the events it reports through, the record header, device and method resolution,
and the one policy for Expected Gradients' reference set."""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import platform
import time
import traceback
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch

from attrib.engine import check_environment
from attrib.errors import AttribError, UsageError, counted, first_line
from attrib.formats import percent


GAP_WARNING = 0.05  # a completeness gap over this is warned of (the IG authors' advice: check within ~5%)


class Events:
    """How a job reports progress and messages. Every method is optional (the defaults do nothing); the command
    line implements them with progress bars and coloured lines.

    A *task* is a progress bar: ``task(key, description, total)`` (re)starts it, ``advance(key, n)`` moves it,
    ``shrink(key, n)`` takes from its total work that turned out not to be needed (an adaptive rule that
    converged under its budget).
    """

    def info(self, text: str) -> None: ...

    def detail(self, text: str) -> None: ...

    def warning(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def task(self, key: str, description: str, total: int | None) -> None: ...

    def advance(self, key: str, n: int = 1, description: str | None = None) -> None: ...

    def shrink(self, key: str, n: int) -> None: ...

    def item(self, entry: dict[str, Any]) -> None:
        """One unit of work (an input, a text, a retrain) finished; ``entry`` is its record (a failed input's
        or text's one-line error came to ``error`` first)."""


class ListFields:
    """A job's Options: one value given where a list is expected (``methods="ig"``, ``inputs="cat.jpg"``) is
    that one-element list, as on the command line, never the string's characters; a dict where a list of
    ``KEY=VALUE`` items is (``settings={"n_steps": 100}``, ``preprocess={"size": 384}``) is those items; a path
    (``pathlib.Path``) given where a string is expected, alone or in a list, is its string. An empty string for
    an option of one text (``model=""``, ``target=""``) is a UsageError, as on the command line: it would read as
    left out, the default taking the place of what was meant (None leaves it out)."""

    def __post_init__(self) -> None:
        for option in dataclasses.fields(self):
            value, kind = getattr(self, option.name), str(option.type)
            blank = isinstance(value, str) and not value.strip()
            required = option.default == ""  # (the job says such an option is missing)
            if kind in ("str", "str | None") and blank and not required:
                raise UsageError(f"{option.name} is empty: give it a value, or leave it out for the default")
            if "list[" in kind and isinstance(value, str | int | float | os.PathLike) and not isinstance(value, bool):
                value = [value]
            if "list[str]" in kind and isinstance(value, Mapping):
                value = [f"{key}={item}" for key, item in value.items()]
            if "str" in kind:
                value = [_text(v) for v in value] if isinstance(value, list | tuple) else _text(value)
            if kind in TEXT_KINDS and value is not None:
                value = [_as_text(option.name, v) for v in value] if kind.startswith("list[") and \
                    isinstance(value, list | tuple) else _as_text(option.name, value)
            setattr(self, option.name, value)


TEXT_KINDS = ("str", "str | None", "list[str]", "list[str] | None")  # options of text alone (paths, names, items)


def _as_text(name: str, value: Any) -> Any:
    """A number given for text (``target=281``, ``layers=[9]``) as the command line reads it, its text; a
    TypeError naming the option for anything else that is not text (``inputs=[{...}]`` failed deep inside with
    "'dict' object has no attribute 'startswith'")."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} takes text (a str, or a pathlib.Path where it names a file), got "
                        f"{type(value).__name__} {value!r}")
    return value


def _text(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


class Accuracy:
    """How often the top prediction is the class given with each input (its folder, a table row, a gold label):
    the model's accuracy on the run, and a check that the given classes follow the model's class order. Given
    in another order (the ILSVRC devkit's ids; GLUE's MNLI numbering against roberta-large-mnli's) they make a
    trained model no better than chance, and every map explains a class the input is not."""

    SOME = 50  # inputs before chance is judged
    Z = 2.33  # one-sided 1% level of the normal approximation to the binomial
    CONFUSIONS = 10  # the most frequent (given, predicted) pairs of the misclassified inputs that are kept

    def __init__(self, n_classes: int, source: str, labels: list[str] | None = None) -> None:
        self.n_classes, self.source, self.correct, self.of = n_classes, source, 0, 0
        self.labels, self.confused = labels, collections.Counter()

    def count(self, predicted: int, given: int) -> None:
        self.of += 1
        self.correct += int(predicted == given)
        if predicted != given:
            self.confused[given, predicted] += 1

    def summary(self) -> dict[str, Any]:
        """``{"top1": {correct, of, accuracy}, "confusions": [...]}`` once an input was counted, else {}. The
        confusions: the most frequent (given, predicted) classes of the misclassified inputs, with their labels
        and counts (ties in the order met)."""
        if not self.of:
            return {}
        confusions = [{"given": g, "predicted": p, "count": n, **self._names(g, p)}
                      for (g, p), n in self.confused.most_common(self.CONFUSIONS)]
        return {"top1": {"correct": self.correct, "of": self.of, "accuracy": round(self.correct / self.of, 4)},
                "confusions": confusions}

    def _names(self, given: int, predicted: int) -> dict[str, str]:
        if self.labels is None:
            return {}
        return {"given_label": self.labels[given], "predicted_label": self.labels[predicted]}

    def at_chance(self, trained: bool) -> bool:
        """Whether a trained model, over enough inputs, is not above chance (1 / classes) at the 1% level."""
        p = 1 / max(self.n_classes, 1)
        return trained and self.of >= self.SOME and self.n_classes > 1 and \
            self.correct <= self.of * p + self.Z * math.sqrt(self.of * p * (1 - p))

    def warning(self) -> str:
        return (f"top-1 accuracy {self.correct / self.of:.1%} on {self.of} inputs against the classes {self.source} "
                f"is no better than chance (1/{self.n_classes} = {1 / self.n_classes:.1%}): do they follow the "
                "model's class order? The maps explain those classes")


ONLY = ("wrong", "right")  # --only: explain the inputs the model classifies wrong (right) against their true classes


def check_only(only: str | None, given: bool, how: str) -> None:
    """A UsageError for an unknown ``--only`` or for one without classes to judge the predictions by (``how``
    says where they come from)."""
    if only is not None and only not in ONLY:
        raise UsageError(f"--only must be one of {', '.join(ONLY)}, got {only!r}")
    if only is not None and not given:
        raise UsageError(f"--only {only} judges each prediction against the input's true class: give the classes "
                         f"({how})")


def selected(only: str | None, predicted: int, given: int | None) -> bool:
    """Whether ``--only`` wants an input explained: all without it; else those classified wrong (right)."""
    if only is None or given is None:
        return True
    return (predicted != given) == (only == "wrong")


def check_counts(options: Any, *names: str, least: dict[str, int] | None = None) -> None:
    """A UsageError, before any work, for a bad ``options.seed`` and for each named option that must be an
    integer of at least 1 (``least`` may ask more) or None: the command line checks its flags, Python callers
    pass anything."""
    from attrib.rng import check_seed

    check_seed(options.seed)
    for name in names:
        value, low = getattr(options, name), (least or {}).get(name, 1)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise UsageError(f"{name} must be an integer >= {low}, got {value!r}")


def failure_line(name: str, error: BaseException, events: Events) -> str:
    """One line for a failed input; the traceback goes to the detail channel (-v) when it is unexpected."""
    if isinstance(error, (AttribError, RuntimeError, ValueError)):
        return f"{name}: {first_line(error)}"
    events.detail("".join(traceback.format_exception(error)))
    return f"{name}: unexpected {type(error).__name__}: {first_line(error)} (run with -v for the traceback)"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def assumed_reading(model) -> list[str]:
    """What the loader assumed of how ``model`` reads pictures (said as it loaded), for the run record's warnings:
    the report says it too, beside maps made of pictures read that way."""
    return [model.assumed] if model.assumed else []


def header(kind: str, *, model: dict[str, Any], methods: list[dict[str, Any]], seed: int, device: str,
           precision: str = "fp32", **extra: Any) -> dict[str, Any]:
    """The record header every run kind starts with."""
    from attrib import __version__

    from attrib.rng import GENERATOR

    return {"kind": kind, "attrib_version": __version__, "model": model, "methods": methods, "seed": seed,
            "random": GENERATOR, "device": device, "precision": precision,
            "versions": {"python": platform.python_version(), "torch": torch.__version__},
            "started": now(), **extra}


def commit_drawn(store, record: dict[str, Any], key: str, draw, names: Collection[str]) -> dict[str, Any]:
    """Write ``record`` and the pictures ``draw()`` writes into the run folder (it returns what ``record[key]``
    names: a file, a dict of files, or nothing) so that a run stopped at any point leaves a record beside the
    pictures it names, never an earlier run's record beside this run's pictures: first this run's record naming
    none (``record[key]`` as given: absent or empty), then the pictures, then the record naming them. The
    pictures (of the file ``names`` this kind draws) that the earlier record named and this run did not draw are
    removed; a file it did not name stays."""
    earlier = _files(store.read_record().get(key)) & set(names)
    store.write_record(record)
    drawn = draw()
    for stale in earlier - _files(drawn):
        store.remove(stale)
    if drawn:
        record[key] = drawn
        store.write_record(record)
    return record


def _files(named: str | dict[str, str] | None) -> set[str]:
    return set(named.values()) if isinstance(named, dict) else {named} if named else set()


def work_device(executor, name: str) -> str:
    """Where a job's work runs: ``name`` resolved here, or with ``--executor ray`` the workers' device (a GPU
    share: their GPU), which ``--device`` may only repeat. The executor is checked first."""
    executor.check()
    if not executor.remote:
        return resolve_device(name)
    check_environment()
    if name not in ("auto", executor.device):
        raise UsageError(f"with --executor ray the workers' device follows --gpus-per-worker ({executor.device} "
                         f"here), not --device {name}")
    return executor.device


def resolve_device(name: str) -> str:
    """"auto" -> "cuda" when available, else "cpu"; an explicit device must exist on this machine. The engine's
    ATTRIB_* settings are checked here too, before a run folder is made."""
    check_environment()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda" and not count:
        raise UsageError(f"device {name!r} requested but CUDA is not available here (use --device cpu or auto)")
    if device.type == "cuda" and (device.index or 0) >= count:
        raise UsageError(f"device {name!r} requested but this machine has {count} CUDA device(s): cuda:0.."
                         f"cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {name!r} requested but MPS is not available here (use --device cpu or auto)")
    return name


def resolve_methods(names: list[str] | tuple[str, ...], settings: list[str], *, inputs: str, supplied: set[str],
                    where: str) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Canonical names (deduplicated, aliases resolved) and per-method overrides from ``--set`` items.

    Raises:
        UsageError: an unknown method or option, a method of the wrong input kind, or one whose needs
            ``where`` (a command) cannot supply.
    """
    from attrib.methods import METHODS, check_needs
    from attrib.methods.options import parse_overrides

    canonical = list(dict.fromkeys(METHODS.canonical(m, inputs) for m in names))
    for name in canonical:
        check_needs(name, supplied, where)
    return canonical, parse_overrides(canonical, list(settings))


def method_kwargs(name: str, overrides: dict[str, Any], supplies: dict[str, Any]) -> dict[str, Any]:
    """The options to run ``name`` with: the user's overrides plus what the job supplies for its needs."""
    from attrib.methods import METHODS

    spec = METHODS[name]
    fields = spec.option_names()
    return {**{need: supplies[need] for need in spec.needs if need in fields and need in supplies}, **overrides}


def pixel_baselines(kwargs: dict[str, dict[str, Any]], model: Any) -> dict[str, dict[str, Any]]:
    """Each method's options with a baseline named by its colour ("black", "white") made the model input of that
    picture, by the model's normalisation; a UsageError for a model that reads no pictures."""
    from attrib.methods.baselines import PIXEL_BASELINES

    out = {}
    for name, given in kwargs.items():
        colour = given.get("baseline")
        if not (isinstance(colour, str) and colour in PIXEL_BASELINES):
            out[name] = given
            continue
        preprocess = getattr(model, "preprocess", None)
        if preprocess is None:
            raise UsageError(f"{name}: the {colour} baseline is a picture's colour, and {model.name} reads no "
                             "pictures; use baseline=zero")
        out[name] = {**given, "baseline": preprocess.solid(PIXEL_BASELINES[colour])}
    return out


def describe_methods(names: list[str], kwargs: dict[str, dict[str, Any]],
                     descriptions: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per method: name, resolved config (tensors described), cost, sign and the options this configuration
    does not use (reports leave them out), as records hold them.

    Raises:
        UsageError: an option value the method's config refuses.
    """
    from attrib.methods import METHODS

    out = []
    for name in names:
        spec = METHODS[name]
        cfg = spec.make_config(**kwargs.get(name, {}))
        out.append({"method": name, "config": describe_config(vars(cfg), descriptions), "cost": spec.cost,
                    "signed": spec.is_signed(cfg), "unused": sorted(cfg.ignored()) if hasattr(cfg, "ignored") else []})
    return out


def ignored_settings(overrides: dict[str, dict[str, Any]], kwargs: dict[str, dict[str, Any]]) -> list[str]:
    """One warning per --set option that its method, as configured, does not use (``ignored()`` on a config
    says which and why)."""
    from attrib.methods import METHODS

    out = []
    for name, given in overrides.items():
        config = METHODS[name].make_config(**kwargs.get(name, given))
        reasons = config.ignored() if hasattr(config, "ignored") else {}
        out += [f"--set {name}.{key} is ignored: {reasons[key]}" for key in given if key in reasons]
    return out


def map_notes(warning: str | None, method: str, kwargs: dict[str, Any]) -> list[str]:
    """A degenerate map's note (all zero, all NaN), with what its method's config says of an all-zero map (an
    optional ``blank_map(name)`` hook: sparse MoreauGrad's penalty can threshold every entry away)."""
    from attrib.methods import METHODS

    if not warning:
        return []
    config = METHODS[method].make_config(**kwargs)
    hint = config.blank_map(method) if warning.endswith("all zero") and hasattr(config, "blank_map") else None
    return [f"{warning}: {hint}" if hint else warning]


def check_images(kwargs: dict[str, dict[str, Any]], shape: tuple[int, ...] | None, inputs: str) -> None:
    """A UsageError for a method configured for images only (a config's optional ``image_only()`` says why) when
    the inputs, each of ``shape`` (None: not images, whatever their size), are not (C, H, W) images."""
    from attrib.methods import METHODS

    if shape is not None and len(shape) == 3:
        return
    for name, options in kwargs.items():
        config = METHODS[name].make_config(**options)
        reason = config.image_only() if hasattr(config, "image_only") else None
        if reason:
            raise UsageError(f"{name} takes images (C, H, W) only, as configured ({reason}); {inputs} are not")


def describe_config(options: dict[str, Any], descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    """``options`` with tensors replaced by their description (``descriptions[key]``) or their shape."""
    descriptions = descriptions or {}
    return {k: (descriptions.get(k) or f"tensor{tuple(v.shape)}") if isinstance(v, torch.Tensor) else v
            for k, v in options.items()}


def supplies(names: list[str], model, events: "Events | None" = None, **where: Any) -> tuple[dict, dict[str, str]]:
    """What the job supplies for its methods' needs (today: a reference set, by :func:`resolve_background`
    with ``where``), and a description of each for the record."""
    from attrib.methods import METHODS

    if not any("background" in METHODS[n].needs for n in names):
        if where.get("folder") and events is not None:
            events.warning(f"--background {where['folder']} is not used: no method of {', '.join(names)} takes a "
                           "reference set (expected_gradients does)")
        return {}, {}
    tensor, text = resolve_background(model, **where)
    if events is not None:
        events.info(f"reference set (background): {text}")
    return {"background": tensor}, {"background": text}


def resolve_background(model, *, folder: str | None = None, seed: int = 0, data: torch.Tensor | None = None,
                       fallback: torch.Tensor | None = None) -> tuple[torch.Tensor, str]:
    """Expected Gradients' reference set, by one policy, in this order:

    1. ``folder``: every image under it, preprocessed like the inputs;
    2. ``data`` (the training inputs of the job's data set): 64 of them drawn with ``seed``;
    3. an RGB or grayscale image model: the built-in set (sample images, blurred copies, uniform noise;
       attrib/data/backgrounds);
    4. ``fallback`` (the explained inputs themselves).
    """
    from attrib.data.backgrounds import default_background, folder_background

    if folder:
        return folder_background(folder, model.preprocess)
    if data is not None:
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:64]
        return data[pick], f"64 training examples (seed {seed})"
    if model.kind == "image" and model.preprocess is not None and model.preprocess.channels in (1, 3):
        return default_background(model.preprocess, seed)
    if fallback is not None:
        return fallback, "the explained inputs"
    raise UsageError(f"{model.name}: no reference set for expected_gradients; give --background DIR")


def attribution_row(result, b: int) -> dict[str, Any]:
    """Input ``b``'s share of an :class:`attrib.api.Attribution` as plain values (copies: the batch's tensors can
    be freed): its map, gap, passes and, for an adaptive rule, whether it converged."""
    gap = None if result.completeness_gap is None else float(result.completeness_gap[b])
    finite = bool(result.values[b].isfinite().all()) and not (gap is not None and math.isnan(gap))
    undefined = finite and gap is not None and math.isinf(gap)  # F(x) = F(baseline): a gap relative to 0
    extras = result.extras
    passes = int(extras["steps"][b]) if "steps" in extras else result.passes // len(result.values)
    return {"values": result.values[b].numpy().copy(), "signed": result.signed,
            "gap": gap if finite and not undefined else None, "gap_undefined": undefined, "finite": finite,
            "budget": result.config.get("n_steps"),
            "target": result.target[b] if result.target else None, "seconds": result.seconds / len(result.values),
            "versus": result.versus[b] if result.versus else None,
            "passes": passes, "converged": bool(extras["converged"][b]) if "converged" in extras else None,
            "gap_stderr": float(extras["gap_stderr"][b]) if "gap_stderr" in extras else None,
            "map_error": float(extras["map_error"][b]) if "map_error" in extras else None,
            "tol": result.config.get("tol"), "match_steps": result.config.get("match_steps")}


def _stalled(result: dict, method: str, precision: str, images: bool) -> tuple[str, str]:
    """How an adaptive rule ended unconverged, and what would help: in bf16, fp32 (the rule reads rounding as
    roughness); after its budget, more steps; at the narrowest panels, another baseline, not more steps (F jumps
    where no bisection resolves it: a normalisation layer whose input is all zero at a zero baseline does)."""
    from attrib.methods.adaptive import MIN_WIDTH

    spent = result["passes"] >= (result["budget"] or 0)
    ended = (f"spent its budget of {counted(result['passes'], 'step')}" if spent else
             f"stopped after {counted(result['passes'], 'step')} (F jumps within a stretch of the path narrower than "
             f"{MIN_WIDTH:g}, which more steps cannot resolve)")
    if precision == "bf16":
        return ended, "run in fp32 (--precision fp32): in bf16 rounding reads as roughness of the path"
    if spent:
        return ended, f"raise n_steps (--set {method}.n_steps=N) for a more faithful map"
    other = f"--set {method}.baseline=blur" if images else f"--set {method}.baseline=..."
    return ended, (f"another baseline may help ({other}): at a zero baseline, a normalisation layer whose input is "
                   "all zero can make such a jump")


def gap_warnings(result: dict, method: str, precision: str = "fp32", images: bool = True) -> list[str]:
    """Say when a map is not faithful (for the terminal and the record): an adaptive rule that spent its budget
    first, or a gap over 5%; and when the gap is undefined (F(x) = F(baseline) at the compute precision). In
    bf16 the advice is fp32: the rule reads rounding as roughness, and more steps do not remove it. ``images``:
    the inputs are images (a blurred baseline can be advised)."""
    gap = result["gap"]
    if not result.get("finite", True):
        return ["the model's gradient or output is not finite at some point the method evaluates (IG: on the "
                "path from the baseline, e.g. a log or a square root at 0): neither the map nor its completeness "
                "gap can be trusted"]
    if result["gap_undefined"]:
        return ["F(x) equals F(baseline) for the explained class at this precision, so the completeness "
                "gap (relative to their difference) is undefined and cannot vouch for the map"]
    if result["converged"] is False:
        goal = f"a gap within tol {result['tol']:.1%}"
        if result["match_steps"]:
            goal += f" and a map as accurate as {result['match_steps']}-step Gauss-Legendre's"
        ended, advice = _stalled(result, method, precision, images)
        return [f"the adaptive rule {ended} before reaching {goal}: completeness gap {percent(gap)}, estimated map "
                f"error {result['map_error']:.1%}; {advice}"]
    if gap is not None and gap > GAP_WARNING:
        noise = f" ± {result['gap_stderr']:.1%} (Monte Carlo)" if result["gap_stderr"] is not None else ""
        from attrib.methods import METHODS

        knob = METHODS[method].knob
        advice = f"raise {knob} (--set {method}.{knob}=N)" if knob else "raise its budget (--set)"
        if result.get("converged") and gap <= (result.get("tol") or 0):  # met a tolerance set over the warning's
            advice = f"lower tol (--set {method}.tol=0.01; this run's: {result['tol']:g})"
        return [f"completeness gap {percent(gap, 1)}{noise} > {GAP_WARNING:.0%}; {advice} for a faithful map"]
    return []


def takes_data(model, data) -> None:
    """A ModelError when ``model`` cannot take a data set's inputs; for a set of pictures of another size than
    the model's (square) one, it says how to resize them."""
    from attrib.models.base import ModelError

    try:
        model.outputs_on(data.test_x, data.name)
    except ModelError as error:
        size = model.preprocess.size if model.preprocess is not None else None
        if size is None or size[0] != size[1] or not data.name.startswith(("torchvision:", "folder:")):
            raise
        raise ModelError(f"{error}; resize its pictures to the model's with --image-size {size[0]}") from None


def check_out(inputs: list[str], root: Path) -> None:
    """A usage error where the run folder is a folder of inputs: the run's pictures would mix with the inputs, and
    be read as inputs by the next run over that folder (a run folder inside it is left out)."""
    here = root.resolve()
    # os.path.isdir: a name too long for the file system is no folder (Path.is_dir raises for it on Python 3.11)
    same = next((name for name in inputs if os.path.isdir(name) and Path(name).resolve() == here), None)
    if same is not None:
        inside = Path(same) / "attrib-run"
        raise UsageError(f"--out {root} is the folder of inputs {same}: the run's files would mix with its pictures "
                         f"(and be read as inputs next time); write it elsewhere, e.g. --out {inside}")
