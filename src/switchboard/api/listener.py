"""The HTTP listener: uvicorn's HTTP/1.1 protocol (h11) with connection caps and a deadline
for each request to arrive.

Rules:
- A new connection takes a slot from ``ConnectionLimits`` (in all and per source address)
  before anything is parsed. With no slot free it gets a ready-made 503 in the Basix
  envelope (``too_many_connections``, ``Retry-After: 1``) and is closed at once: it costs
  one write; nothing it sends is read, no task is started.
- A request must arrive whole (head and body) within ``REQUEST_TIMEOUT`` seconds of the
  connection becoming ready for it: when it opens, and again when the previous response is
  complete. A connection that sends nothing, or sends its head a byte at a time
  (slowloris), or trickles its body, is closed then. uvicorn has no such deadline: it times
  out only a connection that stays silent after a response (``KEEP_ALIVE``), and a silent
  fresh connection never. The app's own time (a request that has arrived and is being
  answered) and WebSockets are not limited here: the deadline stops when the request has
  arrived, and a WebSocket keeps its pings (uvicorn's ``ws_ping_*``).
- A response sent before its request's body was all in (a 413 from ``bodylimit``, an
  authentication failure) is followed by at most ``LINGER`` seconds in which the rest of
  the body is read and discarded (uvicorn does so); a body still coming then is cut.
  Closing at once would reset the connection, and a client still sending would lose the
  answer (RFC 9112 §9.6); reading on without end would let a client stream gigabytes.
- A WebSocket upgrade hands the transport to uvicorn's WebSocket protocol; ``_Upgraded``
  sits in between only to give the slot back when that connection closes.
- A request h11 cannot parse (a 5000-digit Content-Length, a head over 16 KiB) gets
  HTTP 400 in the Basix envelope (``invalid_request``) instead of uvicorn's plain text.
- HTTPS (``http_tls``): the same listener speaks TLS, and ws_cti is then WSS. The connection
  takes its slot before the handshake (``switchboard.tls.start_server_tls``), the handshake
  must be done within ``REQUEST_TIMEOUT`` (and then the first request within as much
  again), and a handshake that fails gives the slot back. A connection refused for the
  caps is closed without an answer: there is no TLS session to answer in.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import Any, cast

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from switchboard.api.connections import ConnectionLimits, Refusal
from switchboard.api.errors import ApiError, error_response
from switchboard.logbudget import LogBudget
from switchboard.tls import start_server_tls

log = logging.getLogger("switchboard.api")

REQUEST_TIMEOUT = 10.0  # seconds for a whole request (head and body) to arrive
KEEP_ALIVE = 5  # seconds a connection may stay silent after a response (uvicorn's)
LINGER = 2.0  # seconds to discard the rest of a body answered before it was read
_ARRIVING = (h11.IDLE, h11.SEND_BODY)  # their (the client's) h11 states before it is all in


def envelope_response(
    status: int, reason: str, error_id: str, description: str, *, retry_after: bool = False
) -> bytes:
    """A complete HTTP/1.1 response carrying the Basix error envelope, closing the
    connection; written straight to the transport, without the app."""
    body = bytes(error_response(ApiError(error_id, description)).body)  # rendered in one place
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(["retry-after: 1"] if retry_after else []),
        "connection: close",
    ]
    return "\r\n".join([*lines, "", ""]).encode() + body


_REFUSALS = {
    refusal: envelope_response(
        503,
        "Service Unavailable",
        "too_many_connections",
        f"too many open connections ({refusal.value}); retry in a second",
        retry_after=True,
    )
    for refusal in Refusal
}


class ListenerState(ServerState):
    """uvicorn's state shared by every connection, plus the caps they are counted against."""

    def __init__(self, limits: ConnectionLimits, tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.limits = limits
        self.tls = tls
        self.log_budget = LogBudget(per_second=1)


class GuardedH11Protocol(H11Protocol):
    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ListenerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = server_state.limits
        self.tls = server_state.tls
        self.log_budget = server_state.log_budget
        self.source = ""
        self.admitted = False  # a refused connection is only written to and closed
        self.handshaking = False  # admitted, TLS handshake under way
        self.deadline: asyncio.TimerHandle | None = None
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.handshaking:  # called again, by the TLS layer: the handshake is done
            self.handshaking = False
            self._serve(transport)
            return
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) else "local"
        refusal = self.limits.admit(source)
        if refusal is not None:
            self._refuse(transport, source, refusal)
            return
        self.source, self.admitted = source, True
        if self.tls is not None:
            self.handshaking = True
            start_server_tls(
                cast(asyncio.Transport, transport),  # uvloop's is one, not a subclass
                self,
                self.tls,
                timeout=math.ceil(REQUEST_TIMEOUT),
                on_settled=self._handshake_settled,
            )
            return
        self._serve(transport)

    def _serve(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm(REQUEST_TIMEOUT)

    def _handshake_settled(self, exc: BaseException | None) -> None:
        if not self.handshaking:
            return  # secured: served from the second ``connection_made``
        self.handshaking = False  # never served: no ``connection_lost`` will come
        self.limits.release(self.source)
        log.debug("HTTPS: handshake with %s failed: %s", self.source, exc or "connection closed")

    def _refuse(self, transport: asyncio.BaseTransport, source: str, refusal: Refusal) -> None:
        if self.tls is None:  # duck-typed: uvloop's transports are not asyncio subclasses
            cast(asyncio.WriteTransport, transport).write(_REFUSALS[refusal])
        transport.close()
        left_out = self.log_budget.take(time.monotonic())
        if left_out is not None:
            log.warning(
                "HTTP: refused a connection from %s (%s reached; %d refusals not logged)",
                source,
                refusal.value,
                left_out,
            )

    def data_received(self, data: bytes) -> None:
        if self.admitted:  # a refused one is closing: what it still sends is not read
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        self._disarm()
        super().connection_lost(exc)
        if not self.upgraded:
            self.limits.release(self.source)

    def handle_events(self) -> None:
        before = self.conn.their_state
        super().handle_events()
        after = self.conn.their_state
        if self.upgraded:
            return
        if after not in _ARRIVING:
            self._disarm()  # the request is all in: the app's time is not ours to bound
        elif before is h11.SEND_BODY and after is h11.IDLE:
            self._arm(REQUEST_TIMEOUT)  # an answered body is drained: ready for the next

    def on_response_complete(self) -> None:
        unread_body = self.conn.their_state is h11.SEND_BODY
        super().on_response_complete()  # may start the next (pipelined) request
        if self.transport.is_closing():
            return
        if unread_body:
            self._arm(LINGER)  # answered before its body was in: discard the rest, briefly
        elif self.conn.their_state in _ARRIVING:
            self._arm(REQUEST_TIMEOUT)  # the next request starts its clock

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()
        self.upgraded = True
        super().handle_websocket_upgrade(event)
        source = self.source
        websocket = self.transport.get_protocol()
        self.transport.set_protocol(_Upgraded(websocket, lambda: self.limits.release(source)))

    def send_400_response(self, msg: str) -> None:
        self.transport.write(
            envelope_response(
                400, "Bad Request", "invalid_request", "the request is not valid HTTP/1.1"
            )
        )
        self.transport.close()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expire(self) -> None:
        self.deadline = None
        if self.upgraded or self.transport.is_closing():
            return
        if self.conn.their_state in _ARRIVING:
            self.limits.counters["http_requests_timed_out"] += 1
            self.transport.close()


class _Upgraded(asyncio.Protocol):
    """Passes everything to the WebSocket protocol that took the connection over, and gives
    the connection's slot back when it closes."""

    def __init__(self, inner: asyncio.BaseProtocol, on_lost: Callable[[], None]) -> None:
        self.inner = inner
        self.on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        if isinstance(self.inner, asyncio.Protocol):
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if isinstance(self.inner, asyncio.Protocol):
            return self.inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self.inner.connection_lost(exc)
        finally:
            self.on_lost()


class GuardedServer(uvicorn.Server):
    """uvicorn serving ``app`` on ``address`` through ``GuardedH11Protocol``."""

    def __init__(
        self,
        app: ASGIApp,
        address: tuple[str, int],
        limits: ConnectionLimits,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: serve HTTPS (and WSS) with it instead of HTTP."""
        host, port = address
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=GuardedH11Protocol,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=KEEP_ALIVE,
            # Requests still running when their connection has gone (tasks outlive it)
            # are the one thing the connection cap cannot see: past it, uvicorn answers 503.
            limit_concurrency=limits.max_total + 1,
        )
        super().__init__(config)
        self.limits = limits
        self.server_state = ListenerState(limits, tls)
