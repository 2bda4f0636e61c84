"""Received messages: parts parsed on first access, octets sent back while unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from switchboard.sip import message_types
from switchboard.sip.errors import ParseError
from switchboard.sip.headers import Header
from switchboard.sip.message import Request, Response, parse_message
from switchboard.sip.strict_parser import parse_strictly
from tests.sip.messages import INVITE, REGISTER, RINGING


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Count the calls ``message_types`` makes to one of the parsers it uses lazily."""
    calls: list[str] = []
    original: Callable[[str], object] = getattr(message_types, name)

    def counted(text: str) -> object:
        calls.append(text)
        return original(text)

    monkeypatch.setattr(message_types, name, counted)
    return calls


def test_the_hot_path_fields_parse_only_what_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    header_tuples = _counting(monkeypatch, "header_tuple")
    addresses = _counting(monkeypatch, "parse_address")
    uris = _counting(monkeypatch, "parse_uri")
    vias = _counting(monkeypatch, "parse_via")
    message = parse_message(INVITE)
    assert (header_tuples, addresses, uris, vias) == ([], [], [], [])
    assert message.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (message.cseq.number, message.cseq.method) == (314159, "INVITE")
    assert message.top_via.branch == "z9hG4bKnashds8"
    assert (message.from_.tag, message.to.tag) == ("1928301774", None)
    assert message.from_.tag == "1928301774"  # memoised: parsed once
    assert bytes(message) == INVITE
    assert header_tuples == [] and uris == []  # nothing read the tuple or the Request-URI
    assert addresses == [
        "Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "Bob <sip:bob@biloxi.example.com>",
    ]
    assert len(vias) == 1


def test_headers_and_uri_are_built_once_on_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    header_tuples = _counting(monkeypatch, "header_tuple")
    uris = _counting(monkeypatch, "parse_uri")
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    assert [h.name for h in message.headers][:3] == ["Via", "Max-Forwards", "To"]
    assert message.headers is message.headers
    assert str(message.uri) == str(message.uri) == "sip:bob@biloxi.example.com"
    assert len(header_tuples) == 1 and uris == ["sip:bob@biloxi.example.com"]


def test_a_received_message_equals_the_one_the_strict_parser_builds() -> None:
    for data in (INVITE, RINGING, REGISTER):
        fast, strict = parse_message(data), parse_strictly(data)
        assert fast._received is not None and strict._received is None
        assert fast == strict and hash(fast) == hash(strict)
        assert repr(fast) == repr(strict)


def test_an_unchanged_message_serialises_to_the_octets_received() -> None:
    assert bytes(parse_message(INVITE)) == INVITE
    assert bytes(parse_message(RINGING)) == RINGING
    # Leading CRLFs (§7.5) and octets past Content-Length (§18.3) are not part of it.
    assert bytes(parse_message(b"\r\n\r\n" + INVITE + b"junk")) == INVITE
    # Kept as received: a comma-separated list and a compact name stay as they were.
    assert b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n" in bytes(parse_message(INVITE))
    compact = INVITE.replace(b"Call-ID:", b"i:")
    assert bytes(parse_message(compact)) == compact


def test_without_content_length_the_message_is_serialised_from_its_parts() -> None:
    data = RINGING.replace(b"Content-Length: 0\r\n", b"")
    message = parse_message(data)
    assert message._received is not None
    assert bytes(message) == bytes(parse_strictly(data))
    assert bytes(message).endswith(b"Content-Length: 0\r\n\r\n")


def test_a_changed_message_is_serialised_from_its_parts() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    without_allow = message.with_headers(h for h in message.headers if h.key != "allow")
    assert without_allow._received is None
    assert b"Allow" not in bytes(without_allow)
    assert bytes(without_allow) == bytes(
        parse_strictly(INVITE).with_headers(h for h in message.headers if h.key != "allow")
    )
    shorter = replace(message, body=b"v=0\r\n")
    assert bytes(shorter).endswith(b"Content-Length: 5\r\n\r\nv=0\r\n")
    assert parse_message(bytes(shorter)).body == b"v=0\r\n"
    # A list header is re-serialised one element per line, as the strict parser does.
    assert bytes(replace(message, method="INVITE")).count(b"Allow: ") == 5


def test_get_and_get_all_read_list_elements_like_the_header_tuple() -> None:
    data = INVITE.replace(
        b"Max-Forwards: 70\r\n", b"Via: SIP/2.0/TCP a.example.com, SIP/2.0/UDP b.example\r\n"
    )
    message = parse_message(data)
    assert message._received is not None
    assert message.get_all("v") == [h.value for h in message.headers if h.key == "via"]
    assert len(message.vias) == 3 and message.vias[2].host == "b.example"
    assert message.get("allow") == "INVITE"
    assert message.get_all("Allow") == ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"]
    assert message.get("Nope") is None and message.get_all("Nope") == []


def test_a_response_is_received_lazily_too() -> None:
    message = parse_message(RINGING)
    assert isinstance(message, Response) and message._received is not None
    assert (message.status, message.reason, message.to.tag) == (180, "Ringing", "8321234356")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"From: Alice <sip:alice@atlanta.example.com>", b"From: Alice <sip:alice@>"),
        (b"To: Bob <sip:bob@biloxi.example.com>", b"To: *"),
        (b"branch=z9hG4bKnashds8;rport", b"branch=z9hG4bKnashds8;rport=0"),
        (b"SIP/2.0/UDP pc33", b"SIP/3.0/UDP pc33"),
        (b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"),
        (b"CSeq: 314159 INVITE", b"CSeq: 99999999999 INVITE"),
        (b"Contact: <sip:alice@pc33.atlanta.example.com>", b"Contact: <sip:a@b>;expires=x"),
        (b"Contact: <sip:alice@pc33.atlanta.example.com>", b"Contact: *, <sip:a@b>"),
        (b"Max-Forwards: 70", b"Max-Forwards: 256"),
        (b"Max-Forwards: 70", b"Date: Sat, 13 Nov 2010 23:29:00 PST"),
        (b"Max-Forwards: 70", b"RAck: 1 x INVITE"),
        (b"Max-Forwards: 70", b'Allow: "a, b'),
        (b"Max-Forwards: 70", b"Call-ID: twice"),
        (b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport", b"Via: ,"),
        (b"Content-Length: 127", b"Content-Length: 128"),
        (b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", b""),
    ],
)
def test_a_malformed_header_is_rejected_at_parse_time_as_the_strict_parser_does(
    old: bytes, new: bytes
) -> None:
    data = INVITE.replace(old, new)
    assert data != INVITE
    with pytest.raises(ParseError) as strict:
        parse_strictly(data)
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert (info.value.reason, info.value.status) == (strict.value.reason, strict.value.status)
    assert (info.value.partial is None) == (strict.value.partial is None)


def test_a_received_message_is_immutable() -> None:
    message = parse_message(INVITE)
    with pytest.raises(AttributeError):
        message.headers = ()  # type: ignore[misc]


def test_a_built_message_is_serialised_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_serialise(monkeypatch)
    message = parse_message(INVITE)
    changed = replace(message, body=b"")
    first = bytes(changed)
    assert bytes(changed) is first
    assert bytes(message) == INVITE
    assert len(calls) == 1


def _counting_serialise(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = message_types.serialise

    def counted(start_line: str, headers: tuple[Header, ...], body: bytes) -> bytes:
        calls.append(start_line)
        return original(start_line, headers, body)

    monkeypatch.setattr(message_types, "serialise", counted)
    return calls
