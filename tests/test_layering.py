"""The package's shape: no import circle, computation never imports I/O or presentation, the report never
imports computation, nothing imports the CLI; every random stream has its own id."""

import ast
import re
from pathlib import Path

import pytest

import attrib
from attrib.rng import MOREAUGRAD_STRIDE, Stream

ROOT = Path(attrib.__file__).parent
COMPUTATION = ("attrib.methods", "attrib.evaluate", "attrib.engine", "attrib.targets", "attrib.rng", "attrib.fold")
IO_AND_PRESENTATION = ("attrib.runs", "attrib.render", "attrib.report", "attrib.cli", "attrib.jobs")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every attrib module ``path`` imports, at any level, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                      for a in node.names}
    return {m for m in found if m in MODULES}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _reachable(start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in GRAPH[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _inside(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_graph_sees_the_package():
    assert {"attrib.jobs.explain", "attrib.methods._registry", "attrib.runs.store"} <= set(GRAPH)
    assert "attrib.methods._registry" in GRAPH["attrib.methods.gradient"]


def test_no_import_circle():
    circles = sorted(m for m in GRAPH if m in _reachable(m))
    assert not circles, f"modules on an import circle: {circles}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _inside(m, COMPUTATION)))
def test_computation_imports_no_io_or_presentation(module):
    bad = sorted(m for m in _reachable(module) if _inside(m, IO_AND_PRESENTATION))
    assert not bad, f"{module} reaches {bad}"


def test_the_report_never_imports_computation():
    bad = sorted(m for m in _reachable("attrib.report.html")
                 if _inside(m, ("attrib.methods", "attrib.engine", "attrib.api", "attrib.jobs")))
    assert not bad, bad


def test_nothing_outside_the_cli_imports_it():
    users = sorted(m for m, deps in GRAPH.items() if not _inside(m, ("attrib.cli", "attrib.__main__"))
                   and any(_inside(d, ("attrib.cli",)) for d in deps))
    assert not users, users


def test_the_method_registry_is_a_leaf():
    assert _reachable("attrib.methods._registry") <= {"attrib.errors"}


def test_executors_know_nothing_of_the_jobs_they_run():
    assert _reachable("attrib.executors") <= {"attrib.errors", "attrib.executors.base", "attrib.executors.ray_cluster"}
    ray_users = sorted(m for m, path in MODULES.items() if re.search(r"^\s*(import ray|from ray)", path.read_text(), re.M))
    assert ray_users == ["attrib.executors.ray_cluster"]  # Ray is imported in one place, only when chosen


def test_random_streams_are_distinct_and_named():
    values = [s.value for s in Stream]
    assert len(values) == len(set(values))
    derived = {Stream.MOREAUGRAD_NOISE + MOREAUGRAD_STRIDE * k for k in range(1, 100_000)}
    assert not derived & set(values)
    literal = re.compile(r"(?:generator|row_keys)\(\s*\w+,\s*\d")  # a stream id written as a number
    offenders = [str(p) for p in MODULES.values() if literal.search(p.read_text())]
    assert not offenders, f"stream ids must come from attrib.rng.Stream: {offenders}"
