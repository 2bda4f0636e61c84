"""Carrying out a script (``scripts``) on an incoming call: what is sent, and when.

Rules:
- ``after`` delays run on the loop's clock and are cancelled when the call ends first (a
  CANCEL, a hang-up): a call never answers after it ended.
- SDP (RFC 3264): the answer to the INVITE's offer, from ``host:rtp_port``, with the
  offer's codecs as ``offer_answer`` chooses; an offer of ours when the INVITE had none
  (the late offer of §13.2.1); 488 instead of ringing or answering when the offer is
  unusable (§6). ``Answer(sdp=...)`` replaces all of that with its bytes.
"""

from __future__ import annotations

from switchboard.sip import offer_answer
from switchboard.sip.sdp import SdpError, parse_sdp
from switchboard.sip.useragent import CallState, IncomingCall
from switchboard.testing.calls import ScriptedCall
from switchboard.testing.scripts import Answer, Reject, Ring, Script, Silent, Trying


def perform(
    call: ScriptedCall, session: IncomingCall, script: Script, host: str, rtp_port: int
) -> None:
    """Start ``script`` on a call just received."""
    if isinstance(script, Silent | Trying):
        return
    if isinstance(script, Reject):
        if script.ring:
            session.ring()
        call.later(script.after, session.reject, script.status)
        return
    description = session_description(session, script, host, rtp_port)
    if description is None:
        session.reject(488)
        return
    if isinstance(script, Ring):
        session.ring(script.status, description if script.early_media else b"")
        return
    if script.ring:
        session.ring()
    call.later(script.after, _answer, call, session, description, script.hang_up_after)


def session_description(
    session: IncomingCall, script: Answer | Ring, host: str, rtp_port: int
) -> bytes | None:
    """The SDP our answer or early media carries; None when the offer is unusable."""
    if isinstance(script, Answer) and script.sdp is not None:
        return script.sdp
    request = session.request
    if not request.body:
        return bytes(offer_answer.make_offer(host, rtp_port, session.to_tag))
    try:
        offer = parse_sdp(request.body)
        answer, _ = offer_answer.answer(offer, host, rtp_port, session.to_tag)
    except (SdpError, offer_answer.NotAcceptableError):
        return None
    return bytes(answer)


def _answer(
    call: ScriptedCall, session: IncomingCall, description: bytes, hang_up_after: float | None
) -> None:
    session.answer(description)
    if hang_up_after is not None and session.state is CallState.ANSWERED:
        call.later(hang_up_after, session.bye)
