"""The called side of an INVITE session (RFC 3261 §8.2, §9.2, §13.3; RFC 4028 §9).

Rules:
- The dialog exists from the INVITE (our To tag is chosen at once), so a CANCEL, or an
  UPDATE or re-INVITE in the early dialog, finds the session.
- ``ring`` sends provisionals, ``answer`` the 2xx (retransmitted until the ACK,
  §13.3.1.4), ``reject`` a final failure, with any headers it needs (a 407's challenge).
- The session timer is negotiated when the INVITE arrives (``session_terms``): the user
  agent refuses a too brief one with 422 before ``on_invite``; the 2xx carries the terms
  and starts the timer.
- An INVITE without an offer is answered with ours, and the ACK carries the answer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from switchboard.sip.builders import make_response
from switchboard.sip.dialog import Dialog
from switchboard.sip.headers import Header
from switchboard.sip.in_dialog import Negotiation, Step
from switchboard.sip.message import Request, headers
from switchboard.sip.session import CallState, Session, allows, content_type
from switchboard.sip.session_timer import Agreed, negotiate_as_uas
from switchboard.sip.transaction.base import Peer
from switchboard.sip.transaction.server_invite import ServerInviteTransaction

if TYPE_CHECKING:
    from switchboard.sip.useragent import UserAgent


class IncomingCall(Session):
    def __init__(self, ua: UserAgent, tx: ServerInviteTransaction, peer: Peer) -> None:
        super().__init__(ua, tx.request.call_id)
        self.tx = tx
        self.request = tx.request
        self.peer = peer
        self.to_tag = ua.endpoint.ids.tag()
        self.dialog = Dialog.from_uas(self.request, self.to_tag)
        ua.dialogs[self.dialog.id] = self
        self.acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The session timer asked for (RFC 4028 §9); ``TooBrief`` never reaches on_invite.
        self.session_terms = negotiate_as_uas(
            self.request, min_se=ua.min_se, default=ua.session_expires
        )
        self.negotiation.remote_invite = True
        if self.request.body:
            self._step(Step.RECEIVE_OFFER, self.request.body)

    def _contact(self) -> tuple[Header, ...]:
        # the transport the INVITE came over: a TLS caller's ACK and BYE come back over TLS
        return headers(("Contact", self.ua.endpoint.contact(transport=self.peer.transport)))

    def ring(self, status: int = 180, body: bytes = b"") -> None:
        if self.state is CallState.CALLING:
            self.state = CallState.RINGING
        extra = self._contact() + content_type(body)
        response = make_response(self.request, status, to_tag=self.to_tag, extra=extra, body=body)
        self.ua.endpoint.respond(self.tx, response)

    def answer(self, body: bytes = b"") -> None:
        if self.state is CallState.ENDED or self.state is CallState.ANSWERED:
            return
        self.state = CallState.ANSWERED
        terms = self.session_terms if isinstance(self.session_terms, Agreed) else None
        response = self._success(self.request, body, terms, to_tag=self.to_tag)
        self.ua.endpoint.respond(self.tx, response)
        assert self.dialog is not None
        self.ua.endpoint.retransmit_success(self.dialog.id, response, self.peer, self._no_ack)
        self.negotiation.remote_invite = False
        if self.request.body:
            self._step(Step.SEND_ANSWER, body)
        elif body:
            self._step(Step.SEND_OFFER, body)  # the ACK answers it (§13.2.1)
        self.peer_allows_update = allows(self.request, "UPDATE")
        self._restart_as_uas(terms)
        self.answered.set_result(response)

    def reject(
        self, status: int, reason: str | None = None, extra: tuple[Header, ...] = ()
    ) -> None:
        """Refuse the call; ``extra`` carries e.g. a Proxy-Authenticate challenge (407)."""
        if self.state in (CallState.ENDED, CallState.ANSWERED):
            return
        response = make_response(self.request, status, reason, to_tag=self.to_tag, extra=extra)
        self.ua.endpoint.respond(self.tx, response)
        self.negotiation.remote_invite = False
        self._end(f"send_refuse,{status}")

    def _on_initial_ack(self, ack: Request | None) -> None:
        assert self.dialog is not None
        self.ua.endpoint.ack_received(self.dialog.id)
        if self.acked.done():
            return
        if self.negotiation.state is Negotiation.LOCAL_OFFER and ack is not None:
            self._step(Step.RECEIVE_ANSWER if ack.body else Step.FAIL, ack.body)
        self.acked.set_result(None)

    def on_cancel(self) -> None:
        if self.state in (CallState.ENDED, CallState.ANSWERED):
            return
        response = make_response(self.request, 487, to_tag=self.to_tag)
        self.ua.endpoint.respond(self.tx, response)
        self._end("recv_cancel")
