"""The cluster state's fixtures: ``make_state`` gives a joined state of each kind (the
same behavioural tests run on ``LocalState`` and on ``RedisState`` against a real
redis-server); ``redis`` is that server, for the tests of several nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from switchboard.cluster.redis_state import RedisState
from switchboard.cluster.state import ClusterState, LocalState
from tests.cluster.redis_server import RedisServer, redis_server

REDIS_MARKS = [pytest.mark.interop, pytest.mark.slow]


class MakeState(Protocol):
    def __call__(
        self, node: str = "node-a", *, history: int = 2000, feed: int = 10_000
    ) -> Awaitable[ClusterState]: ...


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture(params=["local", pytest.param("redis", marks=REDIS_MARKS)])
async def make_state(request: pytest.FixtureRequest) -> AsyncIterator[MakeState]:
    """``feed``: events a feed may fall behind by (LocalState's queue, RedisState's
    stream of all domains)."""
    made: list[ClusterState] = []
    server: RedisServer | None = None
    if request.param == "redis":
        server = request.getfixturevalue("redis")

    async def make(
        node: str = "node-a", *, history: int = 2000, feed: int = 10_000
    ) -> ClusterState:
        state: ClusterState
        if server is None:
            state = LocalState(node, history=history, feed_size=feed)
        else:
            state = await RedisState.connect(
                server.url, node, history=history, feed_history=feed, block=0.2
            )
        made.append(state)
        await state.join()
        return state

    yield make
    for state in made:
        await state.aclose()
