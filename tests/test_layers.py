"""The layers' rules, read from the source:

- the protocol library (``federation``) never depends on the application (``node``);
- the application's modules form no import cycle, imports inside functions counted;
- only stores, ``node/services`` and ``node/storage`` import SQLAlchemy or the tables;
- the web layer and the command line are imported only by the application factory
  (``node.app``) and the entry point; nothing else depends on them;
- the governance rules (``node/governance/rules``) do no I/O;
- no module reaches into another's private names;
- every exception class descends from one of the two roots, ``node.errors.NodeError``
  and ``federation.errors.FederationError``."""

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


# --- what starting the node loads -------------------------------------------------------


def test_starting_the_node_does_not_load_aiohttp() -> None:
    # About a tenth of a second and 23 MiB (bench/startup.py): it loads with the first
    # round of deliveries or the first ballot audit, after the node answers.
    code = (
        "import sys, uvicorn, node.app, node.workers\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


# --- import cycles in node -------------------------------------------------------------


def import_target(package: str, item: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative imports resolved against
    ``package`` (the importing module's package)."""
    if not item.level:
        return item.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (item.level - 1)]
    return ".".join([*base, item.module] if item.module else base)


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
                target = import_target(package, item)
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


def test_no_module_of_node_is_in_an_import_cycle() -> None:
    """Imports inside functions and under ``if TYPE_CHECKING:`` count: a cycle hidden in
    a function still ties the modules together."""
    assert sorted(cyclic_modules(node_import_graph())) == []


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
                target = import_target(package, item)
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


# --- where SQL is written --------------------------------------------------------------


def _runtime_imports(path: Path, name: str) -> set[str]:
    """Every module ``path`` imports outside ``if TYPE_CHECKING:`` blocks (at the top or
    inside a function), each as its full dotted name and, for ``from m import x``, also
    ``m.x``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.If) and "TYPE_CHECKING" in ast.unparse(item.test):
            skipped.update(id(child) for child in ast.walk(item) if child is not item)
            skipped.update(id(child) for branch in item.orelse for child in ast.walk(branch))
    found: set[str] = set()
    for item in ast.walk(tree):
        if id(item) in skipped:
            continue
        if isinstance(item, ast.Import):
            found.update(alias.name for alias in item.names)
        elif isinstance(item, ast.ImportFrom):
            target = import_target(package, item)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in item.names)
    return found


def _node_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in (ROOT / "node").rglob("*.py")
        if "migrations" not in path.parts
    }


# Stores not named so: the catalogue's search is its read side (the writer is
# node.catalogue.store), one module of queries that is the catalogue's reason to be.
STORES_BY_ANOTHER_NAME = frozenset({"node.catalogue.search"})


def may_write_sql(module: str) -> bool:
    """A store (a feature's ``store`` module or package, or ``*_store``), the shared
    services and the storage layer: the only places that build queries."""
    parts = module.split(".")
    return (
        module.startswith(("node.storage", "node.services"))
        or "store" in parts[2:]
        or parts[-1].endswith("_store")
        or module in STORES_BY_ANOTHER_NAME
    )


def modules_writing_sql_outside_stores() -> set[str]:
    found = set()
    for name, path in _node_modules().items():
        imports = _runtime_imports(path, name)
        queries = any(m == "sqlalchemy" or m.startswith("sqlalchemy.") for m in imports)
        tables = any(m.startswith("node.storage.tables") for m in imports)
        if (queries or tables) and not may_write_sql(name):
            found.add(name)
    return found


def test_only_stores_services_and_storage_import_sqlalchemy() -> None:
    """``if TYPE_CHECKING:`` imports do not count: a use case that runs several stores'
    functions in one unit of work annotates its ``conn`` without writing SQL."""
    assert sorted(modules_writing_sql_outside_stores()) == []


# --- who may import the web layer and the command line ------------------------------------


def test_the_web_layer_and_the_command_line_are_imported_only_from_the_top() -> None:
    graph = node_import_graph()
    outside = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if target.startswith(("node.web", "node.cli"))
        and not module.startswith(target.split(".")[0] + "." + target.split(".")[1])
        and module != "node.app"
    }

    assert sorted(outside) == []


# --- the governance rules do no I/O ------------------------------------------------------

# What a module doing I/O would import: storage, the network, the event loop, files, the
# clock, the node's runtime.
IO_MODULES = (
    "sqlalchemy",
    "httpx",
    "httpcore",
    "aiohttp",
    "starlette",
    "asyncio",
    "socket",
    "ssl",
    "subprocess",
    "os",
    "pathlib",
    "shutil",
    "tempfile",
    "time",
    "urllib.request",
    "node.storage",
    "node.runtime",
    "node.peers",
    "node.services",
    "federation.fetch",
    "federation.poster",
    "federation.netguard",
)
IO_CALLS = ("open", "now", "utcnow", "today", "read_text", "read_bytes", "urlopen")


def io_in_rules() -> list[str]:
    """What the governance rules reach, directly or through the modules they import,
    that does I/O: an I/O module imported, or a call that reads a file or the clock."""
    modules = _node_modules()
    paths = {**modules, **{_module_name(p): p for p in (ROOT / "federation").rglob("*.py")}}
    todo = [m for m in modules if m.startswith("node.governance.rules")]
    seen: set[str] = set()
    found: list[str] = []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = paths[name]
        for target in _runtime_imports(path, name):
            if target in paths:
                todo.append(target)
            elif any(target == m or target.startswith(m + ".") for m in IO_MODULES):
                found.append(f"{name} imports {target}")
        for item in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(item, ast.Call):
                called = item.func
                named = called.attr if isinstance(called, ast.Attribute) else None
                named = called.id if isinstance(called, ast.Name) else named
                if named in IO_CALLS:
                    found.append(f"{name} calls {named}() at line {item.lineno}")
    return sorted(set(found))


def test_the_governance_rules_do_no_io() -> None:
    assert io_in_rules() == []


# --- one error tree ------------------------------------------------------------------------


def exceptions_outside_the_two_roots() -> list[str]:
    """Each exception class defined in ``node`` or ``federation`` that descends from
    neither root (the protocol library's must descend from its own)."""
    import importlib

    from federation.errors import FederationError
    from node.errors import NodeError

    found = []
    for package in ("federation", "node"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts or path.name == "__main__.py":
                continue
            name = _module_name(path)
            module = importlib.import_module(name)
            for value in vars(module).values():
                if not (
                    isinstance(value, type)
                    and issubclass(value, BaseException)
                    and value.__module__ == name
                ):
                    continue
                roots = (
                    (FederationError,)
                    if package == "federation"
                    else (
                        NodeError,
                        FederationError,
                    )
                )
                if not issubclass(value, roots):
                    found.append(f"{name}.{value.__qualname__}")
    return found


def test_every_exception_descends_from_one_of_the_two_roots() -> None:
    assert exceptions_outside_the_two_roots() == []


# --- imports inside functions ------------------------------------------------------------

# The phrase by which a module says that its functions import what they use when they
# run, to keep start-up fast (the command line, which loads a command's code only when
# that command runs; the pages' template and translation engines).
DEFERRED = "import what they use when they run"


def unexplained_imports_in_functions() -> list[str]:
    """Each import inside a function of ``node`` that says nothing of why: no comment on
    its line or just above its group of imports, and no :data:`DEFERRED` sentence in its
    module's docstring. Such an import would otherwise hide a cycle or slow a path."""
    found = []
    for name, path in sorted(_node_modules().items()):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        if DEFERRED in " ".join((ast.get_docstring(tree) or "").split()):
            continue
        lines = source.splitlines()
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for item in ast.walk(function):
                if not isinstance(item, ast.Import | ast.ImportFrom):
                    continue
                line = item.lineno - 1
                while line > 0 and lines[line - 1].strip().startswith(("import ", "from ")):
                    line -= 1  # the first of its group
                explained = "#" in lines[item.lineno - 1] or (
                    line > 0 and lines[line - 1].strip().startswith("#")
                )
                if not explained:
                    found.append(f"{name}:{item.lineno}")
    return found


def test_an_import_inside_a_function_says_why() -> None:
    assert unexplained_imports_in_functions() == []


# --- governance's stored JSON is read in one place ---------------------------------------


def json_read_outside_the_governance_store() -> list[str]:
    """Each call of ``json.loads`` in ``node/governance`` outside its store: the store
    reads the settings, counts and outcomes kept as JSON into typed rows, and the rest of
    governance uses their attributes."""
    found = []
    for name, path in sorted(_node_modules().items()):
        if not name.startswith("node.governance.") or name.startswith("node.governance.store"):
            continue
        for item in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(item, ast.Call)
                and isinstance(item.func, ast.Attribute)
                and item.func.attr == "loads"
            ):
                found.append(f"{name}:{item.lineno}")
    return found


def test_governance_reads_its_stored_json_only_in_its_store() -> None:
    assert json_read_outside_the_governance_store() == []
