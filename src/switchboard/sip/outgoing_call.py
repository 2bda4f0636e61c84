"""The calling side of an INVITE session (RFC 3261 §8.1, §9.1, §13.2, §22.2; RFC 4028 §7).

Rules:
- Our INVITE's progress is ``InviteState``; ``INVITE_TABLE`` says, for every state and
  input, what is done and where it goes. CANCEL is sent only after a provisional response
  (§9.1): asked earlier, it waits for the first one. A 2xx that crosses our CANCEL is
  ACKed and the call ended with BYE.
- Every 2xx is ACKed, retransmissions too (§13.2.2.4); the first one answers the call.
- A 401/407 is answered once with credentials (a ``stale`` challenge once more), a 422
  once with the Min-SE it names (RFC 4028 §7.4): each a new INVITE with the next CSeq,
  which needs its own provisional before a CANCEL may go.
- Our INVITE transactions outlive the call: RFC 6026 keeps one 32 s after its 2xx for
  retransmissions. They reach the call through ``responses``, which the call retires when
  it ends in ACCEPTED or REFUSED: then a 2xx is ACKed again from the dialog alone, and
  anything else ignored, as the table says, without keeping the call's whole graph (its
  messages, its session, the PBX call behind it) alive 32 s for the collector to scan.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from switchboard.sip.builders import make_cancel
from switchboard.sip.dialog import Dialog
from switchboard.sip.digest import answer_challenge, parse_auth_params, pick_challenge
from switchboard.sip.headers import Header
from switchboard.sip.in_dialog import Negotiation, Step
from switchboard.sip.message import Request, Response
from switchboard.sip.session import (
    CallState,
    ReAck,
    ResponseRelay,
    Session,
    allows,
    ignore_response,
)
from switchboard.sip.session_timer import parse_min_se, parse_session_expires
from switchboard.sip.transaction.base import Peer

if TYPE_CHECKING:
    from switchboard.sip.useragent import UserAgent

log = logging.getLogger("switchboard.sip.ua")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


class InviteState(enum.Enum):
    """Where our INVITE stands: what a provisional, a final response or ``cancel()`` does."""

    CALLING = "calling"  # sent, nothing back: a CANCEL must wait (§9.1)
    PROCEEDING = "proceeding"  # a provisional came: a CANCEL may go
    CANCEL_WAITING = "cancel_waiting"  # cancelled before any provisional: CANCEL on the first
    CANCELLING = "cancelling"  # CANCEL sent: a 487, or a 2xx that crossed it, ends the call
    ACCEPTED = "accepted"  # a 2xx came
    REFUSED = "refused"  # a final failure came


class InviteInput(enum.Enum):
    PROVISIONAL = "provisional"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCEL = "cancel"
    RESENT = "resent"  # the INVITE went again with credentials or a longer interval


In, St = InviteInput, InviteState
_ANSWER = ("ack", "answer")
_CROSSED = ("ack", "answer", "bye")  # the 2xx crossed our CANCEL: end the call (§9.1)
_IGNORED: tuple[str, ...] = ()
# (state, input) -> (actions, next state). RESENT follows a 401/407/422, which only comes
# before any CANCEL and any final response; every other pair is listed.
INVITE_TABLE: dict[tuple[InviteState, InviteInput], tuple[tuple[str, ...], InviteState]] = {
    (St.CALLING, In.PROVISIONAL): (_IGNORED, St.PROCEEDING),
    (St.CALLING, In.SUCCESS): (_ANSWER, St.ACCEPTED),
    (St.CALLING, In.FAILURE): (("refuse",), St.REFUSED),
    (St.CALLING, In.CANCEL): (_IGNORED, St.CANCEL_WAITING),
    (St.CALLING, In.RESENT): (_IGNORED, St.CALLING),
    (St.PROCEEDING, In.PROVISIONAL): (_IGNORED, St.PROCEEDING),
    (St.PROCEEDING, In.SUCCESS): (_ANSWER, St.ACCEPTED),
    (St.PROCEEDING, In.FAILURE): (("refuse",), St.REFUSED),
    (St.PROCEEDING, In.CANCEL): (("send_cancel",), St.CANCELLING),
    (St.PROCEEDING, In.RESENT): (_IGNORED, St.CALLING),  # the new INVITE needs its own 1xx
    (St.CANCEL_WAITING, In.PROVISIONAL): (("send_cancel",), St.CANCELLING),
    (St.CANCEL_WAITING, In.SUCCESS): (_CROSSED, St.ACCEPTED),
    (St.CANCEL_WAITING, In.FAILURE): (("refuse",), St.REFUSED),
    (St.CANCEL_WAITING, In.CANCEL): (_IGNORED, St.CANCEL_WAITING),
    (St.CANCELLING, In.PROVISIONAL): (_IGNORED, St.CANCELLING),
    (St.CANCELLING, In.SUCCESS): (_CROSSED, St.ACCEPTED),
    (St.CANCELLING, In.FAILURE): (("refuse",), St.REFUSED),
    (St.CANCELLING, In.CANCEL): (_IGNORED, St.CANCELLING),
    (St.ACCEPTED, In.PROVISIONAL): (_IGNORED, St.ACCEPTED),
    (St.ACCEPTED, In.SUCCESS): (("ack",), St.ACCEPTED),  # retransmitted: ACK again (§13.2.2.4)
    (St.ACCEPTED, In.FAILURE): (_IGNORED, St.ACCEPTED),
    (St.ACCEPTED, In.CANCEL): (_IGNORED, St.ACCEPTED),
    (St.REFUSED, In.PROVISIONAL): (_IGNORED, St.REFUSED),
    (St.REFUSED, In.SUCCESS): (_IGNORED, St.REFUSED),
    (St.REFUSED, In.FAILURE): (_IGNORED, St.REFUSED),
    (St.REFUSED, In.CANCEL): (_IGNORED, St.REFUSED),
}


class OutgoingCall(Session):
    def __init__(
        self, ua: UserAgent, invite: Request, peer: Peer, credentials: Credentials | None = None
    ) -> None:
        super().__init__(ua, invite.call_id)
        self.invite = invite
        self.peer = peer
        self.credentials = credentials
        self.final: Response | None = None
        self.invite_state = InviteState.CALLING
        self.auth_attempts = 0
        self.interval_attempts = 0
        # Called with each 18x (early media arrives in a 183 with SDP, RFC 3960).
        self.on_provisional: Callable[[Response], None] | None = None
        self.responses = ResponseRelay(self.on_response)  # what our transactions call
        if invite.body:
            self._step(Step.SEND_OFFER, invite.body)

    @property
    def provisional_seen(self) -> bool:
        """Whether a CANCEL may be sent now (§9.1)."""
        return self.invite_state in (InviteState.PROCEEDING, InviteState.CANCELLING)

    @property
    def cancel_requested(self) -> bool:
        return self.invite_state in (InviteState.CANCEL_WAITING, InviteState.CANCELLING)

    def _fire(self, event: InviteInput, response: Response | None = None) -> None:
        old = self.invite_state
        actions, self.invite_state = INVITE_TABLE[(old, event)]
        if self.invite_state is not old:
            log.debug("invite %s: %s -> %s", self.call_id, old.value, self.invite_state.value)
        for action in actions:
            getattr(self, f"_do_{action}")(response)

    def on_response(self, response: Response) -> None:
        if response.status in (401, 407) and self._retry_with_credentials(response):
            return
        if response.status == 422 and self._retry_with_longer_interval(response):
            return
        if response.status < 200:
            if response.status > 100:
                self.state = CallState.RINGING
                if self.on_provisional is not None:
                    self.on_provisional(response)
            self._fire(InviteInput.PROVISIONAL, response)
        else:
            ok = response.status < 300
            self._fire(InviteInput.SUCCESS if ok else InviteInput.FAILURE, response)

    def _end(self, reason: str) -> None:
        super()._end(reason)
        if self.invite_state is InviteState.ACCEPTED and self.dialog is not None:
            self.responses.retire(ReAck(self.ua.endpoint, self.dialog, self.peer))
        elif self.invite_state is InviteState.REFUSED:
            self.responses.retire(ignore_response)

    def _do_ack(self, response: Response | None) -> None:
        assert response is not None
        if self.dialog is None:
            self.dialog = Dialog.from_uac(self.invite, response)
            self.ua.dialogs[self.dialog.id] = self
        self.dialog.confirm(response)
        self.send_ack(response)

    def _do_answer(self, response: Response | None) -> None:
        assert response is not None
        self.final = response
        self.state = CallState.ANSWERED
        if self.negotiation.state is Negotiation.LOCAL_OFFER:
            self._step(Step.RECEIVE_ANSWER if response.body else Step.FAIL, response.body)
        elif response.body:
            # An INVITE without an offer: the 2xx offers, and our ACK would have to answer,
            # which we cannot; what the peer described is still what it sends.
            self.negotiation.remote_sdp = response.body
        self.peer_allows_update = allows(response, "UPDATE")
        self._timer_after_2xx(response, self.invite)
        if not self.answered.done():
            self.answered.set_result(response)

    def _do_refuse(self, response: Response | None) -> None:
        assert response is not None
        self.final = response
        self._step(Step.FAIL)
        if not self.answered.done():
            self.answered.set_result(response)
        self._end(f"recv_refuse,{response.status}")

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
        self._resend(Header(answer_field, value))
        return True

    def _retry_with_longer_interval(self, response: Response) -> bool:
        """422: ask again with the Min-SE it names, once (RFC 4028 §7.4)."""
        asked = parse_session_expires(self.invite.get("Session-Expires"))
        wanted = parse_min_se(response.get("Min-SE"))
        if self.cancel_requested or asked is None or wanted is None or self.interval_attempts:
            return False
        if wanted <= asked.interval:
            return False
        self.interval_attempts += 1
        self._resend(Header("Session-Expires", str(wanted)), Header("Min-SE", str(wanted)))
        return True

    def _resend(self, *changed: Header) -> None:
        """The INVITE again with the next CSeq, a new branch and ``changed`` headers."""
        cseq = self.invite.cseq.number + 1
        dropped = {"via", "cseq", "authorization", "proxy-authorization"}
        dropped |= {h.key for h in changed}
        kept = [h for h in self.invite.headers if h.key not in dropped]
        hdrs = (
            Header("Via", self.ua.endpoint.via(self.peer.transport)),
            *kept,
            Header("CSeq", f"{cseq} INVITE"),
            *changed,
        )
        self.invite = replace(self.invite, headers=hdrs)
        self._fire(InviteInput.RESENT)
        self.ua.endpoint.send_request(self.invite, self.peer, self.responses)

    def cancel(self) -> None:
        if self.state is CallState.ENDED:
            return
        self._fire(InviteInput.CANCEL)

    def _do_send_cancel(self, _response: Response | None) -> None:
        self.ua.endpoint.send_request(make_cancel(self.invite), self.peer, lambda r: None)

    def _do_bye(self, _response: Response | None) -> None:
        self.bye()
