"""When Redis is unreachable, silent or restarted: clear errors within the deadline, never
a hang, and nothing taken for granted afterwards."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from switchboard.cluster.errors import (
    EventsLostError,
    LeaseLostError,
    StateUnavailableError,
    UndeliverableError,
)
from switchboard.cluster.redis_state import RedisState
from switchboard.cluster.state import ChannelLimits, JsonObject
from switchboard.throttle import ThrottleSettings
from tests.cluster.polling import until
from tests.cluster.redis_server import RedisServer
from tests.interop.sipp import free_port

pytestmark = [pytest.mark.interop, pytest.mark.slow]

TIMEOUT = 0.5
LIMITS = ChannelLimits(channels=10, pstn=10)


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts connections and never answers (a Redis stuck or a black hole)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_no_redis_at_the_url_is_a_clear_error_at_once() -> None:
    port = free_port(socket.SOCK_STREAM)
    started = time.monotonic()
    with pytest.raises(StateUnavailableError, match=f"127.0.0.1:{port}"):
        await RedisState.connect(f"redis://127.0.0.1:{port}", "node-a", timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT + 1


async def test_a_redis_that_never_answers_is_an_error_after_the_timeout(
    silent_server: int,
) -> None:
    started = time.monotonic()
    with pytest.raises(StateUnavailableError, match="did not answer"):
        await RedisState.connect(f"redis://127.0.0.1:{silent_server}", "node-a", timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT + 1


async def test_every_call_fails_clearly_while_redis_is_down(redis: RedisServer) -> None:
    state = await RedisState.connect(redis.url, "node-a", timeout=TIMEOUT, block=0.2)
    try:
        await state.join()
        feed = await state.subscribe()
        redis.stop()
        calls = [
            state.heartbeat(),
            state.try_take("example.com", 1, 0, LIMITS),
            state.publish("example.com", {"event": "added"}),
            state.owner("uuid-1"),
            state.send("node-a", {"op": "hangup"}),
            state.throttle("api", ThrottleSettings()).record_failure("192.0.2.1"),
            anext(feed),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StateUnavailableError):
                await call
            assert time.monotonic() - started < TIMEOUT + 1.5
    finally:
        await state.aclose()


async def test_after_redis_lost_its_data_leases_and_feeds_say_so(redis: RedisServer) -> None:
    state = await RedisState.connect(redis.url, "node-a", timeout=2.0, block=0.2)
    try:
        await state.join()
        feed = await state.subscribe()
        for n in range(3):
            await state.publish("example.com", {"n": n})
        async with asyncio.timeout(10):
            assert [(await anext(feed)).seq for _ in range(3)] == [1, 2, 3]
        redis.restart_empty()
        with pytest.raises(LeaseLostError):
            await _retrying(state.heartbeat)
        await state.publish("example.com", {"n": 9})  # seq 1 again
        with pytest.raises(EventsLostError):
            async with asyncio.timeout(10):
                await anext(feed)
    finally:
        await state.aclose()


async def test_commands_flow_again_once_redis_is_back(redis: RedisServer) -> None:
    state = await RedisState.connect(redis.url, "node-a", timeout=2.0)
    try:
        state.serve_commands(_echo)
        await state.join()
        assert await state.send("node-a", {"n": 1}) == {"n": 1}
        redis.restart_empty()
        await _retrying(state.join)

        async def answered() -> bool:
            try:
                return await state.send("node-a", {"n": 2}) == {"n": 2}
            except (UndeliverableError, StateUnavailableError):
                return False  # the command channel is not subscribed again yet

        await until(answered)
    finally:
        await state.aclose()


async def _echo(command: JsonObject) -> JsonObject:
    return command


async def _retrying(call: Callable[[], Awaitable[object]]) -> None:
    """The first call after the restart may meet the broken old connection."""
    try:
        await call()
    except StateUnavailableError:
        await call()
