"""SDP for each leg of an anchored call (RFC 3264), with Switchboard's relay address.

Each leg negotiates with Switchboard only: the member's offer is answered with the relay
port of leg ``a``; the destination is offered the relay port of leg ``b``, and its answer
is checked against that offer. What each side agreed goes into the leg (``LegMedia``).
Errors are ``NotAcceptableError`` (answer 488) and ``SdpError`` (malformed: 400/488).
"""

from __future__ import annotations

from switchboard.media.relay import Leg, LegMedia
from switchboard.sip import offer_answer
from switchboard.sip.sdp import SessionDescription, parse_sdp


def answer_offer(leg: Leg, offer: bytes, session_id: str, signalling_host: str) -> bytes:
    """Answer the peer's offer on ``leg``; the leg learns the peer's address and codec, and
    may latch to that address or the IP the offer came from (``relay`` module rules)."""
    description, negotiated = offer_answer.answer(parse_sdp(offer), leg.host, leg.port, session_id)
    leg.set_media(LegMedia.from_negotiated(negotiated), signalling_host)
    return bytes(description)


def make_offer(leg: Leg, session_id: str) -> SessionDescription:
    """Offer PCMU, PCMA and telephone-event on ``leg``'s relay port."""
    return offer_answer.make_offer(leg.host, leg.port, session_id)


def accept_answer(leg: Leg, offer: SessionDescription, answer: bytes, signalling_host: str) -> None:
    """``signalling_host``: the IP the answer came from (the NAT allowance of latching)."""
    negotiated = offer_answer.accept_answer(offer, parse_sdp(answer))
    leg.set_media(LegMedia.from_negotiated(negotiated), signalling_host)
