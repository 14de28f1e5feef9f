"""The Ray executor: tasks for independent calls, actors for stateful workers (imported only when chosen).

Without an address a local cluster is started for the command and shut down after it; it binds to the loopback
address only (checked: anything else is refused), with no dashboard and usage statistics off. With an address
(``auto`` or HOST:PORT) attrib attaches to a running cluster and leaves it running. A task whose worker process
dies (a crash, SIGKILL, a lost node) is retried by Ray up to MAX_RETRIES times; an exception raised by the
task's own code is not retried (it would fail again) and reaches the driver.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from attrib.errors import UsageError, first_line
from attrib.executors.base import INSTALL_HINT, ExecutorSpec

MAX_RETRIES = 3
AUTH_MODE = "RAY_AUTH_MODE"
IN_FLIGHT_PER_WORKER = 2  # shards queued on each worker (one computing, one ready to start)


def import_ray(local: bool, attach: bool = False):
    """ray, with usage statistics off; node addresses on the loopback for a cluster we start or a loopback
    address; when attaching, the token Ray saved presented."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    token = attach and _use_token_if_any()
    if local:  # Ray's single-machine mode: every service on the loopback address
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    if local:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # the same switch, should ray have been imported before
    if token:
        from ray._raylet import Config

        Config.initialize("")  # Ray caches its auth mode at import: make it see the variable set above
    return ray


def is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _use_token_if_any() -> bool:
    """Present the token Ray's own commands saved (or RAY_AUTH_TOKEN[_PATH]) when attaching: clusters started by
    `ray start` use token authentication by default. An explicit RAY_AUTH_MODE is left alone."""
    token = os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or \
        (Path.home() / ".ray" / "auth_token").is_file()
    if token and AUTH_MODE not in os.environ:
        os.environ[AUTH_MODE] = "token"
        return True
    return False


def fetch(reference: Any) -> Any:
    """(in a worker) the object a reference inside its arguments stands for."""
    import ray

    return ray.get(reference)


def _run(fn: Callable[..., Any], threads: int, *args: Any) -> Any:
    """(in a Ray worker) ``fn(*args)`` with torch limited to the task's CPUs."""
    import torch

    torch.set_num_threads(threads)
    return fn(*args)


class _Worker:
    """(a Ray actor) one stateful worker, built on its first call, with torch limited to its CPUs."""

    def __init__(self, worker_class: type, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.worker_class, self.worker = worker_class, None

    def call(self, method: str, item: Any, shared_args: list) -> Any:
        """``shared_args``: [a reference to the worker's arguments], nested so that Ray does not fetch them for
        every call; read once, also by a worker Ray restarted after a crash (its constructor arguments would
        have to outlive the run in the object store, which Ray warns about at every start)."""
        if self.worker is None:
            import ray

            self.worker = self.worker_class(*ray.get(shared_args[0]))
        return getattr(self.worker, method)(item)


@contextlib.contextmanager
def _keeping_signal_handlers() -> Iterator[None]:
    """ray.init puts its own SIGTERM handlers in place (its core's aborts the process: exit 134, a stack dump); a
    Python SIGTERM or SIGHUP handler set before it, as the commands' (stop as Ctrl-C does: this cluster is shut
    down on the way out, what finished is kept), stays in force."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    names = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)] if main else []
    before = {getattr(signal, name): signal.getsignal(getattr(signal, name)) for name in names}
    try:
        yield
    finally:
        for signum, handler in before.items():
            if callable(handler):
                signal.signal(signum, handler)


class RayExecutor:
    name, remote = "ray", True

    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec = spec
        self.threads = max(1, int(spec.task_cpus))
        self.ray = import_ray(local=spec.address is None or is_loopback(spec.address),
                              attach=spec.address is not None)
        self.owned = False
        if not self.ray.is_initialized():
            with _keeping_signal_handlers():
                self._connect()
        self.address = self.ray.get_runtime_context().gcs_address

    def _connect(self) -> None:
        ray = self.ray
        quiet = {"log_to_driver": False, "logging_level": "error"}
        if self.spec.address is not None:
            try:
                ray.init(address=self.spec.address, **quiet)
            except ConnectionError as error:
                raise UsageError(f"could not attach to the Ray cluster at {self.spec.address}: {first_line(error)} "
                                 f"(a cluster with token authentication needs {AUTH_MODE}=token and its token in "
                                 "~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
            return
        context = ray.init(include_dashboard=False, **quiet)
        self.owned = True
        if not is_loopback(context.address_info["node_ip_address"]):
            self.close()
            raise UsageError("the local Ray cluster did not bind to the loopback address; start one with "
                             "`ray start --head --node-ip-address 127.0.0.1` and pass --address")

    def share(self, obj: Any) -> Any:
        return self.ray.put(obj)

    def map_unordered(self, fn: Callable[..., Any], calls: Iterable[tuple]) -> Iterator[tuple[int, Any]]:
        task = self.ray.remote(_run).options(num_cpus=self.spec.task_cpus, num_gpus=self.spec.gpus,
                                             max_retries=MAX_RETRIES, retry_exceptions=False)
        pending = {task.remote(fn, self.threads, *args): i for i, args in enumerate(calls)}
        try:
            while pending:
                done, _ = self.ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                yield index, self._get(done[0])
        finally:
            for ref in pending:
                self.ray.cancel(ref, force=True)

    def map_ordered(self, worker_class: type, init_args: tuple, method: str,
                    items: Iterable[Any]) -> Iterator[Any]:
        actor = self.ray.remote(_Worker).options(num_cpus=self.spec.task_cpus, num_gpus=self.spec.gpus,
                                                 max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)
        shared = [self.ray.put(init_args)]  # once in the object store, for every worker
        workers = [actor.remote(worker_class, self.threads) for _ in range(self.worker_count())]
        window: deque = deque()
        try:
            for i, item in enumerate(items):
                window.append(workers[i % len(workers)].call.remote(method, item, shared))
                if len(window) >= IN_FLIGHT_PER_WORKER * len(workers):
                    yield self._next(window)
            while window:
                yield self._next(window)
        finally:
            for ref in window:  # stopped early (an error, Ctrl-C): calls cancelled, not retried on killed workers
                self.ray.cancel(ref)
            for worker in workers:
                self.ray.kill(worker)

    def _next(self, window: deque) -> Any:
        """The oldest call's value, the call left in ``window`` until it has one (to be cancelled otherwise)."""
        value = self._get(window[0])
        window.popleft()
        return value

    def _get(self, ref: Any) -> Any:
        """A call's value; an exception the work itself raised comes back as itself, not wrapped by Ray."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, Exception):
                raise error.cause from None
            raise

    def worker_count(self) -> int:
        """The user's count, else as many workers as the cluster's CPUs (and GPUs) hold at once."""
        if self.spec.workers:
            return self.spec.workers
        resources = self.ray.cluster_resources()
        fits = int(resources.get("CPU", 1) // self.spec.task_cpus)
        if self.spec.gpus:
            fits = min(fits, int(resources.get("GPU", 0) // self.spec.gpus))
        if fits < 1:
            raise UsageError(f"the Ray cluster at {self.address} has no room for a worker with "
                             f"{self.spec.task_cpus:g} CPUs and {self.spec.gpus:g} GPUs")
        return fits

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
        self.owned = False

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
