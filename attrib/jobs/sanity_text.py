"""The sanity-text job: a text classifier, some texts and its methods -> randomization and completeness checks,
verdicts, a plot and a run folder of kind "sanity", as ``attrib sanity`` writes for images (the checks are in
attrib/evaluate/text_sanity.py; the word scores are explain-text's, for each model's predicted class)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attrib.data.text import TextInputError, TextItem, split_words
from attrib.errors import UsageError, counted
from attrib.evaluate.sanity import DEFAULT_PATH_METHOD, THRESHOLDS, SanityConfig, path_methods
from attrib.evaluate.text_sanity import TEXT_TESTS, run_text_sanity
from attrib.jobs.common import Events, check_counts, commit_drawn, describe_methods, header, now, resolve_device
from attrib.jobs.explain_text import (DEFAULT_METHODS, PRED, Settings, TextModelOptions, canonical_methods,
                                      explain_one, gradient_scores, load_models, other_class, readable,
                                      versus_option)
from attrib.jobs.sanity import (PLOTS, against, check_versus, exit_code, json_view,  # noqa: F401 - viewed alike
                                save_plots)
from attrib.runs.store import RunStore, closes_store

KIND = "sanity"
DEFAULT_TEXTS = 8  # texts of a file checked when --n is not given


@dataclass
class Options(TextModelOptions):
    """What to check: texts (arguments, or the first ``n_inputs`` of a file), the classifier (and the masked LM
    OLM draws from), methods and their settings, as explain-text takes them."""

    texts: list[str] = field(default_factory=list)
    file: str | None = None
    column: str | None = None
    pairs: list[str] = field(default_factory=list)  # --pair: one second text per argument text, in order
    pair_column: str | None = None
    tests: list[str] = field(default_factory=lambda: list(TEXT_TESTS))
    layers: list[str] | None = None
    max_layers: int | None = None
    repeats: int | None = None
    n_inputs: int | None = None  # the first N texts (None: every argument text, or DEFAULT_TEXTS of a file)
    versus: str | None = None  # each classifier's predicted class against this one: runner-up or a class


def _prepare(options: Options, events: Events):
    """Texts, models, settings and the checks' config, validated before the long work starts."""
    from attrib.data.text import read_texts
    from attrib.methods.options import parse_overrides

    check_counts(options, "n_samples", "n_steps", "batch_size", "n_inputs", "repeats", "max_layers",
                 least={"max_layers": 2})
    unknown = [t for t in options.tests if t not in TEXT_TESTS]
    if not options.tests or unknown:
        hint = " (robustness perturbs an image by a small norm: a text has no such perturbation)" \
            if "robustness" in unknown else ""
        raise UsageError(f"unknown test {unknown[0]!r}{hint}; choose from {', '.join(TEXT_TESTS)}" if unknown else
                         f"no test to run; choose from {', '.join(TEXT_TESTS)}")
    names = canonical_methods(options.methods or list(DEFAULT_METHODS))
    overrides = parse_overrides(names, options.settings)
    items = read_texts(options.texts, options.file, options.column, pairs=options.pairs,
                       pair_column=options.pair_column)
    items = items[:options.n_inputs or (DEFAULT_TEXTS if options.file else None)]
    if not items:
        raise UsageError("no texts: give them as arguments or with --file")
    device = resolve_device(options.device)
    events.info("loading models ...")
    classifier, lm = load_models(options, names, device)
    check_versus(options.versus)
    versus = versus_option(options.versus, PRED, False, classifier.labels)
    settings = Settings(names, options.n_samples, options.n_steps, options.seed, PRED, overrides, versus=versus)
    configs = {m: settings.config(m) for m in names}
    extra = {k: v for k, v in (("max_layers", options.max_layers), ("repeats", options.repeats)) if v is not None}
    config = SanityConfig(names, configs, list(options.tests), options.layers, seed=options.seed, device=device,
                          versus=versus, **extra)
    if options.layers:
        from attrib.evaluate.randomization import layer_groups, select

        select(layer_groups(classifier.model), options.layers, None)
    return classifier, lm, items, settings, config, describe_methods(names, configs)


def _path_method(config: SanityConfig) -> str | None:
    """The method completeness is reported for: the first asked for with a gap (else IG), if the test runs."""
    if "completeness" not in config.tests:
        return None
    return (path_methods(config.methods) or [DEFAULT_PATH_METHOD])[0]


def _with_steps(settings: Settings, method: str, steps: int) -> Settings:
    """``settings`` with ``method`` at ``steps`` (its --set n_steps too)."""
    mine = {k: v for k, v in settings.overrides.get(method, {}).items() if k != "n_steps"}
    return dataclasses.replace(settings, methods=[method], n_steps=steps, overrides={**settings.overrides,
                                                                                       method: mine})


class _Texts:
    """The texts checked: each explained by a classifier (its word scores per method), or IG's rows at some step
    count; a progress step per text."""

    def __init__(self, items: list[TextItem], lm, settings: Settings, events: Events) -> None:
        self.items, self.lm, self.settings, self.events = items, lm, settings, events
        self.words: list[str] = []  # the first text's words (and its pair's)

    def maps(self, classifier) -> list[dict[str, np.ndarray]]:
        out = []
        for position, item in enumerate(self.items):
            entry = explain_one(classifier, self.lm, item, position, self.settings)
            self.words = self.words or entry["words"]
            out.append({m: np.asarray(entry["scores"][m], dtype=np.float64) for m in self.settings.methods})
            self.events.advance("maps", 1, f"sanity: {item.name}")
        return out

    def gaps(self, classifier, method: str, steps: int) -> tuple[list[dict], float]:
        settings = _with_steps(self.settings, method, steps)
        rows = []
        for item in self.items:
            models = [classifier] + ([self.lm] if self.lm is not None else [])
            text, words, _ = readable(item, split_words(item.input), models)
            probs = classifier.scores([text])[0]
            target = int(probs.argmax())
            versus = other_class(item, settings, probs, target, None)
            rows.append(gradient_scores(classifier, text, words, method, target, settings, versus)[1])
            self.events.advance("maps", 1, f"sanity: {method} at {steps} steps")
        return rows, float(np.mean([r["passes"] for r in rows]))


def _usable(classifier, lm, items: list[TextItem], settings: Settings, events: Events) -> tuple[list, list[str]]:
    """The texts every method can explain, and one error line for each of the others (an empty text)."""
    usable, errors = [], []
    for position, item in enumerate(items):
        try:
            explain_one(classifier, lm, item, position, dataclasses.replace(settings, methods=[]))
            usable.append(item)
        except TextInputError as error:
            errors.append(str(error))
            events.error(str(error))
    if not usable:
        raise UsageError("no usable texts")
    return usable, errors


def _strip(name: str, words: list[str], strips: dict[str, list]) -> dict[str, Any]:
    """The first text's words and, per method, its scores as the layers are randomized top down (the report
    colours them, as the image report shows the first input's maps)."""
    return {"name": name, "words": words, "rows": {m: [{"layer": layer, "scores": [float(v) for v in scores]}
                                                       for layer, scores in rows] for m, rows in strips.items()}}


@closes_store
def run(options: Options, store: RunStore, events: Events | None = None) -> dict[str, Any]:
    """Both checks (or those asked for), the plot and run.json; returns the record."""
    from attrib.evaluate.randomization import layer_groups, select

    events = events or Events()
    classifier, lm, items, settings, config, methods = _prepare(options, events)
    items, errors = _usable(classifier, lm, items, settings, events)
    path = _path_method(config)
    default = settings.config(path)["n_steps"] if path else 0
    if path and default != Options.n_steps:  # --n-steps or --set gave it: the verdict says so
        config = dataclasses.replace(config, verdict_steps={path: default})
    events.info(f"classifier: {classifier.name}; {counted(len(items), 'text')}; methods: "
                f"{', '.join(config.methods)}; tests: {', '.join(config.tests)}"
                + (f"; completeness of {path}" if path and path not in config.methods else ""))
    if config.versus is not None:
        events.info(f"each classifier's predicted class is explained against "
                    f"{against(config.versus, classifier.labels)}: its probability minus the other's")
    store.open(KIND, PLOTS.values())
    groups = len(select(layer_groups(classifier.model), config.layers, config.max_layers))
    budgets = len(set(config.steps) | {default}) if path else 0
    sets = 1 + (groups * (config.repeats + 1) if "randomization" in config.tests else 0)
    events.task("maps", "sanity checks", len(items) * (sets + budgets))
    texts = _Texts(items, lm, settings, events)
    start = time.perf_counter()
    result = run_text_sanity(classifier, texts.maps, lambda m, s: texts.gaps(classifier, m, s), config, path,
                             default)
    record = header(KIND, model=classifier.describe(),
                    methods=methods, seed=config.seed, device=config.device, inputs=[i.name for i in items],
                    input_errors=errors, tests=config.tests, layers=result["layers"], lm=lm.name if lm else None,
                    thresholds=THRESHOLDS, repeats=config.repeats, draw_seeds=config.draw_seeds,
                    versus=config.versus, seconds=round(time.perf_counter() - start, 1),
                    **{k: result[k] for k in ("randomization", "robustness", "completeness", "verdicts")})
    if result["strips"]:
        record["text_strip"] = _strip(items[0].name, texts.words, result["strips"])
    record["finished"], record["plots"] = now(), {}  # the plots are named once drawn
    return commit_drawn(store, record, "plots", lambda: save_plots(store, result), PLOTS.values())
