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


def _config(node: str, redis: str, phone: int, channel_limit: int = 50) -> str:
    return f"""
[cluster]
node = "{node}"
redis = "{redis}"

[[domains]]
name = "example.com"
api_token = "token-for-tests"
channel_limit = {channel_limit}
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
    node: str, database: str, redis: str, phone: int, channel_limit: int = 50
) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    config = _config(node, redis, phone, channel_limit)
    async with running_server(config, database) as server:
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


async def test_the_channel_limit_counts_the_calls_of_every_node(
    shared: tuple[str, RedisServer],
) -> None:
    database, redis = shared
    phone = free_port()
    alice = await start_sipp(uas(phone, SCENARIOS / "uas_ring_until_cancel.xml"))
    async with AsyncExitStack() as nodes:
        # a call_group to a group of one takes 2 channels: the domain has 3
        _, api_a = await nodes.enter_async_context(_node("node-a", database, redis.url, phone, 3))
        b, api_b = await nodes.enter_async_context(_node("node-b", database, redis.url, phone, 3))
        body = {"group_name": "support", "destination": "alice"}
        first = (await api_a.post("/basix/api/call_group", json=body)).json()
        assert first["result_code"] == 0, first
        refused = (await api_b.post("/basix/api/call_group", json=body)).json()
        assert refused["error"]["id"] == "channel_limit_reached", refused
        assert "in the cluster" in refused["error"]["description"]
        assert b.engine.statistics() == {"calls": 0, "channels": 0}  # nothing kept

        hung_up = (await api_b.post("/basix/api/hangup", json={"uuid": first["uuids"][0]})).json()
        assert hung_up == {"result_code": 0}
        async with asyncio.timeout(5):  # given back to the cluster: 0 of 3 in use
            while (await b.state.usage("example.com")).channels:
                await asyncio.sleep(0.02)

        redis.stop()  # the shared counters cannot be reached: refused, nothing started
        unreachable = await api_b.post("/basix/api/call_group", json=body)
        assert unreachable.status_code == 503, unreachable.text
        assert unreachable.json()["error"]["id"] == "service_unavailable"
        assert unreachable.headers["retry-after"] == "1"
        assert b.engine.statistics() == {"calls": 0, "channels": 0}
        assert b.media.ports.in_use == 0
    out, _ = await asyncio.wait_for(alice.communicate(), 15)
    assert alice.returncode == 0, out.decode(errors="replace")[-1500:]
