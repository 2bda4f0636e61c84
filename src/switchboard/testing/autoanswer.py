"""An auto-answering user agent: rings, then answers every INVITE with an SDP answer.

It is the far-side phone of interop tests and benchmarks, and a handy target for trying a
SIP client against Switchboard's stack. It sends no media.
"""

from __future__ import annotations

import asyncio

from switchboard.sip import offer_answer
from switchboard.sip.sdp import SdpError, parse_sdp
from switchboard.sip.useragent import IncomingCall, UserAgent


def auto_answer(
    ua: UserAgent, *, ring_seconds: float = 0.0, media_address: str = "127.0.0.1"
) -> None:
    """Make ``ua`` answer every call after ``ring_seconds`` (488 if the offer is unusable)."""

    def on_invite(call: IncomingCall) -> None:
        try:
            offer = parse_sdp(call.request.body)
            answer, _ = offer_answer.answer(offer, media_address, 40000, call.to_tag)
        except (SdpError, offer_answer.NotAcceptableError):
            call.reject(488)
            return
        call.ring()
        if ring_seconds:
            asyncio.get_running_loop().call_later(ring_seconds, call.answer, bytes(answer))
        else:
            call.answer(bytes(answer))

    ua.on_invite = on_invite
