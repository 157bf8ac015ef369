"""The version has one source, pyproject.toml: the package and its User-Agent say the same."""

from __future__ import annotations

import tomllib
from pathlib import Path

import emoji_async
from emoji_async import _transport


def test_the_package_and_the_user_agent_give_the_version_of_pyproject() -> None:
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    version = pyproject["project"]["version"]
    assert emoji_async.__version__ == version
    assert _transport._USER_AGENT.startswith(f"emoji-async/{version} ")
