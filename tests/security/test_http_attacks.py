"""Attacks on the HTTP API listener: connections held open (idle, or sending their head a
byte at a time), oversized bodies, numbers too long for ``int()``, control characters in
``calling_name``, what ``/healthz`` tells a stranger, and ``/docs`` fetching code from a CDN.

The attacker is 127.0.0.2 (raw sockets, httpx); the honest client is 127.0.0.1. Each test
runs against a running server with its default limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from switchboard.app import Server
from tests.interop.call_group_harness import AUTH, Phones, config_for, serving
from tests.interop.sipp import free_port
from tests.security.processes import descriptors_for_the_attacker, limited_server

pytestmark = [pytest.mark.interop]

ATTACKER = "127.0.0.2"
AUTH_HEADER = f"Authorization: {AUTH}\r\n".encode()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    phones = Phones(free_port(), free_port(), free_port())  # nobody answers there
    async with serving(tmp_path, config_for(phones)) as (server, client):
        yield server, client
        for call in list(server.engine.calls):
            call.hang_up("test over")


def _port(server: Server) -> int:
    return server.config.server.http_address[1]


async def _attacker_stream(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACKER, 0))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in filter(None, lines):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def _exchange(server: Server, raw: bytes, waiting_for: str = "") -> tuple[int, bytes]:
    """Send ``raw`` from the attacker's address; the status and body of the answer, which
    must come within 3 s (``waiting_for`` says what a silent server would be doing)."""
    reader, writer = await _attacker_stream(_port(server))
    writer.write(raw)
    try:
        status, _, body = await asyncio.wait_for(_read_response(reader), 3)
    except TimeoutError:
        pytest.fail(f"no answer within 3 s{': ' + waiting_for if waiting_for else ''}")
    finally:
        writer.close()
    return status, body


def _error_id(body: bytes) -> str:
    envelope = json.loads(body)
    assert envelope["result_code"] == 500 and envelope["error"]["description"]
    return str(envelope["error"]["id"])


# Connections held open ---------------------------------------------------------------


def _server_config(tmp_path: Path, sip_port: int, http_port: int) -> Path:
    config = tmp_path / "switchboard.toml"
    config.write_text(
        f'[server]\nsip_listen = "127.0.0.1:{sip_port}"\n'
        f'http_listen = "127.0.0.1:{http_port}"\n'
        f'database = "sqlite:///{tmp_path}/switchboard.db"\n\n'
        + config_for(Phones(free_port(), free_port(), free_port()))
    )
    return config


@contextlib.asynccontextmanager
async def _server_process(tmp_path: Path) -> AsyncIterator[str]:
    """``switchboard serve`` in its own process under ``ulimit -n 1024``; its base URL."""
    http_port = free_port(socket.SOCK_STREAM)
    async with limited_server(_server_config(tmp_path, free_port(), http_port), http_port) as base:
        yield base


async def _open_idle(port: int, count: int) -> list[socket.socket]:
    loop = asyncio.get_running_loop()
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((ATTACKER, 0))
        sockets.append(sock)
        with contextlib.suppress(OSError):  # refused or reset: the server said no
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 2)
    return sockets


async def _slowloris(sockets: list[socket.socket], stop: asyncio.Event) -> None:
    """Each connection sends a request head a header line at a time, never ending it."""
    lines = [b"GET /healthz HTTP/1.1\r\nHost: pbx\r\n"] + [b"X-Padding: a\r\n"] * 1000
    for line in lines:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.send(line)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
        if stop.is_set():
            return


async def _honest_requests(base: str, count: int) -> list[str]:
    """Failures of ``count`` requests from 127.0.0.1, each a new connection."""
    failures = []
    for n in range(count):
        async with httpx.AsyncClient(base_url=base, timeout=3) as client:
            try:
                health = await client.get("/healthz")
                hangup = await client.post(
                    "/basix/api/hangup", json={"uuid": f"u{n}"}, headers={"Authorization": AUTH}
                )
                if health.status_code != 200 or hangup.json()["error"]["id"] != "channel_not_found":
                    failures.append(f"{health.status_code} {hangup.text}")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
    return failures


@pytest.mark.slow
async def test_1200_idle_and_slowloris_connections_from_one_source_do_not_starve_another(
    tmp_path: Path,
) -> None:
    with descriptors_for_the_attacker(4096):
        async with _server_process(tmp_path) as base:
            port = int(base.rsplit(":", 1)[1])
            idle = await _open_idle(port, 600)  # with the slow ones, past 1024 descriptors
            slow = await _open_idle(port, 600)
            stop = asyncio.Event()
            loris = asyncio.create_task(_slowloris(slow, stop))
            try:
                failures = await _honest_requests(base, 5)
            finally:
                stop.set()
                await loris
                for sock in idle + slow:
                    sock.close()
    assert failures == []


@pytest.mark.slow
async def test_a_silent_connection_and_a_slowloris_are_cut_after_the_request_timeout(
    api: tuple[Server, httpx.AsyncClient],
) -> None:
    server, client = api
    port = _port(server)
    silent_reader, silent = await _attacker_stream(port)
    slow_reader, slow = await _attacker_stream(port)

    async def trickle() -> None:
        slow.write(b"GET /healthz HTTP/1.1\r\nHost: pbx\r\n")
        for _ in range(60):  # a header line every half second, for up to 30 s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(slow_reader.read(1), 0.5)  # b"": the server cut it
            if slow_reader.at_eof():
                return
            with contextlib.suppress(ConnectionError):
                slow.write(b"X-Padding: a\r\n")
                await slow.drain()

    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        async with asyncio.timeout(15):
            silent_end, _ = await asyncio.gather(silent_reader.read(), trickle())
    except (TimeoutError, ConnectionError):
        pytest.fail("the server kept a connection that sent no whole request for 15 s")
    finally:
        silent.close()
        slow.close()
    assert silent_end == b"" and slow_reader.at_eof()
    assert loop.time() - start < 15
    statistics = (await client.get("/statistics", headers={"Authorization": AUTH})).json()
    assert statistics["counters"]["http_requests_timed_out"] == 2


# Bodies -----------------------------------------------------------------------------------


async def test_a_body_announced_too_large_gets_413_in_the_envelope_before_it_is_sent(
    api: tuple[Server, httpx.AsyncClient],
) -> None:
    server, _ = api
    status, body = await _exchange(
        server,
        b"POST /basix/api/call_group HTTP/1.1\r\nHost: pbx\r\nContent-Type: application/json\r\n"
        + AUTH_HEADER
        + b"Content-Length: 104857600\r\n\r\n"
        + b" " * 16384,  # 100 MiB announced, 16 KiB sent: the answer must not wait
        "the server waits for the 100 MiB",
    )
    assert status == 413 and _error_id(body) == "body_too_large"


async def test_a_chunked_body_past_the_cap_gets_413_while_it_streams(
    api: tuple[Server, httpx.AsyncClient],
) -> None:
    server, _ = api
    chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
    status, body = await _exchange(
        server,
        b"POST /basix/api/call_group HTTP/1.1\r\nHost: pbx\r\nContent-Type: application/json\r\n"
        + AUTH_HEADER
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunk * 80,  # 80 KiB, and no last chunk: the body never ends
        "the server reads on until the body ends",
    )
    assert status == 413 and _error_id(body) == "body_too_large"


async def test_a_client_sending_8_mib_reads_the_413(api: tuple[Server, httpx.AsyncClient]) -> None:
    server, _ = api
    host, port = server.config.server.http_address
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER)
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", transport=transport) as client:
        answer = await client.post(
            "/basix/api/call_group",
            content=b" " * (8 << 20),
            headers={"Authorization": AUTH, "Content-Type": "application/json"},
        )
    assert answer.status_code == 413 and _error_id(answer.content) == "body_too_large"


# Numbers ---------------------------------------------------------------------------------

HUGE = "9" * 5000  # past Python's 4300-digit int() limit


async def test_a_5000_digit_since_refuses_the_cti_upgrade_with_400(
    api: tuple[Server, httpx.AsyncClient],
) -> None:
    server, _ = api
    status, body = await _exchange(
        server,
        f"GET /basix/api/ws_cti?format=json&since={HUGE} HTTP/1.1\r\nHost: pbx\r\n".encode()
        + AUTH_HEADER
        + b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    assert status == 400 and _error_id(body) == "invalid_parameter"


async def test_a_5000_digit_content_length_gets_400_in_the_envelope(
    api: tuple[Server, httpx.AsyncClient],
) -> None:
    server, _ = api
    status, body = await _exchange(
        server,
        b"POST /basix/api/hangup HTTP/1.1\r\nHost: pbx\r\n"
        + AUTH_HEADER
        + f"Content-Length: {HUGE}\r\n\r\n".encode(),
    )
    assert status == 400 and _error_id(body) == "invalid_request"


@pytest.mark.parametrize("key", ["answer_timeout", "group_id"])
async def test_a_5000_digit_json_number_is_an_invalid_parameter(
    api: tuple[Server, httpx.AsyncClient], key: str
) -> None:
    server, client = api
    body = f'{{"group_name": "support", "destination": "0312341234", "{key}": {HUGE}}}'
    answer = await client.post(
        "/basix/api/call_group",
        content=body.encode(),
        headers={"Authorization": AUTH, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400 and _error_id(answer.content) == "invalid_parameter"
    assert "digits" in answer.json()["error"]["description"]
    assert server.engine.statistics() == {"calls": 0, "channels": 0}


# calling_name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "calling_name", ["Evil\x00Name", "Bell\x07", "\x1b[31mRed", "Tab\there", "Del\x7f"]
)
async def test_control_characters_in_calling_name_are_refused(
    api: tuple[Server, httpx.AsyncClient], calling_name: str
) -> None:
    server, client = api
    answer = await client.post(
        "/basix/api/call_group",
        json={"group_name": "support", "destination": "0312341234", "calling_name": calling_name},
        headers={"Authorization": AUTH},
    )
    assert _error_id(answer.content) == "invalid_parameter"
    assert "calling_name" in answer.json()["error"]["description"]
    assert server.engine.statistics() == {"calls": 0, "channels": 0}  # no INVITE carries it


# What a stranger sees --------------------------------------------------------------------


async def test_healthz_says_only_up_and_the_counters_need_a_token(
    api: tuple[Server, httpx.AsyncClient],
) -> None:
    server, _ = api
    host, port = server.config.server.http_address
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER)
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", transport=transport) as client:
        health = await client.get("/healthz")
        anonymous = await client.get("/statistics")
        wrong = await client.get("/statistics", headers={"Authorization": "Basic eDp5"})
        statistics = await client.get("/statistics", headers={"Authorization": AUTH})
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert _error_id(anonymous.content) == "authentication_required"
    assert _error_id(wrong.content) == "authentication_required"
    counters = statistics.json()["counters"]
    assert {"calls", "channels", "http_connections_open"} <= set(counters)


_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)|url:\s*["']([^"']+)""")


def _references(html: str) -> list[str]:
    return [a or b for a, b in _REFERENCE.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_load_every_asset_from_the_server_itself(
    api: tuple[Server, httpx.AsyncClient], page: str
) -> None:
    _, client = api
    html = (await client.get(page)).text
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.IGNORECASE), html
    references = _references(html)
    assert any(ref.endswith(".js") for ref in references), references
    origin = urlsplit(str(client.base_url)).netloc
    fetched: dict[str, Any] = {}
    for ref in references:
        url = urljoin(str(client.base_url) + page, ref)
        assert urlsplit(url).netloc == origin, url
        answer = await client.get(url)
        assert answer.status_code == 200 and answer.content, url
        fetched[ref] = answer
    for ref, answer in fetched.items():
        if ref.endswith(".css"):  # a stylesheet may pull fonts and images in turn
            for target in re.findall(r"url\(\s*['\"]?([^'\")]+)", answer.text):
                assert target.startswith("data:"), f"{ref} loads {target[:80]}"
