"""Authentication abuse against a running server: token guessing over HTTP and the
WebSocket upgrade, REGISTER password guessing with SIPp, and other domains' credentials.

The attacker sends from 127.0.0.2 and the honest client from 127.0.0.1, both on loopback,
so the tests can show that a throttled source does not shut others out."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.callbacks.receiver import callback_receiver
from tests.interop.call_group_harness import (
    AUTH,
    Phones,
    config_for,
    post,
    serving,
    start_call_group,
)
from tests.interop.servers import injection_file, running_server, users_config
from tests.interop.sipp import SCENARIOS, free_port, run_sipp, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
ATTACKER = "127.0.0.2"
OTHER_DOMAIN = """
[[domains]]
name = "other.example"
api_token = "other-token"
  [[domains.groups]]
  id = 3000
  name = "support"
"""


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_api_token_guessing_is_throttled_while_other_sources_are_served(
    tmp_path: Path,
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (server, client):
        attacker = httpx.AsyncClient(
            base_url=client.base_url, transport=httpx.AsyncHTTPTransport(local_address=ATTACKER)
        )
        async with attacker:
            body = {"uuid": "no-such-channel"}
            for n in range(10):
                guess = await attacker.post(
                    "/basix/api/hangup", json=body, headers=_basic("example.com", f"guess{n}")
                )
                assert guess.json()["error"]["id"] == "authentication_required"
            refused = await attacker.post("/basix/api/hangup", json=body, headers={
                "Authorization": AUTH})  # fmt: skip
            assert refused.status_code == 429
            assert refused.json()["error"]["id"] == "too_many_failures"
            assert 0 < int(refused.headers["Retry-After"]) <= 60
            ws_url = str(client.base_url).replace("http://", "ws://") + "/basix/api/ws_cti"
            with pytest.raises(InvalidStatus) as upgrade:
                async with connect(ws_url, additional_headers={"Authorization": AUTH},
                                   local_addr=(ATTACKER, 0)):  # fmt: skip
                    pass
            assert upgrade.value.response.status_code == 403
        honest = await post(client, "hangup", body)  # 127.0.0.1: authenticated as usual
        assert honest["error"]["id"] == "channel_not_found"  # type: ignore[index]
        counters = server.statistics()
        assert counters["api_auth_failures"] == 10
        assert counters["api_auth_refused_throttled"] == 2


async def test_websocket_upgrade_guessing_counts_toward_the_throttle(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (server, client):
        ws_url = str(client.base_url).replace("http://", "ws://") + "/basix/api/ws_cti"
        for n in range(10):
            with pytest.raises(InvalidStatus):
                async with connect(ws_url, additional_headers=_basic("example.com", f"g{n}"),
                                   local_addr=(ATTACKER, 0)):  # fmt: skip
                    pass
        transport = httpx.AsyncHTTPTransport(local_address=ATTACKER)
        async with httpx.AsyncClient(base_url=client.base_url, transport=transport) as attacker:
            refused = await attacker.post(
                "/basix/api/gen_ws_ticket", json={"uri": "/basix/api/ws_cti"},
                headers={"Authorization": AUTH},
            )  # fmt: skip
        assert refused.status_code == 429
        assert server.statistics()["api_auth_failures"] == 10


async def test_another_domains_token_cannot_touch_this_domains_call(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    ring = SCENARIOS / "uas_ring_until_cancel.xml"
    alice = await start_sipp(["-sf", str(ring), "-i", "127.0.0.1", "-p", str(phones.alice),
                              "-m", "1", "-nostdin"])  # fmt: skip
    config = config_for(phones, member_timeout=2, answer_timeout=2) + OTHER_DOMAIN
    async with callback_receiver() as receiver, serving(tmp_path, config) as (server, client):
        uuids = await start_call_group(client, {"group_id": 1111, "destination": "0312341234",
                                                "callback_url": receiver.url})  # fmt: skip
        other = _basic("other.example", "other-token")
        for method, body in (
            ("hangup", {"uuid": uuids[0]}),
            ("call_group", {"group_id": 1111, "destination": "0312341234"}),
            ("call_group", {"group_name": "support", "destination": "alice"}),
        ):
            answer = await client.post(f"/basix/api/{method}", json=body, headers=other)
            error = answer.json()["error"]["id"]
            assert error in ("channel_not_found", "group_not_found", "invalid_destination"), error
        wrong_domain = _basic("example.com", "other-token")  # right token, wrong domain
        answer = await client.post("/basix/api/hangup", json={"uuid": uuids[0]},
                                   headers=wrong_domain)  # fmt: skip
        assert answer.json()["error"]["id"] == "authentication_required"
        assert server.engine.statistics()["calls"] == 1  # the call rang on, untouched
        (callback,) = await receiver.wait_for(1)
        assert b'"no_answer"' in callback.body  # it ended on its own timeout, not by them
        await alice.wait()


async def test_register_password_guessing_is_throttled_per_source(tmp_path: Path) -> None:
    users = ["user0000"]
    wrong = injection_file(tmp_path / "wrong.csv", users, password="guessed")
    right = injection_file(tmp_path / "right.csv", users)
    async with running_server(users_config(1), tmp_path / "db.sqlite") as server:
        target = f"127.0.0.1:{server.endpoint.listen_port}"

        def sipp(scenario: str, inf: Path, source: str, calls: int) -> list[str]:
            return ["-sf", str(SCENARIOS / scenario), "-inf", str(inf), target, "-i", source,
                    "-p", str(free_port()), "-m", str(calls), "-nostdin", "-timeout", "30",
                    "-timeout_error"]  # fmt: skip

        # Five guesses are challenged and refused; then the source is blocked and the
        # next three get 403 at once, without a challenge (an unexpected answer to SIPp).
        guesses = await run_sipp(sipp("uac_register_wrong_password.xml", wrong, ATTACKER, 8), 40)
        assert (guesses.successful, guesses.failed) == (5, 3), guesses.output[-2000:]
        blocked = await run_sipp(sipp("uac_register.xml", right, ATTACKER, 1), 30)
        assert blocked.failed == 1  # even the right password, from the blocked source
        assert server.registrar.contacts("example.com", "user0000") == []
        honest = await run_sipp(sipp("uac_register.xml", right, "127.0.0.1", 1), 30)
        assert honest.returncode == 0, honest.output[-2000:]
        assert len(server.registrar.contacts("example.com", "user0000")) == 1
        assert server.registrar.counters["registered"] == 1
