"""The files of a DiffROAR run folder (every one written atomically, so an interrupted run resumes):

    attributions/METHOD.npz   train and test attributions (cached; reused when their stamp matches)
    jobs/ID.json              one retrain: method, k, side, seed, and everything needed to run it anywhere
                              (only the current plan's: one a smaller plan drops is removed, its result kept)
    jobs/ID.result.json       its accuracy, written when it completes, reused only for an identical job
    run.json, diffroar.png    the aggregate, written at the end
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrib.evaluate.diffroar import CONTROL
from attrib.evaluate.masking import random_attributions
from attrib.runs.atomic import atomic_write_json, atomic_write_npz
from attrib.runs.store import RunError, RunStore, read_npz


def attribution_path(store: RunStore, method: str) -> Path:
    return store.path(f"attributions/{method}.npz")


def cached_attributions(store: RunStore, method: str, stamp: str) -> str | None:
    """The cache file's path relative to the run when it holds attributions made with exactly ``stamp``."""
    path = attribution_path(store, method)
    if path.is_file():
        try:
            with read_npz(path) as cached:
                if str(cached.get("stamp")) == stamp:
                    return str(path.relative_to(store.root))
        except RunError:  # damaged: made again
            return None
    return None


def save_attributions(store: RunStore, method: str, stamp: str, splits: dict[str, torch.Tensor]) -> str:
    path = attribution_path(store, method)
    atomic_write_npz(path, {"stamp": np.array(stamp), **{k: v.numpy() for k, v in splits.items()}})
    return str(path.relative_to(store.root))


def load_attributions(root: Path, job: dict, split: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A job's attributions for one split (the control draws its own per seed)."""
    if job["method"] == CONTROL:
        return random_attributions(shape, job["seed"], split)
    with np.load(Path(root) / job["attributions"]) as arrays:
        return torch.from_numpy(arrays[split])


def write_jobs(store: RunStore, jobs: list[dict]) -> list[Path]:
    """One job file per job (rewritten only when it changed), and none for a job an earlier plan into the folder
    had and this one has not (a worker's ``jobs/*.json`` would run it; its result stays, and counts again for a
    plan that has the job again); their paths."""
    paths = []
    for job in jobs:
        path = store.path(f"jobs/{job['id']}.json")
        if _read_json(path) != job:  # (none, damaged or another job's)
            atomic_write_json(path, job)
        paths.append(path)
    planned = {path.name for path in paths}
    for path in store.path("jobs").glob("*.json"):
        if path.name not in planned and _job_file(path):
            path.unlink(missing_ok=True)
    return paths


def _job_file(path: Path) -> bool:
    """Whether a file in jobs/ is a job file of attrib's (not a result, nor a file of the user's)."""
    if path.name.endswith(".result.json"):
        return False
    job = _read_json(path)
    return isinstance(job, dict) and job.get("id") == path.stem and {"method", "k", "side", "seed"} <= set(job)


def result_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.name.replace(".json", ".result.json"))


def done_result(job_path: Path) -> dict | None:
    """The job's result when it completed with exactly this job's inputs, else None (a damaged result file too:
    the job runs again and writes it anew)."""
    result = _read_json(result_path(job_path))
    return result if isinstance(result, dict) and result.get("job") == read_job(job_path) else None


def _read_json(path: Path) -> Any:
    """A JSON file's value; None where there is none or it cannot be read (edited by hand, a damaged disk)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # (UnicodeDecodeError too)
        return None


def write_result(job_path: Path, result: dict[str, Any]) -> None:
    atomic_write_json(result_path(job_path), result)


def read_job(job_path: Path) -> dict:
    return json.loads(Path(job_path).read_text())


def run_root(job_path: Path) -> Path:
    """The run folder a job file belongs to."""
    return Path(job_path).parent.parent
