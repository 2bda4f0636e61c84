"""Cutting a TCP byte stream into SIP messages (RFC 3261 §18.3, RFC 5626 §3.5.1).

Rules:
- Over a stream, Content-Length is mandatory: a message without it is a framing error,
  and the connection should be closed.
- CRLF keep-alives between messages (``CRLFCRLF`` ping, ``CRLF`` pong) are consumed and
  reported, so the edge can answer a ping.
- A header section that grows past ``MAX_HEAD`` without ending is a framing error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchboard.sip.errors import ParseError

MAX_HEAD = 16384
MAX_BODY = 65535
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)[ \t]*$", re.I | re.M)


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A ``CRLFCRLF`` keep-alive; the answer is one ``CRLF``."""


class StreamFramer:
    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes | KeepAlivePing]:
        """Add bytes; return each complete message (as bytes) and keep-alive ping found."""
        self._buffer += data
        out: list[bytes | KeepAlivePing] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> bytes | KeepAlivePing | None:
        buf = self._buffer
        if buf.startswith(b"\r\n\r\n"):
            del buf[:4]
            return KeepAlivePing()
        while buf.startswith(b"\r\n") and len(buf) >= 4:
            del buf[:2]  # a pong or stray CRLF between messages (§7.5)
        if bytes(buf) in (b"\r\n", b"\r\n\r"):
            return None
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                raise ParseError("Header section too long")
            return None
        head = bytes(buf[:end])
        match = _CONTENT_LENGTH.search(head)
        if match is None:
            raise ParseError("Content-Length is required over a stream transport")
        length = int(match.group(1))
        if length > MAX_BODY:
            raise ParseError("Body too large", 513)
        total = end + 4 + length
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        return message
