"""The provisioning API live, end to end (issue: "run it like a product"): the real
``switchboard serve`` process, SIPp phones and trunk, a real HTTP client and a CTI socket.

A user and a group member are added while a call is up: the call is untouched, the CTI
feed says what changed, the next call_group rings the new member first; a restart keeps
the change; ``switchboard apply`` of the original file reverts it (the running node
follows), and ``switchboard export`` writes what is in force."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.interop.call_group_harness import AUTH, finish, trunk_scenario, uas
from tests.interop.serve_process import start_serve, stop_serve
from tests.interop.sipp import free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
ADMIN = {"Authorization": "Bearer admin-token-for-tests-0123"}
DOMAIN = "/admin/api/domains/example.com"


def _config(tmp_path: Path, alice: int, trunk: int) -> tuple[Path, str]:
    http = free_port(socket.SOCK_STREAM)
    path = tmp_path / "switchboard.toml"
    path.write_text(f"""
[server]
sip_listen = "127.0.0.1:{free_port()}"
http_listen = "127.0.0.1:{http}"
database = "sqlite:///{tmp_path / "db.sqlite"}"
admin_token = "admin-token-for-tests-0123"
directory_poll_seconds = 0.2
trunk_ping_seconds = 0

[[domains]]
name = "example.com"
api_token = "token-for-tests"
calling_number = "0506868000"
  [[domains.users]]
  id = 1
  name = "alice"
  contacts = ["sip:alice@127.0.0.1:{alice}"]
  [[domains.groups]]
  id = 1111
  name = "support"
  member_answer_timeout = 5
  members = ["alice"]
  [[domains.trunks]]
  name = "pstn"
  address = "127.0.0.1:{trunk}"
""")
    return path, f"http://127.0.0.1:{http}"


async def _next(ws: ClientConnection, match: dict[str, Any]) -> dict[str, Any]:
    """The next JSON message whose keys include ``match`` (``state`` by its name)."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        data = message.get("data") or {}
        fields = {**message, **(data if isinstance(data, dict) else {})}
        state = fields.get("state")
        if isinstance(state, dict):
            fields["state"] = state.get("name")
        if all(fields.get(key) == value for key, value in match.items()):
            return message


async def _call(client: httpx.AsyncClient) -> list[str]:
    body = {"group_name": "support", "destination": "0312341234"}
    answer = (
        await client.post("/basix/api/call_group", json=body, headers={"Authorization": AUTH})
    ).json()
    assert answer["result_code"] == 0, answer
    return list(answer["uuids"])


async def test_a_member_added_during_a_call_is_rung_next_kept_and_reverted(
    tmp_path: Path,
) -> None:
    alice_port, trunk_port, dan_port = free_port(), free_port(), free_port()
    alice = await start_sipp(uas(alice_port))
    dan = await start_sipp(uas(dan_port))
    trunk = await start_sipp(uas(trunk_port, trunk_scenario(tmp_path, "0506868000"), calls=2))
    config, base_url = _config(tmp_path, alice_port, trunk_port)
    ws_url = base_url.replace("http://", "ws://") + "/basix/api/ws_cti?app_name=ops&format=json"
    server = await start_serve(config, base_url)
    try:
        async with (
            httpx.AsyncClient(base_url=base_url, headers={"Authorization": AUTH}) as client,
            httpx.AsyncClient(base_url=base_url, headers=ADMIN) as admin,
            connect(ws_url, additional_headers={"Authorization": AUTH}) as ws,
        ):
            first = await _call(client)
            await _next(ws, {"element": "channel", "uuid": first[0], "state": "bridged"})

            user = {"name": "dan", "contacts": [f"sip:dan@127.0.0.1:{dan_port}"]}
            added = (await admin.post(f"{DOMAIN}/users", json=user)).json()
            assert added["result_code"] == 0 and added["user"]["id"] == 2, added
            member = {"user": "dan", "position": 1}
            moved = await client.post(
                f"{DOMAIN}/groups/support/members", json=member, headers=ADMIN
            )
            assert moved.json()["group"]["members"] == ["dan", "alice"]
            await _next(ws, {"element": "user", "event": "added", "name": "dan"})
            await _next(ws, {"element": "group_member", "event": "added", "user_id": 2})

            # the call in progress is untouched: still bridged, and it ends when asked to
            statistics = (await client.get("/statistics")).json()
            assert statistics["counters"]["calls"] == 1
            hung_up = await client.post("/basix/api/hangup", json={"uuid": first[0]})
            assert hung_up.json()["result_code"] == 0
            await _next(ws, {"element": "channel", "uuid": first[0], "event": "removed"})

            second = await _call(client)
            assert len(second) == 2  # dan's terminal first, then alice's
            added_channel = await _next(
                ws, {"element": "channel", "uuid": second[0], "event": "added"}
            )
            assert added_channel["data"]["called_number"] == "dan"
            await _next(ws, {"element": "channel", "uuid": second[0], "state": "bridged"})
            await client.post(
                "/basix/api/hangup", json={"uuid": second[0]}, headers={"Authorization": AUTH}
            )
            await _next(ws, {"element": "channel", "uuid": second[0], "event": "removed"})
        await finish(alice, dan, trunk)

        await stop_serve(server)
        server = await start_serve(config, base_url)  # the same file: the change stands
        async with httpx.AsyncClient(base_url=base_url, headers=ADMIN) as client:
            group = (await client.get(f"{DOMAIN}/groups/support")).json()
            assert group["group"]["members"] == ["dan", "alice"]

            exported = subprocess.run(
                [sys.executable, "-m", "switchboard", "export", "--config", str(config)],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert 'members = [\n    "dan",\n    "alice",\n]' in exported.stdout or (
                'members = ["dan", "alice"]' in exported.stdout
            ), exported.stdout
            applied = subprocess.run(
                [sys.executable, "-m", "switchboard", "apply", str(config)],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert "applied" in applied.stdout
            async with asyncio.timeout(5):  # the running node follows within its poll
                while (await client.get(f"{DOMAIN}/users/dan")).status_code != 404:
                    await asyncio.sleep(0.1)
            group = (await client.get(f"{DOMAIN}/groups/support")).json()
            assert group["group"]["members"] == ["alice"]
    finally:
        await stop_serve(server)
