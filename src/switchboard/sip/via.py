"""The Via header field (RFC 3261 §20.42, §18.2.1, RFC 3581 rport).

``SIP / 2.0 / UDP host:port ;params`` with LWS allowed around the slashes (§25.1,
RFC 4475 "wsinv"). The branch of an RFC 3261 element starts with the magic cookie
``z9hG4bK`` (§8.1.1.7); only such branches identify transactions (§17.2.3).
The sent-by port and an ``rport`` value (RFC 3581 §3: empty in a request, the source port
in a response) are ports: 1-65535, at most five digits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from switchboard.quick_init import quick_init
from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import (
    WSP,
    Params,
    bounded_int,
    is_token,
    parse_params,
    plain_params,
    split_top_level,
)
from switchboard.sip.recognisers import VIA_PARTS
from switchboard.sip.uri import _parse_hostport, format_host

MAGIC_COOKIE = "z9hG4bK"


@quick_init
@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def is_rfc3261(self) -> bool:
        branch = self.branch
        return branch is not None and branch.startswith(MAGIC_COOKIE)

    @property
    def sent_by(self) -> tuple[str, int]:
        default = 5061 if self.transport == "TLS" else 5060
        return self.host.lower(), self.port or default

    def with_params(self, params: Params) -> Via:
        return replace(self, params=params)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {format_host(self.host)}{port}{self.params.render()}"


def parse_via(text: str) -> Via:
    match = VIA_PARTS.match(text)
    if match is None:
        return parse_any_via(text)
    # A plainly written Via: the groups are the parts; only rport is left to check.
    transport, host, port, params_text = match.groups()
    params = plain_params(params_text)
    _check_rport(params)
    return Via(transport.upper(), host, int(port) if port else None, params)


def parse_any_via(text: str) -> Via:
    """``parse_via`` by the general rules alone (the reference for its fast path)."""
    protocol, sep, rest = text.strip(WSP).partition("/")
    version, sep2, rest = rest.partition("/")
    if not sep or not sep2 or protocol.strip(WSP).upper() != "SIP":
        raise ParseError("Malformed Via")
    if version.strip(WSP) != "2.0":
        raise ParseError("Unsupported SIP version in Via")
    rest = rest.lstrip(WSP)
    i = 0
    while i < len(rest) and rest[i] not in WSP:
        i += 1
    transport = rest[:i].upper()
    if not is_token(transport):
        raise ParseError("Malformed Via transport")
    sent_by, _, params_text = rest[i:].strip(WSP).partition(";")
    sent_by = sent_by.strip(WSP)
    if not sent_by:
        raise ParseError("Via without sent-by")
    host, port = _parse_hostport(sent_by.replace(" ", "").replace("\t", ""))
    params = parse_params(params_text)
    _check_rport(params)
    return Via(transport, host, port, params)


def _check_rport(params: Params) -> None:
    rport = params.get("rport")
    if rport and not bounded_int(rport, 65535):  # absent, flag or empty: nothing to check
        raise ParseError("Malformed Via rport")


def parse_via_list(values: list[str]) -> list[Via]:
    return [parse_via(v) for value in values for v in split_top_level(value, ",") if v.strip(WSP)]
