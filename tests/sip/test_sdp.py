"""SDP (RFC 4566) and offer/answer (RFC 3264) for audio."""

from __future__ import annotations

import pytest

from switchboard.sip import offer_answer
from switchboard.sip.errors import SipError
from switchboard.sip.offer_answer import NotAcceptableError, OfferAnswer, accept_answer, answer
from switchboard.sip.sdp import SdpError, parse_sdp

PHONE_OFFER = (
    b"v=0\r\no=phone 123 456 IN IP4 192.0.2.50\r\ns=call\r\nc=IN IP4 192.0.2.50\r\n"
    b"t=0 0\r\nm=audio 49170 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\na=ptime:30\r\na=sendrecv\r\n"
)


def test_parse_and_serialise_round_trip() -> None:
    sdp = parse_sdp(PHONE_OFFER)
    assert parse_sdp(bytes(sdp)) == sdp
    (media,) = sdp.media
    assert media.formats == ("8", "0", "18", "101")
    assert media.rtpmap()["101"] == ("telephone-event", 8000, 1)
    assert media.fmtp("101") == "0-15"
    assert media.ptime == 30
    assert sdp.connection_address(media) == "192.0.2.50"


def test_answer_keeps_offerer_order_payload_numbers_and_telephone_event() -> None:
    description, negotiated = answer(parse_sdp(PHONE_OFFER), "198.51.100.1", 30000, "s1")
    (media,) = description.media
    assert media.formats == ("8", "0", "101")  # G.729 dropped, offer's numbers kept
    assert negotiated.codec.name == "PCMA"
    assert negotiated.telephone_event is not None
    assert negotiated.telephone_event.payload_type == 101
    assert negotiated.ptime == 30
    assert (negotiated.remote_address, negotiated.remote_port) == ("192.0.2.50", 49170)
    assert accept_answer(parse_sdp(PHONE_OFFER), description).codec.name == "PCMA"


def test_answer_without_telephone_event_when_not_offered() -> None:
    offer = PHONE_OFFER.replace(b" 101\r\n", b"\r\n").replace(
        b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n", b""
    )
    description, negotiated = answer(parse_sdp(offer), "198.51.100.1", 30000, "s1")
    assert negotiated.telephone_event is None
    assert "101" not in description.media[0].formats


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")],
)
def test_hold_directions_mirror(offered: str, answered: str) -> None:
    offer = PHONE_OFFER.replace(b"a=sendrecv", f"a={offered}".encode())
    description, negotiated = answer(parse_sdp(offer), "198.51.100.1", 30000, "s1")
    assert negotiated.direction == answered
    assert description.media[0].direction == answered


def test_no_common_codec_is_not_acceptable() -> None:
    offer = (
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\nm=video 4002 RTP/AVP 31\r\n"
    )
    with pytest.raises(NotAcceptableError):
        answer(parse_sdp(offer), "198.51.100.1", 30000, "s1")


def test_non_audio_streams_are_rejected_with_port_zero() -> None:
    offer = PHONE_OFFER + b"m=video 5000 RTP/AVP 31\r\n"
    description, _ = answer(parse_sdp(offer), "198.51.100.1", 30000, "s1")
    assert [m.port for m in description.media] == [30000, 0]


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"x=1\r\n",
        b"v=0\r\ns=-\r\n",
        b"v=0\r\no=bad\r\ns=-\r\n",
        b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio notaport RTP/AVP 0\r\n",
        b"\xff\xfe",
    ],
)
def test_bad_sdp_is_a_clear_error(bad: bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(bad)


def test_offer_answer_bookkeeping_increments_version_and_refuses_glare() -> None:
    state = OfferAnswer()
    first = state.local_offer(offer_answer.make_offer("198.51.100.1", 30000, "s"))
    with pytest.raises(SipError):
        state.remote_offer(parse_sdp(PHONE_OFFER))  # 491 territory
    state.complete(parse_sdp(PHONE_OFFER))
    second = state.local_offer(offer_answer.make_offer("198.51.100.1", 30000, "s"))
    assert second.origin.session_version == first.origin.session_version + 1
