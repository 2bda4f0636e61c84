"""REGISTER processing (RFC 3261 §10.3), pure, with a fake clock."""

from __future__ import annotations

import itertools

import pytest

from switchboard.config import parse_config
from switchboard.directory import Directory
from switchboard.registrar.location import Binding, LocationService
from switchboard.registrar.registrar import RegisterDecision, Registrar, RegistrarSettings, apply
from switchboard.sip.digest import answer_challenge
from switchboard.sip.message import Request, headers
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import SipUri, parse_uri
from switchboard.throttle import FailureThrottle, ThrottleSettings

CONFIG_TEXT = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
  [[domains.users]]
  id = 2
  name = "bob"
  sip_password = "bob-secret"
"""
CONFIG = parse_config(CONFIG_TEXT)
PHONE = Peer("UDP", "192.0.2.50", 5062)
_cseq = itertools.count(1)


def _registrar(
    throttle: FailureThrottle | None = None, settings: RegistrarSettings | None = None
) -> Registrar:
    tags = (f"tag{n}" for n in itertools.count())
    return Registrar(
        Directory(CONFIG), LocationService(), digest_key=b"k" * 32, new_tag=lambda: next(tags),
        throttle=throttle, settings=settings,
    )  # fmt: skip


def _register(
    user: str = "alice",
    *contacts: str,
    expires: str | None = None,
    call_id: str = "reg-1",
    authorization: str | None = None,
    domain: str = "example.com",
    extra: tuple[tuple[str, str], ...] = (),
) -> Request:
    pairs = [
        ("Via", f"SIP/2.0/UDP 192.0.2.50:5062;branch=z9hG4bK{next(_cseq)}"),
        ("From", f"<sip:{user}@{domain}>;tag=f1"),
        ("To", f"<sip:{user}@{domain}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{next(_cseq)} REGISTER"),
        ("Max-Forwards", "70"),
        *[("Contact", c) for c in contacts],
        *extra,
    ]
    if expires is not None:
        pairs.append(("Expires", expires))
    if authorization:
        pairs.append(("Authorization", authorization))
    return Request("REGISTER", parse_uri(f"sip:{domain}"), headers(*pairs))


def _authorized(registrar: Registrar, request: Request, now: float, password: str) -> Request:
    challenge = registrar.handle(request, PHONE, now).response
    assert challenge.status == 401
    assert isinstance(request.to.uri, SipUri) and request.to.uri.user
    value = answer_challenge(
        challenge.get_all("WWW-Authenticate")[0], method="REGISTER", uri=str(request.uri),
        username=request.to.uri.user, password=password, cnonce="c", nc=1,
    )  # fmt: skip
    return request.with_headers((*request.headers, headers(("Authorization", value))[0]))


def _register_ok(
    registrar: Registrar, now: float, *contacts: str, password: str = "alice-secret", **kw: object
) -> RegisterDecision:
    request = _register("alice", *contacts, **kw)  # type: ignore[arg-type]
    decision = registrar.handle(_authorized(registrar, request, now, password), PHONE, now)
    apply(registrar.location, decision)
    return decision


def test_first_register_is_challenged_in_the_domain_realm_with_md5_by_default() -> None:
    request = _register("alice", "<sip:alice@192.0.2.50:5062>")
    response = _registrar().handle(request, PHONE, 0.0).response
    assert response.status == 401
    (challenge,) = response.get_all("WWW-Authenticate")
    assert 'realm="example.com"' in challenge and "algorithm=MD5" in challenge


def test_sha256_can_be_offered_and_is_verified() -> None:
    settings = RegistrarSettings(digest_algorithms=("SHA-256", "MD5"))
    registrar = _registrar(settings=settings)
    request = _register("alice", "<sip:alice@192.0.2.50>")
    authorized = _authorized(registrar, request, 0.0, "alice-secret")
    assert "algorithm=SHA-256" in (authorized.get("Authorization") or "")
    assert registrar.handle(authorized, PHONE, 1.0).response.status == 200


def test_authenticated_register_binds_and_echoes_every_contact_with_expires() -> None:
    registrar = _registrar()
    decision = _register_ok(
        registrar, 1000.0, "<sip:alice@192.0.2.50:5062>;q=0.7", "<sip:alice@192.0.2.51>;expires=120"
    )
    assert decision.response.status == 200
    contacts = decision.response.get_all("Contact")
    assert contacts == [
        "<sip:alice@192.0.2.51>;expires=120",
        "<sip:alice@192.0.2.50:5062>;expires=3600;q=0.7",
    ]
    bindings = registrar.location.bindings(("example.com", "alice"), 1000.0)
    assert [b.q for b in bindings] == [None, "0.7"]  # q orders terminals, 1.0 by default
    assert bindings[1].received == "UDP:192.0.2.50:5062"


def test_wrong_password_and_unknown_user_never_bind_and_sources_get_throttled() -> None:
    throttle = FailureThrottle(ThrottleSettings(max_failures=3, window=60, block_seconds=300))
    registrar = _registrar(throttle)
    for now in (1.0, 2.0):
        decision = _register_ok(registrar, now, "<sip:alice@192.0.2.50>", password="guess")
        assert decision.response.status == 403 and decision.warning
    unknown = _register("mallory", "<sip:m@192.0.2.9>")
    unknown = _authorized(registrar, unknown, 3.0, "whatever")
    decision = registrar.handle(unknown, PHONE, 3.0)
    assert decision.response.status == 403 and "blocked" in decision.log
    blocked = registrar.handle(_register("alice", "<sip:alice@192.0.2.50>"), PHONE, 4.0)
    assert blocked.response.status == 403  # not even challenged
    assert registrar.location.count() == 0
    assert registrar.handle(_register("alice"), PHONE, 304.0).response.status == 401


def test_credentials_of_one_user_cannot_register_another() -> None:
    registrar = _registrar()
    request = _register("bob", "<sip:bob@192.0.2.60>")
    challenge = registrar.handle(request, PHONE, 0.0).response
    value = answer_challenge(challenge.get_all("WWW-Authenticate")[0], method="REGISTER",
                             uri="sip:example.com", username="alice", password="alice-secret",
                             cnonce="c")  # fmt: skip
    forged = request.with_headers((*request.headers, *headers(("Authorization", value))))
    assert registrar.handle(forged, PHONE, 1.0).response.status == 403


def test_too_brief_interval_is_423_with_min_expires_and_long_ones_are_shortened() -> None:
    registrar = _registrar()
    decision = _register_ok(registrar, 0.0, "<sip:alice@192.0.2.50>", expires="30")
    assert decision.response.status == 423
    assert decision.response.get("Min-Expires") == "60"
    decision = _register_ok(registrar, 0.0, "<sip:alice@192.0.2.50>", expires="86400")
    assert decision.response.get("Contact") == "<sip:alice@192.0.2.50>;expires=3600"


def test_unregister_one_contact_then_all_with_star() -> None:
    registrar = _registrar()
    _register_ok(registrar, 0.0, "<sip:alice@192.0.2.50>", "<sip:alice@192.0.2.51>")
    one = _register_ok(registrar, 10.0, "<sip:alice@192.0.2.50>;expires=0")
    assert one.response.get_all("Contact") == ["<sip:alice@192.0.2.51>;expires=3590"]
    assert [b.contact for b in one.removals] == ["sip:alice@192.0.2.50"]
    everything = _register_ok(registrar, 20.0, "*", expires="0")
    assert everything.response.status == 200 and everything.response.get("Contact") is None
    assert registrar.location.count() == 0


def test_star_needs_expires_zero_and_no_other_contact() -> None:
    registrar = _registrar()
    assert _register_ok(registrar, 0.0, "*", expires="60").response.status == 400
    mixed = _register_ok(registrar, 0.0, "*", "<sip:alice@192.0.2.5>", expires="0")
    assert mixed.response.status == 400


def test_query_without_contact_lists_bindings() -> None:
    registrar = _registrar()
    _register_ok(registrar, 0.0, "<sip:alice@192.0.2.50>")
    decision = _register_ok(registrar, 100.0)
    assert decision.response.get_all("Contact") == ["<sip:alice@192.0.2.50>;expires=3500"]
    assert decision.upserts == () and decision.removals == ()


def test_out_of_order_register_with_same_call_id_is_refused() -> None:
    registrar = _registrar()
    request = _register("alice", "<sip:alice@192.0.2.50>", call_id="same")
    first = registrar.handle(_authorized(registrar, request, 0.0, "alice-secret"), PHONE, 0.0)
    apply(registrar.location, first)
    again = _authorized(registrar, request, 1.0, "alice-secret")  # the same CSeq number
    assert registrar.handle(again, PHONE, 1.0).response.status == 500


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (_register("alice", domain="elsewhere.example"), 404),
        (_register("alice", extra=(("Require", "gruu"),)), 420),
    ],
)
def test_unknown_domain_and_unsupported_extensions(request_: Request, status: int) -> None:
    response = _registrar().handle(request_, PHONE, 0.0).response
    assert response.status == status
    assert response.to.tag  # §8.2.6.2


def test_expired_nonce_gets_a_stale_challenge_not_a_refusal() -> None:
    registrar = _registrar()
    request = _authorized(
        registrar, _register("alice", "<sip:alice@192.0.2.50>"), 0.0, "alice-secret"
    )
    response = registrar.handle(request, PHONE, 1000.0).response
    assert response.status == 401
    assert "stale=true" in response.get_all("WWW-Authenticate")[0]


def test_contacts_we_would_never_send_to_are_refused_with_a_clear_reason() -> None:
    """Toll fraud through a Contact naming the trunk; a WebRTC client's ``.invalid``."""
    settings = RegistrarSettings(trunk_addresses=frozenset({("192.0.2.200", 5060)}))
    registrar = _registrar(settings=settings)
    for contact, status, reason in [
        ("<sip:00449001234567@192.0.2.200>", 403, "Contact names a trunk"),
        ("<sip:00449001234567@192.0.2.200:5060;transport=udp>", 403, "Contact names a trunk"),
        ("<sip:x@df7jal23ls0d.invalid;transport=ws>", 400, "Contact host is .invalid"),
    ]:
        response = _register_ok(registrar, 1.0, contact).response
        assert (response.status, response.reason) == (status, reason + _tail(reason))
    assert registrar.location.count() == 0
    assert _register_ok(registrar, 2.0, "<sip:alice@192.0.2.200:5062>").response.status == 200


def _tail(reason: str) -> str:
    return ": no address to reach" if reason.endswith("invalid") else ""


def test_a_user_keeps_at_most_max_contacts_bindings() -> None:
    registrar = _registrar(settings=RegistrarSettings(max_contacts=3))
    flood = [f"<sip:alice@192.0.2.{n}>" for n in range(1, 301)]
    refused = _register_ok(registrar, 1.0, *flood).response
    assert (refused.status, refused.reason) == (403, "Too many contacts (at most 3 per user)")
    assert registrar.location.count() == 0
    assert _register_ok(registrar, 2.0, *flood[:3], call_id="r2").response.status == 200
    more = _register_ok(registrar, 3.0, flood[3], call_id="r3").response
    assert more.status == 403 and registrar.location.count() == 3


def test_a_binding_is_rung_where_its_register_came_from() -> None:
    registrar = _registrar()
    _register_ok(registrar, 1.0, "<sip:alice@10.0.0.5:5060>")  # a private address behind NAT
    (binding,) = registrar.location.bindings(("example.com", "alice"), 1.0)
    assert binding.source == PHONE
    for received in ("TCP:::1:50000", "TCP:[::1]:50000"):
        binding = Binding("d", "u", "sip:u@h", 1.0, "c", 1, received=received)
        assert binding.source == Peer("TCP", "::1", 50000)
    assert Binding("d", "u", "sip:u@h", 1.0, "c", 1).source is None  # stored before 'received'


def test_lockout_counts_per_user_and_source() -> None:
    """A phone with a wrong password locks out itself, not its office's other phones
    behind the same address, nor itself elsewhere."""
    registrar = _registrar()  # five failures of one user from one source
    for now in range(5):
        assert _register_ok(registrar, float(now), "<sip:alice@192.0.2.50>", password="old").warning
    locked = registrar.handle(_register("alice", "<sip:alice@192.0.2.50>"), PHONE, 6.0)
    assert (locked.response.status, locked.response.reason) == (403, "Too many failed attempts")
    bob = _register("bob", "<sip:bob@192.0.2.50>")
    assert registrar.handle(bob, PHONE, 6.0).response.status == 401  # same address, bob
    elsewhere = Peer("UDP", "192.0.2.51", 5062)
    assert registrar.handle(_register("alice"), elsewhere, 6.0).response.status == 401


@pytest.mark.parametrize("q", ["0_5", "nan", "1e-1", "1.5", "0.1234", "²"])
def test_q_values_follow_the_rfc_grammar(q: str) -> None:
    response = _register_ok(_registrar(), 1.0, f"<sip:alice@192.0.2.50>;q={q}").response
    assert (response.status, response.reason) == (400, "Malformed q value")


def test_an_absurd_stored_source_port_is_no_address() -> None:
    for received in ("UDP:192.0.2.1:" + "9" * 5000, "UDP:192.0.2.1:²", "UDP:192.0.2.1:0"):
        assert Binding("d", "u", "sip:u@h", 1.0, "c", 1, received=received).source is None


# -- phones that use the server's address as their domain -------------------------------

TWO_DOMAINS = """
[server]
sip_listen = "0.0.0.0:5060"
sip_advertised_host = "PBX.example.net"
{default}
[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
[[domains]]
name = "other.example"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "other-secret"
"""


def _registrar_for(text: str) -> Registrar:
    config = parse_config(text)
    tags = (f"tag{n}" for n in itertools.count())
    return Registrar(
        Directory(config),
        LocationService(),
        digest_key=b"k" * 32,
        new_tag=lambda: next(tags),
        settings=RegistrarSettings.for_config(config),
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "LOCALHOST", "127.0.0.1:5060"])
def test_a_register_to_the_server_address_binds_in_the_only_domain_under_its_name(
    host: str,
) -> None:
    registrar = _registrar_for(CONFIG_TEXT)  # listening on 127.0.0.1, one domain
    request = _register("alice", "<sip:alice@192.0.2.50:5062>", domain=host)
    challenge = registrar.handle(request, PHONE, 0.0).response
    assert 'realm="example.com"' in challenge.get_all("WWW-Authenticate")[0]
    authorized = _authorized(registrar, request, 0.0, "alice-secret")
    decision = registrar.handle(authorized, PHONE, 1.0)
    assert decision.response.status == 200
    assert [b.aor for b in decision.upserts] == [("example.com", "alice")]


@pytest.mark.parametrize(
    ("default", "host", "expected"),
    [
        ("", "pbx.example.net", None),  # two domains, no default: which one? 404
        ('default_domain = "other.example"', "pbx.example.net", "other.example"),
        ('default_domain = "other.example"', "pbx.EXAMPLE.net.", "other.example"),
        ('default_domain = "other.example"', "example.com", "example.com"),  # a domain wins
        ('default_domain = "other.example"', "0.0.0.0", None),  # a wildcard is nobody's name
        ('default_domain = "other.example"', "192.0.2.1", None),  # not our address
    ],
)
def test_the_server_address_names_the_default_domain(
    default: str, host: str, expected: str | None
) -> None:
    registrar = _registrar_for(TWO_DOMAINS.format(default=default))
    domain = registrar.domain_for(host)
    assert (domain.name if domain else None) == expected
    response = registrar.handle(_register("alice", "<sip:a@192.0.2.50>", domain=host), PHONE, 0.0)
    if expected is None:
        assert response.response.status == 404
    else:
        assert response.response.status == 401
        assert f'realm="{expected}"' in response.response.get_all("WWW-Authenticate")[0]


def test_settings_for_config_carry_contacts_trunks_and_the_server_address() -> None:
    config = parse_config(
        '[server]\nmax_contacts = 3\nsip_advertised_host = "192.0.2.1"\n'
        + CONFIG_TEXT
        + '  [[domains.trunks]]\n  name = "pstn"\n  address = "GW.example.net:5080"\n'
    )
    settings = RegistrarSettings.for_config(config)
    assert settings.max_contacts == 3
    assert settings.trunk_addresses == {("gw.example.net", 5080)}
    assert settings.server_hosts == {"192.0.2.1", "127.0.0.1", "localhost"}
    assert settings.default_domain == "example.com"
