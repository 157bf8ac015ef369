"""The dice of chaos: the ``FaultSource`` built from a ``Chaos`` setting.

Each request (after authentication) to one of ``Chaos.endpoints`` rolls one die
per kind that can happen there, each with that kind's probability; if several
come up, one of them is chosen at random. A request gets at most one fault, so
with probabilities ``p_k`` the chance of some fault is ``1 - prod(1 - p_k)``.

Reproducibility: every endpoint draws from its own generator, seeded with
``(seed, endpoint)``, so the n-th request to an endpoint gets the same fault
whatever the other endpoints saw: the same seed and the same requests give
the same faults, even when requests to different endpoints interleave
differently from run to run.

The hostile kinds (``HOSTILE_KINDS``: huge answers, gzip bombs, drips, huge
``Retry-After``, billing refusals, echoed keys, odd task ids, gzip-encoded
videos) roll their dice on a second generator, seeded with
``(seed, endpoint, "hostile")``: the transit kinds draw exactly what they drew
before those kinds existed, so an older seed plays the same faults as before,
and turning hostile kinds on only replaces some of them (when the dice of both
come up, each kind that came up is as likely to be played).

The tables below say what each kind's fault looks like (which statuses, codes,
fields and ids its die chooses among).
"""

from __future__ import annotations

import random

from ._chaos import Chaos
from ._chaos_kinds import HOSTILE_KINDS, ChaosKind
from ._faults import Fault

__all__ = ["ChaosSource"]

#: Endpoints that share one 429 burst, as they share the client's pacing.
_GROUP = {"query": "tasks", "list": "tasks", "cancel": "tasks"}

#: The 5xx answers drawn from (docs/wire.md, "Errors"; a 502 is the gateway's).
_SERVER_ERRORS = (
    (500, "InternalError"),
    (500, "SystemError"),
    (500, "ModelServingError"),
    (502, "InternalError"),
    (503, "ServiceUnavailable"),
    (503, "ModelUnavailable"),
)

#: The answers of ``odd_status_after``: none is in the protocol (docs/wire.md, "Errors").
_ODD_STATUSES = (302, 307, 408)

#: The share of ``late`` faults that drop the connection instead of answering a 5xx.
_LATE_DROPPED = 0.25

#: The fields a ``missing_field`` fault may drop, per endpoint (each present in a 200).
_DROPPABLE: dict[str, tuple[str, ...]] = {
    "detect": ("output", "output.bbox_face", "output.ext_bbox_face"),
    "submit": ("output", "output.task_id", "output.task_status"),
    "query": ("output", "output.task_id", "output.task_status"),
    "list": ("data", "total"),
    "cancel": ("request_id",),
    "upload_policy": ("data", "data.upload_dir"),
}

#: Bytes kept by a cut or truncated body: never (almost) all, never (almost) none.
_KEEP_RANGE = (0.1, 0.9)

#: The account's refusals ``billing`` draws from (docs/wire.md, "Errors").
_BILLING = (
    (429, "PrepaidBillOverdue"),
    (429, "PostpaidBillOverdue"),
    (429, "CommodityNotPurchased"),
    (429, "Throttling.AllocationQuota"),
    (400, "Arrearage"),
)

#: The ids ``odd_task_id`` shows (``{task_id}``: the real one): each leaves ``/tasks/``
#: or cannot be a path segment at all.
_ODD_TASK_IDS = (
    "..",
    ".",
    "../{task_id}",
    "{task_id}/cancel",
    "{task_id}" + "0" * 10_240,
)


class ChaosSource:
    """The ``FaultSource`` of one ``Chaos`` setting: dice per endpoint, bursts per group.

    ``time_scale`` is the simulator's: it turns the provider seconds of
    ``Chaos.late_after`` into the real delay of a ``late`` fault.
    """

    def __init__(self, chaos: Chaos, *, time_scale: float = 1.0) -> None:
        self.chaos = chaos
        self.time_scale = time_scale
        self._dice: dict[str, random.Random] = {}
        self._bursts: dict[str, int] = {}

    def _die(self, endpoint: str, *, hostile: bool = False) -> random.Random:
        name = f"{endpoint}/hostile" if hostile else endpoint
        die = self._dice.get(name)
        if die is None:
            # A string seed is hashed with SHA-512, so it is the same in every process.
            die = self._dice[name] = random.Random(f"{self.chaos.seed}/{name}")
        return die

    def take(self, endpoint: str) -> Fault | None:
        """This request's fault: the rest of a burst, a kind whose die came up, or ``None``."""
        kinds = self.chaos.kinds_at(endpoint)
        if not kinds:
            return None
        group = _GROUP.get(endpoint, endpoint)
        if self._bursts.get(group, 0) > 0:
            self._bursts[group] -= 1
            return _throttled(endpoint)
        transit = self._transit(kinds, endpoint, group)
        die = self._die(endpoint, hostile=True)
        probabilities = self.chaos.probabilities
        odd = [k for k in kinds if k in HOSTILE_KINDS and die.random() < probabilities[k]]
        if not odd:
            return transit[1] if transit is not None else None
        # Each kind that came up is as likely as the others to be the one played.
        hits = len(transit[0]) if transit is not None else 0
        index = die.randrange(hits + len(odd))
        if transit is not None and index < hits:
            return transit[1]
        kind = odd[0] if len(odd) == 1 else die.choice(odd)
        return self._hostile(kind, endpoint, die)

    def _transit(
        self, kinds: tuple[ChaosKind, ...], endpoint: str, group: str
    ) -> tuple[list[ChaosKind], Fault] | None:
        """The kinds in transit that came up, and the fault drawn among them; ``None``: none.

        Drawn whatever the hostile dice say, so they change nothing here: a
        request gets the same fault in transit with or without them, unless a
        hostile one is played instead (a burst drawn then starts all the same).
        """
        die = self._die(endpoint)
        probabilities = self.chaos.probabilities
        # Every die is rolled, whatever comes up, so each request uses the same draws.
        hits = [k for k in kinds if k not in HOSTILE_KINDS and die.random() < probabilities[k]]
        if not hits:
            return None
        kind = hits[0] if len(hits) == 1 else die.choice(hits)
        if kind == "throttle_burst":
            self._bursts[group] = self.chaos.burst_length - 1
        return hits, self._fault(kind, endpoint, die)

    def _hostile(self, kind: ChaosKind, endpoint: str, die: random.Random) -> Fault:
        chaos = self.chaos
        if kind == "huge_answer":
            return Fault(endpoint, "huge", size=chaos.huge_bytes, chunked=die.random() < 0.5)
        if kind == "gzip_bomb":
            return Fault(endpoint, "gzip_bomb", size=chaos.bomb_bytes, chunked=die.random() < 0.5)
        if kind == "drip":
            return Fault(endpoint, "drip", interval=chaos.drip_interval, delay=chaos.drip_seconds)
        if kind == "huge_retry_after":
            return Fault(
                endpoint,
                "status",
                status=429,
                code="Throttling.RateQuota",
                retry_after=chaos.huge_wait,
            )
        if kind == "billing":
            status, code = die.choice(_BILLING)
            return Fault(endpoint, "status", status=status, code=code)
        if kind == "echoed_key":
            return Fault(endpoint, "echo_key", status=502, after_processing=die.random() < 0.5)
        if kind == "odd_task_id":
            return Fault(endpoint, "odd_task_id", task_id=die.choice(_ODD_TASK_IDS))
        return Fault(endpoint, "gzip")

    def _fault(self, kind: ChaosKind, endpoint: str, die: random.Random) -> Fault:
        if kind == "throttle_burst":
            return _throttled(endpoint)
        if kind in ("server_error", "server_error_retry_after", "server_error_after"):
            status, code = die.choice(_SERVER_ERRORS)
            return Fault(
                endpoint,
                "status",
                status=status,
                code=code,
                retry_after=self.chaos.retry_after if kind == "server_error_retry_after" else None,
                after_processing=kind == "server_error_after",
            )
        if kind in ("reset_before", "reset_after"):
            return Fault(endpoint, "reset", after_processing=kind == "reset_after")
        if kind in ("slow_before", "slow_after"):
            return Fault(
                endpoint,
                "delay",
                delay=self.chaos.slow_seconds,
                after_processing=kind == "slow_after",
            )
        if kind == "late":
            status, code = die.choice(_SERVER_ERRORS)
            if die.random() < _LATE_DROPPED:
                status = 0
            delay = die.uniform(*self.chaos.late_after) * self.time_scale
            return Fault(endpoint, "late", status=status, code=code, delay=delay)
        if kind == "odd_status_after":
            return Fault(
                endpoint, "status", status=die.choice(_ODD_STATUSES), after_processing=True
            )
        if kind == "missing_field":
            return Fault(endpoint, "drop_field", field=die.choice(_DROPPABLE[endpoint]))
        keep = die.uniform(*_KEEP_RANGE)
        return Fault(endpoint, "truncate" if kind == "truncated" else "cut", keep=keep)


def _throttled(endpoint: str) -> Fault:
    return Fault(endpoint, "status", status=429, code="Throttling.RateQuota")
