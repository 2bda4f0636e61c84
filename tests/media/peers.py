"""A scriptable RTP peer on loopback for relay tests: it sends packets and records what
arrives, with arrival times."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from switchboard.media.rtp import RtpHeader, parse


@dataclass
class Received:
    time: float
    data: bytes
    source: tuple[str, int]

    @property
    def header(self) -> RtpHeader:
        return parse(self.data)

    @property
    def payload(self) -> bytes:
        return self.data[12:]


@dataclass
class RtpPeer(asyncio.DatagramProtocol):
    received: list[Received] = field(default_factory=list)
    transport: Any = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        loop = asyncio.get_running_loop()
        self.received.append(Received(loop.time(), data, (addr[0], addr[1])))
        self.arrived.set()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def send(self, packet: bytes, to: tuple[str, int]) -> None:
        self.transport.sendto(packet, to)

    async def wait_for(self, count: int, timeout: float = 2.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received

    def close(self) -> None:
        self.transport.close()


_OPEN: list[RtpPeer] = []


async def rtp_peer(port: int = 0, host: str = "127.0.0.1") -> RtpPeer:
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_datagram_endpoint(RtpPeer, local_addr=(host, port))
    _OPEN.append(peer)
    return peer


def close_all_peers() -> None:
    """Tests call this at teardown (pytest turns unclosed sockets into errors)."""
    while _OPEN:
        _OPEN.pop().close()


def packet(pt: int, seq: int, payload: bytes, *, ssrc: int = 0x1234, ts: int = 0) -> bytes:
    return RtpHeader(pt, seq, ts or seq * 160, ssrc).pack() + payload
