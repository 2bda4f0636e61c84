"""Dispositions and hangup causes of call records (API §4 forms)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from switchboard.pbx import messages as m
from switchboard.pbx.hunt import Attempt, Availability, Result
from switchboard.pbx.plan import Caller, CallPlan
from switchboard.pbx.records import member_hangup
from switchboard.store.records import CallRecord
from tests.pbx.calls import EPOCH, Driver, call_group, members
from tests.pbx.test_channels import (
    ALL_CASES,
    BRIDGE,
    GONE,
    HANGUP,
    MEMBER_UP,
    PHONE_BRIDGED,
    PSTN,
    SALES,
    SUPPORT,
    TRUNK_CALLER,
    TWO_TERMINALS,
    Case,
    at,
    fails,
    phone,
    published,
    run,
    trunk,
    with_destination,
)


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


# -- every record of a call, exactly ---------------------------------------------------------


def _record(
    role: str,
    uuid: str,
    party: str,
    times: tuple[float | None, float | None, float | None],
    ending: tuple[str, str],
    *,
    other: str | None = None,
    group: int | None = SUPPORT,
    end_user: str | None = None,
) -> CallRecord:
    """A record in ``example.com``: ``times`` (offered, answered, ended) in loop seconds,
    ``ending`` its disposition and hangup."""
    offered, answered, ended = (None if t is None else EPOCH + t for t in times)
    disposition, hangup = ending
    return CallRecord(
        uuid=uuid,
        domain="example.com",
        role=role,
        party=party,
        group_id=group,
        other_uuid=other,
        offered_at=offered,
        answered_at=answered,
        ended_at=ended,
        disposition=disposition,
        hangup=hangup,
        end_user=end_user,
    )


Times = tuple[float | None, float | None, float | None]


def member(
    uuid: str, party: str, times: Times, ending: tuple[str, str], other: str | None = None
) -> CallRecord:
    return _record("member", uuid, party, times, ending, other=other)


def caller(party: str, times: Times, ending: tuple[str, str], group: int | None) -> CallRecord:
    return _record("caller", "caller-ch", party, times, ending, other="far", group=group)


def far(
    party: str,
    times: Times,
    ending: tuple[str, str],
    other: str,
    *,
    group: int | None = SUPPORT,
    end_user: str | None = None,
) -> CallRecord:
    return _record(
        "destination", "far", party, times, ending, other=other, group=group, end_user=end_user
    )


def anonymous_trunk(destination: str) -> CallPlan:
    plan = trunk(destination)
    assert isinstance(plan.origin, Caller)
    return replace(plan, origin=replace(plan.origin, number=None))


ANSWERED_RECV = ("answered", "recv_bye,NORMAL_CLEARING")
ANSWERED_SEND = ("answered", "send_bye,NORMAL_CLEARING")
SKIPPED = ("skipped", "send_refuse,ORIGINATOR_CANCEL")
CANCELED = ("canceled", "send_cancel,ORIGINATOR_CANCEL")
CALLER_CANCELED = ("canceled", "recv_cancel,ORIGINATOR_CANCEL")
HUDSON = (
    '{"id": "7", "name": "James Hudson", "organization": null, "avatar": null, '
    '"prefecture": "Tokyo"}'
)

RECORDS: list[tuple[Case, list[CallRecord]]] = [
    (
        Case(
            "call_group bridged, the member hung up",
            lambda: call_group(PSTN),
            (*BRIDGE, at(9, m.LegHungUp("origin-0"))),
        ),
        [
            member("alice-1", "alice", (0, 2, 9), ANSWERED_RECV, other="far"),
            member("bob-1", "bob", (2, None, 2), SKIPPED),
            far(PSTN, (2, 4, 9), ANSWERED_SEND, "alice-1"),
        ],
    ),
    (
        Case(
            "call_group bridged, the destination hung up",
            lambda: call_group("carol"),
            (*BRIDGE, at(9, m.LegHungUp("destination-0"))),
        ),
        [
            member("alice-1", "alice", (0, 2, 9), ANSWERED_SEND, other="far"),
            member("bob-1", "bob", (2, None, 2), SKIPPED),
            far("carol", (2, 4, 9), ANSWERED_RECV, "alice-1"),
        ],
    ),
    (
        Case("call_group nobody answered", call_group, (15.0, fails(16, 486, "origin-1"))),
        [
            member("alice-1", "alice", (0, None, 15), ("no_answer", "send_cancel,NO_ANSWER")),
            member("bob-1", "bob", (15, None, 16), ("busy", "recv_refuse,USER_BUSY")),
        ],
    ),
    (
        Case(
            "call_group no answer with a SIP status",
            call_group,
            (fails(3, 408), fails(5, 500, "origin-1")),
        ),
        [
            member("alice-1", "alice", (0, None, 3), ("no_answer", "recv_refuse,NO_ANSWER")),
            member(
                "bob-1", "bob", (3, None, 5), ("no_answer", "recv_refuse,NORMAL_TEMPORARY_FAILURE")
            ),
        ],
    ),
    (
        Case(
            "call_group cancelled by the API while alice rang",
            call_group,
            (at(1, m.LegRinging("origin-0")), at(3, HANGUP)),
        ),
        [
            member("alice-1", "alice", (0, None, 3), CANCELED),
            member("bob-1", "bob", (3, None, 3), SKIPPED),
        ],
    ),
    (
        Case(
            "call_group with nobody available",
            lambda: call_group(
                origin=members("alice", "bob", unavailable={"alice": Availability.UNREGISTERED})
            ),
            (fails(3, 603, "origin-1"),),
        ),
        [
            member(
                "alice-0",
                "alice",
                (0, None, 0),
                ("unregistered", "send_refuse,USER_NOT_REGISTERED"),
            ),
            member("bob-1", "bob", (0, None, 3), ("refused", "recv_refuse,CALL_REJECTED")),
        ],
    ),
    (
        Case(
            "call_group, the destination declined",
            lambda: call_group("carol"),
            (*MEMBER_UP, fails(5, 603, "destination-0")),
        ),
        [
            member("alice-1", "alice", (0, 2, 5), ANSWERED_SEND, other="far"),
            member("bob-1", "bob", (2, None, 2), SKIPPED),
            far("carol", (2, None, 5), ("refused", "recv_refuse,CALL_REJECTED"), "alice-1"),
        ],
    ),
    (
        Case(
            "call_group, the API hung up while a group destination rang",
            lambda: call_group("sales"),
            (*MEMBER_UP, at(3, m.LegRinging("destination-1")), at(5, HANGUP)),
        ),
        [
            member("alice-1", "alice", (0, 2, 5), ANSWERED_SEND, other="far"),
            member("bob-1", "bob", (2, None, 2), SKIPPED),
            far("sales", (2, None, 5), CANCELED, "alice-1"),
        ],
    ),
    (
        Case(
            "call_group answered by a terminal registered since the request",
            lambda: call_group(PSTN),
            (at(2, m.LegAnswered("origin-0.1")), at(9, HANGUP)),
            TWO_TERMINALS,
        ),
        [
            member("alice-new-1", "alice", (0, 2, 9), ANSWERED_SEND, other="far"),
            member("bob-1", "bob", (2, None, 2), SKIPPED),
            far(PSTN, (2, None, 9), CANCELED, "alice-new-1"),
        ],
    ),
    (
        Case(
            "call_group to an end user",
            lambda: call_group("{id=7,name=James Hudson,prefecture=Tokyo}0312341234"),
            (*MEMBER_UP, at(5, HANGUP)),
        ),
        [
            member("alice-1", "alice", (0, 2, 5), ANSWERED_SEND, other="far"),
            member("bob-1", "bob", (2, None, 2), SKIPPED),
            far(PSTN, (2, None, 5), CANCELED, "alice-1", end_user=HUDSON),
        ],
    ),
    (
        Case(
            "phone→user, the caller hung up",
            lambda: phone("bob"),
            (*PHONE_BRIDGED, at(9, m.LegHungUp("caller"))),
        ),
        [
            caller("alice", (0, 2, 9), ANSWERED_RECV, None),
            far("bob", (0, 2, 9), ANSWERED_SEND, "caller-ch", group=None),
        ],
    ),
    (
        Case(
            "phone→pstn, max_call_seconds",
            lambda: replace(phone(PSTN), max_call_seconds=30),
            (*PHONE_BRIDGED, 40.0),
        ),
        [
            caller("alice", (0, 2, 30), ANSWERED_SEND, None),
            far(PSTN, (0, 2, 30), ANSWERED_SEND, "caller-ch", group=None),
        ],
    ),
    (
        Case("phone→pstn refused busy", lambda: phone(PSTN), (fails(3, 486, "destination-0"),)),
        [
            caller("alice", (0, None, 3), ("refused", "send_refuse,USER_BUSY"), None),
            far(PSTN, (0, None, 3), ("refused", "recv_refuse,USER_BUSY"), "caller-ch", group=None),
        ],
    ),
    (
        Case(
            "phone→unregistered user",
            lambda: with_destination(phone("bob"), Availability.UNREGISTERED),
            (),
        ),
        [
            caller("alice", (0, None, 0), ("refused", "send_refuse,NO_USER_RESPONSE"), None),
            far(
                "bob",
                (0, None, 0),
                ("refused", "recv_refuse,NO_USER_RESPONSE"),
                "caller-ch",
                group=None,
            ),
        ],
    ),
    (
        Case(
            "phone→group, the caller cancelled",
            lambda: phone("sales"),
            (at(1, m.LegRinging("destination-1")), at(3, m.LegHungUp("caller"))),
        ),
        [
            caller("alice", (0, None, 3), CALLER_CANCELED, SALES),
            far("sales", (0, None, 3), CANCELED, "caller-ch", group=SALES),
        ],
    ),
    (
        Case(
            "trunk→group DID, the member hung up",
            lambda: trunk("0501111111"),
            (15.0, at(16, m.LegAnswered("destination-1")), at(20, m.LegHungUp("destination-1"))),
        ),
        [
            caller(TRUNK_CALLER, (0, 16, 20), ANSWERED_SEND, SUPPORT),
            far("support", (0, 16, 20), ANSWERED_RECV, "caller-ch"),
        ],
    ),
    (
        Case(
            "an anonymous trunk caller cancelled",
            lambda: anonymous_trunk("support"),
            (at(3, m.LegHungUp("caller")),),
        ),
        [
            caller("anonymous", (0, None, 3), CALLER_CANCELED, SUPPORT),
            far("support", (0, None, 3), CANCELED, "caller-ch"),
        ],
    ),
]


def written(driver: Driver) -> list[CallRecord]:
    (records,) = driver.of(m.WriteRecords)
    return list(records.records)


@pytest.mark.parametrize(("case", "expected"), RECORDS, ids=[case.name for case, _ in RECORDS])
def test_every_record_of_a_call(case: Case, expected: list[CallRecord]) -> None:
    assert written(case.run()) == expected


@pytest.mark.parametrize("case", [case for case, _ in RECORDS], ids=lambda case: case.name)
def test_answered_records_name_each_other(case: Case) -> None:
    records = written(case.run())
    by_role = {r.role: r for r in records if r.disposition == "answered"}
    origin = by_role.get("member") or by_role.get("caller")
    destination = by_role.get("destination")
    if origin is not None and destination is not None:
        assert (origin.other_uuid, destination.other_uuid) == (destination.uuid, origin.uuid)


# -- CTI and records tell one story ----------------------------------------------------------


def _one_story(case: Case) -> None:
    """Every record whose uuid was a CTI channel says what the channel's removal said."""
    driver = case.run()
    if not driver.machine.ended:
        driver.feed(HANGUP, driver.now + 1)
    for rec in written(driver):
        channels = published(driver, rec.uuid)
        if not channels:
            continue
        gone = channels[-1].channel

        def us(wall: float | None) -> int | None:
            return None if wall is None else round(wall * 1_000_000)

        assert (rec.hangup, us(rec.offered_at), us(rec.answered_at), us(rec.ended_at)) == (
            gone.last_event_data,
            gone.offer_timestamp,
            gone.answer_timestamp,
            gone.hangup_timestamp,
        ), rec.uuid
        if gone.other_uuid is not None:
            assert rec.other_uuid == gone.other_uuid


# A member rings as one record but as one channel per terminal: with two terminals, the
# record names the first and tells the member's story (docs/call-model.md, "Call records").
ONE_TERMINAL = [case for case in ALL_CASES if case.terminals != TWO_TERMINALS]


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case.name) for case in ONE_TERMINAL],
)
def test_cti_and_records_tell_one_story(case: Case) -> None:
    _one_story(case)


def test_a_member_whose_terminals_had_gone_is_recorded_as_its_channel_says() -> None:
    driver = run(call_group(), at(3, HANGUP), terminals=GONE)
    alice = written(driver)[0]
    assert alice.hangup == published(driver, "alice-1")[-1].channel.last_event_data
    assert alice.hangup == "send_refuse,USER_NOT_REGISTERED"


def test_a_member_passed_over_as_busy_is_refused_by_us() -> None:
    busy = members("alice", "bob", unavailable={"alice": Availability.BUSY})
    driver = run(call_group(origin=busy), at(3, HANGUP))
    alice = written(driver)[0]
    assert (alice.disposition, alice.hangup) == ("busy", "send_refuse,USER_BUSY")


def test_a_member_refused_busy_by_its_phone_is_recv_refuse() -> None:
    driver = run(call_group(), fails(3, 486), 20.0)
    alice = written(driver)[0]
    assert (alice.disposition, alice.hangup) == ("busy", "recv_refuse,USER_BUSY")


def test_records_are_written_once_when_the_call_ends_and_before_release() -> None:
    driver = run(call_group(PSTN), *BRIDGE)
    assert driver.of(m.WriteRecords) == []
    commands = driver.feed(HANGUP, 9.0)
    assert [type(c) for c in commands[-2:]] == [m.WriteRecords, m.Release]
    driver.feed(m.LegAnswered("destination-0"), 9.5)
    assert len(driver.of(m.WriteRecords)) == 1


def test_no_destination_record_when_no_member_answered() -> None:
    records = written(run(call_group(), at(3, HANGUP)))
    assert [r.role for r in records] == ["member", "member"]
