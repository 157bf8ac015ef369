"""The parts a batch is made of hold their own rules: the stop at a refused account, the budget."""

from __future__ import annotations

import pytest

from emoji_async import AuthenticationError, Budget, EmojiJob, RateLimitError
from emoji_async._batch_refusal import AccountGate, _Unsent
from emoji_async._batch_spending import BatchSpending, SkippedForBudget


def _refusal() -> AuthenticationError:
    return AuthenticationError("bad key", http_status=401, code="InvalidApiKey", request_id="r-1")


def test_the_gate_lets_requests_go_until_the_account_is_refused_then_holds_them_back() -> None:
    gate = AccountGate()
    gate.go_ahead()
    gate.refused(RateLimitError("slow down", http_status=429, code="Throttling", request_id=None))
    gate.go_ahead()  # throttling refuses a request, not the account
    first = _refusal()
    gate.refused(first)
    with pytest.raises(_Unsent) as held:
        gate.go_ahead()
    assert held.value.code == "InvalidApiKey"
    gate.refused(held.value)  # a request held back is no new refusal
    gate.refused(_refusal())
    assert gate.refusal is first


def test_a_job_the_budget_cannot_cover_is_skipped_and_so_are_the_ones_after_it() -> None:
    spending = BatchSpending(Budget(detections=1))
    job = EmojiJob("https://example.com/a.png", "mengwa_kaixin")
    spending.reserve(job, "a", None, detected=False)
    with pytest.raises(SkippedForBudget):
        spending.reserve(job, "b", None, detected=False)
    spending.release("a")
    with pytest.raises(SkippedForBudget):
        spending.reserve(job, "c", None, detected=True)


def test_a_job_whose_boxes_are_known_holds_no_detection() -> None:
    spending = BatchSpending(Budget(detections=0))
    job = EmojiJob("https://example.com/a.png", "mengwa_kaixin")
    spending.reserve(job, "a", None, detected=True)
    spending.release("a")
    assert spending.ledger.spent.detections == 0
