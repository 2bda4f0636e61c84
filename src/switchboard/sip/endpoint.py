"""The SIP endpoint: the thin asyncio edge that drives the pure core.

It owns the sockets (UDP and TCP on one address, TLS on its own), one timer for every
transaction and 2xx retransmission, and the log line per SIP message. Everything it
decides is decided by the transaction layer; everything above it (UAS, UAC, the PBX) is a
``TransactionUser``.

Rules:
- A message that does not parse is dropped and logged, except a request that was readable
  enough to answer: it gets ``400`` with the reason in the Reason-Phrase (§21.4.1). Those
  warnings are rate-limited (``LogBudget``) so that a flood cannot flood the log too.
- Client transactions report to a callback with a response. A timeout is reported as a
  synthesised 408 and a transport failure (a failed TCP connect, a UDP send that raises:
  uvloop refuses host names) as 503, as §8.1.3.1 tells the TU to treat them.
- An exception in a TU callback is logged and never stops the endpoint.
- An INVITE that matches no transaction is put to the TU's ``screen_invite`` first. Taken,
  it gets a server transaction; refused, its answer is sent statelessly (§8.2.7): one
  response per request received, no 100, no retransmission, no state. The ACK for that
  answer matches nothing and the TU ignores it, as §8.2.7 says a stateless UAS must.
- A TCP stream that cannot be framed is closed; a request whose header section was
  complete still gets its 400 (or 513) first.
- A message for a TLS peer goes over TLS or not at all: with no TLS listener it fails its
  transactions (503), it never falls back to TCP. Our Via and Contact name the transport a
  message goes over, with the TLS listener's port for TLS (``;transport=tls``).
- A message received over TLS makes its Contact an alias of its connection when the
  Contact names the connection's host (``sip/tls.py`` says why): requests in the dialog,
  sent to that Contact, go back over the phone's own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import ssl
from collections.abc import Callable
from typing import Protocol

from switchboard.config import canonical_host
from switchboard.datagrams import DatagramNetwork
from switchboard.logbudget import LogBudget
from switchboard.sip.address import parse_address
from switchboard.sip.builders import make_response, stateless_tag
from switchboard.sip.dialog import SuccessRetransmitter
from switchboard.sip.errors import ParseError
from switchboard.sip.framing import FramingError
from switchboard.sip.ids import IdGenerator
from switchboard.sip.message import Message, Request, Response, parse_message
from switchboard.sip.tls import DEFAULT_PORT as TLS_DEFAULT_PORT
from switchboard.sip.tls import TlsListener, TlsTransport
from switchboard.sip.transaction.base import (
    Deliver,
    Effect,
    Peer,
    Send,
    Terminated,
    TimedOut,
    TimerConfig,
    Transaction,
    TransportFailed,
)
from switchboard.sip.transaction.layer import (
    ClientTransaction,
    LayerEvent,
    NewInvite,
    NewRequest,
    ServerTransaction,
    StrayResponse,
    TransactionLayer,
)
from switchboard.sip.transport import (
    TcpLimits,
    TcpTransport,
    UdpTransport,
)
from switchboard.sip.uri import SipUri, format_host

log = logging.getLogger("switchboard.sip")
ResponseCallback = Callable[[Response], None]


class TransactionUser(Protocol):
    def on_request(
        self, endpoint: SipEndpoint, tx: ServerTransaction | None, request: Request, peer: Peer
    ) -> None: ...

    def on_stray_response(self, endpoint: SipEndpoint, response: Response, peer: Peer) -> None: ...

    def screen_invite(self, request: Request, peer: Peer) -> Response | None:
        """None takes a new INVITE (``on_request`` follows with its server transaction);
        a response refuses it, and is sent statelessly."""
        ...


class SipEndpoint:
    def __init__(
        self,
        listen_host: str,
        listen_port: int,
        *,
        advertised_host: str | None = None,
        ids: IdGenerator | None = None,
        timers: TimerConfig | None = None,
        tcp_limits: TcpLimits | None = None,
        network: DatagramNetwork | None = None,
        tls: TlsListener | None = None,
    ) -> None:
        """``network``: bind UDP on it instead of a socket, and no TCP (``testing``).
        ``tls``: serve SIP over TLS there too (port 0: any free one, ``tls_port`` after
        ``start``)."""
        self.listen_host = listen_host
        self.network = network
        self.listen_port = listen_port
        self.advertised_host = advertised_host or listen_host
        self.ids = ids or IdGenerator()
        self.layer = TransactionLayer(timers)
        self.user: TransactionUser | None = None
        self._udp = UdpTransport(self._on_bytes)
        self._tcp = TcpTransport(
            self._on_bytes, self._on_transport_error, self._on_bad_frame, tcp_limits or TcpLimits()
        )
        self.tls_listener = tls
        self.tls_port: int | None = tls.port if tls is not None else None
        self._tls = (
            TlsTransport(
                self._on_bytes,
                self._on_transport_error,
                self._on_bad_frame,
                tls.context,
                tcp_limits or TcpLimits(),
            )
            if tls is not None
            else None
        )
        self._callbacks: dict[Transaction, ResponseCallback] = {}
        self._retransmitters: dict[object, tuple[SuccessRetransmitter, Callable[[], None]]] = {}
        # (deadline, sequence, key): stale entries are skipped when they surface
        self._retransmit_heap: list[tuple[float, int, object]] = []
        self._sequence = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.counters = {
            "in": 0,
            "out": 0,
            "retransmitted": 0,
            "dropped": 0,
            "bad_request": 0,
            "stateless_responses": 0,
        }
        self._junk_log = LogBudget()  # warnings about unparseable input, per second

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.network is not None:
            self.network.bind(self._udp, self.listen_host, self.listen_port)
        else:
            await self._udp.open(self.listen_host, self.listen_port)
        if self.listen_port == 0:
            self.listen_port = self._udp.local_address[1]
        if self.network is None:
            await self._tcp.listen(self.listen_host, self.listen_port)
        log.info("sip listening on %s:%d (udp, tcp)", self.listen_host, self.listen_port)
        if self._tls is not None and self.tls_listener is not None and self.network is None:
            await self._tls.listen(self.tls_listener.host, self.tls_listener.port)
            self.tls_port = self._tls.local_port
            log.info("sip listening on %s:%d (tls)", self.tls_listener.host, self.tls_port)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._udp.close()
        await self._tcp.close()
        if self._tls is not None:
            await self._tls.close()

    def now(self) -> float:
        assert self._loop is not None, "endpoint not started"
        return self._loop.time()

    # -- helpers for TUs ------------------------------------------------------------------

    def via(self, transport: str = "UDP") -> str:
        host = format_host(self.advertised_host)
        port = self.port_for(transport)
        return f"SIP/2.0/{transport} {host}:{port};branch={self.ids.branch()};rport"

    def contact(self, user: str | None = None, transport: str = "UDP") -> str:
        userpart = f"{user}@" if user else ""
        param = "" if transport == "UDP" else f";transport={transport.lower()}"
        host = format_host(self.advertised_host)
        return f"<sip:{userpart}{host}:{self.port_for(transport)}{param}>"

    def port_for(self, transport: str) -> int:
        """The port we listen on for ``transport``: TLS has its own."""
        if transport == "TLS" and self.tls_port is not None:
            return self.tls_port
        return self.listen_port

    def trust_tls(self, host: str, port: int, context: ssl.SSLContext) -> None:
        """Connections we open to ``host``:``port`` over TLS use ``context`` (a trunk's own
        CA file, or no verification) instead of the system's CAs."""
        if self._tls is not None:
            self._tls.contexts[(host, port)] = context

    def send_request(
        self, request: Request, peer: Peer, callback: ResponseCallback
    ) -> ClientTransaction:
        tx, effects = self.layer.send_request(request, peer, self.now())
        self._callbacks[tx] = callback
        self._apply(effects)
        self._rearm()
        return tx

    def respond(self, tx: ServerTransaction, response: Response) -> None:
        self._apply(self.layer.respond(tx, response, self.now()))
        self._rearm()

    def send_stateless(self, message: Message, peer: Peer) -> None:
        """Send outside any transaction: the ACK for a 2xx, for instance (§13.2.2.4)."""
        self._send(message, peer)

    def retransmit_success(
        self, key: object, response: Response, peer: Peer, on_give_up: Callable[[], None]
    ) -> None:
        """Keep sending this 2xx until ``ack_received(key)`` (§13.3.1.4)."""
        retransmitter = SuccessRetransmitter(response, peer, self.now(), self.layer.config)
        self._retransmitters[key] = (retransmitter, on_give_up)
        self._schedule_retransmitter(key, retransmitter)
        self._rearm()

    def ack_received(self, key: object) -> bool:
        entry = self._retransmitters.pop(key, None)
        return entry is not None

    def statistics(self) -> dict[str, int]:
        return {
            **self.counters,
            **self.layer.statistics(),
            "awaiting_ack": len(self._retransmitters),
            "udp_send_dropped": self._udp.dropped,
            "tcp_connections": len(self._tcp.connections),
            **self._tcp.counters,
            **self._tls_statistics(),
        }

    def _tls_statistics(self) -> dict[str, int]:
        if self._tls is None:
            return {}
        return {"tls_connections": len(self._tls.connections), **self._tls.counters}

    # -- inbound --------------------------------------------------------------------------

    def _on_bytes(self, data: bytes, peer: Peer) -> bool:
        """Handle one datagram or framed message; whether it was a SIP message at all."""
        if not data.strip(b"\r\n"):
            return False  # keep-alive (RFC 5626 §4.4.1)
        self.counters["in"] += 1
        try:
            message = parse_message(data)
        except ParseError as exc:
            self._reject(exc, peer, data)
            return False
        if log.isEnabledFor(logging.INFO):
            log.info("in  %s %s %s", peer, message.get("Call-ID"), message.first_line)
        if peer.transport == "TLS":
            self._learn_tls_alias(message, peer)
        try:
            events = self.layer.receive(message, peer, self.now())
            self._dispatch(events)
        except Exception:
            log.exception("error handling message from %s", peer)
        self._rearm()
        return True

    def _learn_tls_alias(self, message: Message, peer: Peer) -> None:
        """The Contact, where requests in the dialog will be sent, is reached through this
        connection while it is open, if it names the connection's own host."""
        contact = message.get("Contact")
        if contact is None or self._tls is None:
            return
        uri = parse_address(contact).uri  # validated when the message was parsed
        if not isinstance(uri, SipUri) or uri.transport != "TLS":
            return
        host, port = uri.host_port
        if canonical_host(host) == canonical_host(peer.host):
            self._tls.alias(Peer("TLS", host, port or TLS_DEFAULT_PORT), peer)

    def _on_bad_frame(self, error: FramingError, peer: Peer) -> None:
        """The connection closes; the request that broke the framing gets its answer."""
        assert error.head is not None
        self.counters["in"] += 1
        try:
            request: object = parse_message(error.head)
        except ParseError as exc:
            request = exc.partial
        if isinstance(request, Request):
            error.partial = request  # a FramingError is a ParseError with its status
            self._reject(error, peer, error.head)
        else:
            self.counters["dropped"] += 1

    def _reject(self, exc: ParseError, peer: Peer, data: bytes) -> None:
        partial = exc.partial
        if isinstance(partial, Request) and partial.method != "ACK":
            self.counters["bad_request"] += 1
            self._warn_junk("400 to %s: %s", peer, exc.reason)
            with contextlib.suppress(ParseError):  # e.g. an unparseable Via: nowhere to answer
                self._send(make_response(partial, exc.status, exc.reason), peer)
            return
        self.counters["dropped"] += 1
        self._warn_junk("dropped from %s (%s): %r", peer, exc.reason, data[:80])

    def _warn_junk(self, text: str, *args: object) -> None:
        left_out = self._junk_log.take(self.now())
        if left_out is None:
            return
        if left_out:
            text += f" ({left_out} similar lines left out)"
        log.warning(text, *args)

    def _dispatch(self, events: list[LayerEvent]) -> None:
        for event in events:
            if isinstance(event, NewInvite):
                self._on_new_invite(event.request, event.peer)
            elif isinstance(event, NewRequest):
                if self.user is not None:
                    self.user.on_request(self, event.transaction, event.request, event.peer)
                elif event.transaction is not None:
                    self.respond(event.transaction, make_response(event.request, 501))
            elif isinstance(event, StrayResponse):
                if self.user is not None:
                    self.user.on_stray_response(self, event.response, event.peer)
            else:
                self._apply([event])

    def _on_new_invite(self, invite: Request, peer: Peer) -> None:
        if self.user is None:
            refusal: Response | None = make_response(invite, 501, to_tag=stateless_tag(invite))
        else:
            refusal = self.user.screen_invite(invite, peer)
        if refusal is not None:
            self.counters["stateless_responses"] += 1
            self._send(refusal, peer)
            return
        tx, effects = self.layer.open_invite(invite, peer, self.now())
        self._apply(effects)
        assert self.user is not None  # without one, every INVITE was refused above
        self.user.on_request(self, tx, invite, peer)

    def _on_transport_error(self, peer: Peer) -> None:
        now = self.now()
        for tx in list(self._callbacks):
            if tx.peer == peer and not tx.terminated:
                self._apply(self.layer.transport_error(tx, now))
        self._rearm()

    # -- effects and timers ---------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                if effect.retransmission:
                    self.counters["retransmitted"] += 1
                self._send(effect.message, effect.peer)
            elif isinstance(effect, Deliver):
                self._deliver(effect)
            elif isinstance(effect, TimedOut | TransportFailed):
                status = 408 if isinstance(effect, TimedOut) else 503
                callback = self._callbacks.get(effect.transaction)
                if callback is not None:
                    self._call(callback, make_response(effect.transaction.request, status))
                else:
                    log.info("server transaction %s: %s", effect.transaction.key, status)
            elif isinstance(effect, Terminated):
                self._callbacks.pop(effect.transaction, None)

    def _deliver(self, effect: Deliver) -> None:
        message = effect.message
        if isinstance(message, Response):
            callback = self._callbacks.get(effect.transaction)
            if callback is not None:
                self._call(callback, message)
        elif self.user is not None:
            self.user.on_request(self, None, message, effect.transaction.peer)

    def _call(self, callback: ResponseCallback, response: Response) -> None:
        try:
            callback(response)
        except Exception:
            log.exception("response callback failed")

    def _send(self, message: Message, peer: Peer) -> None:
        self.counters["out"] += 1
        if log.isEnabledFor(logging.INFO):
            log.info("out %s %s %s", peer, message.get("Call-ID"), message.first_line)
        data = bytes(message)
        if peer.transport == "TLS":
            if self._tls is not None:
                self._tls.send(data, peer)
            else:
                self._fail_later(peer, "no TLS listener")
            return
        if peer.transport != "UDP":
            self._tcp.send(data, peer)
            return
        try:
            self._udp.send(data, peer)
        except (ValueError, OSError) as exc:
            # The transport refuses a host name (nothing is resolved on the way out); an
            # unroutable socket raises too.
            # Like a failed TCP connect, it fails that peer's transactions (§8.1.3.1: the
            # TU sees 503), later, so the caller holds its transaction first.
            self._fail_later(peer, f"udp send failed: {exc}")

    def _fail_later(self, peer: Peer, reason: str) -> None:
        log.warning("cannot send to %s: %s", peer, reason)
        assert self._loop is not None
        self._loop.call_soon(self._on_transport_error, peer)

    def _on_timer(self) -> None:
        self._timer = None
        self._armed_at = None
        now = self.now()
        try:
            self._apply(self.layer.on_timer(now))
            self._run_retransmitters(now)
        except Exception:
            log.exception("timer processing failed")
        self._rearm()

    def _schedule_retransmitter(self, key: object, retransmitter: SuccessRetransmitter) -> None:
        deadline = retransmitter.deadline()
        if deadline is not None:
            heapq.heappush(self._retransmit_heap, (deadline, next(self._sequence), key))

    def _live_retransmit_entry(self) -> tuple[float, object] | None:
        """The earliest heap entry that still matches a waiting retransmitter."""
        heap = self._retransmit_heap
        while heap:
            deadline, _, key = heap[0]
            entry = self._retransmitters.get(key)
            if entry is not None and entry[0].deadline() == deadline:
                return deadline, key
            heapq.heappop(heap)
        return None

    def _run_retransmitters(self, now: float) -> None:
        while (live := self._live_retransmit_entry()) is not None and live[0] <= now:
            heapq.heappop(self._retransmit_heap)
            key = live[1]
            retransmitter, on_give_up = self._retransmitters[key]
            resend, give_up = retransmitter.on_timer(now)
            if resend:
                self.counters["retransmitted"] += 1
                self._send(retransmitter.response, retransmitter.peer)
            if give_up:
                del self._retransmitters[key]
                on_give_up()
            else:
                self._schedule_retransmitter(key, retransmitter)

    def _next_deadline(self) -> float | None:
        live = self._live_retransmit_entry()
        transactions = self.layer.next_deadline()
        if live is None:
            return transactions
        return live[0] if transactions is None else min(live[0], transactions)

    def _rearm(self) -> None:
        if self._loop is None:
            return
        deadline = self._next_deadline()
        if deadline == self._armed_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_at = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)
