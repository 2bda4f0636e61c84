"""Faults around a call_group call, against real peers: SIP packet loss on the member and
trunk legs (a lossy link that loses the same messages on every run), a member phone that
vanishes mid-call, and the callback receiver down for a long while. (Killing Switchboard
with deliveries pending: ``test_crash_recovery.py``.)"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from switchboard.app import Server
from tests.callbacks.receiver import callback_receiver
from tests.interop.call_group_harness import (
    Phones,
    SipTap,
    config_for,
    finish,
    post,
    serving,
    start_call_group,
    trunk_scenario,
    uas,
    wait_bridged,
)
from tests.interop.lossy_link import LossyLink
from tests.interop.sipp import SCENARIOS, free_port, start_sipp
from tests.media.peers import close_all_peers, packet, rtp_peer

pytestmark = [pytest.mark.interop, pytest.mark.slow]
CALLS = 3
# The first copy of each is lost on both legs, on every call.
LOST = frozenset({"INVITE", "200 INVITE", "ACK", "BYE", "200 BYE"})


async def _calls_ended(server: Server, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while server.engine.statistics() != {"calls": 0, "channels": 0}:
            await asyncio.sleep(0.02)


async def _peer_behind_link(phone_port: int) -> tuple[LossyLink, asyncio.subprocess.Process]:
    """A SIPp peer on a port of its own, behind a link on the port Switchboard calls."""
    link = LossyLink(phone_port, free_port(), LOST)
    await link.start()
    args = uas(link.peer_port, SCENARIOS / "uas_answer_behind_link.xml", CALLS)
    peer = await start_sipp([*args, "-key", "contact_port", str(phone_port)])
    return link, peer


async def test_calls_complete_through_retransmission_when_member_and_trunk_lose_packets(
    tmp_path: Path,
) -> None:
    """On both legs of every call, the link loses the first INVITE, 200, ACK, BYE and 200
    to BYE: each call completes only if Switchboard retransmits its INVITE (Timer A) and
    its BYE (Timer E, twice: the BYE and then its 200 are lost), and ACKs the retransmitted
    2xx. Both SIPp peers must count every call successful."""
    phones = Phones(free_port(), free_port(), free_port())
    alice_link, alice = await _peer_behind_link(phones.alice)
    trunk_link, trunk = await _peer_behind_link(phones.trunk)
    try:
        async with (
            callback_receiver() as receiver,
            serving(tmp_path, config_for(phones)) as (server, client),
        ):
            for n in range(CALLS):
                body = {"group_name": "support", "destination": "0312341234"}
                uuids = await start_call_group(client, {**body, "callback_url": receiver.url})
                (*_, callback) = await receiver.wait_for(n + 1, timeout=40)
                outcome = json.loads(callback.body)
                assert outcome["result_code"] == 0 and outcome["uuid"] == uuids[0], outcome
                await wait_bridged(server)
                async with asyncio.timeout(10):  # the peers take a BYE only after the ACK
                    for link in (alice_link, trunk_link):
                        await link.recovered("ACK", n + 1)
                await post(client, "hangup", {"uuid": uuids[0]})
                await _calls_ended(server, 40)
            outcomes = [json.loads(r.body)["result_code"] for r in receiver.received]
            assert outcomes == [0] * CALLS
            await finish(alice, trunk)  # SIPp counted every call successful on both legs
            retransmitted = server.endpoint.statistics()["retransmitted"]
    finally:
        for name, process in (("alice", alice), ("trunk", trunk)):
            if process.returncode is None:  # the test failed before SIPp finished
                process.terminate()  # SIPp prints its last screen as it ends
            if process.stdout is not None and not process.stdout.at_eof():
                async with asyncio.timeout(10):
                    out, _ = await process.communicate()  # shown with the failure
                print(f"SIPp {name} (exit {process.returncode}):", out.decode())
        alice_link.close()
        trunk_link.close()
    for link in (alice_link, trunk_link):
        assert link.dropped == dict.fromkeys(LOST, CALLS)
        assert not link.pending  # each lost message got through in a later copy
    # per leg and call: the INVITE once, the BYE twice
    assert retransmitted >= 2 * 3 * CALLS


async def test_a_member_phone_that_vanishes_mid_call_is_released_by_rtp_timeout(
    tmp_path: Path,
) -> None:
    """alice echoes RTP, then her SIPp is killed: no BYE, no more RTP. The destination
    keeps talking; the call must still end ``rtp_timeout`` after alice's last packet."""
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp([*uas(phones.alice), "-mp", str(free_port()), "-rtp_echo"])
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    async with (
        callback_receiver() as receiver,
        serving(tmp_path, config_for(phones), "rtp_timeout = 1") as (server, client),
    ):
        tap = SipTap(server)
        uuids = await start_call_group(client, {"group_name": "support",
                                                "destination": "0312341234",
                                                "callback_url": receiver.url})  # fmt: skip
        session = (await wait_bridged(server)).session
        far = await rtp_peer()
        try:
            for n in range(150):  # the destination talks for 3 s
                far.send(packet(0, n, b"\x7e" * 160), session.b.local)
                if n == 25:  # half a second in, alice's phone is gone
                    assert session.a.stats.packets_in > 0  # she was echoing until now
                    alice.kill()
                    await alice.wait()
                await asyncio.sleep(0.02)
                if not server.engine.calls:
                    break
        finally:
            close_all_peers()
        await _calls_ended(server)
        last_from_alice = session.a.stats.last_in
        assert last_from_alice is not None
        released = tap.first("BYE", uuids[0])
        assert 0.95 <= released - last_from_alice <= 1.1  # rtp_timeout after her last packet
        byes = {cid for _, line, cid in tap.sent if line.startswith("BYE")}
        assert uuids[0] in byes and len(byes) == 2  # both legs released
        await finish(trunk)
        assert server.media.statistics()["media_sessions"] == 0


async def test_callback_receiver_down_for_a_minute_then_up_gets_each_outcome_exactly_once(
    tmp_path: Path,
) -> None:
    """Twelve outcomes while nothing listens at the callback URL (connections refused for
    65 s, seven attempts each); then the receiver comes up and the next retry delivers."""
    phones = Phones(free_port(), free_port(), free_port())
    config = config_for(phones) + NOBODY_GROUP
    port = free_port(socket.SOCK_STREAM)
    url = f"http://127.0.0.1:{port}/hook"
    async with serving(tmp_path, config) as (server, client):
        for _ in range(12):
            await start_call_group(client, {"group_name": "nobody",
                                            "destination": "0312341234",
                                            "callback_url": url})  # fmt: skip
        await asyncio.sleep(65)
        counters = server.callbacks.counters
        assert counters["callbacks_delivered"] == 0 and counters["callbacks_retried"] >= 12 * 6
        async with callback_receiver(port) as receiver:
            await receiver.wait_for(12, timeout=90)
            await asyncio.sleep(2)  # nothing more may come
        deliveries = [r.headers["x-switchboard-delivery"] for r in receiver.received]
        assert len(deliveries) == len(set(deliveries)) == 12
        bodies = [json.loads(r.body) for r in receiver.received]
        assert {b["error"]["id"] for b in bodies} == {"no_member_available"}
        # nobody's members have no terminal: no channel was promised (API §2), and each
        # call's one outcome is told by its own delivery id (above)
        assert all(b["request_uuids"] == [] for b in bodies)
        assert server.callbacks.counters["callbacks_delivered"] == 12


NOBODY_GROUP = """
  [[domains.groups]]
  id = 2222
  name = "nobody"
  members = ["carol"]
"""
