"""The endpoint over real loopback sockets: bad input, OPTIONS, TCP framing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.message import Response, parse_message
from switchboard.sip.useragent import UserAgent
from tests.interop.sipp import free_port
from tests.sip.factories import request


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint("127.0.0.1", free_port())
    await ep.start()
    UserAgent(ep)
    yield ep
    await ep.close()


async def _udp_exchange(port: int, data: bytes, expect_reply: bool = True) -> bytes | None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 65535), 1.0 if expect_reply else 0.3)
        except TimeoutError:
            return None
    finally:
        sock.close()


def _options(branch: str, cseq_method: str = "OPTIONS") -> bytes:
    raw = bytes(request("OPTIONS", branch=branch, sent_by="127.0.0.1:9"))
    return raw.replace(b"1 OPTIONS", f"1 {cseq_method}".encode())


async def test_options_is_answered_with_200_and_capabilities(endpoint: SipEndpoint) -> None:
    reply = await _udp_exchange(endpoint.listen_port, _options("z9hG4bK-o1"))
    assert reply is not None
    response = parse_message(reply)
    assert isinstance(response, Response) and response.status == 200
    assert "INVITE" in (response.get("Allow") or "")
    assert response.to.tag  # §8.2.6.2


async def test_unanswerable_garbage_is_dropped_and_the_endpoint_keeps_serving(
    endpoint: SipEndpoint,
) -> None:
    assert await _udp_exchange(endpoint.listen_port, b"\x00\xffnot sip", False) is None
    assert endpoint.statistics()["dropped"] == 1
    reply = await _udp_exchange(endpoint.listen_port, _options("z9hG4bK-o2"))
    assert reply is not None and b"200 OK" in reply


async def test_readable_bad_request_gets_400_with_the_reason(endpoint: SipEndpoint) -> None:
    reply = await _udp_exchange(endpoint.listen_port, _options("z9hG4bK-o3", "INVITE"))
    assert reply is not None
    response = parse_message(reply)
    assert isinstance(response, Response) and response.status == 400
    assert response.reason == "CSeq method does not match the Request-Line"


async def test_tcp_messages_split_and_merged_are_framed(endpoint: SipEndpoint) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.listen_port)
    one = bytes(request("OPTIONS", branch="z9hG4bK-t1", transport="TCP"))
    two = bytes(request("OPTIONS", branch="z9hG4bK-t2", transport="TCP"))
    stream = b"\r\n\r\n" + one + two
    writer.write(stream[:30])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(stream[30:])
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(2), 1.0) == b"\r\n"  # keep-alive pong
    data = b""
    while data.count(b"SIP/2.0 200 OK") < 2:
        data += await asyncio.wait_for(reader.read(4096), 1.0)
    writer.close()
    await writer.wait_closed()


async def test_udp_keepalives_from_phones_are_ignored_quietly(endpoint: SipEndpoint) -> None:
    for ping in (b"\r\n\r\n", b"\r\n"):
        assert await _udp_exchange(endpoint.listen_port, ping, False) is None
    assert endpoint.statistics()["dropped"] == 0
    reply = await _udp_exchange(endpoint.listen_port, _options("z9hG4bK-o4"))
    assert reply is not None
    response = parse_message(reply)
    assert isinstance(response, Response)
    assert response.get("Accept") == "application/sdp"
    assert response.get("Supported") == "timer"  # session timers, RFC 4028 (§11.2)
