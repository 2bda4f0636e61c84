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
- Serialising always writes one ``Content-Length`` computed from the body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from switchboard.sip.address import Address, parse_address
from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import WSP, bounded_int, is_token, parse_number, split_top_level
from switchboard.sip.headers import LIST_HEADERS, SINGLE_HEADERS, Header, canonical_name
from switchboard.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri
from switchboard.sip.via import Via, parse_via

SIP_VERSION = "SIP/2.0"
MAX_CSEQ = 2**31  # §8.1.1.5: "MUST be less than 2**31"
MAX_MESSAGE_SIZE = 65535
MAX_UINT32 = 2**32 - 1  # delta-seconds (§25.1 via §20.19) and RSeq (RFC 3262 §7.1)
# ASCII digits only: ``\d`` would match any Unicode digit, and int() would read it.
_STATUS_LINE = re.compile(r"SIP/([0-9]+)\.([0-9]+) ([1-6][0-9][0-9])(?: (.*))?\Z", re.S)
_VERSION = re.compile(r"SIP/([0-9]+)\.([0-9]+)\Z")
# SIP-date is RFC 1123 with the zone always "GMT" (§25.1, RFC 4475 "baddate").
_SIP_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d{2}:\d{2}:\d{2} GMT\Z"
)

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


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    number, _, method = text.strip(WSP).partition(" ")
    number = number.strip(WSP)
    method = method.strip(WSP)
    if not is_token(method):
        raise ParseError("Malformed CSeq")
    return CSeq(parse_number(number, MAX_CSEQ - 1, "CSeq"), method)


class _MessageMixin:
    """Header access shared by requests and responses.

    Typed views (CSeq, Via, From, To) are parsed once and memoised in ``_parsed``: messages
    are immutable, and the layers above ask for the same fields many times per message.
    """

    __slots__ = ()
    headers: tuple[Header, ...]
    body: bytes
    _parsed: dict[str, object]

    def get(self, name: str) -> str | None:
        key = canonical_name(name).lower()
        for h in self.headers:
            if h.key == key:
                return h.value
        return None

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name).lower()
        return [h.value for h in self.headers if h.key == key]

    @property
    def call_id(self) -> str:
        value = self.get("Call-ID")
        if value is None:
            raise ParseError("Missing Call-ID")
        return value

    @property
    def cseq(self) -> CSeq:
        cached = self._parsed.get("cseq")
        if isinstance(cached, CSeq):
            return cached
        value = self.get("CSeq")
        if value is None:
            raise ParseError("Missing CSeq")
        self._parsed["cseq"] = parsed = parse_cseq(value)
        return parsed

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.get_all("Via")]

    @property
    def top_via(self) -> Via:
        cached = self._parsed.get("via")
        if isinstance(cached, Via):
            return cached
        value = self.get("Via")
        if value is None:
            raise ParseError("Missing Via")
        self._parsed["via"] = parsed = parse_via(value)
        return parsed

    @property
    def from_(self) -> Address:
        return _required_address(self, "From")

    @property
    def to(self) -> Address:
        return _required_address(self, "To")

    @property
    def contacts(self) -> list[Address]:
        return [parse_address(v) for v in self.get_all("Contact")]

    @property
    def content_type(self) -> str | None:
        value = self.get("Content-Type")
        return value.split(";", 1)[0].strip(WSP).lower() if value else None


def _required_address(message: _MessageMixin, name: str) -> Address:
    cached = message._parsed.get(name)
    if isinstance(cached, Address):
        return cached
    value = message.get(name)
    if value is None:
        raise ParseError(f"Missing {name}")
    message._parsed[name] = parsed = parse_address(value)
    return parsed


@dataclass(frozen=True, slots=True)
class Request(_MessageMixin):
    method: str
    uri: Uri
    headers: tuple[Header, ...]
    body: bytes = b""
    _parsed: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __bytes__(self) -> bytes:
        return _serialise(f"{self.method} {self.uri} {SIP_VERSION}", self.headers, self.body)

    def with_headers(self, headers: Iterable[Header]) -> Request:
        return replace(self, headers=tuple(headers))

    @property
    def first_line(self) -> str:
        return f"{self.method} {self.uri}"


@dataclass(frozen=True, slots=True)
class Response(_MessageMixin):
    status: int
    reason: str
    headers: tuple[Header, ...]
    body: bytes = b""
    _parsed: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __bytes__(self) -> bytes:
        return _serialise(f"{SIP_VERSION} {self.status} {self.reason}", self.headers, self.body)

    def with_headers(self, headers: Iterable[Header]) -> Response:
        return replace(self, headers=tuple(headers))

    @property
    def first_line(self) -> str:
        return f"{self.status} {self.reason}"


Message = Request | Response


def _serialise(start_line: str, headers: tuple[Header, ...], body: bytes) -> bytes:
    """Content-Length stays where it was (so a round trip keeps header order), or goes last."""
    lines = [start_line]
    length_written = False
    for h in headers:
        if h.key != "content-length":
            lines.append(f"{h.name}: {h.value}")
        elif not length_written:
            lines.append(f"Content-Length: {len(body)}")
            length_written = True
    if not length_written:
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8", "surrogateescape") + body


def headers(*pairs: tuple[str, str]) -> tuple[Header, ...]:
    """Build a header tuple from ``(name, value)`` pairs, canonicalising names."""
    return tuple(Header(canonical_name(n), v) for n, v in pairs)


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Split at the empty line ending the header section; ``None`` when there is none."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    end = data.find(b"\n\n")  # tolerate bare LF line endings from sloppy peers
    if end >= 0:
        return data[:end], data[end + 2 :]
    return None


def parse_message(data: bytes) -> Message:
    """Parse one complete message (a datagram, or a frame cut by ``framing``)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise ParseError("Message too large", 513)
    data = data.lstrip(b"\r\n")  # §7.5: ignore CRLFs before the start line
    parts = split_head(data)
    if parts is None:
        raise ParseError("No empty line after the header fields")
    head_bytes, rest = parts
    lines = _unfold(head_bytes.decode("utf-8", "surrogateescape"))
    if not lines or not lines[0]:
        raise ParseError("Empty start line")
    header_list = _parse_header_lines(lines[1:])
    start = lines[0]
    if start.startswith("SIP/"):
        message: Message = _parse_status_line(start, header_list)
    else:
        message = _parse_request_line(start, header_list)
    body = _body(header_list, rest, message)
    message = replace(message, body=body)
    _validate(message)
    return message


def _unfold(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip(WSP) + " " + line.strip(WSP)
        else:
            lines.append(line)
    return lines


def _parse_header_lines(lines: list[str]) -> tuple[Header, ...]:
    out: list[Header] = []
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.rstrip(WSP)
        if not colon or not is_token(name):
            raise ParseError(f"Malformed header line {line[:40]!r}")
        canonical = canonical_name(name)
        value = value.strip(WSP)
        if canonical.lower() in LIST_HEADERS and "," in value:
            for raw_element in split_top_level(value, ","):
                element = raw_element.strip(WSP)
                if element:
                    out.append(Header(canonical, element))
        else:
            out.append(Header(canonical, value))
    return tuple(out)


def _parse_request_line(line: str, header_list: tuple[Header, ...]) -> Request:
    parts = line.split(" ")
    if len(parts) != 3:
        raise ParseError("Malformed Request-Line")
    method, uri_text, version = parts
    if not is_token(method):
        raise ParseError("Malformed method")
    _check_version(version)
    try:
        uri = parse_uri(uri_text)
    except ParseError as exc:
        raise ParseError(f"Bad Request-URI: {exc.reason}") from None
    if isinstance(uri, SipUri) and uri.headers is not None:
        # §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 "escruri").
        raise _fail("Headers in Request-URI", Request(method, uri, header_list))
    return Request(method, uri, header_list)


def _parse_status_line(line: str, header_list: tuple[Header, ...]) -> Response:
    match = _STATUS_LINE.match(line)
    if match is None:
        raise ParseError("Malformed Status-Line")
    if (match.group(1), match.group(2)) != ("2", "0"):
        raise ParseError("Unsupported SIP version", 505)
    return Response(int(match.group(3)), match.group(4) or "", header_list)


def _check_version(version: str) -> None:
    match = _VERSION.match(version)
    if match is None:
        raise ParseError("Malformed SIP-Version")
    if (match.group(1), match.group(2)) != ("2", "0"):
        raise ParseError("Version Not Supported", 505)


def _body(header_list: tuple[Header, ...], rest: bytes, message: Message) -> bytes:
    lengths = {h.value for h in header_list if h.key == "content-length"}
    if not lengths:
        return rest  # datagram: the body is the rest of the packet (§18.3)
    if len(lengths) > 1:
        raise _fail("Conflicting Content-Length values", message)
    (text,) = lengths
    length = bounded_int(text, MAX_MESSAGE_SIZE)
    if length is None:
        raise _fail("Malformed Content-Length", message)
    if length > len(rest):
        raise _fail("Content-Length larger than message", message)
    return rest[:length]


def _validate(message: Message) -> None:
    counts: dict[str, int] = {}
    for h in message.headers:
        counts[h.key] = counts.get(h.key, 0) + 1
    for key in ("via", "from", "to", "call-id", "cseq"):
        if key not in counts:
            raise _fail(f"Missing {canonical_name(key)}", message)
    for key in SINGLE_HEADERS:
        if counts.get(key, 0) > 1:
            raise _fail(f"Duplicate {canonical_name(key)}", message)
    try:
        cseq = message.cseq
        message.vias  # noqa: B018 - parse every Via to validate it
        from_, to = message.from_, message.to
        if from_.is_wildcard or to.is_wildcard:
            raise ParseError("Wildcard in From or To")
        for contact in message.contacts:
            if contact.is_wildcard and len(message.get_all("Contact")) > 1:
                raise ParseError("Wildcard Contact mixed with others")
        _validate_scalars(message)
    except ParseError as exc:
        raise _fail(exc.reason, message) from None
    if isinstance(message, Request) and cseq.method != message.method:
        raise _fail("CSeq method does not match the Request-Line", message)


def _validate_scalars(message: Message) -> None:
    """Numbers we may read later are checked now, so reading them can never raise."""
    for name, maximum in _NUMERIC_HEADERS:
        value = message.get(name)
        if value is not None:
            parse_number(value, maximum, name)
    date = message.get("Date")
    if date is not None and not _SIP_DATE.match(date):
        raise ParseError("Malformed Date")
    for contact in message.contacts:
        value = contact.params.get("expires")
        if value is not None:
            parse_number(value, MAX_UINT32, "Contact expires")
    rack = message.get("RAck")
    if rack is not None:
        _parse_rack(rack)


_NUMERIC_HEADERS = (
    ("Max-Forwards", 255),  # §20.22: 0-255
    ("Expires", MAX_UINT32),
    ("Min-Expires", MAX_UINT32),
    ("RSeq", MAX_UINT32),
)


def _parse_rack(text: str) -> tuple[int, CSeq]:
    """RAck = response-num LWS CSeq-num LWS Method (RFC 3262 §7.2)."""
    response_num, _, cseq = text.strip(WSP).partition(" ")
    return parse_number(response_num, MAX_UINT32, "RAck"), parse_cseq(cseq)


def _fail(reason: str, message: Message) -> ParseError:
    error = ParseError(reason)
    if isinstance(message, Request):
        error.partial = message
    return error


def is_sip_uri(uri: Uri) -> bool:
    return isinstance(uri, SipUri)


__all__ = [
    "REASONS",
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
]
