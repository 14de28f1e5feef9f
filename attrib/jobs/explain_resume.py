"""What a run of explain into a folder that holds an earlier one keeps, redoes and draws again.

The inputs committed earlier with the same settings stand (:func:`previous_inputs`; other settings start the
folder over); :func:`todo_inputs` says which of them are done as they are, which are drawn again in this run's
--view from the maps the folder holds (no model pass), and which are explained again: changed on disk, with
fewer predictions than --top-k asks, without the methods or the class asked for now, or failed. The folder's
files that no record names (a killed run was writing them) are removed first.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from attrib.data.class_table import ClassTable
from attrib.errors import AttribError, counted
from attrib.jobs.common import Accuracy, Events, selected
from attrib.jobs.explain_pictures import drawn_fields, pictures
from attrib.jobs.pipeline import prefetch
from attrib.runs.store import RunStore, id_key, image_path, slug

if TYPE_CHECKING:
    from attrib.jobs.explain import Options, Plan

EXCLUDED = "excluded"  # an input's status when --only leaves it out (its predictions are recorded)


def previous_inputs(store: RunStore, record: dict[str, Any], events: Events) -> dict[str, dict]:
    """The committed inputs of an earlier compatible run in this folder (else none, and the folder starts over,
    which a warning says when it held results). ``record``, this run's, gets ``earlier_methods``: the rows
    (options, cost) of the methods whose maps the folder keeps and this run does not make, so that the report
    shows how they were made and a later run that makes them again compares their options too."""
    old = store.read_record()
    changed = _differences(old, record)
    committed = {} if changed else _committed(store, old)
    held = _held(committed)
    changed = changed or _unrecorded(old, record, held)
    record["earlier_methods"] = [] if changed else _kept_methods(old, record, held)
    if changed:
        if old and store.has_inputs():
            events.warning(f"{store.root} held a run with other settings ({', '.join(changed)}); starting it over: "
                           "its results are replaced (use another --out to keep them)")
        if old:  # (a folder without a record holds no results of attrib's: nothing in it is removed)
            store.reset_inputs()
        return {}
    _sweep_unnamed(store, committed)
    return committed


def _committed(store: RunStore, old: dict[str, Any]) -> dict[str, dict]:
    """The inputs the folder's commit log holds, by name (what a crash cut short repaired first)."""
    store.repair_inputs()
    committed = {e["name"]: _with_drawn_as(e, old) for e in store.read_inputs()}
    for entry in old.get("inputs", []):  # attrib 0.1 kept them in run.json: carry them over
        if entry["name"] not in committed:
            store.append_input(entry)
            committed[entry["name"]] = entry
    return committed


def _held(committed: dict[str, dict]) -> set[str]:
    """The methods whose maps the folder holds."""
    return {a["method"] for entry in committed.values() if entry["status"] == "ok" for a in entry["attributions"]}


def _recorded(old: dict[str, Any]) -> dict[str, dict]:
    """The method rows of the folder's record: its run's, and those of maps earlier runs made that it kept."""
    return {row["method"]: row for row in old.get("earlier_methods", []) + old.get("methods", [])}


def _unrecorded(old: dict[str, Any], record: dict[str, Any], held: set[str]) -> list[str]:
    """This run's methods whose maps the folder holds without their options on record (a folder written before
    attrib kept ``earlier_methods``): they may have been made otherwise."""
    unknown = held - set(_recorded(old))
    return [f"{row['method']} options (not recorded)" for row in record["methods"] if row["method"] in unknown]


def drop_replaced(record: dict[str, Any], previous: dict[str, dict], todo: list[tuple]) -> None:
    """Once every input in ``todo`` is explained again: ``record``'s ``earlier_methods`` less the methods whose
    maps only those inputs held (their records are now this run's, without those maps), so that a later run
    making such a method compares its options with nothing the folder no longer holds."""
    again = {source.name for source, _ in todo}
    held = _held({name: entry for name, entry in previous.items() if name not in again})
    record["earlier_methods"] = [row for row in record["earlier_methods"] if row["method"] in held]


def _kept_methods(old: dict[str, Any], record: dict[str, Any], held: set[str]) -> list[dict]:
    """The rows of the methods whose maps the folder holds (``held``) and this run does not make."""
    now = {row["method"] for row in record["methods"]}
    return [row for method, row in _recorded(old).items() if method in held and method not in now]


def _sweep_unnamed(store: RunStore, committed: dict[str, dict]) -> None:
    """Remove the files of inputs whose record names none: not committed, or committed as failed or left out,
    where a run killed part way (kill -9) was writing them. (An input explained is committed with the files it
    names; one explained again is first committed as stopped: see explain._stream.)"""
    named = {entry["id"] for entry in committed.values() if entry["status"] == "ok"}
    for input_id in store.input_ids() - named:
        store.remove_input_files(input_id)


def _with_drawn_as(entry: dict, record: dict) -> dict:
    """An input's record saying which --view its pictures were drawn in (records written before attrib said so:
    the earlier run's)."""
    if entry.get("view") is not None and "drawn_as" not in entry:
        return {**entry, "drawn_as": record.get("view")}
    return entry


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What keeps an earlier run's results from being reused ([]: nothing): the kind of run, model, target,
    seed, precision, random generator, or the options of a method both runs have (or that an earlier run made
    maps with, which the folder keeps)."""
    if not old:
        return ["no run"]
    changed = [k for k in ("kind", "model", "target", "truth", "versus", "seed", "precision", "random")
               if old.get(k) != new.get(k)]
    old_cfg = {method: row["config"] for method, row in _recorded(old).items()}
    return changed + [f"{m['method']} options" for m in new["methods"]
                      if old_cfg.get(m["method"], m["config"]) != m["config"]]


def todo_inputs(plan: Plan, sources: list, previous: dict[str, dict], options: Options, events: Events,
                stats: dict, top1: Accuracy | None, store: RunStore) -> list[tuple]:
    """(source, input id) of each input to explain; one done earlier with the same settings is reported as
    already done (counted in ``stats`` and ``top1``; committed again with the class names the model has now,
    where a ``--labels`` file was edited, and as many predictions as ``--top-k`` asks) unless ``options.force``,
    its file changed since, it has fewer predictions than ``--top-k`` asks (the outputs are not kept) or its
    pictures are not the ones this run draws (and cannot be drawn again from the folder's maps), and so is one
    that ``--only`` left out then and leaves out now. Inputs are judged (and drawn again) by worker threads, in
    order."""
    taken = {id_key(e["id"]) for e in previous.values()}
    todo, said = [], dict.fromkeys(REASONS, 0)
    workers = options.workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        judged = prefetch(pool, sources, lambda source: _judged(plan, source, previous.get(source.name), options,
                                                                store), ahead=4 * workers)
        for source, (reason, done) in zip(sources, judged):
            if reason is not None:
                said[reason] += 1
            if done is None:
                prev = previous.get(source.name)
                todo.append((source, prev["id"] if prev else slug(source.name, taken)))
                continue
            done = _named(done, plan.model.labels, store, options.top_k)
            stats["skipped" if done["status"] == "ok" else "excluded"] += 1
            tally(top1, done)
            events.advance("inputs", 1)
            events.item({**only_methods(done, plan.methods), "skipped": True})
    for reason, n in said.items():
        if n:
            events.info(REASONS[reason].format(inputs=counted(n, "input"), them="it" if n == 1 else "them",
                                               view=options.view, top_k=options.top_k))
    _warn_replaced(plan, todo, previous, events)
    return todo


REASONS = {  # what todo_inputs says of the inputs done earlier that it does not take as they are
    "changed": "{inputs} changed on disk since the earlier run here: explaining {them} again",
    "redrawn": "{inputs} done earlier here drawn again in --view {view} from the maps the folder holds (no model pass)",
    "undrawn": "{inputs} done earlier here cannot be drawn in --view {view} from what the folder holds (maps of "
               "other methods too, or files gone or damaged): explaining {them} again",
    "shorter": "{inputs} done earlier here with fewer predictions than --top-k {top_k}: explaining {them} again",
}


def _judged(plan: Plan, source, prev: dict | None, options: Options,
            store: RunStore) -> tuple[str | None, dict | None]:
    """(in a worker thread) Why an input done earlier is not taken as it is (a key of REASONS, or None), and its
    record where it is done: as it was, or drawn again in this run's --view (None: it is explained)."""
    from attrib.data.fingerprints import unchanged

    if not prev or options.force or not _reusable(plan, source, prev):
        return None, None
    if not unchanged(source, prev.get("fingerprint")):
        return "changed", None
    if len(prev["predictions"]) < min(options.top_k, plan.model.n_classes):
        return "shorter", None
    if _drawn(prev, options):
        return None, prev
    done = _redrawn(plan, source, prev, options, store)
    return ("redrawn", done) if done is not None else ("undrawn", None)


def _warn_replaced(plan: Plan, todo: list[tuple], previous: dict[str, dict], events: Events) -> None:
    """A warning where inputs explained again lose the maps an earlier run here made with methods this one does
    not run (an input's record and files are those of the run that explained it last)."""
    lost = [[a["method"] for a in prev["attributions"] if a["method"] not in plan.methods]
            for prev in (previous.get(source.name) for source, _ in todo) if prev and prev["status"] == "ok"]
    methods = list(dict.fromkeys(method for gone in lost for method in gone))
    if methods:
        n = sum(1 for gone in lost if gone)
        events.warning(f"{counted(n, 'input')} done earlier here with {', '.join(methods)} "
                       f"{'is' if n == 1 else 'are'} explained again with {', '.join(plan.methods)}: "
                       f"{'its' if n == 1 else 'their'} {', '.join(methods)} maps are replaced (add "
                       f"{' '.join(f'-m {m}' for m in methods)} to make them again, or use another --out to keep "
                       "them)")


def _reusable(plan: Plan, source, previous: dict) -> bool:
    """Whether an input committed earlier stands: explained with every method and the class it is given now,
    or left out by ``--only`` then and now. (One explained then that ``--only`` leaves out now is redone: one
    forward pass records it as left out.)"""
    status = previous["status"]
    if status not in ("ok", EXCLUDED) or not previous["predictions"] or not _same_class(plan, source, previous):
        return False
    wanted = selected(plan.only, previous["predictions"][0]["index"], _given_class(previous))
    return _covers(previous, plan.methods) if status == "ok" and wanted else status == EXCLUDED and not wanted


def _covers(previous: dict, methods: list[str]) -> bool:
    return {a["method"] for a in previous.get("attributions", [])} >= set(methods)


def _same_class(plan: Plan, source, previous: dict) -> bool:
    """Whether an input done earlier had the true class the table gives it now (a table edited between runs
    redoes only the inputs whose class changed); true for every other kind of truth."""
    from attrib.data.images import InputError

    if not isinstance(plan.truth, ClassTable):
        return True
    try:
        given = plan.truth.class_of(source)
    except InputError:
        return False
    return _given_class(previous) == given


def _drawn(previous: dict, options: Options) -> bool:
    """Whether an input done earlier has the pictures this run draws: none wanted (--no-images), none to draw
    (left out by --only), or drawn in the same --view."""
    return not options.images or previous["status"] != "ok" or \
        (previous.get("view") is not None and previous.get("drawn_as") == options.view)


def _redrawn(plan: Plan, source, prev: dict, options: Options, store: RunStore) -> dict | None:
    """An input done earlier in another --view, or without pictures, its overlays and heatmaps drawn in this
    one from the maps the folder holds and the picture the model saw (the folder's, else the input decoded
    again; no model pass), written and committed: its record. None where those are not all there, or the folder
    holds maps of other methods for it (it is explained again)."""
    from attrib.runs.atomic import png_bytes

    methods = [summary["method"] for summary in prev["attributions"]]
    if sorted(methods) != sorted(plan.methods):
        return None
    try:
        maps = {method: store.arrays()[(prev["id"], method)] for method in methods}
        picture = _seen(plan, source, prev, store)
    except (KeyError, OSError, ValueError, AttribError):
        return None
    signed = {row["method"]: row["signed"] for row in plan.record["methods"]}
    store.append_input({**prev, "drawn_as": None})  # its pictures in no one --view until this one commits
    entry = {**prev, "drawn_as": options.view, "attributions": []}
    if not prev.get("view"):  # done with --no-images: the picture the model saw goes with the maps now
        entry["view"] = image_path(prev["id"])
        store.write_png(entry["view"], png_bytes(picture))
    for summary in prev["attributions"]:
        method = summary["method"]
        heat, pngs = pictures(picture, prev["id"], method, maps[method], signed[method], options)
        for relative, data in pngs.items():
            store.write_png(relative, data)
        entry["attributions"].append({**summary, **drawn_fields(heat, prev["id"], method, options)})
    store.append_input(entry)
    return entry


def _seen(plan: Plan, source, prev: dict, store: RunStore):
    """The picture the model saw of an input done earlier: the folder's input.png, else (a --no-images run's) the
    input decoded and prepared again, as unchanged on disk as its fingerprint says."""
    from PIL import Image

    if not prev.get("view"):
        return plan.model.preprocess.view(source.load())
    with Image.open(store.path(prev["view"])) as image:
        return image.copy()


def _named(entry: dict, labels: list[str], store: RunStore, top_k: int) -> dict:
    """An input's earlier record with the class names of ``labels`` (the classes are indices; their names may
    have been edited since in a ``--labels`` file) and the ``top_k`` predictions this run shows, committed again
    where it changed."""
    def name(index: int | None) -> str | None:
        return None if index is None else labels[index]

    named = {**entry, "predictions": [{**p, "label": name(p["index"])} for p in entry["predictions"][:top_k]],
             "attributions": [{**a, **{f"{k}_label": name(a.get(k)) for k in ("target", "versus")
                                       if f"{k}_label" in a}} for a in entry.get("attributions", [])]}
    if "true_label" in entry:
        named["true_label"] = name(entry.get("given"))
    if named != entry:
        store.append_input(named)
    return named


def only_methods(entry: dict, methods: list[str]) -> dict:
    """An input's entry with the attributions of ``methods`` only: a rerun with fewer methods reports those (the
    folder keeps the others' results from the earlier run)."""
    return {**entry, "attributions": [a for a in entry.get("attributions", []) if a["method"] in methods]}


def tally(top1: Accuracy | None, entry: dict) -> None:
    given = _given_class(entry)
    if top1 is not None and entry["status"] in ("ok", EXCLUDED) and entry["predictions"] and given is not None:
        top1.count(entry["predictions"][0]["index"], given)


def _given_class(entry: dict) -> int | None:
    """The class an input was given (by its folder, a table or --target); older records say it only as the
    explained class."""
    if "given" in entry or not entry.get("attributions"):
        return entry.get("given")
    return entry["attributions"][0]["target"]
