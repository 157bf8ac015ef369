"""When a task is polled while task-finished notifications are on: the safety net's schedule.

With notifications on, a waiter sleeps until the notification for its task
arrives and confirms it with one query. Polls remain only as a safety net,
for an event that is late (the provider documents about 1-90 s) or lost. The
net is placed by the run times the client has learned
(:class:`~emoji_async._adaptive.DurationModel`)::

    first safety poll:  (task's start) + lo + start * (hi - lo) + grace
    after it, wait:     clamp((growth - 1) * overdue, grace, cap)

``lo`` and ``hi`` are the earliest and latest plausible run times on the
account (every run seen, with a margin; the documented 60-300 s until a few
tasks were seen). Not the template's own, narrower range that adaptive
polling narrows in on: a net that came before the event for every task a
little longer than its template's runs so far would cost a query each time,
and whether run times follow the template at all is not documented.
``overdue`` is how long ago the first safety poll was due. ``start`` places the
net in that window: 1 (the default) waits out the whole window, 0 begins at
its earliest end and, with a small ``grace`` and ``growth``, polls through
it much as adaptive polling does, the events only saving the polls after
they come: the knob that trades requests for lag when events are slow.
With ``growth=2`` the polls after the first come
``grace`` apart twice, then each twice as far from the expected end as the
one before, until they are ``cap`` apart: a task far slower than any seen, or
stuck (the provider fails it after 3 h), costs a poll every ``cap`` seconds.

Why the defaults are what they are:

* ``grace=10`` s: a task ends by ``hi``, and an event usually arrives within a
  few seconds of the end (1-5 s where deliveries are fast). Ten seconds past
  the latest plausible end, the event has come in nearly every case, so a job
  costs its submit and the one query that confirms the event: no poll. When
  the event is slow (up to 90 s) or lost, the safety poll sees the end at most
  ``hi - d + grace`` late for a task of ``d`` seconds, with one query as
  well.
* ``start=1``: with events, a poll inside the window would mostly find the
  task still running; the window is waited out.
* ``growth=2``: a task that outlives ``hi`` is slower than every task seen;
  doubling the distance each time finds it within a factor of two of its real
  end for a handful of polls (eight over five minutes past ``hi``, where a
  poll every 15 s makes twenty).
* ``cap=120`` s: the longest the net ever sleeps; a lost event then costs at
  most two minutes, eight times the 15 s a plain poll waits at most, and a
  stuck task a query every two minutes.

Like every policy it is scaled with the client's clock (:meth:`NotifyPolicy.scaled`).
"""

from __future__ import annotations

import attrs

from ._checks import at_least, in_range, positive

__all__ = ["NotifyPolicy", "safety_wait"]

_SECONDS = positive("a finite number of seconds > 0")
_GROWTH = at_least(1, "a finite factor >= 1")
_FRACTION = in_range(0, 1)


@attrs.frozen(kw_only=True)
class NotifyPolicy:
    """Waiting on task-finished notifications, with polls as a sparse safety net (seconds).

    Pass it to :class:`EmojiClient` as ``notifications=`` and deliver the
    events to :attr:`EmojiClient.notices` (the receiver of
    :mod:`emoji_async.notify` does). A waiter then wakes on its task's event
    and confirms it with one query; it polls on its own first ``grace``
    seconds after the latest plausible end of its task (or earlier in the
    window of plausible ends, ``start``: 0 its earliest, 1 its latest), then
    at growing intervals (``growth``) up to ``cap`` apart, so a lost event
    costs latency, never a job.
    """

    start: float = attrs.field(default=1.0, validator=_FRACTION)
    grace: float = attrs.field(default=10.0, validator=_SECONDS)
    growth: float = attrs.field(default=2.0, validator=_GROWTH)
    cap: float = attrs.field(default=120.0, validator=_SECONDS)

    def scaled(self, factor: float) -> NotifyPolicy:
        """The same policy with every duration multiplied by ``factor`` (not the growth)."""
        return attrs.evolve(self, grace=self.grace * factor, cap=self.cap * factor)


def safety_wait(policy: NotifyPolicy, elapsed: float, lo: float, hi: float) -> float:
    """Seconds until the safety poll of a task that has run ``elapsed``, plausibly ``lo``-``hi`` s.

    The formula of the module docstring. It depends on nothing but the task's
    age, so a watcher that a refuted notification woke, or a task watched
    again, goes on where the net was.
    """
    first = lo + policy.start * (hi - lo) + policy.grace
    if elapsed < first:
        return first - elapsed
    overdue = elapsed - first
    return min(policy.cap, max(policy.grace, (policy.growth - 1) * overdue))
