"""What the call_group end-to-end tests share: a server with its HTTP API, SIPp phones and
trunk, a tap on the SIP the server sends, and a way to start a call."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from switchboard.app import Server
from switchboard.pbx.live import LiveCall
from switchboard.sip.message import Message
from switchboard.sip.transaction.base import Peer
from tests.callbacks.receiver import CallbackReceiver
from tests.interop.servers import running_server
from tests.interop.sipp import SCENARIOS

AUTH = "Basic " + base64.b64encode(b"example.com:token-for-tests").decode()


@dataclass
class Phones:
    alice: int
    bob: int
    trunk: int


def config_for(phones: Phones, *, member_timeout: int = 15, answer_timeout: int = 60) -> str:
    return f"""
[[domains]]
name = "example.com"
api_token = "token-for-tests"
channel_limit = 10
calling_number = "0506868000"
calling_numbers = ["05068680000"]
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
async def serving(
    tmp_path: Path, config: str, extra: str = ""
) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    settings = "callback_allow_private = true\n" + extra  # the callback listener: loopback
    async with running_server(config, tmp_path / "db.sqlite", settings) as server:
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


def trunk_scenario(tmp_path: Path, caller: str, *, linger: bool = False) -> Path:
    """The SIPp trunk expecting ``caller``; ``linger``: each call stays 4 s after its BYE to
    answer a retransmitted BYE (when its 200 may have been lost)."""
    text = (SCENARIOS / "uas_trunk.xml").read_text().replace("CALLER_NUMBER", caller)
    if linger:
        text = text.replace("<!--LINGER-->", '<timewait milliseconds="4000"/>')
    path = tmp_path / "trunk.xml"
    path.write_text(text)
    return path


def uas(port: int, scenario: Path | None = None, calls: int = 1) -> list[str]:
    """SIPp answering: the built-in ``uas`` or a scenario file."""
    kind = ["-sn", "uas"] if scenario is None else ["-sf", str(scenario)]
    return [*kind, "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-nostdin"]


async def wait_bridged(server: Server) -> LiveCall:
    for _ in range(200):
        bridged = [call for call in server.engine.calls if call.bridged]
        if bridged:
            return bridged[0]
        await asyncio.sleep(0.025)
    calls = [(c.machine.state.name, c.machine.call.end_reason) for c in server.engine.calls]
    raise AssertionError(f"the call was not bridged; calls (state, end reason): {calls}")


async def post(client: httpx.AsyncClient, method: str, body: object) -> dict[str, object]:
    response = await client.post(f"/basix/api/{method}", json=body, headers={"Authorization": AUTH})
    assert response.status_code == 200, (response.status_code, response.text)
    result: dict[str, object] = response.json()
    return result


class SipTap:
    """Times of SIP messages leaving the server, by first line (e.g. "CANCEL sip:alice…")."""

    def __init__(self, server: Server) -> None:
        self.sent: list[tuple[float, str, str]] = []  # (loop time, first line, Call-ID)
        self.messages: list[Message] = []
        endpoint = server.endpoint
        original = endpoint._send

        def send(message: Message, peer: Peer) -> None:
            self.sent.append((endpoint.now(), message.first_line, message.get("Call-ID") or ""))
            self.messages.append(message)
            original(message, peer)

        endpoint._send = send  # type: ignore[method-assign]

    def first(self, prefix: str, call_id: str | None = None) -> float:
        for time, line, cid in self.sent:
            if line.startswith(prefix) and (call_id is None or cid == call_id):
                return time
        raise AssertionError(f"no {prefix} sent: {[s[1] for s in self.sent]}")


async def finish(*processes: asyncio.subprocess.Process) -> None:
    for process in processes:
        out, _ = await asyncio.wait_for(process.communicate(), 15)
        assert process.returncode == 0, out.decode(errors="replace")[-1500:]


async def callback_body(receiver: CallbackReceiver) -> dict[str, Any]:
    (callback,) = await receiver.wait_for(1)
    result: dict[str, Any] = json.loads(callback.body)
    return result


async def start_call_group(client: httpx.AsyncClient, body: dict[str, object]) -> list[str]:
    """POST call_group, which must be accepted; the member channels' UUIDs."""
    answer = await post(client, "call_group", body)
    assert answer["result_code"] == 0, answer
    uuids = answer["uuids"]
    assert isinstance(uuids, list)
    return uuids
