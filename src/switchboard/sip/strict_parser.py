"""The reference parser: every message the fast parser does not recognise comes here.

It builds every part of the message up front and validates it as RFC 3261 and RFC 4475
demand (see ``message``'s docstring for the rules). Its errors are the errors of
``parse_message``: the fast parser never rejects a message itself, it sends anything
unusual here, so a malformed message fails with the same reason, status and ``partial``.
"""

from __future__ import annotations

import re
from dataclasses import replace

from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import WSP, bounded_int, is_token, parse_number
from switchboard.sip.headers import SINGLE_HEADERS, Header, canonical_name, parse_header_lines
from switchboard.sip.message_types import (
    MAX_MESSAGE_SIZE,
    MAX_UINT32,
    CSeq,
    Message,
    Request,
    Response,
    parse_cseq,
)
from switchboard.sip.uri import SipUri, parse_uri

# ASCII digits only: ``\d`` would match any Unicode digit, and int() would read it.
_STATUS_LINE = re.compile(r"SIP/([0-9]+)\.([0-9]+) ([1-6][0-9][0-9])(?: (.*))?\Z", re.S)
_VERSION = re.compile(r"SIP/([0-9]+)\.([0-9]+)\Z")
# SIP-date is RFC 1123 with the zone always "GMT" (§25.1, RFC 4475 "baddate").
SIP_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d{2}:\d{2}:\d{2} GMT\Z"
)
NUMERIC_HEADERS = (
    ("Max-Forwards", 255),  # §20.22: 0-255
    ("Expires", MAX_UINT32),
    ("Min-Expires", MAX_UINT32),
    ("RSeq", MAX_UINT32),
)


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Split at the empty line ending the header section; ``None`` when there is none."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    end = data.find(b"\n\n")  # tolerate bare LF line endings from sloppy peers
    if end >= 0:
        return data[:end], data[end + 2 :]
    return None


def parse_strictly(data: bytes) -> Message:
    """Parse one message with its leading CRLFs already removed (§7.5)."""
    parts = split_head(data)
    if parts is None:
        raise ParseError("No empty line after the header fields")
    head_bytes, rest = parts
    lines = _unfold(head_bytes.decode("utf-8", "surrogateescape"))
    if not lines or not lines[0]:
        raise ParseError("Empty start line")
    header_list = parse_header_lines(lines[1:])
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
    """Folded lines (CRLF followed by SP/HT) are joined with one space (§7.3.1)."""
    lines: list[str] = []
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line[:1] in (" ", "\t") and lines:
            lines[-1] = lines[-1].rstrip(WSP) + " " + line.strip(WSP)
        else:
            lines.append(line)
    return lines


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
    """``Content-Length`` octets (§18.3); extra octets in a datagram are discarded."""
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
    for name, maximum in NUMERIC_HEADERS:
        value = message.get(name)
        if value is not None:
            parse_number(value, maximum, name)
    date = message.get("Date")
    if date is not None and not SIP_DATE.match(date):
        raise ParseError("Malformed Date")
    for contact in message.contacts:
        value = contact.params.get("expires")
        if value is not None:
            parse_number(value, MAX_UINT32, "Contact expires")
    rack = message.get("RAck")
    if rack is not None:
        parse_rack(rack)


def parse_rack(text: str) -> tuple[int, CSeq]:
    """RAck = response-num LWS CSeq-num LWS Method (RFC 3262 §7.2)."""
    response_num, _, cseq = text.strip(WSP).partition(" ")
    return parse_number(response_num, MAX_UINT32, "RAck"), parse_cseq(cseq)


def _fail(reason: str, message: Message) -> ParseError:
    error = ParseError(reason)
    if isinstance(message, Request):
        error.partial = message
    return error
