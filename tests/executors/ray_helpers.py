"""Functions the Ray tests send to workers (pickled by value: the workers need not import the tests)."""

import os
import signal
import time
from pathlib import Path

import torch

BARRIER_SECONDS = 60


def crash_once(marks: str, crash_id: str, fn, job, *args):
    """The first attempt at job ``crash_id`` kills its worker process outright; later attempts run ``fn``."""
    mark = Path(marks) / f"{job['id']}.crashed"
    if job["id"] == crash_id and not mark.exists():
        mark.write_text(str(os.getpid()))
        os._exit(1)
    return fn(job, *args)


def hang_once(marks: str, hang_id: str, fn, job, *args):
    """The first attempt at job ``hang_id`` writes its pid and waits (to be killed); later attempts run ``fn``."""
    mark = Path(marks) / f"{job['id']}.pid"
    if job["id"] == hang_id and not mark.exists():
        mark.write_text(str(os.getpid()))
        time.sleep(BARRIER_SECONDS)
        raise AssertionError("the hanging attempt was not killed")
    return fn(job, *args)


def kill_when_written(path: Path, timeout: float = BARRIER_SECONDS) -> int:
    """(test side) SIGKILL the process whose pid appears in ``path``."""
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.05)
    pid = int(path.read_text())
    os.kill(pid, signal.SIGKILL)
    return pid


def devices_together(folder: str, index: int, expected: int):
    """Report CUDA_VISIBLE_DEVICES once ``expected`` calls are running at the same time (proved by a barrier)."""
    Path(folder, f"{index}.here").write_text("")
    deadline = time.monotonic() + BARRIER_SECONDS
    while len(list(Path(folder).glob("*.here"))) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError("the calls did not run at the same time")
        time.sleep(0.05)
    return os.environ.get("CUDA_VISIBLE_DEVICES"), torch.get_num_threads()


class ScaledWorker:
    """A stateful worker built from a (large) argument; its first call at item ``crash_at`` kills its process
    once (marked in ``marks``), so Ray restarts it and the call runs again on a new one."""

    def __init__(self, weights: torch.Tensor, marks: str, crash_at: int) -> None:
        self.weights, self.marks, self.crash_at, self.pid = weights, Path(marks), crash_at, os.getpid()

    def scale(self, item: int) -> tuple[float, int]:
        mark = self.marks / "crashed"
        if item == self.crash_at and not mark.exists():
            mark.write_text(str(os.getpid()))
            os._exit(1)
        return float(self.weights.sum()) * item, self.pid
