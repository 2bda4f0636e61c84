"""Calls from a trunk (issue 13): a SIPp gateway on the trunk's configured address calls a
group's DID and the group hunts as call_group's does (the first member rings for
member_answer_timeout, is cancelled, the second answers); an unknown DID is 404, and an
INVITE from an address that is neither a trunk nor a phone is 403."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.call_group_harness import SipTap, finish
from tests.interop.phones_harness import (
    PHONE_HOST,
    STRANGER_HOST,
    TRUNK_HOST,
    reaped,
    scenario_copy,
    start_sipp_at,
)
from tests.interop.servers import running_server
from tests.interop.sipp import SCENARIOS, free_port, run_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]

GROUP_DID = "0501119999"
MEMBER_TIMEOUT = 1


def config(alice_port: int, bob_port: int, trunk_port: int) -> str:
    """The group support (DID 0501119999) hunts alice, then bob, both static contacts on
    127.0.0.1; the trunk on 127.0.0.3."""
    return f"""
[[domains]]
name = "example.com"
api_token = "token-for-tests"
calling_number = "0506868000"
  [[domains.users]]
  id = 1
  name = "alice"
  contacts = ["sip:alice@{PHONE_HOST}:{alice_port}"]
  [[domains.users]]
  id = 2
  name = "bob"
  contacts = ["sip:bob@{PHONE_HOST}:{bob_port}"]
  [[domains.groups]]
  id = 10
  name = "support"
  did = "{GROUP_DID}"
  member_answer_timeout = {MEMBER_TIMEOUT}
  members = ["alice", "bob"]
  [[domains.trunks]]
  name = "pstn"
  address = "{TRUNK_HOST}:{trunk_port}"
"""


def _uac(scenario: Path, host: str, port: int, server_port: int, dialled: str) -> list[str]:
    address = f"{PHONE_HOST}:{server_port}"
    return f"-sf {scenario} {address} -i {host} -p {port} -s {dialled} -m 1 -nostdin".split()


async def test_a_trunk_calls_a_groups_did_and_the_group_hunts(tmp_path: Path) -> None:
    alice_port, bob_port, trunk_port = free_port(), free_port(), free_port()
    alice = await start_sipp_at(
        PHONE_HOST, alice_port, ["-sf", str(SCENARIOS / "uas_ring_until_cancel.xml"), "-m", "1"]
    )
    shown = scenario_copy(
        tmp_path, "uas_member_answers.xml", CALLER_NUMBER="0312341234", CALLER_NAME="Tanaka"
    )
    bob = await start_sipp_at(PHONE_HOST, bob_port, ["-sf", str(shown), "-m", "1"])
    text = config(alice_port, bob_port, trunk_port)
    async with reaped(alice, bob), running_server(text, tmp_path / "db.sqlite") as server:
        tap = SipTap(server)
        port = server.endpoint.listen_port
        scenario = SCENARIOS / "uac_trunk_calls_did.xml"
        result = await run_sipp(_uac(scenario, TRUNK_HOST, trunk_port, port, GROUP_DID), 15)
        assert result.returncode == 0 and result.successful == 1, result.output[:3000]
        await finish(alice, bob)
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
        assert not server.media.sessions
    rang_for = tap.first("CANCEL sip:alice@") - tap.first("INVITE sip:alice@")
    moved_on = tap.first("INVITE sip:bob@") - tap.first("CANCEL sip:alice@")
    # member_answer_timeout honoured to 50 ms, and the next member rung at once
    assert abs(rang_for - MEMBER_TIMEOUT) <= 0.05, rang_for
    assert 0 <= moved_on < 0.05, moved_on
    lines = [line for _, line, _ in tap.sent]
    assert lines.index("180 Ringing") < lines.index("200 OK")  # to the trunk: 180, then 200


@pytest.mark.parametrize(
    ("source", "dialled", "status"),
    [(TRUNK_HOST, "0509999999", "404"), (STRANGER_HOST, GROUP_DID, "403")],
    ids=["unknown-did-from-the-trunk", "a-stranger"],
)
async def test_an_invite_is_refused(tmp_path: Path, source: str, dialled: str, status: str) -> None:
    alice_port, bob_port, trunk_port = free_port(), free_port(), free_port()
    scenario = scenario_copy(tmp_path, "uac_invite_refused.xml", REFUSAL_STATUS=status)
    text = config(alice_port, bob_port, trunk_port)
    async with running_server(text, tmp_path / "db.sqlite") as server:
        tap = SipTap(server)
        port = server.endpoint.listen_port
        result = await run_sipp(_uac(scenario, source, trunk_port, port, dialled), 10)
        assert result.returncode == 0 and result.successful == 1, result.output[:3000]
        assert server.engine.statistics() == {"calls": 0, "channels": 0}
    assert [line for _, line, _ in tap.sent if not line.startswith("100")] == [
        {"404": "404 Not Found", "403": "403 Forbidden"}[status]
    ]
