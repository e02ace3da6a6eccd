"""The layering a newcomer reads from the folders (docs/architecture.md), checked on the source.

Arrows are imports, nothing points upward:

    bench -> provers -> aggregator -> normalizers -> sheaf        demo -> (anything below it)
    deploy -> normalizers -> sheaf

provers reach the aggregator only through its SDK, `aggregator.client` (what `prover submit` uses).
Every import counts, wherever it is written (module top, inside a function, under TYPE_CHECKING):
a lazy import hides a dependency, it does not remove it. And no first-party module is part of an
import cycle (strongly connected components of the module graph).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sheaf", "normalizers", "aggregator", "deploy", "provers", "bench", "demo")

# top-level package -> the first-party packages it must not import
FORBIDDEN: dict[str, frozenset[str]] = {
    "sheaf": frozenset(PACKAGES) - {"sheaf"},
    "normalizers": frozenset({"aggregator", "deploy", "provers", "bench", "demo"}),
    "aggregator": frozenset({"deploy", "provers", "bench", "demo"}),
    "deploy": frozenset({"aggregator", "provers", "bench", "demo"}),
    "provers": frozenset({"deploy", "bench", "demo"}),
    "bench": frozenset({"demo"}),
    "demo": frozenset({"bench"}),
}
# the one allowed edge into a package that is otherwise above or beside the importer
ALLOWED_ONLY: dict[tuple[str, str], frozenset[str]] = {
    ("provers", "aggregator"): frozenset({"aggregator.client"}),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            out[_module_name(path)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The first-party module `name` refers to: itself, else its nearest enclosing module."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, first-party module) for every import statement of the module, at any depth."""
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _resolve(alias.name)) is not None:
                    yield node.lineno, target
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if source.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                # `from pkg import submodule` imports the submodule; `from mod import name` the module
                target = _resolve(f"{source}.{alias.name}") if alias.name != "*" else _resolve(source)
                if target is not None:
                    yield node.lineno, target


GRAPH: dict[str, dict[str, int]] = {}
for _m, _p in MODULES.items():
    edges: dict[str, int] = {}
    for _line, _t in _imports(_m, _p):
        if _t != _m:
            edges.setdefault(_t, _line)
    GRAPH[_m] = edges


def test_the_module_graph_is_not_empty() -> None:
    # guards the checks below against passing on nothing (a moved root, a broken resolver)
    assert {"sheaf.paths", "normalizers.statement", "aggregator.client", "deploy.api"} <= set(MODULES)
    assert "sheaf.hashing" in GRAPH["normalizers.statement"]
    assert "normalizers.statement" not in GRAPH["sheaf.paths"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_upward_imports(package: str) -> None:
    bad = []
    for module, edges in sorted(GRAPH.items()):
        if module.split(".")[0] != package:
            continue
        for target, line in sorted(edges.items()):
            top = target.split(".")[0]
            allowed = ALLOWED_ONLY.get((package, top))
            if allowed is not None:
                if not any(target == a or target.startswith(a + ".") for a in allowed):
                    bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
            elif top in FORBIDDEN[package]:
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert not bad, f"{package} imports what is above or beside it:\n" + "\n".join(bad)


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, {})))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_strongly_connected_finds_a_cycle() -> None:
    g = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert _strongly_connected(g) == [["a", "b", "c"]]
    assert _strongly_connected({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycles() -> None:
    cycles = _strongly_connected(GRAPH)
    lines = []
    for comp in cycles:
        members = set(comp)
        lines.append(" <-> ".join(comp))
        for m in comp:
            for t, line in sorted(GRAPH[m].items()):
                if t in members:
                    lines.append(f"    {MODULES[m].relative_to(ROOT)}:{line} imports {t}")
    assert not cycles, "import cycles between first-party modules:\n" + "\n".join(lines)


# First-party imports written inside a function, each with the reason it is lazy. Anything else
# belongs at the module top, where a reader sees the module's dependencies.
LAZY_ALLOWED: dict[str, frozenset[str]] = {
    # the generated protobuf code exists only after `make setup`; normalizing does not need it
    "normalizers.api": frozenset({"sheaf.v1"}),
    # bench's served-ingest run borrows the aggregator tests' helper, reachable via sys.path only
    "bench.ingest": frozenset({"agg_helpers"}),
    # the same for the scale-out run (issue 15), which reuses the failover test's helpers too
    "bench.scaleout": frozenset({"agg_helpers"}),
}


def _lazy_first_party(path: Path) -> Iterator[tuple[int, str]]:
    for fn in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in (*PACKAGES, "agg_helpers"):
                    yield node.lineno, n


def test_no_first_party_import_hidden_in_a_function() -> None:
    hidden = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in MODULES.items()
        for line, name in _lazy_first_party(path)
        if name not in LAZY_ALLOWED.get(module, frozenset())
    ]
    assert not hidden, "move these to the module top (or allow one with its reason):\n" + "\n".join(hidden)
