"""The RTP relay on the in-memory network and virtual time: pacing and latching asserted
to the packet, with no sleeping in real time."""

from __future__ import annotations

import asyncio
import random

import pytest

from switchboard.media.ports import PortAllocator
from switchboard.media.relay import LegMedia, MediaRelay
from switchboard.testing import clock
from switchboard.testing.network import Network
from tests.media.peers import RtpPeer, packet

PHONE, FAR, STRANGER = ("10.0.0.1", 4000), ("10.0.0.2", 5000), ("10.0.0.66", 6000)


def test_ringback_leaves_every_20_ms_until_the_bridge_then_media_flows_from_peers_only() -> None:
    network = Network()

    async def main() -> None:
        ports = PortAllocator(20000, 20010, rng=random.Random(1))
        relay = MediaRelay("10.0.0.5", "10.0.0.5", ports, network=network)
        session = await relay.create_session()
        peers = {address: RtpPeer() for address in (PHONE, FAR, STRANGER)}
        for (host, port), peer in peers.items():
            network.bind(peer, host, port)
        session.a.set_media(LegMedia(PHONE, "PCMU", 0), PHONE[0])
        session.b.set_media(LegMedia(FAR, "PCMU", 0), FAR[0])
        session.start_ringback("a")
        await asyncio.sleep(1.01)
        session.bridge()
        peers[STRANGER].send(packet(0, 1, b"\xff" * 160), session.a.local)
        peers[PHONE].send(packet(0, 2, b"\x7e" * 160), session.a.local)
        await asyncio.sleep(0.1)
        session.close()
        await asyncio.sleep(0.001)  # sockets close a loop iteration later, then ports return
        assert ports.in_use == 0

    clock.run(main())
    to_phone = [d.time for d in network.log if d.destination == PHONE]
    assert to_phone == pytest.approx([n * 0.02 for n in range(51)])  # 0 s to 1.00 s
    to_far = [d.data for d in network.log if d.destination == FAR]
    assert [packet_[2:4] for packet_ in to_far] == [b"\x00\x02"]  # the phone's, not the stranger's
