"""The package's imports flow one way: the layers its docstring draws, and no circle.

The table is read from ``emoji_async.__doc__``, so the picture and the rule cannot
drift apart. Imports are read from the source (``ast``), function bodies
included, ``if TYPE_CHECKING:`` blocks left out: what runs is what counts.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import emoji_async

PACKAGE = Path(emoji_async.__file__).parent
#: The faces at the top are packages and entry points, each counted as one unit.
UNITS = ("cli", "notify", "testing")


def layers() -> dict[str, int]:
    """Each unit of the package and the height of its layer, from the docstring's table."""
    doc = emoji_async.__doc__ or ""
    table = doc.split("placed here to pass)::", 1)[1].split("\n\n", 2)[1]
    height: dict[str, int] = {}
    level = -1
    for line in table.splitlines():
        words = line.split()
        if not line.startswith("              "):  # a layer's first line starts with its name
            level += 1
            words = words[1:]
        for word in words:
            assert word not in height, f"{word} is drawn in two layers"
            height[word] = level
    return height


def unit_of(path: Path) -> str:
    """The table's name for the module at ``path``: its own name, or its package's."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts[0] in UNITS else parts[-1]


def _runtime_nodes(nodes: list[ast.stmt]) -> Iterator[ast.stmt]:
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _runtime_nodes(node.orelse)
            continue
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _runtime_nodes([child])


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports at run time (absolute dotted names), with its line."""
    package = ".".join(("emoji_async", *path.relative_to(PACKAGE).parent.parts))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in _runtime_nodes(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield f"{module}.{alias.name}", node.lineno
            if node.module:  # ``from . import x`` imports x, not the package's __init__
                yield module, node.lineno


def own_unit(module: str) -> str | None:
    """The table's unit a dotted name falls in, if it is a module of the package."""
    parts = module.split(".")
    if parts[0] != "emoji_async":
        return None
    if len(parts) == 1:
        return "__init__"
    if parts[1] in UNITS:
        return parts[1]
    path = PACKAGE.joinpath(*parts[1:])
    return parts[1] if path.with_suffix(".py").is_file() or path.is_dir() else None


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_of_the_package_is_drawn_in_one_layer() -> None:
    drawn = layers()
    units = {unit_of(path) for path in SOURCES}
    assert units - set(drawn) == set(), "modules the package docstring does not place"
    assert set(drawn) - units == set(), "names in the docstring's table that are no module"


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    drawn = layers()
    upward: list[str] = []
    for path in SOURCES:
        here = unit_of(path)
        for module, line in imports(path):
            there = own_unit(module)
            if there is not None and there != here and drawn[there] > drawn[here]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert upward == []


def test_the_library_imports_no_module_in_a_circle() -> None:
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        here = unit_of(path)
        if here in UNITS:
            continue
        graph.setdefault(here, set()).update(
            unit
            for module, _ in imports(path)
            if (unit := own_unit(module)) is not None and unit != here and unit not in UNITS
        )
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, " -> ".join((*path[path.index(node) :], node))
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, (*path, node))
        done.add(node)

    for node in sorted(graph):
        visit(node, ())


@pytest.mark.parametrize(
    ("dependency", "allowed"),
    [
        # notify: the certificate fetch and the aiohttp.web handler (test_transport_boundary
        # names the two modules).
        ("aiohttp", r"_transport\w*|testing|notify"),
        ("multidict", r"_transport\w*|testing"),
        ("redis", r"_shared\w*"),
        ("backoff", r"_policy"),
        ("cattrs", r"_wire|testing"),
        ("rich", r"cli"),
    ],
)
def test_each_dependency_is_imported_by_the_modules_of_its_concern_only(
    dependency: str, allowed: str
) -> None:
    found = {
        unit_of(path)
        for path in SOURCES
        for module, _ in imports(path)
        if module == dependency or module.startswith(dependency + ".")
    }
    assert found, f"nothing imports {dependency}"
    assert {unit for unit in found if not re.fullmatch(allowed, unit)} == set()
