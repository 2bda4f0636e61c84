"""A received header section indexed by name, values kept as the text received (§7.3).

Rules:
- ``index_lines`` reads unfolded lines: ``name ":" value``, the name a token (or a known
  spelling), the value stripped of SP/HT. It returns None for a line that breaks that, and
  for a second occurrence of a header that must appear once (``SINGLE_HEADERS``), so that
  the strict parser rejects the message with its own reason.
- A list header's line is split into elements only when its elements are asked for
  (``get``, ``get_all``, ``elements``), with the same rules as ``headers.header_elements``:
  values read here are the values of the ``Header`` tuple, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

from switchboard.sip.grammar import WSP, is_token
from switchboard.sip.headers import (
    CANONICAL,
    KNOWN_KEYS,
    LIST_HEADERS,
    SINGLE_HEADERS,
    Header,
    canonical_name,
    header_elements,
    header_key,
    known_header,
)


class RawHeaders:
    """``first``: each key's first line value; ``more``: later lines of a key already seen."""

    __slots__ = ("first", "more")

    def __init__(self, first: dict[str, str], more: list[tuple[str, str]]) -> None:
        self.first = first
        self.more = more

    def __contains__(self, key: str) -> bool:
        return key in self.first

    def get(self, key: str) -> str | None:
        """The first element of header ``key`` (a lower-cased canonical name)."""
        value = self.first.get(key)
        if value is not None and "," in value and key in LIST_HEADERS:
            elements = self.elements(key)
            return elements[0] if elements else None
        return value

    def elements(self, key: str) -> list[str]:
        """Every element of header ``key``, in order (§7.3.1)."""
        value = self.first.get(key)
        if value is None:
            return []
        values = [value, *(v for k, v in self.more if k == key)] if self.more else [value]
        if key not in LIST_HEADERS:
            return values
        return [e for v in values for e in header_elements(key, v)]

    def lines(self) -> Iterator[tuple[str, str]]:
        """Every ``(key, value)`` line, the first of each key first."""
        yield from self.first.items()
        yield from self.more


def index_lines(lines: list[str]) -> RawHeaders | None:
    """Index header lines; None when one is malformed or a single header is repeated.

    The loop runs once per header line of every message: lookups are inlined on purpose.
    """
    first: dict[str, str] = {}
    more: list[tuple[str, str]] = []
    known = KNOWN_KEYS
    for line in lines:
        name, colon, value = line.partition(":")
        key = known.get(name)
        if key is None or not colon:  # not a spelling from the table: the strict checks
            name = name.rstrip(WSP)
            if not colon or not is_token(name):
                return None  # also a folded line (§7.3.1): it starts with SP or HT
            key = header_key(name)
        if key in first:
            if key in SINGLE_HEADERS:
                return None  # a duplicate (RFC 4475 "mcl01", "multi01")
            more.append((key, value.strip(WSP)))
        else:
            first[key] = value.strip(WSP)
    return RawHeaders(first, more)


def index_own_lines(lines: list[str]) -> RawHeaders:
    """Index header lines this process wrote (a message it built, held as its octets):
    they were valid when built, so nothing is refused or checked again."""
    first: dict[str, str] = {}
    more: list[tuple[str, str]] = []
    for line in lines:
        name, _, value = line.partition(":")
        key = header_key(name.rstrip(WSP))
        if key in first:
            more.append((key, value.strip(WSP)))
        else:
            first[key] = value.strip(WSP)
    return RawHeaders(first, more)


def header_tuple(lines: list[str]) -> tuple[Header, ...]:
    """The ``Header`` tuple of lines ``index_lines`` accepted.

    The same tuple as ``headers.parse_header_lines`` gives, without its checks: the lines
    passed them when they were indexed.
    """
    out: list[Header] = []
    for line in lines:
        name, _, value = line.partition(":")
        key = KNOWN_KEYS.get(name)
        if key is None:
            canonical = canonical_name(name.rstrip(WSP))
            key = canonical.lower()
        else:
            # a compact form's long name may be one we do not otherwise know ("a":
            # Accept-Contact): its spelling comes from the compact form
            canonical = CANONICAL.get(key) or canonical_name(name)
        value = value.strip(WSP)
        if "," in value and key in LIST_HEADERS:
            out.extend(known_header(canonical, e, key) for e in header_elements(key, value))
        else:
            out.append(known_header(canonical, value, key))
    return tuple(out)
