"""Cutting a TCP byte stream into SIP messages (RFC 3261 §18.3, RFC 5626 §3.5.1).

Rules:
- Over a stream, Content-Length is mandatory: a message without it is a framing error,
  and the connection should be closed.
- CRLF keep-alives between messages (``CRLFCRLF`` ping, ``CRLF`` pong) are consumed and
  reported, so the edge can answer a ping.
- A header section longer than ``MAX_HEAD`` and a body longer than ``MAX_BODY`` are framing
  errors, so the buffer never holds more than one message's worth plus the latest input.
- Content-Length is read with a length bound (``grammar.bounded_int``): a 5000-digit value
  is a framing error like a missing one, never a ``ValueError``.
- A framing error carries the header section when it was complete, so the edge can still
  answer the request (400 / 513) before it closes the connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import bounded_int

MAX_HEAD = 16384
MAX_BODY = 65535
# Any header line, not only the last one: ``$`` in MULTILINE mode sits before the LF, so
# the CR of the CRLF line end has to be matched explicitly.
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)[ \t]*\r?$", re.I | re.M)


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A ``CRLFCRLF`` keep-alive; the answer is one ``CRLF``."""


Framed = bytes | KeepAlivePing


class FramingError(ParseError):
    """The stream cannot be cut further; the connection must be closed.

    ``head``: the header section (with its empty line) of the message that broke the
    framing, when it was complete. ``framed``: what the same ``feed`` cut before the error.
    """

    def __init__(self, reason: str, status: int = 400, head: bytes | None = None) -> None:
        super().__init__(reason, status)
        self.head = head
        self.framed: list[Framed] = []


class StreamFramer:
    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Framed]:
        """Add bytes; return each complete message (as bytes) and keep-alive ping found."""
        self._buffer += data
        out: list[Framed] = []
        while True:
            try:
                item = self._next()
            except FramingError as exc:
                exc.framed = out
                raise
            if item is None:
                return out
            out.append(item)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _next(self) -> Framed | None:
        buf = self._buffer
        if buf.startswith(b"\r\n\r\n"):
            del buf[:4]
            return KeepAlivePing()
        while buf.startswith(b"\r\n") and len(buf) >= 4:
            del buf[:2]  # a pong or stray CRLF between messages (§7.5)
        if len(buf) < 4 and bytes(buf) in (b"\r\n", b"\r\n\r"):  # a ping still arriving
            return None
        end = buf.find(b"\r\n\r\n")
        if end > MAX_HEAD or (end < 0 and len(buf) > MAX_HEAD):
            raise FramingError("Header section too long")
        if end < 0:
            return None
        head = bytes(buf[: end + 4])
        length = self._content_length(head)
        total = end + 4 + length
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        return message

    @staticmethod
    def _content_length(head: bytes) -> int:
        match = _CONTENT_LENGTH.search(head)
        if match is None:
            raise FramingError("Content-Length is required over a stream transport", head=head)
        length = bounded_int(match.group(1).decode("latin-1"), 2**63)
        if length is None:
            raise FramingError("Malformed Content-Length", head=head)
        if length > MAX_BODY:
            raise FramingError("Body too large", 513, head=head)
        return length
