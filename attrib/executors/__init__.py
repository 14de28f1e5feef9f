"""Where a job's independent pieces of work run: in this process (``local``, the default) or on a Ray cluster.

One small interface, used by the jobs and nothing else:

- ``map_unordered(fn, calls)``: ``fn(*args)`` for every tuple in ``calls``, yielded as ``(index, result)`` in
  completion order (DiffROAR's retrains);
- ``map_ordered(worker_class, init_args, method, items)``: stateful workers built once each (holding a loaded
  model), ``getattr(worker, method)(item)`` for every item, yielded in input order (explain's shards);
- ``share(obj)``: a handle to pass large read-only arguments once (the object itself locally); a handle
  nested inside a worker's arguments is fetched by ``fetched(handle)`` only where it is needed;
- ``close()``; executors are context managers.

Ray is imported only when chosen (``attrib.executors.ray_cluster``); without it, asking for it says in one line
how to install it.
"""

from __future__ import annotations

from contextlib import nullcontext

from attrib.executors.base import EXECUTORS, INSTALL_HINT, Executor, ExecutorSpec, LocalExecutor

__all__ = ["EXECUTORS", "INSTALL_HINT", "Executor", "ExecutorSpec", "LocalExecutor", "executor_for", "fetched",
           "make_executor"]


def fetched(shared):
    """(in a worker) the object a ``share()`` handle stands for: Ray fetches a handle given as an argument itself,
    not one inside another object; anything else is the object itself."""
    if type(shared).__name__ == "ObjectRef":
        from attrib.executors.ray_cluster import fetch

        return fetch(shared)
    return shared


def make_executor(spec: ExecutorSpec | None = None) -> Executor:
    """The executor ``spec`` names (checked); a Ray one connects or starts its cluster here."""
    spec = spec or ExecutorSpec()
    spec.check()
    if not spec.remote:
        return LocalExecutor()
    from attrib.executors.ray_cluster import RayExecutor

    return RayExecutor(spec)


def executor_for(choice: "ExecutorSpec | Executor | None"):
    """A context giving an executor: one made from a spec (closed after), or the caller's own (left open)."""
    if choice is not None and hasattr(choice, "map_unordered"):
        return nullcontext(choice)
    return make_executor(choice)
