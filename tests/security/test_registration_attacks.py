"""Attacks through what a phone registers: a Contact naming the trunk (toll fraud), naming a
victim (reflection), a host we cannot send to (leaked calls), or hundreds of Contacts.

The registering phone is a raw SIP peer with valid credentials: the attacker is a
subscriber, or holds one's password. Calls are started through the real HTTP API.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from switchboard.app import Server
from switchboard.registrar.location import Binding
from switchboard.sip.transaction.base import Peer
from tests.interop.call_group_harness import post, serving
from tests.security.sip_peer import RawSipPeer, raw_peer, register

pytestmark = [pytest.mark.interop, pytest.mark.slow]

PREMIUM = "00449001234567"


def _config(trunk: tuple[str, int]) -> str:
    return f"""
[[domains]]
name = "example.com"
api_token = "token-for-tests"
channel_limit = 10
calling_number = "0506868000"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
  [[domains.groups]]
  id = 1111
  name = "support"
  member_answer_timeout = 2
  answer_timeout = 3
  members = ["alice"]
  [[domains.trunks]]
  name = "pstn"
  address = "{trunk[0]}:{trunk[1]}"
"""


@asynccontextmanager
async def _pbx(
    tmp_path: Path,
) -> AsyncIterator[tuple[Server, httpx.AsyncClient, RawSipPeer, RawSipPeer]]:
    """A running server whose trunk is a raw peer, and a phone for alice."""
    trunk, phone = await raw_peer(), await raw_peer()
    try:
        async with serving(tmp_path, _config(trunk.address)) as (server, client):
            yield server, client, trunk, phone
    finally:
        trunk.close()
        phone.close()


async def _call_support(client: httpx.AsyncClient) -> dict[str, object]:
    """A call_group toward the PSTN, which the API must accept."""
    answer = await post(
        client, "call_group", {"group_name": "support", "destination": "0312345678"}
    )
    assert answer["result_code"] == 0, answer
    return answer


async def _settled(server: Server) -> None:
    """Every call over and every RTP port back (sockets close a loop iteration late)."""
    async with asyncio.timeout(10):
        while server.engine.calls or server.media.ports.in_use:
            await asyncio.sleep(0.01)


async def test_a_contact_naming_the_trunk_is_refused_and_never_rung(tmp_path: Path) -> None:
    """Toll fraud: ringing such a member used to INVITE the premium number at the trunk,
    from the PBX's own address, past ``pstn_prefixes``."""
    async with _pbx(tmp_path) as (server, client, trunk, phone):
        host, port = trunk.address
        contact = f"<sip:{PREMIUM}@{host}:{port}>"
        sip = server.config.server.sip_address
        refused = await register(phone, sip, "alice", "alice-secret", [contact])
        assert (refused.status, refused.reason) == (403, "Contact names a trunk")
        await _call_support(client)
        await _settled(server)
        assert trunk.requests("INVITE") == []


async def test_a_phone_is_rung_where_it_registered_from_not_where_its_contact_points(
    tmp_path: Path,
) -> None:
    """Reflection: a Contact naming someone else's address turned the PBX into a
    cannon aimed at them."""
    victim = await raw_peer("127.0.0.3")
    try:
        async with _pbx(tmp_path) as (server, client, _trunk, phone):
            host, port = victim.address
            sip = server.config.server.sip_address
            ok = await register(phone, sip, "alice", "alice-secret", [f"<sip:alice@{host}:{port}>"])
            assert ok.status == 200
            await _call_support(client)
            async with asyncio.timeout(3):
                while not phone.requests("INVITE"):
                    await asyncio.sleep(0.01)
            (invite,) = phone.requests("INVITE")[:1]
            assert str(invite.uri) == f"sip:alice@{host}:{port}"  # the Contact, as registered
            await _settled(server)
        assert victim.requests("INVITE") == []
    finally:
        victim.close()


@pytest.mark.parametrize(
    "contact", ["<sip:alice@df7jal23ls0d.invalid;transport=ws>", "<sip:alice@no-such-host.test>"]
)
async def test_a_contact_host_we_cannot_reach_is_refused_and_calls_leak_nothing(
    tmp_path: Path, contact: str
) -> None:
    """Such a binding used to make every call to its user raise after the call was added:
    ten calls held a domain's RTP ports for good."""
    async with _pbx(tmp_path) as (server, client, _trunk, phone):
        sip = server.config.server.sip_address
        refused = await register(phone, sip, "alice", "alice-secret", [contact])
        assert refused.status == 400
        for _ in range(50):
            await _call_support(client)
        await _settled(server)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        assert server.media.ports.in_use == 0 and not server.media.sessions
        assert server.engine.by_uuid == {}


async def test_a_stored_binding_we_cannot_send_to_fails_its_leg_alone(tmp_path: Path) -> None:
    """A binding stored before these checks (or by an older version). ``switchboard serve``
    runs on uvloop, whose UDP send raises ValueError at once for a host name; the test
    loop's UDP transport is made to do the same. That terminal's leg fails; nothing is
    left."""
    async with _pbx(tmp_path) as (server, client, _trunk, _phone):
        stale = Binding("example.com", "alice", "sip:alice@phone.invalid", 4e9, "old", 1)
        server.registrar.location.put(stale)
        udp = server.endpoint._udp
        send = udp.send

        def uvloop_send(data: bytes, peer: Peer) -> None:
            ipaddress.ip_address(peer.host)  # ValueError for a name, as uvloop raises
            send(data, peer)

        udp.send = uvloop_send  # type: ignore[method-assign]
        for _ in range(50):
            await _call_support(client)
        await _settled(server)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        assert server.media.ports.in_use == 0 and server.engine.by_uuid == {}


async def test_three_hundred_contacts_in_one_register_are_refused(tmp_path: Path) -> None:
    """One such REGISTER turned one call into 1200 INVITEs at a victim."""
    async with _pbx(tmp_path) as (server, _client, _trunk, phone):
        flood = [f"<sip:alice@127.0.0.3:{10000 + n}>" for n in range(300)]
        sip = server.config.server.sip_address
        refused = await register(phone, sip, "alice", "alice-secret", flood)
        assert (refused.status, refused.reason) == (403, "Too many contacts (at most 10 per user)")
        assert server.registrar.location.count() == 0
