"""The CTI hub: domains isolated, sequence numbers, replay, slow subscribers dropped,
connection limits."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.cti.channels import Channel
from switchboard.cti.elements import TerminalRow, UserRow
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
    assert [(e.seq, e.event, e.item.key) for e in mine] == [(1, "added", "a"), (2, "removed", "a")]
    assert [e.item.key for e in [theirs.queue.get_nowait()]] == ["z"]
    assert hub.snapshot("example.com") == ({}, 2)


async def test_a_user_selected_subscriber_gets_only_that_users_channels_but_every_element() -> None:
    hub = CtiHub()
    alice = hub.subscribe("example.com", "api", "crm", forced=False, user_id=1001)
    everyone = hub.subscribe("example.com", "api", "wall", forced=False)
    hub.publish("added", Channel("a", "example.com", user_id=1001))
    hub.publish("added", Channel("b", "example.com", user_id=1002))
    terminal = TerminalRow("example.com", "t1", "sip:bob@h", 1002, "sip", None, True, None)
    hub.publish("added", terminal)
    seen = [alice.queue.get_nowait().item.key for _ in range(alice.queue.qsize())]
    assert seen == ["a", "t1"]
    assert everyone.queue.qsize() == 3
    elements, seq = hub.snapshot("example.com")
    assert seq == 3 and elements["terminal"] == [terminal] and len(elements["channel"]) == 2


def test_seeded_elements_are_in_the_snapshot_without_an_event() -> None:
    hub = CtiHub()
    user = UserRow("example.com", 1001, "alice", None, "1001", None, None, "offline")
    hub.seed(user)
    assert hub.snapshot("example.com") == ({"user": [user]}, 0)


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
