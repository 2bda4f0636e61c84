"""asyncio UDP and TCP transports on one address (RFC 3261 §18); TLS builds on TCP's
(``sip/tls.py``).

Bytes in, bytes out; nothing here knows SIP beyond stream framing. Responses to a request
that came over TCP go back over the same connection (§18.2.2), so TCP connections are keyed
by the remote address they come from; sending to an unknown TCP peer opens a connection.

A TCP connection holds a file descriptor until it closes, so connections are bounded (the
counters are named after the transport: ``tcp_…``, ``tls_…``):
- At most ``TcpLimits.per_source`` accepted connections per source IP address; one more
  is aborted at once and counted (``tcp_refused``). One host cannot use up the process's
  descriptors and shut everyone else out.
- An accepted connection must bring a SIP message that parses within
  ``first_message_timeout``, or it is closed (``tcp_closed_silent``). CRLF keep-alives
  do not count: they are not a message.
- Any connection that receives nothing for ``idle_timeout`` is closed
  (``tcp_closed_idle``). RFC 5626 CRLF keep-alives are input, and the default outlives a
  registration's longest expiry, so a registered phone's flow stays up.
- A peer that does not read what we write stops being read (``pause_writing``), so it
  cannot make us buffer answers without bound; the timeouts above still end it.
- A framing error closes the connection. When the broken message's header section was
  complete, it is handed to ``on_bad_frame`` first, so the request can still be answered.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from switchboard.logbudget import LogBudget
from switchboard.sip.framing import Framed, FramingError, KeepAlivePing, StreamFramer
from switchboard.sip.transaction.base import Peer

log = logging.getLogger("switchboard.sip.transport")
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
READ_BUDGET = 1000  # datagrams read in one wake-up; then other ready work gets its turn
MAX_DATAGRAM = 65535

# Returns whether the bytes were a SIP message (a connection's first one lifts its
# first-message deadline).
Receiver = Callable[[bytes, Peer], bool]
ErrorHandler = Callable[[Peer], None]
BadFrameHandler = Callable[[FramingError, Peer], None]

FIRST_MESSAGE_TIMEOUT = 10.0  # seconds; a phone sends its REGISTER or INVITE at once
# A burst of connections (phones coming back after an outage, or a flood to be refused)
# waits in the kernel's accept queue; past it, the kernel drops the handshake and the
# peer retries only after a SYN-ACK timeout of 1, 3, 7… seconds.
LISTEN_BACKLOG = 1024
_EARLY = 0.001  # timers may fire this much before their deadline (loop clock resolution)


@dataclass(frozen=True, slots=True)
class TcpLimits:
    per_source: int = 32
    idle_timeout: float = 3900.0  # longer than a registration's max expiry (3600 s)
    first_message_timeout: float = FIRST_MESSAGE_TIMEOUT


class UdpTransport(asyncio.DatagramProtocol):
    """UDP on a socket of our own, read from the loop's reader callback (``open``); or, on
    an in-memory network (``switchboard.testing``), as the datagram protocol it binds.

    Why not the loop's datagram transport: uvloop reads at most 32 datagrams a loop
    iteration (libuv's ``uv__udp_io``) while a TCP connection is read whole, so when HTTP
    requests filled each iteration SIP waited in the kernel: at 400 call_group/s offered,
    4.4 MB queued, responses and ACKs came late, peers and Switchboard retransmitted, and
    a third of the calls failed. Each wake-up here reads what is queued, up to
    ``READ_BUDGET`` datagrams, so SIP is drained at the pace it arrives; the overload guard
    (``api/overload.py``) sees the loop fall behind and refuses new calls instead.
    """

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0  # datagrams the kernel's send buffer had no room for
        self._buffer = memoryview(bytearray(MAX_DATAGRAM))

    async def open(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
        family, *_, address = found[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            # A burst that arrives while the loop is busy waits in the kernel instead of
            # being dropped (the default, ~200 KB, overflowed under load: lost ACKs and
            # BYEs, then retransmissions); the kernel caps it at net.core.rmem_max.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            if family == socket.AF_INET6:  # dual stack, whatever the host's default
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(address)
            loop.add_reader(sock.fileno(), self._read)
        except BaseException:
            sock.close()
            raise
        self._sock, self._loop = sock, loop

    def _read(self) -> None:
        sock, receive = self._sock, self._receiver
        if sock is None:
            return
        buffer = self._buffer
        for _ in range(READ_BUDGET):
            try:
                size, addr = sock.recvfrom_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error the kernel queued on the socket
                self.error_received(exc)
                continue
            # copied out of one buffer: ``recvfrom`` would allocate 64 KiB a datagram
            receive(bytes(buffer[:size]), Peer("UDP", str(addr[0]), int(addr[1])))
            if self._sock is not sock:
                return  # closed by what it received (shutdown)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass: duck-type it.
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._receiver(data, Peer("UDP", str(addr[0]), int(str(addr[1]))))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)  # ICMP unreachable; the transactions time out

    def send(self, data: bytes, peer: Peer) -> None:
        """Raises ValueError for a host that is not an IP address (nothing is resolved on
        the way out: a name in a stranger's Via or Contact sends us to no resolver) and
        OSError for a socket that refuses."""
        sock = self._sock
        if sock is None:  # an in-memory network: refuses names as the socket does
            _numeric_host(peer.host, socket.AF_INET)
            if self._transport is not None:
                self._transport.sendto(data, (peer.host, peer.port))
            return
        host = _numeric_host(peer.host, sock.family)
        try:
            sock.sendto(data, (host, peer.port))
        except (BlockingIOError, InterruptedError):
            self.dropped += 1  # the send buffer is full: lost like on the wire, retransmitted

    @property
    def local_address(self) -> tuple[str, int]:
        if self._sock is not None:
            host, port = self._sock.getsockname()[:2]
            return str(host), int(port)
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._transport is not None:
            self._transport.close()


_ZONE = re.compile(r"[A-Za-z0-9._-]{1,15}")  # an interface name (IFNAMSIZ) or index


def _numeric_host(host: str, family: int) -> str:
    """``host`` as the socket's family writes it; ValueError unless it is an IP address.

    A link-local IPv6 address carries its zone (``fe80::1%eth0``, RFC 4007 §11, as the
    socket reports such a sender): the address is checked here and the socket maps the
    zone to its interface index (numerically, without a name lookup)."""
    if _is_address(socket.AF_INET, host):
        return f"::ffff:{host}" if family == socket.AF_INET6 else host
    address, percent, zone = host.partition("%")
    if not _is_address(socket.AF_INET6, address) or (percent and not _ZONE.fullmatch(zone)):
        raise ValueError(f"not an IP address: {host!r}")
    return host


def _is_address(family: int, text: str) -> bool:
    try:
        socket.inet_pton(family, text)
    except OSError:
        return False
    return True


class TcpConnection(asyncio.Protocol):
    """One TCP connection: framing, keep-alive pongs, and its one deadline timer."""

    aliases: set[Peer]  # other addresses it carries messages for (``TlsTransport``)

    def __init__(self, owner: TcpTransport, peer: Peer | None = None) -> None:
        self._owner = owner
        self._framer = StreamFramer()
        self.peer = peer
        self.inbound = peer is None
        self.admitted = False
        self.greeted = not self.inbound  # we speak first on the connections we open
        self.transport: asyncio.Transport | None = None
        self._opened_at = 0.0
        self._last_input = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.expired = False  # closed by its deadline
        self.aliases = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        self.transport = stream
        if self.peer is None:
            host, port = stream.get_extra_info("peername")[:2]
            self.peer = Peer(self._owner.name, str(host), int(port))
        if not self._owner.admit(self):
            stream.abort()  # refused: give the descriptor back now
            return
        self.admitted = True
        self._opened_at = self._last_input = self._owner.now()
        self._arm()
        self.ready(stream)

    def ready(self, stream: asyncio.Transport) -> None:
        """From now on messages for the peer go out through ``stream``."""
        assert self.peer is not None
        self.transport = stream
        self._owner.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        self._last_input = self._owner.now()
        try:
            items = self._framer.feed(data)
        except FramingError as exc:
            self._handle(exc.framed)
            self._end_with_framing_error(exc)
            return
        self._handle(items)

    def _handle(self, items: list[Framed]) -> None:
        assert self.peer is not None and self.transport is not None
        for item in items:
            if isinstance(item, KeepAlivePing):
                self.transport.write(b"\r\n")  # RFC 5626 §3.5.1 pong
            elif self._owner.receiver(item, self.peer):
                self.greeted = True

    def _end_with_framing_error(self, exc: FramingError) -> None:
        assert self.peer is not None and self.transport is not None
        self._owner.warn("closing %s: %s", self.peer, exc.reason)
        if exc.head is not None:
            self._owner.on_bad_frame(exc, self.peer)
        self.transport.close()  # after the answer is written; the timer is the backstop

    # -- flow control: a peer that does not read is not read either ----------------------

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- the deadline ---------------------------------------------------------------------

    def deadline(self) -> float:
        limits = self._owner.limits
        idle = self._last_input + limits.idle_timeout
        if self.greeted:
            return idle
        return min(idle, self._opened_at + limits.first_message_timeout)

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_at(self.deadline(), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._owner.now() < self.deadline() - _EARLY:
            self._arm()  # input arrived since the timer was set: not due yet
            return
        assert self.transport is not None
        reason = "idle" if self.greeted else "silent"
        self._owner.counters[f"{self._owner.name.lower()}_closed_{reason}"] += 1
        log.info("closing %s: %s", self.peer, reason)
        self.expired = True
        self.transport.abort()  # nothing we wrote is still worth waiting for

    def connection_lost(self, exc: Exception | None) -> None:
        self.forget()

    def forget(self) -> None:
        """Stop the timer and give the slot back; once, however the connection ended."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.admitted:
            self.admitted = False
            self._owner.release(self)


class TcpTransport:
    name = "TCP"  # the transport of its ``Peer``s and the prefix of its counters

    def __init__(
        self,
        receiver: Receiver,
        on_error: ErrorHandler,
        on_bad_frame: BadFrameHandler,
        limits: TcpLimits | None = None,
    ) -> None:
        self.receiver = receiver
        self.on_error = on_error
        self.on_bad_frame = on_bad_frame
        self.limits = limits or TcpLimits()
        self.connections: dict[Peer, TcpConnection] = {}
        prefix = self.name.lower()
        self.counters = {
            f"{prefix}_{event}": 0 for event in ("refused", "closed_silent", "closed_idle")
        }
        self._per_source: collections.Counter[str] = collections.Counter()
        self._server: asyncio.Server | None = None
        self._pending: dict[Peer, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._junk_log = LogBudget()  # warnings a flood of connections could flood

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.new_connection, host, port, backlog=LISTEN_BACKLOG
        )

    def new_connection(self, peer: Peer | None = None) -> TcpConnection:
        """The protocol of one connection: accepted (no ``peer`` yet) or opened to ``peer``."""
        return TcpConnection(self, peer)

    @property
    def local_port(self) -> int:
        assert self._server is not None, "not listening"
        return int(self._server.sockets[0].getsockname()[1])

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def warn(self, text: str, *args: object) -> None:
        left_out = self._junk_log.take(self.now())
        if left_out is not None:
            suffix = f" ({left_out} similar lines left out)" if left_out else ""
            log.warning(text + suffix, *args)

    # -- admission ------------------------------------------------------------------------

    def admit(self, connection: TcpConnection) -> bool:
        """Whether an accepted connection may stay; connections we open always may."""
        if not connection.inbound:
            return True
        assert connection.peer is not None
        host = connection.peer.host
        if self._per_source[host] >= self.limits.per_source:
            self.counters[f"{self.name.lower()}_refused"] += 1
            self.warn(
                "refusing %s from %s: %d connections open",
                self.name.lower(),
                host,
                self.limits.per_source,
            )
            return False
        self._per_source[host] += 1
        return True

    def release(self, connection: TcpConnection) -> None:
        assert connection.peer is not None
        if self.connections.get(connection.peer) is connection:
            del self.connections[connection.peer]
        self.forget_aliases(connection)
        if connection.inbound:
            host = connection.peer.host
            self._per_source[host] -= 1
            if self._per_source[host] <= 0:
                del self._per_source[host]

    # -- sending --------------------------------------------------------------------------

    def forget_aliases(self, connection: TcpConnection) -> None:
        """Aliases end with their connection (``TlsTransport``); TCP has none."""

    def find(self, peer: Peer) -> TcpConnection | None:
        """The open connection that carries messages for ``peer``."""
        return self.connections.get(peer)

    def send(self, data: bytes, peer: Peer) -> None:
        connection = self.find(peer)
        if connection is not None and connection.transport is not None:
            connection.transport.write(data)
            return
        queued = self._pending.setdefault(peer, [])
        queued.append(data)
        if len(queued) == 1:
            task = asyncio.get_running_loop().create_task(self._connect(peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def open(self, peer: Peer) -> None:
        """Connect to ``peer``; the connection registers itself when it is ready."""
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self.new_connection(peer), peer.host, peer.port)

    async def _connect(self, peer: Peer) -> None:
        try:
            await self.open(peer)
        except OSError as exc:  # ssl.SSLError is one: a certificate we do not trust
            log.warning("%s connect to %s failed: %s", self.name.lower(), peer, exc)
            self._pending.pop(peer, None)
            self.on_error(peer)
            return
        connection = self.connections.get(peer)
        queued = self._pending.pop(peer, [])
        if connection is None or connection.transport is None:  # closed as soon as opened
            self.on_error(peer)
            return
        for data in queued:
            connection.transport.write(data)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self.connections.values()):
            if connection.transport is not None:
                connection.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
