"""call_external and initiate_call end to end: a real HTTP client asks, a SIPp trunk
answers the PSTN number first and a SIPp phone is the internal destination, and a real
WebSocket client's frames go through the strict model of Basix's own CTI client."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect

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
from tests.interop.sipp import free_port, start_sipp
from tests.interop.test_cti_basix_client import _basix, _channel_events, _frame

pytestmark = [pytest.mark.interop, pytest.mark.slow]
TIM = {"name": "Tim Tyler 田中太郎", "prefecture": "東京都"}


@pytest.mark.parametrize(
    ("method", "body"),
    [
        (
            "call_external",
            {
                "target": {
                    "called_number": "0312341234",
                    "calling_number": "05068680000",
                    "end_user": TIM,
                },
                "destination": "alice",
                "group_name": "support",
            },
        ),
        (
            "initiate_call",
            {
                "pstn_number": "0312341234",
                "ani": "05068680000",
                "destination": "alice",
                "group_name": "support",
            },
        ),
    ],
)
async def test_the_number_answers_first_then_alice_and_an_app_sees_it(
    tmp_path: Path, method: str, body: dict[str, object]
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "05068680000")))
    async with (
        serving(tmp_path, config_for(phones)) as (server, http),
        connect(
            str(http.base_url).replace("http://", "ws://") + "/basix/api/ws_cti?app_name=crm",
            additional_headers={"Authorization": AUTH},
        ) as ws,
    ):
        app = await _basix(ws)
        answer = await post(http, method, body)
        assert answer["result_code"] == 0, answer
        uuids = answer["uuids"]
        assert isinstance(uuids, list) and len(uuids) == 1  # the PSTN leg
        (external,) = uuids
        await wait_bridged(server)
        assert await post(http, "hangup", {"uuid": external}) == {"result_code": 0}
        destination: str | None = None
        removed: set[str] = set()
        while destination is None or removed != {external, destination}:
            message = app.feed(await _frame(ws))
            if message.element != "channel":
                continue
            if message.info["uuid"] != external:
                destination = message.info["uuid"]
            if message.event == "removed":
                removed.add(message.info["uuid"])
        await finish(alice, trunk)

    assert app.store["channel"] == {}, "nothing left once the call ended"
    events = _channel_events(app, external)
    added = events[0].info
    assert added["peer_location"] == "external" and added["called_number"] == "0312341234"
    assert added["state"]["data"] == {
        "target_location": "ext",
        "target_type": "pstn",
        "address": "0312341234",
    }
    assert added["origination"] == ["call_external", "support"]
    if method == "call_external":
        assert added["end_user"]["items"][0]["name"] == TIM["name"]
    assert [m.info["state"]["name"] for m in events][-2:] == ["bridged", "bridged"]
    assert destination is not None
    far = _channel_events(app, destination)
    assert far[0].info["called_number"] == "alice" and far[0].info["calling_number"] == "0312341234"
    bridged = far[-2].info
    assert bridged["other_uuid"] == external and bridged["other_info"]["type"] == "end_user"
