"""The ``emoji-async`` command line: argument parsing and printing, no business logic.

Commands: ``templates``, ``detect``, ``generate``, ``batch``, ``status``,
``cancel``, ``list`` (those that talk to the service read the key from
``DASHSCOPE_API_KEY`` only), and ``simulator`` and ``demo`` for local runs.
Exit status: 0 success, 1 a failed command, 2 a usage error, 3 (``batch``) the
service refused the account, 130 Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .._errors import EmojiError
from ._common import INTERRUPTED, CommandError
from ._jobsfile import JobsFileError
from ._parser import build_parser

__all__ = ["main"]


def _fail(message: str, status: int) -> int:
    print(f"emoji-async: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is the return value.

    0 success, 1 a failed command (an error of the service or the client, a
    missing key), 2 a usage error (a bad option, a bad jobs file), 130 Ctrl-C.
    """
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
