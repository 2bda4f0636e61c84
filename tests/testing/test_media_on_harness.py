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


def test_the_answering_terminal_takes_over_a_latch_its_losing_sibling_took() -> None:
    """A forked call: the losing terminal's 2xx crossed our CANCEL and it streams a few
    packets from its own port on the same IP before our BYE lands; the answering
    terminal's media, from its SDP's port, must still reach the caller. After the latch
    window a latch is final: nothing takes it over any more."""
    network = Network()
    answering, loser, late = ("10.0.0.2", 5000), ("10.0.0.2", 5002), ("10.0.0.2", 5004)

    async def main() -> dict[str, int]:
        ports = PortAllocator(20000, 20010, rng=random.Random(1))
        relay = MediaRelay("10.0.0.5", "10.0.0.5", ports, network=network)
        session = await relay.create_session()
        peers = {address: RtpPeer() for address in (PHONE, answering, loser, late)}
        for (host, port), peer in peers.items():
            network.bind(peer, host, port)
        session.a.set_media(LegMedia(PHONE, "PCMU", 0), PHONE[0])
        session.b.set_media(LegMedia(answering, "PCMU", 0), answering[0])
        session.bridge()
        peers[loser].send(packet(0, 1, b"\x01" * 160), session.b.local)  # latched: window
        await asyncio.sleep(0.02)
        peers[answering].send(packet(0, 2, b"\x02" * 160), session.b.local)  # takes over
        await asyncio.sleep(0.02)
        peers[loser].send(packet(0, 3, b"\x03" * 160), session.b.local)  # now refused
        await asyncio.sleep(11)  # past LATCH_WINDOW
        session.b.latched = late  # as if the window had latched elsewhere
        peers[answering].send(packet(0, 4, b"\x04" * 160), session.b.local)  # final now
        await asyncio.sleep(0.02)
        rejected = session.b.stats.rejected
        session.close()
        await asyncio.sleep(0.001)
        return {"rejected": rejected}

    result = clock.run(main())
    to_phone = [d.data[2:4] for d in network.log if d.destination == PHONE]
    assert to_phone == [b"\x00\x01", b"\x00\x02"]
    assert result["rejected"] == 2
