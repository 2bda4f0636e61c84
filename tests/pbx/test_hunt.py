"""The hunt (DESIGN §1 step 2) with a fake clock: timeouts are exact here; the edge keeps
them within 50 ms."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.pbx.hunt import (
    Attempt,
    Availability,
    Cancel,
    Command,
    Connect,
    Finished,
    Hangup,
    Hunt,
    Result,
    Ring,
)

A, U, B = Availability.AVAILABLE, Availability.UNREGISTERED, Availability.BUSY


def _hunt(
    *availability: Availability, strategy: str = "hunt", member: float = 15, whole: float = 60
) -> Hunt:
    attempts = [Attempt(f"uuid-{i}", f"user{i}", a) for i, a in enumerate(availability)]
    return Hunt(attempts, strategy=strategy, member_timeout=member, answer_timeout=whole)


def _run_timers(hunt: Hunt, until: float) -> list[tuple[float, Command]]:
    out = []
    while (deadline := hunt.deadline()) is not None and deadline <= until:
        out += [(deadline, c) for c in hunt.on_timer(deadline)]
    return out


def test_first_member_answers() -> None:
    hunt = _hunt(A, A)
    assert hunt.start(0.0) == [Ring(0)]
    assert hunt.answered(0, 3.0) == [Connect(0), Finished(0, None, 0)]
    assert [a.result for a in hunt.attempts] == [Result.ANSWERED, Result.SKIPPED]
    assert hunt.deadline() is None


def test_second_member_rings_after_the_first_times_out_then_answers() -> None:
    hunt = _hunt(A, A, member=15, whole=60)
    hunt.start(100.0)
    assert _run_timers(hunt, 115.0) == [(115.0, Cancel(0)), (115.0, Ring(1))]
    assert hunt.attempts[0].result is Result.NO_ANSWER
    assert hunt.answered(1, 120.0)[-1] == Finished(0, None, 1)
    assert (hunt.attempts[1].started_at, hunt.attempts[1].ended_at) == (115.0, 120.0)


def test_answer_timeout_cuts_the_last_ring_short_and_skips_the_rest() -> None:
    hunt = _hunt(A, A, A, member=15, whole=20)
    hunt.start(0.0)
    events = _run_timers(hunt, 100.0)
    assert events == [
        (15.0, Cancel(0)), (15.0, Ring(1)), (20.0, Cancel(1)), (20.0, Finished(500, "no_answer")),
    ]  # fmt: skip
    assert [a.result for a in hunt.attempts] == [
        Result.NO_ANSWER, Result.NO_ANSWER, Result.SKIPPED,
    ]  # fmt: skip


def test_all_members_silent_ends_with_no_answer_after_each_was_tried_once() -> None:
    hunt = _hunt(A, A, member=10, whole=60)
    hunt.start(0.0)
    events = _run_timers(hunt, 100.0)
    assert events[-1] == (20.0, Finished(500, "no_answer"))


def test_unregistered_and_busy_members_are_skipped_at_once() -> None:
    hunt = _hunt(U, B, A)
    assert hunt.start(0.0) == [Ring(2)]
    assert [a.result for a in hunt.attempts[:2]] == [Result.UNREGISTERED, Result.BUSY]


@pytest.mark.parametrize(
    ("status", "result"),
    [(486, Result.BUSY), (600, Result.BUSY), (603, Result.REFUSED), (408, Result.NO_ANSWER),
     (480, Result.NO_ANSWER)],
)  # fmt: skip
def test_refusals_move_on_at_once(status: int, result: Result) -> None:
    hunt = _hunt(A, A)
    hunt.start(0.0)
    assert hunt.failed(0, status, 2.0) == [Ring(1)]
    assert (hunt.attempts[0].result, hunt.attempts[0].sip_status) == (result, status)


def test_nobody_available_is_no_member_available() -> None:
    assert _hunt(U, B).start(0.0) == [Finished(500, "no_member_available")]
    hunt = _hunt(A, U)
    hunt.start(0.0)
    assert hunt.failed(0, 486, 1.0) == [Finished(500, "no_member_available")]


def test_ring_strategy_rings_all_and_the_first_answer_cancels_the_others() -> None:
    hunt = _hunt(A, U, A, A, strategy="ring")
    assert hunt.start(0.0) == [Ring(0), Ring(2), Ring(3)]
    assert hunt.answered(2, 4.0) == [Connect(2), Cancel(0), Cancel(3), Finished(0, None, 2)]
    assert hunt.attempts[0].result is Result.CANCELED


def test_ring_strategy_times_out_per_member_and_as_a_whole() -> None:
    hunt = _hunt(A, A, strategy="ring", member=10, whole=30)
    hunt.start(0.0)
    events = _run_timers(hunt, 100.0)
    assert events == [(10.0, Cancel(0)), (10.0, Cancel(1)), (10.0, Finished(500, "no_answer"))]


def test_a_2xx_that_crosses_our_cancel_is_hung_up() -> None:
    hunt = _hunt(A, A, member=5)
    hunt.start(0.0)
    _run_timers(hunt, 5.0)
    assert hunt.answered(0, 5.01) == [Hangup(0)]  # member 0 was cancelled at 5 s
    assert hunt.answered(1, 6.0)[-1] == Finished(0, None, 1)
    assert hunt.answered(1, 6.5) == [Hangup(1)]  # a second 2xx after the end


def test_stop_cancels_with_canceled() -> None:
    hunt = _hunt(A, A)
    hunt.start(0.0)
    assert hunt.stop(1.0) == [Cancel(0), Finished(500, "canceled")]
    assert hunt.stop(2.0) == [] and hunt.on_timer(100.0) == []


@settings(max_examples=300, deadline=None)
@given(
    availability=st.lists(st.sampled_from(list(Availability)), min_size=1, max_size=5),
    strategy=st.sampled_from(["hunt", "ring"]),
    events=st.lists(
        st.tuples(st.sampled_from(["answer", "fail", "timer", "stop"]), st.integers(0, 4),
                  st.floats(0, 20)),
        max_size=20,
    ),
)  # fmt: skip
def test_every_hunt_ends_with_exactly_one_outcome(
    availability: list[Availability], strategy: str, events: list[tuple[str, int, float]]
) -> None:
    hunt = _hunt(*availability, strategy=strategy, member=7, whole=15)
    outcomes = [c for c in hunt.start(0.0) if isinstance(c, Finished)]
    now = 0.0
    for kind, raw_index, delay in events:
        now += delay
        index = raw_index % len(availability)
        if kind == "answer":
            commands = hunt.answered(index, now)
        elif kind == "fail":
            commands = hunt.failed(index, 486, now)
        elif kind == "stop":
            commands = hunt.stop(now)
        else:
            commands = hunt.on_timer(now)
        outcomes += [c for c in commands if isinstance(c, Finished)]
    outcomes += [c for c in hunt.on_timer(now + 100) if isinstance(c, Finished)]
    assert len(outcomes) == 1 and hunt.finished
    assert all(a.result is not None for a in hunt.attempts)  # every attempt reported
    assert sum(a.result is Result.ANSWERED for a in hunt.attempts) <= 1
