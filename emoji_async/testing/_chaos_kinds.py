"""The kinds of chaos, in the order their dice are rolled, and where each can happen.

The order of ``ChaosKind`` is the order every request rolls its dice: a kind
added later is appended, never sorted in, so the draws of the older kinds stay
where they were and an older seed plays the same faults (``_chaos_source``).
The transit kinds come first; the hostile kinds (``HOSTILE_KINDS``) after them.
"""

from __future__ import annotations

import typing
from typing import Literal

__all__ = [
    "CHAOS_ENDPOINTS",
    "CHAOS_KINDS",
    "HOSTILE_KINDS",
    "KINDS_AT",
    "TRANSIT_KINDS",
    "ChaosKind",
]

ChaosKind = Literal[
    "server_error",
    "server_error_retry_after",
    "server_error_after",
    "reset_before",
    "reset_after",
    "slow_before",
    "slow_after",
    "truncated",
    "missing_field",
    "throttle_burst",
    "cut_download",
    # Appended, not sorted in: each request rolls the dice in this order, so new
    # kinds at the end leave the draws of the older ones where they were.
    "late",
    "odd_status_after",
    # The hostile kinds: a service misbehaving on purpose. Rolled on a die of their own.
    "huge_answer",
    "gzip_bomb",
    "drip",
    "huge_retry_after",
    "billing",
    "echoed_key",
    "odd_task_id",
    "gzip_download",
]
#: Every kind, in the order the dice are rolled.
CHAOS_KINDS: tuple[ChaosKind, ...] = typing.get_args(ChaosKind)
#: The kinds of a hostile service, off in ``Chaos.uniform`` unless ``hostile=True``.
HOSTILE_KINDS: tuple[ChaosKind, ...] = CHAOS_KINDS[CHAOS_KINDS.index("huge_answer") :]
#: The kinds of faults in transit, each request's first dice.
TRANSIT_KINDS: tuple[ChaosKind, ...] = CHAOS_KINDS[: CHAOS_KINDS.index("huge_answer")]

_API = ("detect", "submit", "query", "list", "cancel", "upload_policy")

#: The hostile kinds of every API endpoint; a submit also sees ``odd_task_id``.
_API_HOSTILE: tuple[ChaosKind, ...] = (
    "huge_answer",
    "gzip_bomb",
    "drip",
    "huge_retry_after",
    "billing",
    "echoed_key",
)


def _api_kinds(endpoint: str) -> tuple[ChaosKind, ...]:
    # A late query or list would change nothing when it is finally processed: only a
    # submit's late effect (a task nobody was told about) is worth the dice.
    left_out = ("cut_download",) if endpoint == "submit" else ("cut_download", "late")
    transit = tuple(k for k in TRANSIT_KINDS if k not in left_out)
    odd_id: tuple[ChaosKind, ...] = ("odd_task_id",) if endpoint == "submit" else ()
    return transit + _API_HOSTILE + odd_id


#: The endpoints chaos can play on, and what can happen on each.
KINDS_AT: dict[str, tuple[ChaosKind, ...]] = {
    **{endpoint: _api_kinds(endpoint) for endpoint in _API},
    # The upload host stores a file or not: no body for the client to misread, no
    # bursts, and no API answers to stand out among.
    "upload": tuple(
        k
        for k in TRANSIT_KINDS
        if k
        not in (
            "truncated",
            "missing_field",
            "throttle_burst",
            "cut_download",
            "late",
            "odd_status_after",
        )
    ),
    "download": (
        "server_error",
        "server_error_retry_after",
        "reset_before",
        "slow_before",
        "cut_download",
        "drip",
        "gzip_download",
    ),
}
CHAOS_ENDPOINTS: frozenset[str] = frozenset(KINDS_AT)
