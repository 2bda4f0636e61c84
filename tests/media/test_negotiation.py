"""Each leg negotiates with the relay (RFC 3264), hold is honoured, and dead media is seen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from switchboard.media import negotiation
from switchboard.media.ports import PortAllocator
from switchboard.media.relay import MediaRelay
from switchboard.sip.offer_answer import NotAcceptableError
from switchboard.sip.sdp import SdpError, parse_sdp
from tests.media.peers import close_all_peers, packet, rtp_peer

OFFER = (
    "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
)


@pytest.fixture
async def relay() -> AsyncIterator[MediaRelay]:
    relay = MediaRelay("127.0.0.1", "127.0.0.1", PortAllocator(42000, 42100))
    yield relay
    for session in list(relay.sessions):
        session.close()
    close_all_peers()
    await asyncio.sleep(0.01)


async def test_member_offer_is_answered_on_the_relay_port(relay: MediaRelay) -> None:
    session = await relay.create_session()
    answer = parse_sdp(
        negotiation.answer_offer(
            session.a, OFFER.format(port=4000, direction="sendrecv").encode(), "s1", "127.0.0.1"
        )
    )
    assert answer.connection_address(answer.media[0]) == "127.0.0.1"
    assert answer.media[0].port == session.a.port
    assert session.a.media is not None
    assert (session.a.media.codec, session.a.media.telephone_event) == ("PCMA", 101)
    assert session.a.media.address == ("127.0.0.1", 4000)


async def test_destination_is_offered_the_other_port_and_its_answer_checked(
    relay: MediaRelay,
) -> None:
    session = await relay.create_session()
    offer = negotiation.make_offer(session.b, "s2")
    assert offer.media[0].port == session.b.port
    answer = OFFER.format(port=5000, direction="sendrecv").replace("8 101", "8").encode()
    negotiation.accept_answer(session.b, offer, answer, "127.0.0.1")
    assert session.b.media is not None and session.b.media.telephone_event is None
    with pytest.raises(NotAcceptableError):
        wrong = answer.replace(b"RTP/AVP 8", b"RTP/AVP 18")
        negotiation.accept_answer(session.b, offer, wrong, "127.0.0.1")
    with pytest.raises(SdpError):
        negotiation.answer_offer(session.a, b"not sdp", "s3", "127.0.0.1")


async def test_a_phone_on_hold_is_sent_nothing(relay: MediaRelay) -> None:
    session = await relay.create_session()
    phone, far = await rtp_peer(), await rtp_peer()
    held = OFFER.format(port=phone.address[1], direction="sendonly").encode()
    negotiation.answer_offer(session.a, held, "s4", "127.0.0.1")  # the phone puts the call on hold
    offer = negotiation.make_offer(session.b, "s5")
    negotiation.accept_answer(
        session.b,
        offer,
        OFFER.format(port=far.address[1], direction="sendrecv").encode(),
        "127.0.0.1",
    )
    session.bridge()
    far.send(packet(8, 1, b"\xd5" * 160), session.b.local)
    phone.send(packet(8, 1, b"\xd5" * 160), session.a.local)  # music on hold, say
    await far.wait_for(1)
    await asyncio.sleep(0.05)
    assert phone.received == []  # recvonly toward a sendonly phone


async def test_inactivity_is_signalled_once_media_stops(relay: MediaRelay) -> None:
    session = await relay.create_session()
    phone = await rtp_peer()
    negotiation.answer_offer(
        session.a,
        OFFER.format(port=phone.address[1], direction="sendrecv").encode(),
        "s6",
        "127.0.0.1",
    )
    fired: list[float] = []
    session.watch_inactivity(0.3, lambda: fired.append(relay.loop.time()))
    start = relay.loop.time()
    for n in range(5):  # media for 0.25 s keeps the call alive
        phone.send(packet(8, n, b"\xd5" * 160), session.a.local)
        await asyncio.sleep(0.05)
    last = session.a.stats.last_in
    assert last is not None
    await asyncio.sleep(0.5)
    assert len(fired) == 1
    assert abs(fired[0] - (last + 0.3)) < 0.05 and fired[0] - start > 0.3
