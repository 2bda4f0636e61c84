"""The HTTP listener's caps and the body cap, on a running server with small limits: who is
refused, when a slot comes back, and that honest use (keep-alive, WebSockets, a body right at
the cap, a connection that got a 413) is not disturbed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from switchboard.api.connections import ConnectionLimits, Refusal
from switchboard.app import Server
from tests.interop.call_group_harness import AUTH, Phones, config_for, serving
from tests.interop.sipp import free_port

LIMITS = "http_max_connections = 4\nhttp_connections_per_source = 2\nhttp_max_body = 2048\n"


def test_limits_count_per_source_and_in_all_and_take_slots_back() -> None:
    limits = ConnectionLimits(max_total=3, per_source=2)
    assert limits.admit("a") is None and limits.admit("a") is None
    assert limits.admit("a") is Refusal.PER_SOURCE
    assert limits.admit("b") is None
    assert limits.admit("c") is Refusal.TOTAL
    limits.release("a")
    assert limits.held_by("a") == 1 and limits.admit("c") is None
    limits.release("nobody")  # never admitted: nothing to give back
    assert limits.statistics() == {
        "http_connections_refused_total": 1,
        "http_connections_refused_per_source": 1,
        "http_requests_timed_out": 0,
        "http_connections_open": 3,
    }
    for source in ("a", "b", "c"):
        limits.release(source)
    assert limits.open == 0 and limits.held_by("a") == 0


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones), LIMITS) as (server, client):
        yield server, client


async def _open(server: Server, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = server.config.server.http_address
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def _until_open(server: Server, count: int) -> None:
    """The server has noticed the connections opened or closed (no event to await there)."""
    for _ in range(200):
        if server.http.limits.open == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{server.http.limits.open} connections open, not {count}")


async def _refused(reader: asyncio.StreamReader) -> dict[str, object]:
    answer = await asyncio.wait_for(reader.read(), 2)  # all of it, up to the close
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in head.lower()
    envelope: dict[str, object] = json.loads(body)
    return envelope


async def test_connections_past_the_caps_get_503_and_a_closed_slot_is_free_again(
    small: tuple[Server, httpx.AsyncClient],
) -> None:
    server, _ = small
    first = [await _open(server, "127.0.0.2") for _ in range(2)]
    await _until_open(server, 2)
    reader, refused = await _open(server, "127.0.0.2")
    refusal = await _refused(reader)
    refused.close()
    assert refusal["error"] == {
        "id": "too_many_connections",
        "description": "too many open connections (http_connections_per_source); retry in a second",
    }
    others = [await _open(server, "127.0.0.3") for _ in range(2)]
    await _until_open(server, 4)
    reader, refused = await _open(server, "127.0.0.4")
    assert "http_max_connections" in str((await _refused(reader))["error"])
    refused.close()
    first[0][1].close()
    await _until_open(server, 3)
    reader, writer = await _open(server, "127.0.0.4")
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: pbx\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 200 ")
    for _, held in [*first[1:], *others, (reader, writer)]:
        held.close()
    await _until_open(server, 0)
    counters = server.http.limits.statistics()
    assert counters["http_connections_refused_per_source"] == 1
    assert counters["http_connections_refused_total"] == 1


async def test_a_keep_alive_client_is_served_on_one_connection(
    small: tuple[Server, httpx.AsyncClient],
) -> None:
    server, client = small
    for _ in range(5):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    statistics = (await client.get("/statistics", headers={"Authorization": AUTH})).json()
    assert statistics["counters"]["http_connections_open"] == 1
    assert server.http.limits.held_by("127.0.0.1") == 1


async def test_a_websocket_keeps_its_connections_slot_until_it_closes(
    small: tuple[Server, httpx.AsyncClient],
) -> None:
    server, client = small
    url = str(client.base_url).replace("http://", "ws://") + "/basix/api/ws_cti?format=json"
    async with connect(url, additional_headers={"Authorization": AUTH}) as ws:
        await ws.recv()  # upgraded and served
        await _until_open(server, 1)
        assert server.http.limits.held_by("127.0.0.1") == 1
    await _until_open(server, 0)


@pytest.mark.parametrize("since", ["x", "-1", "9" * 19])
async def test_a_since_that_is_no_sequence_number_refuses_the_upgrade(
    small: tuple[Server, httpx.AsyncClient], since: str
) -> None:
    server, client = small
    url = str(client.base_url).replace("http://", "ws://")
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"{url}/basix/api/ws_cti?since={since}", additional_headers={"Authorization": AUTH}
        )
    response = refused.value.response
    assert response.status_code == 400
    assert json.loads(response.body or b"")["error"]["id"] == "invalid_parameter"
    await _until_open(server, 0)


async def test_a_body_at_the_cap_is_read_and_one_byte_more_is_413_on_a_reusable_connection(
    small: tuple[Server, httpx.AsyncClient],
) -> None:
    _, client = small
    body = b'{"uuid": "nowhere"}'
    at_cap = body + b" " * (2048 - len(body))
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    answer = await client.post("/basix/api/hangup", content=at_cap, headers=headers)
    assert answer.json()["error"]["id"] == "channel_not_found"
    over = await client.post("/basix/api/hangup", content=at_cap + b" ", headers=headers)
    assert over.status_code == 413 and over.json()["error"]["id"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * 1000

    streamed = await client.post("/basix/api/hangup", content=chunks(), headers=headers)
    assert streamed.status_code == 413 and streamed.json()["error"]["id"] == "body_too_large"
    again = await client.post("/basix/api/hangup", content=body, headers=headers)
    assert again.json()["error"]["id"] == "channel_not_found"  # the connection goes on


CALL = {"group_name": "support", "destination": "0312341234"}


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Idempotency-Key": "k" * 256}, CALL),
        ({}, {**CALL, "answer_timeout": "1_0"}),
        ({}, {**CALL, "answer_timeout": "9" * 1500}),
    ],
)
async def test_oversized_or_odd_values_are_invalid_parameters(
    small: tuple[Server, httpx.AsyncClient], headers: dict[str, str], body: dict[str, str]
) -> None:
    server, client = small
    answer = await client.post(
        "/basix/api/call_group", json=body, headers={"Authorization": AUTH, **headers}
    )
    assert answer.json()["error"]["id"] == "invalid_parameter"
    assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_deeply_nested_json_is_invalid_json_not_an_internal_error(
    small: tuple[Server, httpx.AsyncClient],
) -> None:
    _, client = small
    answer = await client.post(
        "/basix/api/hangup", content=b"[" * 2000, headers={"Authorization": AUTH}
    )
    assert answer.status_code == 400 and answer.json()["error"]["id"] == "invalid_json"


async def test_pipelined_requests_are_all_answered(
    small: tuple[Server, httpx.AsyncClient],
) -> None:
    server, _ = small
    reader, writer = await _open(server, "127.0.0.2")
    body = b'{"uuid": "nowhere"}'
    hangup = (
        b"POST /basix/api/hangup HTTP/1.1\r\nHost: pbx\r\nAuthorization: "
        + AUTH.encode()
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    writer.write(hangup * 3 + b"GET /healthz HTTP/1.1\r\nHost: pbx\r\n\r\n")
    answers = b""
    while answers.count(b"HTTP/1.1 200 ") < 4:
        answers += await asyncio.wait_for(reader.read(4096), 2)
    writer.close()
    assert answers.count(b"channel_not_found") == 3 and b'{"status":"ok"}' in answers


@pytest.mark.slow
async def test_a_connection_silent_after_its_response_is_closed_after_the_keep_alive(
    small: tuple[Server, httpx.AsyncClient],
) -> None:
    server, _ = small
    reader, writer = await _open(server, "127.0.0.2")
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: pbx\r\n\r\n")
    assert (await reader.readuntil(b'{"status":"ok"}')).startswith(b"HTTP/1.1 200 ")
    loop = asyncio.get_running_loop()
    answered = loop.time()
    assert await asyncio.wait_for(reader.read(), 8) == b""  # closed by the server
    assert 4 < loop.time() - answered < 8
    writer.close()
    await _until_open(server, 0)
