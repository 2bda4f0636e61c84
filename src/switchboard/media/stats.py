"""Per-leg media counters (RFC 3550 §6.4.1 style): packets and bytes each way, loss from
sequence gaps, last packet time, and packets refused from unexpected sources."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class LegStats:
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    rejected: int = 0  # from a source other than the latched one
    lost: int = 0  # sequence numbers never seen (after the first packet)
    last_in: float | None = None  # loop time of the last packet received
    last_rtcp_in: float | None = None  # loop time of the last RTCP packet received
    _highest_seq: int | None = None

    def received(self, sequence: int, size: int, now: float) -> None:
        self.packets_in += 1
        self.bytes_in += size
        self.last_in = now
        highest = self._highest_seq
        if highest is None:
            self._highest_seq = sequence
            return
        delta = (sequence - highest) & 0xFFFF
        if 0 < delta < 0x8000:  # ahead (with wrap-around); anything else is late or repeated
            self.lost += delta - 1
            self._highest_seq = sequence
        elif self.lost:
            self.lost -= 1  # a late packet fills a gap counted before

    def snapshot(self) -> dict[str, float | int | None]:
        return {
            "packets_in": self.packets_in, "bytes_in": self.bytes_in,
            "packets_out": self.packets_out, "bytes_out": self.bytes_out,
            "rtcp_in": self.rtcp_in, "rtcp_out": self.rtcp_out,
            "rejected": self.rejected, "lost": self.lost, "last_in": self.last_in,
            "last_rtcp_in": self.last_rtcp_in,
        }  # fmt: skip
