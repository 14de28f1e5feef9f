"""The explain-text job: texts x methods -> one relevance per word, for the explained class.

Text methods (olm, olm_s, unk, delete: ``inputs="text"`` in the registry) are forward-only: every candidate
sentence of a text goes into one deduplicated list that the classifier scores in batches under inference mode;
identical candidates are scored once and weighted by their counts. Tensor methods (gradient, gradient_x_input,
integrated_gradients, ...) run through ``attrib.attribute`` on the input embeddings (IG from the zero
embedding) and are summed over embedding dimensions and over the sub-word tokens of each word. All scores
explain the target class's score as the model's head is read: its softmax probability (a sigmoid for a
multi-label model, the output itself for a one-output model).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attrib.data.text import TextInput, TextInputError, TextItem, Word, split_words
from attrib.errors import UsageError, counted
from attrib.executors import ExecutorSpec
from attrib.jobs.common import (Accuracy, Events, ListFields, attribution_row, check_counts, check_images,
                                check_only, describe_methods, failure_line, gap_warnings, header,
                                ignored_settings, now, selected, work_device)
from attrib.methods import METHODS, TEXT, TextContext, check_needs
from attrib.runs.store import RunStore, closes_store

KIND = "explain_text"
SAVE_EVERY = 5.0  # seconds between saves of the record during a run (a crash loses at most this much work) ...
SAVE_SHARE = 0.1  # ... or more, so that saving the growing record takes at most this share of the run
DEFAULT_METHODS = ("olm", "olm_s")
EXCLUDED = "excluded"  # a text's status when --only leaves it out (its prediction is recorded)
PRED = "pred"  # --target pred given: explain the predicted class even where a gold label judges it
GOLD = "gold"  # --versus gold: contrast with each text's gold label
SUPPLIED = {"lm"}


@dataclass
class Settings:
    """How each text is explained. ``target`` None: a row's gold label where it has one, else the predicted
    class; PRED: the predicted class (gold labels only judge it); or one class."""

    methods: list[str]
    n_samples: int = 100
    n_steps: int = 100
    seed: int = 0
    target: int | str | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # --set, per method
    only: str | None = None  # "wrong" ("right"): explain only the texts classified wrong (right); None: all
    versus: int | str | None = None  # a contrast's other class: one class, RUNNER_UP, GOLD or PRED; None: none

    def config(self, method: str) -> dict[str, Any]:
        """The method's options: --n-samples / --n-steps where it has them (IG from the zero embedding), then
        the method's --set items."""
        fields = METHODS[method].option_names()
        values = {"n_samples": self.n_samples, "n_steps": self.n_steps, "baseline": "zero",
                  "rule": "gausslegendre"}  # the OLM paper's baselines: fixed-step IG
        return {**{k: v for k, v in values.items() if k in fields}, **self.overrides.get(method, {})}


@dataclass(kw_only=True)
class TextModelOptions(ListFields):
    """The classifier and masked LM specs, methods and settings, as every text job takes them (keywords only)."""

    model: str = ""
    lm: str | None = None
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    settings: list[str] = field(default_factory=list)  # --set KEY=VALUE / METHOD.KEY=VALUE items
    n_samples: int = 100
    n_steps: int = 100
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"
    trust_remote_code: bool = False
    labels: str | None = None  # a file naming the classifier's classes (default: its id2label)


@dataclass
class Options(TextModelOptions):
    """The whole job: texts (arguments or a file), the classifier and LM specs, methods and settings."""

    texts: list[str] = field(default_factory=list)
    file: str | None = None
    column: str | None = None
    label_column: str | None = None
    pairs: list[str] = field(default_factory=list)  # --pair: one second text per argument text, in order
    pair_column: str | None = None
    target: str | None = None  # None: each row's gold label where it has one, else the predicted class
    only: str | None = None  # Settings.only
    force: bool = False  # redo the texts an earlier run into the same folder explained
    versus: str | None = None  # explain the class against another: runner-up, gold, pred or a class
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)  # where the texts are explained


def canonical_methods(names: list[str]) -> list[str]:
    """Canonical names; a UsageError for unknown ones or for methods whose needs this job cannot meet."""
    out = []
    for name in names:
        if name not in METHODS:
            raise UsageError(f"unknown text method {name!r}; choose from {', '.join(available())}")
        out.append(METHODS.canonical(name))
        check_needs(out[-1], SUPPLIED, "attrib explain-text")
    return list(dict.fromkeys(out))


def available() -> list[str]:
    """Every method explain-text can run."""
    return [n for n in METHODS if set(METHODS[n].needs) <= SUPPLIED]


class _Unique:
    """Candidate sentences, each stored once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def add(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))

    @property
    def texts(self) -> list[str]:
        return list(self.index)


def explain_one(classifier, lm, item: TextItem, position: int, settings: Settings) -> dict[str, Any]:
    """Scores of every method for one text; TextInputError for an empty text or a bad gold label."""
    start = time.perf_counter()
    if item.error:
        raise TextInputError(item.error)
    words = split_words(item.input)
    if not words:
        raise TextInputError(f"{item.name}: empty text (no words to explain)")
    for segment, what in ((0, "text"), (1, "pair")):
        if item.pair is not None and not any(w.segment == segment for w in words):
            raise TextInputError(f"{item.name}: empty {what} (no words): a text and its pair need words each")
    text, words, cut = readable(item, words, [classifier] + ([lm] if lm is not None else []))
    if settings.only is not None:
        left_out = _left_out(classifier, item, text, settings)
        if left_out:
            return left_out
    unique = _Unique()
    original = unique.add(text)
    ctx = TextContext(text, words, position, settings.seed, classifier, lm, unique.add)
    plans = {m: METHODS[m].fn(ctx, METHODS[m].make_config(**settings.config(m)))
             for m in settings.methods if METHODS[m].inputs == TEXT}
    probs = classifier.scores(unique.texts)
    target, reason, gold = _target(item, settings, probs[original], classifier.labels)
    versus = other_class(item, settings, probs[original], target, gold)
    explained = probs[:, [target]] - (0 if versus is None else probs[:, [versus]])  # the score explained
    scores = {m: fn(explained, original)[:, 0].tolist() for m, fn in plans.items()}
    gaps, faithfulness = {}, {}
    for method in (m for m in settings.methods if m not in plans):
        values, row = gradient_scores(classifier, text, words, method, target, settings, versus)
        scores[method] = values.tolist()
        if row["gap"] is not None:
            gaps[method] = row["gap"]
        faithfulness[method] = gap_warnings(row, method, images=False)
    return {"name": item.name, "text": item.text, **_pair(item, words), "words": [w.text for w in words],
            "status": "ok", "error": None, **_classes(classifier.labels, probs[original], target, reason, gold),
            "target_prob": float(probs[original, target]), **_other(classifier.labels, probs[original], versus),
            "scores": {m: scores[m] for m in settings.methods}, "gaps": gaps,
            "faithfulness": {m: notes for m, notes in faithfulness.items() if notes}, "candidates": len(unique.index),
            "cut": cut,
            "seconds": round(time.perf_counter() - start, 3)}


def _left_out(classifier, item: TextItem, text: TextInput, settings: Settings) -> dict[str, Any] | None:
    """A text ``--only`` leaves out (one forward pass: its prediction against its gold label or --target),
    recorded with status ``excluded``; None for a text to explain."""
    probs = classifier.scores([text])[0]
    target, reason, gold = _target(item, settings, probs, classifier.labels)
    if selected(settings.only, int(probs.argmax()), _judged(settings, gold)):
        return None
    return {"name": item.name, "text": item.text, **({} if item.pair is None else {"pair": item.pair}),
            "status": EXCLUDED, "error": None, **_classes(classifier.labels, probs, target, reason, gold)}


def _classes(labels: list[str], probs: torch.Tensor, target: int, reason: str, gold: int | None) -> dict[str, Any]:
    """A text entry's prediction (from its scores ``probs``), explained class and gold label."""
    top = int(probs.argmax())
    return {"prediction": {"index": top, "label": labels[top], "prob": float(probs[top])},
            "target": target, "target_label": labels[target], "target_from": reason, "gold": gold,
            "gold_label": None if gold is None else labels[gold]}


def other_class(item: TextItem, settings: Settings, probs: torch.Tensor, target: int, gold: int | None
                ) -> int | None:
    """A text's other class for the contrast (None: no contrast): ``--versus``'s, its runner-up where that is
    the class explained."""
    from attrib.targets import runner_up

    if settings.versus is None:
        return None
    if settings.versus == GOLD and gold is None:
        raise TextInputError(f"{item.name}: no gold label to contrast with (--versus gold)")
    versus = {GOLD: gold, PRED: int(probs.argmax())}.get(settings.versus, settings.versus)
    return versus if isinstance(versus, int) and versus != target else runner_up(probs, target)


def _other(labels: list[str], probs: torch.Tensor, versus: int | None) -> dict[str, Any]:
    """A contrasted text's other class, its label and score (nothing without a contrast)."""
    if versus is None:
        return {}
    return {"versus": versus, "versus_label": labels[versus], "versus_prob": float(probs[versus])}


def _pair(item: TextItem, words: list[Word]) -> dict[str, Any]:
    """A text with a pair: the pair and the index of its first word in ``words`` (the text's words come first)."""
    if item.pair is None:
        return {}
    return {"pair": item.pair, "pair_start": sum(w.segment == 0 for w in words)}


def readable(item: TextItem, words: list[Word], models: list) -> tuple[TextInput, list[Word], dict | None]:
    """The text the models read whole (cut after the last word within every model's token limit), its words,
    and what was cut (None when nothing was): explaining words a model never sees would give them 0. A text
    with a pair is not cut (which of the two to cut is the user's call): it fails with one line."""
    from attrib.models.text_models import pair_overflow, words_within

    if item.pair is not None:
        overflow = pair_overflow(models, item.input)
        if overflow:
            raise TextInputError(f"{item.name}: the text and its pair are {overflow[0]} tokens together and the "
                                 f"models read at most {overflow[1]}; shorten them")
        return item.input, words, None
    fit = words_within(models, item.text, words)
    if fit == len(words):
        return item.text, words, None
    if fit == 0:
        raise TextInputError(f"{item.name}: its first word is longer than the models' token limit")
    limit = min(m.max_tokens for m in models if getattr(m, "max_tokens", None))
    return item.text[:words[fit - 1].end], words[:fit], {"words": len(words), "explained": fit, "tokens": limit}


def _target(item: TextItem, settings: Settings, p: torch.Tensor, labels: list[str]) -> tuple[int, str, int | None]:
    """The class to explain, where it came from ("gold label", "--target" or "prediction") and the gold label's
    class (None without one)."""
    target, reason, gold = _explained(item, settings, labels)
    return (int(p.argmax()) if target is None else target), reason, gold


def _explained(item: TextItem, settings: Settings, labels: list[str]) -> tuple[int | None, str, int | None]:
    """As :func:`_target`, with None for the predicted class: ``--target``'s class, else the gold label unless
    ``--target pred`` was asked for."""
    from attrib.targets import parse_class

    gold = None
    if item.label is not None:
        try:
            gold = parse_class(item.label, labels)
        except ValueError as error:
            raise TextInputError(f"{item.name}: gold label: {error}") from None
    if isinstance(settings.target, int):
        return settings.target, "--target", gold
    if settings.target is None and gold is not None:
        return gold, "gold label", gold
    return None, "prediction", gold


def _judged(settings: Settings, gold: int | None) -> int | None:
    """The class a prediction is judged against (``--only``): the gold label's, else ``--target``'s one class."""
    return gold if gold is not None or not isinstance(settings.target, int) else settings.target


def _gold_of(entry: dict[str, Any]) -> int | None:
    """An entry's gold class (records written before it was kept say it only as the explained class)."""
    if "gold" in entry:
        return entry["gold"]
    return entry.get("target") if entry.get("target_from") == "gold label" else None


def gradient_scores(classifier, text: TextInput, words: list[Word], method: str, target: int,
                    settings: Settings, versus: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Per-word sums of an embedding-gradient attribution of the target's score (minus the ``versus`` class's),
    and the attribution's :func:`attribution_row` (its completeness gap is over all embeddings, special tokens
    included)."""
    from attrib.api import attribute

    if not hasattr(classifier, "embedding_forward"):
        raise UsageError(f"{method} needs a Hugging Face classifier with input embeddings")
    batch, owner = classifier.token_words(text, words)
    embeddings, forward = classifier.embedding_forward(batch)
    result = attribute(forward, embeddings, method, classifier.target(target, versus), seed=settings.seed,
                       **settings.config(method))
    per_token = result.values[0].sum(-1)
    keep = owner >= 0
    return torch.zeros(len(words)).index_add_(0, owner[keep], per_token[keep].float()), attribution_row(result, 0)


def _load(options: Options, events: Events):
    """Texts, classifier, LM and settings, validated before any work."""
    from attrib.data.text import read_texts
    from attrib.methods.options import parse_overrides

    check_counts(options, "n_samples", "n_steps", "batch_size")
    names = canonical_methods(options.methods or list(DEFAULT_METHODS))
    overrides = parse_overrides(names, options.settings)
    one_class = options.target is not None and str(options.target).strip().lower() != PRED
    check_only(options.only, one_class or bool(options.label_column), "--label-column, or one class with --target")
    items = read_texts(options.texts, options.file, options.column, options.label_column, options.pairs,
                       options.pair_column)
    for text in options.texts:
        if _is_file(text):
            events.warning(f"{text!r} is explained as a text, though it names a file; to explain the texts in it, "
                           f"use --file {text}")
    if not items:
        raise UsageError(f"no texts: {options.file} holds none" if options.file else
                         "no texts: give them as arguments or with --file")
    device = work_device(options.executor, options.device)
    events.info("loading models ...")
    here = "cpu" if options.executor.remote else device  # remote: the classes and targets are read here
    classifier, lm = load_models(options, names, here)
    for warning in _unused(options, names, lm is not None):
        events.warning(warning)
    target = _target_option(options.target, classifier.labels)
    versus = versus_option(options.versus, target, bool(options.label_column), classifier.labels)
    settings = Settings(names, options.n_samples, options.n_steps, options.seed, target, overrides, options.only,
                        versus)
    configs = {m: settings.config(m) for m in names}
    for warning in ignored_settings(overrides, configs):
        events.warning(warning)
    check_images(configs, None, "text embeddings (tokens, dim)")
    events.info(f"classifier: {classifier.name}; LM: {lm.name if lm else '—'}; methods: {', '.join(names)}; "
                f"{counted(len(items), 'text')}")
    return classifier, lm, settings, items, device


def load_models(options: TextModelOptions, methods: list[str], device: str):
    """(classifier, masked LM or None where no method draws from one), as the options name them."""
    from attrib.models.text_models import load_masked_lm, load_text_classifier

    classifier = load_text_classifier(options.model, trust_remote_code=options.trust_remote_code,
                                      batch_size=options.batch_size, device=device, labels=options.labels)
    needs_lm = any("lm" in METHODS[n].needs for n in methods)
    return classifier, load_masked_lm(options.lm, trust_remote_code=options.trust_remote_code, device=device) \
        if needs_lm else None


def _target_option(text: str | None, labels: list[str]) -> int | str | None:
    """``--target``: None (gold labels, else the prediction), PRED, or one class."""
    from attrib.targets import parse_class

    if text is None:
        return None
    return PRED if str(text).strip().lower() == PRED else parse_class(text, labels)


def versus_option(text: str | None, target: int | str | None, gold: bool, labels: list[str]) -> int | str | None:
    """``--versus``: None, RUNNER_UP, GOLD (with gold labels), PRED or one class; a UsageError where it would
    contrast every text's explained class with itself."""
    from attrib.targets import RUNNER_UP, parse_class

    if text is None:
        return None
    if len(labels) < 2:
        raise UsageError("--versus contrasts two classes, and this classifier has one output: its score already "
                         "weighs one class against the other")
    word = str(text).strip().lower()
    versus = {"runner-up": RUNNER_UP, "runner_up": RUNNER_UP, GOLD: GOLD, "truth": GOLD, PRED: PRED,
              "predicted": PRED}.get(word)
    if versus == GOLD and not gold:
        raise UsageError("--versus gold contrasts with each text's gold label: give them with --label-column")
    if versus is None:
        try:
            versus = parse_class(text, labels)
        except UsageError as error:
            raise UsageError(f"--versus: {error}") from None
        versus = PRED if versus is None else versus
    if versus == target or (versus == GOLD and target is None) or (versus == PRED and target == PRED):
        name = versus if isinstance(versus, str) else f"class {versus}"
        raise UsageError(f"--versus {text} contrasts the class explained with itself ({name}); use --versus "
                         "runner-up, or another class")
    return versus


def _unused(options: Options, names: list[str], needs_lm: bool) -> list[str]:
    """One warning per option that this run would silently ignore."""
    out = []
    if options.lm and not needs_lm:
        users = ", ".join(n for n in available() if "lm" in METHODS[n].needs)
        out.append(f"--lm {options.lm} is not used: no method of {', '.join(names)} draws from a language model "
                   f"({users} do)")
    for flag, value in (("--column", options.column), ("--label-column", options.label_column),
                        ("--pair-column", options.pair_column)):
        if value and not options.file:
            out.append(f"{flag} {value} is not used: it names a column of --file's CSV or JSONL rows")
    return out


def _is_file(text: str) -> bool:
    try:
        return "\n" not in text and len(text) < 4096 and Path(text).expanduser().is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


@closes_store
def run(options: Options, store: RunStore, events: Events | None = None) -> dict[str, Any]:
    """Explain each text; a bad text is recorded with its reason and the rest go on."""
    from attrib.evaluate.similarity import mean_pairwise_pearson

    events = events or Events()
    classifier, lm, settings, items, device = _load(options, events)
    store.open(KIND)  # not another kind's folder; what a killed earlier run here was writing, swept
    from attrib.models.checkpoint import folder_weights

    lm_weights = folder_weights(lm.name) if lm else None  # a local masked LM retrained in place is another LM
    record = header(KIND, model=classifier.describe(),
                    methods=describe_methods(settings.methods, {m: settings.config(m) for m in settings.methods}),
                    seed=settings.seed, device=device, lm=lm.name if lm else None, n_samples=settings.n_samples,
                    n_steps=settings.n_steps, target=settings.target, only=settings.only, texts=[], correlations={},
                    correlation_texts={}, **({} if settings.versus is None else {"versus": settings.versus}),
                    **({"lm_weights": lm_weights} if lm_weights else {}),
                    score=f"{classifier.score_name} of the target class"
                    + ("" if settings.versus is None else " minus that of the other class"), warnings=[])
    previous = [] if options.force else _previous(store, record, events)
    events.task("texts", "texts", len(items))
    try:
        _explain_all(items, classifier, lm, settings, record, store, events, previous, options)
    except KeyboardInterrupt:  # what was explained is kept (the record has no "finished")
        store.write_record(record)
        raise
    explained = [e["scores"] for e in record["texts"] if e["status"] == "ok"]
    record["correlations"], record["correlation_texts"] = mean_pairwise_pearson(explained)
    record.update(_gold_accuracy(record, classifier.labels, events))
    record["finished"] = now()
    store.write_record(record)
    return record


RESUME_KEYS = ("kind", "model", "lm", "lm_weights", "methods", "seed", "random", "n_samples", "n_steps", "target",
               "versus")


def _previous(store: RunStore, record: dict[str, Any], events: Events) -> list[dict[str, Any]]:
    """The texts an earlier run into this folder recorded, by position, when it ran with the same settings
    (else none, and a warning when it held texts); its run-wide warnings about them are carried over."""
    old = store.read_record()
    changed = [k for k in RESUME_KEYS if old.get(k) != record.get(k)]
    if changed and old.get("texts"):
        events.warning(f"{store.root} held a run with other settings ({', '.join(changed)}); starting it over: "
                       "its results are replaced (use another --out to keep them)")
    if changed or not isinstance(old.get("texts"), list):
        return []
    record["warnings"].extend(w for w in old.get("warnings", []) if w == VANISHING)
    return old["texts"]


def _reusable(entry: dict | None, item: TextItem, settings: Settings, labels: list[str]) -> bool:
    """Whether an earlier run's entry at this position stands: the same text, explained (or left out by
    ``--only``) as this run would, for the class it is given now (an entry edited out of shape does not)."""
    try:
        return _stands(entry, item, settings, labels)
    except (KeyError, TypeError, AttributeError, IndexError):
        return False


def _stands(entry: dict | None, item: TextItem, settings: Settings, labels: list[str]) -> bool:
    if not isinstance(entry, dict) or entry.get("status") not in ("ok", EXCLUDED) or \
            (entry.get("name"), entry.get("text"), entry.get("pair")) != (item.name, item.text, item.pair):
        return False
    try:
        given, reason, gold = _explained(item, settings, labels)
    except TextInputError:
        return False
    if entry.get("target_from") != reason or (given is not None and entry["target"] != given) or \
            _gold_of(entry) != gold:
        return False
    wanted = selected(settings.only, entry["prediction"]["index"], _judged(settings, gold))
    return wanted == (entry["status"] == "ok")


def _explain_all(items: list[TextItem], classifier, lm, settings: Settings, record: dict[str, Any],
                 store: RunStore, events: Events, previous: list[dict[str, Any]], options: Options) -> None:
    """Each text into ``record["texts"]`` (an entry of ``previous`` at the same position reused where it stands:
    a text's draws depend on its position), the record saved as it grows (see :func:`save_due`); the others are
    explained here or on the executor's workers (:func:`_entries`), and come back in order."""
    saved, cost = time.monotonic(), 0.0
    record["already_done"] = 0
    old = [previous[p] if p < len(previous) and _reusable(previous[p], item, settings, classifier.labels) else None
           for p, item in enumerate(items)]
    results = _entries([(p, item) for p, item in enumerate(items) if old[p] is None], classifier, lm, settings,
                       options, events)
    try:
        for position, item in enumerate(items):
            if old[position] is not None:
                record["texts"].append(old[position])
                record["already_done"] += 1
                events.advance("texts", 1)
                events.item({**old[position], "skipped": True})
                continue
            entry = next(results)
            if entry["status"] == "ok":
                _warn_vanishing(events, entry, record["warnings"])
                _warn_cut(events, entry)
                _warn_gaps(events, entry)
            record["texts"].append(entry)
            if save_due(time.monotonic() - saved, cost):  # not per text: rewriting the growing record is quadratic
                start = time.monotonic()
                store.write_record(record)
                saved = time.monotonic()
                cost = saved - start
            if entry["status"] == "error":
                events.error(entry["error"])
            events.advance("texts", 1)
            events.item(entry)
    finally:
        results.close()  # a Ray cluster stopped with the run


TEXTS_PER_SHARD = 8  # texts a cluster worker explains per call


def _entries(todo: list[tuple[int, TextItem]], classifier, lm, settings: Settings, options: Options,
             events: Events) -> Iterator[dict[str, Any]]:
    """The entries of the texts ``todo`` (with their positions), in order: explained here, or in shards by
    workers that each load the models once (:class:`TextWorker`)."""
    if not options.executor.remote:
        yield from (explained(classifier, lm, item, position, settings, events) for position, item in todo)
        return
    from attrib.executors import make_executor
    from attrib.jobs.pipeline import batches
    from attrib.jobs.shipping import ship

    with make_executor(options.executor) as cluster:
        events.info(f"explaining on the Ray cluster at {cluster.address}")
        init = (ship(options, cluster.share), settings, options.executor.device)
        for entries in cluster.map_ordered(TextWorker, init, "explain", batches(todo, TEXTS_PER_SHARD)):
            yield from entries


def explained(classifier, lm, item: TextItem, position: int, settings: Settings, events: Events) -> dict[str, Any]:
    """One text's entry: explained, or failed with one line (the rest go on)."""
    try:
        return explain_one(classifier, lm, item, position, settings)
    except TextInputError as error:
        return _failed(item, str(error))
    except Exception as error:  # noqa: BLE001 - one text's failure stays its own; the rest go on
        return _failed(item, failure_line(item.name, error, events))


class TextWorker:
    """(on a cluster worker) the classifier and masked LM, loaded once; shards of (position, text) in, their
    entries out, in order."""

    def __init__(self, parcel, settings: Settings, device: str) -> None:
        self.classifier, self.lm = load_models(parcel.opened(), settings.methods, device)  # (a shipping.Parcel)
        self.settings = settings

    def explain(self, shard: list[tuple[int, TextItem]]) -> list[dict[str, Any]]:
        return [explained(self.classifier, self.lm, item, position, self.settings, Events())
                for position, item in shard]


def _failed(item: TextItem, error: str) -> dict[str, Any]:
    return {"name": item.name, "text": item.text, **({} if item.pair is None else {"pair": item.pair}),
            "status": "error", "error": error}


def save_due(since_saved: float, last_cost: float) -> bool:
    """Whether to save the record again: ``SAVE_EVERY`` seconds after the last save, or later when saves got
    slow (50,000 texts: seconds each), so that saving stays within ``SAVE_SHARE`` of the time and a long file
    of texts takes time linear in its length."""
    return since_saved >= max(SAVE_EVERY, last_cost / SAVE_SHARE)


VANISHING = ("gradient scores are ~0: summed over embedding dimensions, the gradient vanishes for models that "
             "LayerNorm their embeddings; use gradient_x_input or integrated_gradients")


def _gold_accuracy(record: dict[str, Any], labels: list[str], events: Events) -> dict[str, Any]:
    """``{"top1": ..., "confusions": ...}``: the classifier's accuracy against the gold labels of the texts that
    have one, and what it confuses (else {}); warned of, and kept in the record's warnings, when it is no better
    than chance."""
    gold = Accuracy(len(labels), "the gold labels give", labels)
    for entry in record["texts"]:
        if entry["status"] in ("ok", EXCLUDED) and _gold_of(entry) is not None:
            gold.count(entry["prediction"]["index"], _gold_of(entry))
    if gold.at_chance(trained=True):
        record["warnings"].append(gold.warning())
        events.warning(gold.warning())
    return gold.summary()


def _warn_vanishing(events: Events, entry: dict, kept: list[str]) -> None:
    """Once per run, into ``kept`` (the record's warnings, for the report) and to the terminal."""
    scores = entry["scores"].get("gradient")
    if scores and VANISHING not in kept and max(map(abs, scores)) < 1e-6 * max(abs(entry["target_prob"]), 1e-12):
        kept.append(VANISHING)
        events.warning(VANISHING)


def _warn_gaps(events: Events, entry: dict) -> None:
    for method, notes in entry["faithfulness"].items():
        for note in notes:
            events.warning(f"{entry['name']} / {method}: {note}")


def _warn_cut(events: Events, entry: dict) -> None:
    if entry["cut"]:
        cut = entry["cut"]
        events.warning(f"{entry['name']}: explained its first {cut['explained']} of {cut['words']} words only: the "
                       f"models read at most {cut['tokens']} tokens (the rest would score 0)")


def json_view(record: dict[str, Any], out: Path) -> dict[str, Any]:
    """The ``--json`` object."""
    def entry(e: dict) -> dict:
        if e["status"] == "error":
            return {k: e[k] for k in ("name", "text", "pair", "status", "error") if k in e}
        return {k: e[k] for k in ("name", "text", "pair", "status", "pair_start", "words", "prediction", "target",
                                 "target_from", "gold", "versus", "versus_prob", "scores", "gaps", "faithfulness",
                                 "cut") if k in e}

    return {"texts": [entry(e) for e in record["texts"]], "correlations": record["correlations"],
            "correlation_texts": record["correlation_texts"], "top1": record.get("top1"),
            "confusions": record.get("confusions", []),
            "warnings": record.get("warnings", []), "out_dir": str(out.resolve())}


def exit_code(record: dict[str, Any]) -> int:
    return 1 if any(e["status"] == "error" for e in record["texts"]) else 0
