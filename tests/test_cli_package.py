"""The command line as a package: a user of the library's public API only, and the one
user of rich (the library imports none of it; the command without it says which extra to
install)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import emoji_async.cli

#: The public modules of the package, which the command line may import.
PUBLIC = {"emoji_async", "emoji_async.events", "emoji_async.testing"}

#: The modules a program on the library imports: the client, its events, the simulator.
LIBRARY = "import emoji_async, emoji_async.events, emoji_async.testing"

#: The command, as ``main`` and as ``python -m emoji_async``, in an interpreter where
#: ``import rich`` fails as it does when rich is not installed.
WITHOUT_RICH = {
    "main": "from emoji_async.cli import main; sys.exit(main(sys.argv[1:]))",
    "python -m": "import runpy; runpy.run_module('emoji_async', run_name='__main__')",
}


def _python(code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  (our own interpreter, our own arguments)
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60, check=False
    )


def _rich_modules_after(imports: str) -> str:
    """The rich modules in ``sys.modules`` once ``imports`` ran in a fresh interpreter."""
    shown = "import sys; print(sorted(m for m in sys.modules if m.partition('.')[0] == 'rich'))"
    result = _python(f"{imports}; {shown}")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_library_and_its_simulator_import_no_rich() -> None:
    assert _rich_modules_after(LIBRARY) == "[]"


def test_the_command_line_package_imports_no_rich_before_it_runs() -> None:
    # Its main must be importable without rich, to say what to install.
    assert _rich_modules_after("import emoji_async.cli") == "[]"


@pytest.mark.parametrize("entry", sorted(WITHOUT_RICH))
def test_the_command_without_rich_says_to_install_the_cli_extra_and_fails(entry: str) -> None:
    code = "import sys; sys.modules['rich'] = None; " + WITHOUT_RICH[entry]
    result = _python(code, "templates")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "emoji-async: error: the command line needs rich, which the library alone does not"
        " install: pip install 'emoji-async[cli]'\n"
    )
    assert "Traceback" not in result.stderr


def _imported_modules(path: Path) -> set[str]:
    """The absolute names of the modules of ``emoji_async`` a file of the cli package imports."""
    here = "emoji_async.cli"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, [base, node.module]))
            names.add(module)
    return {name for name in names if name.partition(".")[0] == "emoji_async"}


def test_the_command_line_imports_only_the_public_modules_and_its_own() -> None:
    files = sorted(Path(emoji_async.cli.__file__).parent.glob("*.py"))
    assert len(files) > 5
    private = {
        f"{path.name}: {name}"
        for path in files
        for name in _imported_modules(path)
        if name not in PUBLIC and not name.startswith("emoji_async.cli")
    }
    assert private == set()
