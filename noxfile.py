"""The test suite under every Python the project supports, each in a venv of its own.

``nox`` runs it under all of them; ``make matrix`` under those besides the
default, which ``make test`` covers with the whole check. Arguments after
``--`` go to pytest: ``nox -s tests-3.13 -- tests/test_fuzz.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nox
from nox.logger import logger

#: The Pythons the project supports and tests (pyproject.toml's classifiers say the same).
PYTHONS = ("3.11", "3.12", "3.13")

# Why the interpreters are found here, not left to nox: nox looks for python3.12
# on PATH, and through pyenv's shims only for the versions pyenv has selected.
# Where pyenv is used, a shim of every installed version sits on PATH and fails
# unless its version is selected, and nox then skips the session (or fails it on
# CI) as if that Python were not installed. So for each version this file takes
# the first pythonX.Y on PATH that runs and says it is X.Y, else the newest X.Y.N
# that pyenv installed (under `pyenv root`, $PYENV_ROOT or ~/.pyenv, whether
# pyenv itself is on PATH or not), and shows it to nox as
# .nox/interpreters/pythonX.Y, a symbolic link put first on PATH. A version found
# nowhere is named, with where it was looked for, and its session fails.

ROOT = Path(__file__).resolve().parent
#: Where the interpreters found are linked, as ``pythonX.Y``, for nox to find first.
LINKS = ROOT / ".nox" / "interpreters"

nox.options.sessions = ["tests"]
# A Python that cannot be found is a failure, on a laptop as on CI, never a skip.
nox.options.error_on_missing_interpreters = True
# Nothing but the package registries is reachable: never fetch a Python build.
nox.options.download_python = "never"
nox.options.reuse_venv = "yes"


def _ask(*argv: str | Path) -> list[str] | None:
    """The lines a program printed, or ``None`` when it could not run or failed."""
    try:
        done = subprocess.run(  # noqa: S603 - interpreters and pyenv found here, no shell
            argv, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.splitlines() if done.returncode == 0 else None


def _probe(candidate: Path, version: str) -> Path | None:
    """The interpreter behind ``candidate`` if it starts and is Python ``version``.

    What gets linked is the file that really runs, all links followed, so the
    link does not change meaning with the directory nox runs in (a pyenv shim
    reads ``.python-version`` there) and never points back into ``LINKS``: a
    shim whose version pyenv has not selected tries the rest of ``PATH``, where
    a nox started by this one (``--parallel``) finds our own links.
    """
    said = _ask(
        candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"
    )
    if not said or said[0].partition(" ")[0] != version:
        return None
    try:
        real = Path(said[0].partition(" ")[2] or candidate).resolve(strict=True)
    except (OSError, RuntimeError):  # gone since, or a loop of links
        return None
    return None if real.parent == LINKS else real


def _path_folders() -> Iterator[Path]:
    # Not our own links: a nox started by this one (nox --parallel) reads this file again.
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and Path(folder) != LINKS:
            yield Path(folder)


def _pyenv_roots() -> list[Path]:
    """Where pyenv keeps its versions: ``pyenv root``, ``$PYENV_ROOT``, ``~/.pyenv``."""
    roots: list[Path] = []
    pyenv = shutil.which("pyenv")
    said = _ask(pyenv, "root") if pyenv is not None else None
    if said:
        roots.append(Path(said[0]))
    if os.environ.get("PYENV_ROOT"):
        roots.append(Path(os.environ["PYENV_ROOT"]))
    roots.append(Path.home() / ".pyenv")
    return list(dict.fromkeys(roots))


def _from_pyenv(version: str, roots: list[Path]) -> Path | None:
    """The newest X.Y.N pyenv installed that runs (not a -dev build, not a virtualenv)."""
    release = re.compile(rf"{re.escape(version)}\.(\d+)")
    found: list[tuple[int, Path]] = []
    for root in roots:
        versions = root / "versions"
        if not versions.is_dir():
            continue
        for entry in versions.iterdir():
            match = release.fullmatch(entry.name)
            if match is not None:
                found.append((int(match[1]), entry / "bin" / f"python{version}"))
    for _, executable in sorted(found, reverse=True):
        if (real := _probe(executable, version)) is not None:
            return real
    return None


def interpreter(version: str) -> Path | None:
    """A working ``pythonX.Y``: the first on ``PATH`` that runs, else pyenv's newest."""
    name = f"python{version}"
    for folder in _path_folders():
        candidate = folder / name
        if candidate.is_file() and (real := _probe(candidate, version)) is not None:
            return real
    return _from_pyenv(version, _pyenv_roots())


def _link(version: str, executable: Path | None) -> None:
    link = LINKS / f"python{version}"
    if executable is None:
        link.unlink(missing_ok=True)  # a Python removed since the last run is missing now
        return
    if link.is_symlink() and Path(os.readlink(link)) == executable:
        return
    # Made aside and renamed over the old one: two nox processes may link at once.
    fresh = LINKS / f".{link.name}.{os.getpid()}"
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(executable)
    fresh.replace(link)


def _show_interpreters_to_nox() -> None:
    LINKS.mkdir(parents=True, exist_ok=True)
    for version in PYTHONS:
        found = interpreter(version)
        _link(version, found)
        if found is None:
            looked = ", ".join(str(root / "versions") for root in _pyenv_roots())
            logger.error(
                f"python{version} not found: no python{version} on PATH runs, and no "
                f"{version}.N under pyenv ({looked}); install it (pyenv install {version}) "
                f"or put a python{version} on PATH; its session fails."
            )
    folders = [str(LINKS), *map(str, _path_folders())]
    os.environ["PATH"] = os.pathsep.join(folders)


_show_interpreters_to_nox()


@nox.session(python=PYTHONS, allow_parallel=True)
def tests(session: nox.Session) -> None:
    """The pytest suite, every warning an error, on the package with its test extra."""
    session.install("--quiet", "-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)
