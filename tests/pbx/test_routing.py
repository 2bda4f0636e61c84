"""Routing an incoming INVITE (DESIGN §6): who sent it and where it goes, pure, on a fake
clock. Requests are parsed from text, as they arrive."""

from __future__ import annotations

import itertools

import pytest

from switchboard.config import parse_config
from switchboard.directory import Directory
from switchboard.pbx.destinations import GroupTarget, PstnTarget, UserTarget
from switchboard.pbx.routing import (
    CallerId,
    Challenge,
    PhoneAuth,
    PhoneSource,
    Refusal,
    Routed,
    Router,
    Stranger,
    TrunkSource,
)
from switchboard.registrar.location import LocationService
from switchboard.registrar.registrar import Registrar
from switchboard.sip.digest import answer_challenge
from switchboard.sip.message import Request, headers, parse_message
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import SipUri
from switchboard.throttle import FailureThrottle, ThrottleSettings

CONFIG = parse_config("""
[server]
sip_listen = "192.0.2.1:5060"
sip_advertised_host = "pbx.example.net"
default_domain = "example.com"

[[domains]]
name = "example.com"
api_token = "token-for-tests"
calling_number = "0506868000"
  [[domains.users]]
  id = 1
  name = "alice"
  label = "Alice Liddell"
  extension = "1001"
  did = "0501110001"
  sip_password = "alice-secret"
  [[domains.users]]
  id = 2
  name = "bob"
  extension = "1002"
  sip_password = "bob-secret"
  [[domains.users]]
  id = 3
  name = "carol"
  extension = "1003"
  [[domains.users]]
  id = 4
  name = "lobby"
  sip_password = "lobby-secret"
  contacts = ["sip:lobby@192.0.2.70:5060"]
  [[domains.groups]]
  id = 11
  name = "support"
  extension = "1111"
  did = "0501111111"
  members = ["alice", "bob"]
  [[domains.trunks]]
  name = "pstn"
  address = "198.51.100.1:5060"
  [[domains.trunks]]
  name = "named"
  address = "gw.example.net:5060"

[[domains]]
name = "other.example"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "dave"
  did = "0502220001"
  sip_password = "dave-secret"
  [[domains.groups]]
  id = 2
  name = "sales"
  did = "0502221111"
  [[domains.trunks]]
  name = "shared"
  address = "198.51.100.1:5080"

[[domains]]
name = "notrunk.example"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "erin"
  extension = "2001"
  sip_password = "erin-secret"
""")
ROUTER = Router(CONFIG)
PHONE = Peer("UDP", "192.0.2.50", 5062)
TRUNK = Peer("UDP", "198.51.100.1", 5060)
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "erin": "erin-secret"}


def _invite(uri: str, sender: str = "<sip:alice@example.com>", *extra: str) -> Request:
    lines = [
        f"INVITE {uri} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.50:5062;branch=z9hG4bK-1",
        "Max-Forwards: 70",
        f"From: {sender};tag=f1",
        f"To: <{uri}>",
        "Call-ID: call-1",
        "CSeq: 1 INVITE",
        "Contact: <sip:caller@192.0.2.50:5062>",
        *extra,
        "Content-Length: 0",
    ]
    request = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(request, Request)
    return request


def _auth(throttle: FailureThrottle | None = None) -> PhoneAuth:
    tags = (f"salt{n}" for n in itertools.count())
    registrar = Registrar(
        Directory(CONFIG),
        LocationService(),
        digest_key=b"k" * 32,
        new_tag=lambda: next(tags),
        throttle=throttle,
    )
    return PhoneAuth.of(registrar)


def _answered(
    request: Request, challenge: Challenge, username: str, password: str, nc: int = 1
) -> Request:
    assert challenge.status == 407
    value = answer_challenge(
        challenge.headers[0].value,
        method="INVITE",
        uri=str(request.uri),
        username=username,
        password=password,
        cnonce="c",
        nc=nc,
    )
    return request.with_headers((*request.headers, *headers(("Proxy-Authorization", value))))


def _call(
    request: Request,
    *,
    username: str | None = None,
    password: str | None = None,
    auth: PhoneAuth | None = None,
    now: float = 0.0,
) -> Routed | Refusal | Challenge:
    """The phone's two attempts: challenged first, then with its credentials."""
    auth = auth or _auth()
    challenge = ROUTER.route_from_phone(request, PHONE, auth, now)
    if not isinstance(challenge, Challenge):
        return challenge
    sender = request.from_.uri
    name = username or (sender.user if isinstance(sender, SipUri) else None) or ""
    answered = _answered(request, challenge, name, password or PASSWORDS.get(name, "?"))
    return ROUTER.route_from_phone(answered, PHONE, auth, now + 1.0)


# -- who sent it ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "registered", "expected"),
    [
        ("198.51.100.1", False, "pstn"),
        ("198.51.100.1", True, "pstn"),  # a trunk wins over a phone
        ("::ffff:198.51.100.1", False, "pstn"),  # an IPv4 trunk through a dual-stack socket
        ("192.0.2.50", True, PhoneSource()),
        ("192.0.2.70", False, PhoneSource()),  # a static contact's host
        ("192.0.2.50", False, Stranger()),
        ("gw.example.net", False, Stranger()),  # trunks are matched by IP, never by name
    ],
)
def test_classify_source(host: str, registered: bool, expected: object) -> None:
    source = ROUTER.classify_source(host, lambda _host: registered)
    if isinstance(expected, str):
        assert isinstance(source, TrunkSource)
        assert (source.domain.name, source.trunk.name) == ("example.com", expected)
    else:
        assert source == expected


def test_the_registered_check_gets_the_canonical_host() -> None:
    asked: list[str] = []

    def registered_from(host: str) -> bool:
        asked.append(host)
        return False

    ROUTER.classify_source("[2001:DB8::0:1]", registered_from)
    assert asked == ["2001:db8::1"]


def test_a_stranger_is_refused_403_without_a_challenge() -> None:
    decision = ROUTER.route(_invite("sip:1002@example.com"), PHONE, lambda _h: False, _auth(), 0.0)
    assert isinstance(decision, Refusal) and decision.status == 403


def test_route_sends_a_phone_to_authentication_and_a_trunk_to_its_dids() -> None:
    auth = _auth()
    phone = ROUTER.route(_invite("sip:1002@example.com"), PHONE, lambda _h: True, auth, 0.0)
    assert isinstance(phone, Challenge)
    trunk = ROUTER.route(_invite("sip:0501111111@192.0.2.1"), TRUNK, lambda _h: True, auth, 0.0)
    assert isinstance(trunk, Routed) and trunk.kind == "inbound"


# -- authentication of a phone ---------------------------------------------------------------


def test_an_invite_without_credentials_is_challenged_407_in_the_domain_realm() -> None:
    decision = ROUTER.route_from_phone(_invite("sip:1002@example.com"), PHONE, _auth(), 0.0)
    assert isinstance(decision, Challenge)
    assert (decision.status, decision.reason) == (407, "Proxy Authentication Required")
    ((name, value),) = [(h.name, h.value) for h in decision.headers]
    assert name == "Proxy-Authenticate"
    assert 'realm="example.com"' in value and 'qop="auth"' in value and "stale" not in value


def test_credentials_in_authorization_instead_of_proxy_authorization_are_challenged() -> None:
    request = _invite("sip:1002@example.com")
    auth = _auth()
    challenge = ROUTER.route_from_phone(request, PHONE, auth, 0.0)
    assert isinstance(challenge, Challenge)
    answered = _answered(request, challenge, "alice", "alice-secret")
    moved = answered.with_headers(
        h if h.name != "Proxy-Authorization" else headers(("Authorization", h.value))[0]
        for h in answered.headers
    )
    assert isinstance(ROUTER.route_from_phone(moved, PHONE, auth, 1.0), Challenge)


@pytest.mark.parametrize(
    ("sender", "username", "password", "status"),
    [
        ("<sip:alice@example.com>", "alice", "guess", 403),  # wrong password
        ("<sip:alice@example.com>", "bob", "bob-secret", 403),  # bob calling as alice
        ("<sip:alice@example.com>", "bob", "alice-secret", 403),  # the digest names bob
        ("<sip:carol@example.com>", "carol", "", 403),  # no sip_password: no calls
        ("<sip:mallory@example.com>", "mallory", "x", 403),  # no such user
    ],
)
def test_failed_authentication_is_403_and_a_warning(
    sender: str, username: str, password: str, status: int
) -> None:
    decision = _call(_invite("sip:1002@example.com", sender), username=username, password=password)
    assert isinstance(decision, Refusal)
    assert decision.status == status and decision.warning
    assert "authentication failed" in decision.log


def test_a_stale_nonce_is_challenged_again_with_stale_true() -> None:
    request = _invite("sip:1002@example.com")
    auth = _auth()
    challenge = ROUTER.route_from_phone(request, PHONE, auth, 0.0)
    assert isinstance(challenge, Challenge)
    late = ROUTER.route_from_phone(
        _answered(request, challenge, "alice", "alice-secret"), PHONE, auth, 1000.0
    )
    assert isinstance(late, Challenge) and "stale=true" in late.headers[0].value


def test_a_nonce_fetched_from_another_address_earns_a_fresh_challenge_not_a_failure() -> None:
    request = _invite("sip:1002@example.com")
    auth = _auth(FailureThrottle(ThrottleSettings(max_failures=1)))
    challenge = ROUTER.route_from_phone(request, Peer("UDP", "192.0.2.99", 5060), auth, 0.0)
    assert isinstance(challenge, Challenge)
    answered = _answered(request, challenge, "alice", "alice-secret")
    assert isinstance(ROUTER.route_from_phone(answered, PHONE, auth, 1.0), Challenge)
    assert not auth.throttle.is_blocked(PHONE.host, 1.0)


def test_a_replayed_answer_is_challenged_again() -> None:
    request = _invite("sip:1002@example.com")
    auth = _auth()
    challenge = ROUTER.route_from_phone(request, PHONE, auth, 0.0)
    assert isinstance(challenge, Challenge)
    answered = _answered(request, challenge, "alice", "alice-secret")
    assert isinstance(ROUTER.route_from_phone(answered, PHONE, auth, 1.0), Routed)
    assert isinstance(ROUTER.route_from_phone(answered, PHONE, auth, 2.0), Challenge)


def test_repeated_failures_block_the_user_at_that_source_without_a_challenge() -> None:
    auth = _auth()
    logs = []
    for attempt in range(5):
        decision = _call(_invite("sip:1002@example.com"), password="guess", auth=auth, now=attempt)
        assert isinstance(decision, Refusal) and decision.status == 403
        logs.append(decision.log)
    assert ["blocked" in log for log in logs] == [False] * 4 + [True]
    blocked = ROUTER.route_from_phone(_invite("sip:1002@example.com"), PHONE, auth, 10.0)
    assert isinstance(blocked, Refusal)
    assert (blocked.status, blocked.reason) == (403, "Too many failed attempts")
    right = _call(_invite("sip:1002@example.com"), auth=auth, now=20.0)
    assert isinstance(right, Refusal)  # even the right password, until the block ends
    assert isinstance(_call(_invite("sip:1002@example.com"), auth=auth, now=400.0), Routed)


def test_failures_of_register_and_invite_count_toward_one_block() -> None:
    auth = _auth()
    for attempt in range(4):  # four wrong REGISTER passwords, charged as the registrar does
        auth.user_throttle.record_failure("alice@example.com 192.0.2.50", float(attempt))
    decision = _call(_invite("sip:1002@example.com"), password="guess", auth=auth, now=5.0)
    assert isinstance(decision, Refusal) and "blocked" in decision.log


# -- where a phone's call goes ---------------------------------------------------------------


ALICE = CallerId("1001", "Alice Liddell")


@pytest.mark.parametrize(
    ("uri", "kind", "target"),
    [
        ("sip:1002@example.com", "internal", "user bob"),
        ("sip:bob@example.com", "internal", "user bob"),
        ("sip:1111@example.com", "internal", "group support"),
        ("sip:support@example.com", "internal", "group support"),
        ("sip:0501111111@example.com", "internal", "group support"),  # our own DID
        ("sip:1002@192.0.2.1:5060", "internal", "user bob"),  # dialled at our address
        ("sip:0312341234@example.com", "outbound", "pstn 0312341234"),
        ("sip:03-1234-1234;phone-context=x@example.com;user=phone", "outbound", "pstn 0312341234"),
        ("tel:03-1234-1234", "outbound", "pstn 0312341234"),
    ],
)
def test_a_phone_reaches_users_groups_and_the_pstn(uri: str, kind: str, target: str) -> None:
    decision = _call(_invite(uri))
    assert isinstance(decision, Routed)
    assert (decision.kind, decision.domain.name, decision.caller) == (kind, "example.com", ALICE)
    assert decision.user is not None and decision.user.name == "alice"
    assert decision.trunk is None
    assert _describe(decision) == target


def _describe(decision: Routed) -> str:
    target = decision.destination.target
    if isinstance(target, UserTarget):
        return f"user {target.user.name}"
    if isinstance(target, GroupTarget):
        return f"group {target.group.name}"
    return f"pstn {target.number}"


@pytest.mark.parametrize(
    ("sender", "calling"),
    [
        ("<sip:alice@example.com>", "0501110001"),  # her DID
        ("<sip:bob@example.com>", "0506868000"),  # no DID: the domain's calling_number
    ],
)
def test_the_pstn_caller_id_is_the_users_did_else_the_domains_number(
    sender: str, calling: str
) -> None:
    decision = _call(_invite("sip:0312341234@example.com", sender))
    assert isinstance(decision, Routed) and isinstance(decision.destination.target, PstnTarget)
    assert decision.destination.target.trunk.name == "pstn"
    assert decision.destination.calling_number == calling


def test_a_user_without_label_or_extension_is_shown_by_name() -> None:
    decision = _call(
        _invite("sip:1001@example.com", "<sip:lobby@example.com>"), password="lobby-secret"
    )
    assert isinstance(decision, Routed) and decision.caller == CallerId("lobby", "lobby")


@pytest.mark.parametrize(
    ("uri", "sender", "status", "reason"),
    [
        ("sip:nobody@example.com", "<sip:alice@example.com>", 404, "Not Found"),
        ("sip:+81312341234@example.com", "<sip:alice@example.com>", 403, "Forbidden"),
        ("sip:0101234567@example.com", "<sip:alice@example.com>", 403, "Forbidden"),  # 010
        ("sip:00123456@example.com", "<sip:alice@example.com>", 403, "Forbidden"),
        ("sip:0312341234@notrunk.example", "<sip:erin@notrunk.example>", 404, "Not Found"),
        ("sip:1001@example.com", "<sip:alice@example.com>", 486, "Busy Here"),
        ("sip:alice@example.com", "<sip:alice@example.com>", 486, "Busy Here"),
        ("sip:0501110001@example.com", "<sip:alice@example.com>", 486, "Busy Here"),
        (
            "sip:%7Bcalling_number=0506868000%7D0312341234@example.com",
            "<sip:alice@example.com>",
            404,
            "Not Found",
        ),
        ("sip:example.com", "<sip:alice@example.com>", 484, "Address Incomplete"),
    ],
)
def test_a_phone_is_refused_what_it_may_not_or_cannot_reach(
    uri: str, sender: str, status: int, reason: str
) -> None:
    decision = _call(_invite(uri, sender))
    assert isinstance(decision, Refusal)
    assert (decision.status, decision.reason) == (status, reason)
    assert not decision.warning


@pytest.mark.parametrize(
    ("uri", "sender", "status"),
    [
        ("sip:dave@other.example", "<sip:alice@example.com>", 403),  # across domains
        ("sip:1002@elsewhere.example", "<sip:alice@elsewhere.example>", 404),
        ("sip:1002@example.com", "<tel:+81501110001>", 403),  # From names no user
        ("sip:1002@example.com", "<sip:example.com>", 403),
    ],
)
def test_refused_before_any_challenge(uri: str, sender: str, status: int) -> None:
    decision = ROUTER.route_from_phone(_invite(uri, sender), PHONE, _auth(), 0.0)
    assert isinstance(decision, Refusal) and decision.status == status


@pytest.mark.parametrize(
    ("uri", "sender"),
    [
        ("sip:1002@192.0.2.1", "<sip:alice@192.0.2.1>"),  # the listening address
        ("sip:1002@PBX.example.NET", "<sip:alice@pbx.example.net:5060>"),  # advertised
        ("sip:1002@example.com", "<sip:alice@elsewhere.example>"),  # the Request-URI's
    ],
)
def test_the_callers_domain_from_the_server_address_or_the_request_uri(
    uri: str, sender: str
) -> None:
    challenge = ROUTER.route_from_phone(_invite(uri, sender), PHONE, _auth(), 0.0)
    assert isinstance(challenge, Challenge)
    assert 'realm="example.com"' in challenge.headers[0].value
    decision = _call(_invite(uri, sender))
    assert isinstance(decision, Routed) and decision.domain.name == "example.com"
    assert _describe(decision) == "user bob"


def test_without_a_default_domain_the_server_address_names_no_domain() -> None:
    router = Router(parse_config('[server]\nsip_listen = "192.0.2.1:5060"\n' + TWO_DOMAINS))
    sender = "<sip:alice@192.0.2.1>"
    decision = router.route_from_phone(_invite("sip:1002@192.0.2.1", sender), PHONE, _auth(), 0.0)
    assert isinstance(decision, Refusal) and decision.status == 404
    assert router.domain_for_host("192.0.2.1") is None
    assert router.domain_for_host("Example.COM") is not None


TWO_DOMAINS = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
[[domains]]
name = "other.example"
api_token = "token-for-tests"
"""


def test_a_malformed_from_is_400() -> None:
    request = _invite("sip:1002@example.com").with_headers(
        headers(("From", "<sip:alice@example.com"), ("Via", "SIP/2.0/UDP 192.0.2.50"))
    )
    decision = ROUTER.route_from_phone(request, PHONE, _auth(), 0.0)
    assert isinstance(decision, Refusal) and decision.status == 400


# -- calls from a trunk ----------------------------------------------------------------------


def _trunk_source() -> TrunkSource:
    source = ROUTER.classify_source("198.51.100.1", lambda _h: False)
    assert isinstance(source, TrunkSource) and source.trunk.name == "pstn"
    return source


@pytest.mark.parametrize(
    ("uri", "domain", "target"),
    [
        ("sip:0501111111@192.0.2.1", "example.com", "group support"),
        ("sip:0501110001@192.0.2.1;user=phone", "example.com", "user alice"),
        ("sip:050-111-1111@192.0.2.1;user=phone", "example.com", "group support"),
        ("tel:0501111111", "example.com", "group support"),
        ("sip:0502221111@192.0.2.1", "other.example", "group sales"),  # a shared gateway
        ("sip:0502220001@192.0.2.1", "other.example", "user dave"),
    ],
)
def test_a_trunk_rings_the_owner_of_a_did(uri: str, domain: str, target: str) -> None:
    decision = ROUTER.route_from_trunk(
        _invite(uri, "<sip:0312345678@198.51.100.1>"), _trunk_source()
    )
    assert isinstance(decision, Routed)
    assert (decision.kind, decision.domain.name, _describe(decision)) == ("inbound", domain, target)
    assert decision.user is None and decision.trunk is not None
    assert decision.trunk.name == ("pstn" if domain == "example.com" else "shared")
    assert decision.caller == CallerId("0312345678", None)


@pytest.mark.parametrize(
    ("uri", "status"),
    [
        ("sip:0599999999@192.0.2.1", 404),  # nobody's DID
        ("sip:1111@192.0.2.1", 404),  # an extension is not a DID
        ("sip:support@192.0.2.1", 404),  # nor is a name
        ("sip:+81501111111@192.0.2.1", 404),  # no number rewriting
        ("sip:192.0.2.1", 484),
        ("mailto:ops@example.com", 416),
    ],
)
def test_a_trunk_is_refused_anything_but_a_did(uri: str, status: int) -> None:
    decision = ROUTER.route_from_trunk(_invite(uri), _trunk_source())
    assert isinstance(decision, Refusal) and decision.status == status


@pytest.mark.parametrize(
    ("sender", "extra", "expected"),
    [
        ('"Tanaka" <sip:0312345678@198.51.100.1>', (), CallerId("0312345678", "Tanaka")),
        (
            '"Tanaka" <sip:anonymous@anonymous.invalid>',
            ("P-Asserted-Identity: <sip:0312345678@198.51.100.1;user=phone>",),
            CallerId("0312345678", "Tanaka"),
        ),
        (
            "<sip:0312345678@198.51.100.1>",
            ('P-Asserted-Identity: "Gw" <tel:+81-3-1234-5678>, <sip:x@198.51.100.1>',),
            CallerId("+81312345678", None),
        ),
        (
            "<sip:0312345678@198.51.100.1>",
            ("P-Asserted-Identity: <sip:198.51.100.1>",),  # no number in it: From's
            CallerId("0312345678", None),
        ),
        (
            "<sip:0312345678@198.51.100.1>",
            ("P-Asserted-Identity: <sip:broken",),  # malformed: From's
            CallerId("0312345678", None),
        ),
    ],
)
def test_the_caller_id_of_a_trunk_call(
    sender: str, extra: tuple[str, ...], expected: CallerId
) -> None:
    decision = ROUTER.route_from_trunk(
        _invite("sip:0501111111@192.0.2.1", sender, *extra), _trunk_source()
    )
    assert isinstance(decision, Routed) and decision.caller == expected
