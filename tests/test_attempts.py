"""What a listing proves about who made which task (the ledger, on a clock of its own)."""

from __future__ import annotations

from emoji_async import TaskStatus, TaskSummary
from emoji_async._attempts import Attempt, AttemptState, Hint
from emoji_async._ledger import Ledger
from emoji_async._verdicts import Ambiguous, Nothing, Owned


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> float:
        self.now += seconds
        return self.now


def task(task_id: str, status: TaskStatus = TaskStatus.PENDING) -> TaskSummary:
    return TaskSummary(task_id=task_id, status=status, raw_status=status.value)


def setup() -> tuple[Ledger, Clock]:
    clock = Clock()
    return Ledger(clock), clock


def ghost(ledger: Ledger, owner: str) -> Attempt:
    """An attempt whose answer was lost and whose job sent it again."""
    attempt = ledger.begin(owner, owner)
    ledger.lost(attempt, None)
    ledger.ghost(attempt)
    return attempt


def test_a_task_only_the_lost_attempt_may_have_made_is_its_own() -> None:
    ledger, clock = setup()
    attempt = ledger.begin("ada", "ada")
    ledger.lost(attempt, None)
    ledger.observe([task("t1")], clock.tick())
    assert ledger.verdict(attempt) == Owned("t1")


def test_a_task_listed_before_the_attempt_left_is_never_its_own() -> None:
    ledger, clock = setup()
    ledger.observe([task("older")], clock.tick())
    attempt = ledger.begin("ada", "ada")
    clock.tick()
    ledger.left(attempt)
    ledger.lost(attempt, None)
    ledger.observe([task("older")], clock.tick())
    assert ledger.verdict(attempt) == Nothing()


def test_a_ghost_of_other_inputs_makes_the_match_unprovable() -> None:
    ledger, clock = setup()
    ghost(ledger, "grace")
    clock.tick()
    attempt = ledger.begin("ada", "ada")
    ledger.lost(attempt, None)
    ledger.observe([task("t1"), task("t2", TaskStatus.RUNNING)], clock.tick())
    verdict = ledger.verdict(attempt)
    assert isinstance(verdict, Ambiguous)
    assert [t.task_id for t in verdict.free] == ["t1"]
    assert [t.task_id for t in verdict.billable] == ["t2"]
    assert verdict.owners == ("ada", "grace")
    assert not verdict.foreign


def test_a_ghost_of_the_same_inputs_is_no_rival() -> None:
    ledger, clock = setup()
    ghost(ledger, "ada")
    attempt = ledger.begin("ada", "ada")
    ledger.lost(attempt, None)
    ledger.observe([task("t1")], clock.tick())
    assert ledger.verdict(attempt) == Owned("t1")


def test_the_first_characters_of_a_task_id_name_the_task_whatever_the_rivals() -> None:
    ledger, clock = setup()
    ghost(ledger, "grace")
    attempt = ledger.begin("ada", "ada")
    ledger.lost(attempt, Hint("4909100c-5ff8", complete=False))
    ledger.observe([task("4909100c-5ff8-aaaa"), task("77777777-0000")], clock.tick())
    assert ledger.verdict(attempt) == Owned("4909100c-5ff8-aaaa")
    # Too few characters name nothing: the usual rules apply.
    other = ledger.begin("alan", "alan")
    ledger.lost(other, Hint("4909", complete=False))
    ledger.observe([task("49090000-1111")], clock.tick())
    assert isinstance(ledger.verdict(other), Ambiguous)


def test_more_tasks_than_unknown_attempts_are_someone_elses_and_left_alone() -> None:
    ledger, clock = setup()
    attempt = ledger.begin("ada", "ada")
    ledger.lost(attempt, None)
    ledger.observe([task("t1"), task("t2")], clock.tick())
    verdict = ledger.verdict(attempt)
    assert isinstance(verdict, Ambiguous)
    assert verdict.foreign
    assert verdict.free == ()  # nothing of theirs is to be cancelled


def test_an_attempt_on_the_wire_is_a_rival_too() -> None:
    ledger, clock = setup()
    attempt = ledger.begin("ada", "ada")
    ledger.lost(attempt, None)
    ledger.begin("grace", "grace")  # sending, its answer not back yet
    ledger.observe([task("t1")], clock.tick())
    verdict = ledger.verdict(attempt)
    assert isinstance(verdict, Ambiguous)
    assert verdict.owners == ("ada", "grace")
    assert ledger.orphans() == []  # and what it may have made is never swept


def test_an_orphan_is_a_task_only_ghosts_may_have_made() -> None:
    ledger, clock = setup()
    ghost(ledger, "grace")
    made = ledger.begin("grace", "grace")
    ledger.created(made, "held")
    ledger.observe([task("held"), task("late")], clock.tick())
    [(orphan, owners)] = ledger.orphans()
    assert orphan.task_id == "late"
    assert owners == ("grace",)
    # While an attempt is still being settled, what it may have made is left to it.
    clock.tick()
    open_attempt = ledger.begin("ada", "ada")
    ledger.lost(open_attempt, None)
    ledger.observe([task("new")], clock.tick())
    assert [t.task_id for t, _ in ledger.orphans()] == ["late"]
    ledger.orphaned("late")
    assert ledger.orphans() == []
    assert not ledger.is_known("new")


def test_what_an_earlier_run_saw_counts_once_the_task_is_listed() -> None:
    ledger, clock = setup()
    ledger.saw("older", clock.now - 10)
    attempt = ledger.begin("ada", "ada")
    ledger.lost(attempt, None)
    ledger.observe([task("older")], clock.tick())
    assert ledger.seen_at("older") == clock.now - 11
    assert ledger.verdict(attempt) == Nothing()


def test_known_attempts_are_let_go_and_ghosts_kept() -> None:
    ledger, _ = setup()
    made = ledger.begin("ada", "ada")
    ledger.created(made, "t1")
    refused = ledger.begin("ada", "ada")
    ledger.nothing(refused)
    sent_again = ghost(ledger, "grace")
    assert ledger.unknown() == [sent_again]
    assert sent_again.state is AttemptState.GHOST
    assert ledger.has_ghosts
    assert ledger.is_known("t1")
