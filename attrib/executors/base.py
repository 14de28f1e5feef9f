"""The executor seam's types: what the user chose (ExecutorSpec), the interface, the local executor."""

from __future__ import annotations

import importlib.util
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from attrib.errors import UsageError

EXECUTORS = ("local", "ray")
INSTALL_HINT = "--executor ray needs Ray: pip install 'attrib[ray]'"


@dataclass(frozen=True)
class ExecutorSpec:
    """What the user chose: ``address`` None starts (and stops) a local cluster; ``cpus``/``gpus`` are what one
    task or worker asks the cluster for (fractions of a GPU allowed; ``cpus`` None: one); ``workers`` None = as
    many as fit."""

    name: str = "local"
    address: str | None = None
    cpus: float | None = None
    gpus: float = 0.0
    workers: int | None = None

    @property
    def task_cpus(self) -> float:
        return 1.0 if self.cpus is None else self.cpus

    def check(self) -> None:
        if self.name not in EXECUTORS:
            raise UsageError(f"unknown executor {self.name!r}; choose from {', '.join(EXECUTORS)}")
        if self.name == "local" and (self.address is not None or self.gpus or self.workers or self.cpus is not None):
            raise UsageError("--address, CPU and GPU shares and worker counts apply to --executor ray only")
        if self.task_cpus <= 0 or self.gpus < 0 or (self.workers is not None and self.workers < 1):
            raise UsageError("CPUs per task must be > 0, GPUs per task >= 0, workers >= 1")
        if self.name == "ray" and not _installed("ray"):
            raise UsageError(INSTALL_HINT)
        if self.name == "ray" and self.address is not None:
            check_reachable(self.address)

    @property
    def remote(self) -> bool:
        """Whether the work leaves this process (on a cluster's workers)."""
        return self.name != "local"

    @property
    def device(self) -> str:
        """The device a task computes on: a GPU share means the (one) GPU the cluster gave it."""
        return "cuda" if self.gpus > 0 else "cpu"


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT address must accept a connection (Ray itself would retry for minutes); "auto" is Ray's."""
    if address == "auto":
        return
    if not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):[0-9]{1,5}", address):
        raise UsageError(f"--address takes auto or HOST:PORT (the head's Ray port, e.g. 10.0.0.5:6379), got "
                         f"{address!r}")
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise UsageError(f"cannot reach a Ray cluster at {address}: {reason}") from None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


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
