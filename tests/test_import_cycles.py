"""No import cycles between arithmo's modules (issue 22): a lower room never imports a higher one.

Every import counts, at module level or inside a function: a function-level import is still a dependency, and
hiding one inside a function is how the cycles of the last wave (runs.py <-> train.py, scoring.py <-> tir.py,
gguf.py <-> modelfile.py) came about. The one exception is a package's `__init__` re-exporting its children.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "arithmo"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(path, root): path for path in root.rglob("*.py")}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The arithmo module that `name` (a dotted import target) lives in, or None outside arithmo."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of the package at `root` that it imports (anywhere in its body)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        package = module if is_package else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import name`: name may be a submodule (an edge to it) or an attribute of pkg.
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for name in names:
                target = _resolve(name, modules)
                if target is None or target == module:
                    continue
                if module.startswith(target + "."):
                    # A module importing a name from its own package (`from arithmo.export import ExportError`):
                    # the package's __init__ is what runs it, so its edges to its children stand for this one.
                    continue
                targets.add(target)
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


# (graph, expected cycles): the finder itself, so that a passing repository test means something.
FINDER_ROWS = [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),  # a two-module circle
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),  # a circle through a third module
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),  # a chain is NOT a cycle
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),  # a diamond is NOT a cycle
]


@pytest.mark.parametrize("graph, expected", FINDER_ROWS)
def test_the_cycle_finder(graph, expected):
    assert find_cycles(graph) == expected


def test_function_level_and_relative_imports_are_edges(tmp_path):
    package = tmp_path / "arithmo"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from arithmo.sub.a import f\n")  # re-export: not an edge
    (package / "sub" / "a.py").write_text("def f():\n    from . import b\n")
    (package / "sub" / "b.py").write_text("from arithmo.sub import a\n")
    graph = import_graph(package)
    assert graph["arithmo.sub.a"] == {"arithmo.sub.b"}  # its own package is not an edge
    assert graph["arithmo.sub.b"] == {"arithmo.sub.a"}
    assert graph["arithmo.sub"] == {"arithmo.sub.a"}  # the __init__'s re-export stays an edge
    assert find_cycles(graph) == [["arithmo.sub.a", "arithmo.sub.b"]]


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    """p/__init__ imports p.a, p.a imports q, q imports a name from p: importing p fails at runtime."""
    package = tmp_path / "arithmo"
    (package / "p").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "p" / "__init__.py").write_text("from arithmo.p.a import A\n")
    (package / "p" / "a.py").write_text("import arithmo.q\nA = 1\n")
    (package / "q.py").write_text("from arithmo.p import A\n")
    assert find_cycles(import_graph(package)) == [["arithmo.p", "arithmo.p.a", "arithmo.q"]]


def test_arithmo_has_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles between modules: " + "; ".join(" <-> ".join(c) for c in cycles)
