"""call_group end to end: the HTTP API, SIPp phones as members, a SIPp trunk, callbacks to
a real HTTP listener (issue: call_group end to end)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from switchboard.app import Server
from tests.callbacks.receiver import callback_receiver
from tests.interop.servers import running_server
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
AUTH = "Basic " + base64.b64encode(b"example.com:token-for-tests").decode()


@dataclass
class Phones:
    alice: int
    bob: int
    trunk: int


def _config(phones: Phones, *, member_timeout: int = 15, answer_timeout: int = 60) -> str:
    return f"""
[[domains]]
name = "example.com"
api_token = "token-for-tests"
channel_limit = 10
calling_number = "0506868000"
  [[domains.users]]
  id = 1
  name = "alice"
  contacts = ["sip:alice@127.0.0.1:{phones.alice}"]
  [[domains.users]]
  id = 2
  name = "bob"
  contacts = ["sip:bob@127.0.0.1:{phones.bob}"]
  [[domains.users]]
  id = 3
  name = "carol"
  sip_password = "never-registered"
  [[domains.groups]]
  id = 1111
  name = "support"
  label = "Support"
  extension = "1111"
  answer_timeout = {answer_timeout}
  member_answer_timeout = {member_timeout}
  members = ["alice", "bob"]
  [[domains.trunks]]
  name = "pstn"
  address = "127.0.0.1:{phones.trunk}"
"""


@asynccontextmanager
async def _server(tmp_path: Path, config: str) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    extra = "callback_allow_private = true"  # the callback listener is on loopback
    async with running_server(config, tmp_path / "db.sqlite", extra) as server:
        host, port = server.config.server.http_address
        task = asyncio.create_task(server.http.serve())
        while not server.http.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            try:
                yield server, client
            finally:
                server.http.should_exit = True
                await task


def _trunk_scenario(tmp_path: Path, caller: str) -> Path:
    path = tmp_path / "trunk.xml"
    path.write_text((SCENARIOS / "uas_trunk.xml").read_text().replace("CALLER_NUMBER", caller))
    return path


def _uas(port: int, scenario: Path | None = None, calls: int = 1) -> list[str]:
    """SIPp answering: the built-in ``uas`` or a scenario file."""
    kind = ["-sn", "uas"] if scenario is None else ["-sf", str(scenario)]
    return [*kind, "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-nostdin"]


async def _post(client: httpx.AsyncClient, method: str, body: object) -> dict[str, object]:
    response = await client.post(f"/basix/api/{method}", json=body, headers={"Authorization": AUTH})
    assert response.status_code == 200
    result: dict[str, object] = response.json()
    return result


async def test_first_member_answers_and_the_trunk_gets_the_caller_id(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(_uas(phones.alice))
    trunk = await start_sipp(_uas(phones.trunk, _trunk_scenario(tmp_path, "0506868000")))
    await asyncio.sleep(0.3)
    async with callback_receiver() as receiver, _server(tmp_path, _config(phones)) as (
        server, client,
    ):  # fmt: skip
        answer = await _post(client, "call_group", {
            "group_name": "support", "destination": "0312341234", "callback_url": receiver.url,
        })  # fmt: skip
        assert answer["result_code"] == 0, answer
        uuids = answer["uuids"]
        assert isinstance(uuids, list) and len(uuids) == 2
        (callback,) = await receiver.wait_for(1)
        body = json.loads(callback.body)
        assert body["result_code"] == 0 and body["uuid"] == uuids[0]
        assert body["answered_by"] == "alice" and body["request_uuids"] == uuids
        assert [a["result"] for a in body["attempts"]] == ["answered", "skipped"]
        for _ in range(100):
            if any(call.bridged for call in server.engine.calls):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the call was not bridged")
        hung_up = await _post(client, "hangup", {"uuid": uuids[0]})
        assert hung_up == {"result_code": 0}
        alice_out, _ = await asyncio.wait_for(alice.communicate(), 15)
        trunk_out, _ = await asyncio.wait_for(trunk.communicate(), 15)
        assert alice.returncode == 0, alice_out.decode(errors="replace")[-1500:]
        assert trunk.returncode == 0, trunk_out.decode(errors="replace")[-1500:]
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        assert not server.media.sessions
