"""Header field names: canonical spelling, compact forms (§7.3.3) and which ones hold lists.

Names are case-insensitive (§7.3.1). Known names are canonicalised on parse; unknown
names are kept exactly as received, so that they are relayed verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.quick_init import quick_init
from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import WSP, is_token, split_top_level

COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Authentication-Info",
    "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date",
    "Error-Info", "Expires", "From", "In-Reply-To", "Max-Forwards", "MIME-Version",
    "Min-Expires", "Organization", "P-Asserted-Identity", "Priority", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "Reason", "Record-Route", "Reply-To", "Require",
    "Retry-After", "Route", "RSeq", "Server", "Subject", "Supported", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate", "Event", "Allow-Events",
    "Session-Expires", "Min-SE", "Refer-To", "Referred-By", "Path", "Privacy",
]  # fmt: skip
CANONICAL = {name.lower(): name for name in _KNOWN}
CANONICAL.update({short: long for short, long in COMPACT_FORMS.items()})

# Headers whose value may be a comma-separated list (§7.3.1); the parser splits them so
# that each Header carries one element.
LIST_HEADERS = frozenset(
    n.lower()
    for n in (
        "Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
        "Content-Encoding", "Allow-Events", "Path", "P-Asserted-Identity",
    )
)  # fmt: skip
# Headers that must appear at most once in a valid message (RFC 4475 §3.1.2.x).
SINGLE_HEADERS = frozenset(
    n.lower() for n in ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length",
                        "Content-Type", "Expires")
)  # fmt: skip


# The lookup key of every spelling a well-behaved peer sends (canonical, lower case, compact
# in both cases): a dictionary hit spares ``lower()`` and the token check per header line.
KNOWN_KEYS = {spelling: long.lower() for long in _KNOWN for spelling in (long, long.lower())}
KNOWN_KEYS.update(
    {c: long.lower() for short, long in COMPACT_FORMS.items() for c in (short, short.upper())}
)


def canonical_name(name: str) -> str:
    return CANONICAL.get(name.lower(), name)


def header_key(name: str) -> str:
    """The lower-cased canonical name that ``Header.key`` holds for a header called ``name``."""
    key = KNOWN_KEYS.get(name)
    return key if key is not None else canonical_name(name).lower()


@quick_init
@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: str
    # The lower-cased name, computed once: every header lookup compares it.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.name.lower())


def header_elements(key: str, value: str) -> list[str]:
    """The elements one header line contributes: a list header is split at top-level commas.

    ``value`` is already stripped. Empty list elements are dropped (``Allow: ,`` adds none).
    """
    if key in LIST_HEADERS and "," in value:
        return [e for raw in split_top_level(value, ",") if (e := raw.strip(WSP))]
    return [value]


def parse_header_lines(lines: list[str]) -> tuple[Header, ...]:
    """Unfolded header lines as ``Header`` objects, one per list element (§7.3.1)."""
    out: list[Header] = []
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.rstrip(WSP)
        if not colon or not is_token(name):
            raise ParseError(f"Malformed header line {line[:40]!r}")
        canonical = canonical_name(name)
        for element in header_elements(canonical.lower(), value.strip(WSP)):
            out.append(Header(canonical, element))
    return tuple(out)


_new_object = object.__new__
_set_name = Header.__dict__["name"].__set__
_set_value = Header.__dict__["value"].__set__
_set_key = Header.__dict__["key"].__set__


def known_header(name: str, value: str, key: str) -> Header:
    """``Header(name, value)`` for a caller that has ``key == name.lower()`` at hand.

    Building a received message's header tuple makes one per element; skipping the frozen
    dataclass's ``__init__``/``__post_init__`` halves the cost of each.
    """
    header = _new_object(Header)
    _set_name(header, name)
    _set_value(header, value)
    _set_key(header, key)
    return header
