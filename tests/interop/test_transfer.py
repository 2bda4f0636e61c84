"""Transfer and park end to end: SIPp plays the members' phones and the trunk, a real
WebSocket client sends the commands as Basix's own CTI client does (``cti.js``: JSON text
frames, undefined fields left out) and reads the BERT frames through the strict model of
that client; a real HTTP client uses the REST methods."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from switchboard.sip.message import Request
from tests.cti.basix_client import BasixClient, Message
from tests.interop.call_group_harness import (
    AUTH,
    Phones,
    SipTap,
    config_for,
    finish,
    post,
    serving,
    trunk_scenario,
    uas,
    wait_bridged,
)
from tests.interop.sipp import free_port, start_sipp
from tests.interop.test_cti_basix_client import _basix, _channel_events, _frame

pytestmark = [pytest.mark.interop, pytest.mark.slow]
CUSTOMER = "0312341234"


async def test_transfer_from_the_socket_and_rest_then_park_and_ring_back(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(
        uas(phones.alice, calls=3)
    )  # answers three times: the call, bob's transfer, the ring-back
    bob = await start_sipp(uas(phones.bob))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    async with (
        serving(tmp_path, config_for(phones)) as (server, http),
        connect(
            str(http.base_url).replace("http://", "ws://") + "/basix/api/ws_cti?app_name=crm",
            additional_headers={"Authorization": AUTH},
        ) as ws,
    ):
        app = await _basix(ws)
        tap = SipTap(server)
        answer = await post(http, "call_group", {"group_name": "support", "destination": CUSTOMER})
        assert answer["result_code"] == 0, answer
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        alice_uuid = uuids[0]
        live = await wait_bridged(server)
        customer = live.machine.call.plan.destination_channel

        # an unknown destination is refused, and the call stays as it was
        refused = await post(http, "transfer", {"uuid": alice_uuid, "destination": "nobody"})
        assert refused["result_code"] == 500
        error = refused["error"]
        assert isinstance(error, dict) and error["id"] == "invalid_destination"
        assert live.bridged

        # 1. Basix's client: {"cmd": "transfer", "uuid", "user_name"} (user_id undefined)
        await ws.send(json.dumps({"cmd": "transfer", "uuid": alice_uuid, "user_name": "bob"}))
        to_bob = await _added_channel(app, ws, customer)
        await _until_bridged(live)
        invites = [m for m in tap.messages if isinstance(m, Request) and m.method == "INVITE"]
        (invite_to_bob,) = [m for m in invites if m.call_id == to_bob]
        assert f"sip:{CUSTOMER}@" in (invite_to_bob.get("From") or "")
        byes = [m for m in tap.messages if isinstance(m, Request) and m.method == "BYE"]
        assert [m.call_id for m in byes] == [alice_uuid]

        # 2. REST: bob hands the customer back to alice
        moved = await post(http, "transfer", {"uuid": to_bob, "user_id": 1})
        assert moved == {"result_code": 0}
        to_alice = await _added_channel(app, ws, customer)
        await _until_bridged(live)
        gone = await post(http, "hangup", {"uuid": to_bob})  # released: not found
        assert gone["result_code"] == 500 and gone["error"]["id"] == "channel_not_found"  # type: ignore[index]

        # 3. Basix's client parks: alice is released, the customer waits; nobody picks it
        # up, so after the timeout the parker (alice) rings and answers again
        await ws.send(json.dumps({"cmd": "park", "uuid": to_alice, "timeout": 1}))
        parked = await _state(app, ws, customer, "park")
        rung_back = await _added_channel(app, ws, customer)
        back_at = next(m for m in _channel_events(app, rung_back) if m.event == "added")
        offset = (back_at.info["offer_timestamp"] - parked.info["state"]["ts"]) / 1e6
        assert abs(offset - 1.0) <= 0.05, offset  # the park's timeout, kept to 50 ms
        await _until_bridged(live)
        assert await post(http, "hangup", {"uuid": customer}) == {"result_code": 0}
        while app.store["channel"]:
            app.feed(await _frame(ws))
        await finish(alice, bob, trunk)

    removed = {
        uuid: _channel_events(app, uuid)[-1].info["last_event_data"]
        for uuid in (alice_uuid, to_bob, to_alice, rung_back, customer)
    }
    assert removed[alice_uuid] == removed[to_bob] == removed[to_alice] == "send_bye,BLIND_TRANSFER"
    assert removed[customer] == removed[rung_back] == "send_bye,NORMAL_CLEARING"
    added = _channel_events(app, to_bob)[0].info
    assert added["other_uuid"] == customer and added["called_number"] == "bob"
    states = [m.info["state"]["name"] for m in _channel_events(app, customer)]
    assert states.count("park") == 1 and states[-1] == "bridged"
    parked_state = next(
        m for m in _channel_events(app, customer) if m.info["state"]["name"] == "park"
    )
    assert parked_state.info["state"]["data"] == {
        "slot": customer,
        "parker_id": 1,
        "parker_name": "alice",
    }


async def _added_channel(app: BasixClient, ws: ClientConnection, peer: str) -> str:
    """The next channel added whose ``other_uuid`` is ``peer``: the transfer's new leg."""
    while True:
        message = app.feed(await _frame(ws))
        if (
            message.element == "channel"
            and message.event == "added"
            and message.info.get("other_uuid") == peer
        ):
            return str(message.info["uuid"])


async def _state(app: BasixClient, ws: ClientConnection, uuid: str, name: str) -> Message:
    while True:
        message = app.feed(await _frame(ws))
        if (
            message.element == "channel"
            and message.info.get("uuid") == uuid
            and message.info["state"]["name"] == name
        ):
            return message


async def _until_bridged(live: object) -> None:
    for _ in range(200):
        if getattr(live, "bridged", False):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("not bridged again")
