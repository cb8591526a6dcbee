"""The layers' rules: the protocol library never depends on the application, the
application's modules form no new import cycle (imports inside functions counted), and
no module reaches into another's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_federation_never_imports_node() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "node"
        )
        for path in (ROOT / "federation").rglob("*.py")
    }

    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_every_federation_module_loads_nothing_of_node() -> None:
    modules = [
        "federation." + p.stem for p in (ROOT / "federation").glob("*.py") if p.stem != "__init__"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m == 'node' or m.startswith('node.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


# --- import cycles in node -------------------------------------------------------------

# The modules still in a cycle, to be taken out one by one; none may join them. The web
# layer left the largest when the HTTP client's factory moved to node.runtime, and the
# workers and the inbox, delivery and backfill loops when Poller did.
KNOWN_CYCLIC = frozenset(
    {
        "node.governance.proposing",
        "node.governance.sharing",
        "node.governance.subtotals",
        "node.governance.voting",
        "node.governance.audit",
        "node.governance.audit_subtotals",
    }
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def node_import_graph() -> dict[str, set[str]]:
    """Each module of ``node`` (migrations aside) -> the ``node`` modules it imports,
    anywhere in it: at the top or inside a function."""
    paths = {
        _module_name(path): path
        for path in (ROOT / "node").rglob("*.py")
        if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for item in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(item, ast.Import):
                found.update(alias.name for alias in item.names)
            elif isinstance(item, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - max(item.level - 1, 0)]
                target = (
                    ".".join([*base, item.module] if item.module else base)
                    if item.level
                    else item.module or ""
                )
                for alias in item.names:
                    child = f"{target}.{alias.name}"
                    found.add(child if child in paths else target)
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def cyclic_modules(graph: dict[str, set[str]]) -> set[str]:
    """The modules that belong to a cycle (a strongly connected component of two or
    more), found with Tarjan's algorithm without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cyclic: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            vertex, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[vertex] = min(low[vertex], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[vertex])
            if low[vertex] == index[vertex]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == vertex:
                        break
                if len(component) > 1:
                    cyclic.update(component)
    return cyclic


def test_the_cycle_finder_finds_cycles_and_only_them() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}

    assert cyclic_modules(graph) == {"a", "b", "c"}


def test_the_web_layer_is_in_no_import_cycle() -> None:
    cyclic = cyclic_modules(node_import_graph())

    assert sorted(m for m in cyclic if m.startswith("node.web")) == []


def test_no_module_joins_an_import_cycle() -> None:
    cyclic = cyclic_modules(node_import_graph())

    assert sorted(cyclic - KNOWN_CYCLIC) == []


# --- private names -----------------------------------------------------------------------


def private_names_used_across_modules() -> list[str]:
    """``module: other._name`` for each private name (one leading underscore) of a module
    of ``node`` or ``federation`` that another module imports or reads as an attribute
    of the module it imported."""
    paths = {
        _module_name(path): path
        for package in ("node", "federation")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    found: set[str] = set()
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for item in ast.walk(tree):
            if isinstance(item, ast.Import):
                for alias in item.names:
                    if alias.name in paths:
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name
            elif isinstance(item, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - max(item.level - 1, 0)]
                target = (
                    ".".join([*base, item.module] if item.module else base)
                    if item.level
                    else item.module or ""
                )
                for alias in item.names:
                    child = f"{target}.{alias.name}"
                    if child in paths:
                        aliases[alias.asname or alias.name] = child
                    elif _private(alias.name) and target in paths and target != name:
                        found.add(f"{name}: {child}")
        for item in ast.walk(tree):
            if (
                isinstance(item, ast.Attribute)
                and isinstance(item.value, ast.Name)
                and item.value.id in aliases
                and aliases[item.value.id] != name
                and _private(item.attr)
            ):
                found.add(f"{name}: {aliases[item.value.id]}.{item.attr}")
    return sorted(found)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names() -> None:
    assert private_names_used_across_modules() == []
