"""The packages stand in layers: each imports only packages of lower layers.

    8  bench (may also start the simulator in-process)
    7  meltica (the application: launcher, pipeline, monitor, live view, collector)
    6  strategies, bridge
    5  ingest, dispatch, execution, consumer (the processes and the SDK)
    4  venues (one package per venue, and the registry)
    3  channels (the contract between processes), marketdata (the book toolkit)
    2  core (run context, telemetry, DLQ, signals, config)
    1  events
    0  shm
       simulator: test equipment, imports none of ours

A package of one layer never imports one of its own layer (the processes are apart:
the SDK speaks to execution only through `channels`), nor one above it. Imports inside
functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parent.parent
LAYERS = {
    "shm": 0, "events": 1, "core": 2, "channels": 3, "marketdata": 3, "venues": 4,
    "ingest": 5, "dispatch": 5, "execution": 5, "consumer": 5,
    "strategies": 6, "bridge": 6, "meltica": 7, "bench": 8,
}
STANDALONE = {"simulator"}
OURS = set(LAYERS) | STANDALONE


def _imports(path: Path, package: str):
    """(line, imported root package) for every absolute or relative import of ours."""
    tree = ast.parse(path.read_text(), str(path))
    parts = path.relative_to(REPO).with_suffix("").parts
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: resolve against the module's package
                base = parts[: len(parts) - node.level]
                mod = ".".join(base + ((node.module,) if node.module else ()))
                yield node.lineno, mod.split(".")[0]
            else:
                yield node.lineno, (node.module or "").split(".")[0]


def _packages():
    return sorted(p for p in OURS if (REPO / p / "__init__.py").is_file())


@pytest.mark.parametrize("package", _packages())
def test_a_package_imports_only_lower_layers(package):
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, root in _imports(path, package):
            if root not in OURS or root == package:
                continue
            if root in STANDALONE:
                ok = package == "bench"          # test equipment: only the benchmarks start it
            else:
                ok = package not in STANDALONE and LAYERS[root] < LAYERS[package]
            if not ok:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {root}")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_every_package_of_ours_has_a_layer():
    found = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"}
    assert found <= OURS, f"packages without a layer: {sorted(found - OURS)}"


def test_the_package_graph_has_no_cycle():
    graph: dict[str, set[str]] = {p: set() for p in _packages()}
    for package in graph:
        for path in (REPO / package).rglob("*.py"):
            graph[package] |= {r for _, r in _imports(path, package) if r in graph and r != package}
    state: dict[str, int] = {}

    def visit(p, trail):
        state[p] = 1
        for q in graph[p]:
            if state.get(q) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(trail + [p, q])}")
            if q not in state:
                visit(q, trail + [p])
        state[p] = 2

    for p in graph:
        if p not in state:
            visit(p, [])
