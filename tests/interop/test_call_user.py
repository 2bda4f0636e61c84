"""call_user end to end: a real HTTP client asks, SIPp plays the user's two terminals and
the trunk, and a real WebSocket client's frames go through the strict model of Basix's own
CTI client (``tests/cti/basix_client.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from switchboard.sip.message import Request
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
from tests.interop.sipp import SCENARIOS, free_port, start_sipp
from tests.interop.test_cti_basix_client import _basix, _channel_events, _frame

pytestmark = [pytest.mark.interop, pytest.mark.slow]


async def test_call_user_rings_both_terminals_and_connects_the_one_that_answers(
    tmp_path: Path,
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    desk = free_port()
    mobile_sipp = await start_sipp(uas(phones.alice))
    desk_sipp = await start_sipp(uas(desk, SCENARIOS / "uas_ring_until_cancel.xml"))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
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
        tap = SipTap(server)
        body = {
            "user_name": "alice",
            "destination": "0312341234",
            "auto_answer": True,
            "group_resolver": "*",
        }
        answer = await post(http, "call_user", body)
        assert answer["result_code"] == 0, answer
        uuids = answer["uuids"]
        assert isinstance(uuids, list) and len(uuids) == 2  # her mobile and her desk
        mobile, desk_uuid = uuids
        await wait_bridged(server)
        invites = [m for m in tap.messages if isinstance(m, Request) and m.method == "INVITE"]
        to_alice = [m for m in invites if m.call_id in uuids]
        assert len(to_alice) == 2  # both rang at once
        for invite in to_alice:
            assert invite.get("Call-Info") == "<sip:example.com>;answer-after=0"
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
        await finish(mobile_sipp, desk_sipp, trunk)

    assert app.store["channel"] == {}, "nothing left once the call ended"
    mobile_events = _channel_events(app, mobile)
    assert [(m.event, m.info["state"]["name"]) for m in mobile_events][-2:] == [
        ("updated", "bridged"),
        ("removed", "bridged"),
    ]
    added = mobile_events[0].info
    assert added["origination"] == ["call_user", "support"] and added["group_id"] == 1111
    assert "auto_answer" in added["tags"].split(";")
    assert added["calling_number"] == "0312341234"
    assert mobile_events[-1].info["last_event_data"] == "send_bye,NORMAL_CLEARING"
    desk_events = _channel_events(app, desk_uuid)
    assert desk_events[-1].info["last_event_data"] == "send_cancel,LOSE_RACE"
    assert destination is not None
    far = _channel_events(app, destination)
    assert far[0].info["state"]["data"]["address"] == "0312341234"
    assert far[-2].info["other_uuid"] == mobile and far[-2].info["state"]["name"] == "bridged"
