"""Dispositions and hangup causes of call records (API §4 forms)."""

from __future__ import annotations

import pytest

from switchboard.pbx import messages as m
from switchboard.pbx.hunt import Attempt, Result
from switchboard.pbx.records import member_hangup
from tests.pbx.calls import EPOCH, Driver, call_group


@pytest.mark.parametrize(
    ("result", "status", "ended_by", "expected"),
    [
        (Result.ANSWERED, 200, "origin", "recv_bye,NORMAL_CLEARING"),
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
    driver = Driver.start(call_group("{name=James Hudson}0312341234"))
    driver.feed(m.LegAnswered("origin-0"), 1.0)
    driver.feed(m.LegFailed("destination-0", 486), 3.0)
    records = driver.of(m.WriteRecords)[0]
    assert isinstance(records, m.WriteRecords)
    member, _bob, far = records.records
    assert (member.other_uuid, member.answered_at, member.ended_at) == (
        "far",
        EPOCH + 1.0,
        EPOCH + 3.0,
    )
    assert (far.disposition, far.hangup, far.party) == (
        "refused",
        "recv_refuse,USER_BUSY",
        "0312341234",
    )
    assert far.end_user is not None and "James Hudson" in far.end_user
    assert far.other_uuid == "alice-1"
