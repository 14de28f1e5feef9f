"""The sanity job: a model, its inputs and its methods -> randomization, robustness and completeness checks,
verdicts, plots and a run folder (the checks themselves are in attrib/evaluate/sanity.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrib.errors import UsageError, counted
from attrib.evaluate.sanity import TESTS, THRESHOLDS, SanityConfig, resolve_radii, n_explanations, run_sanity, \
    set_budgets, with_budget
from attrib.jobs.common import (Events, ListFields, assumed_reading, check_counts, check_images, check_out,
                                commit_drawn, describe_methods, header, ignored_settings, method_kwargs, now,
                                pixel_baselines, resolve_device, resolve_methods, supplies, takes_data)
from attrib.runs.store import RunStore, closes_store

KIND = "sanity"
DEFAULT_METHODS = ("gradient", "integrated_gradients", "smoothgrad", "moreaugrad")


@dataclass
class Options(ListFields):
    """What to check. ``layers`` None: spread out over ``max_layers`` groups (None: the library default)."""

    inputs: list[str] = field(default_factory=list)
    model: str | None = None
    weights: str | None = None
    pretrained: bool = True
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    settings: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=lambda: list(TESTS))
    layers: list[str] | None = None
    max_layers: int | None = None
    radii: list[float | str] | None = None  # absolute, or "N%" of the inputs' median norm (None: 2%, 5%)
    norm: str = "l2"
    dataset: str | None = None
    n_inputs: int | None = None  # the first N inputs (None: 8 examples of a data set, every image given)
    image_size: int | None = None  # a data set's pictures resized to this side
    repeats: int | None = None  # draws of random weights / noise (None: the library default)
    seed: int = 0
    device: str = "auto"
    labels: str | None = None  # a file naming the model's classes (default: the model's own names)
    versus: str | None = None  # explain each model's predicted class against this one: runner-up or a class
    preprocess: list[str] = field(default_factory=list)  # KEY=VALUE changes to how the model reads pictures


def _prepare(options: Options, events: Events):
    """Model, inputs and the checks' config, validated before the long work starts."""
    from attrib.models import load_model

    check_counts(options, "n_inputs", "image_size", "repeats", "max_layers", least={"max_layers": 2})
    names, overrides = resolve_methods(options.methods or list(DEFAULT_METHODS), options.settings,
                                       inputs="tensor", supplied={"background"}, where="attrib sanity")
    unknown = [t for t in options.tests or [] if t not in TESTS]
    if not options.tests:
        raise UsageError(f"no test to run; choose from {', '.join(TESTS)}")
    if unknown:
        raise UsageError(f"unknown test {unknown[0]!r}; choose from {', '.join(TESTS)}")
    for warning in unused_options(options):
        events.warning(warning)
    device = resolve_device(options.device)
    events.info("loading model and inputs ...")
    tensors = bool(options.dataset) and not options.dataset.strip().startswith("folder:")  # no pictures read
    model = load_model(options.model, weights=options.weights, pretrained=options.pretrained, labels=options.labels,
                       preprocess=options.preprocess, pictures=not tensors)
    x, input_names, errors = sanity_inputs(model, options.inputs, options.dataset, options.n_inputs,
                                           options.image_size, warn=events.warning)
    for error in errors:
        events.error(error)
    if len(x) == 0:
        raise UsageError("no usable inputs")
    supplied, descriptions = supplies(names, model, events, seed=options.seed, fallback=x)
    configs = with_budget(names, {n: method_kwargs(n, overrides.get(n, {}), supplied) for n in names})
    methods = describe_methods(names, configs, descriptions)  # validates every option
    configs = pixel_baselines(configs, model)
    for warning in ignored_settings(overrides, configs):
        events.warning(warning)
    check_images(configs, tuple(x.shape[1:]), f"the inputs, of shape {tuple(x.shape[1:])},")
    extra = {k: v for k, v in (("max_layers", options.max_layers), ("repeats", options.repeats)) if v is not None}
    radii = resolve_radii(options.radii, x, options.norm)
    config = SanityConfig(names, configs, list(options.tests), options.layers, radii=radii, norm=options.norm,
                          seed=options.seed, device=device, versus=contrast(options.versus, model),
                          verdict_steps=set_budgets(names, overrides), **extra)
    if options.layers:
        from attrib.evaluate.randomization import layer_groups, select

        select(layer_groups(model.module), options.layers, None)
    events.info(f"model: {model.name}; {counted(len(x), 'input')}; methods: {', '.join(names)}; "
                f"tests: {', '.join(config.tests)}{_tests_detail(config)}")
    if config.versus is not None:
        events.info(f"each model's predicted class is explained against {against(config.versus, model.labels)}")
    return model, x, input_names, errors, config, methods


NO_TRUTH = ("truth", "gold")


def contrast(text: str | None, model) -> int | str | None:
    """``--versus`` of the sanity checks: RUNNER_UP or one class (each model explains its own predicted class, and
    there are no true classes to contrast with)."""
    from attrib.jobs.explain import versus_option

    check_versus(text)
    return versus_option(text, None, None, model)


def check_versus(text: str | None) -> None:
    if text is not None and text.strip().lower() in NO_TRUTH:
        raise UsageError(f"--versus {text}: the sanity checks have no true classes; use --versus runner-up or a "
                         "class")


def against(versus: int | str, labels: list[str]) -> str:
    """The other class of a contrast, in words."""
    return "its runner-up" if isinstance(versus, str) else f"{labels[versus]} ({versus}; where that is the class " \
        "explained: its runner-up)"


USED_BY = (("--layers", "layers", "randomization"), ("--max-layers", "max_layers", "randomization"),
           ("--radii", "radii", "robustness"), ("--norm", "norm", "robustness"))


def unused_options(options: Options) -> list[str]:
    """One warning per option given for a test that --tests leaves out (it would be silently ignored)."""
    given = {"norm": options.norm != "l2"}
    warnings = [f"{flag} is ignored: it is for the {test} test, which --tests {','.join(options.tests)} leaves out"
                for flag, key, test in USED_BY
                if test not in options.tests and given.get(key, getattr(options, key) is not None)]
    if options.repeats is not None and not {"randomization", "robustness"} & set(options.tests):
        warnings.append("--repeats is ignored: only the randomization and robustness tests draw repeatedly")
    return warnings


def _tests_detail(config: SanityConfig) -> str:
    """The radii when robustness runs, and the method completeness is reported for when none was asked."""
    from attrib.evaluate.sanity import DEFAULT_PATH_METHOD, path_methods

    detail = ""
    if "robustness" in config.tests:
        detail += f"; radii: {', '.join(f'{r:g}' for r in config.radii)} ({config.norm})"
    if "completeness" in config.tests and not path_methods(config.methods):
        detail += f"; completeness of {DEFAULT_PATH_METHOD} (no method asked for has a completeness gap)"
    return detail


@closes_store
def run(options: Options, store: RunStore, events: Events | None = None) -> dict[str, Any]:
    """All selected checks, the plots and run.json; returns the record."""
    from attrib.evaluate.randomization import layer_groups

    events = events or Events()
    check_out(options.inputs, store.root)
    model, x, input_names, errors, config, methods = _prepare(options, events)
    store.open(KIND, PLOTS.values())  # not another kind's folder, nor a user's files
    start = time.perf_counter()
    permuted = None
    if "randomization" in config.tests and model.card.get("recipe"):
        events.info("data randomization: training the sample's recipe on permuted labels ...")
        permuted = permuted_label_model(model, config.seed)
    total = n_explanations(config, len(layer_groups(model.module)), permuted is not None)
    events.task("maps", "sanity checks", total)
    result = run_sanity(model, x, config, permuted, lambda what: events.advance("maps", 1, f"sanity: {what}"))
    record = header(KIND, model=model.describe(), methods=methods, seed=config.seed, device=config.device,
                    inputs=input_names, input_errors=errors, tests=config.tests, layers=result["layers"],
                    radii=config.radii, norm=config.norm, fraction=config.fraction, thresholds=THRESHOLDS,
                    repeats=config.repeats, draw_seeds=config.draw_seeds, versus=config.versus,
                    seconds=round(time.perf_counter() - start, 1), warnings=assumed_reading(model),
                    **{k: result[k] for k in ("randomization", "robustness", "completeness", "verdicts")})
    picture = model.preprocess.picture(x[0]) if model.preprocess is not None else None
    record["finished"], record["plots"] = now(), {}  # the plots are named once drawn
    return commit_drawn(store, record, "plots", lambda: save_plots(store, result, config.fraction, picture),
                        PLOTS.values())


PLOTS = {"randomization": "randomization.png", "strip": "randomized_maps.png", "robustness": "robustness.png"}


def save_plots(store: RunStore, result: dict[str, Any], fraction: float | None = None, picture=None
               ) -> dict[str, str]:
    """The report's pictures, drawn from the results and written into the run folder (``fraction``: the share
    of features the robustness test compares; ``picture``: the first input as the model sees it, beside its
    maps)."""
    from attrib.render.plots import randomization_plot, robustness_plot, strip_plot

    plots = {}
    if result["randomization"]:
        drawn = randomization_plot(result["randomization"], THRESHOLDS["randomization"])
        plots["randomization"] = store.write_png(PLOTS["randomization"], drawn)
        if any(np.ndim(v) >= 2 for rows in result["strips"].values() for _, v in rows):
            plots["strip"] = store.write_png(PLOTS["strip"], strip_plot(result["strips"], picture))
    if result["robustness"]:
        drawn = robustness_plot(result["robustness"], fraction, THRESHOLDS["robustness"])
        plots["robustness"] = store.write_png(PLOTS["robustness"], drawn)
    return plots


def permuted_label_model(model, seed: int = 0) -> torch.nn.Module | None:
    """Data randomization: a sample model's recipe retrained on its data with permuted labels (else None)."""
    from attrib.data.datasets import load_dataset
    from attrib.training import Recipe, init_seeded, train

    card = model.card
    if model.factory is None or "recipe" not in card or "dataset" not in card:
        return None
    data = load_dataset(card["dataset"], **card.get("dataset_args", {}))
    order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))
    fresh = init_seeded(model.factory, seed)
    return train(fresh, data.train_x, data.train_y[order], Recipe(**card["recipe"]), seed=seed)


DATASET_INPUTS = 8  # test examples of a data set checked when --n is not given


def sanity_inputs(model, paths: list[str], dataset: str | None, n: int | None, image_size: int | None = None,
                  warn=lambda text: None) -> tuple[torch.Tensor, list[str], list[str]]:
    """(inputs, names, errors): the first ``n`` (None: all) image files / folders / globs through the model's
    preprocessing, else the first ``n`` (None: ``DATASET_INPUTS``) test examples of ``dataset`` (default: a
    sample model's own data set, or the built-in images); ``warn`` is told of an image the model sees much
    enlarged, or of which it sees the first frame only (:func:`attrib.data.images.input_notes`)."""
    from attrib.data.datasets import load_dataset, read_as
    from attrib.data.images import InputError, expand_inputs, input_notes

    if dataset and paths:
        raise UsageError(f"give images or --dataset {dataset}, not both")
    dataset = dataset or (None if paths else model.card.get("dataset"))
    if image_size is not None and not dataset:
        raise UsageError("--image-size resizes the pictures of a --dataset; images are read at the model's size")
    if dataset:
        own = dataset == model.card.get("dataset")
        data = load_dataset(dataset, **(model.card.get("dataset_args", {}) if own else {}),
                            **read_as(dataset, model.preprocess), image_size=image_size)
        takes_data(model, data)
        n = n or DATASET_INPUTS
        return data.test_x[:n], [f"{data.name} test #{i}" for i in range(min(n, len(data.test_y)))], \
            [f"left out of the data set: {line}" for line in data.skipped]
    if model.preprocess is None:
        raise UsageError(f"{model.name} does not take images; give --dataset")
    xs, names, errors = [], [], []
    for source in list(expand_inputs(paths))[:n]:
        try:
            image = source.load()
            xs.append(model.preprocess(image))
        except InputError as error:
            errors.append(str(error))
            continue
        names.append(source.name)
        for note in input_notes(image, model.preprocess):
            warn(f"{source.name}: {note}")
    return (torch.stack(xs) if xs else torch.empty(0)), names, errors


def json_view(record: dict[str, Any], out: Path) -> dict[str, Any]:
    keys = ("randomization", "robustness", "completeness", "verdicts")
    return {**{k: record[k] for k in keys}, "warnings": record.get("warnings", []), "out_dir": str(out.resolve())}


def exit_code(record: dict[str, Any]) -> int:
    """1 when some inputs could not be read."""
    return 1 if record.get("input_errors") else 0
