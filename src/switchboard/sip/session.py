"""What an INVITE session does once its dialog exists, whichever side placed the call: BYE,
offers both ways inside the dialog, and the session timer (RFC 3261 §12–§15, RFC 3311,
RFC 4028). ``OutgoingCall`` and ``IncomingCall`` (``useragent``) build on it.

Rules:
- A re-INVITE or UPDATE from the peer is screened first (``in_dialog``): 491 while our offer
  or re-INVITE is outstanding, 500 with a random Retry-After of 0–10 s while theirs is
  (§14.2), 422 with Min-SE for a Session-Expires below ours (RFC 4028 §9). The re-INVITE's
  100 Trying is the transaction's, sent at once.
- Refreshes are answered here and never reach the hook: an UPDATE without a body, an offer
  repeating the peer's last o= version (RFC 3264 §8), and a re-INVITE without an offer that
  carries Session-Expires (or arrives with no hook set), whose 200 offers our last
  description again. Anything else is a change of media for ``on_remote_offer``; without
  a hook it gets 488, and the session stands.
- The hook answers through ``RemoteOffer.accept``/``reject``, at once or later. A 200 to a
  re-INVITE is retransmitted until its ACK (§13.3.1.4), and without one the session ends
  with BYE; a session that ends first answers the pending request 487 (§15.1.2).
- ``offer`` sends a re-INVITE or UPDATE with the dialog's next CSeq and resolves with the
  final response (491 included: the caller decides). Refused locally, without sending,
  when the dialog is not established (491) or gone (481), or an exchange is outstanding
  (491, §14.1). 2xx to a re-INVITE are ACKed, retransmissions too. A failure leaves the
  session as it was, except 408 and 481, after which the dialog ends with BYE (§12.2.1.2).
- Every re-INVITE and UPDATE we send says ``Supported: timer`` and, while a timer runs,
  Session-Expires with the current refresher (RFC 4028 §7.4); its 2xx restarts or stops
  the timer (§7.2). The timer is one ``call_at`` handle, owned by the session and cancelled
  when it ends. When it expires the session ends with BYE, reason ``session_timer``.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard.sip.builders import make_response
from switchboard.sip.dialog import Dialog
from switchboard.sip.headers import Header
from switchboard.sip.in_dialog import (
    ENDS_DIALOG,
    Negotiation,
    OfferAnswerState,
    ProtocolError,
    Step,
    answer_unchanged,
)
from switchboard.sip.message import REASONS, Request, Response, headers
from switchboard.sip.session_timer import (
    TIMER,
    Agreed,
    SessionTimer,
    TooBrief,
    negotiate_as_uas,
    parse_min_se,
    parse_session_expires,
    request_headers,
    terms_from_2xx,
)
from switchboard.sip.timer_driver import TimerDriver
from switchboard.sip.transaction.base import Peer
from switchboard.sip.transaction.layer import ServerTransaction

if TYPE_CHECKING:
    from switchboard.sip.endpoint import SipEndpoint
    from switchboard.sip.useragent import UserAgent

log = logging.getLogger("switchboard.sip.ua")
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"


class CallState(enum.Enum):
    CALLING = "calling"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


def content_type(body: bytes) -> tuple[Header, ...]:
    return headers(("Content-Type", "application/sdp")) if body else ()


def _refreshes(request: Request) -> bool:
    """A request that says it refreshes the session timer (RFC 4028 §7.4)."""
    return request.get("Session-Expires") is not None


def allows(message: Request | Response, method: str) -> bool:
    return any(value.strip().upper() == method for value in message.get_all("Allow"))


class RemoteOffer:
    """A re-INVITE or UPDATE from the peer that changes the media, for the hook to answer.

    ``body`` is the SDP offer, empty for a re-INVITE without one: ``accept`` then carries
    our offer, and ``acked`` resolves with the ACK's body, the peer's answer (§14.2). For
    everything else ``acked`` resolves with ``b""`` once answered.
    """

    def __init__(
        self, session: Session, tx: ServerTransaction, request: Request, terms: Agreed | None
    ) -> None:
        self.session = session
        self.request = request
        self.method = request.method
        self.body = request.body
        self.acked: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.answered = False
        self._tx = tx
        self._terms = terms

    def accept(self, body: bytes) -> None:
        """Answer 200 with ``body``: the SDP answer (our offer if none came)."""
        if self.answered:
            return
        if not body:
            raise ValueError("accept() carries the SDP answer, or our offer (RFC 3264 §5, §6)")
        self.answered = True
        self.session._accept_remote(self, self._tx, body, self._terms)

    def reject(self, status: int = 488, reason: str | None = None) -> None:
        """Refuse the change (488, 491, …): the session goes on as it was (§14.2)."""
        if self.answered:
            return
        self.answered = True
        self.session._reject_remote(self, self._tx, status, reason)

    def _resolve(self, answer: bytes) -> None:
        if not self.acked.done():
            self.acked.set_result(answer)


@dataclass(eq=False, slots=True)
class _Sent:
    """One re-INVITE or UPDATE of ours, until its final response."""

    request: Request
    future: asyncio.Future[Response] | None  # None for a refresh of our own
    done: bool = False


@dataclass(slots=True)
class _AwaitedAck:
    """Our 2xx to the peer's re-INVITE, retransmitted until this ACK (§13.3.1.4)."""

    cseq: int
    offer: RemoteOffer | None
    offered: bool  # our 2xx carried an offer: the ACK carries the answer


class Session:
    """An INVITE session with its dialog; subclasses set ``peer`` and the dialog."""

    peer: Peer

    def __init__(self, ua: UserAgent, call_id: str) -> None:
        self.ua = ua
        self.call_id = call_id
        self.state = CallState.CALLING
        self.dialog: Dialog | None = None
        loop = asyncio.get_running_loop()
        self.answered: asyncio.Future[Response] = loop.create_future()
        self.ended: asyncio.Future[str] = loop.create_future()
        self.negotiation = OfferAnswerState()
        # Called with each re-INVITE/UPDATE that changes the media (see RemoteOffer).
        self.on_remote_offer: Callable[[RemoteOffer], None] | None = None
        self.timer = TimerDriver(ua.endpoint.now, self._refresh, self._expire)
        self.peer_allows_update = False
        self._remote_offer: RemoteOffer | None = None
        self._awaiting_ack: _AwaitedAck | None = None
        # our re-INVITEs and UPDATEs whose transactions still hold a relay to us
        self._sent_relays: weakref.WeakKeyDictionary[ResponseRelay, _Sent] = (
            weakref.WeakKeyDictionary()
        )

    # -- ending ---------------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        self.state = CallState.ENDED
        self.timer.stop()
        if self.dialog is not None:
            self.ua.dialogs.pop(self.dialog.id, None)
            self.ua.endpoint.ack_received(self.dialog.id)  # stop any 2xx retransmission
        awaited, self._awaiting_ack = self._awaiting_ack, None
        if awaited is not None:
            self.ua.endpoint.ack_received(self._ack_key(awaited))
            if awaited.offer is not None:
                awaited.offer._resolve(b"")
        if self._remote_offer is not None:
            self._remote_offer.reject(487)  # §15.1.2: pending requests get 487
        if not self.ended.done():
            self.ended.set_result(reason)
        self._retire_sent()

    def _retire_sent(self) -> None:
        """Our answered re-INVITEs and UPDATEs let the ended session go: a retransmitted
        2xx of a re-INVITE is ACKed from the dialog alone, as ``_on_sent_response`` does
        once ``done``. One still awaiting its final response keeps the session."""
        for relay, sent in list(self._sent_relays.items()):
            if not sent.done:
                continue
            invite = sent.request.method == "INVITE"
            if invite and self.dialog is not None:
                relay.retire(ReAck(self.ua.endpoint, self.dialog, self.peer))
            else:
                relay.retire(ignore_response)

    def bye(self, reason: str = "send_bye") -> None:
        if self.dialog is None or self.state is not CallState.ANSWERED:
            return
        peer = self.dialog.next_hop(self.ua.default_peer(self))
        bye = self.dialog.create_request("BYE", self.ua.endpoint.via(peer.transport))
        self.ua.endpoint.send_request(bye, peer, lambda r: None)
        self._end(reason)

    def on_bye(self, tx: ServerTransaction, request: Request) -> None:
        self.ua.endpoint.respond(tx, make_response(request, 200))
        self._end("recv_bye")

    def _no_ack(self) -> None:
        log.warning("no ACK for 2xx on %s: sending BYE (§13.3.1.4)", self.call_id)
        self.bye("no_ack")

    # -- ACK ------------------------------------------------------------------------------

    def send_ack(self, response: Response | None = None) -> None:
        """ACK a 2xx: the one to ``response``'s CSeq, else to our last INVITE (§13.2.2.4)."""
        assert self.dialog is not None
        send_ack(self.ua.endpoint, self.dialog, self.peer, response)

    def on_ack(self, ack: Request | None = None) -> None:
        awaited = self._awaiting_ack
        if ack is None or awaited is None or ack.cseq.number != awaited.cseq:
            self._on_initial_ack(ack)
            return
        self._awaiting_ack = None
        self.ua.endpoint.ack_received(self._ack_key(awaited))
        if awaited.offered:
            self._step(Step.RECEIVE_ANSWER if ack.body else Step.FAIL, ack.body)
        if awaited.offer is not None:
            awaited.offer._resolve(ack.body)

    def _on_initial_ack(self, ack: Request | None) -> None:
        """The ACK to the 2xx of the INVITE that made the dialog: only a UAS gets one."""

    def _ack_key(self, awaited: _AwaitedAck) -> tuple[object, int]:
        """What the endpoint files the 2xx to a re-INVITE under (the first 2xx's is the
        dialog id)."""
        assert self.dialog is not None
        return self.dialog.id, awaited.cseq

    # -- offer/answer bookkeeping ---------------------------------------------------------

    def _step(self, step: Step, body: bytes = b"") -> None:
        old = self.negotiation.state
        try:
            new = self.negotiation.step(step, body)
        except ProtocolError as exc:
            log.warning("offer/answer on %s: %s", self.call_id, exc)
            return
        if new is not old:
            log.debug("offer/answer %s: %s -> %s", self.call_id, old.value, new.value)

    def _success(
        self, request: Request, body: bytes, terms: Agreed | None, to_tag: str | None = None
    ) -> Response:
        """A 200 to an INVITE, re-INVITE or UPDATE: Contact, Allow, Supported (§13.3.1.4,
        RFC 3311 §5.2) and the session timer's terms (RFC 4028 §9)."""
        extra = (
            headers(
                ("Contact", self.ua.endpoint.contact(transport=self.peer.transport)),
                ("Allow", ALLOW),
                ("Supported", TIMER),
            )
            + (terms.headers() if terms is not None else ())
            + content_type(body)
        )
        return make_response(request, 200, to_tag=to_tag, extra=extra, body=body)

    # -- offers from the peer -------------------------------------------------------------

    def on_offer_request(self, tx: ServerTransaction, request: Request) -> None:
        """A re-INVITE or UPDATE inside the dialog (see the module rules)."""
        refusal = self.negotiation.screen(request.method, bool(request.body))
        if refusal is not None:
            extra = () if refusal == 491 else headers(("Retry-After", self._retry_after()))
            self.ua.endpoint.respond(tx, make_response(request, refusal, extra=extra))
            return
        terms = self._terms_for(request)
        if isinstance(terms, TooBrief):
            self.ua.endpoint.respond(tx, make_response(request, 422, extra=terms.headers()))
            return
        assert self.dialog is not None
        contacts = request.contacts
        if contacts and contacts[0].uri is not None:
            self.dialog.remote_target = contacts[0].uri  # a target refresh (§12.2.2)
        if request.method == "INVITE":
            self.negotiation.remote_invite = True
        if self._answer_refresh(tx, request, terms):
            return
        if self.on_remote_offer is None:
            self._final(tx, request, make_response(request, 488), None)
            return
        offer = RemoteOffer(self, tx, request, terms)
        self._remote_offer = offer
        if request.body:
            self._step(Step.RECEIVE_OFFER, request.body)
        self.on_remote_offer(offer)

    def _terms_for(self, request: Request) -> Agreed | TooBrief | None:
        if self.state is not CallState.ANSWERED:
            return None
        running = self.timer.timer.interval if self.timer.timer is not None else None
        return negotiate_as_uas(request, min_se=self.ua.min_se, default=running)

    def _retry_after(self) -> str:
        return str(int(self.ua.endpoint.ids.tag(), 16) % 11)  # §14.2: random, 0 to 10 s

    def _answer_refresh(
        self, tx: ServerTransaction, request: Request, terms: Agreed | None
    ) -> bool:
        """Answer a request that changes nothing ourselves; False: it is for the hook."""
        body, local = request.body, self.negotiation.local_sdp
        if not body and request.method == "UPDATE":
            answer, offered = b"", False
        elif body and local and self.negotiation.unchanged(body):
            self._step(Step.RECEIVE_OFFER, body)
            answer, offered = answer_unchanged(local, body), False
            self._step(Step.SEND_ANSWER, answer)
        elif not body and local and (self.on_remote_offer is None or _refreshes(request)):
            self._step(Step.SEND_OFFER, local)
            answer, offered = local, True
        else:
            return False
        response = self._success(request, answer, terms)
        self._final(tx, request, response, _AwaitedAck(request.cseq.number, None, offered))
        self._restart_as_uas(terms)
        return True

    def _accept_remote(
        self, offer: RemoteOffer, tx: ServerTransaction, body: bytes, terms: Agreed | None
    ) -> None:
        self._remote_offer = None
        self._step(Step.SEND_ANSWER if offer.body else Step.SEND_OFFER, body)
        response = self._success(offer.request, body, terms)
        awaited = _AwaitedAck(offer.request.cseq.number, offer, not offer.body)
        self._final(tx, offer.request, response, awaited)
        self._restart_as_uas(terms)
        if offer.method != "INVITE":
            offer._resolve(b"")

    def _reject_remote(
        self, offer: RemoteOffer, tx: ServerTransaction, status: int, reason: str | None
    ) -> None:
        self._remote_offer = None
        if offer.body:
            self._step(Step.FAIL)
        self._final(tx, offer.request, make_response(offer.request, status, reason), None)
        offer._resolve(b"")

    def _final(
        self,
        tx: ServerTransaction,
        request: Request,
        response: Response,
        awaited: _AwaitedAck | None,
    ) -> None:
        self.ua.endpoint.respond(tx, response)
        if request.method != "INVITE":
            return
        self.negotiation.remote_invite = False
        if response.status < 300 and awaited is not None:
            self._awaiting_ack = awaited
            key = self._ack_key(awaited)
            self.ua.endpoint.retransmit_success(key, response, self.peer, self._no_ack)

    # -- offers of ours -------------------------------------------------------------------

    def offer(self, body: bytes, method: str = "INVITE") -> asyncio.Future[Response]:
        """Send ``body`` (an SDP offer) in a re-INVITE or UPDATE; the future resolves with the
        final response. An UPDATE may carry no offer; a re-INVITE must (§14.1: an offerless
        one would need an answer in the ACK, which we cannot give)."""
        if method not in ("INVITE", "UPDATE") or (method == "INVITE" and not body):
            raise ValueError(f"cannot offer with {method!r} and {len(body)} bytes")
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        refusal = self._cannot_offer(method, body)
        if refusal is not None:
            future.set_result(self._local_response(method, refusal))
        else:
            self._send_in_dialog(method, body, future)
        return future

    def reinvite(self, body: bytes) -> asyncio.Future[Response]:
        return self.offer(body, "INVITE")

    def _cannot_offer(self, method: str, body: bytes) -> int | None:
        if self.state is CallState.ENDED or self.dialog is None:
            return 481
        if self.state is not CallState.ANSWERED:
            return 491
        negotiation = self.negotiation
        busy = negotiation.state is not Negotiation.STABLE
        if method == "INVITE" and (busy or negotiation.local_invite or negotiation.remote_invite):
            return 491
        return 491 if body and busy else None

    def _local_response(self, method: str, status: int) -> Response:
        """The answer we give ourselves for a request we did not send."""
        hdrs = headers(("Call-ID", self.call_id), ("CSeq", f"0 {method}"))
        return Response(status, REASONS[status], hdrs)

    def _send_in_dialog(
        self, method: str, body: bytes, future: asyncio.Future[Response] | None
    ) -> None:
        assert self.dialog is not None
        extra = (
            headers(
                ("Contact", self.ua.endpoint.contact(transport=self.peer.transport)),
                ("Allow", ALLOW),
                ("Supported", TIMER),
            )
            + self._timer_request_headers()
            + content_type(body)
        )
        hop = self.dialog.next_hop(self.peer)
        request = self.dialog.create_request(
            method, self.ua.endpoint.via(hop.transport), extra=extra, body=body
        )
        if body:
            self._step(Step.SEND_OFFER, body)
        if method == "INVITE":
            self.negotiation.local_invite = True
        sent = _Sent(request, future)
        relay = ResponseRelay(functools.partial(self._on_sent_response, sent))
        self._sent_relays[relay] = sent  # until its transaction lets the relay go
        self.ua.endpoint.send_request(request, hop, relay)

    def _on_sent_response(self, sent: _Sent, response: Response) -> None:
        invite = sent.request.method == "INVITE"
        if response.status < 200:
            return
        if sent.done:
            if invite and response.status < 300:
                self.send_ack(response)  # a retransmitted 2xx: our ACK was lost
            return
        sent.done = True
        if invite:
            self.negotiation.local_invite = False
        if response.status < 300:
            self._sent_succeeded(sent, response)
        else:
            self._sent_failed(sent, response)
        if sent.future is not None and not sent.future.done():
            sent.future.set_result(response)

    def _sent_succeeded(self, sent: _Sent, response: Response) -> None:
        assert self.dialog is not None
        self.dialog.confirm(response)  # the 2xx's Contact refreshes the target (§12.2.1.2)
        if sent.request.method == "INVITE":
            self.send_ack(response)
        if sent.request.body:
            self._step(Step.RECEIVE_ANSWER if response.body else Step.FAIL, response.body)
        self._timer_after_2xx(response, sent.request)

    def _sent_failed(self, sent: _Sent, response: Response) -> None:
        if sent.request.body:
            self._step(Step.FAIL)
        if response.status in ENDS_DIALOG:
            method = sent.request.method
            log.info("%d to %s on %s: ending the dialog", response.status, method, self.call_id)
            self.bye(f"dialog_failed,{response.status}")
            return
        if sent.future is None and self.state is CallState.ANSWERED:
            longer = parse_min_se(response.get("Min-SE")) if response.status == 422 else None
            self.timer.retry_later(longer)

    # -- session timer (RFC 4028) ---------------------------------------------------------

    @property
    def session_timer(self) -> SessionTimer | None:
        return self.timer.timer

    def _timer_request_headers(self) -> tuple[Header, ...]:
        timer = self.timer.timer
        if timer is None:
            return ()
        return request_headers(timer.interval, timer.we_refresh, self.ua.min_se)

    def _restart_as_uas(self, terms: Agreed | None) -> None:
        if terms is not None and self.state is CallState.ANSWERED:
            self.timer.start(terms.interval, terms.we_refresh)

    def _timer_after_2xx(self, response: Response, request: Request) -> None:
        """As UAC of the INVITE or of a refresh: the 2xx sets the terms (§7.2)."""
        if self.state is not CallState.ANSWERED:
            return
        asked = parse_session_expires(request.get("Session-Expires"))
        terms = terms_from_2xx(response, asked.interval if asked is not None else None)
        if terms is None:
            self.timer.stop()
        else:
            self.timer.start(*terms)

    def _expire(self) -> None:
        log.info("session timer expired on %s: sending BYE (RFC 4028 §10)", self.call_id)
        self.bye("session_timer")

    def _refresh(self) -> None:
        """UPDATE without a body where the peer allows it (or we have no description to
        offer), else re-INVITE with our last description, unchanged (RFC 4028 §7.4, §10);
        later if an exchange is under way."""
        negotiation = self.negotiation
        busy = negotiation.state is not Negotiation.STABLE or negotiation.remote_invite
        if self.state is not CallState.ANSWERED or busy or negotiation.local_invite:
            self.timer.retry_later()
        elif self.peer_allows_update or not negotiation.local_sdp:
            self._send_in_dialog("UPDATE", b"", None)
        else:
            self._send_in_dialog("INVITE", negotiation.local_sdp, None)


def send_ack(endpoint: SipEndpoint, dialog: Dialog, peer: Peer, response: Response | None) -> None:
    """ACK a 2xx of ``dialog``: the one to ``response``'s CSeq, else to its last INVITE."""
    hop = dialog.next_hop(peer)
    ack = dialog.create_request("ACK", endpoint.via(hop.transport))
    if response is not None and response.cseq.number != ack.cseq.number:
        cseq = Header("CSeq", f"{response.cseq.number} ACK")
        ack = ack.with_headers(cseq if h.key == "cseq" else h for h in ack.headers)
    endpoint.send_stateless(ack, hop)


class ResponseRelay:
    """The callback a transaction of ours holds: passes each response to its session
    until the session ends; then to what the session left behind for the transaction's
    final state. RFC 6026 keeps an INVITE client transaction 32 s after its 2xx; a
    callback bound to the session kept the session's whole graph (its messages, the PBX
    call behind it) alive that long, for the collector to scan."""

    __slots__ = ("__weakref__", "target")

    def __init__(self, target: Callable[[Response], None]) -> None:
        self.target = target

    def __call__(self, response: Response) -> None:
        self.target(response)

    def retire(self, target: Callable[[Response], None]) -> None:
        self.target = target


@dataclass(frozen=True, slots=True)
class ReAck:
    """An ended session's answer to a retransmitted 2xx of its INVITE: ACK it again
    (§13.2.2.4), from the dialog alone; other responses are ignored."""

    endpoint: SipEndpoint
    dialog: Dialog
    peer: Peer

    def __call__(self, response: Response) -> None:
        if 200 <= response.status < 300:
            send_ack(self.endpoint, self.dialog, self.peer, response)


def ignore_response(_response: Response) -> None:
    """What an ended session does with a late response it has nothing left to do with."""
