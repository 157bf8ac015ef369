"""aiohttp (and its multidict) is imported at run time by the transport only, the simulator,
and the two notification modules that meet HTTP from the other side."""

from __future__ import annotations

import ast
from pathlib import Path

import emoji_async

_PACKAGE = Path(emoji_async.__file__).parent
#: The HTTP library's packages, and the modules of the client allowed to import them.
_HTTP = frozenset({"aiohttp", "multidict", "yarl"})
_TRANSPORT = frozenset({"_transport.py", "_transport_errors.py"})
#: The notification receiver's modules that meet HTTP without the client's transport: the
#: certificate fetch (a plain GET to another host, capped, no redirects, none of the
#: transport's pacing or retries) and the handler an ``aiohttp.web`` app mounts (its
#: request and response types are aiohttp's own).
_NOTIFY = frozenset({"notify/_certificates.py", "notify/_aiohttp.py"})


def _run_time_imports(tree: ast.Module) -> set[str]:
    """The top-level packages a module imports when it runs (not under ``if TYPE_CHECKING``)."""
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        todo += ast.iter_child_nodes(node)
    return found


def test_only_the_transport_imports_the_http_library_outside_the_simulator() -> None:
    offenders = {}
    for path in sorted(_PACKAGE.rglob("*.py")):
        relative = path.relative_to(_PACKAGE)
        if relative.parts[0] == "testing":
            continue
        used = _run_time_imports(ast.parse(path.read_text(encoding="utf-8"))) & _HTTP
        if used and str(relative) not in _TRANSPORT | _NOTIFY:
            offenders[str(relative)] = sorted(used)
    assert offenders == {}


def test_the_check_sees_an_import_and_skips_one_made_for_type_checking_only() -> None:
    source = (
        "import aiohttp\n"
        "if TYPE_CHECKING:\n    import yarl\n"
        "def f():\n    from multidict import X\n"
    )
    assert _run_time_imports(ast.parse(source)) == {"aiohttp", "multidict"}
