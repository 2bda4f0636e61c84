"""Lexical helpers shared by the header parsers (RFC 3261 §25.1).

Rules enforced here:
- LWS (``[*WSP CRLF] 1*WSP``) around separators is insignificant; folding has already been
  undone by the message parser, so only spaces and tabs remain.
- Separators inside a quoted-string (``"..."`` with ``\\``-quoted pairs) or inside ``<...>``
  never split a value.
- Parameter names are case-insensitive (§7.3.1); their values are kept as written.
- Every number from the network is read by ``bounded_int``/``parse_number``: ASCII digits
  only, at most ``MAX_DIGITS`` of them, then a range check. ``int()`` alone would accept
  any Unicode digit and raise ``ValueError`` (not ``ParseError``) past 4300 digits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from switchboard.quick_init import quick_init
from switchboard.sip.errors import ParseError

WSP = " \t"
# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


MAX_DIGITS = 20  # enough for any 64-bit value and a few leading zeros


def is_token(text: str) -> bool:
    return _TOKEN.match(text) is not None


def bounded_int(text: str, maximum: int) -> int | None:
    """``text`` as a decimal number in ``0..maximum``; None for anything else.

    ``[0-9]{1,MAX_DIGITS}``: the string tests say the same as that pattern (``isdigit``
    alone would take any Unicode digit, ``isascii`` rules those out) at half its cost, and
    every message pays it for Content-Length and Max-Forwards.
    """
    if not (0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= maximum else None


def parse_number(text: str, maximum: int, what: str) -> int:
    """``bounded_int`` for a field that must be valid: ``ParseError`` names ``what``."""
    value = bounded_int(text, maximum)
    if value is None:
        raise ParseError(f"Malformed {what}")
    return value


def split_top_level(text: str, separator: str) -> list[str]:
    """Split ``text`` on ``separator`` where it is outside quotes and angle brackets."""
    if '"' not in text and "<" not in text:
        return text.split(separator)  # the common case, nothing to protect
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == separator and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_quotes:
        raise ParseError("Unterminated quoted string")
    parts.append(text[start:])
    return parts


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted-string beginning at ``text[start] == '"'``.

    Returns the unescaped content and the index just past the closing quote.
    """
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise ParseError("Unterminated quoted string")


def quote(text: str) -> str:
    """Render ``text`` as a quoted-string, escaping ``"`` and ``\\`` (§25.1 quoted-pair)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@quick_init
@dataclass(frozen=True, slots=True)
class Params:
    """An ordered list of ``;name[=value]`` parameters with case-insensitive names."""

    items: tuple[tuple[str, str | None], ...] = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower()
        for k, v in self.items:
            if k.lower() == key:
                return v
        return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(k.lower() == key for k, _ in self.items)

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def with_param(self, name: str, value: str | None = None) -> Params:
        key = name.lower()
        kept = tuple((k, v) for k, v in self.items if k.lower() != key)
        return Params((*kept, (name, value)))

    def without(self, name: str) -> Params:
        key = name.lower()
        return Params(tuple((k, v) for k, v in self.items if k.lower() != key))

    def render(self) -> str:
        return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.items)


def plain_params(text: str) -> Params:
    """``parse_params`` for a list a recogniser matched (``recognisers``): ``;name[=value]``
    with no whitespace and no ``;`` inside a value, so splitting at ``;`` and ``=`` is exact.
    """
    items: list[tuple[str, str | None]] = []
    for part in text.split(";")[1:]:
        name, eq, value = part.partition("=")
        items.append((name, value if eq else None))
    return Params(tuple(items))


def parse_params(text: str) -> Params:
    """Parse ``;a=b ; c ;d="q v"`` (the text may begin with the first ``;`` or not).

    Quoted values keep their quotes, so that rendering gives back what was received.
    """
    items: list[tuple[str, str | None]] = []
    parts = split_top_level(text, ";")
    if parts and not parts[0].strip(WSP):
        parts = parts[1:]  # the text began with the first ";"
    for raw in parts:
        part = raw.strip(WSP)
        if not part:
            raise ParseError("Empty parameter")
        name, eq, value = part.partition("=")
        name = name.strip(WSP)
        if not is_token(name):
            raise ParseError(f"Bad parameter name {name!r}")
        if eq:
            value = value.strip(WSP)
            if value.startswith('"'):
                _, end = read_quoted(value, 0)
                if value[end:].strip(WSP):
                    raise ParseError(f"Bad parameter value for {name}")
            elif not value:
                raise ParseError(f"Empty value for parameter {name}")
            items.append((name, value))
        else:
            items.append((name, None))
    return Params(tuple(items))
