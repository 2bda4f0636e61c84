"""Header field names: canonical spelling, compact forms (§7.3.3) and which ones hold lists.

Names are case-insensitive (§7.3.1). Known names are canonicalised on parse; unknown
names are kept exactly as received, so that they are relayed verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def canonical_name(name: str) -> str:
    return CANONICAL.get(name.lower(), name)


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: str
    # The lower-cased name, computed once: every header lookup compares it.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.name.lower())
