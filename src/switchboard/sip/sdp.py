"""SDP session descriptions (RFC 4566): parse and serialise.

Rules:
- Lines are ``<type>=<value>``; types must come in the order of §5 for the session part
  (v, o, s, …) and each media section starts at ``m=``. We check what matters to audio
  offer/answer (v=0 first, one o=, one s=, m= syntax, c= present for every active
  stream) and keep every other line verbatim so that re-serialising loses nothing.
- Numbers are read with ``grammar.bounded_int`` (ASCII digits, length and range bound): a
  bad o= version or m= port is an ``SdpError``, a bad ptime or rtpmap value is ignored.
- ``SdpError`` is raised for anything that is not SDP; the SIP layer answers it with 488
  or 400 depending on where it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from switchboard.quick_init import quick_init
from switchboard.sip.errors import SipError
from switchboard.sip.grammar import bounded_int

MAX_PTIME = 1000  # ms; RFC 4566 §6 ptime, far above any codec's packet
MAX_CLOCK_RATE = 2**32 - 1
MAX_VERSION = 2**64 - 1  # o= sess-version: "a numeric string", NTP-based in practice


class SdpError(SipError):
    pass


@quick_init
@dataclass(frozen=True, slots=True)
class Origin:
    username: str
    session_id: str
    session_version: int
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@quick_init
@dataclass(frozen=True, slots=True)
class Media:
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: str | None = None
    attributes: tuple[tuple[str, str | None], ...] = ()
    other: tuple[str, ...] = ()  # i=, b=, k= lines kept verbatim
    port_count: int | None = None

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [v for k, v in self.attributes if k == name and v is not None]

    @property
    def direction(self) -> str:
        for key, _ in self.attributes:
            if key in ("sendrecv", "sendonly", "recvonly", "inactive"):
                return key
        return "sendrecv"

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        return bounded_int(value, MAX_PTIME) if value else None

    def rtpmap(self) -> dict[str, tuple[str, int, int]]:
        """Payload type → (encoding name, clock rate, channels)."""
        out: dict[str, tuple[str, int, int]] = {}
        for value in self.attribute_values("rtpmap"):
            pt, _, spec = value.partition(" ")
            parts = spec.strip().split("/")
            rate = bounded_int(parts[1], MAX_CLOCK_RATE) if len(parts) >= 2 else None
            channels = bounded_int(parts[2], 255) if len(parts) > 2 else 1
            if rate is not None and channels is not None:
                out[pt] = (parts[0], rate, channels)
        return out

    def fmtp(self, payload_type: str) -> str | None:
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            if pt == payload_type:
                return params.strip()
        return None


@quick_init
@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    connection: str | None = None
    timing: str = "0 0"
    attributes: tuple[tuple[str, str | None], ...] = ()
    media: tuple[Media, ...] = ()
    other: tuple[str, ...] = field(default=())

    def __bytes__(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        lines += list(self.other)
        if self.connection:
            lines.append(f"c={self.connection}")
        lines.append(f"t={self.timing}")
        lines += [_attr(k, v) for k, v in self.attributes]
        for m in self.media:
            port = f"{m.port}/{m.port_count}" if m.port_count else str(m.port)
            lines.append(f"m={m.media} {port} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                lines.append(f"c={m.connection}")
            lines += list(m.other)
            lines += [_attr(k, v) for k, v in m.attributes]
        return ("\r\n".join(lines) + "\r\n").encode()

    def connection_address(self, media: Media) -> str | None:
        """The unicast address of a stream (§5.7: media-level c= overrides session)."""
        conn = media.connection or self.connection
        if conn is None:
            return None
        parts = conn.split()
        return parts[2].split("/")[0] if len(parts) == 3 else None

    def with_version(self, version: int) -> SessionDescription:
        return replace(self, origin=replace(self.origin, session_version=version))


def _attr(key: str, value: str | None) -> str:
    return f"a={key}" if value is None else f"a={key}:{value}"


@dataclass(slots=True)
class _MediaDraft:
    """A media section while its lines are being read."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def build(self) -> Media:
        return Media(
            self.media,
            self.port,
            self.proto,
            self.formats,
            self.connection,
            tuple(self.attributes),
            tuple(self.other),
            self.port_count,
        )


@dataclass(slots=True)
class _SessionDraft:
    origin: Origin | None = None
    session_name: str | None = None
    connection: str | None = None
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    media: list[_MediaDraft] = field(default_factory=list)


def parse_sdp(data: bytes) -> SessionDescription:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    draft = _SessionDraft()
    for line in lines[1:]:
        _read_line(draft, line)
    if draft.origin is None or draft.session_name is None:
        raise SdpError("SDP without o= or s= line")
    media = tuple(m.build() for m in draft.media)
    for m in media:
        if m.port != 0 and m.connection is None and draft.connection is None:
            raise SdpError("Active media stream without a c= line")
    return SessionDescription(
        origin=draft.origin,
        session_name=draft.session_name,
        connection=draft.connection,
        timing=draft.timing,
        attributes=tuple(draft.attributes),
        media=media,
        other=tuple(draft.other),
    )


def _read_line(draft: _SessionDraft, line: str) -> None:
    if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
        raise SdpError(f"Malformed SDP line {line[:30]!r}")
    kind, value = line[0], line[2:]
    if kind == "m":
        draft.media.append(_media_header(value))
        return
    section = draft.media[-1] if draft.media else None
    if kind == "a":
        name, colon, attr_value = value.partition(":")
        pair = (name, attr_value if colon else None)
        (section.attributes if section else draft.attributes).append(pair)
    elif kind == "c":
        _check_connection(value)
        if section is None:
            draft.connection = value
        else:
            section.connection = value
    elif section is not None:
        section.other.append(line)
    elif kind == "o":
        if draft.origin is not None:
            raise SdpError("Duplicate o= line")
        draft.origin = _origin(value)
    elif kind == "s":
        draft.session_name = value
    elif kind == "t":
        draft.timing = value
    else:
        draft.other.append(line)


def _origin(value: str) -> Origin:
    parts = value.split()
    version = bounded_int(parts[2], MAX_VERSION) if len(parts) == 6 else None
    if version is None:
        raise SdpError("Malformed o= line")
    return Origin(parts[0], parts[1], version, parts[5], parts[3], parts[4])


def _check_connection(value: str) -> None:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError("Malformed c= line")


def _media_header(value: str) -> _MediaDraft:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError("Malformed m= line")
    port_text, _, count = parts[1].partition("/")
    port = bounded_int(port_text, 65535)
    port_count = bounded_int(count, 65535) if count else None
    if port is None or (count and port_count is None):
        raise SdpError("Malformed m= port")
    return _MediaDraft(parts[0], port, parts[2], tuple(parts[3:]), port_count)
