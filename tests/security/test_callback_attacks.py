"""Attacks through a call's callback_url, against a running server and real listeners.

The attacker is a tenant with a valid API token (posting from 127.0.0.2) who chooses the
callback_url: a receiver that answers 256 MiB, one that drips a byte at a time, one that
never answers, a name that resolves to a public address for the check and to loopback for
the connection, an address in 100.64.0.0/10. The victims are the server (memory, its
callback delivery) and the other tenant (from 127.0.0.1), whose callbacks must stay on
time. And a URL's credentials must not leak into logs or the database.

Each call here goes to a group whose only member never registered: the call ends at once
with ``no_member_available`` and its outcome is posted to the callback_url.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import resource
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.app import Server
from tests.callbacks.raw_receiver import drip, huge_body, raw_receiver, stall
from tests.callbacks.receiver import callback_receiver
from tests.interop.servers import running_server

pytestmark = [pytest.mark.interop]

DEADLINE = 10.0  # callback_deadline's default: the tests run on the default config
MIB = 1024 * 1024


def _domain(name: str, token: str) -> str:
    return f"""
[[domains]]
name = "{name}"
api_token = "{token}"
  [[domains.users]]
  id = 1
  name = "carol"
  sip_password = "never-registered"
  [[domains.users]]
  id = 2
  name = "dave"
  extension = "2001"
  sip_password = "never-registered-either"
  [[domains.groups]]
  id = 1
  name = "night"
  members = ["carol"]
"""


CONFIG = _domain("example.com", "token-for-tests") + _domain("other.example", "other-token")
ATTACKER = ("example.com", "token-for-tests", "127.0.0.2")
TENANT = ("other.example", "other-token", "127.0.0.1")


@pytest.fixture(autouse=True)
async def outside(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No connection made in these tests leaves this machine, whatever the server under test
    would do (a server that accepts 100.64.0.1 would send to it): a connection to anything
    but a loopback address is recorded here and refused before it is made."""
    loop = asyncio.get_running_loop()
    real_connect = loop.create_connection
    refused: list[str] = []

    async def loopback_only(factory: Any, host: Any = None, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(str(host)):
            refused.append(str(host))
            raise ConnectionRefusedError(f"the test refuses {host}")
        return await real_connect(factory, host, *args, **kwargs)

    monkeypatch.setattr(loop, "create_connection", loopback_only)
    return refused


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


@asynccontextmanager
async def _server(tmp_path: Path, *, allow_private: bool) -> AsyncIterator[Server]:
    settings = f"callback_allow_private = {str(allow_private).lower()}\n"
    async with running_server(CONFIG, tmp_path / "db.sqlite", settings) as server:
        task = asyncio.create_task(server.http.serve())
        while not server.http.started:
            await asyncio.sleep(0.01)
        try:
            yield server
        finally:
            server.http.should_exit = True
            await task


async def _call_group(
    server: Server, who: tuple[str, str, str], callback_url: str
) -> dict[str, Any]:
    domain, token, source = who
    host, port = server.config.server.http_address
    auth = "Basic " + base64.b64encode(f"{domain}:{token}".encode()).decode()
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", transport=transport) as client:
        response = await client.post(
            "/basix/api/call_group",
            json={"group_name": "night", "destination": "2001", "callback_url": callback_url},
            headers={"Authorization": auth},
        )
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_huge_callback_answer_is_not_read_past_the_cap(tmp_path: Path) -> None:
    size = 256 * MIB
    async with (
        _server(tmp_path, allow_private=True) as server,
        raw_receiver(huge_body(size)) as receiver,
    ):
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert (await _call_group(server, ATTACKER, receiver.url()))["result_code"] == 0
        (connection,) = await receiver.wait_for(1)
        try:
            async with asyncio.timeout(10):
                await connection.finished.wait()  # the server closed it
        except TimeoutError:
            pass
        peak_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    # Sent before the close: what the kernel's socket buffers took (about 4 MiB), where
    # reading the whole answer took all 256 MiB, and as much memory.
    assert connection.written < 16 * MIB, f"{connection.written / MIB:.0f} MiB were read"
    assert peak_growth < 64 * MIB, f"peak memory grew {peak_growth / MIB:.0f} MiB"


@pytest.mark.slow
async def test_a_slow_drip_receiver_cannot_hold_a_try_past_the_deadline(tmp_path: Path) -> None:
    async with (
        _server(tmp_path, allow_private=True) as server,
        raw_receiver(drip(0.05)) as receiver,
    ):
        assert (await _call_group(server, ATTACKER, receiver.url()))["result_code"] == 0
        (connection,) = await receiver.wait_for(1)
        try:
            async with asyncio.timeout(DEADLINE + 2):
                await connection.finished.wait()
        except TimeoutError:
            pass
    assert connection.closed is not None, "the try was still held after the deadline"
    held = connection.closed - connection.accepted
    assert abs(held - DEADLINE) <= 0.05, f"held {held:.3f} s"


@pytest.mark.slow
async def test_a_stalled_receiver_of_one_domain_does_not_delay_another_domain(
    tmp_path: Path,
) -> None:
    async with (
        _server(tmp_path, allow_private=True) as server,
        raw_receiver(stall) as stalled,
        callback_receiver() as honest,
    ):
        # the receivers started on the server's own event loop: its overload guard may
        # have seen the loop late and refuses calls until its average lag settles
        settled = asyncio.get_running_loop().time() + 5
        while server.overload.overloaded:
            assert asyncio.get_running_loop().time() < settled, server.overload.lag
            await asyncio.sleep(0.02)
        for _ in range(24):  # more than a shared pool of 20 would let through
            answer = await _call_group(server, ATTACKER, stalled.url())
            assert answer["result_code"] == 0, answer
        await stalled.wait_for(4)
        async with asyncio.timeout(10):
            while await server.callbacks.outbox.pending_count() < 24:
                await asyncio.sleep(0.01)  # every stalled callback is queued
        loop = asyncio.get_running_loop()
        asked = loop.time()
        assert (await _call_group(server, TENANT, honest.url))["result_code"] == 0
        try:
            (callback,) = await honest.wait_for(1, timeout=DEADLINE + 2)
        except TimeoutError:
            pytest.fail("the other domain's callback never arrived")
        delay = callback.time - asked
    assert delay < 1.0, f"the other domain's callback waited {delay:.1f} s"


async def test_a_rebinding_name_is_connected_only_at_the_address_that_was_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside: list[str]
) -> None:
    """The name answers a public address once, then loopback (where the attacker's
    receiver listens); the connection to the public address is refused by ``outside``."""
    name, public = "hooks.rebind.test", "8.8.8.8"
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) != name:  # anyio passes bytes
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        answer = public if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    async with _server(tmp_path, allow_private=False) as server, callback_receiver() as receiver:
        url = f"http://{name}:{receiver.port}/hook"
        assert (await _call_group(server, ATTACKER, url))["result_code"] == 0
        async with asyncio.timeout(5):
            while not (server.callbacks.counters["callbacks_retried"] or receiver.received):
                await asyncio.sleep(0.01)  # the first try ended, one way or the other
        reached = list(receiver.received)
    assert reached == [], "the POST reached the loopback address a second lookup gave"
    assert outside == [public]  # the one address that was checked, and nothing else
    assert lookups[:1] == [name]


@pytest.mark.parametrize(
    ("callback_url", "range_named"),
    [
        ("http://100.64.0.1/hook", "100.64.0.0/10"),
        ("https://100.127.255.254:8443/hook", "100.64.0.0/10"),
        ("http://1681915905/hook", "100.64.0.0/10"),  # 100.64.0.1 written as one number
        ("http://192.0.0.8/hook", "192.0.0.0/24"),
        ("http://[2002:a00:1::]/hook", "10.0.0.0/8"),  # 6to4 of 10.0.0.1
        ("http://0x7f.1/hook", "127.0.0.0/8"),
    ],
)
async def test_a_callback_url_that_is_not_public_is_refused_by_the_api(
    tmp_path: Path, callback_url: str, range_named: str, outside: list[str]
) -> None:
    async with _server(tmp_path, allow_private=False) as server:
        answer = await _call_group(server, ATTACKER, callback_url)
        assert server.engine.statistics()["calls"] == 0
    assert answer["result_code"] != 0, (answer, outside)
    assert answer["error"]["id"] == "invalid_parameter"
    assert "not a public address" in answer["error"]["description"]
    assert range_named in answer["error"]["description"]


async def test_callback_url_credentials_reach_the_receiver_and_no_log_or_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "s3cret-Pass-4711"
    async with _server(tmp_path, allow_private=True) as server, callback_receiver() as receiver:
        url = f"http://hook-user:{password}@127.0.0.1:{receiver.port}/hook"
        assert (await _call_group(server, TENANT, url))["result_code"] == 0
        (callback,) = await receiver.wait_for(1)
        async with asyncio.timeout(5):
            while not server.callbacks.counters["callbacks_delivered"]:
                await asyncio.sleep(0.01)  # its delivery is logged and stored
    expected = base64.b64encode(f"hook-user:{password}".encode()).decode()
    assert callback.headers["authorization"] == f"Basic {expected}"
    assert password not in caplog.text
    assert f"***@127.0.0.1:{receiver.port}/hook" in caplog.text
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        dump = "\n".join(db.iterdump())
    assert password not in dump and expected not in dump
