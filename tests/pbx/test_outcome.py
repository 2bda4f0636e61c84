"""The callback body of call_group (API §3; docs/api.md, "Callback"): queued once, when the
calling group's hunt finishes, with the result, the uuids and one attempt per member.

Calls run on the machine alone; the plan's epoch puts loop time 0 at 2027-01-15T08:00:00Z.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from switchboard.pbx import messages as m
from switchboard.pbx.hunt import Availability
from switchboard.pbx.outcome import iso
from switchboard.pbx.plan import CallPlan, Role
from tests.pbx.calls import EPOCH, Driver, call_group, members
from tests.pbx.test_channels import (
    GONE,
    HANGUP,
    MEMBER_UP,
    PSTN,
    SUPPORT,
    TWO_TERMINALS,
    Case,
    at,
    fails,
    published,
    ring_strategy,
    run,
)


def clock(seconds: float) -> str:
    """Loop seconds as the callback's ISO 8601 UTC time, to the millisecond."""
    whole, fraction = divmod(round(seconds * 1000), 1000)
    minutes, secs = divmod(whole, 60)
    return f"2027-01-15T08:{minutes:02d}:{secs:02d}.{fraction:03d}Z"


def attempt(
    uuid: str | None,
    user: str,
    result: str,
    status: int | None,
    times: tuple[float, float],
    *,
    planned: bool = True,
) -> dict[str, Any]:
    """One member's entry: ``uuids`` is the member's planned terminal, if it had one (a
    member with none still has its own id, its record's uuid)."""
    return {
        "uuid": uuid,
        "uuids": [uuid] if uuid and planned else [],
        "user": user,
        "result": result,
        "sip_status": status,
        "started_at": clock(times[0]),
        "ended_at": clock(times[1]),
    }


def answered(uuid: str, user: str, uuids: list[str], *attempts: dict[str, Any]) -> dict[str, Any]:
    return {
        "result_code": 0,
        "uuid": uuid,
        "answered_by": user,
        "request_uuids": uuids,
        "group_id": SUPPORT,
        "attempts": list(attempts),
    }


def failed(error: str, uuids: list[str], *attempts: dict[str, Any]) -> dict[str, Any]:
    return {
        "result_code": 500,
        "error": {"id": error},
        "request_uuids": uuids,
        "group_id": SUPPORT,
        "attempts": list(attempts),
    }


ALICE_BOB = ["alice-1", "bob-1"]


def ring() -> CallPlan:
    return ring_strategy(call_group())


CALLBACKS: list[tuple[Case, dict[str, Any]]] = [
    (
        Case("answered by the first member", call_group, MEMBER_UP),
        answered(
            "alice-1",
            "alice",
            ALICE_BOB,
            attempt("alice-1", "alice", "answered", 200, (0, 2)),
            attempt("bob-1", "bob", "skipped", None, (2, 2)),
        ),
    ),
    (
        Case(
            "answered by the second member after the first declined",
            call_group,
            (fails(1.25, 603), at(3.5, m.LegAnswered("origin-1"))),
        ),
        answered(
            "bob-1",
            "bob",
            ALICE_BOB,
            attempt("alice-1", "alice", "refused", 603, (0, 1.25)),
            attempt("bob-1", "bob", "answered", 200, (1.25, 3.5)),
        ),
    ),
    (
        Case("answered, ring strategy", ring, (at(2.5, m.LegAnswered("origin-1")),)),
        answered(
            "bob-1",
            "bob",
            ALICE_BOB,
            attempt("alice-1", "alice", "canceled", None, (0, 2.5)),
            attempt("bob-1", "bob", "answered", 200, (0, 2.5)),
        ),
    ),
    (
        Case("no answer", call_group, (15.0, fails(16.5, 486, "origin-1"))),
        failed(
            "no_answer",
            ALICE_BOB,
            attempt("alice-1", "alice", "no_answer", None, (0, 15)),
            attempt("bob-1", "bob", "busy", 486, (15, 16.5)),
        ),
    ),
    (
        Case("no answer with a SIP status", call_group, (fails(3, 408), fails(4, 480, "origin-1"))),
        failed(
            "no_answer",
            ALICE_BOB,
            attempt("alice-1", "alice", "no_answer", 408, (0, 3)),
            attempt("bob-1", "bob", "no_answer", 480, (3, 4)),
        ),
    ),
    (
        Case("no answer by the answer timeout, ring strategy", ring, (60.0,)),
        failed(
            "no_answer",
            ALICE_BOB,
            attempt("alice-1", "alice", "no_answer", None, (0, 15)),
            attempt("bob-1", "bob", "no_answer", None, (0, 15)),
        ),
    ),
    (
        Case(
            "no member available",
            lambda: call_group(
                origin=members(
                    "alice",
                    "bob",
                    "carol",
                    unavailable={"alice": Availability.UNREGISTERED, "bob": Availability.BUSY},
                )
            ),
            (fails(0.75, 603, "origin-2"),),
        ),
        failed(
            "no_member_available",
            ["carol-1"],
            attempt("alice-0", "alice", "unregistered", None, (0, 0), planned=False),
            attempt("bob-0", "bob", "busy", None, (0, 0), planned=False),
            attempt("carol-1", "carol", "refused", 603, (0, 0.75)),
        ),
    ),
    (
        Case(
            "canceled by the API while the first member rang",
            call_group,
            (at(1, m.LegRinging("origin-0")), at(3.001, HANGUP)),
        ),
        failed(
            "canceled",
            ALICE_BOB,
            attempt("alice-1", "alice", "canceled", None, (0, 3.001)),
            attempt("bob-1", "bob", "skipped", None, (3.001, 3.001)),
        ),
    ),
    (
        Case("canceled, ring strategy", ring, (at(3, HANGUP),)),
        failed(
            "canceled",
            ALICE_BOB,
            attempt("alice-1", "alice", "canceled", None, (0, 3)),
            attempt("bob-1", "bob", "canceled", None, (0, 3)),
        ),
    ),
]


def callback(driver: Driver) -> dict[str, Any]:
    (queued,) = driver.of(m.QueueCallback)
    return queued.payload


@pytest.mark.parametrize(("case", "body"), CALLBACKS, ids=[case.name for case, _ in CALLBACKS])
def test_the_callback_body(case: Case, body: dict[str, Any]) -> None:
    assert callback(case.run()) == body


@pytest.mark.parametrize("case", [case for case, _ in CALLBACKS], ids=lambda case: case.name)
def test_the_callback_is_queued_once_whatever_follows(case: Case) -> None:
    driver = case.run()
    first = callback(driver)
    if not driver.machine.ended:  # the destination rings: its fate is not the hunt's
        driver.feed(m.LegFailed("destination-0", 486), driver.now + 1)
    assert driver.machine.ended and callback(driver) == first == driver.machine.outcome


def test_the_callback_is_queued_when_the_hunt_finishes_before_the_destination_rings() -> None:
    driver = run(call_group(PSTN), MEMBER_UP[0])
    assert driver.of(m.QueueCallback) == []
    commands = driver.feed(m.LegAnswered("origin-0"), 2.0)
    assert sum(isinstance(c, m.QueueCallback) for c in commands) == 1
    assert m.RingMember(Role.DESTINATION, 0, None, {}, "far") in commands
    assert not driver.machine.ended


def test_without_a_callback_url_nothing_is_queued_but_the_outcome_is_kept() -> None:
    driver = run(replace(call_group(), callback=False), *MEMBER_UP)
    assert driver.of(m.QueueCallback) == []
    assert driver.machine.outcome is not None
    assert driver.machine.outcome["uuid"] == "alice-1"


# -- the answering uuid is one uuid everywhere ----------------------------------------------


@pytest.mark.parametrize(
    ("terminals", "leg", "uuid"),
    [
        ({}, "origin-0", "alice-1"),
        (TWO_TERMINALS, "origin-0", "alice-1"),
        (TWO_TERMINALS, "origin-0.1", "alice-new-1"),  # registered since the request
    ],
)
def test_the_answering_uuid_is_the_same_in_callback_records_and_cti(
    terminals: dict[Any, int], leg: str, uuid: str
) -> None:
    driver = run(call_group(), at(2, m.LegAnswered(leg)), at(5, HANGUP), terminals=terminals)
    body = callback(driver)
    (records,) = driver.of(m.WriteRecords)
    answered_record = next(r for r in records.records if r.disposition == "answered")
    answered_channel = [
        p.channel.uuid
        for p in driver.of(m.Publish)
        if p.event == "updated" and p.channel.last_event == "CHANNEL_ANSWER"
    ]
    assert body["uuid"] == body["attempts"][0]["uuid"] == answered_record.uuid == uuid
    assert answered_channel[0] == uuid
    assert records.records[-1].other_uuid == uuid  # the destination's peer


def test_request_uuids_are_every_planned_terminal_in_hunting_order() -> None:
    plan = call_group(origin=members("carol", "alice", "bob"))
    body = callback(run(plan, at(1, HANGUP)))
    assert body["request_uuids"] == ["carol-1", "alice-1", "bob-1"]
    assert [a["uuids"] for a in body["attempts"]] == [["carol-1"], ["alice-1"], ["bob-1"]]
    assert [a["user"] for a in body["attempts"]] == ["carol", "alice", "bob"]


def test_every_request_uuid_is_a_cti_channel() -> None:
    driver = run(call_group(origin=members("alice", "bob", "carol")), at(1, HANGUP))
    for uuid in callback(driver)["request_uuids"]:
        assert [p.event for p in published(driver, uuid)] == ["added", "removed"]


# -- product bugs ---------------------------------------------------------------------------


def test_each_attempt_uuid_is_its_member_record_uuid() -> None:
    unavailable = {"bob": Availability.UNREGISTERED}
    driver = run(call_group(origin=members("alice", "bob", unavailable=unavailable)), 15.0)
    (records,) = driver.of(m.WriteRecords)
    uuids = [a["uuid"] for a in callback(driver)["attempts"]]
    assert uuids == [r.uuid for r in records.records if r.role == "member"]


def test_an_attempts_uuids_include_the_terminal_that_answered() -> None:
    driver = run(call_group(), at(2, m.LegAnswered("origin-0.1")), terminals=TWO_TERMINALS)
    alice = callback(driver)["attempts"][0]
    assert alice["uuid"] == "alice-new-1"
    assert alice["uuid"] in alice["uuids"]


def test_a_hunt_whose_only_member_had_no_terminal_left_had_no_member_available() -> None:
    driver = run(call_group(origin=members("alice")), terminals=GONE)
    body = callback(driver)
    assert body["error"] == {"id": "no_member_available"}
    assert body["attempts"][0]["sip_status"] is None


# -- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall", "text"),
    [
        (EPOCH, "2027-01-15T08:00:00.000Z"),
        (EPOCH + 2.25, "2027-01-15T08:00:02.250Z"),
        (EPOCH + 61.5, "2027-01-15T08:01:01.500Z"),
        (0.0, "1970-01-01T00:00:00.000Z"),
        (None, None),
    ],
)
def test_times_are_iso_8601_utc_to_the_millisecond(wall: float | None, text: str | None) -> None:
    assert iso(wall) == text


def test_times_follow_the_plans_epoch() -> None:
    plan = replace(call_group(), epoch=EPOCH + 3600)
    body = callback(run(plan, *MEMBER_UP))
    assert body["attempts"][0]["ended_at"] == "2027-01-15T09:00:02.000Z"
