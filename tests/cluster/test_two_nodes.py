"""Two real nodes sharing PostgreSQL and Redis (both started by the tests): a retried
Idempotency-Key on the other node starts nothing, and a hangup sent to one node ends a call
the other holds, as do the socket's commands."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from switchboard.app import Server
from tests.cluster.redis_server import RedisServer, redis_server
from tests.databases import create_database
from tests.interop.call_group_harness import AUTH, uas
from tests.interop.servers import running_server
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
_names = itertools.count()


@pytest.fixture
def shared(postgres_admin_url: str, tmp_path: Path) -> Iterator[tuple[str, RedisServer]]:
    database = create_database(postgres_admin_url, f"two_nodes_{next(_names)}")
    with redis_server(tmp_path) as redis:
        yield database, redis


def _config(node: str, redis: str, phone: int) -> str:
    return f"""
[cluster]
node = "{node}"
redis = "{redis}"

[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  contacts = ["sip:alice@127.0.0.1:{phone}"]
  [[domains.groups]]
  id = 1111
  name = "support"
  members = ["alice"]
  [[domains.trunks]]
  name = "pstn"
  address = "127.0.0.1:{free_port()}"
"""


@asynccontextmanager
async def _node(
    node: str, database: str, redis: str, phone: int
) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    async with running_server(_config(node, redis, phone), database) as server:
        host, port = server.config.server.http_address
        task = asyncio.create_task(server.http.serve())
        while not server.http.started:
            await asyncio.sleep(0.01)
        try:
            headers = {"Authorization": AUTH}
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}", headers=headers) as c:
                yield server, c
        finally:
            server.http.should_exit = True
            await task


async def test_a_retried_key_and_a_hangup_reach_the_node_that_holds_the_call(
    shared: tuple[str, RedisServer],
) -> None:
    database, redis = shared
    phone = free_port()
    alice = await start_sipp(uas(phone, SCENARIOS / "uas_ring_until_cancel.xml"))
    async with AsyncExitStack() as nodes:
        a, api_a = await nodes.enter_async_context(_node("node-a", database, redis.url, phone))
        b, api_b = await nodes.enter_async_context(_node("node-b", database, redis.url, phone))
        body = {"group_name": "support", "destination": "alice"}
        key = {"Idempotency-Key": "campaign-42"}
        first = (await api_a.post("/basix/api/call_group", json=body, headers=key)).json()
        assert first["result_code"] == 0, first
        retried = (await api_b.post("/basix/api/call_group", json=body, headers=key)).json()
        assert retried == first  # the other node answers as the first did
        assert b.engine.statistics()["calls"] == 0 and a.engine.statistics()["calls"] == 1

        uuid = first["uuids"][0]
        async with asyncio.timeout(5):  # node A records that it holds the channel
            while await b.state.owner(uuid) != "node-a":
                await asyncio.sleep(0.02)
        hung_up = (await api_b.post("/basix/api/hangup", json={"uuid": uuid})).json()
        assert hung_up == {"result_code": 0}  # forwarded to node A, which ended it
        async with asyncio.timeout(5):
            while a.engine.calls:
                await asyncio.sleep(0.02)
        gone = (await api_b.post("/basix/api/hangup", json={"uuid": uuid})).json()
        assert gone["error"]["id"] == "channel_not_found"
    out, _ = await asyncio.wait_for(alice.communicate(), 15)
    assert alice.returncode == 0, out.decode(errors="replace")[-1500:]  # it got the CANCEL
