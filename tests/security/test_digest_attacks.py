"""Digest attacks on REGISTER, against a running server: replaying a phone's answer from
another address, and locking a phone out by failing in its name.

The phone is 127.0.0.1; the attacker is 127.0.0.2. A packet "spoofed" with the phone's
address is sent from another port of 127.0.0.1: the attacker can put any source on a UDP
packet, it just never sees the answers (the test ignores them on that socket).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from switchboard.app import Server
from switchboard.sip.digest import answer_challenge
from tests.interop.servers import running_server
from tests.security.sip_peer import RawSipPeer, raw_peer, register, register_request

pytestmark = [pytest.mark.interop]
ATTACKER = "127.0.0.2"
CONFIG = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
"""


@asynccontextmanager
async def _server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        yield server


async def _answer(
    peer: RawSipPeer, sip: tuple[str, int], password: str, *, qop: bool = True
) -> str:
    """Fetch a challenge from ``peer``'s address and answer it (without qop: RFC 2069)."""
    peer.send(register_request(peer, "alice", []), sip)
    challenge = (await peer.response()).get_all("WWW-Authenticate")[0]
    if not qop:
        challenge = challenge.replace(', qop="auth"', "")
    return answer_challenge(
        challenge,
        method="REGISTER",
        uri="sip:example.com",
        username="alice",
        password=password,
        cnonce="c0ffee",
    )


async def test_an_answer_cannot_be_replayed_from_another_address(tmp_path: Path) -> None:
    """The attacker captured the phone's answer (RFC 2069 form, no nonce count) and sends
    it again from its own address with its own Contact, to take the phone's calls."""
    phone, attacker = await raw_peer(), await raw_peer(ATTACKER)
    try:
        async with _server(tmp_path) as server:
            sip = server.config.server.sip_address
            captured = await _answer(phone, sip, "alice-secret", qop=False)
            contact = [f"<sip:alice@{phone.address[0]}:{phone.address[1]}>"]
            phone.send(register_request(phone, "alice", contact, authorization=captured), sip)
            refused = await phone.response()
            assert (refused.status, refused.reason) == (403, "qop=auth required")
            stolen = [f"<sip:alice@{ATTACKER}:{attacker.address[1]}>"]
            attacker.send(register_request(attacker, "alice", stolen, authorization=captured), sip)
            assert (await attacker.response()).status == 401  # the nonce names the phone
            assert server.registrar.location.count() == 0
    finally:
        phone.close()
        attacker.close()


async def test_failures_in_a_phones_name_do_not_lock_it_out(tmp_path: Path) -> None:
    """Nonces fetched by the attacker, answered with wrong passwords in packets carrying
    the phone's address: the phone used to be blocked for five minutes."""
    phone, attacker = await raw_peer(), await raw_peer(ATTACKER)
    spoofed = await raw_peer(phone.address[0])  # the phone's address, as a spoofer sends
    try:
        async with _server(tmp_path) as server:
            sip = server.config.server.sip_address
            for _ in range(10):
                wrong = await _answer(attacker, sip, "guess")
                spoofed.send(register_request(spoofed, "alice", [], authorization=wrong), sip)
                assert (await spoofed.response()).status == 401  # not a failure: forged
            contact = [f"<sip:alice@{phone.address[0]}:{phone.address[1]}>"]
            ok = await register(phone, sip, "alice", "alice-secret", contact)
            assert ok.status == 200
    finally:
        for peer in (phone, attacker, spoofed):
            peer.close()
