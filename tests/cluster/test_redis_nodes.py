"""Several nodes on one real Redis: what one node does, the others see; a node that stops
renewing its lease is released by another, once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from switchboard.cluster.errors import LeaseLostError, UndeliverableError
from switchboard.cluster.lease import keep_lease
from switchboard.cluster.redis_state import RedisState
from switchboard.cluster.state import ChannelLimits, Usage
from switchboard.cluster.values import JsonObject
from switchboard.throttle import ThrottleSettings
from tests.cluster.polling import until
from tests.cluster.redis_server import RedisServer

pytestmark = [pytest.mark.interop, pytest.mark.slow]

LEASE = 0.6  # short, so a death is noticed quickly; heartbeats every LEASE / 3
LIMITS = ChannelLimits(channels=10, pstn=10)
Connect = Callable[[str], Awaitable[RedisState]]


@pytest.fixture
async def connect(redis: RedisServer) -> AsyncIterator[Connect]:
    """Joined nodes on the test's Redis, closed at the end."""
    nodes: list[RedisState] = []

    async def node(name: str) -> RedisState:
        state = await RedisState.connect(redis.url, name, lease=LEASE, block=0.2)
        nodes.append(state)
        await state.join()
        return state

    yield node
    for state in nodes:
        await state.aclose()


async def test_two_nodes_share_one_seq_and_each_sees_every_event(connect: Connect) -> None:
    a, b = await connect("node-a"), await connect("node-b")
    feeds = [await a.subscribe(), await b.subscribe()]

    async def publish(node: RedisState, tag: str) -> list[int]:
        return [await node.publish("example.com", {"from": tag, "n": n}) for n in range(25)]

    seqs_a, seqs_b = await asyncio.gather(publish(a, "a"), publish(b, "b"))
    assert sorted(seqs_a + seqs_b) == list(range(1, 51))
    for feed in feeds:
        async with asyncio.timeout(10):
            got = [await anext(feed) for _ in range(50)]
        assert [event.seq for event in got] == list(range(1, 51))
        assert [e.body for e in got if e.body["from"] == "a"] == [
            {"from": "a", "n": n} for n in range(25)
        ]
    replay = await b.since("example.com", 48)
    assert replay is not None
    assert [event.seq for event in replay] == [49, 50]


async def test_the_limit_holds_across_nodes_taking_at_once(connect: Connect) -> None:
    a, b = await connect("node-a"), await connect("node-b")

    async def take(node: RedisState) -> int:
        results = [node.try_take("example.com", 1, 1, LIMITS) for _ in range(20)]
        return sum(bool(taken) for taken in await asyncio.gather(*results))

    taken = await asyncio.gather(take(a), take(b))
    assert sum(taken) == 10
    assert await a.usage("example.com") == Usage(10, 10)
    await b.give_back("example.com", taken[1], taken[1])
    assert await a.usage("example.com") == Usage(taken[0], taken[0])


async def test_a_silent_nodes_holdings_are_released_by_another_within_the_lease(
    connect: Connect,
) -> None:
    a, b = await connect("node-a"), await connect("node-b")
    assert await a.try_take("example.com", 2, 1, LIMITS)
    assert await b.try_take("example.com", 3, 1, LIMITS)
    await b.claim(["uuid-b"])
    assert await a.owner("uuid-b") == "node-b"
    await a.heartbeat()  # node-b's last heartbeat was its join; it stays silent now
    last_heard = time.monotonic()

    dead: list[str] = []
    async with asyncio.timeout(10):
        while not dead:
            await a.heartbeat()
            dead = await a.reap_dead_nodes()
            await asyncio.sleep(0.02)
    assert dead == ["node-b"]
    assert time.monotonic() - last_heard < 3 * LEASE  # released within a bounded time
    assert await a.usage("example.com") == Usage(2, 1)  # node-a's own stay
    assert await a.owner("uuid-b") is None
    assert await a.reap_dead_nodes() == []  # told once
    with pytest.raises(UndeliverableError):
        await a.send("node-b", {"op": "hangup"})

    # node-b learns it was declared dead, and starts a new life.
    with pytest.raises(LeaseLostError):
        await b.heartbeat()
    with pytest.raises(LeaseLostError):
        await b.try_take("example.com", 1, 0, LIMITS)
    assert not await b.join()
    assert await b.try_take("example.com", 1, 0, LIMITS)


async def test_an_owner_is_forgotten_as_soon_as_its_lease_lapses(connect: Connect) -> None:
    a, b = await connect("node-a"), await connect("node-b")
    await b.claim(["uuid-b"])

    async def forgotten() -> bool:
        await a.heartbeat()
        return await a.owner("uuid-b") is None

    await until(forgotten)  # nobody reaped node-b yet: its lease alone decides
    assert await a.reap_dead_nodes() == ["node-b"]


async def test_a_node_that_keeps_its_lease_is_not_reaped(connect: Connect) -> None:
    a, b = await connect("node-a"), await connect("node-b")
    assert await b.try_take("example.com", 3, 0, LIMITS)
    failed: list[str] = []

    async def report(node: str) -> None:
        failed.append(node)

    keeping = asyncio.create_task(keep_lease(b, every=LEASE / 3, on_node_failed=report))
    try:
        deadline = time.monotonic() + 3 * LEASE
        while time.monotonic() < deadline:
            await a.heartbeat()
            assert await a.reap_dead_nodes() == []
            await asyncio.sleep(0.05)
    finally:
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
    assert await a.usage("example.com") == Usage(3, 0)
    assert failed == []


async def test_keep_lease_reports_a_dead_node(connect: Connect) -> None:
    a, _silent = await connect("node-a"), await connect("node-b")
    failed: list[str] = []
    reported = asyncio.Event()

    async def report(node: str) -> None:
        failed.append(node)
        reported.set()

    keeping = asyncio.create_task(keep_lease(a, every=LEASE / 3, on_node_failed=report))
    try:
        async with asyncio.timeout(10):
            await reported.wait()
    finally:
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
    assert failed == ["node-b"]


async def test_a_restarted_node_releases_what_its_earlier_life_held(
    redis: RedisServer, connect: Connect
) -> None:
    a = await connect("node-a")
    assert await a.try_take("example.com", 4, 1, LIMITS)
    await a.claim(["uuid-a"])
    again = await RedisState.connect(redis.url, "node-a", lease=LEASE)
    try:
        assert await again.join()  # an earlier life held a lease
        assert await again.usage("example.com") == Usage(0, 0)
        assert await again.owner("uuid-a") is None
    finally:
        await again.aclose()


async def test_a_command_reaches_the_node_holding_the_call(connect: Connect) -> None:
    a, b = await connect("node-a"), await connect("node-b")
    received: list[JsonObject] = []

    async def handler(command: JsonObject) -> JsonObject:
        received.append(command)
        return {"result_code": 0}

    b.serve_commands(handler)
    await b.claim(["uuid-b"])
    owner = await a.owner("uuid-b")
    assert owner == "node-b"
    assert await a.send(owner, {"op": "hangup", "uuid": "uuid-b"}) == {"result_code": 0}
    assert received == [{"op": "hangup", "uuid": "uuid-b"}]
    with pytest.raises(UndeliverableError):
        await b.send("node-a", {"op": "hangup"})  # node-a takes no commands


async def test_a_node_gone_without_leaving_is_undeliverable_at_once(connect: Connect) -> None:
    a, b = await connect("node-a"), await connect("node-b")
    b.serve_commands(lambda command: _answer({}))
    await b.aclose()  # its lease is still alive, but nobody listens
    started = time.monotonic()
    with pytest.raises(UndeliverableError):
        await a.send("node-b", {"op": "hangup"}, timeout=5.0)
    assert time.monotonic() - started < 1.0  # not the timeout


async def test_an_idempotency_key_set_on_one_node_answers_on_another(connect: Connect) -> None:
    a, b = await connect("node-a"), await connect("node-b")
    first = {"result_code": 0, "uuids": ["uuid-1"]}
    assert await a.remember("example.com", "retry-1", first) is None
    assert await b.recall("example.com", "retry-1") == first
    assert await b.remember("example.com", "retry-1", {"result_code": 0}) == first


async def test_failures_on_several_nodes_add_up(connect: Connect) -> None:
    a, b = await connect("node-a"), await connect("node-b")
    settings = ThrottleSettings(max_failures=3, window=60.0, block_seconds=60.0)
    on_a, on_b = a.throttle("api", settings), b.throttle("api", settings)
    assert not await on_a.record_failure("192.0.2.7")
    assert not await on_b.record_failure("192.0.2.7")
    assert await on_a.record_failure("192.0.2.7")
    assert await on_b.blocked_for("192.0.2.7") > 59
    assert await on_b.blocked_sources() == 1


async def _answer(answer: JsonObject) -> JsonObject:
    return answer
