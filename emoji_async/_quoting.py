"""How an error quotes a value: its ``repr``, a long text cut in the middle.

Every message that names a value the caller gave goes through :func:`shown`, so
a 4,000-character path or an object whose ``repr`` raises never drowns or
replaces the error that quotes it. The command line quotes values the same way
(``emoji_async.shown``).
"""

from __future__ import annotations

__all__ = ["shortened", "shown"]


#: The ellipsis that stands for the middle of a shortened text.
_CUT = "..."


def shortened(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters in the middle, so its start and its file name stay.

    ``/home/ada/.../portraits/ada.png``: the file name (the part after the last
    ``/``) is kept whole even when that alone passes the limit.
    """
    if len(text) <= limit:
        return text
    head, slash, name = text.rpartition("/")
    tail = slash + name if head else text[-(limit // 2) :]
    keep = max(limit - len(tail) - len(_CUT), min(len(head), 10))
    return text[:keep] + _CUT + tail


def shown(value: object, limit: int = 80) -> str:
    """A value as an error quotes it: its ``repr``, a long text :func:`shortened` first.

    A value without a ``repr`` (an int past Python's int-to-str limit, 4300 digits,
    or an object whose ``__repr__`` raises) is named by its type: quoting a
    value must never replace the error that quotes it.
    """
    if isinstance(value, str):
        return repr(shortened(value, limit))
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} that cannot be shown>"
    return shortened(text, limit)
