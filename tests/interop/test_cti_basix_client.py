"""What a Basix web app holds: the BERT frames of real calls and a real phone registering,
fed through the strict model of Basix's own CTI client (``tests/cti/basix_client.py``)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from switchboard.cti.elements import ELEMENT_FIELDS
from tests.cti.basix_client import BasixClient, Message
from tests.interop.call_group_harness import (
    AUTH,
    Phones,
    config_for,
    finish,
    post,
    serving,
    trunk_scenario,
    uas,
    wait_bridged,
)
from tests.interop.sipp import SCENARIOS, free_port, start_sipp
from tests.interop.test_registrar_with_baresip import CONFIG as BARESIP_CONFIG
from tests.interop.test_registrar_with_baresip import _baresip_home

pytestmark = [pytest.mark.interop, pytest.mark.slow]

# The seed's example 3, with a name that is not ASCII and a prefecture.
END_USER = {"id": "#1234", "name": "Tim Tyler 田中太郎", "prefecture": "東京都"}


async def _basix(ws: ClientConnection) -> BasixClient:
    """A client that has read what comes on connecting: field_specs, then initial_infos."""
    client = BasixClient()
    for _ in range(2 * len(ELEMENT_FIELDS)):
        client.feed(await _frame(ws))
    assert [m.kind for m in client.messages] == ["field_spec"] * len(ELEMENT_FIELDS) + [
        "initial_info"
    ] * len(ELEMENT_FIELDS)
    return client


async def _frame(ws: ClientConnection, timeout: float = 10) -> bytes:
    frame = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(frame, bytes), "BERT travels in binary frames"
    return frame


def _channel_events(client: BasixClient, uuid: str) -> list[Message]:
    return [m for m in client.messages if m.element == "channel" and m.info.get("uuid") == uuid]


async def test_a_basix_app_follows_a_call_to_a_member_with_two_terminals(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    desk = free_port()
    alice_mobile = await start_sipp(uas(phones.alice))
    alice_desk = await start_sipp(uas(desk, SCENARIOS / "uas_ring_until_cancel.xml"))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "05068680000")))
    config = config_for(phones).replace(
        f'contacts = ["sip:alice@127.0.0.1:{phones.alice}"]',
        f'contacts = ["sip:alice@127.0.0.1:{phones.alice}", "sip:alice@127.0.0.1:{desk}"]',
    )
    async with (
        serving(tmp_path, config) as (server, http),
        connect(
            str(http.base_url).replace("http://", "ws://") + "/basix/api/ws_cti?app_name=crm",
            additional_headers={"Authorization": AUTH},
        ) as ws,
    ):
        app = await _basix(ws)
        store = app.store
        assert {u["name"] for u in store["user"].values()} == {"alice", "bob", "carol"}
        assert {u["name"]: u["presence"] for u in store["user"].values()}["carol"] == "offline"
        (group,) = store["group"].values()
        assert (group["name"], group["type"], group["main_extension"]) == ("support", 1, "1111")
        members = sorted(store["group_member"].values(), key=lambda m: m["priority"])
        assert [(m["user_id"], m["group_id"]) for m in members] == [(1, 1111), (2, 1111)]
        terminals = {t["name"] for t in store["terminal"].values()}
        assert f"sip:alice@127.0.0.1:{desk}" in terminals and len(terminals) == 3
        assert next(iter(app.get_domain().values()))["name"] == "example.com"
        assert store["channel"] == {} and store["channel_waiting"] == {}

        answer = await post(
            http,
            "call_group",
            {
                "group_extension": "1111",
                "destination": {
                    "called_number": "0312341234",
                    "calling_number": "05068680000",
                    "end_user": END_USER,
                },
            },
        )
        assert answer["result_code"] == 0, answer
        uuids = answer["uuids"]
        assert isinstance(uuids, list) and len(uuids) == 3  # alice's mobile and desk, bob
        mobile, desk_uuid, bob = uuids
        await wait_bridged(server)
        assert await post(http, "hangup", {"uuid": mobile}) == {"result_code": 0}
        destination: str | None = None
        removed: set[str] = set()
        while destination is None or removed != {*uuids, destination}:
            message = app.feed(await _frame(ws))
            if message.element != "channel":
                continue
            if message.info["uuid"] not in uuids:
                destination = message.info["uuid"]
            if message.event == "removed":
                removed.add(message.info["uuid"])
        await finish(alice_mobile, alice_desk, trunk)

    assert app.store["channel"] == {}, "nothing left once the call ended"
    assert server.cti.channels("example.com") == []
    mobile_events = _channel_events(app, mobile)
    assert [(m.event, m.info["state"]["name"], m.info["last_event"]) for m in mobile_events] == [
        ("added", "calling", "STATE_CHANGE"),
        ("updated", "calling", "STATE_CHANGE"),  # ringing
        ("updated", "calling", "CHANNEL_ANSWER"),
        ("updated", "bridged", "CHANNEL_ANSWER"),
        ("removed", "bridged", "CHANNEL_HANGUP"),
    ]
    added = mobile_events[0].info
    assert added["state"]["data"] == {
        "target_location": "int",
        "target_type": "user",
        "user_id": 1,
    }
    assert added["target"]["name"] == "alice" and added["origination"] == ["call_group", "support"]
    assert mobile_events[1].info["tags"] == "ringing"
    bridged = mobile_events[3].info
    assert bridged["other_uuid"] == destination
    assert bridged["other_info"]["type"] == "end_user"
    assert bridged["other_info"]["end_user"]["items"][0]["name"] == END_USER["name"]
    assert mobile_events[-1].info["last_event_data"] == "send_bye,NORMAL_CLEARING"
    desk_events = _channel_events(app, desk_uuid)
    assert desk_events[0].event == "added" and desk_events[-1].event == "removed"
    assert desk_events[-1].info["last_event_data"] == "send_cancel,LOSE_RACE"
    assert [(m.event, m.info["last_event_data"]) for m in _channel_events(app, bob)] == [
        ("added", None),
        ("removed", "send_refuse,ORIGINATOR_CANCEL"),
    ]
    assert destination is not None
    trunk_events = _channel_events(app, destination)
    assert [m.info["state"]["name"] for m in trunk_events] == [
        "calling",
        "calling",
        "bridged",
        "bridged",
    ]
    dialed: dict[str, Any] = trunk_events[0].info
    assert dialed["state"]["data"]["address"] == "0312341234"
    assert dialed["peer_location"] == "external" and dialed["calling_number"] == "05068680000"
    assert dialed["end_user"] == {
        "count": 1,
        "items": [
            {
                "id": "#1234",
                "name": "Tim Tyler 田中太郎",
                "organization": "",
                "avatar": "",
                "prefecture": "東京都",
            }
        ],
    }
    assert dialed["other_info"]["type"] == "user" and dialed["other_info"]["user_id"] == 1
    assert trunk_events[2].info["last_bridged_user_id"] == 1
    assert trunk_events[-1].info["last_event_data"] == "send_bye,NORMAL_CLEARING"


async def test_a_baresip_phone_registering_is_a_terminal_event(tmp_path: Path) -> None:
    binary = shutil.which("baresip")
    assert binary, "baresip is not installed: apt-get install baresip-core (see scripts/setup)"
    async with serving(tmp_path, BARESIP_CONFIG) as (server, http):
        url = str(http.base_url).replace("http://", "ws://") + "/basix/api/ws_cti"
        async with connect(url, additional_headers={"Authorization": AUTH}) as ws:
            app = await _basix(ws)
            assert app.store["terminal"] == {}
            assert app.store["user"]["1001"]["presence"] == "offline"
            phone_port = free_port()
            home = _baresip_home(tmp_path / "baresip", phone_port, server.endpoint.listen_port)
            process = await asyncio.create_subprocess_exec(
                binary,
                "-f",
                str(home),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
            try:
                registered = app.feed(await _frame(ws, 15))
                presence = app.feed(await _frame(ws))
            finally:
                process.terminate()  # baresip unregisters as it quits
                await process.communicate()
            unregistered = app.feed(await _frame(ws, 15))
            after = app.feed(await _frame(ws))
    assert (registered.element, registered.event) == ("terminal", "added")
    terminal = registered.info
    assert terminal["registered"] is True and terminal["assoc_user_id"] == 1001
    assert f":{phone_port}" in terminal["name"] and terminal["type"] == "sip"
    assert "baresip" in terminal["user_agent"].lower()
    assert (presence.element, presence.event, presence.info["presence"]) == (
        "user",
        "updated",
        "available",
    )
    assert (unregistered.element, unregistered.event) == ("terminal", "removed")
    assert unregistered.info["id"] == terminal["id"] and unregistered.info["registered"] is False
    assert (after.element, after.info["presence"]) == ("user", "offline")
    assert app.store["terminal"] == {}


async def test_a_terminal_that_refuses_leaves_while_its_sibling_rings_on(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    desk = free_port()
    alice_mobile = await start_sipp(uas(phones.alice, SCENARIOS / "uas_ring_until_cancel.xml"))
    alice_desk = await start_sipp(uas(desk, SCENARIOS / "uas_busy.xml"))
    config = config_for(phones).replace(
        f'contacts = ["sip:alice@127.0.0.1:{phones.alice}"]',
        f'contacts = ["sip:alice@127.0.0.1:{phones.alice}", "sip:alice@127.0.0.1:{desk}"]',
    )
    async with (
        serving(tmp_path, config) as (_server, http),
        connect(
            str(http.base_url).replace("http://", "ws://") + "/basix/api/ws_cti",
            additional_headers={"Authorization": AUTH},
        ) as ws,
    ):
        app = await _basix(ws)
        answer = await post(http, "call_group", {"group_name": "support", "destination": "0312"})
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        mobile, desk_uuid = uuids[0], uuids[1]
        while not any(m.event == "removed" for m in _channel_events(app, desk_uuid)):
            app.feed(await _frame(ws))
        assert mobile in app.store["channel"], "the mobile still rings"
        assert await post(http, "hangup", {"uuid": mobile}) == {"result_code": 0}
        while mobile in app.store["channel"]:
            app.feed(await _frame(ws))
        await finish(alice_mobile, alice_desk)
    assert _channel_events(app, desk_uuid)[-1].info["last_event_data"] == "recv_refuse,USER_BUSY"
