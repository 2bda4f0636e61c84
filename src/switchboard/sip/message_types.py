"""SIP requests and responses as values, and their serialisation (RFC 3261 §7).

Rules:
- Messages are immutable. ``dataclasses.replace`` and ``with_headers`` give a new message.
- Typed views (CSeq, Via, From, To) are parsed on first access and memoised in ``_parsed``:
  the layers above ask for the same fields many times per message.
- A message the fast parser read keeps what it received (``Received``): the header lines,
  their values by name (``RawHeaders``), the Request-URI text and the octets on the wire. Its
  ``headers`` tuple and ``uri`` are built from them on first read, and ``bytes()`` gives the
  received octets back while the message is unchanged. Any change goes through the
  constructor, which leaves ``_received`` empty: such a message is serialised from its parts.
- Serialising from parts always writes one ``Content-Length`` computed from the body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from switchboard.quick_init import quick_init
from switchboard.sip.address import Address, parse_address
from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import WSP, is_token, parse_number
from switchboard.sip.headers import Header, canonical_name, header_key, known_header
from switchboard.sip.raw_headers import RawHeaders, header_tuple, index_own_lines
from switchboard.sip.uri import Uri, parse_uri
from switchboard.sip.via import Via, parse_via

SIP_VERSION = "SIP/2.0"
MAX_CSEQ = 2**31  # §8.1.1.5: "MUST be less than 2**31"
MAX_MESSAGE_SIZE = 65535
MAX_UINT32 = 2**32 - 1  # delta-seconds (§25.1 via §20.19) and RSeq (RFC 3262 §7.1)


@quick_init
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


class Received:
    """What the fast parser kept of a message, already validated.

    ``lines`` are the lines of the header section, the start line first; ``headers`` their
    values by name, exactly the values the ``headers`` tuple will hold. ``wire`` is None when
    the received octets cannot be sent back as they are (no Content-Length: serialising
    adds one).
    """

    __slots__ = ("headers", "lines", "uri_text", "wire")

    def __init__(
        self, lines: list[str], headers: RawHeaders, uri_text: str, wire: bytes | None
    ) -> None:
        self.lines = lines
        self.headers = headers
        self.uri_text = uri_text
        self.wire = wire


class _HeldOctets(Received):
    """``Received`` for a message this process built and now holds as its serialisation
    (``as_octets``): the octets are shared with the built message, and the index of its
    lines is made on the first read, which a held message seldom gets (a retransmission
    sends the octets)."""

    __slots__ = ()

    def __init__(self, wire: bytes) -> None:
        self.wire = wire  # the other slots are filled on the first read

    def __getattr__(self, name: str) -> object:  # a slot not filled yet
        if name not in ("lines", "headers", "uri_text"):
            raise AttributeError(name)
        wire = self.wire
        assert wire is not None
        lines = wire[: wire.index(b"\r\n\r\n")].decode("utf-8", "surrogateescape").split("\r\n")
        self.lines = lines
        self.headers = index_own_lines(lines[1:])
        start = lines[0]
        self.uri_text = "" if start.startswith("SIP/") else start.split(" ")[1]
        return getattr(self, name)


class _MessageMixin:
    """Header access shared by requests and responses."""

    __slots__ = ()
    headers: tuple[Header, ...]
    body: bytes
    _parsed: dict[str, object]
    _received: Received | None

    def get(self, name: str) -> str | None:
        key = header_key(name)
        received = self._received
        if received is not None:
            return received.headers.get(key)
        for h in self.headers:
            if h.key == key:
                return h.value
        return None

    def get_all(self, name: str) -> list[str]:
        key = header_key(name)
        received = self._received
        if received is not None:
            return received.headers.elements(key)
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


@quick_init
@dataclass(frozen=True, slots=True)
class Request(_MessageMixin):
    method: str
    uri: Uri
    headers: tuple[Header, ...]
    body: bytes = b""
    _parsed: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)
    _received: Received | None = field(default=None, init=False, repr=False, compare=False)

    def __bytes__(self) -> bytes:
        received = self._received
        if received is not None and received.wire is not None:
            return received.wire
        return _serialised(self, f"{self.method} {self.uri} {SIP_VERSION}")

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
    _received: Received | None = field(default=None, init=False, repr=False, compare=False)

    def __bytes__(self) -> bytes:
        received = self._received
        if received is not None and received.wire is not None:
            return received.wire
        return _serialised(self, f"{SIP_VERSION} {self.status} {self.reason}")

    def with_headers(self, headers: Iterable[Header]) -> Response:
        return replace(self, headers=tuple(headers))

    @property
    def first_line(self) -> str:
        return f"{self.status} {self.reason}"


Message = Request | Response


class _FilledOnFirstRead:
    """A dataclass slot that a received message fills from ``Received`` when first read.

    The constructor sets the slot as usual, so built and replaced messages never call
    ``fill``; ``received_request``/``received_response`` leave it unset, and only they set
    ``_received``, which ``fill`` reads. Wrapping the slot
    keeps ``Request``/``Response`` plain frozen dataclasses to their users (constructor,
    ``replace``, equality and hashing unchanged).
    """

    def __init__(self, slot: Any, fill: Callable[[Any], object]) -> None:
        self._slot = slot
        self._fill = fill

    def __get__(self, instance: Any, owner: type | None = None) -> object:
        if instance is None:
            return self
        try:
            return self._slot.__get__(instance, owner)
        except AttributeError:  # an unset slot: a received message read for the first time
            value = self._fill(instance._received)
            self._slot.__set__(instance, value)
            return value

    def __set__(self, instance: object, value: object) -> None:
        self._slot.__set__(instance, value)


def _fill_headers(received: Received) -> tuple[Header, ...]:
    return header_tuple(received.lines[1:])


def _fill_uri(received: Received) -> Uri:
    return parse_uri(received.uri_text)


def _fill_on_first_read(cls: type, name: str, fill: Callable[[Any], object]) -> None:
    setattr(cls, name, _FilledOnFirstRead(cls.__dict__[name], fill))


_fill_on_first_read(Request, "headers", _fill_headers)
_fill_on_first_read(Response, "headers", _fill_headers)
_fill_on_first_read(Request, "uri", _fill_uri)


def received_request(method: str, body: bytes, received: Received) -> Request:
    """A request whose URI and header tuple are parsed on first read (``Received``)."""
    message = object.__new__(Request)
    _set = object.__setattr__
    _set(message, "method", method)
    _set(message, "body", body)
    _set(message, "_parsed", {})
    _set(message, "_received", received)
    return message


def received_response(status: int, reason: str, body: bytes, received: Received) -> Response:
    """A response whose header tuple is parsed on first read (``Received``)."""
    message = object.__new__(Response)
    _set = object.__setattr__
    _set(message, "status", status)
    _set(message, "reason", reason)
    _set(message, "body", body)
    _set(message, "_parsed", {})
    _set(message, "_received", received)
    return message


def as_received(message: Request | Response) -> Request | Response | None:
    """A received message again as it came: its octets' index, nothing parsed from it yet
    (what reading it built is left behind); None for a built message."""
    received = message._received
    if received is None:
        return None
    if isinstance(message, Request):
        return received_request(message.method, message.body, received)
    return received_response(message.status, message.reason, message.body, received)


def as_octets(message: Request | Response) -> Request | Response:
    """The message held as its octets (``message.held_as_wire``): a received one as it came
    (``as_received``), a built one as its serialisation, shared and indexed on first read."""
    copy = as_received(message)
    if copy is not None:
        return copy
    held = _HeldOctets(bytes(message))
    if isinstance(message, Request):
        request = received_request(message.method, message.body, held)
        # the URI object itself, a few objects: one that did not survive a round trip
        # through its text (a hand-built one) is never read back from the octets
        object.__setattr__(request, "uri", message.uri)
        return request
    return received_response(message.status, message.reason, message.body, held)


def _serialised(message: Request | Response, start_line: str) -> bytes:
    """Serialise once: a message is immutable, and retransmissions (§17.1) send it again."""
    cached = message._parsed.get("wire")
    if isinstance(cached, bytes):
        return cached
    message._parsed["wire"] = wire = serialise(start_line, message.headers, message.body)
    return wire


def serialise(start_line: str, headers: tuple[Header, ...], body: bytes) -> bytes:
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
    """Build a header tuple from ``(name, value)`` pairs, canonicalising names (every
    message we build: ``known_header`` skips the frozen dataclass's slower constructor)."""
    built = []
    for name, value in pairs:
        canonical = canonical_name(name)
        built.append(known_header(canonical, value, canonical.lower()))
    return tuple(built)
