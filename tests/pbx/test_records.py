"""Dispositions and hangup causes of call records (API §4 forms)."""

from __future__ import annotations

import pytest

from switchboard.config import load_config
from switchboard.pbx.destinations import EndUser, resolve
from switchboard.pbx.hunt import Attempt, Result
from switchboard.pbx.records import build, member_hangup

DOMAIN = load_config(None).domains[0]


@pytest.mark.parametrize(
    ("result", "status", "ended_by", "expected"),
    [
        (Result.ANSWERED, 200, "member", "recv_bye,NORMAL_CLEARING"),
        (Result.ANSWERED, 200, "destination", "send_bye,NORMAL_CLEARING"),
        (Result.NO_ANSWER, None, "switchboard", "send_cancel,NO_ANSWER"),
        (Result.NO_ANSWER, 408, "switchboard", "recv_refuse,NO_ANSWER"),
        (Result.BUSY, 486, "switchboard", "recv_refuse,USER_BUSY"),
        (Result.REFUSED, 603, "switchboard", "recv_refuse,CALL_REJECTED"),
        (Result.CANCELED, None, "switchboard", "send_cancel,ORIGINATOR_CANCEL"),
        (Result.UNREGISTERED, None, "switchboard", "send_refuse,USER_NOT_REGISTERED"),
    ],
)
def test_member_hangup_causes(
    result: Result, status: int | None, ended_by: str, expected: str
) -> None:
    attempt = Attempt("u", "alice", result=result, sip_status=status)
    assert member_hangup(attempt, ended_by) == expected


def test_destination_record_carries_the_end_user_and_refusals() -> None:
    destination = resolve("{name=James Hudson}0312341234", DOMAIN)
    attempts = [Attempt("m1", "alice", result=Result.ANSWERED, started_at=1.0, ended_at=2.0)]
    records = build(
        domain="example.com", group_id=1111, attempts=attempts, destination=destination,
        destination_uuid="d1", destination_status=486, destination_answered_at=None,
        offered_destination_at=2.0, ended_at=3.0, ended_by="switchboard",
        wall=lambda t: None if t is None else 1000 + t,
    )  # fmt: skip
    member, far = records
    assert (member.other_uuid, member.answered_at, member.ended_at) == ("d1", 1002.0, 1003.0)
    assert (far.disposition, far.hangup, far.party) == (
        "refused", "recv_refuse,USER_BUSY", "0312341234",
    )  # fmt: skip
    assert far.end_user is not None and "James Hudson" in far.end_user
    assert EndUser(name="James Hudson") == destination.end_user
