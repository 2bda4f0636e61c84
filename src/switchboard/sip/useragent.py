"""A user agent core on the endpoint: incoming and outgoing INVITE sessions, BYE, CANCEL,
OPTIONS (RFC 3261 §8, §9, §12–§15).

This is the layer the PBX builds its legs on. It is edge code (it resolves asyncio futures)
but all protocol decisions come from the pure core: dialogs, builders and transactions.

Rules:
- CANCEL is sent only after a provisional response (§9.1); asked earlier, it waits.
- The UAC ACKs every 2xx, including retransmissions after the INVITE transaction ended
  (§13.2.2.4); the UAS retransmits its 2xx until the ACK (§13.3.1.4) and sends BYE if
  none comes.
- A CANCEL for an INVITE still ringing gets 200, and the INVITE 487 (§9.2); a CANCEL that
  matches nothing gets 481.
- Requests inside an unknown dialog get 481; out-of-order CSeq gets 500 (§12.2.2).
- An INVITE is taken into a transaction only inside one of our dialogs, or when
  ``admit_invite`` says so (by default: when ``on_invite`` is set). Any other INVITE is
  refused statelessly (§8.2.7) with 480 (481 inside an unknown dialog, 416 for a non-SIP
  URI): one answer per INVITE received, so a stranger's INVITE is never reflected ×12.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from switchboard.sip.builders import make_cancel, make_response, stateless_tag
from switchboard.sip.dialog import Dialog, DialogId
from switchboard.sip.digest import answer_challenge, parse_auth_params, pick_challenge
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.grammar import quote
from switchboard.sip.headers import Header
from switchboard.sip.message import Request, Response, headers
from switchboard.sip.transaction.base import Peer
from switchboard.sip.transaction.layer import ServerTransaction
from switchboard.sip.transaction.server_invite import ServerInviteTransaction
from switchboard.sip.uri import SipUri, Uri

log = logging.getLogger("switchboard.sip.ua")
RequestHandler = Callable[[SipEndpoint, ServerTransaction, Request, Peer], None]
InvitePredicate = Callable[[Request, Peer], bool]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


class CallState(enum.Enum):
    CALLING = "calling"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class _Session:
    def __init__(self, ua: UserAgent, call_id: str) -> None:
        self.ua = ua
        self.call_id = call_id
        self.state = CallState.CALLING
        self.dialog: Dialog | None = None
        self.answered: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def _end(self, reason: str) -> None:
        self.state = CallState.ENDED
        if self.dialog is not None:
            self.ua.dialogs.pop(self.dialog.id, None)
            self.ua.endpoint.ack_received(self.dialog.id)  # stop any 2xx retransmission
        if not self.ended.done():
            self.ended.set_result(reason)

    def bye(self) -> None:
        if self.dialog is None or self.state is not CallState.ANSWERED:
            return
        bye = self.dialog.create_request("BYE", self.ua.endpoint.via(self.ua.transport))
        peer = self.dialog.next_hop(self.ua.default_peer(self))
        self.ua.endpoint.send_request(bye, peer, lambda r: None)
        self._end("send_bye")

    def on_bye(self, tx: ServerTransaction, request: Request) -> None:
        self.ua.endpoint.respond(tx, make_response(request, 200))
        self._end("recv_bye")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


class OutgoingCall(_Session):
    def __init__(
        self, ua: UserAgent, invite: Request, peer: Peer, credentials: Credentials | None = None
    ) -> None:
        super().__init__(ua, invite.call_id)
        self.invite = invite
        self.peer = peer
        self.credentials = credentials
        self.final: Response | None = None
        self.provisional_seen = False
        self.cancel_requested = False
        self.auth_attempts = 0
        # Called with each 18x (early media arrives in a 183 with SDP, RFC 3960).
        self.on_provisional: Callable[[Response], None] | None = None

    def on_response(self, response: Response) -> None:
        if response.status in (401, 407) and self._retry_with_credentials(response):
            return
        if response.status < 200:
            if response.status > 100:
                self.state = CallState.RINGING
                if self.on_provisional is not None:
                    self.on_provisional(response)
            self.provisional_seen = True
            if self.cancel_requested:
                self._send_cancel()
            return
        if response.status < 300:
            self._on_success(response)
            return
        self.final = response
        if not self.answered.done():
            self.answered.set_result(response)
        self._end(f"recv_refuse,{response.status}")

    def _on_success(self, response: Response) -> None:
        if self.dialog is None:
            self.dialog = Dialog.from_uac(self.invite, response)
            self.ua.dialogs[self.dialog.id] = self
        self.dialog.confirm(response)
        self.send_ack()
        if self.final is None:
            self.final = response
            self.state = CallState.ANSWERED
            if not self.answered.done():
                self.answered.set_result(response)
            if self.cancel_requested:
                self.bye()  # the 2xx crossed our CANCEL: end the call (§9.1)

    def _retry_with_credentials(self, challenge: Response) -> bool:
        """Answer a 401/407 once per call with a new INVITE (§22.2, RFC 8760).

        A second challenge after our answer means the password is wrong: it is then passed up
        as the final response. A ``stale=true`` challenge earns one more try.
        """
        if self.credentials is None or self.cancel_requested:
            return False
        field = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
        chosen = pick_challenge(challenge.get_all(field))
        if chosen is None:
            return False
        stale = parse_auth_params(chosen)[1].get("stale", "").lower() == "true"
        if self.auth_attempts >= (2 if stale else 1):
            return False
        self.auth_attempts += 1
        answer_field = "Authorization" if challenge.status == 401 else "Proxy-Authorization"
        value = answer_challenge(
            chosen,
            method="INVITE",
            uri=str(self.invite.uri),
            username=self.credentials.username,
            password=self.credentials.password,
            cnonce=self.ua.endpoint.ids.tag(),
        )
        cseq = self.invite.cseq.number + 1
        kept = [
            h
            for h in self.invite.headers
            if h.key not in ("via", "cseq", "authorization", "proxy-authorization")
        ]
        hdrs = (
            Header("Via", self.ua.endpoint.via(self.peer.transport)),
            *kept,
            Header("CSeq", f"{cseq} INVITE"),
            Header(answer_field, value),
        )
        self.invite = replace(self.invite, headers=hdrs)
        self.provisional_seen = False
        self.ua.endpoint.send_request(self.invite, self.peer, self.on_response)
        return True

    def send_ack(self) -> None:
        assert self.dialog is not None
        ack = self.dialog.create_request("ACK", self.ua.endpoint.via(self.ua.transport))
        self.ua.endpoint.send_stateless(ack, self.dialog.next_hop(self.peer))

    def cancel(self) -> None:
        if self.state is CallState.ENDED or self.final is not None or self.cancel_requested:
            return
        self.cancel_requested = True
        if self.provisional_seen:
            self._send_cancel()

    def _send_cancel(self) -> None:
        self.ua.endpoint.send_request(make_cancel(self.invite), self.peer, lambda r: None)


class IncomingCall(_Session):
    def __init__(self, ua: UserAgent, tx: ServerInviteTransaction, peer: Peer) -> None:
        super().__init__(ua, tx.request.call_id)
        self.tx = tx
        self.request = tx.request
        self.peer = peer
        self.to_tag = ua.endpoint.ids.tag()
        self.dialog = Dialog.from_uas(self.request, self.to_tag)
        ua.dialogs[self.dialog.id] = self
        self.acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _contact(self) -> tuple[Header, ...]:
        return headers(("Contact", self.ua.endpoint.contact(transport=self.ua.transport)))

    def ring(self, status: int = 180, body: bytes = b"") -> None:
        if self.state is CallState.CALLING:
            self.state = CallState.RINGING
        extra = self._contact() + _content_type(body)
        response = make_response(self.request, status, to_tag=self.to_tag, extra=extra, body=body)
        self.ua.endpoint.respond(self.tx, response)

    def answer(self, body: bytes = b"") -> None:
        if self.state is CallState.ENDED or self.state is CallState.ANSWERED:
            return
        self.state = CallState.ANSWERED
        extra = self._contact() + headers(("Allow", ALLOW)) + _content_type(body)
        response = make_response(self.request, 200, to_tag=self.to_tag, extra=extra, body=body)
        self.ua.endpoint.respond(self.tx, response)
        assert self.dialog is not None
        self.ua.endpoint.retransmit_success(self.dialog.id, response, self.peer, self._no_ack)
        self.answered.set_result(response)

    def reject(self, status: int, reason: str | None = None) -> None:
        if self.state in (CallState.ENDED, CallState.ANSWERED):
            return
        response = make_response(self.request, status, reason, to_tag=self.to_tag)
        self.ua.endpoint.respond(self.tx, response)
        self._end(f"send_refuse,{status}")

    def on_ack(self) -> None:
        assert self.dialog is not None
        self.ua.endpoint.ack_received(self.dialog.id)
        if not self.acked.done():
            self.acked.set_result(None)

    def on_cancel(self) -> None:
        if self.state in (CallState.ENDED, CallState.ANSWERED):
            return
        response = make_response(self.request, 487, to_tag=self.to_tag)
        self.ua.endpoint.respond(self.tx, response)
        self._end("recv_cancel")

    def _no_ack(self) -> None:
        log.warning("no ACK for 2xx on %s: sending BYE (§13.3.1.4)", self.call_id)
        self.bye()


def _content_type(body: bytes) -> tuple[Header, ...]:
    return headers(("Content-Type", "application/sdp")) if body else ()


class UserAgent:
    """Transaction user that routes requests to sessions; ``on_invite`` decides new calls."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        on_invite: Callable[[IncomingCall], None] | None = None,
        transport: str = "UDP",
        server_name: str = "Switchboard",
    ) -> None:
        self.endpoint = endpoint
        self.on_invite = on_invite
        self.transport = transport
        self.server_name = server_name
        self.dialogs: dict[DialogId, _Session] = {}
        # Out-of-dialog requests other than INVITE, OPTIONS and CANCEL (e.g. REGISTER).
        self.request_handlers: dict[str, RequestHandler] = {}
        # Which out-of-dialog INVITEs are taken (a transaction, then ``on_invite``); the
        # others get one stateless 480. A caller may replace it, e.g. to admit only its
        # known phones and trunks.
        self.admit_invite: InvitePredicate = lambda _request, _peer: self.on_invite is not None
        endpoint.user = self

    @property
    def allow(self) -> str:
        return ", ".join([*ALLOW.split(", "), *sorted(self.request_handlers)])

    def default_peer(self, session: _Session) -> Peer:
        if isinstance(session, OutgoingCall | IncomingCall):
            return session.peer
        raise TypeError(session)

    # -- UAC ------------------------------------------------------------------------------

    def call(
        self,
        target: Uri,
        peer: Peer,
        *,
        from_uri: str,
        body: bytes = b"",
        display_name: str | None = None,
        extra: tuple[Header, ...] = (),
        credentials: Credentials | None = None,
        call_id: str | None = None,
        from_tag: str | None = None,
    ) -> OutgoingCall:
        """INVITE ``target`` via ``peer``. Several calls may share ``call_id`` and
        ``from_tag``: that is one leg forked to several terminals (§16.7 seen from a UAC)."""
        ids = self.endpoint.ids
        name = f"{quote(display_name)} " if display_name else ""
        hdrs = headers(
            ("Via", self.endpoint.via(peer.transport)),
            ("Max-Forwards", "70"),
            ("From", f"{name}<{from_uri}>;tag={from_tag or ids.tag()}"),
            ("To", f"<{target}>"),
            ("Call-ID", call_id or ids.call_id()),
            ("CSeq", "1 INVITE"),
            ("Contact", self.endpoint.contact(transport=peer.transport)),
            ("Allow", ALLOW),
        )
        invite = Request("INVITE", target, hdrs + extra + _content_type(body), body)
        call = OutgoingCall(self, invite, peer, credentials)
        self.endpoint.send_request(invite, peer, call.on_response)
        return call

    # -- TransactionUser ------------------------------------------------------------------

    def on_request(
        self, endpoint: SipEndpoint, tx: ServerTransaction | None, request: Request, peer: Peer
    ) -> None:
        method = request.method
        if tx is None:  # ACK for a 2xx
            session = self._session_for(request)
            if isinstance(session, IncomingCall):
                session.on_ack()
            return
        if method == "OPTIONS":
            self._reply(tx, request, 200, extra=self._capabilities())
        elif method == "CANCEL":
            self._on_cancel(tx, request)
        elif not isinstance(request.uri, SipUri):
            self._reply(tx, request, 416)
        elif request.to.tag is not None:
            self._in_dialog(tx, request)
        elif method == "INVITE" and isinstance(tx, ServerInviteTransaction):
            call = IncomingCall(self, tx, peer)
            if self.on_invite is None:
                call.reject(480)
            else:
                self.on_invite(call)
        elif method in self.request_handlers:
            self.request_handlers[method](endpoint, tx, request, peer)
        elif method == "BYE":
            self._reply(tx, request, 481)
        else:
            self._reply(tx, request, 405, extra=headers(("Allow", self.allow)))

    def screen_invite(self, request: Request, peer: Peer) -> Response | None:
        """None takes the INVITE; otherwise the stateless refusal to send (§8.2.7)."""
        if not isinstance(request.uri, SipUri):
            status = 416
        elif request.to.tag is not None:
            session = self._session_for(request)
            if session is not None and session.dialog is not None:
                return None  # a re-INVITE in one of our dialogs
            status = 481
        elif self.admit_invite(request, peer):
            return None
        else:
            status = 480
        return make_response(request, status, to_tag=stateless_tag(request))

    def on_stray_response(self, endpoint: SipEndpoint, response: Response, peer: Peer) -> None:
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            session = self.dialogs.get(
                DialogId(response.call_id, response.from_.tag or "", response.to.tag or "")
            )
            if isinstance(session, OutgoingCall):
                session.send_ack()  # the 2xx was retransmitted: our ACK was lost

    def _capabilities(self) -> tuple[Header, ...]:
        # §11.2: Allow, Accept, Accept-Encoding, Accept-Language and Supported; we support
        # no option tag, which an empty Supported says.
        return headers(
            ("Allow", self.allow),
            ("Accept", "application/sdp"),
            ("Accept-Encoding", "identity"),
            ("Accept-Language", "en"),
            ("Supported", ""),
            ("Server", self.server_name),
        )

    def _reply(
        self,
        tx: ServerTransaction,
        request: Request,
        status: int,
        reason: str | None = None,
        extra: tuple[Header, ...] = (),
    ) -> None:
        """Answer outside any session; a UAS adds a To tag to every non-100 (§8.2.6.2)."""
        tag = request.to.tag or self.endpoint.ids.tag()
        self.endpoint.respond(tx, make_response(request, status, reason, to_tag=tag, extra=extra))

    def _session_for(self, request: Request) -> _Session | None:
        return self.dialogs.get(
            DialogId(request.call_id, request.to.tag or "", request.from_.tag or "")
        )

    def _in_dialog(self, tx: ServerTransaction, request: Request) -> None:
        session = self._session_for(request)
        if session is None or session.dialog is None:
            self._reply(tx, request, 481)
            return
        if not session.dialog.accept_remote_request(request):
            self._reply(tx, request, 500, "CSeq out of order")
            return
        if request.method == "BYE":
            session.on_bye(tx, request)
        elif request.method == "INVITE":
            # Re-negotiating media mid-call is not supported yet: keep the current session.
            self.endpoint.respond(tx, make_response(request, 488))
        else:
            self.endpoint.respond(tx, make_response(request, 200))

    def _on_cancel(self, tx: ServerTransaction, request: Request) -> None:
        invite_tx = self.endpoint.layer.find_invite(request)
        session = None
        if invite_tx is not None:
            for candidate in self.dialogs.values():
                if isinstance(candidate, IncomingCall) and candidate.tx is invite_tx:
                    session = candidate
                    break
        if session is None:
            self._reply(tx, request, 481)
            return
        self.endpoint.respond(tx, make_response(request, 200, to_tag=session.to_tag))
        session.on_cancel()
