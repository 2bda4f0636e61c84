"""The end-of-call event (API §3b): one body when the whole call ends, each leg's outcome,
SIP status, who hung up, the cause, ring and talk durations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from switchboard.pbx import messages as m
from switchboard.pbx.outcome import iso
from tests.pbx.calls import EPOCH, Driver, call_group, from_phone


def _event(driver: Driver) -> dict[str, object]:
    (event,) = driver.of(m.QueueEvent)
    return event.payload


def test_a_busy_pstn_destination_is_said_in_the_end_of_call_event() -> None:
    driver = Driver.start(replace(call_group("0312341234"), call_events=True))
    driver.feed(m.LegRinging("origin-0"), 1.0)
    driver.feed(m.LegAnswered("origin-0"), 3.0)
    driver.feed(m.LegRinging("destination-0"), 3.5)
    commands = driver.feed(m.LegFailed("destination-0", 486), 5.0)
    assert [type(c) for c in commands][-3:] == [m.WriteRecords, m.QueueEvent, m.Release]
    event = _event(driver)
    assert (event["event"], event["kind"], event["ended_by"]) == (
        "call_ended",
        "call_group",
        "destination",  # it said busy
    )
    assert event["cause"] == "destination busy (486)"
    assert event["request_uuids"] == ["alice-1", "bob-1"]  # what call_group answered
    legs = {leg["role"] + ":" + leg["party"]: leg for leg in event["legs"]}  # type: ignore[attr-defined]
    far = legs["destination:0312341234"]
    assert (far["disposition"], far["sip_status"], far["hangup"]) == (
        "refused",
        486,
        "recv_refuse,USER_BUSY",
    )
    assert far["ring_seconds"] == pytest.approx(2.0) and far["talk_seconds"] is None
    alice = legs["member:alice"]
    assert (alice["sip_status"], alice["ring_seconds"]) == (200, pytest.approx(3.0))
    assert alice["talk_seconds"] == pytest.approx(2.0)  # answered at 3, released at 5
    assert legs["member:bob"]["disposition"] == "skipped"
    assert (event["started_at"], event["ended_at"]) == (iso(EPOCH), iso(EPOCH + 5.0))


def test_a_phone_call_talked_then_hung_up_by_the_caller() -> None:
    driver = Driver.start(replace(from_phone("bob"), call_events=True))
    driver.feed(m.LegRinging("destination-0"), 1.0)
    driver.feed(m.LegAnswered("destination-0"), 4.0)
    driver.feed(m.LegHungUp("caller"), 64.0)
    event = _event(driver)
    assert event["ended_by"] == "origin"
    legs = {leg["role"]: leg for leg in event["legs"]}  # type: ignore[attr-defined]
    assert legs["caller"]["hangup"] == "recv_bye,NORMAL_CLEARING"
    assert legs["destination"]["talk_seconds"] == pytest.approx(60.0)
    assert legs["destination"]["ring_seconds"] == pytest.approx(4.0)


def test_no_event_without_a_call_events_url() -> None:
    driver = Driver.start(call_group())
    driver.feed(m.Hangup("api hangup"), 1.0)
    assert driver.of(m.QueueEvent) == [] and driver.of(m.Release) == [m.Release()]


def test_a_destination_nobody_answers_is_said_as_such() -> None:
    driver = Driver.start(replace(from_phone("bob"), call_events=True))
    driver.feed(m.LegRinging("destination-0"), 1.0)
    driver.advance(4000.0)  # the destination's ring timeout
    event = _event(driver)
    assert (event["ended_by"], event["cause"]) == ("switchboard", "destination no answer")
    assert event["request_uuids"] == []  # a phone's call: no API request
