"""rich belongs to the command line alone: the library imports none of it, and the command
without it says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
