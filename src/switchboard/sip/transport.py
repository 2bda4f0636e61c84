"""asyncio UDP and TCP transports on one address (RFC 3261 §18).

Bytes in, bytes out; nothing here knows SIP beyond stream framing. Responses to a request
that came over TCP go back over the same connection (§18.2.2), so TCP connections are keyed
by the remote address they come from; sending to an unknown TCP peer opens a connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from switchboard.sip.errors import ParseError
from switchboard.sip.framing import KeepAlivePing, StreamFramer
from switchboard.sip.transaction.base import Peer

log = logging.getLogger("switchboard.sip.transport")

Receiver = Callable[[bytes, Peer], None]
ErrorHandler = Callable[[Peer], None]


class UdpTransport(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass: duck-type it.
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._receiver(data, Peer("UDP", str(addr[0]), int(str(addr[1]))))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)  # ICMP unreachable; the transactions time out

    def send(self, data: bytes, peer: Peer) -> None:
        if self._transport is not None:
            self._transport.sendto(data, (peer.host, peer.port))

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class TcpConnection(asyncio.Protocol):
    def __init__(self, owner: TcpTransport, peer: Peer | None = None) -> None:
        self._owner = owner
        self._framer = StreamFramer()
        self.peer = peer
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.peer is None:
            host, port = transport.get_extra_info("peername")[:2]
            self.peer = Peer("TCP", str(host), int(port))
        self._owner.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        try:
            items = self._framer.feed(data)
        except ParseError as exc:
            log.warning("closing %s: %s", self.peer, exc.reason)
            self.transport.close()
            return
        for item in items:
            if isinstance(item, KeepAlivePing):
                self.transport.write(b"\r\n")  # RFC 5626 §3.5.1 pong
            else:
                self._owner.receiver(item, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self._owner.connections.get(self.peer) is self:
            del self._owner.connections[self.peer]


class TcpTransport:
    def __init__(self, receiver: Receiver, on_error: ErrorHandler) -> None:
        self.receiver = receiver
        self.on_error = on_error
        self.connections: dict[Peer, TcpConnection] = {}
        self._server: asyncio.Server | None = None
        self._pending: dict[Peer, list[bytes]] = {}

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: TcpConnection(self), host, port)

    def send(self, data: bytes, peer: Peer) -> None:
        connection = self.connections.get(peer)
        if connection is not None and connection.transport is not None:
            connection.transport.write(data)
            return
        queued = self._pending.setdefault(peer, [])
        queued.append(data)
        if len(queued) == 1:
            asyncio.get_running_loop().create_task(self._connect(peer))

    async def _connect(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: TcpConnection(self, peer), peer.host, peer.port)
        except OSError as exc:
            log.warning("tcp connect to %s failed: %s", peer, exc)
            self._pending.pop(peer, None)
            self.on_error(peer)
            return
        connection = self.connections[peer]
        assert connection.transport is not None
        for data in self._pending.pop(peer, []):
            connection.transport.write(data)

    async def close(self) -> None:
        for connection in list(self.connections.values()):
            if connection.transport is not None:
                connection.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
