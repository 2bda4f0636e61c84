"""SDP session descriptions (RFC 4566): parse and serialise.

Rules:
- Lines are ``<type>=<value>``; types must come in the order of §5 for the session part
  (v, o, s, …) and each media section starts at ``m=``. We check what matters to audio
  offer/answer (v=0 first, one o=, one s=, m= syntax, c= present for every active
  stream) and keep every other line verbatim so that re-serialising loses nothing.
- ``SdpError`` is raised for anything that is not SDP; the SIP layer answers it with 488
  or 400 depending on where it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from switchboard.sip.errors import SipError


class SdpError(SipError):
    pass


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
        return int(value) if value and value.isdigit() else None

    def rtpmap(self) -> dict[str, tuple[str, int, int]]:
        """Payload type → (encoding name, clock rate, channels)."""
        out: dict[str, tuple[str, int, int]] = {}
        for value in self.attribute_values("rtpmap"):
            pt, _, spec = value.partition(" ")
            parts = spec.strip().split("/")
            if len(parts) >= 2 and parts[1].isdigit():
                channels = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
                out[pt] = (parts[0], int(parts[1]), channels)
        return out

    def fmtp(self, payload_type: str) -> str | None:
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            if pt == payload_type:
                return params.strip()
        return None


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


def parse_sdp(data: bytes) -> SessionDescription:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    origin: Origin | None = None
    session: dict[str, object] = {"s": None, "c": None, "t": "0 0"}
    session_attrs: list[tuple[str, str | None]] = []
    session_other: list[str] = []
    media: list[dict[str, object]] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"Malformed SDP line {line[:30]!r}")
        kind, value = line[0], line[2:]
        if kind == "m":
            media.append(_media_header(value))
            continue
        target = media[-1] if media else None
        if kind == "a":
            name, colon, attr_value = value.partition(":")
            pair = (name, attr_value if colon else None)
            if target is None:
                session_attrs.append(pair)
            else:
                target["attributes"].append(pair)  # type: ignore[attr-defined]
        elif kind == "c":
            _check_connection(value)
            if target is None:
                session["c"] = value
            else:
                target["connection"] = value
        elif kind == "o" and target is None:
            if origin is not None:
                raise SdpError("Duplicate o= line")
            origin = _origin(value)
        elif kind in ("s", "t") and target is None:
            session[kind] = value
        elif target is None:
            session_other.append(line)
        else:
            target["other"].append(line)  # type: ignore[attr-defined]
    if origin is None or session["s"] is None:
        raise SdpError("SDP without o= or s= line")
    parsed = tuple(_media(m) for m in media)
    for m in parsed:
        if m.port != 0 and m.connection is None and session["c"] is None:
            raise SdpError("Active media stream without a c= line")
    return SessionDescription(
        origin=origin,
        session_name=str(session["s"]),
        connection=session["c"] if isinstance(session["c"], str) else None,
        timing=str(session["t"]),
        attributes=tuple(session_attrs),
        media=parsed,
        other=tuple(session_other),
    )


def _origin(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6 or not parts[2].isdigit():
        raise SdpError("Malformed o= line")
    return Origin(parts[0], parts[1], int(parts[2]), parts[5], parts[3], parts[4])


def _check_connection(value: str) -> None:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError("Malformed c= line")


def _media_header(value: str) -> dict[str, object]:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError("Malformed m= line")
    port_text, _, count = parts[1].partition("/")
    if not port_text.isdigit() or int(port_text) > 65535 or (count and not count.isdigit()):
        raise SdpError("Malformed m= port")
    return {
        "media": parts[0],
        "port": int(port_text),
        "port_count": int(count) if count else None,
        "proto": parts[2],
        "formats": tuple(parts[3:]),
        "connection": None,
        "attributes": [],
        "other": [],
    }


def _media(m: dict[str, object]) -> Media:
    return Media(
        media=str(m["media"]),
        port=int(str(m["port"])),
        proto=str(m["proto"]),
        formats=m["formats"],  # type: ignore[arg-type]
        connection=m["connection"] if isinstance(m["connection"], str) else None,
        attributes=tuple(m["attributes"]),  # type: ignore[call-overload]
        other=tuple(m["other"]),  # type: ignore[call-overload]
        port_count=m["port_count"] if isinstance(m["port_count"], int) else None,
    )
