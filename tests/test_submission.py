"""An unsettled submit is a plain value; the error its user gets is built from it."""

from __future__ import annotations

import datetime as dt

from emoji_async import ResponseLostError, SubmissionUncertainError
from emoji_async._attempts import Hint
from emoji_async._submission import Unsettled

SENT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
INPUTS = {"image_url": "https://example.com/p.png", "driven_id": "mengwa_kaixin"}


def lost_answer() -> SubmissionUncertainError:
    error = SubmissionUncertainError(
        sent_at=SENT,
        inputs=INPUTS,
        reason="ResponseLostError: cut",
        task_id_seen="4909100c-5ff8",
        task_id_complete=False,
    )
    error.__cause__ = ResponseLostError("cut")
    return error


def test_a_lost_answer_keeps_what_was_sent_its_cause_and_its_hint() -> None:
    unsettled = Unsettled.lost(lost_answer())
    assert unsettled.sent_at == SENT
    assert unsettled.inputs == INPUTS
    assert unsettled.reason == "ResponseLostError: cut"
    assert isinstance(unsettled.cause, ResponseLostError)
    assert unsettled.hint == Hint("4909100c-5ff8", complete=False)


def test_an_uncertain_submit_names_why_and_its_candidates() -> None:
    error = Unsettled.lost(lost_answer()).uncertain("no luck", ["t1", "t2"])
    assert error.sent_at == SENT
    assert error.inputs == INPUTS
    assert error.reason == "ResponseLostError: cut; no luck"
    assert error.candidates == ("t1", "t2")


def test_a_submit_given_up_raises_the_failure_that_lost_its_answer() -> None:
    unsettled = Unsettled.lost(lost_answer())
    assert unsettled.given_up() is unsettled.cause


def test_a_submit_given_up_without_a_cause_is_uncertain_with_its_hint() -> None:
    unsettled = Unsettled(sent_at=SENT, inputs=INPUTS, reason="why", hint=Hint("abc", True))
    error = unsettled.given_up()
    assert isinstance(error, SubmissionUncertainError)
    assert error.reason == "why"
    assert (error.task_id_seen, error.task_id_complete) == ("abc", True)
