"""The callback POST client (``callbacks/http1.py``) against real listeners: kept-alive
connections reused only for the address checked, TLS on the name, answers read whole or cut,
stale connections replaced."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from switchboard.callbacks import http1
from switchboard.callbacks.http1 import AnswerError, Http1Pool, request_head
from tests.callbacks.raw_receiver import Answer, Connection, ok, raw_receiver
from tests.callbacks.test_attempt import certificate  # noqa: F401 - the fixture

LOOPBACK = [ipaddress.ip_address("127.0.0.1")]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Listener:
    port: int
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


Reply = Callable[[int], bytes | None]  # request number on its connection → answer, or close


@asynccontextmanager
async def answering(
    reply: Reply, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Listener]:
    """A keep-alive listener: each request (read whole) gets ``reply(n)``; None closes."""
    listener = Listener(0)
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        listener.connections += 1
        try:
            for n in range(1000):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                listener.requests.append(head + await reader.readexactly(length))
                answer = reply(n)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client closed, or the listener is going away
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(serve, host, port)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _pool(limit: int = 65536) -> Http1Pool:
    return Http1Pool(tls=ssl.create_default_context(), max_response=limit)


async def _post(pool: Http1Pool, port: int, addresses: list[str] | None = None) -> int:
    checked = [ipaddress.ip_address(a) for a in addresses or ["127.0.0.1"]]
    head = request_head(b"/hook", f"receiver.test:{port}".encode(), 2, {"X-Test": "1"})
    return await pool.post(("http", "receiver.test", port), checked, head, b"{}")


async def test_a_connection_is_kept_and_reused_for_the_same_address() -> None:
    async with answering(lambda n: OK) as listener:
        pool = _pool()
        try:
            assert [await _post(pool, listener.port) for _ in range(3)] == [200, 200, 200]
        finally:
            await pool.aclose()
    assert listener.connections == 1
    first = listener.requests[0]
    assert first.startswith(b"POST /hook HTTP/1.1\r\nHost: receiver.test:")
    assert b"\r\nContent-Length: 2\r\n" in first and b"\r\nX-Test: 1\r\n" in first
    assert b"\r\nAccept-Encoding: identity\r\n" in first


async def test_a_kept_connection_is_used_only_when_its_address_was_checked_for_the_try() -> None:
    async with answering(lambda n: OK) as first:  # noqa: SIM117 - the second needs its port
        async with answering(lambda n: OK, "127.0.0.2", first.port) as second:
            pool = _pool()
            try:
                assert await _post(pool, first.port) == 200
                # the same name now checked to 127.0.0.2 only: not the kept connection
                assert await _post(pool, first.port, ["127.0.0.2"]) == 200
                # 127.0.0.1 checked again (after one that refuses): its kept connection
                assert await _post(pool, first.port, ["127.0.0.3", "127.0.0.1"]) == 200
            finally:
                await pool.aclose()
    assert (first.connections, len(first.requests)) == (1, 2)
    assert (second.connections, len(second.requests)) == (1, 1)


async def test_a_connection_the_receiver_closed_while_idle_is_replaced() -> None:
    async with answering(lambda n: OK if n == 0 else None) as listener:
        pool = _pool()
        try:
            assert await _post(pool, listener.port) == 200
            assert await _post(pool, listener.port) == 200  # closed unanswered: a fresh one
        finally:
            await pool.aclose()
    assert listener.connections == 2


async def test_an_idle_connection_is_not_reused_after_the_idle_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with answering(lambda n: OK) as listener:
        pool = _pool()
        try:
            assert await _post(pool, listener.port) == 200
            monkeypatch.setattr(http1, "IDLE", 0.0)
            assert await _post(pool, listener.port) == 200
        finally:
            await pool.aclose()
    assert listener.connections == 2


async def test_interim_answers_are_skipped_and_the_final_status_returned() -> None:
    answer = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + OK.replace(b"200 OK", b"503 X")
    async with answering(lambda n: answer) as listener:
        pool = _pool()
        try:
            assert await _post(pool, listener.port) == 503
        finally:
            await pool.aclose()


def _closing(answer: bytes) -> Answer:
    async def write_and_close(connection: Connection, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()
        writer.close()

    return write_and_close


async def test_a_body_delimited_by_the_close_ends_there_and_the_connection_is_not_kept() -> None:
    async with raw_receiver(_closing(b"HTTP/1.1 204 OK\r\n\r\nall of it")) as receiver:
        pool = _pool()
        try:
            assert await _post(pool, receiver.port) == 204
            assert await _post(pool, receiver.port) == 204
        finally:
            await pool.aclose()
    assert len(receiver.connections) == 2


async def test_a_body_cut_short_of_its_length_is_an_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"
    async with raw_receiver(_closing(cut)) as receiver:
        pool = _pool()
        try:
            with pytest.raises(AnswerError, match="mid-answer"):
                await _post(pool, receiver.port)
        finally:
            await pool.aclose()


async def test_garbage_is_not_an_answer() -> None:
    async with answering(lambda n: b"SIP/2.0 200 OK\r\n\r\n") as listener:
        pool = _pool()
        try:
            with pytest.raises(AnswerError, match=r"not an HTTP/1\.1 answer"):
                await _post(pool, listener.port)
        finally:
            await pool.aclose()


async def test_an_answer_past_the_cap_closes_the_connection_and_keeps_the_status() -> None:
    big = b"HTTP/1.1 201 Created\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
    async with answering(lambda n: big) as listener:
        pool = _pool(limit=1000)
        try:
            assert await _post(pool, listener.port) == 201
            assert await _post(pool, listener.port) == 201
        finally:
            await pool.aclose()
    assert listener.connections == 2


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        request_head(b"/", b"h", 0, {"X-Delivery": "a\r\nX-Evil: 1"})


async def test_https_goes_to_the_address_with_sni_and_the_certificate_checked_on_the_name(
    certificate: tuple[Path, Path],  # noqa: F811 - the fixture
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_tls.sni_callback = lambda _socket, name, _context: names.append(name)
    pool = Http1Pool(tls=ssl.create_default_context(cafile=str(cert)), max_response=65536)
    async with raw_receiver(ok(), tls=server_tls) as receiver:
        try:
            head = request_head(b"/hook", b"receiver.test", 2, {})
            good = await pool.post(("https", "receiver.test", receiver.port), LOOPBACK, head, b"{}")
            with pytest.raises(ssl.SSLCertVerificationError, match="CERTIFICATE_VERIFY_FAILED"):
                await pool.post(("https", "other.test", receiver.port), LOOPBACK, head, b"{}")
        finally:
            await pool.aclose()
    assert good == 200
    assert names[0] == "receiver.test"
    assert len(receiver.connections) == 1
