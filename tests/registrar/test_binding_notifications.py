"""The pieces of shared bindings that need no database: notification payloads (bounded,
read back), a location's AoR replaced by the stored bindings, and reloads that wait for
this node's own writes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from switchboard.registrar.location import Aor, Binding, LocationService
from switchboard.registrar.shared import BindingSync, Listener
from switchboard.store import notify

ALICE = ("example.com", "alice")


def _binding(contact: str, expires_at: float = 100.0, received: str = "") -> Binding:
    return Binding("example.com", "alice", contact, expires_at, "c", 1, received=received)


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=80)


@given(st.lists(st.tuples(names, names), max_size=400))
def test_payloads_stay_under_the_limit_and_name_every_aor_once(aors: list[Aor]) -> None:
    sent = notify.payloads("node", aors)
    assert all(len(p.encode()) <= notify.MAX_PAYLOAD for p in sent)
    told: list[Aor] = []
    for payload in sent:
        origin, found = notify.parse(payload)
        assert origin == "node" and found is not None
        told += found
    assert sorted(told) == sorted(set(aors))


def test_many_aors_are_split_over_several_notifications() -> None:
    aors = [("example.com", f"user{n:05d}") for n in range(1000)]
    sent = notify.payloads("node", aors)
    assert len(sent) > 1
    assert all(len(p.encode()) <= notify.MAX_PAYLOAD for p in sent)


def test_an_aor_too_long_for_one_notification_asks_to_reload_everything() -> None:
    (sent,) = notify.payloads("node", [("example.com", "x" * 9000), ALICE])
    assert notify.parse(sent) == ("node", None)


def test_a_payload_that_is_not_ours_is_refused() -> None:
    for payload in ["[]", '{"a": []}', '{"o": "n", "a": [["only-one"]]}', "not json"]:
        try:
            notify.parse(payload)
        except ValueError:
            continue
        raise AssertionError(f"{payload!r} was read")


def test_replace_makes_an_aor_exactly_the_stored_live_bindings() -> None:
    location = LocationService()
    location.put(_binding("sip:alice@10.0.0.1", received="UDP:192.0.2.1:5060"))
    location.put(_binding("sip:alice@10.0.0.2", received="UDP:192.0.2.2:5060"))
    stored = [
        _binding("sip:alice@10.0.0.2", 200.0, received="UDP:192.0.2.2:5060"),  # refreshed
        _binding("sip:alice@10.0.0.3", received="UDP:192.0.2.3:5060"),  # new
        _binding("sip:alice@10.0.0.4", 40.0),  # expired already
    ]
    assert location.replace(ALICE, stored, now=50.0) == 3
    assert sorted(b.contact for b in location.bindings(ALICE, 50.0)) == [
        "sip:alice@10.0.0.2",
        "sip:alice@10.0.0.3",
    ]
    assert not location.registered_from("192.0.2.1")  # the per-source count follows
    assert location.registered_from("192.0.2.3")
    assert location.next_expiry() == 100.0
    assert location.replace(ALICE, stored, now=50.0) == 0  # nothing new: nothing changed
    assert location.replace(ALICE, [], now=50.0) == 2
    assert location.count() == 0 and location.aors() == set()


class _SlowStore:
    """Answers a reload with the rows as they were when it was asked, after ``gate``."""

    def __init__(self) -> None:
        self.rows: list[Binding] = []
        self.gate = asyncio.Event()

    def listen(self, on_aors: object, on_resync: object) -> Listener | None:
        return None

    async def load(self) -> list[Binding]:
        return list(self.rows)

    async def load_aors(self, aors: Iterable[Aor]) -> list[Binding]:
        seen = list(self.rows)
        await self.gate.wait()
        return seen

    async def delete_expired_bindings(self, now: float) -> list[Binding]:
        return []


async def test_a_reload_waits_for_a_write_in_progress_and_reads_after_it() -> None:
    location, store, lock = LocationService(), _SlowStore(), asyncio.Lock()
    sync = BindingSync(location, store, lock, lambda: 0.0, lambda: None)
    mine = _binding("sip:alice@10.0.0.9")
    async with lock:  # this node is storing a REGISTER of alice's
        sync.changed([ALICE])  # meanwhile another node changed alice
        await asyncio.sleep(0)
        store.rows.append(mine)  # committed
        location.put(mine)  # applied
    store.gate.set()
    while not sync.idle:
        await asyncio.sleep(0)
    # the reload read the rows after this node's commit, so it kept the binding
    assert location.get(ALICE, mine.contact) == mine


async def test_aors_notified_during_a_reload_are_reloaded_together_next() -> None:
    location, store = LocationService(), _SlowStore()
    sync = BindingSync(location, store, asyncio.Lock(), lambda: 0.0, lambda: None)
    sync.changed([ALICE])
    await asyncio.sleep(0)
    sync.changed([("example.com", "bob")])
    sync.changed([("example.com", "carol")])
    store.gate.set()
    while not sync.idle:
        await asyncio.sleep(0)
    assert sync.counters["binding_reloads"] == 2


def test_a_payload_is_compact_json() -> None:
    (sent,) = notify.payloads("n1", [ALICE])
    assert json.loads(sent) == {"o": "n1", "a": [["example.com", "alice"]]}


class _FakeConnection:
    """What the listener uses of an asyncpg connection; ``silent`` never answers."""

    def __init__(self, silent: bool) -> None:
        self.silent = silent
        self.callback: Any = None
        self.terminated = False

    def add_termination_listener(self, callback: object) -> None:
        pass

    async def add_listener(self, channel: str, callback: object) -> None:
        assert channel == notify.CHANNEL
        self.callback = callback

    async def fetchval(self, query: str) -> int:
        if self.silent:
            await asyncio.Event().wait()
        return 1

    def terminate(self) -> None:
        self.terminated = True

    def get_server_pid(self) -> int:
        return 1


async def test_a_silent_connection_is_replaced_and_everything_reloaded() -> None:
    connections: list[_FakeConnection] = []

    async def connect() -> _FakeConnection:
        connections.append(_FakeConnection(silent=not connections))  # the first one hangs
        return connections[-1]

    resyncs: list[None] = []
    listener = notify.BindingListener(
        connect, "me", lambda aors: None, lambda: resyncs.append(None),
        check_every=0.01, check_timeout=0.01, backoff=(0.01, 0.01),
    )  # fmt: skip
    await listener.start()
    try:
        async with asyncio.timeout(2):
            while not resyncs:
                await asyncio.sleep(0.005)
        assert connections[0].terminated and len(connections) == 2
        assert listener.connected and listener.counters["binding_listener_lost"] == 1
    finally:
        await listener.close()


async def test_own_notifications_are_skipped_and_unreadable_ones_reload_everything() -> None:
    connection = _FakeConnection(silent=False)

    async def connect() -> _FakeConnection:
        return connection

    heard: list[list[Aor] | None] = []
    listener = notify.BindingListener(
        connect, "me", heard.append, lambda: heard.append(None), check_every=60
    )
    await listener.start()
    try:
        (mine,) = notify.payloads("me", [ALICE])
        (theirs,) = notify.payloads("them", [ALICE])
        for payload in [mine, theirs, "garbage", json.dumps({"o": "them", "all": True})]:
            connection.callback(connection, 1, notify.CHANNEL, payload)
        assert heard == [[ALICE], None, None]
        assert listener.counters["binding_notifications"] == 2
    finally:
        await listener.close()
