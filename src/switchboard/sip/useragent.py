"""A user agent core on the endpoint: incoming and outgoing INVITE sessions, BYE, CANCEL,
OPTIONS, re-INVITE and UPDATE, session timers (RFC 3261 §8, §9, §12–§15, RFC 3311,
RFC 4028). The sessions are ``outgoing_call`` and ``incoming_call``; what both do inside
their dialog is ``session``. Everything is importable from here.

This is the layer the PBX builds its legs on. It is edge code (it resolves asyncio futures)
but all protocol decisions come from the pure core: dialogs, builders, transactions,
``in_dialog`` and ``session_timer``.

Rules:
- CANCEL is sent only after a provisional response (§9.1); asked earlier, it waits
  (``outgoing_call``: our INVITE's progress is a table).
- The UAC ACKs every 2xx, including retransmissions after the INVITE transaction ended
  (§13.2.2.4); the UAS retransmits its 2xx until the ACK (§13.3.1.4) and sends BYE if
  none comes. Both hold for re-INVITEs, either way.
- A CANCEL for an INVITE still ringing gets 200, and the INVITE 487 (§9.2); a CANCEL that
  matches nothing gets 481.
- Requests inside an unknown dialog get 481 (BYE and UPDATE outside any dialog too);
  out-of-order CSeq gets 500 (§12.2.2). Inside a dialog, re-INVITE and UPDATE go to the
  session (offers, refreshes, glare), OPTIONS gets our capabilities, anything else 200.
- An INVITE is taken into a transaction only inside one of our dialogs, or when
  ``admit_invite`` says so (by default: when ``on_invite`` is set). Any other INVITE is
  refused statelessly (§8.2.7) with 480 (481 inside an unknown dialog, 416 for a non-SIP
  URI): one answer per INVITE received, so a stranger's INVITE is never reflected ×12.
- A taken INVITE whose Session-Expires is below our Min-SE gets 422 with Min-SE before
  ``on_invite`` sees it (RFC 4028 §9).
- We say ``Supported: timer`` in every INVITE, 2xx and OPTIONS answer, and ``UPDATE`` in
  Allow. Session-Expires goes into our INVITEs only when ``session_expires`` is set; as
  UAS we bring that interval too when the caller asks for none (RFC 4028 §9 "MAY").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from switchboard.sip.builders import make_response, stateless_tag
from switchboard.sip.dialog import DialogId
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.grammar import quote
from switchboard.sip.headers import Header
from switchboard.sip.incoming_call import IncomingCall
from switchboard.sip.message import Request, Response, headers
from switchboard.sip.outgoing_call import Credentials, InviteState, OutgoingCall
from switchboard.sip.session import ALLOW, CallState, RemoteOffer, Session, content_type
from switchboard.sip.session_timer import MIN_SE, TIMER, TooBrief
from switchboard.sip.transaction.base import Peer
from switchboard.sip.transaction.layer import ServerTransaction
from switchboard.sip.transaction.server_invite import ServerInviteTransaction
from switchboard.sip.uri import SipUri, Uri

__all__ = [
    "ALLOW",
    "CallState",
    "Credentials",
    "IncomingCall",
    "InviteState",
    "OutgoingCall",
    "RemoteOffer",
    "Session",
    "UserAgent",
]

log = logging.getLogger("switchboard.sip.ua")
RequestHandler = Callable[[SipEndpoint, ServerTransaction, Request, Peer], None]
InvitePredicate = Callable[[Request, Peer], bool]


class UserAgent:
    """Transaction user that routes requests to sessions; ``on_invite`` decides new calls."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        on_invite: Callable[[IncomingCall], None] | None = None,
        transport: str = "UDP",
        server_name: str = "Switchboard",
        session_expires: int | None = None,
        min_se: int = MIN_SE,
    ) -> None:
        """``session_expires``: the session timer we ask for in our INVITEs and bring to
        callers that ask for none (RFC 4028); None: only when a peer asks. ``min_se``: the
        shortest interval we accept (never below 90 s)."""
        self.endpoint = endpoint
        self.on_invite = on_invite
        self.transport = transport
        self.server_name = server_name
        self.session_expires = session_expires
        self.min_se = max(min_se, MIN_SE)
        self.dialogs: dict[DialogId, Session] = {}
        # Out-of-dialog requests other than INVITE, OPTIONS and CANCEL (e.g. REGISTER).
        self.request_handlers: dict[str, RequestHandler] = {}
        # Which out-of-dialog INVITEs are taken (a transaction, then ``on_invite``); the
        # others get one stateless 480. A caller may replace it, e.g. to admit only its
        # known phones and trunks.
        self.admit_invite: InvitePredicate = lambda _request, _peer: self.on_invite is not None
        # What a refused out-of-dialog INVITE gets: 480 when nobody takes calls here; a PBX
        # that knows its phones and trunks says 403 to everyone else (§21.4.4).
        self.refusal_status = 480
        endpoint.user = self

    @property
    def allow(self) -> str:
        return ", ".join([*ALLOW.split(", "), *sorted(self.request_handlers)])

    def default_peer(self, session: Session) -> Peer:
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
        session_expires: int | None = None,
    ) -> OutgoingCall:
        """INVITE ``target`` via ``peer``. Several calls may share ``call_id`` and
        ``from_tag``: that is one leg forked to several terminals (§16.7 seen from a UAC).
        ``session_expires`` asks for a session timer (default: the agent's)."""
        ids = self.endpoint.ids
        interval = session_expires or self.session_expires
        timer = (
            headers(
                ("Session-Expires", str(max(interval, self.min_se))), ("Min-SE", str(self.min_se))
            )
            if interval
            else ()
        )
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
            ("Supported", TIMER),
        )
        invite = Request("INVITE", target, hdrs + timer + extra + content_type(body), body)
        call = OutgoingCall(self, invite, peer, credentials)
        self.endpoint.send_request(invite, peer, call.responses)
        return call

    def options(self, target: Uri, peer: Peer, *, from_uri: str) -> asyncio.Future[Response]:
        """An out-of-dialog OPTIONS (§11): its final response, as a keep-alive ping of a
        trunk; Timer F's 408 when nothing answers (the caller may stop waiting sooner)."""
        ids = self.endpoint.ids
        request = Request(
            "OPTIONS",
            target,
            headers(
                ("Via", self.endpoint.via(peer.transport)),
                ("Max-Forwards", "70"),
                ("From", f"<{from_uri}>;tag={ids.tag()}"),
                ("To", f"<{target}>"),
                ("Call-ID", ids.call_id()),
                ("CSeq", "1 OPTIONS"),
                ("Accept", "application/sdp"),
            ),
        )
        answered: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def on_response(response: Response) -> None:
            if response.status >= 200 and not answered.done():
                answered.set_result(response)

        self.endpoint.send_request(request, peer, on_response)
        return answered

    # -- TransactionUser ------------------------------------------------------------------

    def on_request(
        self, endpoint: SipEndpoint, tx: ServerTransaction | None, request: Request, peer: Peer
    ) -> None:
        method = request.method
        if tx is None:  # ACK for a 2xx
            session = self._session_for(request)
            if session is not None:
                session.on_ack(request)
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
            elif isinstance(call.session_terms, TooBrief):
                call.reject(422, extra=call.session_terms.headers())
            else:
                self.on_invite(call)
        elif method in self.request_handlers:
            self.request_handlers[method](endpoint, tx, request, peer)
        elif method in ("BYE", "UPDATE"):
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
            status = self.refusal_status
        return make_response(request, status, to_tag=stateless_tag(request))

    def on_stray_response(self, endpoint: SipEndpoint, response: Response, peer: Peer) -> None:
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            session = self.dialogs.get(
                DialogId(response.call_id, response.from_.tag or "", response.to.tag or "")
            )
            if session is not None and session.dialog is not None:
                session.send_ack(response)  # the 2xx was retransmitted: our ACK was lost

    def _capabilities(self) -> tuple[Header, ...]:
        # §11.2: Allow, Accept, Accept-Encoding, Accept-Language and Supported; our one
        # option tag is RFC 4028's.
        return headers(
            ("Allow", self.allow),
            ("Accept", "application/sdp"),
            ("Accept-Encoding", "identity"),
            ("Accept-Language", "en"),
            ("Supported", TIMER),
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

    def _session_for(self, request: Request) -> Session | None:
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
        elif request.method in ("INVITE", "UPDATE"):
            session.on_offer_request(tx, request)
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
