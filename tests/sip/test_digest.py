"""Digest authentication (RFC 7616, RFC 8760) with the RFC 7616 §3.9.1 example."""

from __future__ import annotations

import itertools

import pytest

from switchboard.sip.digest import (
    DigestServer,
    answer_challenge,
    compute_response,
    parse_auth_params,
    pick_challenge,
)

PHONE = "192.0.2.50"


def _server(key: bytes, nonce_ttl: float = 300.0) -> DigestServer:
    salts = (f"s{n}" for n in itertools.count())
    return DigestServer("example.com", key, nonce_salt=lambda: next(salts), nonce_ttl=nonce_ttl)


def test_every_challenge_has_its_own_nonce_even_in_the_same_millisecond() -> None:
    server = _server(b"k")
    nonces = {parse_auth_params(server.challenges(5.0, PHONE)[0])[1]["nonce"] for _ in range(3)}
    assert len(nonces) == 3


RFC7616_EXAMPLE = {
    "username": "Mufasa",
    "realm": "http-auth@example.org",
    "password": "Circle of Life",
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "qop": "auth",
    "nc": "00000001",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example_responses(algorithm: str, expected: str) -> None:
    assert compute_response(algorithm=algorithm, **RFC7616_EXAMPLE) == expected


def test_challenges_offer_md5_then_sha256_and_the_client_takes_the_topmost() -> None:
    server = _server(b"k")
    values = server.challenges(100.0, PHONE)
    algorithms = [parse_auth_params(v)[1]["algorithm"] for v in values]
    assert algorithms == ["MD5", "SHA-256"]
    assert pick_challenge(values) == values[0]
    assert (
        pick_challenge(['Digest realm="r", nonce="n", algorithm=SHA-512', values[1]]) == values[1]
    )


@pytest.mark.parametrize("index", [0, 1], ids=["sha256", "md5"])
def test_client_answer_verifies_on_the_server(index: int) -> None:
    server = _server(b"secret-key")
    challenge = server.challenges(1000.0, PHONE)[index]
    credentials = answer_challenge(
        challenge,
        method="REGISTER",
        uri="sip:example.com",
        username="alice",
        password="pw",
        cnonce="abc",
    )
    verdict = server.verify(credentials, "REGISTER", "pw", 1001.0, PHONE)
    assert verdict.ok and verdict.username == "alice"


def test_wrong_password_unknown_user_and_replay_fail() -> None:
    server = _server(b"secret-key")
    challenge = server.challenges(0.0, PHONE)[0]
    good = answer_challenge(
        challenge,
        method="INVITE",
        uri="sip:b@example.com",
        username="alice",
        password="pw",
        cnonce="c1",
    )
    assert not server.verify(good, "INVITE", "other", 1.0, PHONE).ok
    assert not server.verify(good, "INVITE", None, 1.0, PHONE).ok
    assert server.verify(good, "INVITE", "pw", 1.0, PHONE).ok
    replay = server.verify(good, "INVITE", "pw", 2.0, PHONE)
    assert not replay.ok and replay.reason == "replayed nonce count"


def test_expired_nonce_with_right_password_is_stale() -> None:
    server = _server(b"secret-key", nonce_ttl=30)
    challenge = server.challenges(0.0, PHONE)[0]
    credentials = answer_challenge(
        challenge,
        method="REGISTER",
        uri="sip:example.com",
        username="alice",
        password="pw",
        cnonce="c",
    )
    verdict = server.verify(credentials, "REGISTER", "pw", 31.0, PHONE)
    assert not verdict.ok and verdict.stale
    assert "stale=true" in server.challenges(31.0, PHONE, stale=True)[0]


def test_forged_nonce_and_garbage_are_refused_without_exceptions() -> None:
    server = _server(b"secret-key")
    other = _server(b"another-key")
    forged = answer_challenge(
        other.challenges(0.0, PHONE)[0],
        method="REGISTER",
        uri="sip:example.com",
        username="a",
        password="pw",
        cnonce="c",
    )
    assert server.verify(forged, "REGISTER", "pw", 1.0, PHONE).reason == "forged nonce"
    for garbage in ["", "Digest", 'Digest username="a', "Basic abc", "Digest nonce=@@@"]:
        assert not server.verify(garbage, "REGISTER", "pw", 1.0, PHONE).ok


def _answer(challenge: str, *, cnonce: str) -> str:
    return answer_challenge(
        challenge,
        method="REGISTER",
        uri="sip:example.com",
        username="alice",
        password="pw",
        cnonce=cnonce,
    )


def test_a_nonce_fetched_from_one_address_is_forged_from_another() -> None:
    """A third party cannot spend a phone's failures: a spoofed source never sees the
    challenge sent to it, and a nonce fetched elsewhere names the wrong address."""
    server = _server(b"secret-key")
    mine = _answer(server.challenges(0.0, "192.0.2.66")[0], cnonce="c")
    assert server.verify(mine, "REGISTER", "pw", 1.0, PHONE).reason == "forged nonce"
    assert server.verify(mine, "REGISTER", "pw", 1.0, "192.0.2.66").ok


def test_an_answer_without_qop_is_refused() -> None:
    """RFC 2069's form has no nonce count: a captured answer would replay from anywhere."""
    server = _server(b"secret-key")
    challenge = server.challenges(0.0, PHONE)[0].replace(', qop="auth"', "")
    legacy = _answer(challenge, cnonce="c")
    assert "qop" not in legacy
    verdict = server.verify(legacy, "REGISTER", "pw", 1.0, PHONE)
    assert not verdict.ok and verdict.reason == "qop=auth required"


def test_absurd_nonce_counts_and_nonces_are_refused_without_exceptions() -> None:
    server = _server(b"secret-key")
    good = _answer(server.challenges(0.0, PHONE)[0], cnonce="c")
    for bad_nc in ("9" * 5000, "1", "zzzzzzzz"):
        forged = good.replace("nc=00000001", f"nc={bad_nc}")
        assert not server.verify(forged, "REGISTER", "pw", 1.0, PHONE).ok
    huge = good.replace('nonce="', 'nonce="' + "A" * 5000)
    assert server.verify(huge, "REGISTER", "pw", 1.0, PHONE).reason == "forged nonce"
