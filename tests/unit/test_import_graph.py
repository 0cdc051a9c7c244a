"""The one-way rule over the import graph (docs/architecture.md, "Layers"): the CLI may import
everything, the local cloud may import the operator library and the product's code, the operator
library never imports the local cloud or the CLI, the product imports nothing of `dogbreed`, and no
two modules import each other through any path. Imports inside functions count; `if TYPE_CHECKING:`
blocks do not (they never run)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from dogbreed import REPO_ROOT

SRC = REPO_ROOT / "src"
PRODUCT_DIRS = (REPO_ROOT / "functions", REPO_ROOT / "training_job")
# Highest first; a module may import its own layer and the layers below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("dogbreed.cli", "dogbreed.__main__", "dogbreed.commands")),
    ("tools", ("dogbreed.bench",)),
    ("local cloud", ("dogbreed.local", "dogbreed.serving")),
    ("operator library", ("dogbreed",)),
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, package: str, modules: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every module an import statement of `path` names: `from a import b` names `a.b` when that is
    one of `modules`, else `a` (a package's own `__init__` is not what a submodule import means)."""

    def visit(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for statement in node.orelse:
                yield from visit(statement)
            return
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield submodule if submodule in modules else module
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")))


def dogbreed_graph() -> dict[str, set[str]]:
    paths = {module_name(path, SRC): path for path in (SRC / "dogbreed").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = imported_names(path, package, frozenset(paths))
        graph[name] = {target for target in imported if target in paths} - {name}
    return graph


def layer_of(module: str) -> int:
    for rank, (_layer, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) < layer_of(module)
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(dogbreed_graph()) == []


def test_no_import_cycles() -> None:
    assert import_cycles(dogbreed_graph()) == []


@pytest.mark.parametrize("root", PRODUCT_DIRS, ids=lambda root: root.name)
def test_the_product_imports_nothing_of_dogbreed(root: Path) -> None:
    offending = sorted(
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in root.rglob("*.py")
        for name in imported_names(path, module_name(path, root).rpartition(".")[0])
        if name == "dogbreed" or name.startswith("dogbreed.")
    )
    assert offending == []


def test_the_checks_see_an_upward_import_and_a_cycle() -> None:
    graph = {
        "dogbreed.stack_target": {"dogbreed.local.cloud.state"},
        "dogbreed.local.cloud.state": {"dogbreed.local.cloud.demo"},
        "dogbreed.local.cloud.demo": {"dogbreed.commands.local", "dogbreed.local.cloud.state"},
        "dogbreed.commands.local": set(),
    }

    assert upward_imports(graph) == [
        "dogbreed.local.cloud.demo (local cloud) imports dogbreed.commands.local (cli)",
        "dogbreed.stack_target (operator library) imports dogbreed.local.cloud.state (local cloud)",
    ]
    assert import_cycles(graph) == [["dogbreed.local.cloud.demo", "dogbreed.local.cloud.state"]]
