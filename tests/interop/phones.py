"""SIP phones built on Switchboard's own endpoint, used as the far side of interop tests."""

from __future__ import annotations

import asyncio

from switchboard.sip import offer_answer
from switchboard.sip.sdp import SdpError, parse_sdp
from switchboard.sip.useragent import IncomingCall, UserAgent


def answering_phone(ua: UserAgent, *, ring_seconds: float = 0.0) -> None:
    """Ring, then answer every INVITE with an SDP answer to its offer."""

    def on_invite(call: IncomingCall) -> None:
        try:
            offer = parse_sdp(call.request.body)
            answer, _ = offer_answer.answer(offer, "127.0.0.1", 40000, call.to_tag)
        except (SdpError, offer_answer.NotAcceptableError):
            call.reject(488)
            return
        call.ring()
        if ring_seconds:
            asyncio.get_running_loop().call_later(ring_seconds, call.answer, bytes(answer))
        else:
            call.answer(bytes(answer))

    ua.on_invite = on_invite
