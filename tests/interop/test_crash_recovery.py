"""Killing Switchboard (SIGKILL: no shutdown code runs) with callbacks pending, then
starting it again on the same database: every pending outcome is delivered, once."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.callbacks.receiver import callback_receiver
from tests.interop.call_group_harness import AUTH
from tests.interop.serve_process import start_serve
from tests.interop.sipp import free_port

pytestmark = [pytest.mark.interop, pytest.mark.slow]
CALLS = 20


def _config(tmp_path: Path) -> tuple[Path, str]:
    http = free_port(socket.SOCK_STREAM)
    path = tmp_path / "switchboard.toml"
    path.write_text(f"""
[server]
sip_listen = "127.0.0.1:{free_port()}"
http_listen = "127.0.0.1:{http}"
database = "sqlite:///{tmp_path / "db.sqlite"}"
callback_allow_private = true

[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "carol"
  sip_password = "never-registered"
  [[domains.groups]]
  id = 2222
  name = "nobody"
  members = ["carol"]
  [[domains.trunks]]
  name = "pstn"
  address = "127.0.0.1:{free_port()}"
""")
    return path, f"http://127.0.0.1:{http}"


def _outbox(database: Path) -> list[tuple[str, int, float | None]]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT delivery_id, attempts, delivered_at FROM callbacks").fetchall()
    return [(str(r[0]), int(r[1]), r[2]) for r in rows]


async def test_sigkill_with_callbacks_pending_loses_none_after_restart(tmp_path: Path) -> None:
    config, base_url = _config(tmp_path)
    database = tmp_path / "db.sqlite"
    hook_port = free_port(socket.SOCK_STREAM)  # nothing listens there yet
    first = await start_serve(config, base_url)
    try:
        async with httpx.AsyncClient(base_url=base_url) as client:
            body = {"group_name": "nobody", "destination": "0312341234",
                    "callback_url": f"http://127.0.0.1:{hook_port}/hook"}  # fmt: skip
            for _ in range(CALLS):
                headers = {"Authorization": AUTH}
                answer = await client.post("/basix/api/call_group", headers=headers, json=body)
                assert answer.json()["result_code"] == 0, answer.text
        async with asyncio.timeout(20):  # every outcome stored and tried at least once
            while sum(1 for _, attempts, _ in _outbox(database) if attempts >= 1) < CALLS:
                await asyncio.sleep(0.1)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    pending = _outbox(database)
    assert len(pending) == CALLS and all(delivered is None for *_, delivered in pending)
    async with callback_receiver(hook_port) as receiver:
        second = await start_serve(config, base_url)
        try:
            # Retries are due within seconds; a delivery leased at the kill waits out its
            # 60 s lease before another node (here: the restarted one) may take it.
            await receiver.wait_for(CALLS, timeout=90)
            await asyncio.sleep(2)  # nothing more may come
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
    received = [r.headers["x-switchboard-delivery"] for r in receiver.received]
    assert sorted(received) == sorted(d for d, _, _ in pending)  # each one, once
    assert {json.loads(r.body)["error"]["id"] for r in receiver.received} == {"no_member_available"}
    assert all(delivered is not None for *_, delivered in _outbox(database))
