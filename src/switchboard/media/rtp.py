"""RTP packets (RFC 3550 §5.1), read and rewritten in place, without copying payloads.

The relay's hot path looks at three fields only: the payload type (to translate G.711 or
map telephone-event), the sequence number (loss counting) and the marker bit. Everything
else travels untouched when both legs use the same codec (SSRC, timestamps, extensions).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!BBHII")
VERSION = 2


@dataclass(frozen=True, slots=True)
class RtpHeader:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool = False

    def pack(self) -> bytes:
        return HEADER.pack(
            VERSION << 6, (0x80 if self.marker else 0) | self.payload_type,
            self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc,
        )  # fmt: skip


def is_rtp(packet: bytes) -> bool:
    """Version 2 and long enough for a fixed header (RFC 3550 §A.1 validity check)."""
    return len(packet) >= 12 and packet[0] >> 6 == VERSION


def payload_type(packet: bytes) -> int:
    return packet[1] & 0x7F


def sequence(packet: bytes) -> int:
    return (packet[2] << 8) | packet[3]


def payload_offset(packet: bytes) -> int:
    """Where the payload starts: after CSRCs and the header extension (RFC 3550 §5.3.1)."""
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10 and len(packet) >= offset + 4:
        offset += 4 + 4 * ((packet[offset + 2] << 8) | packet[offset + 3])
    return offset


def parse(packet: bytes) -> RtpHeader:
    _, second, seq, ts, ssrc = HEADER.unpack_from(packet)
    return RtpHeader(second & 0x7F, seq, ts, ssrc, bool(second & 0x80))
