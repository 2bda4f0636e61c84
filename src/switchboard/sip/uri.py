"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), and any other absolute URI kept opaque.

Rules:
- The userinfo ends at the last ``@``: user parts may hold ``;``, ``?`` and ``:``
  (RFC 4475 §3.1.1.9, "semiuri"), host parts and parameters never hold ``@``.
- Escapes (``%XX``) are kept as received; ``unescape`` is for comparison only.
- IPv6 references keep their brackets in ``host`` (``[2001:db8::10]``).
- A URI with an unknown scheme parses as ``AbsoluteUri`` (a UAS answers it with 416).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from switchboard.quick_init import quick_init
from switchboard.sip.errors import ParseError
from switchboard.sip.grammar import Params, parse_params, plain_params
from switchboard.sip.recognisers import SIP_URI_PARTS

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-._]*[A-Za-z0-9_])?\.?\Z|[A-Za-z0-9]\Z")
_IPV6_REF = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_FORBIDDEN_IN_URI = re.compile(r'[ \t\r\n<>"]')


def unescape(text: str) -> str:
    """Undo ``%XX`` escapes for comparison (§19.1.4); invalid escapes stay as they are."""
    return unquote(text, errors="surrogateescape")


@quick_init
@dataclass(frozen=True, slots=True)
class SipUri:
    """``sip:user:password@host:port;params?headers``."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = field(default_factory=Params)
    headers: str | None = None
    scheme: str = "sip"

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        out.append(self.params.render())
        if self.headers is not None:
            out += ["?", self.headers]
        return "".join(out)

    @property
    def transport(self) -> str:
        value = self.params.get("transport")
        if value:
            return value.upper()
        return "TLS" if self.scheme == "sips" else "UDP"

    @property
    def host_port(self) -> tuple[str, int | None]:
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        return host, self.port

    def with_params(self, params: Params) -> SipUri:
        return replace(self, params=params)

    def without_headers(self) -> SipUri:
        return replace(self, headers=None)

    def equivalent(self, other: object) -> bool:
        """A practical subset of §19.1.4 comparison: scheme, user, host, port, transport."""
        if not isinstance(other, SipUri):
            return False
        return (
            self.scheme.lower() == other.scheme.lower()
            and unescape(self.user or "") == unescape(other.user or "")
            and self.host.lower() == other.host.lower()
            and self.port == other.port
            and self.transport == other.transport
        )


@dataclass(frozen=True, slots=True)
class TelUri:
    """``tel:+81-3-1234-5678;phone-context=...`` (RFC 3966)."""

    number: str
    params: Params = field(default_factory=Params)

    def __str__(self) -> str:
        return f"tel:{self.number}{self.params.render()}"


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme, kept opaque."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


_NO_PARAMS = Params()  # immutable, so one instance serves every URI without parameters


def parse_uri(text: str) -> Uri:
    """Parse an absolute URI; raise ``ParseError`` for anything that is not one."""
    match = SIP_URI_PARTS.match(text)
    if match is None:
        return parse_any_uri(text)
    # A plainly written SIP URI: the pattern's groups are the parts (a subset of §25.1).
    scheme, user, password, host, port, params = match.groups()
    return SipUri(
        host,
        user,
        password,
        int(port) if port else None,
        plain_params(params) if params else _NO_PARAMS,
        None,
        scheme.lower(),
    )


def parse_any_uri(text: str) -> Uri:
    """``parse_uri`` by the general rules alone (the reference its fast path must agree with)."""
    if not text or _FORBIDDEN_IN_URI.search(text):
        raise ParseError(f"Malformed URI {text[:60]!r}")
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.match(scheme):
        raise ParseError(f"Malformed URI {text[:60]!r}")
    lowered = scheme.lower()
    if lowered in ("sip", "sips"):
        return _parse_sip_uri(lowered, rest)
    if lowered == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise ParseError("Empty tel URI")
        return TelUri(number, parse_params(params))
    if not rest:
        raise ParseError(f"Malformed URI {text[:60]!r}")
    return AbsoluteUri(scheme, rest)


def _parse_sip_uri(scheme: str, rest: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        if not userinfo:
            raise ParseError("Empty user part in SIP URI")
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    rest, qmark, headers = rest.partition("?")
    hostport, _, params_text = rest.partition(";")
    host, port = _parse_hostport(hostport)
    params = parse_params(params_text) if params_text else Params()
    return SipUri(
        host=host,
        user=user,
        password=password,
        port=port,
        params=params,
        headers=headers if qmark else None,
        scheme=scheme,
    )


def _parse_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError("Unterminated IPv6 reference")
        host, tail = text[: end + 1], text[end + 1 :]
        if not _IPV6_REF.match(host):
            raise ParseError(f"Bad IPv6 reference {host!r}")
        if tail and not tail.startswith(":"):
            raise ParseError(f"Bad host {text!r}")
        port_text = tail[1:] if tail else None
    else:
        host, colon, port_text_raw = text.partition(":")
        port_text = port_text_raw if colon else None
        if not host or not _HOSTNAME.match(host):
            raise ParseError(f"Bad host {host[:60]!r}")
    if port_text is None:
        return host, None
    if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
        raise ParseError(f"Bad port {port_text[:10]!r}")
    return host, int(port_text)


def format_host(host: str) -> str:
    """Bracket a bare IPv6 address for use in a URI or Via."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
