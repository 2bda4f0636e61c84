"""A leg's UDP sockets: RTP on an even port, RTCP on the next odd one (RFC 3550 §11), bound
together and closed together.

Rules:
- A pair is bound whole or not at all: if either port is taken, both sockets are closed
  and ``OSError`` says so (the caller skips that port).
- On sockets, both ports are bound synchronously with ``socket.bind`` and the transports
  are made from the bound sockets: letting the loop bind by address costs it an address
  resolution per socket (uvloop: 38 µs per socket opened and closed, 21 µs this way).
- ``SocketPair.close`` calls back once both sockets have really closed (a loop iteration
  after ``close()``): only then may the port pair be drawn again. A callback, not a
  gathered future: nothing is allocated on the loop per leg that closes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

from switchboard.datagrams import DatagramNetwork

log = logging.getLogger("switchboard.media")
Address = tuple[str, int]


def ignore(_data: bytes, _source: Address) -> None:
    """What a socket no session owns does with a packet: nothing (a closed leg's late
    packets, a stranger probing a pooled port)."""


class RtpSocket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.on_packet: Callable[[bytes, Address], None] = ignore
        self.transport: Any = None  # uvloop's UDP transport is not a DatagramTransport
        self.on_closed: Callable[[], None] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            on_closed, self.on_closed = self.on_closed, None
            if on_closed is not None:
                on_closed()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # the socket really closes a loop iteration later
        else:
            self.connection_lost(None)  # never opened

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on_packet(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("rtp socket error: %s", exc)  # ICMP port unreachable from a gone peer

    def send(self, data: bytes, address: Address) -> None:
        if self.transport is not None:
            self.transport.sendto(data, address)


class SocketPair:
    __slots__ = ("_on_closed", "_open", "port", "rtcp", "rtp")

    def __init__(self, port: int) -> None:
        self.port = port
        self.rtp = RtpSocket()
        self.rtcp = RtpSocket()
        self._open = 2
        self._on_closed: Callable[[int], None] | None = None

    def close(self, on_closed: Callable[[int], None]) -> None:
        """Close both sockets; ``on_closed(port)`` once both are closed. Once only."""
        if self._on_closed is not None or self._open == 0:
            return
        self._on_closed = on_closed
        for sock in (self.rtp, self.rtcp):
            sock.on_packet = ignore
            if sock.closed:
                self._socket_closed()
            else:
                sock.on_closed = self._socket_closed
                sock.close()

    def _socket_closed(self) -> None:
        self._open -= 1
        if self._open == 0 and self._on_closed is not None:
            on_closed, self._on_closed = self._on_closed, None
            on_closed(self.port)


def _family(host: str) -> socket.AddressFamily | None:
    """The address family of an IP literal; None for a host name (the loop resolves it)."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


class PairBinder:
    """Binds pairs at ``host``: on sockets, or on ``network`` (``switchboard.testing``)."""

    def __init__(self, host: str, network: DatagramNetwork | None = None) -> None:
        self.host = host
        self.network = network
        self._family = _family(host)

    @property
    def synchronous(self) -> bool:
        """Whether ``bind_now`` can bind (the in-memory network binds without the loop)."""
        return self.network is not None

    def bind_now(self, pair: SocketPair) -> None:
        """Bind on the in-memory network; ``OSError`` if a port is taken."""
        assert self.network is not None
        for sock, port in ((pair.rtp, pair.port), (pair.rtcp, pair.port + 1)):
            self.network.bind(sock, self.host, port)

    async def bind(self, pair: SocketPair) -> None:
        """Bind both sockets of ``pair``; ``OSError`` if a port is taken (neither stays
        bound then: the caller closes the pair)."""
        if self.network is not None:
            self.bind_now(pair)
            return
        loop = asyncio.get_running_loop()
        if self._family is None:
            for sock, port in ((pair.rtp, pair.port), (pair.rtcp, pair.port + 1)):
                await loop.create_datagram_endpoint(_factory(sock), (self.host, port))
            return
        raw = [socket.socket(self._family, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for one, port in zip(raw, (pair.port, pair.port + 1), strict=True):
                one.setblocking(False)
                one.bind((self.host, port))
            for one, sock in zip(raw, (pair.rtp, pair.rtcp), strict=True):
                await loop.create_datagram_endpoint(_factory(sock), sock=one)
        except BaseException:
            made = (pair.rtp.transport is not None, pair.rtcp.transport is not None)
            for one, owned in zip(raw, made, strict=True):
                if not owned:  # a transport closes its own socket with the pair
                    one.close()
            raise


def _factory(sock: RtpSocket) -> Callable[[], RtpSocket]:
    return lambda: sock
