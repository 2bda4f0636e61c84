"""The relay's pool of pre-bound port pairs (``MediaRelay.start``): sessions made without
waiting for the loop, every pair of the range still a call's, fresh pairs only, nothing
left open by ``close``."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from switchboard.media.ports import PortAllocator, PortsExhaustedError
from switchboard.media.relay import POOL_PAIRS, LegMedia, MediaRelay, MediaSession
from switchboard.testing import clock
from switchboard.testing.network import Network
from tests.media.peers import RtpPeer, close_all_peers, packet, rtp_peer

PHONE, FAR, STRANGER = ("10.0.0.1", 4000), ("10.0.0.2", 5000), ("10.0.0.66", 6000)


@pytest.fixture(autouse=True)
async def _close_peers() -> AsyncIterator[None]:
    yield
    close_all_peers()
    await asyncio.sleep(0)


def _made_at_once(relay: MediaRelay) -> MediaSession | None:
    """The session if ``create_session`` finished without giving the loop a turn."""
    making = relay.create_session()
    try:
        making.send(None)
    except StopIteration as done:
        session: MediaSession = done.value
        return session
    making.close()  # it waited for the loop
    return None


async def test_a_started_relay_makes_a_session_from_bound_pairs_without_waiting() -> None:
    ports = PortAllocator(44000, 44400)
    relay = MediaRelay("127.0.0.1", "127.0.0.1", ports)
    relay.start()
    await asyncio.sleep(0.01)
    assert ports.pooled == 0  # nothing is bound before the first call asks
    first = await relay.create_session()
    await asyncio.sleep(0.01)
    assert (ports.pooled, ports.in_use) == (POOL_PAIRS, 2)  # pooled pairs are no call's
    first.close()
    await asyncio.sleep(0.01)
    session = _made_at_once(relay)
    assert session is not None and ports.in_use == 2
    phone, far = await rtp_peer(), await rtp_peer()
    session.a.set_media(LegMedia(phone.address, "PCMU", 0))
    session.b.set_media(LegMedia(far.address, "PCMU", 0))
    session.bridge()
    phone.send(packet(0, 1, b"\xff" * 160), session.a.local)
    (got,) = await far.wait_for(1)  # the pooled sockets are really bound and relaying
    assert got.source == session.b.local
    await asyncio.sleep(0.01)
    assert ports.pooled == POOL_PAIRS - 2  # refilled by halves, not after each call
    more = [_made_at_once(relay) for _ in range(POOL_PAIRS // 4)]
    assert None not in more and ports.pooled == POOL_PAIRS // 2 - 2
    await asyncio.sleep(0.01)
    assert ports.pooled == POOL_PAIRS  # refilled in the background
    await relay.close()
    assert (ports.pooled, ports.in_use, len(relay.sessions)) == (0, 0, 0)


async def test_the_pool_never_keeps_a_pair_a_call_needs() -> None:
    """Eight pairs, two of them pooled after a first call: three more sessions still get
    the other six and the pooled two, whatever order the refill and the calls take; a
    fifth finds none."""
    for rounds in range(3):
        ports = PortAllocator(44400, 44416)
        relay = MediaRelay("127.0.0.1", "127.0.0.1", ports, rng=random.Random(rounds))
        relay.start()
        first = await relay.create_session()
        await asyncio.sleep(0.01)
        assert ports.pooled == 2
        second = await relay.create_session()
        for _ in range(rounds):
            await asyncio.sleep(0)  # let the refill run part way
        rest = await asyncio.gather(*(relay.create_session() for _ in range(2)))
        sessions = [first, second, *rest]
        assert len({leg.port for s in sessions for leg in (s.a, s.b)}) == 8
        assert (ports.in_use, ports.pooled) == (8, 0)
        with pytest.raises(PortsExhaustedError, match="rtp_ports"):
            await relay.create_session()
        await relay.close()
        assert (ports.in_use, ports.pooled) == (0, 0)


async def test_a_used_pair_cools_down_and_the_pool_takes_fresh_ones() -> None:
    """A closed call's pair is closed, not pooled: a late packet of its peer must not reach
    (and latch) the next call; it rests among the cooling pairs as without a pool."""
    ports = PortAllocator(44500, 44600)  # fifty pairs
    relay = MediaRelay("127.0.0.1", "127.0.0.1", ports)
    relay.start()
    used = await relay.create_session()
    used_ports = {used.a.port, used.b.port}
    used.close()
    await asyncio.sleep(0.01)
    later = [await relay.create_session() for _ in range(10)]
    await asyncio.sleep(0.01)
    assert not used_ports & {leg.port for s in later for leg in (s.a, s.b)}
    assert all(leg.rtp.transport is not None for s in later for leg in (s.a, s.b))
    await relay.close()
    assert (ports.in_use, ports.pooled) == (0, 0)


async def test_a_port_someone_else_holds_is_skipped_by_the_pool_too() -> None:
    await rtp_peer(44700)  # another process holds 44700 (RTP of the first pair)
    await rtp_peer(44705)  # and 44705 (RTCP of the 44704 pair)
    ports = PortAllocator(44700, 44740, rng=random.Random(3))  # twenty pairs, five pooled
    relay = MediaRelay("127.0.0.1", "127.0.0.1", ports)
    relay.start()
    sessions = [await relay.create_session() for _ in range(9)]  # 18 of the 18 usable
    assert not {44700, 44704} & {leg.port for s in sessions for leg in (s.a, s.b)}
    await relay.close()
    assert (ports.in_use, ports.pooled) == (0, 0)


def test_strangers_packets_to_a_pooled_pair_reach_no_call() -> None:
    """A stranger sprays every port of the range, pooled ones included, before and after
    the call takes them: nothing of his is relayed, and only what arrives once the call
    owns the leg counts as refused."""
    network = Network()

    async def main() -> tuple[int, int]:
        ports = PortAllocator(20000, 20040, rng=random.Random(1))
        relay = MediaRelay("10.0.0.5", "10.0.0.5", ports, network=network)
        relay.start()
        (await relay.create_session()).close()  # a first call: the pool binds its pairs
        await asyncio.sleep(0.01)
        assert ports.pooled == 5
        peers = {address: RtpPeer() for address in (PHONE, FAR, STRANGER)}
        for (host, port), peer in peers.items():
            network.bind(peer, host, port)
        for port in range(20000, 20040):
            peers[STRANGER].send(packet(0, 1, b"\x66" * 160), ("10.0.0.5", port))
        await asyncio.sleep(0.01)
        session = await relay.create_session()
        session.a.set_media(LegMedia(PHONE, "PCMU", 0), PHONE[0])
        session.b.set_media(LegMedia(FAR, "PCMU", 0), FAR[0])
        session.bridge()
        peers[STRANGER].send(packet(0, 2, b"\x66" * 160), session.a.local)
        peers[PHONE].send(packet(0, 3, b"\x01" * 160), session.a.local)
        await asyncio.sleep(0.01)
        counts = session.a.stats.rejected, session.a.stats.packets_in
        await relay.close()
        assert (ports.in_use, ports.pooled) == (0, 0)
        return counts

    rejected, accepted = clock.run(main())
    to_far = [d.data[2:4] for d in network.log if d.destination == FAR]
    assert to_far == [b"\x00\x03"]  # the phone's packet only
    assert (rejected, accepted) == (1, 1)


async def test_close_waits_until_every_socket_is_closed() -> None:
    """At shutdown: the sessions' and the pool's sockets are closed when ``close`` returns,
    and a relay never started closes the same way."""
    for started in (True, False):
        ports = PortAllocator(44800, 44900)
        relay = MediaRelay("127.0.0.1", "127.0.0.1", ports)
        if started:
            relay.start()
        sessions = [await relay.create_session() for _ in range(3)]
        await relay.close()
        assert (ports.in_use, ports.pooled, len(relay.sessions)) == (0, 0, 0)
        assert all(s.closed for s in sessions)
        assert all(leg.rtp.closed and leg.rtcp.closed for s in sessions for leg in (s.a, s.b))
