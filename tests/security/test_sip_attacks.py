"""Attacks on the SIP edge of a running server, from 127.0.0.2; honest peers use 127.0.0.1.

- A thousand idle TCP connections from one host (under ``ulimit -n 1024``) must not take
  SIP away from the others: connections past the per-source cap are closed at once.
- A connection that says nothing is closed at the first-message timeout.
- An unauthenticated INVITE draws exactly one response and leaves no transaction behind
  (it drew 100 Trying and eleven copies of its refusal, from one datagram).
- 5000-digit numbers get 400, over UDP and over TCP, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from switchboard.app import Server
from switchboard.sip.message import Response, parse_message
from tests.interop.servers import running_server, users_config

pytestmark = [pytest.mark.interop, pytest.mark.slow]
ATTACKER = "127.0.0.2"
HONEST = "127.0.0.1"
FLOOD = 1000
PER_SOURCE = 32  # server.sip_tcp_connections_per_source's default
FIRST_MESSAGE_TIMEOUT = 10.0  # the server's promise for a connection that says nothing
HUGE = "9" * 5000

# The attacker in its own process (its descriptors are not the server's): open FLOOD TCP
# connections from ATTACKER, send nothing, and report how many the server closed before
# `expected` were closed or the deadline passed. Then hold the rest until stdin closes.
_FLOODER = r"""
import json, select, socket, sys, time
host, source = sys.argv[1], sys.argv[5]
port, count, expected = (int(arg) for arg in sys.argv[2:5])
deadline = time.monotonic() + 9.0
pending = []
for _ in range(count):
    s = socket.socket()
    s.setblocking(False)
    s.bind((source, 0))
    s.connect_ex((host, port))
    pending.append(s)
connected, closed, poller = [], 0, select.poll()
while pending and time.monotonic() < deadline:
    _, writable, _ = select.select([], pending[:500], [], 0.2)
    for s in writable:
        pending.remove(s)
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            connected.append(s)
            poller.register(s, select.POLLIN)
        else:
            s.close()
by_fd = {s.fileno(): s for s in connected}
while closed < expected and time.monotonic() < deadline:
    for fd, _ in poller.poll(200):
        poller.unregister(fd)
        try:
            data = by_fd[fd].recv(1)
        except OSError:
            data = b""
        if not data:
            closed += 1
print(json.dumps({"connected": len(connected), "closed": closed}), flush=True)
sys.stdin.read()
"""


class UdpPeer(asyncio.DatagramProtocol):
    """A raw SIP peer: sends bytes, keeps every datagram that comes back, unparsed."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[bytes] = []
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.received.append(data)
        self._queue.put_nowait(data)

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)

    async def response(self, timeout: float = 5) -> Response:
        message = parse_message(await asyncio.wait_for(self._queue.get(), timeout))
        assert isinstance(message, Response)
        return message

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _udp_peer(host: str) -> UdpPeer:
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_datagram_endpoint(UdpPeer, local_addr=(host, 0))
    return peer


@asynccontextmanager
async def _server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running_server(users_config(1), tmp_path / "db.sqlite") as server:
        yield server


@contextmanager
def _descriptor_limit(limit: int) -> Iterator[None]:
    """``ulimit -n`` for this process (the server's), as the issue measured it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _request(method: str, source: tuple[str, int], transport: str = "UDP") -> bytes:
    host, own_port = source
    tag = f"{method.lower()}-{transport}-{own_port}"
    return (
        f"{method} sip:example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:{own_port};rport;branch=z9hG4bK-{tag}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:user0000@example.com>;tag={tag}\r\n"
        f"To: <sip:user0000@example.com>\r\nCall-ID: {tag}@{host}\r\n"
        f"CSeq: 1 {method}\r\nContact: <sip:user0000@{host}:{own_port}>\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


async def _udp_status(server: Server, method: str, source: str = HONEST) -> int:
    peer = await _udp_peer(source)
    try:
        peer.send(_request(method, peer.address), ("127.0.0.1", server.endpoint.listen_port))
        return (await peer.response(5)).status
    finally:
        peer.close()


async def _tcp_status(server: Server, method: str, source: str = HONEST) -> int:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", server.endpoint.listen_port, local_addr=(source, 0)),
        5,
    )
    try:
        writer.write(_request(method, writer.get_extra_info("sockname")[:2], "TCP"))
        status_line = await asyncio.wait_for(reader.readline(), 5)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_a_tcp_connection_flood_from_one_source_leaves_sip_to_the_others(
    tmp_path: Path,
) -> None:
    async with _server(tmp_path) as server:
        with _descriptor_limit(1024):
            port = str(server.endpoint.listen_port)
            arguments = ["127.0.0.1", port, str(FLOOD), str(FLOOD - PER_SOURCE), ATTACKER]
            flooder = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _FLOODER,
                *arguments,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                assert flooder.stdout is not None and flooder.stdin is not None
                report = json.loads(await asyncio.wait_for(flooder.stdout.readline(), 30))
                stats = server.statistics()
                # While the attacker holds what it was allowed, the others are served.
                assert await _udp_status(server, "OPTIONS") == 200
                assert await _tcp_status(server, "OPTIONS") == 200
                assert await _udp_status(server, "REGISTER") == 401  # challenged: answered
                assert await _tcp_status(server, "REGISTER") == 401
            finally:
                if flooder.stdin is not None:
                    flooder.stdin.close()
                await flooder.wait()
    assert report["connected"] == FLOOD
    assert report["closed"] >= FLOOD - PER_SOURCE  # the ones over the cap, closed at once
    assert stats["tcp_refused"] >= FLOOD - PER_SOURCE
    assert stats["tcp_connections"] == PER_SOURCE  # what it holds, until it speaks or not


async def test_a_silent_connection_is_closed_at_the_first_message_timeout(
    tmp_path: Path,
) -> None:
    async with _server(tmp_path) as server:
        loop = asyncio.get_running_loop()
        port = server.endpoint.listen_port
        writers: list[asyncio.StreamWriter] = []

        async def connect(source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
            writers.append(writer)
            return reader, writer

        async def closed_after(reader: asyncio.StreamReader) -> float:
            while await asyncio.wait_for(reader.read(4096), FIRST_MESSAGE_TIMEOUT + 2):
                pass
            return loop.time() - started

        try:
            started = loop.time()
            silent, _ = await connect(ATTACKER)
            pinging, pinger = await connect(ATTACKER)
            pinger.write(b"\r\n\r\n")  # keep-alives are not a message
            assert await pinging.readexactly(2) == b"\r\n"
            honest, honest_writer = await connect(HONEST)
            honest_writer.write(_request("OPTIONS", honest_writer.get_extra_info("sockname")))
            assert (await honest.readline()).startswith(b"SIP/2.0 200")
            for reader in (silent, pinging):
                elapsed = await closed_after(reader)
                assert FIRST_MESSAGE_TIMEOUT <= elapsed < FIRST_MESSAGE_TIMEOUT + 0.05, elapsed
            stats = server.statistics()
            assert stats["tcp_closed_silent"] == 2
            assert stats["tcp_connections"] == 1  # the honest one spoke: an hour applies
        finally:
            for writer in writers:
                writer.close()


async def test_an_unauthenticated_invite_draws_one_response_and_keeps_no_state(
    tmp_path: Path,
) -> None:
    async with _server(tmp_path) as server:
        attacker = await _udp_peer(ATTACKER)
        target = ("127.0.0.1", server.endpoint.listen_port)
        try:
            invite = _invite(attacker)
            attacker.send(invite, target)
            first = await attacker.response()
            assert first.status == 403  # a stranger: no 100 Trying before it
            assert server.statistics()["server_transactions"] == 0
            # Timer G would resend the 403 at 0.5 s and 1.5 s: listen past both.
            await asyncio.sleep(2.0)  # proving that nothing comes: no event to await
            assert attacker.received == [bytes(first)]
            for _ in range(5):  # retransmissions: one answer each, the same one
                attacker.send(invite, target)
                assert bytes(await attacker.response()) == bytes(first)
            attacker.send(_ack(attacker, first), target)  # absorbed: no answer
            await asyncio.sleep(1.0)  # nothing more: not for the INVITEs, not for the ACK
            assert len(attacker.received) == 6
            stats = server.statistics()
            assert stats["server_transactions"] == 0 and stats["retransmitted"] == 0
            assert stats["stateless_responses"] == 6
            assert await _udp_status(server, "OPTIONS") == 200
        finally:
            attacker.close()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("CSeq: 1 OPTIONS", f"CSeq: {HUGE} OPTIONS"),
        ("Content-Length: 0", f"Content-Length: {HUGE}"),
        ("Max-Forwards: 70", f"Max-Forwards: {HUGE}"),
        ("Content-Length: 0", f"Expires: {HUGE}\r\nContent-Length: 0"),
    ],
    ids=["cseq", "content-length", "max-forwards", "expires"],
)
async def test_5000_digit_numbers_get_400_and_the_server_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, old: str, new: str
) -> None:
    caplog.set_level(logging.WARNING)
    async with _server(tmp_path) as server:
        port = server.endpoint.listen_port
        # The 400 echoes the bad CSeq: read it as bytes, not with our own parser.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((ATTACKER, 0))
            sock.setblocking(False)
            udp = _request("OPTIONS", sock.getsockname()).decode().replace(old, new)
            sock.sendto(udp.encode(), ("127.0.0.1", port))
            loop = asyncio.get_running_loop()
            answer = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
            assert answer.startswith(b"SIP/2.0 400 "), answer[:80]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACKER, 0))
        try:
            own = writer.get_extra_info("sockname")[:2]
            writer.write(_request("OPTIONS", own, "TCP").decode().replace(old, new).encode())
            status_line = await asyncio.wait_for(reader.readline(), 5)
            assert status_line.startswith(b"SIP/2.0 400 "), status_line
        finally:
            writer.close()
        assert await _udp_status(server, "OPTIONS") == 200
        assert await _tcp_status(server, "OPTIONS") == 200
    leaked = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert leaked == [], [r.getMessage() for r in leaked]


def _invite(peer: UdpPeer) -> bytes:
    host, port = peer.address
    return (
        f"INVITE sip:user0000@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK-reflect\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:mallory@example.com>;tag=m1\r\n"
        f"To: <sip:user0000@example.com>\r\nCall-ID: reflect@{host}\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:mallory@{host}:{port}>\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def _ack(peer: UdpPeer, answer: Response) -> bytes:
    """The ACK for a non-2xx: the INVITE's branch, the answer's To (§17.1.1.3)."""
    host, port = peer.address
    return (
        f"ACK sip:user0000@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK-reflect\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:mallory@example.com>;tag=m1\r\n"
        f"To: {answer.get('To')}\r\nCall-ID: reflect@{host}\r\nCSeq: 1 ACK\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()
