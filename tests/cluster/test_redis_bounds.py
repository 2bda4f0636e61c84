"""Nothing in Redis grows without bound: once the nodes have left, what remains is
capped by length (event streams) or expires (idempotency keys, throttles)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from switchboard.cluster.redis_state import RedisState
from switchboard.cluster.state import ChannelLimits
from switchboard.throttle import ThrottleSettings
from tests.cluster.redis_server import RedisServer

pytestmark = [pytest.mark.interop, pytest.mark.slow]

HISTORY, FEED_HISTORY = 5, 8


async def test_what_is_left_after_the_nodes_left_is_capped_or_expires(
    redis: RedisServer,
) -> None:
    nodes = [
        await RedisState.connect(redis.url, name, history=HISTORY, feed_history=FEED_HISTORY)
        for name in ("node-a", "node-b")
    ]
    settings = ThrottleSettings(max_failures=2, window=60.0, block_seconds=60.0)
    for n, node in enumerate(nodes):
        await node.join()
        for call in range(10):
            domain = f"d{call % 3}.example"
            assert await node.try_take(domain, 2, 1, ChannelLimits(100, 100))
            await node.claim([f"uuid-{n}-{call}"])
            await node.publish(domain, {"n": call})
            await node.remember(domain, f"key-{n}-{call}", {"result_code": 0})
            await node.throttle("api", settings).record_failure(f"192.0.2.{call}")
    for node in nodes:
        await node.leave()
        await node.aclose()

    async with aioredis.Redis(port=redis.port, decode_responses=True) as client:
        left = sorted(str(key) for key in await client.keys("*"))
        streams = [key for key in left if key.startswith("switchboard:events")]
        assert streams == [
            "switchboard:events",
            *(f"switchboard:events:d{n}.example" for n in range(3)),
        ]
        assert await client.xlen("switchboard:events") == FEED_HISTORY
        for key in streams[1:]:
            assert await client.xlen(key) == HISTORY
        for key in set(left) - set(streams):  # idempotency keys and throttles only
            assert key.startswith(("switchboard:idempotency:", "switchboard:throttle:")), key
            assert await client.pttl(key) > 0, key
