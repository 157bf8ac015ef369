"""What a batch spends, and a cap on it.

Two things are billed: every face detection (a rejected portrait included,
by ``usage.image_count``) and every successful video (by its whole seconds,
``usage.video_duration``). FAILED, CANCELED and UNKNOWN tasks bill nothing.

A :class:`Budget` caps a batch's billed video seconds and/or detections.
Before a job starts, it reserves the most it can still cost: a detection if
it needs one, and its template's video length. The provider documents only
"at most 5 s" (:data:`MAX_VIDEO_SECONDS`), so that is what a template is
reserved until one of its videos has been billed; from then on, the longest
``video_duration`` seen billed for it (in this run, or recorded in the
journal by an earlier one). The template table's lengths are inferred, and
are never trusted with the budget. The job starts only if that fits in what
is left once what was billed and what is reserved are taken off; otherwise
it and every job after it are *skipped* (reported, never failed), and the
batch starts no new work. As a job is billed, its reservation becomes the
actual cost, and what it did not use is released when it ends. A detection
sent again after its answer was lost may be billed twice: the second bill is
counted as it happens, past what the job reserved.

A job whose task may already exist (a resumed run's submitted job, or one
whose submit was sent without an answer) is always followed: its task will
bill whatever happens, so it is counted, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ._checks import at_least, count, optional
from ._templates import MAX_VIDEO_SECONDS

__all__ = ["Budget", "Ledger", "Prices", "Reservation", "Spending"]


_COUNT_OR_NONE = optional(count(0), "a whole number >= 0, or None")
_PRICE_OR_NONE = optional(at_least(0, "a finite price >= 0"))


@attrs.frozen(kw_only=True)
class Budget:
    """The most a batch may be billed: video seconds and/or detections (``None``: no cap)."""

    video_seconds: int | None = attrs.field(default=None, validator=_COUNT_OR_NONE)
    detections: int | None = attrs.field(default=None, validator=_COUNT_OR_NONE)


@attrs.frozen(kw_only=True)
class Prices:
    """Your unit prices, to turn what was billed into an estimated cost.

    ``video_second`` per billed second of video, ``detection`` per billed
    detection, in whatever currency you read them in. The client knows no
    prices of its own: the provider's change, and differ by account.
    """

    video_second: float | None = attrs.field(default=None, validator=_PRICE_OR_NONE)
    detection: float | None = attrs.field(default=None, validator=_PRICE_OR_NONE)


@attrs.frozen(kw_only=True)
class Spending:
    """What a batch was billed so far (this run and, with a journal, the runs before it).

    ``videos`` and ``video_seconds``: the successful videos and their billed
    seconds; ``detections``: the billed detections, rejections included;
    ``skipped``: the jobs this run did not start for the budget.
    """

    videos: int = 0
    video_seconds: int = 0
    detections: int = 0
    skipped: int = 0

    def cost(self, prices: Prices) -> float | None:
        """The estimated cost at ``prices``; ``None`` if something billed has no price."""
        total = 0.0
        for amount, price in (
            (self.video_seconds, prices.video_second),
            (self.detections, prices.detection),
        ):
            if amount and price is None:
                return None
            total += amount * (price or 0.0)
        return total


@attrs.define
class Reservation:
    """What one job may still be billed, held against the budget until it is."""

    detections: int
    video_seconds: int


class Ledger:
    """One batch's running totals, reservations, and the budget they are held to."""

    def __init__(
        self,
        budget: Budget | None,
        before: Spending = Spending(),
        *,
        billed_before: Iterable[tuple[str, int]] = (),
    ) -> None:
        self.budget = budget
        self._spent = before
        self._held = Reservation(0, 0)
        self.stopped = False
        #: The longest video seen billed per template (``billed_before``: earlier runs').
        self._longest: dict[str, int] = {}
        for driven_id, seconds in billed_before:
            self._saw(driven_id, seconds)

    def _saw(self, driven_id: str, seconds: int) -> None:
        if seconds > 0:
            self._longest[driven_id] = max(seconds, self._longest.get(driven_id, 0))

    def video_seconds_for(self, driven_id: str) -> int:
        """What a video of ``driven_id`` is reserved: the longest seen billed, else 5 s."""
        return self._longest.get(driven_id, MAX_VIDEO_SECONDS)

    @property
    def spent(self) -> Spending:
        """The totals so far."""
        return self._spent

    def reserve(self, *, detections: int, video_seconds: int, forced: bool) -> Reservation | None:
        """Hold a job's most possible cost; ``None`` (and no new work from now on) if it won't fit.

        ``forced``: the job's task may already exist, so it is held whatever is left.
        """
        if not forced and (self.stopped or not self._fits(detections, video_seconds)):
            self.stopped = True
            self._spent = attrs.evolve(self._spent, skipped=self._spent.skipped + 1)
            return None
        self._held.detections += detections
        self._held.video_seconds += video_seconds
        return Reservation(detections, video_seconds)

    def _fits(self, detections: int, video_seconds: int) -> bool:
        budget = self.budget
        if budget is None:
            return True
        for cap, spent, held, more in (
            (budget.detections, self._spent.detections, self._held.detections, detections),
            (
                budget.video_seconds,
                self._spent.video_seconds,
                self._held.video_seconds,
                video_seconds,
            ),
        ):
            if cap is not None and spent + held + more > cap:
                return False
        return True

    def detected(self, held: Reservation | None, billed: int) -> None:
        """A detection was billed ``billed`` images (a rejection too)."""
        if held is not None:
            used = min(held.detections, billed)
            held.detections -= used
            self._held.detections -= used
        self._spent = attrs.evolve(self._spent, detections=self._spent.detections + billed)

    def video(
        self, held: Reservation | None, seconds: int, *, driven_id: str | None = None
    ) -> None:
        """A task of ``driven_id`` succeeded, billed ``seconds`` of video."""
        if driven_id is not None:
            self._saw(driven_id, seconds)
        if held is not None:
            used = min(held.video_seconds, seconds)
            held.video_seconds -= used
            self._held.video_seconds -= used
        self._spent = attrs.evolve(
            self._spent,
            videos=self._spent.videos + 1,
            video_seconds=self._spent.video_seconds + seconds,
        )

    def release(self, held: Reservation | None) -> None:
        """The job ended: what it held and was not billed goes back to the budget."""
        if held is None:
            return
        self._held.detections -= held.detections
        self._held.video_seconds -= held.video_seconds
        held.detections = held.video_seconds = 0
