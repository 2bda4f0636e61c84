"""CTI events on both states: one seq per domain, the ``since=`` replay as CtiHub.missed
answers it, and feeds that see every event once, in order, or say they missed some."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.cluster.errors import EventsLostError
from switchboard.cluster.state import CtiEvent, EventFeed
from switchboard.cluster.values import MAX_BATCH
from tests.cluster.conftest import MakeState


def _event(n: int) -> dict[str, object]:
    return {"event": "updated", "item": {"channel": f"uuid-{n}", "state": "ringing"}}


async def _next(feed: EventFeed) -> CtiEvent:
    async with asyncio.timeout(10):
        return await anext(feed)


async def test_each_domain_counts_its_own_seq_from_1(make_state: MakeState) -> None:
    state = await make_state()
    assert [await state.publish("a.example", _event(n)) for n in range(3)] == [1, 2, 3]
    assert await state.publish("b.example", _event(9)) == 1
    assert await state.publish("a.example", _event(4)) == 4


async def test_since_replays_what_came_after(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.since("example.com", 0) == []  # nothing yet
    for n in range(1, 6):
        await state.publish("example.com", _event(n))
    replay = await state.since("example.com", 2)
    assert replay == [CtiEvent("example.com", n, _event(n)) for n in (3, 4, 5)]
    assert await state.since("example.com", 5) == []
    assert await state.since("example.com", 9) == []  # ahead: nothing to replay
    assert await state.since("other.example", 0) == []


async def test_since_older_than_the_history_is_none(make_state: MakeState) -> None:
    state = await make_state(history=3)
    for n in range(1, 8):
        await state.publish("example.com", _event(n))
    assert await state.since("example.com", 3) is None  # 4 was dropped
    kept = await state.since("example.com", 4)
    assert kept is not None
    assert [event.seq for event in kept] == [5, 6, 7]
    with pytest.raises(ValueError):
        await state.since("example.com", -1)


async def test_a_feed_gets_every_event_after_subscribing_in_order(make_state: MakeState) -> None:
    state = await make_state()
    await state.publish("a.example", _event(0))  # before: not in the feed
    feed = await state.subscribe()
    await state.publish("a.example", _event(1))
    await state.publish("b.example", _event(2))
    await state.publish("a.example", _event(3))
    got = [await _next(feed) for _ in range(3)]
    assert got == [
        CtiEvent("a.example", 2, _event(1)),
        CtiEvent("b.example", 1, _event(2)),
        CtiEvent("a.example", 3, _event(3)),
    ]
    await feed.aclose()


async def test_a_feed_of_some_domains_gets_only_theirs(make_state: MakeState) -> None:
    state = await make_state()
    feed = await state.subscribe(["b.example"])
    await state.publish("a.example", _event(1))
    await state.publish("b.example", _event(2))
    assert await _next(feed) == CtiEvent("b.example", 1, _event(2))
    await feed.aclose()


async def test_a_feed_that_falls_behind_says_so(make_state: MakeState) -> None:
    state = await make_state(feed=5)
    feed = await state.subscribe()
    for n in range(1, 21):
        await state.publish("example.com", _event(n))
    seqs: list[int] = []
    with pytest.raises(EventsLostError):
        async with asyncio.timeout(10):
            async for event in feed:
                seqs.append(event.seq)
    assert len(seqs) < 20
    assert seqs == list(range(1, len(seqs) + 1))  # what it did get, in order, no hole


async def test_a_closed_feed_ends(make_state: MakeState) -> None:
    state = await make_state()
    feed = await state.subscribe()
    await feed.aclose()
    with pytest.raises(StopAsyncIteration):
        await _next(feed)


async def test_nonsense_is_refused(make_state: MakeState) -> None:
    state = await make_state()
    with pytest.raises(ValueError):
        await state.publish("example.com", {"blob": "x" * 70_000})
    with pytest.raises(ValueError):
        await state.publish("", _event(1))
    assert await state.publish("example.com", _event(1)) == 1


async def test_events_published_at_once_are_numbered_as_one_by_one(make_state: MakeState) -> None:
    state = await make_state()
    feed = await state.subscribe()
    await state.publish("b.example", {"n": 0})
    batch = [("a.example", {"n": 1}), ("b.example", {"n": 2}), ("a.example", {"n": 3})]
    assert await state.publish_many(batch) == [1, 2, 2]
    assert await state.publish_many([]) == []
    assert await state.publish("a.example", {"n": 4}) == 3
    read = [await asyncio.wait_for(anext(feed), 2) for _ in range(5)]
    assert [(e.domain, e.seq, e.body["n"]) for e in read] == [
        ("b.example", 1, 0), ("a.example", 1, 1), ("b.example", 2, 2),
        ("a.example", 2, 3), ("a.example", 3, 4),
    ]  # fmt: skip
    replay = await state.since("a.example", 0)
    assert replay is not None and [e.body["n"] for e in replay] == [1, 3, 4]
    await feed.aclose()


async def test_a_batch_with_one_bad_event_publishes_nothing(make_state: MakeState) -> None:
    state = await make_state()
    with pytest.raises(ValueError):
        await state.publish_many([("a.example", {"n": 1}), ("", {"n": 2})])
    with pytest.raises(ValueError):
        await state.publish_many([("a.example", {"n": n}) for n in range(MAX_BATCH + 1)])
    assert await state.since("a.example", 0) == []
