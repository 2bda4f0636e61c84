"""Exhausting the PBX's file descriptors: `switchboard serve` as it runs in production (its
own process, uvloop) under `ulimit -n 1024`, and an attacker at 127.0.0.2 holding 1000
idle TCP connections to SIP and 1000 to the HTTP API. Before the connection caps, they
took every descriptor: the API stopped answering everyone.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from tests.interop.call_group_harness import AUTH
from tests.interop.sipp import free_port
from tests.security.processes import descriptors_for_the_attacker, limited_server
from tests.security.sip_peer import raw_peer

pytestmark = [pytest.mark.interop, pytest.mark.slow]
ATTACKER = "127.0.0.2"
IDLE_CONNECTIONS = 1000
LIMIT = 1024


def _config(tmp_path: Path) -> tuple[Path, int, int]:
    sip, http = free_port(), free_port(socket.SOCK_STREAM)
    path = tmp_path / "switchboard.toml"
    path.write_text(f"""
[server]
sip_listen = "127.0.0.1:{sip}"
http_listen = "127.0.0.1:{http}"
database = "sqlite:///{tmp_path / "db.sqlite"}"

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
    return path, sip, http


async def _hold(port: int, count: int) -> list[socket.socket]:
    """``count`` idle connections from the attacker's address, opened 100 at a time; ones
    the server refuses or never accepts are counted out, not waited for."""
    loop = asyncio.get_running_loop()

    async def connect() -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((ATTACKER, 0))
        try:
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 2)
        except (OSError, TimeoutError):
            sock.close()
            return None
        return sock

    held: list[socket.socket] = []
    for _ in range(count // 100):
        batch = await asyncio.gather(*(connect() for _ in range(100)))
        held += [sock for sock in batch if sock is not None]
    return held


async def _sip_options(transport: str, port: int) -> int:
    """One OPTIONS from 127.0.0.1; the response's status."""
    host = "127.0.0.1"
    if transport == "UDP":
        peer = await raw_peer()
        try:
            local = peer.address
            peer.send(_options(transport, local), (host, port))
            return (await peer.response()).status
        finally:
            peer.close()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
    try:
        local = writer.get_extra_info("sockname")[:2]
        writer.write(_options(transport, local))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 3)
        return int(head.split()[1])
    finally:
        writer.close()


def _options(transport: str, local: tuple[str, int]) -> bytes:
    return (
        f"OPTIONS sip:example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch=z9hG4bK-fd-{transport}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@example.com>;tag=1\r\n"
        "To: <sip:example.com>\r\nCall-ID: fd-exhaustion\r\nCSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def test_idle_connections_from_one_source_leave_others_served(tmp_path: Path) -> None:
    config, sip, http = _config(tmp_path)
    held: list[socket.socket] = []
    with descriptors_for_the_attacker(2 * IDLE_CONNECTIONS + 200):
        async with limited_server(config, http) as base:
            try:
                held += await _hold(sip, IDLE_CONNECTIONS)
                held += await _hold(http, IDLE_CONNECTIONS)
                await asyncio.sleep(0.5)  # the server has seen every connection it accepted
                async with httpx.AsyncClient(base_url=base) as client:
                    assert (await client.get("/healthz")).status_code == 200
                    body = {"group_name": "nobody", "destination": "0312341234"}
                    answer = await client.post(
                        "/basix/api/call_group", json=body, headers={"Authorization": AUTH}
                    )
                    assert answer.json()["result_code"] == 0, answer.text
                assert await _sip_options("UDP", sip) == 200
                assert await _sip_options("TCP", sip) == 200
            finally:
                for sock in held:
                    sock.close()
