"""HTTP/1.1 POSTs for callbacks over kept-alive connections to checked addresses, the edge.

Why not httpx for this: a callback POST through httpx (AsyncClient → httpcore's pool →
anyio streams → h11) cost 750 µs of CPU against a local keep-alive receiver, about a tenth
of a whole call_group call; this module, an ``asyncio.Protocol`` with httptools' C parser
(the parser uvicorn uses), costs about a tenth of that (``bench`` figures in the commit).
httpx stays for test doubles (``attempt.Attempts(transport=...)``).

Rules:
- Nothing here resolves a name. A connection is opened to one of the addresses the caller
  checked (in order, the next when one refuses), with TLS on the name: the name is the SNI
  and the certificate is checked against it; the Host header is the URL's.
- An idle connection is kept for the same (scheme, host, port, address) only: a try reuses
  one only when its address is among the ones checked for that try, so a kept-alive
  connection never carries a request past the address check of the request's own URL. At
  most ``keepalive`` idle connections are kept; one idle for ``IDLE`` seconds is closed
  (before the common 5 s of servers, so a reuse does not race the server's close).
- The answer: interim (1xx) answers are skipped; the final status is returned once the body
  has been read, counting at most ``max_response`` bytes as they came over the wire; past
  that the connection is closed unread. A body cut short (fewer bytes than announced) is an
  error; a body delimited by the close ends there.
- A connection is kept only when its answer was complete and both sides allow keep-alive.
  Any failure, or the caller's deadline cancelling the try, closes it.
- A kept-alive connection that the server closed before answering anything (it timed out
  just as we reused it) is replaced by a fresh one, once: the receiver has seen nothing.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping, Sequence

import httptools

from switchboard import __version__
from switchboard.callbacks.addresses import IPAddress

IDLE = 4.0  # seconds an unused connection is kept
USER_AGENT = f"switchboard/{__version__}"


class AnswerError(Exception):
    """The receiver's answer was not a complete HTTP/1.1 response."""


class _ClosedUnansweredError(AnswerError):
    """Closed before a byte of an answer came: a reused connection the server had dropped."""


Origin = tuple[str, str, int]  # scheme, host (as in the URL), port
Key = tuple[str, str, int, IPAddress]  # the origin, and the address connected


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection, one request at a time; httptools calls back the
    ``on_*`` methods from ``feed_data``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.read = 0
        self.answered = False  # a byte of the answer came
        self.delimited = False  # Content-Length or chunked: the end is not the close
        self.complete = False
        self.keep_alive = False  # both sides allow it (read with the head: llhttp resets it)
        self.over = False  # past the cap: closed unread
        self.stray = False  # more came than one answer

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.stray = True  # unasked-for bytes: this connection is not to be trusted
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._settle(AnswerError("the receiver switched protocols"))
        except httptools.HttpParserError as exc:
            self._settle(AnswerError(f"not an HTTP/1.1 answer ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None or self.waiter.done():
            return
        if self.status >= 200 and not self.delimited:
            self.complete = True  # the body ended with the connection (RFC 9112 §6.3)
            self._settle(None)
        elif not self.answered:
            self._settle(_ClosedUnansweredError("the receiver closed the connection unanswered"))
        else:
            self._settle(AnswerError("the receiver closed the connection mid-answer"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.complete:
            self.stray = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.delimited = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.read += len(body)
        if self.read > self.limit and not self.over:
            self.over = True
            self._settle(None)
            self.close()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # interim: the final answer follows
            self.status, self.delimited = 0, False
            return
        self.complete = True
        self._settle(None)

    def _settle(self, error: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            if error is None:
                self.waiter.set_result(None)
            else:
                self.waiter.set_exception(error)
                self.close()

    # the pool's side
    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        self._reset()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        await self.waiter
        return self.status

    def reusable(self) -> bool:
        return (
            self.complete
            and not (self.over or self.stray or self.closed)
            and self.keep_alive
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Http1Pool:
    def __init__(self, *, tls: ssl.SSLContext, max_response: int, keepalive: int = 20) -> None:
        self.tls = tls
        self.max_response = max_response
        self.keepalive = keepalive
        self._idle: dict[Key, list[_Connection]] = {}

    async def post(
        self, origin: Origin, addresses: Sequence[IPAddress], head: bytes, body: bytes
    ) -> int:
        """The final status of ``head`` + ``body`` sent to ``origin``'s host at one of
        ``addresses``; ``head`` is the request line and headers (``request_head``)."""
        request = head + body
        for address in addresses:
            key = (*origin, address)
            connection = self._take(key)
            if connection is None:
                continue
            try:
                return await self._exchange(connection, key, request)
            except _ClosedUnansweredError:
                break  # a stale one: a fresh connection below
        key, connection = await self._open(origin, addresses)
        return await self._exchange(connection, key, request)

    async def _exchange(self, connection: _Connection, key: Key, request: bytes) -> int:
        try:
            status = await connection.exchange(request)
        except BaseException:  # an error, or the deadline cancelled the try
            connection.close()
            raise
        self._give_back(key, connection)
        return status

    def _take(self, key: Key) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.reusable() and now - connection.idle_since < IDLE:
                return connection
            connection.close()
        return None

    def _give_back(self, key: Key, connection: _Connection) -> None:
        if not connection.reusable():
            connection.close()
            return
        if sum(map(len, self._idle.values())) >= self.keepalive:
            self._purge()
            if sum(map(len, self._idle.values())) >= self.keepalive:
                connection.close()
                return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(key, []).append(connection)

    def _purge(self) -> None:
        now = time.monotonic()
        for key, idle in list(self._idle.items()):
            kept = [c for c in idle if c.reusable() and now - c.idle_since < IDLE]
            for connection in idle:
                if connection not in kept:
                    connection.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]

    async def _open(
        self, origin: Origin, addresses: Sequence[IPAddress]
    ) -> tuple[Key, _Connection]:
        *others, last = addresses
        for address in others:  # the next checked address when one refuses (RFC 6724 order)
            try:
                return await self._connect(origin, address)
            except ssl.SSLError:
                raise  # the name's certificate: another address of it will not do better
            except OSError:
                continue
        return await self._connect(origin, last)

    async def _connect(self, origin: Origin, address: IPAddress) -> tuple[Key, _Connection]:
        scheme, host, port = origin
        tls = self.tls if scheme == "https" else None
        _, connection = await asyncio.get_running_loop().create_connection(
            lambda: _Connection(self.max_response),
            str(address),
            port,
            ssl=tls,
            server_hostname=host.strip("[]") if tls is not None else None,
        )
        return (*origin, address), connection

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def request_head(target: bytes, host: bytes, length: int, headers: Mapping[str, str]) -> bytes:
    """``POST target HTTP/1.1`` with Host, the defaults a general client sends, and
    ``headers`` (which override a default of the same name). A value with CR or LF would
    start a header of its own: refused."""
    given = {name.lower() for name in headers}
    lines = [b"POST " + target + b" HTTP/1.1", b"Host: " + host]
    defaults = (
        ("Accept", "*/*"),
        ("Accept-Encoding", "identity"),
        ("Connection", "keep-alive"),
        ("User-Agent", USER_AGENT),
    )
    lines.extend(f"{k}: {v}".encode() for k, v in defaults if k.lower() not in given)
    lines.append(b"Content-Length: %d" % length)
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}".encode("latin-1"))
    lines.append(b"\r\n")
    return b"\r\n".join(lines)
