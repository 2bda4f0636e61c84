"""RFC 4475 torture messages: valid ones parse and round-trip, invalid ones are rejected.

Sections: §3.1.1 valid messages; §3.1.2 invalid messages; §3.2 and §3.3 messages that are
syntactically valid but test transaction and application semantics (except ``insuf``,
``multi01`` and ``mcl01``, which a parser must reject); §3.4 RFC 2543 compatibility.
"""

from __future__ import annotations

import pytest

from switchboard.sip.address import parse_address
from switchboard.sip.errors import ParseError
from switchboard.sip.message import Request, Response, parse_message
from switchboard.sip.uri import AbsoluteUri, SipUri
from tests.sip.torture import load, names

VALID = [
    # §3.1.1
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
    # §3.2, §3.3 (syntactically valid), §3.4
    "badbranch",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
    "inv2543",
]
INVALID = [
    # §3.1.2
    "badinv01",
    "clerr",
    "ncl",
    "scalar02",
    "scalarlg",
    "quotbal",
    "ltgtruri",
    "lwsruri",
    "lwsstart",
    "trws",
    "escruri",
    "baddate",
    "regbadct",
    "badaspec",
    "baddn",
    "badvers",
    "mismatch01",
    "mismatch02",
    "bigcode",
    # §3.3 messages a parser must refuse
    "insuf",
    "multi01",
    "mcl01",
]


def _without_length(message: Request | Response) -> Request | Response:
    return message.with_headers(h for h in message.headers if h.key != "content-length")


def test_every_message_of_the_rfc_is_classified() -> None:
    assert sorted(VALID + INVALID) == names()


@pytest.mark.parametrize("name", VALID)
def test_valid_message_parses_and_round_trips(name: str) -> None:
    message = parse_message(load(name))
    again = parse_message(bytes(message))
    # Serialising always writes a Content-Length (inv2543 had none): compare the rest.
    assert _without_length(again) == _without_length(message)
    assert again.body == message.body
    assert bytes(again) == bytes(message)


@pytest.mark.parametrize("name", INVALID)
def test_invalid_message_is_rejected(name: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load(name))
    assert info.value.reason


def test_badvers_asks_for_505() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load("badvers"))
    assert info.value.status == 505


def test_invalid_requests_that_can_be_answered_carry_the_partial_request() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(load("mismatch01"))
    assert isinstance(info.value.partial, Request)


def test_wsinv_details() -> None:
    message = parse_message(load("wsinv"))
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.cseq.number == 9
    assert message.get("Max-Forwards") == "0068"
    assert message.from_.display_name == 'J Rosenberg \\"'
    assert message.from_.tag == "98asjd8"
    assert message.to.tag == "1918181833n"
    vias = message.vias
    assert [v.transport for v in vias] == ["UDP", "TCP", "UDP"]
    assert [v.branch for v in vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert vias[1].host == "spindle.example.com"
    assert message.get("Subject") == ""
    assert message.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert message.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = message.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params.get("newparam") == "newvalue"
    assert "secondparam" in contact.params
    assert contact.params.get("q") == "0.33"
    assert len(message.body) == 150


def test_intmeth_unusual_characters() -> None:
    message = parse_message(load("intmeth"))
    assert isinstance(message, Request)
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert isinstance(message.uri, SipUri)
    assert message.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert message.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert message.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert message.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert message.from_.tag == "_token~1'+`*%!-."
    assert message.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_esc02_percent_is_not_an_escape_in_names() -> None:
    message = parse_message(load("esc02"))
    assert isinstance(message, Request)
    assert message.method == "RE%47IST%45R"
    assert len(message.contacts) == 2  # C%6Fntact is another header
    assert message.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_semiuri_user_part_holds_a_semicolon() -> None:
    message = parse_message(load("semiuri"))
    assert isinstance(message.uri if isinstance(message, Request) else None, SipUri)
    assert isinstance(message, Request) and isinstance(message.uri, SipUri)
    assert message.uri.user == "user;par=u%40example.net"
    assert message.uri.host == "example.com"
    assert len(message.get_all("Accept")) == 6


def test_dblreq_ignores_trailing_octets_of_the_datagram() -> None:
    message = parse_message(load("dblreq"))
    assert isinstance(message, Request) and message.method == "REGISTER"
    assert message.body == b""


def test_longreq_keeps_34_vias_in_order() -> None:
    message = parse_message(load("longreq"))
    vias = message.vias
    assert len(vias) == 34
    assert vias[0].host == "sip33.example.com"
    assert vias[-1].params.get("received") == "192.0.2.5"


def test_responses_without_or_with_unusual_reason() -> None:
    noreason = parse_message(load("noreason"))
    assert isinstance(noreason, Response) and (noreason.status, noreason.reason) == (100, "")
    unreason = parse_message(load("unreason"))
    assert isinstance(unreason, Response) and unreason.reason.startswith("= 2**3 * 5**2 но")


def test_unknown_schemes_parse_opaquely() -> None:
    message = parse_message(load("unkscm"))
    assert isinstance(message, Request) and isinstance(message.uri, AbsoluteUri)
    unksm2 = parse_message(load("unksm2"))
    assert isinstance(unksm2.to.uri, AbsoluteUri)


def test_addr_spec_parameters_belong_to_the_header() -> None:
    contact = parse_address("sip:+19725552222@gw1.example.net;unknownparam")
    assert isinstance(contact.uri, SipUri) and len(contact.uri.params) == 0
    assert "unknownparam" in contact.params
