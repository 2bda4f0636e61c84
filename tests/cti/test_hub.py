"""The CTI hub: domains isolated, sequence numbers, replay, slow subscribers dropped,
connection limits."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.cti.channels import Channel
from switchboard.cti.hub import ConnectionLimitError, CtiHub


def _chan(uuid: str, domain: str = "example.com") -> Channel:
    return Channel(uuid, domain)


async def test_a_subscriber_sees_only_its_own_domain_in_sequence() -> None:
    hub = CtiHub()
    ours = hub.subscribe("example.com", "api", "board", forced=False)
    theirs = hub.subscribe("other.example", "api", "board", forced=False)
    hub.publish("added", _chan("a"))
    hub.publish("added", _chan("z", "other.example"))
    hub.publish("removed", _chan("a"))
    mine = [ours.queue.get_nowait() for _ in range(ours.queue.qsize())]
    assert [(e.seq, e.event, e.channel.uuid) for e in mine] == [(1, "added", "a"),
                                                                (2, "removed", "a")]  # fmt: skip
    assert [e.channel.uuid for e in [theirs.queue.get_nowait()]] == ["z"]
    assert hub.snapshot("example.com") == ([], 2)


async def test_a_subscriber_that_stops_reading_is_dropped_without_slowing_others() -> None:
    hub = CtiHub(queue_size=10)
    stuck = hub.subscribe("example.com", "api", "stuck", forced=False)
    reader = hub.subscribe("example.com", "api", "reader", forced=False)
    for n in range(25):
        hub.publish("added", _chan(f"c{n}"))
        reader.queue.get_nowait()  # the reader keeps up
    assert stuck.closed.done() and stuck.closed.result() == "too_slow"
    assert hub.counters["cti_dropped_subscribers"] == 1
    assert not reader.closed.done()


async def test_since_replays_what_was_missed_or_says_it_is_too_old() -> None:
    hub = CtiHub(history=5)
    for n in range(8):
        hub.publish("added", _chan(f"c{n}"))
    assert [e.seq for e in hub.missed("example.com", 5) or []] == [6, 7, 8]
    assert hub.missed("example.com", 8) == []
    assert hub.missed("example.com", 1) is None  # beyond the buffer: take a snapshot


async def test_two_connections_per_app_and_forced_replaces_the_oldest() -> None:
    hub = CtiHub()
    first = hub.subscribe("example.com", "api", "crm", forced=False)
    hub.subscribe("example.com", "api", "crm", forced=False)
    with pytest.raises(ConnectionLimitError):
        hub.subscribe("example.com", "api", "crm", forced=False)
    hub.subscribe("example.com", "api", "crm", forced=True)
    assert await asyncio.wait_for(first.closed, 1) == "connection_replaced"
    hub.subscribe("example.com", "api", "other-app", forced=False)  # another app is separate
