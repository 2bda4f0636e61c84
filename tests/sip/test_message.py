"""Messages, URIs and addresses (RFC 3261 §7, §19, §20, §25) beyond RFC 4475."""

from __future__ import annotations

import pytest

from switchboard.sip.address import parse_address
from switchboard.sip.builders import make_cancel, make_response
from switchboard.sip.errors import ParseError
from switchboard.sip.framing import KeepAlivePing, StreamFramer
from switchboard.sip.message import Header, Request, headers, parse_message
from switchboard.sip.uri import SipUri, TelUri, parse_uri
from switchboard.sip.via import parse_via
from tests.sip.factories import request


def test_ipv6_references_in_uri_and_via() -> None:
    uri = parse_uri("sip:alice@[2001:db8::10]:5070;transport=tcp")
    assert isinstance(uri, SipUri)
    assert uri.host == "[2001:db8::10]" and uri.port == 5070 and uri.transport == "TCP"
    assert uri.host_port == ("2001:db8::10", 5070)
    via = parse_via("SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK1")
    assert via.sent_by == ("[2001:db8::9]", 5060)


def test_tel_uri_and_display_names() -> None:
    assert isinstance(parse_uri("tel:+81-3-1234-5678;phone-context=example.com"), TelUri)
    address = parse_address('"Erik \\"Magneto\\" Lehnsherr" <sip:erik@example.com>;tag=x')
    assert address.display_name == 'Erik "Magneto" Lehnsherr'
    assert str(address) == '"Erik \\"Magneto\\" Lehnsherr" <sip:erik@example.com>;tag=x'
    assert parse_address("*").is_wildcard


@pytest.mark.parametrize(
    "bad",
    [
        "sip:",
        "sip:@host",
        "sip:user@",
        "sip:host:99999",
        "sip:ho st",
        "<sip:a@b>",
        "sip:[::1",
        "1sip:a@b",
        "sip:a@b;=x",
    ],
)
def test_malformed_uris_raise_parse_error(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(bad)


def test_compact_forms_and_case_are_canonicalised_and_unknown_headers_kept() -> None:
    raw = (
        b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\n"
        b"t: <sip:a@b>\r\ni: id\r\ncseq: 1 OPTIONS\r\nX-Custom-Thing: Keep  This\r\nl: 0\r\n\r\n"
    )
    message = parse_message(raw)
    assert [h.name for h in message.headers] == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "X-Custom-Thing",
        "Content-Length",
    ]
    assert message.get("x-custom-thing") == "Keep  This"


def test_comma_separated_list_headers_are_split_but_quoted_commas_are_not() -> None:
    raw = (
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1, SIP/2.0/UDP h2\r\n"
        b'From: "Doe, John" <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\n'
        b'CSeq: 1 INVITE\r\nContact: "A, B" <sip:a@h1>, <sip:b@h2>\r\nl: 0\r\n\r\n'
    )
    message = parse_message(raw)
    assert len(message.vias) == 2
    assert message.from_.display_name == "Doe, John"
    assert [str(c.uri) for c in message.contacts] == ["sip:a@h1", "sip:b@h2"]


def test_response_copies_the_right_headers_and_adds_a_to_tag() -> None:
    invite = request()
    ringing = make_response(invite, 180, to_tag="t1")
    assert ringing.to.tag == "t1" and ringing.status == 180 and ringing.reason == "Ringing"
    assert ringing.get_all("Via") == invite.get_all("Via")
    assert make_response(invite, 100, to_tag="t1").to.tag is None


def test_cancel_keeps_branch_and_cseq_number_of_the_invite() -> None:
    invite = request(cseq=42)
    cancel = make_cancel(invite)
    assert cancel.top_via.branch == invite.top_via.branch  # §9.1
    assert (cancel.cseq.number, cancel.cseq.method) == (42, "CANCEL")
    assert isinstance(cancel, Request) and cancel.uri == invite.uri


def test_stream_framer_cuts_messages_and_answers_keepalives() -> None:
    first = bytes(request("OPTIONS", branch="z9hG4bK-1"))
    second = bytes(request("OPTIONS", branch="z9hG4bK-2", body=b"hello"))
    framer = StreamFramer()
    stream = b"\r\n\r\n" + first + second
    items: list[bytes | KeepAlivePing] = []
    for i in range(0, len(stream), 7):  # arrive in small pieces
        items += framer.feed(stream[i : i + 7])
    assert items == [KeepAlivePing(), first, second]


def test_stream_framer_requires_content_length() -> None:
    framer = StreamFramer()
    with pytest.raises(ParseError):
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n")


def test_oversized_datagram_is_refused() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n")
    assert info.value.status == 513


def test_built_headers_have_canonical_names_and_their_keys() -> None:
    built = headers(("call-id", "a"), ("v", "SIP/2.0/UDP h"), ("X-Custom", "b"))
    assert built == (
        Header("Call-ID", "a"),
        Header("Via", "SIP/2.0/UDP h"),
        Header("X-Custom", "b"),
    )
    assert [h.key for h in built] == ["call-id", "via", "x-custom"]
