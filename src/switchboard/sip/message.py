"""SIP requests and responses: parse and serialise (RFC 3261 §7, §18.3, §25).

Rules:
- Bytes are decoded as UTF-8 with ``surrogateescape`` so that any octet survives a round
  trip, including the non-UTF-8 ones RFC 4475 sends.
- Folded lines (CRLF followed by SP/HT) are joined with one space (§7.3.1).
- Compact names are expanded, known names canonicalised, unknown headers kept verbatim.
- List headers (Via, Contact, Route, …) are split so each ``Header`` carries one element.
- The body is ``Content-Length`` octets (§18.3). Extra octets in a datagram are discarded
  (RFC 4475 "dblreq"); fewer octets than announced is an error ("clerr").
- Every number is read with a length bound and a range (``grammar.parse_number``): CSeq,
  Content-Length, Max-Forwards, Expires, Min-Expires, RSeq, RAck, a Contact's ``expires``
  and the status code. A 5000-digit value is a ``ParseError`` like any other bad value.
- Validation failures raise ``ParseError``. When the request was readable enough to answer,
  the error carries it as ``partial`` so the UAS can send 400 (§8.2, §21.4.1).
- A message received unchanged serialises to the octets received (less leading CRLFs and
  octets past its body); one built or changed serialises from its parts, always with one
  ``Content-Length`` computed from the body.

What is checked when, and what is built when:
- ``parse_message`` checks everything above before it returns, as it always has: the start
  line, every header line's name, the mandatory headers (Via, From, To, Call-ID, CSeq;
  §8.1.1), duplicates of single headers, every Via, From, To and Contact, CSeq and its
  method, Content-Length, Max-Forwards, Expires, Min-Expires, RSeq, Date and RAck. Nothing
  is validated lazily, so no later access raises on a message that parsed.
- A plainly written message (``fast_parser``) is validated by recognisers and built lazily:
  the Request-URI and the ``headers`` tuple on first read, CSeq, Via, From, To and Contact
  objects on first access (then memoised). ``get``/``get_all`` read an index of the raw
  values, so a hot path reading Call-ID, CSeq, the top Via and the tags parses only those.
- Anything else (folding, bare LFs, tel URIs, quoted-pairs, any broken rule…) goes to
  ``strict_parser``, which builds every part up front and raises the error.
"""

from __future__ import annotations

from typing import TypeVar, cast

from switchboard.sip.errors import ParseError
from switchboard.sip.fast_parser import parse_well_formed
from switchboard.sip.headers import Header
from switchboard.sip.message_types import (
    MAX_CSEQ,
    MAX_MESSAGE_SIZE,
    MAX_UINT32,
    SIP_VERSION,
    CSeq,
    Message,
    Request,
    Response,
    as_octets,
    headers,
    parse_cseq,
)
from switchboard.sip.strict_parser import parse_strictly, split_head
from switchboard.sip.uri import AbsoluteUri, SipUri, TelUri, Uri

_M = TypeVar("_M", Request, Response)

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    407: "Proxy Authentication Required", 408: "Request Timeout", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip


def parse_message(data: bytes) -> Message:
    """Parse one complete message (a datagram, or a frame cut by ``framing``)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise ParseError("Message too large", 513)
    data = data.lstrip(b"\r\n")  # §7.5: ignore CRLFs before the start line
    return parse_well_formed(data) or parse_strictly(data)


def held_as_wire(message: _M) -> _M:
    """The same message kept as its octets and parsed again on first read, for what is held
    long after use: a transaction keeps its request and last response up to 32 s after its
    final response (RFC 3261 §17 timers D, J, K; RFC 6026 L, M). A built message holds a
    tree of headers, URIs and parameters that the garbage collector walks on every pass
    while it lives; held, it is its serialisation (the same octets object), indexed only
    if read again. A received message sheds what reading it built."""
    return cast(_M, as_octets(message))  # a request's octets are a request's


def is_sip_uri(uri: Uri) -> bool:
    return isinstance(uri, SipUri)


__all__ = [
    "MAX_CSEQ",
    "MAX_MESSAGE_SIZE",
    "MAX_UINT32",
    "REASONS",
    "SIP_VERSION",
    "AbsoluteUri",
    "CSeq",
    "Header",
    "Message",
    "Request",
    "Response",
    "SipUri",
    "TelUri",
    "headers",
    "parse_cseq",
    "parse_message",
    "split_head",
]
