"""The fast paths against the general ones: whatever the fast parser accepts, the strict
parser accepts and builds the same message from; every recogniser describes a subset of the
full grammar; a plainly written URI, address or Via builds as the general rules build it."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.sip.address import parse_address, parse_any_address
from switchboard.sip.errors import ParseError
from switchboard.sip.fast_parser import parse_well_formed
from switchboard.sip.headers import COMPACT_FORMS
from switchboard.sip.message import Message, Request, parse_cseq
from switchboard.sip.recognisers import (
    ADDR_SPEC,
    ADDR_SPEC_PARTS,
    CSEQ,
    NAME_ADDR,
    NAME_ADDR_PARTS,
    REQUEST_URI,
    SIP_URI_PARTS,
    VIA,
    VIA_PARTS,
    address_params,
    is_contact,
    is_via,
)
from switchboard.sip.strict_parser import parse_strictly
from switchboard.sip.uri import SipUri, parse_any_uri, parse_uri
from switchboard.sip.via import parse_any_via, parse_via
from tests.sip.messages import INVITE, REGISTER, RINGING
from tests.sip.torture import load, names

PLAIN = [INVITE, RINGING, REGISTER]
SEEDS = PLAIN + [load(name) for name in names()]


def _same(fast: Message, strict: Message) -> None:
    assert fast == strict
    assert fast.body == strict.body
    for key in {h.key for h in strict.headers}:
        assert fast.get_all(key) == strict.get_all(key)
        assert fast.get(key) == strict.get(key)
    assert fast.cseq == strict.cseq and fast.call_id == strict.call_id
    assert fast.vias == strict.vias and fast.top_via == strict.top_via
    assert (fast.from_, fast.to, fast.contacts) == (strict.from_, strict.to, strict.contacts)
    if isinstance(fast, Request):
        assert isinstance(strict, Request) and fast.uri == strict.uri


def _check(data: bytes) -> None:
    data = data.lstrip(b"\r\n")
    fast = parse_well_formed(data)
    if fast is None:
        return  # the strict parser decides
    try:
        strict = parse_strictly(data)
    except ParseError as exc:
        raise AssertionError(f"fast parser accepted what the strict one rejects: {exc}") from exc
    _same(fast, strict)
    again = parse_well_formed(bytes(fast))
    assert again is not None
    # Serialising always writes a Content-Length (inv2543 had none): compare the rest.
    assert _without_length(again) == _without_length(fast)


def _without_length(message: Message) -> Message:
    return message.with_headers(h for h in message.headers if h.key != "content-length")


def test_plain_messages_take_the_fast_path() -> None:
    for data in PLAIN:
        message = parse_well_formed(data)
        assert message is not None
        _same(message, parse_strictly(data))


def test_torture_messages_agree() -> None:
    for name in names():
        _check(load(name))


_INSERTS = [b"\r\n", b":", b";", b",", b'"', b"<", b">", b" ", b"\t", b"=", b"@", b"0", b"\xff"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS + PLAIN * 10)))  # mostly plain: fast path
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["flip", "insert", "delete"]))
        if kind == "flip" and data:
            data[position] = draw(st.integers(32, 126))
        elif kind == "insert":
            data[position:position] = draw(st.sampled_from(_INSERTS))
        else:
            del data[position : position + draw(st.integers(1, 8))]
    return bytes(data)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_agree(data: bytes) -> None:
    _check(data)


@pytest.mark.parametrize("compact", sorted(COMPACT_FORMS))
def test_every_compact_form_builds_as_the_strict_parser_builds_it(compact: str) -> None:
    """Found by the mutations above: a compact form whose long name the parser does not
    otherwise know ("a", Accept-Contact) failed when the headers were first read."""
    head, _, rest = INVITE.partition(b"\r\n")
    data = head + f"\r\n{compact}: x\r\n".encode() + rest
    if compact in "ftivlcm":  # those the INVITE has, and whose values must be addresses
        return
    assert parse_well_formed(data) is not None  # the fast path is what is tested
    _check(data)


def _matching(pattern: re.Pattern[str]) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(_matching(REQUEST_URI))
def test_a_recognised_request_uri_parses_without_headers(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri) and uri.headers is None


@settings(max_examples=500, deadline=None)
@given(st.one_of(_matching(NAME_ADDR), _matching(ADDR_SPEC)))
def test_a_recognised_address_parses(text: str) -> None:
    params = address_params(text)
    if params is not None:
        address = parse_address(text)
        assert not address.is_wildcard
        if is_contact(text, 2**32 - 1):
            expires = address.params.get("expires")
            assert expires is None or 0 <= int(expires) < 2**32


@settings(max_examples=500, deadline=None)
@given(_matching(VIA))
def test_a_recognised_via_parses(text: str) -> None:
    if is_via(text):
        parse_via(text)


@settings(max_examples=300, deadline=None)
@given(_matching(CSEQ))
def test_a_recognised_cseq_parses(text: str) -> None:
    match = CSEQ.match(text)
    assert match is not None
    if int(match.group(1)) < 2**31:
        assert parse_cseq(text).method == match.group(2)


@settings(max_examples=500, deadline=None)
@given(_matching(SIP_URI_PARTS))
def test_a_plain_uri_builds_as_the_general_rules_build_it(text: str) -> None:
    try:
        expected = parse_any_uri(text)
    except ParseError:
        expected = None
    assert parse_uri(text) == expected


@settings(max_examples=500, deadline=None)
@given(st.one_of(_matching(NAME_ADDR_PARTS), _matching(ADDR_SPEC_PARTS)))
def test_a_plain_address_builds_as_the_general_rules_build_it(text: str) -> None:
    assert parse_address(text) == parse_any_address(text)


@settings(max_examples=500, deadline=None)
@given(_matching(VIA_PARTS))
def test_a_plain_via_builds_as_the_general_rules_build_it(text: str) -> None:
    try:
        expected = parse_any_via(text)
    except ParseError:
        with pytest.raises(ParseError):
            parse_via(text)
        return
    assert parse_via(text) == expected


def test_a_bare_cr_in_a_header_line_goes_to_the_strict_parser() -> None:
    """Found by the mutation test: ``Phone/1.0\\r\\r\\n`` kept the CR in the fast value."""
    data = REGISTER.replace(b"Phone/1.0\r\n", b"Phone/1.0\r\r\n", 1)
    assert data != REGISTER
    assert parse_well_formed(data) is None
    _check(data)
