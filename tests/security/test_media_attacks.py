"""Call audio hijack: a stranger sprays the whole RTP port range during a bridged call.

The phones are SIPp for signalling, and test RTP peers for media (their SDP names the
peers' ports), so every packet each side sends and receives is counted. The attacker
sends from 127.0.0.2, as a host on the same network would. Before the hardening, the
relay latched to whoever sent first after the answer SDP: the attacker got the audio and
the phones next to nothing.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from pathlib import Path

import pytest

from tests.interop.call_group_harness import (
    Phones,
    config_for,
    finish,
    post,
    serving,
    start_call_group,
    uas,
    wait_bridged,
)
from tests.interop.sipp import SCENARIOS, free_port, start_sipp
from tests.media.peers import RtpPeer, close_all_peers, packet, rtp_peer

pytestmark = [pytest.mark.interop, pytest.mark.slow]
ATTACKER = "127.0.0.2"
RTP_RANGE = (24000, 24400)  # below Linux's ephemeral ports, where the test peers live
PACKETS = 250  # five seconds of audio each way


def _echo_answer(port: int, media_port: int) -> list[str]:
    """SIPp answering with SDP that names ``media_port`` (a test peer), PCMU."""
    scenario = str(SCENARIOS / "uas_rtp_echo.xml")
    return [
        *uas(port, Path(scenario)),
        *("-set", "relay_port", str(media_port), "-set", "pt", "0", "-set", "codec", "PCMU"),
    ]


class Sprayer(asyncio.DatagramProtocol):
    """Sends an RTP packet to every port of the range, RTP and RTCP, every 10 ms, and
    counts what comes back to it."""

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.received += 1

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable from the unbound ports of the range

    async def spray(self, transport: asyncio.DatagramTransport) -> None:
        junk = packet(0, 1, b"\xff" * 160, ssrc=0xBAD)
        while True:
            for port in range(*RTP_RANGE):
                transport.sendto(junk, ("127.0.0.1", port))
                self.sent += 1
            await asyncio.sleep(0.01)


async def _talk(peer: RtpPeer, to: tuple[str, int], ssrc: int) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(PACKETS):  # paced on an absolute schedule, as a phone sends
        peer.send(packet(0, n, b"\x7e" * 160, ssrc=ssrc), to)
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))


def _from(peer: RtpPeer, ssrc: int) -> int:
    return sum(1 for r in peer.received if r.header.ssrc == ssrc)


async def test_rtp_spray_of_the_whole_range_neither_hijacks_nor_drowns_a_bridged_call(
    tmp_path: Path,
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    loop = asyncio.get_running_loop()
    member_media, far_media = await rtp_peer(), await rtp_peer()
    alice = await start_sipp(_echo_answer(phones.alice, member_media.address[1]))
    trunk = await start_sipp(_echo_answer(phones.trunk, far_media.address[1]))
    sprayer = Sprayer()
    transport, _ = await loop.create_datagram_endpoint(lambda: sprayer, (ATTACKER, 0))
    spraying = asyncio.create_task(sprayer.spray(transport))
    extra = f"rtp_ports = [{RTP_RANGE[0]}, {RTP_RANGE[1]}]\n"
    try:
        async with serving(tmp_path, config_for(phones), extra) as (server, client):
            uuids = await start_call_group(
                client, {"group_name": "support", "destination": "0312341234"}
            )
            session = (await wait_bridged(server)).session
            await asyncio.sleep(0.2)  # the attacker has had ten sweeps at the open legs
            await asyncio.gather(
                _talk(member_media, session.a.local, ssrc=0xA11CE),
                _talk(far_media, session.b.local, ssrc=0xFA2),
            )
            await asyncio.sleep(0.2)  # the last packets cross the relay
            rejected = session.a.stats.rejected + session.b.stats.rejected
            await post(client, "hangup", {"uuid": uuids[0]})
            await finish(alice, trunk)
    finally:
        spraying.cancel()
        with suppress(asyncio.CancelledError):
            await spraying
        transport.close()
    try:
        assert sprayer.sent > 100 * (RTP_RANGE[1] - RTP_RANGE[0])  # it really sprayed
        assert rejected > 0  # and hit the call's ports
        assert _from(far_media, 0xA11CE) >= 0.99 * PACKETS  # the destination hears the member
        assert _from(member_media, 0xFA2) >= 0.99 * PACKETS  # and the member the destination
        assert _from(far_media, 0xBAD) == _from(member_media, 0xBAD) == 0
        assert sprayer.received == 0  # not one packet of the call reached the attacker
    finally:
        close_all_peers()
