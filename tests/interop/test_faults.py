"""Faults around a call_group call, against real peers: SIP packet loss on the member and
trunk legs, a member phone that vanishes mid-call, and the callback receiver down for a
long while. (Killing Switchboard with deliveries pending: ``test_crash_recovery.py``.)"""

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
from tests.interop.sipp import free_port, start_sipp
from tests.media.peers import close_all_peers, packet, rtp_peer

pytestmark = [pytest.mark.interop, pytest.mark.slow]
CALLS = 8
LOSS_PERCENT = 10


async def _calls_ended(server: Server, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while server.engine.statistics() != {"calls": 0, "channels": 0}:
            await asyncio.sleep(0.02)


async def test_calls_complete_through_retransmission_when_member_and_trunk_lose_packets(
    tmp_path: Path,
) -> None:
    """SIPp drops 10% of what it sends and receives on both legs (``-lost``)."""
    phones = Phones(free_port(), free_port(), free_port())
    lossy = ["-lost", str(LOSS_PERCENT), "-m", str(CALLS)]
    alice = await start_sipp([*uas(phones.alice)[:-3], *lossy, "-nostdin"])
    scenario = trunk_scenario(tmp_path, "0506868000", linger=True)
    trunk = await start_sipp([*uas(phones.trunk, scenario)[:-3], *lossy, "-nostdin"])
    async with (
        callback_receiver() as receiver,
        serving(tmp_path, config_for(phones)) as (
            server,
            client,
        ),
    ):
        for n in range(CALLS):
            uuids = await start_call_group(client, {"group_name": "support",
                                                    "destination": "0312341234",
                                                    "callback_url": receiver.url})  # fmt: skip
            (*_, callback) = await receiver.wait_for(n + 1, timeout=40)
            assert json.loads(callback.body)["uuid"] == uuids[0]
            await wait_bridged(server)
            await post(client, "hangup", {"uuid": uuids[0]})
            await _calls_ended(server, 40)
        outcomes = [json.loads(r.body)["result_code"] for r in receiver.received]
        assert outcomes == [0] * CALLS
        await finish(alice, trunk)  # SIPp counted every call successful on both legs
        retransmitted = server.endpoint.statistics()["retransmitted"]
        assert retransmitted > 0  # the loss was real and retransmission carried the calls


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
