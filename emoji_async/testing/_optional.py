"""The optional dependencies (``emoji-async[video]``): whether each can be imported here.

PyAV decodes input images and encodes videos and sample PNGs; numpy draws the
sample portraits and moves the portrait in a result video. Without them the
simulator still serves every endpoint: it skips the pixel checks, and serves
the cartoon video or a placeholder instead.
"""

from __future__ import annotations

import functools
import importlib

__all__ = ["VIDEO_EXTRA", "has_av", "has_numpy", "missing_extras"]

#: How to install what the simulator needs for real videos and decoded images.
VIDEO_EXTRA = "pip install 'emoji-async[video]'"


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


def missing_extras(*, render_videos: bool = True) -> str | None:
    """What a simulator cannot do here for want of PyAV or numpy, and how to fix it; or ``None``.

    ``render_videos=False`` asks for placeholders anyway, so their absence is
    not worth a word then.
    """
    lacks: list[str] = []
    if not has_av():
        if render_videos:
            lacks.append("result videos are short text placeholders, not MP4 files")
        lacks.append("input images are not decoded, only their headers read")
        lacks.append("the sample portraits are not served")
        missing = "PyAV is"
    elif not has_numpy():
        if render_videos:
            lacks.append("result videos show a cartoon face, not the portrait")
        lacks.append("the sample portraits are not served")
        missing = "numpy is"
    else:
        return None
    return f"{missing} not installed: {'; '.join(lacks)}. For real videos: {VIDEO_EXTRA}"
