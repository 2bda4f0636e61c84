"""Messages for unit tests, built the way a peer would send them."""

from __future__ import annotations

from switchboard.sip.builders import make_response
from switchboard.sip.message import Request, Response, headers
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri

UDP_PEER = Peer("UDP", "192.0.2.10", 5060)
TCP_PEER = Peer("TCP", "192.0.2.10", 5060)


def request(
    method: str = "INVITE",
    *,
    branch: str = "z9hG4bK-test-1",
    cseq: int = 1,
    call_id: str = "call-1@test",
    from_tag: str = "caller-tag",
    to_tag: str | None = None,
    transport: str = "UDP",
    body: bytes = b"",
    sent_by: str = "192.0.2.10:5060",
) -> Request:
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    return Request(
        method,
        parse_uri("sip:bob@example.com"),
        headers(
            ("Via", f"SIP/2.0/{transport} {sent_by};branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:alice@example.com>;tag={from_tag}"),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", "<sip:alice@192.0.2.10:5060>"),
        ),
        body,
    )


def response(req: Request, status: int, to_tag: str = "callee-tag") -> Response:
    return make_response(req, status, to_tag=to_tag if status > 100 else None)
