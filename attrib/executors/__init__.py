"""Where a job's independent pieces of work run: in this process (``local``, the default) or on a Ray cluster.

One small interface, used by the jobs and nothing else:

- ``map_unordered(fn, calls)``: ``fn(*args)`` for every tuple in ``calls``, yielded as ``(index, result)`` in
  completion order (DiffROAR's retrains);
- ``map_ordered(worker_class, init_args, method, items)``: stateful workers built once each (holding a loaded
  model), ``getattr(worker, method)(item)`` for every item, yielded in input order (explain's shards);
- ``share(obj)``: a handle to pass large read-only arguments once (the object itself locally);
- ``close()``; executors are context managers.

Ray is imported only when chosen (``attrib.executors.ray_cluster``); without it, asking for it says in one line
how to install it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from attrib.errors import UsageError

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    """What the user chose: ``address`` None starts (and stops) a local cluster; ``cpus``/``gpus`` are what one
    task or worker asks the cluster for (fractions of a GPU allowed); ``workers`` None = as many as fit."""

    name: str = "local"
    address: str | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    workers: int | None = None

    def check(self) -> None:
        if self.name not in EXECUTORS:
            raise UsageError(f"unknown executor {self.name!r}; choose from {', '.join(EXECUTORS)}")
        if self.name == "local" and (self.address is not None or self.gpus or self.workers):
            raise UsageError("--address, GPU shares and worker counts apply to --executor ray only")
        if self.cpus <= 0 or self.gpus < 0 or (self.workers is not None and self.workers < 1):
            raise UsageError("CPUs per task must be > 0, GPUs per task >= 0, workers >= 1")

    @property
    def device(self) -> str:
        """The device a task computes on: a GPU share means the (one) GPU the cluster gave it."""
        return "cuda" if self.gpus > 0 else "cpu"


class Executor(Protocol):
    name: str
    remote: bool

    def share(self, obj: Any) -> Any: ...

    def map_unordered(self, fn: Callable[..., Any], calls: Iterable[tuple]) -> Iterator[tuple[int, Any]]: ...

    def map_ordered(self, worker_class: type, init_args: tuple, method: str,
                    items: Iterable[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Everything in this process, one call after another (today's behaviour)."""

    name, remote = "local", False

    def share(self, obj: Any) -> Any:
        return obj

    def map_unordered(self, fn: Callable[..., Any], calls: Iterable[tuple]) -> Iterator[tuple[int, Any]]:
        for index, args in enumerate(calls):
            yield index, fn(*args)

    def map_ordered(self, worker_class: type, init_args: tuple, method: str,
                    items: Iterable[Any]) -> Iterator[Any]:
        work = getattr(worker_class(*init_args), method)
        for item in items:
            yield work(item)

    def close(self) -> None:
        pass

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def make_executor(spec: ExecutorSpec | None = None) -> Executor:
    """The executor ``spec`` names (checked); a Ray one connects or starts its cluster here."""
    spec = spec or ExecutorSpec()
    spec.check()
    if spec.name == "local":
        return LocalExecutor()
    from attrib.executors.ray_cluster import RayExecutor

    return RayExecutor(spec)
