"""SIP over TLS (RFC 3261 §26.2, RFC 5630): TCP's connections (``transport.py``) with TLS
in between, on an address of its own.

Rules, beyond TCP's (the same ``TcpLimits``, counted apart as ``tls_…``):
- An accepted connection takes its per-source slot before the handshake, and its
  first-message deadline covers the handshake: a client that connects and never
  handshakes is closed then (``tls_closed_silent``). A handshake that fails (a client that
  does not trust our certificate, a plain-text client) is counted (``tls_handshake_failed``).
- A connection we open verifies the server's certificate (``switchboard.tls.client_context``,
  the system's CAs by default; ``contexts`` holds a trunk's own). Phones rarely have a
  certificate anyone could verify, and behind NAT cannot take a connection at all: a
  phone is reached over the connection it opened. Its REGISTER's source is where it is
  rung (the registrar's ``received``); and its Contact, where in-dialog requests are sent
  (§12.1), is an alias of its connection while that is open (``alias``, RFC 5923's reuse),
  when the Contact names the host the connection comes from: a Contact naming another
  host could otherwise divert another phone's requests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from dataclasses import dataclass
from typing import cast

from switchboard.config import ServerConfig
from switchboard.sip.transaction.base import Peer
from switchboard.sip.transport import (
    BadFrameHandler,
    ErrorHandler,
    Receiver,
    TcpConnection,
    TcpLimits,
    TcpTransport,
)
from switchboard.tls import (
    SHUTDOWN_TIMEOUT,
    client_context,
    configured_server_context,
    start_server_tls,
)

log = logging.getLogger("switchboard.sip.transport")
DEFAULT_PORT = 5061  # §19.1.2 (sips, transport=tls)
MAX_ALIASES = 4  # per connection: a Contact or two, changed now and then


@dataclass(frozen=True, slots=True)
class TlsListener:
    """Where SIP over TLS is served, with which certificate."""

    host: str
    port: int
    context: ssl.SSLContext

    @classmethod
    def configured(cls, settings: ServerConfig) -> TlsListener | None:
        """``sip_tls_listen`` with the server's certificate; None when it is off."""
        address = settings.sip_tls_address
        if address is None:
            return None
        host, port = address
        return cls(host, port, configured_server_context(settings))


class TlsConnection(TcpConnection):
    def __init__(self, owner: TlsTransport, peer: Peer | None = None) -> None:
        super().__init__(owner, peer)
        self._tls_owner = owner
        self.handshaking = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.handshaking:  # called again, by the TLS layer: the handshake is done
            self.handshaking = False
            self._tls_owner.handshaking.discard(self)
            super().ready(cast(asyncio.Transport, transport))
            return
        super().connection_made(transport)  # counted, deadline armed, then ``ready``

    def ready(self, stream: asyncio.Transport) -> None:
        if not self.inbound:  # asyncio did the handshake of the connection we opened
            super().ready(stream)
            return
        self.handshaking = True
        self._tls_owner.handshaking.add(self)
        start_server_tls(
            stream,
            self,
            self._tls_owner.server_context,
            # The first-message deadline closes a silent client first; this is a backstop.
            timeout=math.ceil(self._tls_owner.limits.first_message_timeout) + 1,
            on_settled=self._handshake_settled,
        )

    def _handshake_settled(self, exc: BaseException | None) -> None:
        if not self.handshaking:
            return  # secured: ``connection_made`` came first
        if not self.expired:  # a silent client is counted as such (``tls_closed_silent``)
            self._tls_owner.counters["tls_handshake_failed"] += 1
            reason = exc or "connection closed"
            self._tls_owner.warn("tls handshake with %s failed: %s", self.peer, reason)
        self.forget()

    def forget(self) -> None:
        self._tls_owner.handshaking.discard(self)
        super().forget()


class TlsTransport(TcpTransport):
    name = "TLS"

    def __init__(
        self,
        receiver: Receiver,
        on_error: ErrorHandler,
        on_bad_frame: BadFrameHandler,
        server_context: ssl.SSLContext,
        limits: TcpLimits | None = None,
    ) -> None:
        super().__init__(receiver, on_error, on_bad_frame, limits)
        self.server_context = server_context
        self.default_client_context = client_context()
        # (host, port) -> the context for connections we open there (a trunk's own CA)
        self.contexts: dict[tuple[str, int], ssl.SSLContext] = {}
        self.counters["tls_handshake_failed"] = 0
        self.handshaking: set[TlsConnection] = set()
        self._aliases: dict[Peer, TcpConnection] = {}

    def new_connection(self, peer: Peer | None = None) -> TcpConnection:
        return TlsConnection(self, peer)

    async def open(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        context = self.contexts.get((peer.host, peer.port), self.default_client_context)
        await loop.create_connection(
            lambda: self.new_connection(peer),
            peer.host,
            peer.port,
            ssl=context,
            server_hostname=peer.host,  # a name, or an IP address matched against its SANs
            ssl_handshake_timeout=self.limits.first_message_timeout,
            ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
        )

    # -- aliases --------------------------------------------------------------------------

    def alias(self, address: Peer, carrier: Peer) -> None:
        """Messages for ``address`` go through the open connection from ``carrier`` while
        ``address`` has no connection of its own. The newest claim wins: a phone that
        reconnected speaks over its new connection."""
        connection = self.connections.get(carrier)
        if connection is None or address == carrier or address in connection.aliases:
            return
        if len(connection.aliases) >= MAX_ALIASES:
            return
        previous = self._aliases.get(address)
        if previous is not None:
            previous.aliases.discard(address)
        self._aliases[address] = connection
        connection.aliases.add(address)

    def forget_aliases(self, connection: TcpConnection) -> None:
        for address in connection.aliases:
            if self._aliases.get(address) is connection:
                del self._aliases[address]
        connection.aliases.clear()

    def find(self, peer: Peer) -> TcpConnection | None:
        connection = self.connections.get(peer)
        return connection if connection is not None else self._aliases.get(peer)

    async def close(self) -> None:
        for connection in list(self.handshaking):
            if connection.transport is not None:
                connection.transport.abort()
        await super().close()
