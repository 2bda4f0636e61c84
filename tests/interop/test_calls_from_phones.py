"""Calls placed by real phones (issue 13): two baresip phones register and call each other
by extension with audio both ways (also when their domain is the server's address), hold
and resume; a phone dials a group's extension, and the PSTN through a SIPp trunk (caller
ID its DID, else the domain's number); a phone's INVITE is challenged (407) and a wrong
password refused (403), driven by SIPp; a caller's CANCEL, a busy and an unregistered
callee; two terminals of one user answering at once, the caller hearing the one that won.

Phones live on 127.0.0.1, the trunk on 127.0.0.3 (see ``phones_harness``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.interop.call_group_harness import SipTap, finish, wait_bridged
from tests.interop.phones_harness import (
    PHONE_HOST,
    RATE,
    TRUNK_HOST,
    baresip_phone,
    reaped,
    relayed,
    scenario_copy,
    start_sipp_at,
    tone_level,
    write_g711_tone,
)
from tests.interop.servers import running_server
from tests.interop.sipp import SCENARIOS, free_port, run_sipp, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ALICE_TONE, BOB_TONE, LATE_TONE = 440.0, 1000.0, 1600.0
ALICE_DID, DOMAIN_NUMBER = "0501110001", "0506868000"
HEARD = 1000.0  # a tone sent at amplitude 8000 measures about 4000 (tone_level)
SILENT = 100.0


def config(trunk_port: int = 5060, bob_contacts: tuple[str, ...] = ()) -> str:
    """alice (extension 2001, a DID), bob (2002, none; static contacts if given), carol
    (never registered); the group sales (3000) hunts carol then bob; the trunk on its own
    address."""
    listed = ", ".join(f'"{contact}"' for contact in bob_contacts)
    contacts = f"  contacts = [{listed}]\n" if bob_contacts else ""
    return f"""
[[domains]]
name = "example.com"
api_token = "token-for-tests"
calling_number = "{DOMAIN_NUMBER}"
  [[domains.users]]
  id = 1
  name = "alice"
  extension = "2001"
  did = "{ALICE_DID}"
  sip_password = "alice-secret"
  [[domains.users]]
  id = 2
  name = "bob"
  extension = "2002"
  sip_password = "bob-secret"
{contacts}
  [[domains.users]]
  id = 3
  name = "carol"
  extension = "2003"
  sip_password = "carol-secret"
  [[domains.groups]]
  id = 30
  name = "sales"
  extension = "3000"
  member_answer_timeout = 2
  members = ["carol", "bob"]
  [[domains.trunks]]
  name = "pstn"
  address = "{TRUNK_HOST}:{trunk_port}"
"""


async def test_two_baresip_phones_call_by_extension_with_audio_both_ways(
    tmp_path: Path,
) -> None:
    async with running_server(config(), tmp_path / "db.sqlite") as server:
        async with (
            baresip_phone(tmp_path, server, "alice", "alice-secret", hertz=ALICE_TONE) as alice,
            baresip_phone(tmp_path, server, "bob", "bob-secret", hertz=BOB_TONE) as bob,
        ):
            await alice.command("dial", "2002")
            incoming = await bob.event("CALL_ESTABLISHED")
            await alice.event("CALL_ESTABLISHED")
            # bob is shown alice's extension and name (DESIGN §5's caller ID of a phone)
            assert incoming["peeruri"] == "sip:2001@example.com", incoming
            assert incoming.get("peerdisplayname") == "alice", incoming
            call = await wait_bridged(server)
            await relayed(call, seconds=2.0)
            await bob.command("hangup")
            await bob.event("CALL_CLOSED")
            await alice.event("CALL_CLOSED")
            assert server.engine.statistics() == {"calls": 0, "channels": 0}
            assert not server.media.sessions
        alice_heard, bob_heard = alice.recording(), bob.recording()
    # two seconds were relayed each way; the last packets may still sit in a jitter buffer
    assert len(alice_heard) >= 12000 and len(bob_heard) >= 12000
    # each recording carries the other side's tone, and not its own (no loop back)
    assert tone_level(alice_heard, BOB_TONE) > HEARD
    assert tone_level(alice_heard, ALICE_TONE) < SILENT
    assert tone_level(bob_heard, ALICE_TONE) > HEARD
    assert tone_level(bob_heard, BOB_TONE) < SILENT


async def test_phones_using_the_servers_address_as_their_domain_call_each_other(
    tmp_path: Path,
) -> None:
    """Accounts sip:alice@127.0.0.1 and sip:bob@127.0.0.1: the server's own address names
    its only domain, example.com, for REGISTER and INVITE alike."""
    async with (
        running_server(config(), tmp_path / "db.sqlite") as server,
        baresip_phone(
            tmp_path, server, "alice", "alice-secret", hertz=ALICE_TONE, domain=PHONE_HOST
        ) as alice,
        baresip_phone(
            tmp_path, server, "bob", "bob-secret", hertz=BOB_TONE, domain=PHONE_HOST
        ) as bob,
    ):
        await alice.command("dial", "2002")
        incoming = await bob.event("CALL_ESTABLISHED")
        await alice.event("CALL_ESTABLISHED")
        assert incoming["accountaor"] == f"sip:bob@{PHONE_HOST}", incoming
        await relayed(await wait_bridged(server), seconds=0.5)
        await alice.command("hangup")
        await bob.event("CALL_CLOSED")
        assert server.engine.statistics() == {"calls": 0, "channels": 0}


async def test_a_phone_dials_a_groups_extension_and_the_member_answers(tmp_path: Path) -> None:
    async with running_server(config(), tmp_path / "db.sqlite") as server:
        tap = SipTap(server)
        async with (
            baresip_phone(tmp_path, server, "alice", "alice-secret", hertz=ALICE_TONE) as alice,
            baresip_phone(tmp_path, server, "bob", "bob-secret", hertz=BOB_TONE) as bob,
        ):
            await alice.command("dial", "3000")
            incoming = await bob.event("CALL_ESTABLISHED")
            await alice.event("CALL_ESTABLISHED")
            assert incoming["peeruri"] == "sip:2001@example.com", incoming
            call = await wait_bridged(server)
            # carol, never registered, was passed over at once, not after her 2 s
            to_bob = tap.first("INVITE sip:bob")
            authenticated = max(
                t for t, line, _ in tap.sent if line == "100 Trying" and t <= to_bob
            )
            assert to_bob - authenticated < 0.5
            await relayed(call, seconds=1.0)
            await alice.command("hangup")
            await alice.event("CALL_CLOSED")
            await bob.event("CALL_CLOSED")
            assert server.engine.statistics() == {"calls": 0, "channels": 0}
        bob_heard = bob.recording()
    assert tone_level(bob_heard, ALICE_TONE) > HEARD


@pytest.mark.parametrize(
    ("caller", "password", "caller_id"),
    [("alice", "alice-secret", ALICE_DID), ("bob", "bob-secret", DOMAIN_NUMBER)],
    ids=["the-users-did", "the-domains-number"],
)
async def test_a_phone_dials_the_pstn_through_the_trunk(
    tmp_path: Path, caller: str, password: str, caller_id: str
) -> None:
    trunk_port = free_port()
    scenario = scenario_copy(
        tmp_path, "uas_trunk_dialled.xml", CALLED_NUMBER="0312341234", CALLER_NUMBER=caller_id
    )
    trunk = await start_sipp_at(TRUNK_HOST, trunk_port, ["-sf", str(scenario), "-m", "1"])
    async with running_server(config(trunk_port), tmp_path / "db.sqlite") as server:
        tap = SipTap(server)
        async with baresip_phone(tmp_path, server, caller, password, hertz=ALICE_TONE) as phone:
            await phone.command("dial", "0312341234")
            await phone.event("CALL_ESTABLISHED")
            await wait_bridged(server)
            (invite,) = [m for m in tap.messages if m.first_line.startswith("INVITE sip:03")]
            assert invite.first_line == f"INVITE sip:0312341234@{TRUNK_HOST}:{trunk_port}"
            assert f"sip:{caller_id}@example.com" in (invite.get("From") or "")
            assert invite.get("P-Asserted-Identity") == f"<sip:{caller_id}@example.com>"
            await phone.command("hangup")
            await phone.event("CALL_CLOSED")
            await finish(trunk)
            assert server.engine.statistics() == {"calls": 0, "channels": 0}


def _phone_uac(scenario: str, password: str, server_port: int) -> list[str]:
    """SIPp as alice's phone on 127.0.0.1 (a phone's address: bob's static contact is
    there), calling bob's extension."""
    options = f"-i {PHONE_HOST} -p {free_port()} -s 2002 -key caller alice -au alice"
    command = f"-sf {SCENARIOS / scenario} {PHONE_HOST}:{server_port} {options} -m 1 -nostdin"
    return [*command.split(), "-ap", password]


async def test_a_phones_invite_is_challenged_then_rings_with_the_right_password(
    tmp_path: Path,
) -> None:
    bob_port = free_port()
    bob = await start_sipp(["-sn", "uas", "-i", PHONE_HOST, "-p", str(bob_port), "-m", "1"])
    bob_contact = f"sip:bob@{PHONE_HOST}:{bob_port}"
    async with running_server(
        config(bob_contacts=(bob_contact,)), tmp_path / "db.sqlite"
    ) as server:
        tap = SipTap(server)
        port = server.endpoint.listen_port
        result = await run_sipp(_phone_uac("uac_phone_invite_digest.xml", "alice-secret", port), 15)
        assert result.returncode == 0 and result.successful == 1, result.output[:1500]
        await finish(bob)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
    lines = [line for _, line, _ in tap.sent]
    assert lines.index("407 Proxy Authentication Required") < lines.index(f"INVITE {bob_contact}")


async def test_a_phones_invite_with_a_wrong_password_is_refused(tmp_path: Path) -> None:
    bob_contact = f"sip:bob@{PHONE_HOST}:{free_port()}"
    async with running_server(
        config(bob_contacts=(bob_contact,)), tmp_path / "db.sqlite"
    ) as server:
        tap = SipTap(server)
        port = server.endpoint.listen_port
        result = await run_sipp(
            _phone_uac("uac_phone_invite_wrong_password.xml", "guess", port), 15
        )
        assert result.returncode == 0 and result.successful == 1, result.output[:1500]
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
    lines = [line for _, line, _ in tap.sent]
    assert lines == [
        "100 Trying",
        "407 Proxy Authentication Required",
        "100 Trying",
        "403 Forbidden",
    ]


async def test_the_answered_terminals_audio_reaches_the_caller_when_another_answers_late(
    tmp_path: Path,
) -> None:
    """bob's two terminals both ring; the first answers (and starts talking 300 ms after the
    ACK), the second's 200 crosses the CANCEL and it streams at once until its BYE. The
    caller must hear the terminal that answered first, for the whole call."""
    first_port, second_port = free_port(), free_port()
    first_media, second_media = free_port(), free_port()
    answered = write_g711_tone(tmp_path / "answered.pcmu", BOB_TONE)
    late = write_g711_tone(tmp_path / "late.pcmu", LATE_TONE)
    first = await _streaming(
        tmp_path, "uas_answer_stream_late.xml", answered, first_port, first_media
    )
    second = await _streaming(
        tmp_path, "uas_answer_across_cancel.xml", late, second_port, second_media
    )
    contacts = (f"sip:bob@{PHONE_HOST}:{first_port}", f"sip:bob@{PHONE_HOST}:{second_port}")
    async with (
        reaped(first, second),
        running_server(config(bob_contacts=contacts), tmp_path / "db.sqlite") as server,
    ):
        tap = SipTap(server)
        async with baresip_phone(
            tmp_path, server, "alice", "alice-secret", hertz=ALICE_TONE
        ) as alice:
            await alice.command("dial", "2002")
            await alice.event("CALL_ESTABLISHED")
            call = await wait_bridged(server)
            await finish(second)  # its 200 was acknowledged, then hung up
            first_target, second_target = (
                f"sip:{PHONE_HOST}:{port};transport=UDP" for port in (first_port, second_port)
            )
            assert [line for _, line, _ in tap.sent if line.startswith(("ACK", "BYE"))] == [
                f"ACK {first_target}",
                f"ACK {second_target}",
                f"BYE {second_target}",
            ]
            await relayed(call, seconds=1.5, timeout=4.0)
            await alice.command("hangup")
            await alice.event("CALL_CLOSED")
            await finish(first)
            assert server.engine.statistics() == {"calls": 0, "channels": 0}
        heard = alice.recording()
    last_second = heard[-RATE:]
    assert tone_level(last_second, BOB_TONE) > HEARD
    assert tone_level(last_second, LATE_TONE) < SILENT


async def _streaming(
    tmp_path: Path, scenario: str, audio: Path, port: int, media: int
) -> asyncio.subprocess.Process:
    """A SIPp terminal on ``port`` streaming ``audio`` from its ``media`` port."""
    copy = scenario_copy(tmp_path, scenario, AUDIO_FILE=str(audio))
    return await start_sipp_at(PHONE_HOST, port, f"-sf {copy} -mp {media} -m 1".split())


async def test_the_caller_hanging_up_while_it_rings_cancels_the_callee(tmp_path: Path) -> None:
    bob_port = free_port()
    ringing = ["-sf", str(SCENARIOS / "uas_ring_until_cancel.xml"), "-m", "1"]
    bob = await start_sipp_at(PHONE_HOST, bob_port, ringing)
    contacts = (f"sip:bob@{PHONE_HOST}:{bob_port}",)
    async with running_server(config(bob_contacts=contacts), tmp_path / "db.sqlite") as server:
        tap = SipTap(server)
        async with baresip_phone(
            tmp_path, server, "alice", "alice-secret", hertz=ALICE_TONE
        ) as alice:
            await alice.command("dial", "2002")
            await alice.event("CALL_RINGING")
            await alice.command("hangup")  # a CANCEL: the call was not answered
            await alice.event("CALL_CLOSED")
            await finish(bob)  # bob got the CANCEL, answered 487 and had it acknowledged
            assert server.engine.statistics() == {"calls": 0, "channels": 0}
    lines = [line for _, line, _ in tap.sent]
    assert "487 Request Terminated" in lines and f"CANCEL {contacts[0]}" in lines


@pytest.mark.parametrize(
    ("dialled", "status"),
    [("2002", "486 Busy Here"), ("2003", "480 Temporarily Unavailable")],
    ids=["busy", "not-registered"],
)
async def test_the_caller_is_told_why_the_callee_cannot_answer(
    tmp_path: Path, dialled: str, status: str
) -> None:
    """bob's phone answers 486; carol has no phone registered (480, RFC 3261 §21.4.18)."""
    bob_port = free_port()
    bob = await start_sipp_at(
        PHONE_HOST, bob_port, ["-sf", str(SCENARIOS / "uas_busy.xml"), "-m", "1"]
    )
    contacts = (f"sip:bob@{PHONE_HOST}:{bob_port}",)
    try:
        async with (
            running_server(config(bob_contacts=contacts), tmp_path / "db.sqlite") as server,
            baresip_phone(tmp_path, server, "alice", "alice-secret", hertz=ALICE_TONE) as alice,
        ):
            await alice.command("dial", dialled)
            closed = await alice.event("CALL_CLOSED")
            assert closed["param"] == status, closed
            assert server.engine.statistics() == {"calls": 0, "channels": 0}
        if dialled == "2002":
            await finish(bob)
    finally:  # never rung (not-registered), or the test failed: no SIPp left behind
        if bob.returncode is None:
            bob.kill()
            await bob.wait()


async def test_hold_and_resume_are_relayed_between_two_phones(tmp_path: Path) -> None:
    async with running_server(config(), tmp_path / "db.sqlite") as server:
        tap = SipTap(server)
        async with (
            baresip_phone(tmp_path, server, "alice", "alice-secret", hertz=ALICE_TONE) as alice,
            baresip_phone(tmp_path, server, "bob", "bob-secret", hertz=BOB_TONE) as bob,
        ):
            await alice.command("dial", "2002")
            await bob.event("CALL_ESTABLISHED")
            await alice.event("CALL_ESTABLISHED")
            call = await wait_bridged(server)
            await bob.event("CALL_REMOTE_SDP")  # the initial offer
            await alice.command("hold")  # a re-INVITE offering sendonly
            await bob.event("CALL_REMOTE_SDP")
            await alice.command("resume")  # and sendrecv again
            await bob.event("CALL_REMOTE_SDP")
            before = call.session.a.stats.packets_in, call.session.b.stats.packets_in
            await relayed(call, seconds=1.0 + max(before) / 50)
            await bob.command("hangup")
            await alice.event("CALL_CLOSED")
            assert server.engine.statistics() == {"calls": 0, "channels": 0}
    to_bob = [m for m in tap.messages if m.first_line.startswith("INVITE sip:bob")]
    directions = [line for m in to_bob for line in m.body.decode().split("\r\n") if line in _MODES]
    assert directions == ["a=sendrecv", "a=sendonly", "a=sendrecv"]


_MODES = ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")
