"""A real TCP listener speaking just enough HTTP/1.1 to misbehave as a callback receiver.

Each connection's request is read whole, then the scripted ``Answer`` runs; meanwhile the
connection is watched, and the moment the client closes it (FIN or reset) is recorded, with
the bytes the answer managed to write. Answers: ``huge_body``, ``drip``, ``stall``, ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Connection:
    accepted: float
    request: bytes = b""
    written: int = 0
    closed: float | None = None  # loop time the client closed it
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.written += len(data)


Answer = Callable[[Connection, asyncio.StreamWriter], Coroutine[Any, Any, None]]


@dataclass
class RawReceiver:
    host: str
    port: int
    connections: list[Connection] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, host: str | None = None, scheme: str = "http") -> str:
        return f"{scheme}://{host or self.host}:{self.port}/hook"

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Connection]:
        async with asyncio.timeout(timeout):
            while len(self.connections) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.connections


def ok(status: int = 200) -> Answer:
    async def answer(connection: Connection, writer: asyncio.StreamWriter) -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        await connection.write(writer, head.encode())

    return answer


def huge_body(size: int, chunk: int = 65536) -> Answer:
    """200 with a body of ``size`` bytes, written as fast as the client takes it."""

    async def answer(connection: Connection, writer: asyncio.StreamWriter) -> None:
        await connection.write(
            writer, f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        block = b"x" * chunk
        while connection.written < size:
            await connection.write(writer, block)
        await asyncio.Event().wait()

    return answer


def drip(every: float) -> Answer:
    """200 whose body comes one byte each ``every`` seconds, without end."""

    async def answer(connection: Connection, writer: asyncio.StreamWriter) -> None:
        await connection.write(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        while True:
            await connection.write(writer, b"x")
            await asyncio.sleep(every)

    return answer


async def stall(connection: Connection, writer: asyncio.StreamWriter) -> None:
    """Read the request, never answer."""
    await asyncio.Event().wait()


@asynccontextmanager
async def raw_receiver(
    answer: Answer, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[RawReceiver]:
    """Listening on ``host``:``port`` (0: any free port) until the block ends."""
    receiver = RawReceiver(host, port)
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        loop = asyncio.get_running_loop()
        connection = Connection(loop.time())
        try:
            connection.request = await _request(reader)
            receiver.connections.append(connection)
            receiver.arrived.set()
            answering = asyncio.create_task(answer(connection, writer))
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while await reader.read(65536):  # b"" (or a reset) when the client closes
                    pass
            connection.closed = loop.time()
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            connection.closed = loop.time()
        finally:
            connection.finished.set()
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(serve, host, port, ssl=tls)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def _request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)
