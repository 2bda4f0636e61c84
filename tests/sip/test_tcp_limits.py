"""SIP over TCP holds a descriptor per connection, so connections are bounded: per source,
by a first-message deadline and by an idle timeout (RFC 5626 keep-alives count as input).

The limits are injected small; each test awaits the server's close (EOF) and checks when
it came against the promise, from the client's side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.transport import TcpConnection, TcpLimits, TcpTransport
from switchboard.sip.useragent import UserAgent
from tests.interop.sipp import free_port
from tests.sip.factories import request

FIRST = 0.4  # first-message timeout
IDLE = 0.8  # idle timeout
SLACK = 0.3  # how late a timer may fire on a loaded test machine
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connect = Callable[..., Awaitable[Streams]]


@asynccontextmanager
async def _endpoint(per_source: int = 32) -> AsyncIterator[tuple[SipEndpoint, Connect]]:
    ep = SipEndpoint(
        "127.0.0.1",
        free_port(),
        tcp_limits=TcpLimits(per_source, IDLE, FIRST),
    )
    await ep.start()
    UserAgent(ep)
    writers: list[asyncio.StreamWriter] = []

    async def connect(source: str = "127.0.0.2") -> Streams:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", ep.listen_port, local_addr=(source, 0)
        )
        writers.append(writer)
        return reader, writer

    try:
        yield ep, connect
    finally:
        for writer in writers:
            writer.close()
        await ep.close()


async def _closed_after(reader: asyncio.StreamReader, started: float) -> float:
    """Seconds from ``started`` until the server closed; what came before is discarded."""
    while await asyncio.wait_for(reader.read(65536), 5):
        pass
    return asyncio.get_running_loop().time() - started


async def _until(condition: Callable[[], bool]) -> None:
    """The server sees a client's close only in its counters: poll them briefly."""
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0.005)


def _options(branch: str) -> bytes:
    return bytes(request("OPTIONS", branch=branch, transport="TCP", sent_by="127.0.0.2:9"))


async def test_connections_over_the_per_source_cap_are_closed_at_once() -> None:
    async with _endpoint(per_source=2) as (ep, connect):
        loop = asyncio.get_running_loop()
        first, _ = await connect(), await connect()
        started = loop.time()
        third_reader, _ = await connect()
        assert await _closed_after(third_reader, started) < SLACK
        stats = ep.statistics()
        assert stats["tcp_refused"] == 1 and stats["tcp_connections"] == 2
        # Another source is not affected by this one's cap.
        reader, writer = await connect("127.0.0.1")
        writer.write(_options("z9hG4bK-other-source"))
        assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"SIP/2.0 200")
        # A slot freed is a slot again.
        first[1].close()
        await _until(lambda: ep.statistics()["tcp_connections"] == 2)
        reader, writer = await connect()
        writer.write(_options("z9hG4bK-freed"))
        assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"SIP/2.0 200")
        assert ep.statistics()["tcp_connections"] == 3  # second, other source, new one


async def test_a_silent_connection_is_closed_at_the_first_message_timeout() -> None:
    async with _endpoint() as (ep, connect):
        started = asyncio.get_running_loop().time()
        reader, _ = await connect()
        assert FIRST <= await _closed_after(reader, started) < FIRST + SLACK
        assert ep.statistics()["tcp_closed_silent"] == 1


async def test_keepalives_and_garbage_are_not_a_first_message() -> None:
    async with _endpoint() as (ep, connect):
        started = asyncio.get_running_loop().time()
        pinging, pinger = await connect()
        junk, junker = await connect()
        pinger.write(b"\r\n\r\n")
        junker.write(b"NOT SIP\r\nContent-Length: 0\r\n\r\n")
        assert await pinging.readexactly(2) == b"\r\n"  # the pong still comes
        assert FIRST <= await _closed_after(pinging, started) < FIRST + SLACK
        assert FIRST <= await _closed_after(junk, started) < FIRST + SLACK
        assert ep.statistics()["tcp_closed_silent"] == 2


async def test_a_connection_idle_past_the_timeout_is_closed_and_keepalives_keep_it() -> None:
    async with _endpoint() as (ep, connect):
        loop = asyncio.get_running_loop()
        idle_reader, idle_writer = await connect()
        kept_reader, kept_writer = await connect()
        sent = loop.time()  # the server's last input from the idle one is just after this
        for writer, branch in ((idle_writer, "z9hG4bK-idle"), (kept_writer, "z9hG4bK-kept")):
            writer.write(_options(branch))
        for reader in (idle_reader, kept_reader):
            assert (await reader.readline()).startswith(b"SIP/2.0 200")

        async def keep_alive() -> None:
            # RFC 5626 §4.4.1 pings, every IDLE/3 (the phone's interval, not a sync).
            while True:
                await asyncio.sleep(IDLE / 3)
                kept_writer.write(b"\r\n\r\n")

        pinger = asyncio.create_task(keep_alive())
        try:
            assert IDLE <= await _closed_after(idle_reader, sent) < IDLE + SLACK
            await asyncio.sleep(IDLE / 2)  # past the kept connection's own first deadline
        finally:
            pinger.cancel()
        assert ep.statistics()["tcp_connections"] == 1  # the kept one
        assert ep.statistics()["tcp_closed_idle"] == 1


async def test_a_stream_that_cannot_be_framed_gets_its_400_then_the_close() -> None:
    async with _endpoint() as (ep, connect):
        reader, writer = await connect()
        huge = b"Content-Length: " + b"9" * 5000
        writer.write(_options("z9hG4bK-huge").replace(b"Content-Length: 0", huge))
        answer = await asyncio.wait_for(reader.read(65536), 2)
        assert answer.startswith(b"SIP/2.0 400 Malformed Content-Length\r\n")
        assert await reader.read() == b""
        assert ep.statistics()["bad_request"] == 1


async def test_a_body_too_large_over_tcp_gets_513() -> None:
    async with _endpoint() as (_, connect):
        reader, writer = await connect()
        writer.write(_options("z9hG4bK-big").replace(b"Length: 0", b"Length: 999999"))
        answer = await asyncio.wait_for(reader.read(65536), 2)
        assert answer.startswith(b"SIP/2.0 513 Body too large\r\n")


def test_a_peer_that_does_not_read_is_not_read_either() -> None:
    class FakeTransport:
        paused = False

        def pause_reading(self) -> None:
            self.paused = True

        def resume_reading(self) -> None:
            self.paused = False

        def is_closing(self) -> bool:
            return False

    connection = TcpConnection(TcpTransport(lambda *_: True, lambda _: None, lambda *_: None))
    fake = FakeTransport()
    connection.transport = fake  # type: ignore[assignment]
    connection.pause_writing()
    assert fake.paused
    connection.resume_writing()
    assert not fake.paused


def test_default_limits_outlive_a_registration() -> None:
    limits = TcpLimits()
    assert limits.per_source == 32 and limits.first_message_timeout == 10.0
    assert limits.idle_timeout > 3600  # the registrar's longest expiry


@pytest.mark.parametrize("per_source", [1, 3])
async def test_the_cap_counts_live_connections_only(per_source: int) -> None:
    async with _endpoint(per_source=per_source) as (ep, connect):
        for round_ in range(3):
            streams = [await connect() for _ in range(per_source)]
            for n, (reader, writer) in enumerate(streams):
                writer.write(_options(f"z9hG4bK-{round_}-{n}"))
                assert (await reader.readline()).startswith(b"SIP/2.0 200")
            for _, writer in streams:
                writer.close()
            await _until(lambda: ep.statistics()["tcp_connections"] == 0)
        assert ep.statistics()["tcp_refused"] == 0
