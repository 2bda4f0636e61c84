"""A node's connections to Redis are bounded: a burst of commands (a loaded node's claims,
reservations and CTI events, all at once) waits for the pool's connections instead of
opening one each until Redis refuses more clients."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from switchboard.cluster.redis_link import MAX_CONNECTIONS
from switchboard.cluster.redis_state import RedisState
from switchboard.cluster.values import ChannelLimits
from tests.cluster.conftest import REDIS_MARKS
from tests.cluster.redis_server import RedisServer

pytestmark = REDIS_MARKS


async def test_a_burst_of_commands_shares_a_bounded_pool(redis: RedisServer) -> None:
    state = await RedisState.connect(redis.url, "node-a")
    observer = aioredis.Redis.from_url(redis.url, decode_responses=True)
    try:
        await state.join()
        limits = ChannelLimits(10_000, 10_000)
        takes = [state.try_take("example.com", 1, 0, limits) for _ in range(1000)]
        tracks = [state.track(f"call-{n}", {"v": 1}) for n in range(1000)]
        taken, _ = await asyncio.gather(asyncio.gather(*takes), asyncio.gather(*tracks))
        assert all(taken)  # every command answered
        assert (await state.usage("example.com")).channels == 1000
        clients = await observer.client_list()
        ours = [c for c in clients if c.get("cmd") != "client|list"]
        assert len(ours) <= MAX_CONNECTIONS + 1, len(ours)  # + the command mailbox
    finally:
        await observer.aclose()
        await state.aclose()


@pytest.mark.parametrize("count", [MAX_CONNECTIONS * 4])
async def test_commands_beyond_the_pool_wait_and_all_succeed(
    redis: RedisServer, count: int
) -> None:
    state = await RedisState.connect(redis.url, "node-a")
    try:
        await state.join()
        await asyncio.gather(*(state.claim([f"uuid-{n}"]) for n in range(count)))
        owners = await asyncio.gather(*(state.owner(f"uuid-{n}") for n in range(count)))
        assert owners == ["node-a"] * count
    finally:
        await state.aclose()
