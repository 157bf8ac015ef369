"""The ``emoji-async`` command line: argument parsing and printing, no business logic.

Commands: ``templates``, ``detect``, ``generate``, ``batch``, ``status``,
``cancel``, ``list`` (those that talk to the service read the key from
``DASHSCOPE_API_KEY`` only), and ``simulator`` and ``demo`` for local runs.
Exit status: 0 success, 1 a failed command, 2 a usage error, 3 (``batch``) the
service refused the account, 130 Ctrl-C.

The command line needs rich (its progress bar and tables), which the library
does not: it comes with the ``cli`` extra, ``pip install 'emoji-async[cli]'``.
This module imports none of the commands until :func:`main` has found it, so
that without it the command says what to install instead of a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

from .. import EmojiError
from ._common import INTERRUPTED, CommandError
from ._jobsfile import JobsFileError

__all__ = ["main"]

#: What to say when rich is not installed.
NO_RICH = (
    "the command line needs rich, which the library alone does not install:"
    " pip install 'emoji-async[cli]'"
)


def _fail(message: str, status: int) -> int:
    print(f"emoji-async: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is the return value.

    0 success, 1 a failed command (an error of the service or the client, a
    missing key, rich not installed), 2 a usage error (a bad option, a bad jobs
    file), 130 Ctrl-C.
    """
    if importlib.util.find_spec("rich") is None:
        return _fail(NO_RICH, 1)
    from ._parser import build_parser  # the commands, and rich with them

    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except JobsFileError as exc:
        return _fail(str(exc), 2)
    except CommandError as exc:
        return _fail(str(exc), exc.status)
    except EmojiError as exc:
        return _fail(str(exc), 1)
    except OSError as exc:  # a directory or journal that cannot be written
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        print("emoji-async: interrupted", file=sys.stderr)
        return INTERRUPTED
    return status
