"""Every number in a SIP message or its SDP is read with a length bound and a range.

``int()`` accepts any Unicode digit and raises ``ValueError`` (not ``ParseError``) past 4300
digits, so each field is tried with a 5000-digit value, a value just past its range, a
Unicode digit, and its largest valid value.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.sip.errors import ParseError
from switchboard.sip.framing import FramingError, StreamFramer
from switchboard.sip.grammar import MAX_DIGITS, bounded_int, parse_number
from switchboard.sip.message import Request, Response, parse_message
from switchboard.sip.offer_answer import offered_codecs
from switchboard.sip.sdp import SdpError, parse_sdp

HUGE = "9" * 5000
SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() says yes; int() raises ValueError
ARABIC_ONE = "\u0661"  # int() reads it as 1

REQUEST = (
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-n1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@example.com>;tag=a1\r\n"
    "To: <sip:alice@example.com>\r\n"
    "Call-ID: numbers-1\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:alice@192.0.2.10:5060>;expires=60\r\n"
    "Expires: 60\r\n"
    "Content-Length: 0\r\n\r\n"
)
RESPONSE = (
    "SIP/2.0 423 Interval Too Brief\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-n1;rport=5060\r\n"
    "From: <sip:alice@example.com>;tag=a1\r\n"
    "To: <sip:alice@example.com>;tag=b1\r\n"
    "Call-ID: numbers-1\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Min-Expires: 60\r\n"
    "RSeq: 1\r\n"
    "RAck: 1 1 INVITE\r\n"
    "Content-Length: 0\r\n\r\n"
)

# (name, where the number is in the request, the largest valid value)
REQUEST_FIELDS = [
    ("CSeq", "CSeq: 1 REGISTER", "CSeq: {} REGISTER", 2**31 - 1),
    ("Content-Length", "Content-Length: 0", "Content-Length: {}", None),
    ("Max-Forwards", "Max-Forwards: 70", "Max-Forwards: {}", 255),
    ("Expires", "Expires: 60", "Expires: {}", 2**32 - 1),
    ("Contact expires", ";expires=60", ";expires={}", 2**32 - 1),
    ("Via port", "192.0.2.10:5060;branch", "192.0.2.10:{};branch", 65535),
    ("Via rport", ";rport\r\n", ";rport={}\r\n", 65535),
    ("Contact port", "192.0.2.10:5060>", "192.0.2.10:{}>", 65535),
    ("Request-URI port", "sip:example.com SIP", "sip:example.com:{} SIP", 65535),
]
RESPONSE_FIELDS = [
    ("Min-Expires", "Min-Expires: 60", "Min-Expires: {}", 2**32 - 1),
    ("RSeq", "RSeq: 1", "RSeq: {}", 2**32 - 1),
    ("RAck response-num", "RAck: 1 1", "RAck: {} 1", 2**32 - 1),
    ("RAck CSeq-num", "RAck: 1 1", "RAck: 1 {}", 2**31 - 1),
    ("Via rport", ";rport=5060", ";rport={}", 65535),
]


def _with(template: str, old: str, new: str, value: str) -> bytes:
    assert old in template
    return template.replace(old, new.format(value), 1).encode()


def _request_refused(data: bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_message(data)
    return info.value


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT_TWO, ARABIC_ONE, "-1", "+1", "1e3", ""])
@pytest.mark.parametrize(("name", "old", "new", "largest"), REQUEST_FIELDS)
def test_a_bad_number_in_a_request_is_a_parse_error_that_can_be_answered(
    name: str, old: str, new: str, largest: int | None, value: str
) -> None:
    error = _request_refused(_with(REQUEST, old, new, value))
    # Answerable with 400 (the endpoint sends it), unless the Via (where to answer) or the
    # start line is unreadable: then the message is dropped.
    if not name.startswith(("Via", "Request-URI")):
        assert isinstance(error.partial, Request), error.reason
    assert error.status == 400


@pytest.mark.parametrize(("name", "old", "new", "largest"), REQUEST_FIELDS)
def test_the_largest_valid_number_is_accepted_and_one_more_is_not(
    name: str, old: str, new: str, largest: int | None
) -> None:
    if largest is None:
        return  # Content-Length must match the body: covered below
    message = parse_message(_with(REQUEST, old, new, str(largest)))
    assert isinstance(message, Request)
    _request_refused(_with(REQUEST, old, new, str(largest + 1)))


def test_content_length_past_the_message_size_is_refused_not_read() -> None:
    for value in ("65536", "999999999", "0" * 21):
        error = _request_refused(_with(REQUEST, "Content-Length: 0", "Content-Length: {}", value))
        assert error.reason == "Malformed Content-Length"


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT_TWO, ARABIC_ONE, "-1"])
@pytest.mark.parametrize(("name", "old", "new", "largest"), RESPONSE_FIELDS)
def test_a_bad_number_in_a_response_is_a_parse_error(
    name: str, old: str, new: str, largest: int, value: str
) -> None:
    with pytest.raises(ParseError):
        parse_message(_with(RESPONSE, old, new, value))
    assert isinstance(parse_message(_with(RESPONSE, old, new, str(largest))), Response)
    with pytest.raises(ParseError):
        parse_message(_with(RESPONSE, old, new, str(largest + 1)))


@pytest.mark.parametrize("status", ["2" + ARABIC_ONE * 2, "2000", HUGE, "099", "700"])
def test_status_codes_are_three_ascii_digits(status: str) -> None:
    with pytest.raises(ParseError):
        parse_message(_with(RESPONSE, "423 Interval", "{} Interval", status))


def test_a_huge_sip_version_number_is_not_read_as_a_number() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(_with(REQUEST, "sip:example.com SIP/2.0", "sip:example.com SIP/{}.0", HUGE))
    assert info.value.status == 505


# -- the stream framer ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT_TWO, "-1", "abc"])
def test_stream_framer_refuses_a_bad_content_length_and_keeps_the_head(value: str) -> None:
    head = _with(REQUEST, "Content-Length: 0", "Content-Length: {}", value)
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(head)
    assert info.value.head == head and info.value.status == 400


def test_stream_framer_answers_a_body_too_large_with_513() -> None:
    head = _with(REQUEST, "Content-Length: 0", "Content-Length: {}", "65536")
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(head)
    assert info.value.status == 513 and info.value.head == head


def test_stream_framer_finds_content_length_on_any_header_line() -> None:
    message = REQUEST.replace("Content-Length: 0\r\n", "").replace(
        "Max-Forwards: 70", "Content-Length: 4\r\nMax-Forwards: 70"
    )
    data = message.encode() + b"v=0\n"
    assert StreamFramer().feed(data) == [data]


# -- bounded_int itself ---------------------------------------------------------------------


@given(st.text(max_size=40), st.integers(0, 2**70))
def test_bounded_int_never_raises_and_stays_in_range(text: str, maximum: int) -> None:
    value = bounded_int(text, maximum)
    assert value is None or 0 <= value <= maximum
    if value is not None:
        assert text.isascii() and len(text) <= MAX_DIGITS


def test_parse_number_names_the_field() -> None:
    with pytest.raises(ParseError, match="Malformed CSeq"):
        parse_number(HUGE, 2**31 - 1, "CSeq")
    assert parse_number("007", 10, "x") == 7


# -- SDP ------------------------------------------------------------------------------------

SDP = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
)


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT_TWO, "-1"])
@pytest.mark.parametrize(
    ("old", "new"),
    [("o=- 1 1", "o=- 1 {}"), ("m=audio 49170", "m=audio {}"), ("49170 RTP", "49170/{} RTP")],
)
def test_sdp_numbers_that_must_be_valid_are_sdp_errors(old: str, new: str, value: str) -> None:
    with pytest.raises(SdpError):
        parse_sdp(_with(SDP, old, new, value))


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT_TWO, "1001"])
def test_a_bad_ptime_is_ignored(value: str) -> None:
    (media,) = parse_sdp(_with(SDP, "a=ptime:20", "a=ptime:{}", value)).media
    assert media.ptime is None


@pytest.mark.parametrize(
    ("old", "new"),
    [("telephone-event/8000", "telephone-event/{}"), ("8000\r\n", "8000/{}\r\n")],
)
@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT_TWO])
def test_a_bad_rtpmap_number_drops_that_rtpmap(old: str, new: str, value: str) -> None:
    (media,) = parse_sdp(_with(SDP, old, new, value)).media
    assert media.rtpmap() == {}


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT_TWO, "128"])
def test_a_payload_type_that_is_not_7_bits_is_not_a_codec(value: str) -> None:
    sdp = _with(SDP, "RTP/AVP 0 8 101", "RTP/AVP 0 {}", value)
    sdp = sdp.replace(b"rtpmap:101", b"rtpmap:" + value.encode())
    (media,) = parse_sdp(sdp).media
    assert [codec.payload_type for codec in offered_codecs(media)] == [0]
