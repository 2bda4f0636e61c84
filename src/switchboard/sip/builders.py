"""Messages the core builds from other messages.

- Responses copy Via, From, To, Call-ID and CSeq from the request (§8.2.6.2) and, for
  dialog-creating responses, Record-Route (§12.1.1).
- The ACK for a non-2xx final response is built by the client transaction (§17.1.1.3):
  same Request-URI, Call-ID, From, CSeq number and top Via as the INVITE, To from the
  response, Route from the INVITE.
- A stateless response's To tag is a hash of the request (§8.2.7: the same request always
  gets the same tag), so a retransmitted INVITE draws the very same answer.
- CANCEL (§9.1) copies the INVITE's Request-URI, Call-ID, To, From, Route, CSeq number and
  top Via, so that it carries the same branch.
"""

from __future__ import annotations

import hashlib

from switchboard.sip.headers import Header
from switchboard.sip.message import REASONS, Request, Response

_COPIED = frozenset(("via", "from", "call-id", "cseq"))


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: tuple[Header, ...] = (),
    body: bytes = b"",
) -> Response:
    out: list[Header] = []
    for h in request.headers:
        if h.key in _COPIED:
            out.append(h)
        elif h.key == "to":
            value = h.value
            if to_tag and status > 100 and request.to.tag is None:
                value = str(request.to.with_tag(to_tag))
            out.append(Header("To", value))
        elif h.key == "record-route" and 100 < status < 300:
            out.append(h)
    out.extend(extra)
    return Response(status, reason or REASONS.get(status, "Unknown"), tuple(out), body)


def stateless_tag(request: Request) -> str:
    """A To tag that every copy of ``request`` gets alike; it names no dialog we keep."""
    fields = (request.get(name) or "" for name in ("Call-ID", "From", "CSeq", "Via"))
    seed = "\n".join(fields).encode("utf-8", "surrogateescape")
    return hashlib.blake2s(seed, digest_size=6).hexdigest()


def make_non_2xx_ack(invite: Request, response: Response) -> Request:
    out: list[Header] = [Header("Via", invite.get_all("Via")[0])]
    for h in invite.headers:
        if h.key in ("from", "call-id", "route"):
            out.append(h)
    out.append(Header("To", response.get("To") or ""))
    out.append(Header("CSeq", f"{invite.cseq.number} ACK"))
    out.append(Header("Max-Forwards", "70"))
    return Request("ACK", invite.uri, tuple(out))


def make_cancel(invite: Request) -> Request:
    out: list[Header] = [Header("Via", invite.get_all("Via")[0])]
    for h in invite.headers:
        if h.key in ("from", "to", "call-id", "route"):
            out.append(h)
    out.append(Header("CSeq", f"{invite.cseq.number} CANCEL"))
    out.append(Header("Max-Forwards", "70"))
    return Request("CANCEL", invite.uri, tuple(out))
