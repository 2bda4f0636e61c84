"""The RTP relay over loopback sockets, with scripted RTP peers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from switchboard.media import g711
from switchboard.media import relay as relay_module
from switchboard.media.ports import PortAllocator, PortsExhaustedError
from switchboard.media.relay import LegMedia, MediaRelay, MediaSession
from tests.media.peers import RtpPeer, close_all_peers, packet, rtp_peer

PCMU_FRAME = g711.encode([1000] * 160, "PCMU")


@pytest.fixture(autouse=True)
async def _close_peers() -> AsyncIterator[None]:
    yield
    close_all_peers()
    await asyncio.sleep(0)


@pytest.fixture
async def relay() -> AsyncIterator[MediaRelay]:
    relay = MediaRelay("127.0.0.1", "127.0.0.1", PortAllocator(41000, 41100))
    yield relay
    for session in list(relay.sessions):
        session.close()
    await asyncio.sleep(0.01)
    assert relay.ports.in_use == 0  # every path gives its ports back


async def _session(
    relay: MediaRelay,
    a_codec: tuple[str, int],
    b_codec: tuple[str, int],
    events: tuple[int | None, int | None] = (None, None),
) -> tuple[MediaSession, RtpPeer, RtpPeer]:
    session = await relay.create_session()
    phone, far = await rtp_peer(), await rtp_peer()
    session.a.set_media(LegMedia(phone.address, a_codec[0], a_codec[1], events[0]))
    session.b.set_media(LegMedia(far.address, b_codec[0], b_codec[1], events[1]))
    return session, phone, far


async def test_same_codec_is_relayed_untouched_both_ways(relay: MediaRelay) -> None:
    session, phone, far = await _session(relay, ("PCMU", 0), ("PCMU", 0))
    session.bridge()
    sent = packet(0, 7, PCMU_FRAME, ssrc=0xAABBCCDD, ts=123456)
    phone.send(sent, session.a.local)
    (got,) = await far.wait_for(1)
    assert got.data == sent and got.source == session.b.local
    far.send(packet(0, 1, PCMU_FRAME, ssrc=0x55), session.b.local)
    (back,) = await phone.wait_for(1)
    assert back.header.ssrc == 0x55 and back.source == session.a.local


async def test_pcmu_and_pcma_are_converted_and_headers_rewritten(relay: MediaRelay) -> None:
    session, phone, far = await _session(relay, ("PCMU", 0), ("PCMA", 8))
    session.bridge()
    phone.send(packet(0, 100, PCMU_FRAME, ssrc=0x77, ts=16000), session.a.local)
    (got,) = await far.wait_for(1)
    header = got.header
    assert (header.payload_type, header.sequence, header.timestamp, header.ssrc) == (
        8,
        100,
        16000,
        0x77,
    )
    assert got.payload == PCMU_FRAME.translate(g711.ULAW_TO_ALAW)
    alaw = g711.encode([-500] * 160, "PCMA")
    far.send(packet(8, 5, alaw), session.b.local)
    (back,) = await phone.wait_for(1)
    assert back.header.payload_type == 0
    assert back.payload == alaw.translate(g711.ALAW_TO_ULAW)


async def test_telephone_events_are_mapped_or_dropped(relay: MediaRelay) -> None:
    session, phone, far = await _session(relay, ("PCMU", 0), ("PCMU", 0), (101, 96))
    session.bridge()
    phone.send(packet(101, 1, b"\x05\x0a\x00\xa0"), session.a.local)
    (got,) = await far.wait_for(1)
    assert got.header.payload_type == 96 and got.payload == b"\x05\x0a\x00\xa0"
    session.b.set_media(LegMedia(far.address, "PCMU", 0, None))  # re-offer without events
    phone.send(packet(101, 2, b"\x05\x0a\x00\xa0"), session.a.local)
    phone.send(packet(0, 3, PCMU_FRAME), session.a.local)
    await far.wait_for(2)
    assert [r.header.payload_type for r in far.received] == [96, 0]


async def test_latches_to_the_real_source_and_rejects_others(relay: MediaRelay) -> None:
    session = await relay.create_session()
    sdp_said, actual, intruder, far = [await rtp_peer() for _ in range(4)]
    session.a.set_media(LegMedia(sdp_said.address, "PCMU", 0))  # NAT: SDP names another port
    session.b.set_media(LegMedia(far.address, "PCMU", 0))
    session.bridge()
    actual.send(packet(0, 1, PCMU_FRAME), session.a.local)
    await far.wait_for(1)
    assert session.a.latched == actual.address
    far.send(packet(0, 1, PCMU_FRAME), session.b.local)
    await actual.wait_for(1)  # replies go where packets really come from
    assert sdp_said.received == []
    intruder.send(packet(0, 2, PCMU_FRAME), session.a.local)
    actual.send(packet(0, 3, PCMU_FRAME), session.a.local)
    await far.wait_for(2)
    assert [r.header.sequence for r in far.received] == [1, 3]
    assert session.a.stats.rejected == 1


async def test_a_stranger_is_never_latched_before_or_after_the_sdp(relay: MediaRelay) -> None:
    """The hijack: spraying a relay port from another host before the phone's first
    packet used to latch it, and the answer SDP re-opened the latch to anyone."""
    session = await relay.create_session()
    phone, far = await rtp_peer(), await rtp_peer()
    stranger = await rtp_peer(host="127.0.0.2")
    stranger.send(packet(0, 1, PCMU_FRAME), session.a.local)  # before any SDP: nobody
    session.a.set_media(LegMedia(phone.address, "PCMU", 0), "127.0.0.1")
    session.b.set_media(LegMedia(far.address, "PCMU", 0))
    session.bridge()
    stranger.send(packet(0, 2, PCMU_FRAME), session.a.local)  # after it: still nobody
    far.send(packet(0, 1, PCMU_FRAME), session.b.local)
    await phone.wait_for(1)
    phone.send(packet(0, 3, PCMU_FRAME), session.a.local)
    await far.wait_for(1)
    assert [r.header.sequence for r in far.received] == [3]
    assert session.a.latched == phone.address and session.a.stats.rejected == 2
    assert stranger.received == []


async def test_nat_port_change_is_latched_only_within_the_window(relay: MediaRelay) -> None:
    clock = [100.0]
    session = await relay.create_session()
    session.a.clock = lambda: clock[0]
    sdp_said, natted, far = await rtp_peer(), await rtp_peer(), await rtp_peer()
    session.a.set_media(LegMedia(sdp_said.address, "PCMU", 0), "127.0.0.1")
    session.b.set_media(LegMedia(far.address, "PCMU", 0))
    session.bridge()
    clock[0] += relay_module.LATCH_WINDOW + 0.001  # too late for another port of that IP
    natted.send(packet(0, 1, PCMU_FRAME), session.a.local)
    sdp_said.send(packet(0, 2, PCMU_FRAME), session.a.local)  # the SDP's own address: yes
    await far.wait_for(1)
    assert [r.header.sequence for r in far.received] == [2]
    assert session.a.latched == sdp_said.address
    late = await relay.create_session()  # a 183's SDP, then the 200's: the window restarts
    late.a.clock = lambda: clock[0]
    late.a.set_media(LegMedia(sdp_said.address, "PCMU", 0), "127.0.0.1")
    clock[0] += relay_module.LATCH_WINDOW + 0.001  # past the 183's window
    late.a.set_media(LegMedia(sdp_said.address, "PCMU", 0), "127.0.0.1")
    assert late.a.may_latch(natted.address, rtcp=False)
    late.close()
    moved = await rtp_peer()  # a re-INVITE names a new address: a new window for it only
    session.a.set_media(LegMedia(moved.address, "PCMU", 0), "127.0.0.1")
    natted.send(packet(0, 3, PCMU_FRAME), session.a.local)  # same IP, in the new window
    await far.wait_for(2)
    assert session.a.latched == natted.address


async def test_ringback_is_paced_at_50_packets_per_second(relay: MediaRelay) -> None:
    session, phone, _ = await _session(relay, ("PCMA", 8), ("PCMU", 0))
    session.start_ringback("a", "eu")
    await asyncio.sleep(2.0)
    session.stop_ringback("a")
    packets = phone.received
    assert 98 <= len(packets) <= 102
    sequences = [p.header.sequence for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(sequences))
    stamps = [p.header.timestamp for p in packets]
    assert all((b - a) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(stamps))
    assert {p.header.payload_type for p in packets} == {8}
    assert packets[0].header.marker and not any(p.header.marker for p in packets[1:])
    gaps = [b.time - a.time for a, b in itertools.pairwise(packets)]
    assert max(abs(g - 0.020) for g in gaps) < 0.015  # paced, not bursty


async def test_ringback_follows_the_legs_ptime(relay: MediaRelay) -> None:
    session = await relay.create_session()
    phone = await rtp_peer()
    session.a.set_media(LegMedia(phone.address, "PCMU", 0, ptime=30))
    session.start_ringback("a")
    await asyncio.sleep(0.6)
    session.stop_ringback("a")
    packets = phone.received
    assert 19 <= len(packets) <= 22  # 33 packets/s
    assert {len(p.payload) for p in packets} == {240}
    stamps = [p.header.timestamp for p in packets]
    assert all((b - a) & 0xFFFFFFFF == 240 for a, b in itertools.pairwise(stamps))


async def test_early_media_replaces_ringback_with_a_marker_and_new_ssrc(relay: MediaRelay) -> None:
    session, phone, far = await _session(relay, ("PCMU", 0), ("PCMU", 0))
    session.start_ringback("a")
    await phone.wait_for(5)
    tone_ssrc = phone.received[0].header.ssrc
    far.send(packet(0, 40, PCMU_FRAME, ssrc=0xEA51), session.b.local)  # 183 early media
    await asyncio.sleep(0.1)
    relayed = [p for p in phone.received if p.header.ssrc == 0xEA51]
    assert len(relayed) == 1 and relayed[0].header.marker
    assert tone_ssrc != 0xEA51
    assert phone.received[-1].header.ssrc == 0xEA51  # no tone after the switch


async def test_media_is_held_back_until_bridged(relay: MediaRelay) -> None:
    session, phone, far = await _session(relay, ("PCMU", 0), ("PCMU", 0))
    phone.send(packet(0, 1, PCMU_FRAME), session.a.local)
    await asyncio.sleep(0.1)
    assert far.received == [] and session.a.stats.packets_in == 1
    assert session.idle_for(relay.loop.time()) < 0.2


async def test_port_exhaustion_is_a_clear_error_and_ports_come_back() -> None:
    relay = MediaRelay("127.0.0.1", "127.0.0.1", PortAllocator(41200, 41204))  # two pairs
    session = await relay.create_session()
    with pytest.raises(PortsExhaustedError, match="rtp_ports"):
        await relay.create_session()
    assert relay.ports.in_use == 2
    session.close()
    session.close()  # idempotent
    await asyncio.sleep(0.01)  # sockets close a loop iteration later; then the ports return
    assert relay.ports.in_use == 0
    again = await relay.create_session()
    again.close()


async def test_a_port_held_by_someone_else_is_skipped() -> None:
    await rtp_peer(41300)  # another process holds 41300
    relay = MediaRelay("127.0.0.1", "127.0.0.1", PortAllocator(41300, 41310))
    session = await relay.create_session()
    assert {session.a.port, session.b.port} <= {41302, 41304, 41306, 41308}
    session.close()


@pytest.mark.parametrize(
    ("host", "bound"), [("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"), ("::1", "::1")]
)
async def test_legs_bind_their_sockets_on_the_relays_host(host: str, bound: str) -> None:
    """The relay binds sockets of its own on its host, resolved once (a name too), and
    hands them to the loop; both ports of each pair are the ones allocated."""
    relay = MediaRelay(host, "127.0.0.1", PortAllocator(41400, 41410))
    sessions = [await relay.create_session() for _ in range(2)]
    legs = [leg for session in sessions for leg in (session.a, session.b)]
    names = [
        sock.transport.get_extra_info("sockname")[:2]
        for leg in legs
        for sock in (leg.rtp, leg.rtcp)
    ]
    assert names == [(bound, port) for leg in legs for port in (leg.port, leg.port + 1)]
    for session in sessions:
        session.close()
    await asyncio.sleep(0.01)
    assert relay.ports.in_use == 0


async def test_a_leg_gone_silent_is_inactivity_even_while_the_other_leg_talks(
    relay: MediaRelay,
) -> None:
    """A phone that vanishes without BYE: its leg goes quiet, the far end keeps talking."""
    session, phone, far = await _session(relay, ("PCMU", 0), ("PCMU", 0))
    session.bridge()
    fired: list[float] = []
    session.watch_inactivity(0.3, lambda: fired.append(relay.loop.time()))
    for n in range(30):  # the far end talks for 0.6 s; the phone only for the first 0.1 s
        far.send(packet(0, n, PCMU_FRAME), session.b.local)
        if n < 5:
            phone.send(packet(0, n, PCMU_FRAME), session.a.local)
        await asyncio.sleep(0.02)
    last_from_phone = session.a.stats.last_in
    assert last_from_phone is not None and len(fired) == 1
    assert abs(fired[0] - (last_from_phone + 0.3)) < 0.05


async def test_rtcp_alone_keeps_a_muted_leg_alive(relay: MediaRelay) -> None:
    session, phone, far = await _session(relay, ("PCMU", 0), ("PCMU", 0))
    session.bridge()
    fired: list[float] = []
    session.watch_inactivity(0.3, lambda: fired.append(relay.loop.time()))
    for _ in range(12):  # RTCP receiver reports only, from both sides, for 0.6 s
        phone.send(b"\x80\xc9\x00\x01" + b"\x00" * 4, (session.a.host, session.a.port + 1))
        far.send(b"\x80\xc9\x00\x01" + b"\x00" * 4, (session.b.host, session.b.port + 1))
        await asyncio.sleep(0.05)
    assert fired == []
    session.close()


async def test_a_detached_leg_refuses_its_old_peer_until_a_new_one_is_bridged(
    relay: MediaRelay,
) -> None:
    """A transfer: leg b's peer left; the one on a hears ringback, not the old peer's stray
    packets; the new peer latches afresh and talks both ways once bridged."""
    session, phone, old = await _session(relay, ("PCMU", 0), ("PCMU", 0))
    session.bridge()
    old.send(packet(0, 1, PCMU_FRAME, ssrc=0x01D), session.b.local)
    await phone.wait_for(1)
    session.detach("b")
    session.start_ringback("a")
    assert not session.bridged
    old.send(packet(0, 2, PCMU_FRAME, ssrc=0x01D), session.b.local)  # in flight after BYE
    await phone.wait_for(10)
    assert [p.header.ssrc for p in phone.received].count(0x01D) == 1  # only before detach
    assert session.b.stats.rejected == 1
    assert session.idle_for(relay.loop.time()) < 1.0  # b's silence is not watched now

    new = await rtp_peer()
    session.b.set_media(LegMedia(new.address, "PCMA", 8))
    session.bridge()
    new.send(packet(8, 9, g711.encode([300] * 160, "PCMA"), ssrc=0x2EE), session.b.local)
    await asyncio.sleep(0.1)
    assert phone.received[-1].header.ssrc == 0x2EE  # the tone stopped, the new peer talks
    phone.send(packet(0, 3, PCMU_FRAME), session.a.local)
    (got,) = await new.wait_for(1)
    assert got.header.payload_type == 8
    old.send(packet(0, 4, PCMU_FRAME, ssrc=0x01D), session.b.local)
    await asyncio.sleep(0.05)
    assert session.b.stats.rejected == 2 and old.received == []
