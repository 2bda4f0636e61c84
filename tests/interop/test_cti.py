"""ws_cti end to end: a real WebSocket client watches a call_group call made with SIPp
phones and a SIPp trunk (API §4)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.app import Server
from switchboard.cti.channels import Channel
from switchboard.cti.elements import ELEMENT_FIELDS
from tests.cti.basix_client import BasixClient
from tests.interop.call_group_harness import (
    AUTH,
    Phones,
    SipTap,
    config_for,
    post,
    serving,
    start_call_group,
    trunk_scenario,
    uas,
    wait_bridged,
)
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
OTHER_AUTH = "Basic " + base64.b64encode(b"other.example:other-token").decode()
OTHER_DOMAIN = """
[[domains]]
name = "other.example"
api_token = "other-token"
"""


def _ws_url(client: httpx.AsyncClient, query: str = "") -> str:
    base = str(client.base_url).replace("http://", "ws://")
    return f"{base}/basix/api/ws_cti{query}"


async def _json_frame(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(frame, str), "format=json sends text frames"
    message: dict[str, Any] = json.loads(frame)
    return message


async def _bert_frame(ws: ClientConnection) -> bytes:
    frame = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(frame, bytes), "BERT travels in binary frames"
    return frame


async def _field_specs(ws: ClientConnection) -> list[str]:
    """The field_spec of every element, first thing on a connection."""
    elements = []
    for _ in ELEMENT_FIELDS:
        message = await _json_frame(ws)
        assert message["type"] == "field_spec", message
        elements.append(message["element"])
    return elements


async def _greeting(ws: ClientConnection) -> dict[str, dict[str, Any]]:
    """field_specs, then each element's initial_info, by element."""
    assert await _field_specs(ws) == list(ELEMENT_FIELDS)
    initial = {}
    for _ in ELEMENT_FIELDS:
        message = await _json_frame(ws)
        assert message["type"] == "initial_info", message
        initial[message["element"]] = message
    return initial


async def _events_until_removed(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """info_events until ``count`` channels have been removed."""
    events: list[dict[str, Any]] = []
    while sum(1 for e in events if e["event"] == "removed") < count:
        message = await _json_frame(ws)
        assert message["type"] == "info_event", message
        events.append(message)
    return events


async def test_answered_call_is_streamed_with_end_user_on_the_trunk_leg(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "05068680000")))
    config = config_for(phones) + OTHER_DOMAIN
    async with (
        serving(tmp_path, config) as (server, client),
        connect(_ws_url(client, "?format=json"), additional_headers={"Authorization": AUTH}) as ws,
        connect(
            _ws_url(client, "?format=json"), additional_headers={"Authorization": OTHER_AUTH}
        ) as other,
    ):
        initial = await _greeting(ws)
        assert initial["channel"]["data"] == []
        assert [u["name"] for u in initial["user"]["data"]] == ["alice", "bob", "carol"]
        other_initial = await _greeting(other)
        assert other_initial["user"]["data"] == []
        answer = await post(client, "call_group", {
            "group_extension": "1111",
            "destination": {"called_number": "0312341234", "calling_number": "05068680000",
                            "end_user": {"id": "#1234", "name": "Tim Tyler"}},
        })  # fmt: skip
        assert answer["result_code"] == 0, answer
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        await wait_bridged(server)
        assert await post(client, "hangup", {"uuid": uuids[0]}) == {"result_code": 0}
        events = await _events_until_removed(ws, 3)  # alice, bob (never rung), the trunk
        await asyncio.wait_for(alice.communicate(), 15)
        await asyncio.wait_for(trunk.communicate(), 15)
        # the other domain saw nothing of it
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(other.recv(), 0.5)

    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq counts every event"
    alice_events = [e for e in events if e["data"]["uuid"] == uuids[0]]
    assert [(e["event"], e["data"]["state"]["name"], e["data"]["last_event"])
            for e in alice_events] == [
        ("added", "calling", "STATE_CHANGE"),
        ("updated", "calling", "STATE_CHANGE"),  # SIPp's 180: tagged ringing
        ("updated", "calling", "CHANNEL_ANSWER"),
        ("updated", "bridged", "CHANNEL_ANSWER"),
        ("removed", "bridged", "CHANNEL_HANGUP"),
    ]  # fmt: skip
    assert alice_events[1]["data"]["tags"] == ["ringing"]
    assert alice_events[-1]["event"] == "removed"
    assert alice_events[0]["data"]["calling_name"] == "Support"
    assert alice_events[0]["data"]["target"]["name"] == "alice"
    assert alice_events[-1]["data"]["last_event_data"] == "send_bye,NORMAL_CLEARING"
    trunk_events = [e for e in events if e["data"]["uuid"] not in uuids]
    assert [(e["event"], e["data"]["state"]["name"], e["data"]["last_event"])
            for e in trunk_events] == [
        ("added", "calling", "STATE_CHANGE"),
        ("updated", "calling", "STATE_CHANGE"),
        ("updated", "bridged", "CHANNEL_ANSWER"),
        ("removed", "bridged", "CHANNEL_HANGUP"),
    ]  # fmt: skip
    # the API hung up: Switchboard sent BYE on both legs
    assert trunk_events[-1]["data"]["last_event_data"] == "send_bye,NORMAL_CLEARING"
    added = trunk_events[0]
    assert added["event"] == "added" and added["data"]["peer_location"] == "external"
    assert added["data"]["called_number"] == "0312341234"
    assert added["data"]["other_uuid"] == uuids[0]
    assert added["data"]["end_user"] == {
        "count": 1,
        "items": [
            {
                "id": "#1234",
                "name": "Tim Tyler",
                "organization": None,
                "avatar": None,
                "prefecture": None,
            }
        ],
    }
    bridged = [e for e in events if e["data"]["state"]["name"] == "bridged"]
    assert {e["data"]["uuid"] for e in bridged} == {uuids[0], added["data"]["uuid"]}
    assert all(e["data"]["answer_timestamp"] for e in bridged)
    assert trunk_events[-1]["event"] == "removed"
    bob = [
        (e["event"], e["data"]["last_event_data"]) for e in events if e["data"]["uuid"] == uuids[1]
    ]
    assert bob == [("added", None), ("removed", "send_refuse,ORIGINATOR_CANCEL")], "never rung"
    assert server.cti.channels("example.com") == []


async def test_unanswered_member_is_removed_with_its_disposition_and_bert_frames(
    tmp_path: Path,
) -> None:
    """Nobody answers within answer_timeout: each rung member's channel is added, then
    removed as cancelled; BERT (the default) decodes to the Basix tuples."""
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, SCENARIOS / "uas_ring_until_cancel.xml"))
    config = config_for(phones, member_timeout=1, answer_timeout=1)
    async with (
        serving(tmp_path, config) as (_, client),
        connect(_ws_url(client), additional_headers={"Authorization": AUTH}) as ws,
    ):
        basix = BasixClient()
        for _ in range(2 * len(ELEMENT_FIELDS)):  # field_specs, then each initial_info
            basix.feed(await _bert_frame(ws))
        assert basix.store["channel"] == {} and set(basix.store["user"]) == {"1", "2", "3"}
        answer = await post(
            client, "call_group", {"group_name": "support", "destination": "0312341234"}
        )
        assert answer["result_code"] == 0
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        removed: set[str] = set()
        while removed != set(uuids):
            message = basix.feed(await _bert_frame(ws))
            if message.event == "removed":
                removed.add(message.info["uuid"])
        await asyncio.wait_for(alice.communicate(), 15)
    alice_rows = [m for m in basix.messages if m.info.get("uuid") == uuids[0]]
    assert [m.event for m in alice_rows] == ["added", "updated", "removed"]
    added, ringing, gone = (m.info for m in alice_rows)
    assert added["state"]["name"] == ringing["state"]["name"] == "calling"
    assert ringing["tags"] == "ringing"
    assert gone["hangup_timestamp"] >= added["offer_timestamp"]
    assert gone["last_event"] == "CHANNEL_HANGUP"
    assert gone["last_event_data"] == "send_cancel,NO_ANSWER"
    bob_rows = [m for m in basix.messages if m.info.get("uuid") == uuids[1]]
    assert [(m.event, m.info["last_event_data"]) for m in bob_rows] == [
        ("added", None),
        ("removed", "send_refuse,ORIGINATOR_CANCEL"),  # the hunt ended before his turn
    ]
    assert basix.store["channel"] == {}


async def test_ticket_opens_one_websocket_once(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (_, client):
        uri = "/basix/api/ws_cti?format=json"
        issued = await post(client, "gen_ws_ticket", {"uri": uri})
        ticket = base64.b64encode(f"ws_ticket:{issued['ticket']}".encode()).decode()
        headers = {"Authorization": f"Basic {ticket}"}
        async with connect(_ws_url(client, "?format=json"), additional_headers=headers) as ws:
            assert (await _json_frame(ws))["type"] == "field_spec"
        with pytest.raises(InvalidStatus) as refused_upgrade:  # used up: the upgrade is refused
            await connect(_ws_url(client, "?format=json"), additional_headers=headers)
        assert refused_upgrade.value.response.status_code == 403
        with pytest.raises(InvalidStatus):  # and so is no authentication at all
            await connect(_ws_url(client, "?format=json"))
        refused = await post(client, "gen_ws_ticket", {"uri": "/elsewhere"})
        assert refused["result_code"] != 0


async def test_hangup_command_over_the_websocket_ends_the_call(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    async with (
        serving(tmp_path, config_for(phones)) as (server, client),
        connect(_ws_url(client, "?format=json"), additional_headers={"Authorization": AUTH}) as ws,
    ):
        await _greeting(ws)
        answer = await post(client, "call_group", {"group_name": "support",
                                                    "destination": "0312341234"})  # fmt: skip
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        await wait_bridged(server)
        await ws.send(json.dumps({"cmd": "hangup", "uuid": uuids[0]}))
        events = await _events_until_removed(ws, 3)
        await asyncio.wait_for(alice.communicate(), 15)
        await asyncio.wait_for(trunk.communicate(), 15)
    assert events[-1]["event"] == "removed"
    assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_slow_subscriber_is_dropped_and_a_reading_one_keeps_every_event(
    tmp_path: Path,
) -> None:
    """One client stops reading; once its socket buffers and its queue are full it is
    closed with ``too_slow`` while the reading client receives every event in order."""
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (server, client):
        stalled = await _stalled_subscriber(client)
        async with connect(
            _ws_url(client, "?format=json"), additional_headers={"Authorization": AUTH}
        ) as fast:
            await _greeting(fast)
            received: list[int] = []

            async def read_all(count: int) -> None:
                while len(received) < count:
                    received.append((await _json_frame(fast))["seq"])

            events = 20_000
            reader = asyncio.create_task(read_all(events))
            first = await _flood(server, events)
            await asyncio.wait_for(reader, 60)
        assert received == list(range(first, first + events))
        assert server.cti.counters["cti_dropped_subscribers"] == 1
        assert len(server.cti.subscribers["example.com"]) == 0
        assert await _read_until(stalled, b'"data":"too_slow"'), "told why it was closed"
        stalled.close()


async def test_a_stalled_subscriber_does_not_delay_call_setup(tmp_path: Path) -> None:
    """With a subscriber that reads nothing and a backlog queued for it, a call_group still
    sends its first INVITE promptly and the reading subscriber sees the call."""
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    async with serving(tmp_path, config_for(phones)) as (server, client):
        stalled = await _stalled_subscriber(client)
        await _flood(server, 1500)  # its socket is full and events queue for it
        (backlogged,) = server.cti.subscribers["example.com"]
        assert backlogged.queue.qsize() > 0
        tap = SipTap(server)
        async with connect(
            _ws_url(client, "?format=json"), additional_headers={"Authorization": AUTH}
        ) as ws:
            await _greeting(ws)
            posted = server.endpoint.now()
            uuids = await start_call_group(client, {"group_name": "support",
                                                    "destination": "0312341234"})  # fmt: skip
            setup = tap.first("INVITE sip:alice", uuids[0]) - posted
            added = await _json_frame(ws)
            await wait_bridged(server)
            await post(client, "hangup", {"uuid": uuids[0]})
            await asyncio.wait_for(alice.communicate(), 15)
            await asyncio.wait_for(trunk.communicate(), 15)
        stalled.close()
    assert setup < 0.1, f"first INVITE {setup * 1000:.0f} ms after the request"
    assert added["event"] == "added" and added["data"]["uuid"] == uuids[0]


async def _stalled_subscriber(client: httpx.AsyncClient) -> socket.socket:
    """A ws_cti subscriber that upgrades and then never reads: a raw socket whose receive
    buffer is fixed small before connect, so it fills after kilobytes, not megabytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (client.base_url.host, client.base_url.port or 80))
    key = base64.b64encode(b"stalled-client!!").decode()
    await loop.sock_sendall(sock, (
        "GET /basix/api/ws_cti?format=json&app_name=stalled HTTP/1.1\r\nHost: switchboard\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\nAuthorization: {AUTH}\r\n\r\n"
    ).encode())  # fmt: skip
    assert await _read_until(sock, b"101 Switching Protocols")
    return sock


async def _flood(server: Server, events: int) -> int:
    """Publish ``events`` channel updates of 1 kB at ~10 000 events/s (far beyond what calls
    produce); the first one's seq."""
    channel = Channel(uuid="flood", domain="example.com", calling_name="x" * 1000)
    first = server.cti.publish("added", channel).seq
    for number in range(1, events):
        server.cti.publish("updated", channel.with_(offer_timestamp=number))
        if number % 10 == 0:
            await asyncio.sleep(0.001)
    return first


async def _read_until(sock: socket.socket, marker: bytes, timeout: float = 15) -> bool:
    loop = asyncio.get_running_loop()
    seen = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while marker not in seen:
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    break
                seen = seen[-len(marker):] + chunk  # fmt: skip
    return marker in seen


async def test_reconnecting_with_since_replays_exactly_the_missed_events(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (server, client):
        headers = {"Authorization": AUTH}
        channel = Channel(uuid="c-9", domain="example.com", called_number="alice")
        server.cti.publish("added", channel)
        async with connect(_ws_url(client, "?format=json"), additional_headers=headers) as ws:
            initial = (await _greeting(ws))["channel"]
            assert [c["uuid"] for c in initial["data"]] == ["c-9"]
            seen = initial["seq"]
        server.cti.publish("updated", channel.with_(answer_timestamp=1))
        server.cti.publish("removed", channel.with_(hangup_timestamp=2))
        query = f"?format=json&since={seen}"
        async with connect(_ws_url(client, query), additional_headers=headers) as ws:
            await _field_specs(ws)
            replayed = [await _json_frame(ws) for _ in range(2)]
            assert [(m["event"], m["seq"]) for m in replayed] == [
                ("updated", seen + 1), ("removed", seen + 2),
            ]  # fmt: skip
            with pytest.raises(TimeoutError):  # nothing twice
                await asyncio.wait_for(ws.recv(), 0.3)
        # too far back for the buffer: a fresh snapshot instead
        server.cti.history_size = 1
        server.cti.history["example.com"] = deque(list(server.cti.history["example.com"])[-1:])
        async with connect(
            _ws_url(client, "?format=json&since=0"), additional_headers=headers
        ) as ws:
            fresh = (await _greeting(ws))["channel"]
            assert fresh["type"] == "initial_info" and fresh["data"] == []


async def test_a_third_connection_is_refused_unless_forced_which_replaces_the_oldest(
    tmp_path: Path,
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (_, client):
        headers = {"Authorization": AUTH}
        url = _ws_url(client, "?format=json&app_name=crm")
        async with (
            connect(url, additional_headers=headers) as first,
            connect(url, additional_headers=headers) as second,
        ):
            for ws in (first, second):
                await _greeting(ws)
            async with connect(url, additional_headers=headers) as third:
                refused = await _json_frame(third)
                assert refused == {"type": "system_msg", "data": "connection_limit_reached"}
            async with connect(f"{url}&forced=true", additional_headers=headers) as forced:
                assert (await _json_frame(forced))["type"] == "field_spec"
                replaced = await _json_frame(first)
                assert replaced == {"type": "system_msg", "data": "connection_replaced"}
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(first.recv(), 5)


async def test_subscription_options_user_selectors_force_and_tickets(tmp_path: Path) -> None:
    """``user_*`` restricts a socket to that user's channels (not with full_events);
    ``force=true`` is ``forced=true``; a ticket cannot open ``full_events=true``."""
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    headers = {"Authorization": AUTH}
    async with serving(tmp_path, config_for(phones)) as (server, client):
        async with (
            connect(_ws_url(client, "?format=json&user_name=alice"), additional_headers=headers)
            as mine,
            connect(
                _ws_url(client, "?format=json&user_name=alice&full_events=true&app_name=wall"),
                additional_headers=headers,
            ) as everything,
        ):  # fmt: skip
            await _greeting(mine)
            await _greeting(everything)
            uuids = await start_call_group(
                client, {"group_name": "support", "destination": "0312341234"}
            )
            await wait_bridged(server)
            await post(client, "hangup", {"uuid": uuids[0]})
            all_events = await _events_until_removed(everything, 3)
            await asyncio.wait_for(alice.communicate(), 15)
            await asyncio.wait_for(trunk.communicate(), 15)
            alice_only = await _events_until_removed(mine, 1)
            with pytest.raises(TimeoutError):  # bob's and the trunk's channels never come
                await asyncio.wait_for(mine.recv(), 0.5)
        assert {e["data"]["uuid"] for e in alice_only} == {uuids[0]}
        assert {e["data"]["uuid"] for e in all_events} > {uuids[0], uuids[1]}
        async with connect(
            _ws_url(client, "?format=json&user_name=nobody"), additional_headers=headers
        ) as unknown:
            assert await _json_frame(unknown) == {"type": "system_msg", "data": "user_not_found"}
        url = _ws_url(client, "?format=json&app_name=crm")
        async with (
            connect(url, additional_headers=headers) as first,
            connect(url, additional_headers=headers) as second,
            connect(f"{url}&force=true", additional_headers=headers) as forced,
        ):
            await _greeting(second)
            await _greeting(forced)
            await _greeting(first)
            replaced = await _json_frame(first)
            assert replaced == {"type": "system_msg", "data": "connection_replaced"}
        plain = await post(client, "gen_ws_ticket", {"uri": "/basix/api/ws_cti?format=json"})
        async with connect(_ws_url(client, f"?format=json&ws_ticket={plain['ticket']}")) as ws:
            await _greeting(ws)  # the same ticket form, without full_events, is served
        uri = "/basix/api/ws_cti?format=json&full_events=true"
        issued = await post(client, "gen_ws_ticket", {"uri": uri})
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                _ws_url(client, f"?format=json&full_events=true&ws_ticket={issued['ticket']}")
            )
        assert refused.value.response.status_code == 403
