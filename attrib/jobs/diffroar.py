"""The DiffROAR job: attributions of the evaluated model (cached), one job file per retrain, the retrains that
are not done yet, the aggregate, the plot and run.json (the numbers are in attrib/evaluate/diffroar.py, the
files in attrib/runs/diffroar.py).

Each retrain job is independent. The retrains run through an executor (attrib/executors): one after another in
this process, or as Ray tasks on a cluster (``--executor ray``), each sent its job and attributions, so workers
need no shared file system; the driver alone writes the result files (atomically, once per job), so a rerun
resumes where a killed one stopped. By hand: ``python -m attrib.jobs.diffroar OUT/jobs/*.json`` runs any subset,
in any process or machine, and rerunning ``attrib diffroar`` into the same folder collects the results.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from attrib.errors import UsageError, counted, duration, first_line
from attrib.evaluate.diffroar import (CONTROL, DEFAULT_KS, DiffRoarConfig, attribute_split, build_arguments,
                                      check_compatible, epoch_seconds, null_block_share, plan, retrain,
                                      retrain_recipe)
from attrib.executors import Executor, ExecutorSpec, executor_for
from attrib.jobs.common import (Events, ListFields, assumed_reading, check_counts, check_images, commit_drawn,
                                describe_config, describe_methods, failure_line, header, ignored_settings,
                                method_kwargs, now, pixel_baselines, resolve_device, resolve_methods, supplies,
                                takes_data)
from attrib.runs import diffroar as files
from attrib.runs.store import RunStore, closes_store

KIND = "diffroar"
SPLITS = ("train", "test")
PLOT = "diffroar.png"  # drawn when every job of the plan has its result
DEFAULT_METHODS = ("gradient", "integrated_gradients", "smoothgrad")
CHANCE_MARGIN = 0.02  # accuracies within this of the majority-class rate count as chance
CONTROL_WARNING = 0.06  # |DiffROAR| of the random control above which retrain noise is too large to read
FEW_TEST_EXAMPLES = 50  # a test split smaller than this moves accuracies in steps of over 2%


@dataclass
class Options(ListFields):
    """What to evaluate; ``dataset`` None takes the sample model's own data set."""

    model: str = "sample:blockdigits-standard"
    weights: str | None = None
    pretrained: bool = True
    dataset: str | None = None
    classes: list[int] | None = None
    data_dir: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    image_size: int | None = None  # an image set's pictures resized to this side
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    settings: list[str] = field(default_factory=list)
    ks: list[float] = field(default_factory=lambda: list(DEFAULT_KS))
    seeds: int = 1
    epochs: int = 10
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    plan_only: bool = False
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)  # where the retrains run
    preprocess: list[str] = field(default_factory=list)  # KEY=VALUE changes to how the model reads a folder's pictures


@lru_cache(maxsize=4)
def _dataset(spec_json: str, _version: tuple = ()):
    from attrib.data.datasets import load_dataset

    return load_dataset(**json.loads(spec_json))


def dataset_of(spec: dict[str, Any]):
    """The (cached) data set for a spec dict; an image folder is read again once its files change."""
    return _dataset(json.dumps(spec, sort_keys=True), _folder_version(str(spec.get("name", ""))))


def _folder_version(name: str) -> tuple:
    """(files, latest change) of a folder data set's tree, or its archive's: what the cache must see to notice an
    edit."""
    if not name.startswith("folder:"):
        return ()
    root = Path(name[7:]).expanduser()
    stats = [root.stat()] if root.is_file() else [p.stat() for p in root.rglob("*")]
    return len(stats), max((st.st_mtime_ns for st in stats), default=0)


@lru_cache(maxsize=4)
def _architecture(spec: str, arguments_json: str = "{}"):
    """The factory a job's fresh models come from, with the build arguments the evaluated model had (weights are
    not needed: jobs train fresh copies)."""
    from attrib.models import load_model

    factory = load_model(spec, pretrained=False, pictures=False).factory  # how it reads them was said at planning
    arguments = json.loads(arguments_json)
    return partial(factory, **arguments) if arguments else factory


def prepare(options: Options, events: Events):
    """The model and the evaluation's config, validated before the long work starts."""
    from attrib.data.datasets import read_as
    from attrib.models import anchored, load_model

    check_counts(options, "n_train", "n_test", "image_size", "seeds", "epochs", "batch_size")
    if not options.ks or not all(isinstance(k, int | float) and 0 < k <= 1 for k in options.ks):
        raise UsageError(f"ks must be fractions of coordinates kept, each in (0, 1], got {list(options.ks)!r}")
    names = [m for m in (options.methods or list(DEFAULT_METHODS)) if m != CONTROL]
    names, overrides = resolve_methods(names, options.settings, inputs="tensor", supplied={"background"},
                                       where="attrib diffroar")
    device = resolve_device(options.device)
    options.executor.check()
    if 1.0 in options.ks:
        events.warning("k=1 keeps every coordinate on both sides, so its DiffROAR is 0 for every method by "
                       "construction (its retrains give the unmasked accuracy, nothing about the methods)")
    if options.plan_only and options.executor.remote:
        events.warning("--executor ray is not used with --plan-only: the job files run wherever "
                       "`python -m attrib.jobs.diffroar` runs them")
    events.info("loading model and data ...")
    model = load_model(options.model, weights=options.weights, pretrained=options.pretrained,
                       preprocess=options.preprocess, pictures=(options.dataset or "").startswith("folder:"))
    name = options.dataset or model.card.get("dataset")
    if name is None:
        raise UsageError(f"--dataset is required for {model.name} (it does not say what it was trained on)")
    spec = {"name": anchored(name), "seed": 0, "classes": options.classes, "data_dir": anchored(options.data_dir),
            "n_train": options.n_train, "n_test": options.n_test, **read_as(name, model.preprocess),
            **({} if options.image_size is None else {"image_size": options.image_size})}
    data = dataset_of(spec)
    for line in data.skipped:
        events.error(f"left out of the data set: {line}")
    takes_data(model, data)
    check_compatible(model, data)
    ks = sorted(set(map(float, options.ks)))
    config = DiffRoarConfig(anchored(options.model), spec, names, overrides, ks, options.seeds, options.epochs,
                            options.lr, options.batch_size, options.seed, device,
                            options.executor.device if options.executor.remote else None,
                            build_arguments(model.factory), model.card.get("code", {}).get("sha256"))
    kwargs = method_kwargs_all(config, model, data)[0]
    describe_methods(names, kwargs)  # validates every option
    for warning in ignored_settings(overrides, kwargs):
        events.warning(warning)
    check_images(kwargs, data.input_shape, f"{name}'s inputs, of shape {data.input_shape},")
    model.module.to(device)
    events.info(f"model: {model.name}; data: {name}; methods: {', '.join(config.all_methods)}; device: {device}")
    return model, config


def method_kwargs_all(config: DiffRoarConfig, model, data) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each method's options, with a reference set (from the training split) where a method needs one."""
    supplied, descriptions = supplies(config.methods, model, seed=config.attribution_seed, data=data.train_x)
    kwargs = {m: method_kwargs(m, config.configs.get(m, {}), supplied) for m in config.methods}
    return pixel_baselines(kwargs, model), descriptions


@closes_store
def run(options: Options, store: RunStore, events: Events | None = None) -> dict[str, Any]:
    """The whole evaluation into ``store``; returns the run record."""
    events = events or Events()
    model, config = prepare(options, events)
    return evaluate(model, config, store, events, plan_only=options.plan_only, executor=options.executor)


def evaluate(model, config: DiffRoarConfig, store: RunStore, events: Events | None = None,
             plan_only: bool = False, executor: ExecutorSpec | Executor | None = None) -> dict[str, Any]:
    """Attributions, job files, pending retrains (on ``executor``, a spec or an executor: local by default),
    aggregate (for an already loaded model)."""
    events = events or Events()
    data = dataset_of(config.dataset)
    check_compatible(model, data)
    early = _few_examples(data)
    for warning in early:
        events.warning(warning)
    store.open(KIND, [PLOT])  # not another kind's folder, nor a user's files
    started = now()
    kwargs, descriptions = method_kwargs_all(config, model, data)
    events.task("main", "attributions", len(config.methods) * (len(data.train_y) + len(data.test_y)))
    stamps = {m: _stamp(model, data, m, kwargs[m], config) for m in config.methods}
    paths = {m: _attributions(model, data, m, kwargs[m], config, store, events, stamps[m]) for m in config.methods}
    recipe = retrain_recipe(model.card, config)
    digests = {m: hashlib.sha256(stamp.encode()).hexdigest()[:16] for m, stamp in stamps.items()}
    jobs = files.write_jobs(store, plan(config, recipe, data.fill_value(), paths, digests, data.digest))
    pending = [p for p in jobs if files.done_result(p) is None]
    _announce(config, model, data, recipe, len(jobs), len(pending), store, events)
    if not plan_only and pending:
        events.task("main", "retrains", len(pending))
        with executor_for(executor) as running:
            if running.remote:
                events.info(f"retrains on the Ray cluster at {running.address}")
            for result in run_pending(pending, store, data, running):
                events.item(result)
                events.advance("main", 1)
    results = [r for r in (files.done_result(p) for p in jobs) if r is not None]
    record = _record(model, config, data, recipe, results, started, len(jobs), kwargs, descriptions)
    record["null_block_share"] = _null_shares(store, config, data)
    late = _control_warnings(record) + _chance_warnings(record, data)
    pictures = "preprocess" in config.dataset  # read through the model's preprocessing (a folder)
    record["warnings"] = (assumed_reading(model) if pictures else []) + early + late  # the report shows them too
    for warning in late:
        events.warning(warning)
    return commit_drawn(store, record, "plot", lambda: _plot(store, record, f"{model.name} on {data.name}"), [PLOT])


def _plot(store: RunStore, record: dict[str, Any], title: str) -> str | None:
    """DiffROAR against k per method, drawn when every retrain is done; the file's name in the run folder."""
    from attrib.render.plots import diffroar_plot

    return store.write_png(PLOT, diffroar_plot(record["results"], title)) if record["complete"] else None


def _stamp(model, data, method: str, options: dict[str, Any], config: DiffRoarConfig) -> str:
    """What a method's attributions are made from: method, options, seed, model (its weights and code too), data
    (its spec and digest)."""
    made_of = {"weights": model.weights, "code": model.card.get("code")}
    return json.dumps({"method": method, "options": describe_config(options), "seed": config.attribution_seed,
                       "model": model.name, "dataset": data.spec, "data_sha256": data.digest,
                       **{k: v for k, v in made_of.items() if v}},
                      sort_keys=True, default=str)


def _attributions(model, data, method, options, config, store, events, stamp: str) -> str:
    """The method's cached attributions on both splits (computed when the cache does not match ``stamp``)."""
    cached = files.cached_attributions(store, method, stamp)
    if cached is not None:
        events.advance("main", len(data.train_y) + len(data.test_y))
        return cached
    splits = {split: attribute_split(model.module, *data.split(split), method, options, config.attribution_seed,
                                     config.device, lambda n: events.advance("main", n))
              for split in SPLITS}
    return files.save_attributions(store, method, stamp, splits)


def _announce(config, model, data, recipe, n_jobs, n_pending, store, events) -> None:
    seconds = 0.0
    if n_pending:  # 1.2: masking and evaluation on top of the training epochs
        seconds = 1.2 * epoch_seconds(model.factory, data.train_x, data.train_y, recipe, config.device) * \
            recipe.epochs * n_pending
    done = f" ({n_jobs - n_pending} already done in {store.root})" if n_pending < n_jobs else ""
    events.info(f"{n_jobs} retrains = {counted(len(config.all_methods), 'method')} x {len(config.ks)} k x 2 sides x "
                f"{counted(config.seeds, 'seed')}{done}; {n_pending} to run, about {duration(seconds)}")


def run_pending(paths: list[Path], store: RunStore, data, executor: Executor):
    """Each job's retrain on ``executor``; the driver writes each result file as it arrives; yields results."""
    from attrib.jobs.shipping import ModelSpec, ship

    jobs = [files.read_job(p) for p in paths]
    splits = executor.share({split: data.split(split) for split in SPLITS})  # workers read no data set files
    models = {spec: ship(ModelSpec(spec), executor.share) for spec in {job["model"] for job in jobs}} \
        if executor.remote else {}  # your code's file, for workers on other nodes
    shared: dict[tuple, Any] = {}
    for job in jobs:  # one copy of each attribution set, however many jobs use it
        if _values_key(job) not in shared:
            shared[_values_key(job)] = executor.share(_values(store.root, job, data))
    calls = [(job, shared[_values_key(job)], splits, models.get(job["model"])) for job in jobs]
    for index, result in executor.map_unordered(retrain_job, calls):
        files.write_result(paths[index], result)
        yield result


def _values_key(job: dict) -> tuple:
    """Jobs of one method share its attributions; the control's are drawn per seed."""
    return job["method"], job["seed"] if job["method"] == CONTROL else None


def _values(root: Path, job: dict, data) -> dict[str, Any]:
    return {split: files.load_attributions(root, job, split, tuple(data.split(split)[0].shape)) for split in SPLITS}


def retrain_job(job: dict, values: dict[str, Any], splits: dict[str, tuple], model=None) -> dict:
    """(anywhere) one retrain from its job, its attributions per split, the data set's (inputs, labels) per split
    (sent by the driver: a worker reads no data set files) and its model spec with your code's file (a shipping
    Parcel; None: the job's spec as it is); the result (written by the caller)."""
    spec = job["model"] if model is None else model.opened().model
    factory = _architecture(spec, json.dumps(job.get("architecture") or {}, sort_keys=True))
    return retrain(job, factory, splits, values)


def planned_data(job: dict):
    """The job's data set, built here from its spec; refused in one line where it is not the one the job was
    planned with."""
    from attrib.data.datasets import DatasetError

    data = dataset_of(job["dataset"])
    if job.get("data_sha256", data.digest) != data.digest:
        raise DatasetError(f"{data.name} built here is not the data set this job was planned with (sha256 "
                           f"{data.digest[:12]} here, {job['data_sha256'][:12]} planned): its files differ here, or "
                           "changed since, or this machine's libraries read them otherwise; plan the run again "
                           "(the same command) or retrain where the data is the same")
    return data


def run_job(job_path: str | Path) -> dict:
    """Run one retrain job file and write its result file next to it; returns the result."""
    job_path = Path(job_path)
    job = files.read_job(job_path)
    data = planned_data(job)
    result = retrain_job(job, _values(files.run_root(job_path), job, data), {s: data.split(s) for s in SPLITS})
    files.write_result(job_path, result)
    return result


def _null_shares(store: RunStore, config: DiffRoarConfig, data) -> dict[str, float] | None:
    """blockdigits: per method, the mean share of |attribution| on the null block over test examples."""
    if data.null_masks is None:
        return None
    shape = tuple(data.test_x.shape)
    return {m: null_block_share(files.load_attributions(store.root, {"method": m, "seed": 0,
                                                                     "attributions": f"attributions/{m}.npz"},
                                                        "test", shape), data.null_masks["test"])
            for m in config.all_methods}


def _few_examples(data) -> list[str]:
    if len(data.test_y) >= FEW_TEST_EXAMPLES:
        return []
    return [f"{data.name}'s test split holds {counted(len(data.test_y), 'example')}: each accuracy moves in steps "
            f"of {1 / len(data.test_y):.0%}, too coarse to tell methods apart (more: a larger --n-test, or more "
            "images)"]


def _control_warnings(record: dict) -> list[str]:
    return [f"the random control is {r['diffroar']:+.3f} at k = {r['k']:g}: retrain noise is large here; use more "
            "--seeds or --epochs before trusting differences of this size"
            for r in record["results"] if r["method"] == CONTROL and abs(r["diffroar"]) > CONTROL_WARNING]


def _chance_warnings(record: dict, data) -> list[str]:
    """Accuracies at chance (the majority class's share of the test set) make every DiffROAR noise."""
    import torch

    chance = float(torch.bincount(data.test_y).max()) / len(data.test_y)
    said = []
    if record["model_test_accuracy"] <= chance + CHANCE_MARGIN:
        outputs = record["model"].get("n_classes")
        why = (f" (it has {outputs} classes, the data set {len(data.labels)}: give it --weights trained on "
               f"{data.name})" if outputs not in (None, len(data.labels)) else "")
        said.append(f"the evaluated model's test accuracy is {record['model_test_accuracy']:.3f}, chance is "
                    f"{chance:.3f}: its attributions explain a model that has not learned {data.name}{why}")
    best = _best_accuracy(record["results"])
    control = _best_accuracy([r for r in record["results"] if r["method"] == CONTROL])
    if best is not None and best <= chance + CHANCE_MARGIN:
        said.append(f"no retrained model beat chance (best test accuracy {best:.3f}, chance {chance:.3f}): "
                    "DiffROAR compares noise here; train longer (--epochs) or check --lr and the data")
    elif control is not None and control <= chance + CHANCE_MARGIN:
        said.append(f"no retrain of the random control beat chance (best test accuracy {control:.3f}, chance "
                    f"{chance:.3f}): the retrains learn nothing from the pixels kept at random, so a method's "
                    "DiffROAR here may come from the shape of its masks, not from the pixels they keep; train "
                    "longer (--epochs) or check --lr and the data")
    return said


def _best_accuracy(results: list[dict]) -> float | None:
    return max((max(r["acc_top"], r["acc_bottom"]) for r in results), default=None)


def _record(model, config, data, recipe, results, started, n_jobs, kwargs, descriptions) -> dict:
    from attrib.evaluate.diffroar import aggregate
    from attrib.training import accuracy

    config_record = asdict(config)
    config_record["configs"] = {m: describe_config(c) for m, c in config.configs.items()}
    record = header(KIND, model=model.describe(), methods=describe_methods(config.methods, kwargs, descriptions),
                    seed=config.attribution_seed, device=config.device)
    record.update({
        "started": started, "finished": now(),
        "dataset": {**data.spec, "name": data.name, "n_train": len(data.train_y), "n_test": len(data.test_y),
                    "input_shape": list(data.input_shape), "fill": data.fill_value(), "left_out": data.skipped,
                    "sha256": data.digest},
        "model_test_accuracy": accuracy(model.module, data.test_x, data.test_y), "config": config_record,
        "retrain_recipe": recipe.to_dict(), "target": "true label logit", "results": aggregate(results),
        "jobs": n_jobs, "jobs_done": len(results), "complete": len(results) == n_jobs,
        "retrain_seconds": round(sum(r["seconds"] for r in results), 1)})
    return record


def exit_code(record: dict[str, Any]) -> int:
    """1 when some of the data set's images could not be read (the evaluation ran without them), else 0."""
    return 1 if record["dataset"].get("left_out") else 0


def json_view(record: dict[str, Any], out: Path) -> dict[str, Any]:
    """The ``--json`` object (after --plan-only too: ``jobs_done`` < ``jobs`` says what is left to run)."""
    return {"model": record["model"]["name"], "dataset": record["dataset"]["name"],
            "results": [{k: r[k] for k in ("method", "k", "diffroar", "std", "acc_top", "acc_bottom")}
                        for r in record["results"]],
            **({"null_block_share": record["null_block_share"]} if record["null_block_share"] else {}),
            "warnings": record.get("warnings", []), "jobs": record["jobs"], "jobs_done": record["jobs_done"],
            "out_dir": str(out.resolve())}


USAGE = "usage: python -m attrib.jobs.diffroar OUT/jobs/*.json  (job files that `attrib diffroar --plan-only` wrote)"


def main(argv: list[str]) -> int:
    """Run the given job files (a worker: ``python -m attrib.jobs.diffroar OUT/jobs/*.json``); a job that cannot
    run is one ``error:`` line and the others still run. Exit code: 0 all done (or -h), 1 some
    failed, 2 no job files."""
    if {"-h", "--help"} & set(argv):
        print(USAGE)
        return 0
    paths = [Path(p) for p in argv if not p.endswith(".result.json")]
    if not paths:
        print(USAGE, file=sys.stderr)
        return 2
    failed = 0
    for position, path in enumerate(paths):
        try:
            if files.done_result(path) is not None:
                print(f"{path.stem}: already done", flush=True)
                continue
            result = run_job(path)
            print(f"{path.stem}: accuracy {result['accuracy']:.4f} ({result['seconds']} s)", flush=True)
        except KeyboardInterrupt:
            print(f"interrupted in {path.stem}, job {position + 1} of {len(paths)}: what finished is kept; the same "
                  "command runs the rest", file=sys.stderr, flush=True)
            return 130
        except Exception as error:  # noqa: BLE001 - one job's failure stays its own; the rest go on
            print(f"error: {_job_error(path, error)}", file=sys.stderr, flush=True)
            failed += 1
    return 1 if failed else 0


def _job_error(path: Path, error: Exception) -> str:
    if isinstance(error, OSError):
        return f"{path}: {error.strerror or first_line(error)}"
    if isinstance(error, (json.JSONDecodeError, KeyError, TypeError)):
        return f"{path}: not a job file of attrib diffroar ({type(error).__name__}: {first_line(error)})"
    return failure_line(str(path), error, Events())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
