"""Trunk health end to end: a SIPp trunk answers Switchboard's OPTIONS pings (up in
/metrics); once it is stopped it goes down within a ping and its timeout, and a PSTN
call_group then fails within 1 s of the member answering, with the cause in the
end-of-call event and in the log."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.callbacks.receiver import callback_receiver
from tests.interop.call_group_harness import AUTH, Phones, config_for, finish, post, serving, uas
from tests.interop.sipp import SCENARIOS, free_port, start_sipp
from tests.interop.test_cti_basix_client import _basix, _frame

pytestmark = [pytest.mark.interop, pytest.mark.slow]
TOKEN = "metrics-token-for-tests"
SETTINGS = f'metrics_token = "{TOKEN}"\ntrunk_ping_seconds = 0.5\ntrunk_ping_timeout = 0.5'


async def _trunk_up(client: httpx.AsyncClient) -> float | None:
    text = (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "switchboard_trunk_up" and sample.labels["trunk"] == "pstn":
                return sample.value
    return None


async def _until(client: httpx.AsyncClient, value: float, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while await _trunk_up(client) != value:
            await asyncio.sleep(0.05)


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_a_stopped_trunk_goes_down_and_pstn_calls_fail_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    phones = Phones(free_port(), free_port(), free_port())
    trunk = await start_sipp(
        uas(phones.trunk, SCENARIOS / "uas_options.xml", calls=10_000)
    )  # fmt: skip
    alice = await start_sipp(uas(phones.alice))
    async with (
        serving(tmp_path, config_for(phones), SETTINGS) as (server, client),
        callback_receiver() as receiver,
    ):
        await _until(client, 1, 5)  # it answers the pings
        url = str(client.base_url).replace("http://", "ws://") + "/basix/api/ws_cti?app_name=ops"
        async with connect(url, additional_headers={"Authorization": AUTH}) as ws:
            app = await _basix(ws)  # Basix's own client model: the trunk element passes
            assert app.messages[-1].element == "trunk"
            trunk.kill()
            await trunk.wait()
            stopped = asyncio.get_running_loop().time()
            await _until(client, 0, 5)
            noticed = asyncio.get_running_loop().time() - stopped
            assert noticed <= 0.5 + 0.5 + 0.3, noticed  # a ping interval and its timeout
            health = (await client.get("/healthz", headers={"Authorization": AUTH})).json()
            assert health["trunks"]["pstn"] == {"state": "down", "detail": "no answer in 0.5 s"}
            assert (await client.get("/healthz")).json() == {"status": "ok"}  # strangers
            while True:
                message = app.feed(await _frame(ws))
                if message.element == "trunk":
                    break
            assert (message.event, message.info["id"], message.info["state"]) == (
                "updated",
                "pstn",
                "down",
            )

        body = {
            "group_name": "support",
            "destination": "0312341234",
            "call_events_url": receiver.url,
        }
        answer = await post(client, "call_group", body)
        assert answer["result_code"] == 0, answer
        (delivered,) = await receiver.wait_for(1)
        event = json.loads(delivered.body)
        assert event["cause"].startswith("trunk pstn down (no answer in 0.5 s)"), event
        legs = {f"{leg['role']}:{leg['party']}": leg for leg in event["legs"]}
        member = legs["member:alice"]
        assert member["disposition"] == "answered"
        assert _at(member["ended_at"]) - _at(member["answered_at"]) < 1.0, member
        assert legs["destination:0312341234"]["sip_status"] == 503
        await finish(alice)
        assert not server.engine.calls
    lines = [r.getMessage() for r in caplog.records]
    assert any("trunk pstn of example.com" in line and "is down" in line for line in lines)
    assert any("trunk pstn down" in line and line.startswith("call ") for line in lines)
