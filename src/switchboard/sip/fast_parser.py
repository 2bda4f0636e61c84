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

from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import WSP, bounded_int, is_token
from switchboard.sip.headers import (
    KNOWN_KEYS,
    LIST_HEADERS,
    SINGLE_HEADERS,
    header_elements,
    header_key,
)
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
from switchboard.sip.recognisers import CSEQ, REQUEST_URI, address_params, is_contact, is_via
from switchboard.sip.strict_parser import NUMERIC_HEADERS, SIP_DATE, parse_rack

_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ([^\r\n]*)\Z")
_NUMERIC = tuple((name.lower(), maximum) for name, maximum in NUMERIC_HEADERS)


def parse_well_formed(data: bytes) -> Message | None:
    """The message, validated, when it is plainly written; None sends it to the strict parser.

    ``data`` has its leading CRLFs removed and is at most ``MAX_MESSAGE_SIZE`` octets.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[:end].decode("utf-8", "surrogateescape")
    lines = head.split("\r\n")
    if head.count("\n") != len(lines) - 1:
        return None  # a bare LF ends a line somewhere
    # A folded line (§7.3.1) starts with SP or HT: _index finds no token before its colon.
    index = _index(lines)
    if index is None:
        return None
    cseq_method = _valid_cseq_method(index)
    if cseq_method is None or not _scalars_valid(index):
        return None
    body, wire = _body(index.get("content-length"), data, end + 4)
    if body is None:
        return None
    start = lines[0]
    if start.startswith("SIP/"):
        status = _STATUS_LINE.match(start)
        if status is None:
            return None
        received = Received(lines, index, "", wire)
        return received_response(int(status.group(1)), status.group(2), body, received)
    parts = start.split(" ")
    if len(parts) != 3:
        return None
    method, uri_text, version = parts
    # §8.2: the CSeq method must be the request's; the URI must carry no headers (§19.1.1).
    if method != cseq_method or version != SIP_VERSION or REQUEST_URI.match(uri_text) is None:
        return None
    return received_request(method, body, Received(lines, index, uri_text, wire))


def _index(lines: list[str]) -> dict[str, list[str]] | None:
    """Header values by key, in order, one per list element; None on a malformed line.

    The loop runs once per header line of every message: lookups are inlined on purpose.
    """
    index: dict[str, list[str]] = {}
    known = KNOWN_KEYS
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        key = known.get(name)
        if key is None:  # not a spelling from the table: the strict parser's checks
            name = name.rstrip(WSP)
            if not is_token(name):
                return None
            key = header_key(name)
        value = value.strip(WSP)
        if "," in value and key in LIST_HEADERS:
            if not _add_elements(index, key, value):
                return None
            continue
        values = index.get(key)
        if values is None:
            index[key] = [value]
        elif key in SINGLE_HEADERS:
            return None  # a duplicate (RFC 4475 "mcl01", "multi01")
        else:
            values.append(value)
    return index


def _add_elements(index: dict[str, list[str]], key: str, value: str) -> bool:
    """Add a list header's elements (none of them is a single header); False if malformed."""
    try:
        elements = header_elements(key, value)
    except ParseError:
        return False  # an unterminated quoted string
    if elements:
        index.setdefault(key, []).extend(elements)
    return True


def _valid_cseq_method(index: dict[str, list[str]]) -> str | None:
    """The strict parser's rules for the headers every message has (§8.1.1), by recognisers.

    Returns the CSeq method when they hold, for the caller to compare with the request's
    (a method is a token: the CSeq recogniser checked it).
    """
    cseq = index.get("cseq")
    via = index.get("via")
    from_ = index.get("from")
    to = index.get("to")
    if cseq is None or via is None or from_ is None or to is None or "call-id" not in index:
        return None
    match = CSEQ.match(cseq[0])
    if match is None or int(match.group(1)) >= MAX_CSEQ:
        return None
    for value in via:
        if not is_via(value):
            return None
    if address_params(from_[0]) is None or address_params(to[0]) is None:
        return None
    for value in index.get("contact", ()):
        if not is_contact(value, MAX_UINT32):
            return None
    return match.group(2)


def _scalars_valid(index: dict[str, list[str]]) -> bool:
    """Numbers, Date and RAck, so that reading them later can never raise."""
    for key, maximum in _NUMERIC:
        values = index.get(key)
        if values is not None and bounded_int(values[0], maximum) is None:
            return False
    date = index.get("date")
    if date is not None and not SIP_DATE.match(date[0]):
        return False
    rack = index.get("rack")
    if rack is not None:
        try:
            parse_rack(rack[0])
        except ParseError:
            return False
    return True


def _body(lengths: list[str] | None, data: bytes, start: int) -> tuple[bytes | None, bytes | None]:
    """The body (§18.3) and the octets to send back unchanged; ``(None, None)`` if invalid."""
    if lengths is None:
        return data[start:], None  # the whole datagram; serialising adds a Content-Length
    length = bounded_int(lengths[0], MAX_MESSAGE_SIZE)
    if length is None or start + length > len(data):
        return None, None
    if start + length == len(data):
        return data[start:], data
    return data[start : start + length], data[: start + length]  # extra octets ("dblreq")
