"""The package's version, read once from its installed metadata.

``pyproject.toml`` is its one source; ``emoji_async.__version__`` and the
``User-Agent`` the client sends both come from here.
"""

from __future__ import annotations

import importlib.metadata

__all__ = ["VERSION"]

try:
    #: The distribution's version, as installed (``pip install -e .`` included).
    VERSION = importlib.metadata.version("emoji-async")
except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    VERSION = "0+unknown"
