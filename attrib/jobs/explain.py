"""The explain job: image inputs x methods -> attributions, heatmaps and a run folder, streamed.

Inputs are decoded and preprocessed ahead of use by worker threads; several images go through the engine in
one call per method (the batch sized so that the engine's chunks stay full); rendering and writing (PNGs, one
array file per input) run in a background pool while the next batch computes; each finished input is
committed as one line of ``inputs.jsonl`` in input order. Time and bytes written are linear in the number of
inputs and memory is flat. Results equal one-at-a-time runs: every input draws its random numbers with the
same key (0), whatever batch it lands in. A bad input is recorded with its reason and the batch goes on; a
re-run into the same folder skips what is committed (unless ``force``: see attrib/jobs/explain_resume.py).

With a Ray executor (``--executor ray``) shards of inputs (their bytes: no shared file system is needed) go to
workers that hold the model, loaded once each (:class:`ShardWorker`); they return each input's record, arrays
and PNG bytes (a :func:`bundle`), and this process writes the run folder exactly as a local run does.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attrib.data.class_table import ClassTable, is_class_table, read_class_table
from attrib.engine import PRECISIONS, has_tf32, native_bf16
from attrib.errors import AttribError, UsageError, counted, first_line
from attrib.executors import ExecutorSpec, make_executor
from attrib.jobs.common import (Accuracy, Events, ListFields, assumed_reading, attribution_row, check_counts,
                                check_only, check_out, describe_methods, failure_line, gap_warnings, header,
                                ignored_settings, map_notes, method_kwargs, now, pixel_baselines, resolve_methods,
                                selected, supplies, work_device)
from attrib.jobs.explain_pictures import drawn_fields, pictures
from attrib.jobs.explain_resume import EXCLUDED, drop_replaced, only_methods, previous_inputs, tally, todo_inputs
from attrib.jobs.pipeline import OrderedFinisher, batches, prefetch
from attrib.runs.store import EXPLAIN_WRITES, MAP_PICTURES, OVERVIEW, RunStore, arrays_path, closes_store, image_path

KIND = "explain"
FOLDER = "folder"  # --truth folder: the class each image's folder names (ImageFolder's layout)
TABLE = "table"  # --truth FILE.csv: a table file names each image's class (run.json: truth_table)
TRUTH = "truth"  # --target truth: explain each input's true class (--target folder|FILE: --truth it, explain it)
PRED = "pred"  # --versus pred: each input's predicted class
STOPPED = "the run was stopped while it was explained again, its earlier maps already replaced: the same command " \
    "explains it again"
GIVEN = "given_inputs"  # the record run() returns: this run's inputs (the folder may hold earlier runs' too)
MAX_BATCH = 64  # images per engine call at most (decoded images held: about 0.6 MB each at 224 px)
CHUNKS_PER_BATCH = 2  # a batch holds rows for this many full engine chunks (so the last chunk's waste is small)


class MethodFailed(AttribError):
    """A method that could not explain one input (e.g. an input size the model cannot take)."""


@dataclass
class Options(ListFields):
    """What to explain, with what. Method names may be aliases; ``settings`` are ``--set`` items."""

    inputs: list[str] = field(default_factory=list)  # files, folders, globs, sample:NAME; [] = built-in samples
    model: str | None = None
    weights: str | None = None
    pretrained: bool = True
    trust_remote_code: bool = False
    methods: list[str] = field(default_factory=lambda: ["integrated_gradients"])
    settings: list[str] = field(default_factory=list)
    target: str = "pred"
    top_k: int = 5
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    background: str | None = None  # a folder of reference images for methods that need one
    view: str | None = None  # overlays: attrib.render.heatmap.VIEWS (None: signed for a contrast, else blend)
    force: bool = False
    images: bool = True  # write input / overlay / heatmap PNGs (False: arrays and records only)
    limit: int | None = None  # explain at most this many inputs
    batch_size: int | None = None  # images per engine call (None: sized from the engine's chunk)
    workers: int | None = None  # decoding threads (None: min(4, CPUs))
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)  # where the inputs are explained
    labels: str | None = None  # a file naming the model's classes (default: the model's own names)
    inputs_from: str | None = None  # a file listing more inputs, one per line ("-": standard input)
    only: str | None = None  # "wrong" ("right"): explain only the inputs classified wrong (right); None: all
    truth: str | None = None  # "folder" or a table file: each input's true class (accuracy, confusions, --only)
    versus: str | None = None  # explain the target against this class: runner-up, truth, pred or a class
    preprocess: list[str] = field(default_factory=list)  # KEY=VALUE changes to how the model reads pictures

    def __post_init__(self) -> None:
        super().__post_init__()
        self.view = self.view or ("signed" if self.versus else "blend")  # a contrast's evidence goes both ways


@dataclass
class Plan:
    """Everything validated and loaded before the first input runs."""

    model: Any
    methods: list[str]
    kwargs: dict[str, dict[str, Any]]
    target: int | str | None  # None: the predicted class; TRUTH: each input's true class; or one class
    device: str
    record: dict[str, Any]
    only: str | None = None  # Options.only
    truth: str | ClassTable | None = None  # FOLDER: each image's folder names its true class; a ClassTable
    truth_flag: str = "--truth"  # the option that gave the truth (for messages)
    versus: int | str | None = None  # a contrast's other class: one class, RUNNER_UP, TRUTH or PRED; None: none


def prepare(options: Options, events: Events) -> Plan:
    """Validate the options and load the model; a usage error raises an AttribError before any work."""
    from attrib.models import load_model
    from attrib.models.registry import FLATTENS

    check_counts(options, "top_k", "limit", "batch_size", "workers")
    if options.precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {options.precision!r}")
    names, overrides = resolve_methods(options.methods or ["integrated_gradients"], options.settings,
                                       inputs="tensor", supplied={"background"}, where="attrib explain")
    device = work_device(options.executor, options.device)
    events.info("loading model ...")
    model = load_model(options.model, weights=options.weights, pretrained=options.pretrained,
                       trust_remote_code=options.trust_remote_code, labels=options.labels,
                       preprocess=options.preprocess)
    if model.kind != "image":
        raise UsageError(f"{model.name} takes {model.kind} inputs, not images; evaluate it with "
                         f"`attrib diffroar` or `attrib sanity` on its data set; {FLATTENS}")
    target, truth, flag = _target(options.target, options.truth, model.labels)
    versus = versus_option(options.versus, target, truth, model)
    check_only(options.only, truth is not None or isinstance(target, int), "--truth folder or FILE, or one class "
               "with --target")
    _check_view(options.view)
    supplied, descriptions = supplies(names, model, events, folder=options.background, seed=options.seed,
                                      data=None if options.background else _own_data(model, names))
    kwargs = {n: method_kwargs(n, overrides.get(n, {}), supplied) for n in names}
    methods = describe_methods(names, kwargs, descriptions)  # (a black or white baseline, by its name)
    kwargs = pixel_baselines(kwargs, model)
    for warning in ignored_settings(overrides, kwargs):
        events.warning(warning)
    record = header(KIND, model=model.describe(), methods=methods, seed=options.seed, device=device,
                    precision=options.precision, **_target_fields(target, truth), view=options.view,
                    images=options.images, background=descriptions.get("background"), only=options.only,
                    **({"versus": versus} if versus is not None else {}), warnings=assumed_reading(model))
    events.info(f"model: {model.name}; methods: {', '.join(names)}; device: {device}")
    if versus is not None:
        events.info(f"explaining {_explained(target)} against {_other(versus, model.labels)}: positive attributions "
                    "favour the first")
    card_here = device.startswith("cuda") and not options.executor.remote  # a worker's card: unknown here
    if options.precision == "tf32" and not (has_tf32(device) if card_here else device.startswith("cuda")):
        events.warning(f"--precision tf32 changes CUDA matrix products only, on cards of compute capability 8.0 or "
                       f"more; on {device} this run is fp32")
    if options.precision == "bf16" and not options.executor.remote and not native_bf16(device):  # workers: unknown
        events.warning(f"--precision bf16: {device} has no bfloat16 arithmetic, so torch emulates it, many times "
                       "slower than fp32 (26x per pass for the default model on a 2-core AVX2 CPU); bf16 is for "
                       "GPUs of compute capability 8.0 or more (NVIDIA's from Ampere on) and CPUs with AVX-512 "
                       "BF16 or AMX")
    return Plan(model, names, kwargs, target, device, record, options.only, truth, flag, versus)


def _check_classes(plan: Plan, sources: list, events: Events) -> None:
    """With classes from folders or a table: a UsageError when no input gets one (rows keyed, or folders named,
    otherwise than the inputs: every input would fail), a warning saying how many inputs get none."""
    from attrib.data.images import InputError

    if plan.truth is None:
        return
    failures = []
    sources = [source for source in sources if source.error is None]  # the others fail with their own line
    for source in sources:
        try:
            _given(plan, source)
        except InputError as error:
            failures.append(str(error))
    table = plan.truth if isinstance(plan.truth, ClassTable) else None
    where = f"{plan.truth_flag} {table.name if table else FOLDER}"
    if sources and len(failures) == len(sources):
        keyed = f" (its rows name images as {table.first_key!r})" if table else ""
        raise UsageError(f"{where} gives no input a class{keyed}; the first: {failures[0]}")
    if failures:
        events.warning(f"{where} gives no class to {len(failures)} of {counted(len(sources), 'input')}: they fail "
                       "alone")


def _target(text: str, truth_text: str | None, labels: list[str]) -> tuple[int | str | None, Any, str]:
    """(target, truth, the option that gave the truth) from ``--target`` (pred: None, one class, or truth; folder
    or a table file is short for ``--truth`` it and ``--target truth``) and ``--truth``."""
    from attrib.targets import parse_class

    truth = None if truth_text is None else _truth(truth_text, labels, "--truth")
    word = str(text).strip()
    if word.lower() == FOLDER or is_class_table(word):
        if truth is not None:
            raise UsageError(f"--target {word} and --truth {truth_text} both give the true classes: give them once "
                             "(--truth with --target truth explains them)")
        return TRUTH, _truth(word, labels, "--target"), "--target"
    if word.lower() == TRUTH:
        if truth is None:
            raise UsageError("--target truth explains each input's true class: give the classes with --truth folder "
                             "or --truth FILE")
        return TRUTH, truth, "--truth"
    return parse_class(text, labels), truth, "--truth"


def versus_option(text: str | None, target: int | str | None, truth: Any, model) -> int | str | None:
    """``--versus``: RUNNER_UP, TRUTH (with true classes), PRED or one class; a UsageError where it would contrast
    every input's explained class with itself."""
    from attrib.targets import RUNNER_UP, parse_class

    if text is None:
        return None
    if model.n_classes < 2:
        raise UsageError(f"--versus contrasts two classes, and {model.name} has one output: its logit already weighs "
                         "one class against the other")
    word = str(text).strip().lower()
    versus = {"runner-up": RUNNER_UP, "runner_up": RUNNER_UP, TRUTH: TRUTH, PRED: PRED, "predicted": PRED}.get(word)
    if versus == TRUTH and truth is None:
        raise UsageError("--versus truth contrasts with each input's true class: give the classes with --truth "
                         "folder or --truth FILE")
    if versus is None:
        try:
            versus = parse_class(text, model.labels)
        except UsageError as error:
            raise UsageError(f"--versus: {error}") from None
        versus = PRED if versus is None else versus  # (an empty name)
    if versus == target or (versus == PRED and target is None):
        name = versus if isinstance(versus, str) else f"class {versus}"
        raise UsageError(f"--versus {text} contrasts the class explained with itself ({name}); use --versus "
                         "runner-up, or another class")
    return versus


def _explained(target: int | str | None) -> str:
    return "each input's predicted class" if target is None else "each input's true class" if target == TRUTH else \
        f"class {target}"


def _other(versus: int | str, labels: list[str]) -> str:
    from attrib.targets import RUNNER_UP

    return {RUNNER_UP: "its runner-up", TRUTH: "its true class (where that is the class explained: its runner-up)",
            PRED: "its predicted class (where that is the class explained: its runner-up)"}.get(
        versus, f"{labels[versus]} ({versus})" if isinstance(versus, int) else str(versus))


def _truth(text: str, labels: list[str], flag: str) -> str | ClassTable:
    """FOLDER, or the table file ``text`` names; a UsageError for anything else."""
    if str(text).strip().lower() == FOLDER:
        return FOLDER
    if is_class_table(text):
        return read_class_table(str(text).strip(), labels, flag)
    raise UsageError(f"{flag} takes folder or a table file (.csv, .tsv, .txt or .json) naming each image's class, "
                     f"got {text!r}")


def _target_fields(target: int | str | None, truth: str | ClassTable | None) -> dict[str, Any]:
    """run.json's ``target`` (pred, a class index; folder or table when it explains the true classes, with
    ``target_table``: its file and digest, as before --truth) and ``truth`` (folder or table, ``truth_table``)."""
    kind = TABLE if isinstance(truth, ClassTable) else truth
    table = truth.describe() if isinstance(truth, ClassTable) else None
    if target == TRUTH:
        return {"target": kind, **({"target_table": table} if table else {})}
    fields = {"target": "pred" if target is None else target}
    if truth is not None:
        fields.update(truth=kind, **({"truth_table": table} if table else {}))
    return fields


def _check_view(view: str) -> None:
    from attrib.render.heatmap import VIEWS

    if view not in VIEWS:
        raise UsageError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")


def _own_data(model, names: list[str]) -> torch.Tensor | None:
    """A sample model's training inputs (its card names the data set): Expected Gradients' natural reference
    set for it; None for other models or when no method needs one."""
    from attrib.methods import METHODS

    if not model.card.get("dataset") or not any("background" in METHODS[n].needs for n in names):
        return None
    from attrib.data.datasets import load_dataset

    return load_dataset(model.card["dataset"], **model.card.get("dataset_args", {})).train_x


def rows_per_input(plan: Plan) -> int:
    """Forward + input-backward rows one input may cost with these methods (a progress bar's first total; an
    adaptive rule's budget, which the bar gives back as inputs converge under it)."""
    return sum(_rows(plan, m) for m in plan.methods)


def _rows(plan: Plan, method: str, per_call: bool = False) -> int:
    """Rows one input may cost with ``method`` (its budget), or about those it sends to one engine call."""
    from attrib.methods import METHODS

    spec = METHODS[method]
    config = spec.make_config(**plan.kwargs[method])
    return spec.rows_per_call(config) if per_call else spec.rows(config)


@closes_store
def run(options: Options, store: RunStore, events: Events | None = None) -> dict[str, Any]:
    """Explain every input with every method into ``store``; returns the run record (header and summary;
    the inputs' records are in the store: ``attrib.load_run``)."""
    from attrib.data.images import expand_inputs, read_input_list

    events = events or Events()
    listed = read_input_list(options.inputs_from) if options.inputs_from else []
    check_out(options.inputs + listed, store.root)
    plan = prepare(options, events)
    sources = expand_inputs(options.inputs + listed)[:options.limit]
    _check_classes(plan, sources, events)
    if not options.executor.remote:
        plan.model.module.to(plan.device).eval()
    store.open(KIND, EXPLAIN_WRITES)  # not another kind's folder, nor a user's files
    previous = previous_inputs(store, plan.record, events)
    record = plan.record
    store.write_record(record)
    store.remove(OVERVIEW)  # (drawn again at the end: a run stopped part way leaves no contact sheet of another)
    stats, top1 = {"done": 0, "skipped": 0, "excluded": 0, "failed": 0}, _accuracy(plan)
    events.task("inputs", "inputs", len(sources))
    start = time.perf_counter()  # (the time what was done earlier takes to check and draw again counts too)
    todo = todo_inputs(plan, sources, previous, options, events, stats, top1, store)
    earlier = {prev["id"] for prev in previous.values() if _files(prev)}
    streamed = time.perf_counter()
    _stream(plan, todo, options, store, events, stats, top1, earlier)
    drop_replaced(record, previous, todo)
    end = time.perf_counter()
    record["summary"] = {**stats, "inputs": len(sources), "seconds": round(end - start, 2),
                         "images_per_second": round(stats["done"] / (end - streamed), 3) if stats["done"] else 0.0,
                         **(top1.summary() if top1 else {})}
    if top1 and top1.at_chance(options.pretrained):
        record["warnings"].append(top1.warning())  # for the report
        events.warning(top1.warning())
    if options.images:
        record["overview"] = write_overview(store)
    record["finished"] = now()
    store.write_record(record)
    return record | {GIVEN: [source.name for source in sources]}  # (not kept in run.json: see json_view)


def _accuracy(plan: Plan) -> Accuracy | None:
    """Top-1 accuracy against the true classes folders or a table give (None without them)."""
    if plan.truth == FOLDER:
        return Accuracy(plan.model.n_classes, "the folders name", plan.model.labels)
    if isinstance(plan.truth, ClassTable):
        return Accuracy(plan.model.n_classes, "the table gives", plan.model.labels)
    return None


def write_overview(store: RunStore, path: str = OVERVIEW) -> str | None:
    """The run's contact sheet (inputs x methods), written into the run folder; its relative path."""
    from attrib.render.contact import contact_sheet
    from attrib.runs import load_run
    from attrib.runs.atomic import png_bytes

    sheet = contact_sheet(load_run(store.root).record, store.root)
    return None if sheet is None else store.write_png(path, png_bytes(sheet))


def batch_size(plan: Plan, options: Options, per_input: int) -> int:
    """Images per engine call: the user's, else enough rows for CHUNKS_PER_BATCH full engine chunks.

    On a CPU the rows that count are ``per_input`` (all an input costs): a call of a few rows costs about the
    same per row as a full chunk there (bench/RESULTS.md), so fewer images are held at once. On a GPU a small
    call wastes the card, and a method that works in rounds (adaptive IG) sends each input's rows a few at a
    time, so the rows of one call count, and the method sending the fewest sets the batch (at most as many
    images as the rows such a method keeps fit in the engine's share of the card)."""
    if options.batch_size:
        return options.batch_size
    from attrib.api import chunk_rows

    size = plan.model.preprocess.size
    like = torch.zeros(1, plan.model.preprocess.channels, *size)
    device = "cpu" if options.executor.remote else plan.device  # (workers may hold more)
    rows = chunk_rows(plan.model.module, like, device=device, precision=options.precision)
    most = MAX_BATCH
    if device.startswith("cuda"):
        per_input = min(_rows(plan, m, per_call=True) for m in plan.methods)
        kept = max((_rows(plan, m) for m in plan.methods if _rows(plan, m, per_call=True) < _rows(plan, m)),
                   default=0)
        if kept:  # a method in rounds keeps up to its budget of input-sized rows per image until it is done
            from attrib.engine import gpu_memory_fraction

            card = torch.cuda.mem_get_info(torch.device(device))[1]
            most = min(most, int(gpu_memory_fraction() * card // (kept * like.numel() * like.element_size())))
    return max(1, min(most, math.ceil(CHUNKS_PER_BATCH * rows / max(1, per_input))))


def _stream(plan: Plan, todo: list, options: Options, store: RunStore, events: Events, stats: dict,
            top1: Accuracy | None, earlier: set[str]) -> None:
    """Explain ``todo`` here or on the executor's workers; commit each input in order as it is finished.

    An input whose files are about to be written is first committed as stopped part way where its record from an
    earlier run (``earlier``: the ids of those) names files, which this run overwrites: a run killed before the
    input's own commit leaves no record naming a file of another run. Stopped by an exception (Ctrl-C), the files
    written for inputs not committed yet are removed: a stopped run's folder holds the files its records name."""
    if not todo:
        return
    per_input = rows_per_input(plan)
    size = batch_size(plan, options, per_input)
    events.task("rows", "passes", per_input * len(todo))
    events.detail(f"{size} images per engine call")
    begun: dict[str, None] = {}  # inputs whose files are being written, until they are committed

    def begin(entry: dict) -> None:  # (in the thread about to write an input's files)
        begun[entry["id"]] = None
        if entry["id"] in earlier:
            store.append_input(_stopped(entry))

    def commit(entry: dict) -> None:
        if plan.truth is not None and entry.get("given") is not None:  # (found here: workers know no truth)
            entry["true_label"] = plan.model.labels[entry["given"]]
        begun.pop(entry["id"], None)  # (first: a file its record names is never removed)
        store.append_input(entry)
        stats[{"ok": "done", EXCLUDED: "excluded"}.get(entry["status"], "failed")] += 1
        tally(top1, entry)
        # what an earlier run made of it that does not stand now (it failed, or has maps of other methods now)
        store.remove_input_files(entry["id"], keep=_files(entry))
        if entry["status"] == "error":
            events.error(entry["error"])
        events.advance("inputs", 1)
        events.item(entry)

    try:
        if options.executor.remote:
            _stream_remote(plan, todo, options, store, events, begin, commit, size, per_input)
        else:
            _stream_here(plan, todo, options, store, events, begin, commit, size)
    finally:
        for input_id in begun:  # (none once every input is committed)
            store.remove_input_files(input_id)


def _files(entry: dict) -> set[str]:
    """An input's files as its record names them (relative paths): its maps' arrays, the picture the model saw and
    its overlays and heatmaps."""
    pictures = [entry.get("view"), *(a.get(kind) for a in entry.get("attributions", []) for kind in MAP_PICTURES)]
    return {p for p in pictures if p} | ({arrays_path(entry["id"])} if entry["status"] == "ok" else set())


def _stream_here(plan: Plan, todo: list, options: Options, store: RunStore, events: Events, begin, commit,
                 size: int):
    """Decode ahead, explain in batches, finish in the background, commit in order. Stopped (Ctrl-C), the work
    not started yet is dropped (an input whose files are not written keeps its earlier record)."""
    workers = options.workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as decoders, ThreadPoolExecutor(2) as writers:
        try:
            finisher = OrderedFinisher(writers, commit, backlog=size)
            decoded = prefetch(decoders, _targeted(plan, todo), lambda item: _decode(plan, *item),
                               ahead=size + workers)
            for batch in batches(decoded, size):
                for item, outcome in _outcomes(plan, batch, options, events):
                    if isinstance(outcome, str):
                        finisher.done(_failed(item, outcome))
                    else:
                        finisher.submit(_finish, plan, item, outcome, options, store, events, begin)
            finisher.close()
        except BaseException:
            for pool in (decoders, writers):
                pool.shutdown(cancel_futures=True)
            raise


def _stream_remote(plan: Plan, todo: list, options: Options, store: RunStore, events: Events, begin, commit,
                   size: int, per_input: int):
    """Shards of ``size`` inputs to the executor's workers; their bundles written here, in input order."""
    from attrib.data.images import portable
    from attrib.jobs.shipping import ship

    shards = ([(portable(source), input_id, given) for source, input_id, given in _targeted(plan, shard)]
              for shard in batches(todo, size))
    with make_executor(options.executor) as executor:
        events.info(f"explaining on the Ray cluster at {executor.address}")
        init = (ship(options, executor.share), plan.methods, plan.kwargs, plan.device, plan.target, plan.versus)
        for bundles in executor.map_ordered(ShardWorker, init, "explain", shards):
            used = sum(a["passes"] or 0 for finished in bundles for a in finished["entry"]["attributions"])
            for finished in bundles:
                commit(write_bundle(store, finished, events, begin))
            events.advance("rows", used)
            events.shrink("rows", per_input * len(bundles) - used)


class ShardWorker:
    """(on a cluster worker) the model, loaded once; shards of inputs in, their bundles out, in order."""

    def __init__(self, parcel, methods: list[str], kwargs: dict, device: str, target: int | str | None,
                 versus: int | str | None = None) -> None:
        from attrib.models import load_model

        options = parcel.opened()  # (a Parcel: the options, with the local files they name)
        model = load_model(options.model, weights=options.weights, pretrained=options.pretrained,
                           trust_remote_code=options.trust_remote_code, labels=options.labels,
                           preprocess=options.preprocess)
        model.module.to(device).eval()
        self.plan = Plan(model, methods, kwargs, target, device, {}, options.only, versus=versus)  # truth: per input
        self.options = options

    def explain(self, shard: list[tuple]) -> list[dict[str, Any]]:
        items = [_decode(self.plan, source, input_id, given) for source, input_id, given in shard]
        return [{"entry": _failed(item, outcome)} if isinstance(outcome, str)
                else bundle(self.plan, item, outcome, self.options)
                for item, outcome in _outcomes(self.plan, items, self.options, Events())]


def _outcomes(plan: Plan, batch: list[dict], options: Options, events: Events):
    """Each decoded item of a batch with its outcome (see _explain_batch) or its error line, in order."""
    ready = [item for item in batch if item["error"] is None]
    outcomes = iter(_explain_batch(plan, ready, options, events))
    for item in batch:
        outcome = item["error"] if item["error"] is not None else next(outcomes)
        item["x"] = None  # the batch is done with it
        yield item, outcome


def _failed(item: dict, error: str) -> dict[str, Any]:
    return _entry(item) | {"status": "error", "error": error, "fingerprint": None}  # (a failed input is redone)


def _stopped(entry: dict) -> dict[str, Any]:
    """What an input's record is while its files are written again (see _stream): one that names none."""
    return {key: entry[key] for key in ("name", "path", "id", "given")} | {
        "status": "error", "error": f"{entry['name']}: {STOPPED}", "fingerprint": None, "view": None,
        "predictions": [], "attributions": []}


def _entry(item: dict) -> dict[str, Any]:
    source = item["source"]
    return {"name": source.name, "path": source.path, "id": item["id"], "status": "ok", "error": None,
            "given": item["given"], "fingerprint": item.get("fingerprint"), "view": None, "predictions": [],
            "attributions": []}


def folder_class(source, labels: list[str], flag: str = "--target") -> int:
    """The class named by the folder an image file is in (ImageFolder's layout: a label name or index, or an
    ImageNet WordNet id); an InputError naming the image (and ``flag``, the option that asked) otherwise."""
    from attrib.data.images import InputError
    from attrib.targets import IMAGENET_CLASSES, leading_wordnet_id, parse_class

    if source.path is None:
        raise InputError(f"{source.name}: not a file in a folder, so no folder names its class ({flag} folder)")
    folder = Path(os.path.abspath(source.path)).parent.name  # as given: a symbolic link's own folder counts
    try:
        return parse_class(folder, labels)
    except UsageError as error:
        problem = error
    wordnet_id = leading_wordnet_id(folder)  # Stanford Dogs' "n02085620-Chihuahua"
    if wordnet_id and len(labels) == IMAGENET_CLASSES:
        with contextlib.suppress(UsageError):
            return parse_class(wordnet_id, labels)
    raise InputError(f"{source.name}: its folder {folder!r} names no class of the model ({flag} folder): "
                     f"{problem}")


def _given(plan: Plan, source) -> int | None:
    """The class an input is judged against: its true class (its folder's or its table row's; an InputError when
    they name none), else the one class of ``--target``, else None. An input known to fail (a glob matching
    nothing, a compressed tar) has none to look for: it fails with its own line."""
    if source.error is not None:
        return None
    if plan.truth == FOLDER:
        return folder_class(source, plan.model.labels, plan.truth_flag)
    if isinstance(plan.truth, ClassTable):
        return plan.truth.class_of(source)
    return plan.target if isinstance(plan.target, int) else None


def _targeted(plan: Plan, todo):
    """(source, input id, given class: :func:`_given`) per input, found here, where the paths were given: a
    worker elsewhere may see other paths. An input without a class becomes a source that fails with that line."""
    from attrib.data.images import InputError, failing_source

    for source, input_id in todo:
        try:
            yield source, input_id, _given(plan, source)
        except InputError as error:
            yield failing_source(source.name, str(error)), input_id, None


def _decode(plan: Plan, source, input_id: str, given: int | None) -> dict[str, Any]:
    """(in a worker thread) the image as the model sees it, or the one-line reason it cannot be read; with the
    class it is given, the one to explain (None: its predicted one) and the input's fingerprint (taken first)."""
    from attrib.data.fingerprints import fingerprint
    from attrib.data.images import input_notes

    target = given if plan.target == TRUTH else plan.target
    item = {"source": source, "id": input_id, "view": None, "x": None, "error": None, "given": given,
            "target": target, "fingerprint": fingerprint(source)}
    try:
        image = source.load()
        item["view"] = plan.model.preprocess.view(image)
        item["x"] = plan.model.preprocess.tensor(item["view"])
        item["note"] = "; ".join(input_notes(image, plan.model.preprocess)) or None
    except Exception as error:  # noqa: BLE001 - a bad file is that input's error, never a crash
        item["error"] = str(error) if isinstance(error, AttribError) else \
            f"{source.name}: unexpected {type(error).__name__}: {first_line(error)}"
    return item


def _explain_batch(plan: Plan, items: list[dict], options: Options, events: Events) -> list:
    """Per item: (outputs row, {method: that input's share of the result, see attribution_row}) or its error line.
    A failing batch is retried one input at a time, so that one bad input fails alone."""
    if not items:
        return []
    try:
        x = torch.stack([i["x"] for i in items])
        return _attribute_all(plan, x, [i["target"] for i in items], [i["given"] for i in items], options, events)
    except Exception as error:  # noqa: BLE001 - retried per input below; one input's failure stays its own
        if len(items) == 1:
            return [failure_line(items[0]["source"].name, error, events)]
        return [_explain_batch(plan, [item], options, events)[0] for item in items]


def _attribute_all(plan: Plan, x: torch.Tensor, targets: list[int | None], given: list[int | None],
                   options: Options, events: Events) -> list:
    """Each input's outputs and attributions of its target class (None: the predicted one); None for the
    attributions of an input ``--only`` leaves out, judged against its ``given`` class."""
    from attrib.api import attribute, predict

    outputs = predict(plan.model.module, x, device=plan.device, precision=options.precision)
    predicted = outputs.argmax(dim=1).tolist()
    kept = [b for b in range(len(x)) if selected(plan.only, predicted[b], given[b])]
    targets = [predicted[b] if targets[b] is None else targets[b] for b in kept]
    versus = None if plan.versus is None else [_versus_class(plan.versus, predicted[b], given[b]) for b in kept]
    x = x if len(kept) == len(x) else x[kept]
    results = {}
    for method in plan.methods:
        events.shrink("rows", _rows(plan, method) * (len(predicted) - len(kept)))
        if not kept:
            continue
        try:
            results[method] = attribute(plan.model.module, x, method, targets, seed=options.seed,
                                        device=plan.device, precision=options.precision, input_keys=[0] * len(x),
                                        versus=versus,
                                        progress=lambda n: events.advance("rows", n), **plan.kwargs[method])
        except (RuntimeError, ValueError) as error:  # e.g. an input size this model cannot take
            raise MethodFailed(f"{method} failed: {first_line(error)}") from error
        events.shrink("rows", _rows(plan, method) * len(x) - results[method].passes)
    row = {b: i for i, b in enumerate(kept)}
    return [(outputs[b].clone(), {m: attribution_row(r, row[b]) for m, r in results.items()} if b in row else None)
            for b in range(len(predicted))]


def _versus_class(versus: int | str, predicted: int, given: int | None) -> int | None:
    """One input's other class for the contrast (None: its runner-up)."""
    return {TRUTH: given, PRED: predicted}.get(versus, versus if isinstance(versus, int) else None)


def top_predictions(outputs: torch.Tensor, labels: list[str], k: int, kind: str = "softmax") -> list[dict[str, Any]]:
    """The top-k classes of one output row, with labels and scores read as ``kind`` says (softmax
    probabilities; sigmoid ones for a multi-label model; a one-output model's output)."""
    from attrib.targets import read_scores

    probs = read_scores(outputs.float(), kind, dim=0)
    values, indices = probs.topk(min(k, len(probs)))
    return [{"index": int(i), "label": labels[int(i)], "prob": float(v)} for v, i in zip(values, indices)]


def _finish(plan: Plan, item: dict, outcome, options: Options, store: RunStore, events: Events, begin) -> dict:
    """(in a background thread) render and write one input's files; its record."""
    return write_bundle(store, bundle(plan, item, outcome, options), events, begin)


def bundle(plan: Plan, item: dict, outcome, options: Options) -> dict[str, Any]:
    """One explained input, ready to write anywhere: its record, PNG bytes by relative path, arrays by method,
    warnings."""
    from attrib.runs.atomic import png_bytes

    outputs, results = outcome
    entry, pngs = _entry(item), {}
    warnings = [f"{item['id']}: {item['note']}"] if item.get("note") else []
    entry["predictions"] = top_predictions(outputs, plan.model.labels, options.top_k, plan.model.score_kind)
    if results is None:  # left out by --only
        item["view"] = None
        return {"entry": entry | {"status": EXCLUDED}}
    if options.images:
        entry["view"], entry["drawn_as"] = image_path(item["id"]), options.view
        pngs[entry["view"]] = png_bytes(item["view"])
    for method, result in results.items():
        summary, images = _summary(plan, item, method, result, options, warnings)
        entry["attributions"].append(summary)
        pngs.update(images)
    item["view"] = None
    return {"entry": entry, "pngs": pngs, "warnings": warnings,
            "arrays": {method: result["values"] for method, result in results.items()}}


def write_bundle(store: RunStore, finished: dict[str, Any], events: Events, begin) -> dict[str, Any]:
    """Write a bundle's files into the run folder (``begin(record)`` first; its record is committed after); the
    record."""
    entry = finished["entry"]
    begin(entry)
    for relative, data in finished.get("pngs", {}).items():
        store.write_png(relative, data)
    if "arrays" in finished:
        store.write_arrays(entry["id"], finished["arrays"])
    for warning in finished.get("warnings", []):
        events.warning(warning)
    return entry


def _summary(plan, item, method, result: dict, options: Options, warnings: list[str]) -> tuple[dict, dict]:
    """One method's part of an input's record, and its PNGs (relative path -> bytes)."""
    values, gap, target = result["values"], result["gap"], result["target"]
    heat, pngs = pictures(item["view"], item["id"], method, values, result["signed"], options)
    notes = map_notes(heat.warning, method, plan.kwargs[method]) + gap_warnings(result, method, options.precision)
    warnings.extend(f"{item['id']} / {method}: {note}" for note in notes)
    notes = ([item["note"]] if item.get("note") else []) + notes  # the input's, said once above, in every map's
    versus = result["versus"]
    return {"method": method, "target": target,
            "target_label": plan.model.labels[target] if target is not None else None,
            "versus": versus, "versus_label": plan.model.labels[versus] if versus is not None else None,
            "completeness_gap": gap, "gap_stderr": result["gap_stderr"], "converged": result["converged"],
            "map_error": result["map_error"], "seconds": round(result["seconds"], 3), "passes": result["passes"],
            "warning": "; ".join(notes) or None, **drawn_fields(heat, item["id"], method, options)}, pngs


def json_view(record: dict[str, Any], out: Path) -> dict[str, Any]:
    """The ``--json`` object: the run's facts with file paths made absolute; its inputs are this run's, in order
    (the folder may also hold inputs of earlier runs into it, which the report and ``load_run`` show)."""
    from attrib.runs import load_run

    out = out.resolve()
    def path(relative: str | None) -> str | None:
        return None if relative is None else str(out / relative)

    def files(entry: dict) -> list[dict]:
        return [{"method": a["method"], "target": a["target"], "target_label": a.get("target_label"),
                 "versus": a.get("versus"), "versus_label": a.get("versus_label"),
                 "completeness_gap": a["completeness_gap"], "gap_stderr": a.get("gap_stderr"),
                 "seconds": a["seconds"], "passes": a.get("passes"), "converged": a.get("converged"),
                 "map_error": a.get("map_error"), "warning": a.get("warning"),
                 "overlay": path(a["overlay"]), "heatmap": path(a["heatmap"])}
                for a in entry.get("attributions", [])]

    methods = [m["method"] for m in record["methods"]]
    committed = {r["name"]: r for r in load_run(out).record.get("inputs", [])}
    names = record.get(GIVEN, list(committed))
    inputs = [{"path": r["path"] or r["name"], "status": r["status"], "error": r["error"], "given": r.get("given"),
               "predictions": r.get("predictions", []), "attributions": files(only_methods(r, methods))}
              for r in (committed[name] for name in names if name in committed)]
    return {"inputs": inputs, "out_dir": str(out), "model": record["model"]["name"],
            "methods": record["methods"], "seed": record["seed"], "device": record["device"],
            "background": record["background"], "summary": record["summary"], "warnings": record.get("warnings", [])}


def exit_code(record: dict[str, Any]) -> int:
    """0 when every input was explained, 1 when some failed."""
    return 1 if record["summary"]["failed"] else 0
