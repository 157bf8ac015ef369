"""What README.md shows works as shown: its code names what exists, its test runs on one clock."""

from __future__ import annotations

import ast
import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import emoji_async.testing
from emoji_async.testing import SimulatorServer

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> dict[str, str]:
    """Every ```python block of the README, by the heading it stands under."""
    blocks: dict[str, str] = {}
    heading = "(top)"
    block: list[str] | None = None
    for line in README.read_text(encoding="utf-8").splitlines(keepends=True):
        if block is not None:
            if line.rstrip() == "```":
                blocks[heading] = blocks.get(heading, "") + "".join(block)
                block = None
            else:
                block.append(line)
        elif line.startswith("```python"):
            block = []
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
    return blocks


@pytest.mark.parametrize("heading", sorted(python_blocks()))
def test_every_code_block_parses_and_imports_only_names_that_exist(heading: str) -> None:
    tree = ast.parse(python_blocks()[heading])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("emoji"):
            module = importlib.import_module(node.module)
            missing = [alias.name for alias in node.names if not hasattr(module, alias.name)]
            assert not missing, f"{heading}: {node.module} has no {missing}"


def test_the_testing_snippet_scales_nothing_by_hand() -> None:
    snippet = python_blocks()["Testing your code against the simulator"]
    assert "client_for(server)" in snippet
    assert ".scaled(" not in snippet
    assert "limits=" not in snippet


async def test_the_testing_snippet_polls_on_the_simulators_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run as written, the README's test sees its video soon after the task ends.

    A client on the service's own clock would first poll a minute after the
    submit, a hundred of the simulator's task run times too late.
    """
    served: list[SimulatorServer] = []
    real_serve: Callable[..., AbstractAsyncContextManager[SimulatorServer]]
    real_serve = emoji_async.testing.serve

    @asynccontextmanager
    async def watched(*args: Any, **kwargs: Any) -> AsyncIterator[SimulatorServer]:
        async with real_serve(*args, **kwargs) as server:
            served.append(server)
            yield server

    monkeypatch.setattr(emoji_async.testing, "serve", watched)
    namespace: dict[str, Any] = {}
    exec(python_blocks()["Testing your code against the simulator"], namespace)  # noqa: S102
    await namespace["test_my_feature"]()
    (server,) = served
    (task,) = server.simulator.tasks()
    assert task.ended_at is not None
    run_time = task.ended_at - task.submitted_at
    last_query = max(r.at for r in server.simulator.requests if r.endpoint == "query")
    assert last_query - task.ended_at <= 0.5 * run_time
