"""call_group end to end: the HTTP API, SIPp phones as members, a SIPp trunk, callbacks to
a real HTTP listener (issue: call_group end to end)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.callbacks.receiver import callback_receiver
from tests.interop.call_group_harness import (
    Phones,
    SipTap,
    callback_body,
    config_for,
    finish,
    post,
    serving,
    start_call_group,
    trunk_scenario,
    uas,
    wait_bridged,
)
from tests.interop.sipp import SCENARIOS, free_port, start_sipp
from tests.media.peers import close_all_peers, packet, rtp_peer

pytestmark = [pytest.mark.interop, pytest.mark.slow]


async def test_first_member_answers_and_the_trunk_gets_the_caller_id(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    async with (
        callback_receiver() as receiver,
        serving(tmp_path, config_for(phones)) as (
            server,
            client,
        ),
    ):
        answer = await post(
            client,
            "call_group",
            {
                "group_name": "support",
                "destination": "0312341234",
                "callback_url": receiver.url,
            },
        )
        assert answer["result_code"] == 0, answer
        uuids = answer["uuids"]
        assert isinstance(uuids, list) and len(uuids) == 2
        body = await callback_body(receiver)
        assert body["result_code"] == 0 and body["uuid"] == uuids[0]
        assert body["answered_by"] == "alice" and body["request_uuids"] == uuids
        assert [a["result"] for a in body["attempts"]] == ["answered", "skipped"]
        await wait_bridged(server)
        hung_up = await post(client, "hangup", {"uuid": uuids[0]})
        assert hung_up == {"result_code": 0}
        alice_out, _ = await asyncio.wait_for(alice.communicate(), 15)
        trunk_out, _ = await asyncio.wait_for(trunk.communicate(), 15)
        assert alice.returncode == 0, alice_out.decode(errors="replace")[-1500:]
        assert trunk.returncode == 0, trunk_out.decode(errors="replace")[-1500:]
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        assert not server.media.sessions
        await asyncio.gather(*server.engine.pending_writes)
        records = await server.records.for_domain("example.com")
        assert [(r.role, r.party, r.disposition, r.hangup) for r in records] == [
            ("member", "alice", "answered", "send_bye,NORMAL_CLEARING"),
            ("member", "bob", "skipped", "send_refuse,ORIGINATOR_CANCEL"),
            ("destination", "0312341234", "answered", "send_bye,NORMAL_CLEARING"),
        ]
        alice_record, _, trunk_record = records
        assert alice_record.uuid == uuids[0] and trunk_record.other_uuid == uuids[0]
        assert alice_record.offered_at is not None and alice_record.answered_at is not None
        assert alice_record.ended_at is not None
        assert alice_record.offered_at <= alice_record.answered_at <= alice_record.ended_at


RING = SCENARIOS / "uas_ring_until_cancel.xml"
BUSY = SCENARIOS / "uas_busy.xml"


async def test_second_member_answers_after_first_times_out(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, RING))
    bob = await start_sipp(uas(phones.bob))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    config = config_for(phones, member_timeout=1)
    async with callback_receiver() as receiver, serving(tmp_path, config) as (server, client):
        tap = SipTap(server)
        uuids = await start_call_group(
            client,
            {
                "group_extension": "1111",
                "destination": "0312341234",
                "callback_url": receiver.url,
            },
        )
        body = await callback_body(receiver)
        assert body["result_code"] == 0 and body["uuid"] == uuids[1]
        assert [a["result"] for a in body["attempts"]] == ["no_answer", "answered"]
        rang_for = tap.first("CANCEL", uuids[0]) - tap.first("INVITE", uuids[0])
        assert abs(rang_for - 1.0) <= 0.05  # member_answer_timeout honoured to 50 ms
        assert tap.first("INVITE", uuids[1]) - tap.first("CANCEL", uuids[0]) < 0.05
        await post(client, "hangup", {"uuid": uuids[1]})
        await finish(alice, bob, trunk)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_all_members_silent_is_no_answer_at_answer_timeout(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, RING))
    bob = await start_sipp(uas(phones.bob, RING))
    config = config_for(phones, member_timeout=1, answer_timeout=2)
    async with callback_receiver() as receiver, serving(tmp_path, config) as (server, client):
        tap = SipTap(server)
        uuids = await start_call_group(
            client,
            {
                "group_name": "support",
                "destination": "0312341234",
                "callback_url": receiver.url,
            },
        )
        body = await callback_body(receiver)
        assert body["result_code"] == 500 and body["error"] == {"id": "no_answer"}
        started = tap.first("INVITE", uuids[0])
        assert abs(tap.first("CANCEL", uuids[1]) - started - 2.0) <= 0.05  # answer_timeout
        await finish(alice, bob)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_busy_and_unregistered_members_are_skipped_at_once(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, BUSY))
    bob = await start_sipp(uas(phones.bob, BUSY))
    config = config_for(phones) + (
        '  [[domains.groups]]\n  id = 2222\n  name = "night"\n  members = ["carol"]\n'
    )
    async with callback_receiver() as receiver, serving(tmp_path, config) as (server, client):
        answer = await post(
            client,
            "call_group",
            {
                "group_name": "support",
                "destination": "0312341234",
                "callback_url": receiver.url,
            },
        )
        assert answer["result_code"] == 0
        body = await callback_body(receiver)
        assert body["error"] == {"id": "no_member_available"}
        assert [(a["result"], a["sip_status"]) for a in body["attempts"]] == [
            ("busy", 486),
            ("busy", 486),
        ]
        receiver.received.clear()
        night = await post(
            client,
            "call_group",
            {
                "group_name": "night",
                "destination": "0312341234",
                "callback_url": receiver.url,
            },
        )
        assert night["result_code"] == 0
        body = await callback_body(receiver)
        assert body["error"] == {"id": "no_member_available"}
        assert body["attempts"][0]["result"] == "unregistered"
        await finish(alice, bob)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_ring_strategy_first_answer_wins_and_the_others_get_cancel(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, RING))
    bob = await start_sipp(uas(phones.bob))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    async with (
        callback_receiver() as receiver,
        serving(tmp_path, config_for(phones)) as (
            server,
            client,
        ),
    ):
        uuids = await start_call_group(
            client,
            {
                "group_name": "support",
                "destination": "0312341234",
                "strategy": "ring",
                "callback_url": receiver.url,
            },
        )
        body = await callback_body(receiver)
        assert body["uuid"] == uuids[1]
        assert [a["result"] for a in body["attempts"]] == ["canceled", "answered"]
        await post(client, "hangup", {"uuid": uuids[1]})
        await finish(alice, bob, trunk)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_destination_busy_releases_the_member_with_bye(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))  # expects our BYE
    trunk = await start_sipp(uas(phones.trunk, BUSY))
    async with serving(tmp_path, config_for(phones)) as (server, client):
        await post(client, "call_group", {"group_name": "support", "destination": "0312341234"})
        await finish(alice, trunk)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        assert not server.media.sessions


async def test_member_hanging_up_while_the_destination_rings_cancels_it(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, SCENARIOS / "uas_answer_then_bye.xml"))
    trunk = await start_sipp(uas(phones.trunk, RING))  # rings until CANCEL
    async with serving(tmp_path, config_for(phones)) as (server, client):
        await post(client, "call_group", {"group_name": "support", "destination": "0312341234"})
        await finish(alice, trunk)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_channel_limit_refuses_a_second_concurrent_call(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, RING))
    config = config_for(phones).replace("channel_limit = 10", "channel_limit = 2")
    async with serving(tmp_path, config) as (server, client):
        first = await post(
            client, "call_group", {"group_name": "support", "destination": "0312341234"}
        )
        assert first["result_code"] == 0
        second = await post(client, "call_group", {"group_id": 1111, "destination": "bob"})
        assert second["result_code"] == 500
        assert second["error"]["id"] == "channel_limit_reached"  # type: ignore[index]
        uuids = first["uuids"]
        assert isinstance(uuids, list)
        assert await post(client, "hangup", {"uuid": uuids[0]}) == {"result_code": 0}
        await finish(alice)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_rtp_flows_both_ways_between_the_member_and_the_destination(
    tmp_path: Path,
) -> None:
    """The member is SIPp echoing RTP; the destination's media is a test peer. The peer's
    packets cross the relay to the member, are echoed, and cross back."""
    phones = Phones(free_port(), free_port(), free_port())
    alice_media = free_port()
    alice = await start_sipp([*uas(phones.alice), "-mp", str(alice_media), "-rtp_echo"])
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    async with serving(tmp_path, config_for(phones)) as (server, client):
        answer = await post(
            client, "call_group", {"group_name": "support", "destination": "0312341234"}
        )
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        session = (await wait_bridged(server)).session
        peer = await rtp_peer()
        try:
            for n in range(25):  # half a second of audio from the destination side
                peer.send(packet(0, n, b"\x7e" * 160), session.b.local)
                await asyncio.sleep(0.02)
            echoed = await peer.wait_for(24, timeout=3)
        finally:
            close_all_peers()
        assert {p.header.sequence for p in echoed} <= set(range(25))
        assert all(p.payload == b"\x7e" * 160 for p in echoed)
        assert session.a.stats.packets_in >= 24 and session.b.stats.packets_out >= 24
        await post(client, "hangup", {"uuid": uuids[0]})
        await finish(alice, trunk)


async def test_a_members_terminals_ring_together_and_the_first_answer_cancels_the_rest(
    tmp_path: Path,
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    desk = free_port()
    alice_mobile = await start_sipp(uas(phones.alice))
    alice_desk = await start_sipp(uas(desk, RING))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    config = config_for(phones).replace(
        f'contacts = ["sip:alice@127.0.0.1:{phones.alice}"]',
        f'contacts = ["sip:alice@127.0.0.1:{phones.alice}", "sip:alice@127.0.0.1:{desk}"]',
    )
    async with serving(tmp_path, config) as (server, client):
        tap = SipTap(server)
        answer = await post(
            client, "call_group", {"group_name": "support", "destination": "0312341234"}
        )
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        await finish(alice_desk)  # cancelled when the mobile answered
        # one uuid per terminal (API §2): each terminal's INVITE carries its own as Call-ID
        mobile, desk_uuid = uuids[0], uuids[1]
        for terminal_uuid, port in ((mobile, phones.alice), (desk_uuid, desk)):
            invites = [line for _, line, cid in tap.sent if cid == terminal_uuid]
            assert invites[0] == f"INVITE sip:alice@127.0.0.1:{port}", invites
        assert await post(client, "hangup", {"uuid": desk_uuid}) == {"result_code": 0}
        await finish(alice_mobile, trunk)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_destination_hanging_up_releases_the_member(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))  # expects our BYE
    trunk = await start_sipp(uas(phones.trunk, SCENARIOS / "uas_answer_then_bye.xml"))
    async with serving(tmp_path, config_for(phones)) as (server, client):
        await post(client, "call_group", {"group_name": "support", "destination": "0312341234"})
        await finish(alice, trunk)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        assert not server.media.sessions


async def test_a_group_as_destination_runs_its_own_hunt(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    erik_port, frank_port = free_port(), free_port()
    alice = await start_sipp(uas(phones.alice))
    frank = await start_sipp(uas(frank_port, BUSY))  # the sales group's first member: busy
    erik = await start_sipp(uas(erik_port))
    config = (
        config_for(phones)
        + f"""
  [[domains.users]]
  id = 5
  name = "frank"
  contacts = ["sip:frank@127.0.0.1:{frank_port}"]
  [[domains.users]]
  id = 6
  name = "erik"
  contacts = ["sip:erik@127.0.0.1:{erik_port}"]
  [[domains.groups]]
  id = 3333
  name = "sales"
  extension = "3333"
  member_answer_timeout = 5
  members = ["frank", "erik"]
"""
    )
    async with serving(tmp_path, config) as (server, client):
        answer = await post(client, "call_group", {"group_name": "support", "destination": "3333"})
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        await wait_bridged(server)
        await post(client, "hangup", {"uuid": uuids[0]})
        await finish(alice, frank, erik)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        await asyncio.gather(*server.engine.pending_writes)
        records = await server.records.for_domain("example.com")
        destination = [r for r in records if r.role == "destination"]
        assert [(r.party, r.disposition) for r in destination] == [("sales", "answered")]


async def test_member_hanging_up_a_bridged_call_releases_the_destination(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, SCENARIOS / "uas_answer_then_bye.xml"))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    async with serving(tmp_path, config_for(phones)) as (server, client):
        await post(client, "call_group", {"group_name": "support", "destination": "0312341234"})
        await finish(alice, trunk)  # alice's BYE became our BYE to the trunk
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        await asyncio.gather(*server.engine.pending_writes)
        records = await server.records.for_domain("example.com")
        assert [r.hangup for r in records if r.disposition == "answered"] == [
            "recv_bye,NORMAL_CLEARING",
            "send_bye,NORMAL_CLEARING",
        ]


async def test_a_phone_that_never_answers_sip_is_passed_over_at_the_member_timeout(
    tmp_path: Path,
) -> None:
    phones = Phones(free_port(), free_port(), free_port())  # nothing listens on alice's port
    bob = await start_sipp(uas(phones.bob))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    config = config_for(phones, member_timeout=1)
    async with callback_receiver() as receiver, serving(tmp_path, config) as (server, client):
        tap = SipTap(server)
        uuids = await start_call_group(
            client,
            {
                "group_name": "support",
                "destination": "0312341234",
                "callback_url": receiver.url,
            },
        )
        body = await callback_body(receiver)
        assert body["uuid"] == uuids[1]
        moved_on = tap.first("INVITE", uuids[1]) - tap.first("INVITE", uuids[0])
        assert abs(moved_on - 1.0) <= 0.05
        await post(client, "hangup", {"uuid": uuids[1]})
        await finish(bob, trunk)


@pytest.mark.parametrize(
    ("server_setting", "cause"),
    [("max_call_seconds = 1", "max_call_seconds"), ("rtp_timeout = 1", "rtp timeout")],
)
async def test_calls_are_released_by_max_call_seconds_and_by_dead_media(
    tmp_path: Path, server_setting: str, cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice))  # sends no RTP, expects our BYE
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "0506868000")))
    caplog.set_level("INFO", logger="switchboard.pbx")
    async with serving(tmp_path, config_for(phones), server_setting) as (server, client):
        tap = SipTap(server)
        answer = await post(
            client, "call_group", {"group_name": "support", "destination": "0312341234"}
        )
        await finish(alice, trunk)
        uuids = answer["uuids"]
        assert isinstance(uuids, list)
        answered = tap.first("ACK", uuids[0])  # we acknowledge alice's 200
        released = tap.first("BYE", uuids[0])
        assert 0.9 <= released - answered <= 1.2  # one second after the answer
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
    assert any(f"ends: {cause}" in r.getMessage() for r in caplog.records)


async def test_members_see_the_calling_name_and_the_group_and_the_trunk_challenge_is_answered(
    tmp_path: Path,
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    credentials = tmp_path / "trunk.csv"
    credentials.write_text("SEQUENTIAL\ntrunkuser;trunk-secret\n")
    alice = await start_sipp(uas(phones.alice))
    trunk = await start_sipp(
        [*uas(phones.trunk, SCENARIOS / "uas_digest.xml"), "-inf", str(credentials)]
    )
    config = config_for(phones).replace(
        f'address = "127.0.0.1:{phones.trunk}"',
        f'address = "127.0.0.1:{phones.trunk}"\n  username = "trunkuser"\n'
        '  password = "trunk-secret"',
    )
    async with serving(tmp_path, config) as (server, client):
        tap = SipTap(server)
        uuids = await start_call_group(
            client,
            {
                "group_name": "support",
                "destination": "0312341234",
                "calling_name": "Erik Lehnsherr",
            },
        )
        await wait_bridged(server)  # the trunk only answers valid digest credentials
        invite = next(m for m in tap.messages if m.first_line.startswith("INVITE sip:alice"))
        assert invite.from_.display_name == "Erik Lehnsherr"
        assert invite.get("X-Switchboard-Group") == "support"
        assert invite.call_id == uuids[0]
        await post(client, "hangup", {"uuid": uuids[0]})
        await finish(alice, trunk)
