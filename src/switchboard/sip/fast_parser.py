"""The fast parser: validate a plainly written message now, build its parts when asked.

A B2BUA reads a handful of fields of most messages (Call-ID, CSeq, the top Via's branch,
the From and To tags) and relays or drops the rest. So this parser splits the header
section into lines and indexes the values by name, checks every rule the strict parser
checks with cheap recognisers (``recognisers``), and builds nothing else: the Request-URI,
the ``Header`` tuple and the typed views are parsed on first access (``message_types``).

``parse_well_formed`` returns None for anything it does not recognise — folded lines, bare
LF line ends, an unusual URI or header value, any rule broken — and the caller hands the
message to ``strict_parser``. It never raises, so errors and their ``partial`` requests
stay those of the strict parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import bounded_int
from switchboard.sip.headers import LIST_HEADERS, header_elements
from switchboard.sip.message_types import (
    MAX_CSEQ,
    MAX_MESSAGE_SIZE,
    MAX_UINT32,
    SIP_VERSION,
    Message,
    Received,
    received_request,
    received_response,
)
from switchboard.sip.raw_headers import RawHeaders, index_lines
from switchboard.sip.recognisers import CSEQ, REQUEST_URI, address_params, is_contact, is_via
from switchboard.sip.strict_parser import NUMERIC_HEADERS, SIP_DATE, parse_rack

_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ([^\r\n]*)\Z")
_NUMERIC = {name.lower(): maximum for name, maximum in NUMERIC_HEADERS}
_SCALARS = (*_NUMERIC, "date", "rack")


def parse_well_formed(data: bytes) -> Message | None:
    """The message, validated, when it is plainly written; None sends it to the strict parser.

    ``data`` has its leading CRLFs removed and is at most ``MAX_MESSAGE_SIZE`` octets.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[:end].decode("utf-8", "surrogateescape")
    lines = head.split("\r\n")
    if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
        return None  # a bare LF ends a line somewhere, or a bare CR sits in one
    headers = index_lines(lines[1:])
    if headers is None or ('"' in head and not _lists_split(headers)):
        return None
    cseq_method = _valid_cseq_method(headers)
    if cseq_method is None or not _scalars_valid(headers):
        return None
    body, wire = _body(headers.first.get("content-length"), data, end + 4)
    if body is None:
        return None
    start = lines[0]
    if start.startswith("SIP/"):
        status = _STATUS_LINE.match(start)
        if status is None:
            return None
        received = Received(lines, headers, "", wire)
        return received_response(int(status.group(1)), status.group(2), body, received)
    parts = start.split(" ")
    if len(parts) != 3:
        return None
    method, uri_text, version = parts
    # §8.2: the CSeq method must be the request's; the URI must carry no headers (§19.1.1).
    if method != cseq_method or version != SIP_VERSION or REQUEST_URI.match(uri_text) is None:
        return None
    return received_request(method, body, Received(lines, headers, uri_text, wire))


def _lists_split(headers: RawHeaders) -> bool:
    """No list header has an unterminated quoted string where it is split at commas."""
    for key, value in headers.lines():
        if '"' in value and "," in value and key in LIST_HEADERS:
            try:
                header_elements(key, value)
            except ParseError:
                return False
    return True


def _valid_cseq_method(headers: RawHeaders) -> str | None:
    """The strict parser's rules for the headers every message has (§8.1.1), by recognisers.

    Returns the CSeq method when they hold, for the caller to compare with the request's
    (a method is a token: the CSeq recogniser checked it).
    """
    first = headers.first
    cseq = first.get("cseq")
    from_ = first.get("from")
    to = first.get("to")
    if cseq is None or from_ is None or to is None or "call-id" not in first:
        return None
    match = CSEQ.match(cseq)
    if match is None or int(match.group(1)) >= MAX_CSEQ:
        return None
    via = first.get("via")
    if via is None or not _all_elements(headers, "via", via, is_via):
        return None
    if address_params(from_) is None or address_params(to) is None:
        return None
    contact = first.get("contact")
    if contact is not None and not _all_elements(headers, "contact", contact, _is_contact):
        return None
    return match.group(2)


def _all_elements(
    headers: RawHeaders, key: str, first: str, recognised: Callable[[str], bool]
) -> bool:
    """Every element of a list header is recognised, and there is at least one."""
    if not headers.more and "," not in first:
        return recognised(first)  # one line, one element: the common case
    elements = headers.elements(key)
    return bool(elements) and all(recognised(e) for e in elements)


def _is_contact(value: str) -> bool:
    return is_contact(value, MAX_UINT32)


def _scalars_valid(headers: RawHeaders) -> bool:
    """Numbers, Date and RAck, so that reading them later can never raise."""
    first = headers.first
    for key in _SCALARS:
        value = first.get(key)
        if value is None:
            continue
        if key == "date":
            if not SIP_DATE.match(value):
                return False
        elif key == "rack":
            try:
                parse_rack(value)
            except ParseError:
                return False
        elif bounded_int(value, _NUMERIC[key]) is None:
            return False
    return True


def _body(length_text: str | None, data: bytes, start: int) -> tuple[bytes | None, bytes | None]:
    """The body (§18.3) and the octets to send back unchanged; ``(None, None)`` if invalid."""
    if length_text is None:
        return data[start:], None  # the whole datagram; serialising adds a Content-Length
    length = bounded_int(length_text, MAX_MESSAGE_SIZE)
    if length is None or start + length > len(data):
        return None, None
    if start + length == len(data):
        return data[start:], data
    return data[start : start + length], data[: start + length]  # extra octets ("dblreq")
