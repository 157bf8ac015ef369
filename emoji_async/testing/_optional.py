"""The optional dependencies (``emoji-async[video]``): whether each can be imported here.

PyAV decodes input images and encodes videos and sample PNGs; numpy draws the
sample portraits and moves the portrait in a result video. Without them the
simulator still serves every endpoint: it skips the pixel checks, and serves
the cartoon video or a placeholder instead.
"""

from __future__ import annotations

import functools
import importlib

__all__ = ["has_av", "has_numpy"]


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


@functools.cache
def has_av() -> bool:
    """Whether PyAV can be imported (checked once)."""
    return _importable("av")


@functools.cache
def has_numpy() -> bool:
    """Whether numpy can be imported (checked once)."""
    return _importable("numpy")
