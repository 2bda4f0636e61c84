"""The call machine, call by call: every flow of DESIGN §6 on a fake clock, in microseconds.

Legs are named ``<role>-<member>[.<terminal>]`` by the test driver; times are seconds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from switchboard.pbx import messages as m
from switchboard.pbx.hunt import Attempt, Availability, Result
from switchboard.pbx.legs import BridgeState
from switchboard.pbx.machine import TABLE
from switchboard.pbx.plan import Kind, Role
from tests.pbx.calls import DOMAIN, Driver, call_group, from_phone, members, redirect

ORIGIN, D = Role.ORIGIN, Role.DESTINATION


def attempts(driver: Driver) -> list[Attempt]:
    origin = driver.machine.call.origin
    assert origin is not None
    return origin.hunt.attempts


def state(driver: Driver) -> BridgeState:
    return driver.machine.state


def answered_call_group(destination: str = "0312341234") -> Driver:
    driver = Driver.start(call_group(destination))
    driver.feed(m.LegRinging("origin-0"), 1.0)
    driver.feed(m.LegAnswered("origin-0", b"v=0 alice"), 2.0)
    return driver


def test_a_member_answers_then_the_destination_rings_and_is_bridged() -> None:
    driver = answered_call_group()
    assert driver.machine.state is BridgeState.CONNECTING
    steps = [type(c) for c in driver.commands if not isinstance(c, m.Publish | m.SetTimer)]
    assert steps == [
        m.RingMember,  # alice
        m.AcceptAnswer,  # her SDP answers our offer
        m.SetBusy,
        m.StartRingback,
        m.RingMember,  # the destination
        m.QueueCallback,
    ]
    outcome = driver.of(m.QueueCallback)[0]
    assert isinstance(outcome, m.QueueCallback)
    assert outcome.payload["result_code"] == 0 and outcome.payload["answered_by"] == "alice"
    assert outcome.payload["request_uuids"] == ["alice-1", "bob-1"]
    assert driver.timers["max_call"] == 2.0 + 3600
    assert "origin" not in driver.timers  # the hunt is over
    driver.feed(m.LegRinging("destination-0"), 3.0)
    commands = driver.feed(m.LegAnswered("destination-0", b"v=0 far"), 4.0)
    assert m.Bridge() in commands and m.AcceptAnswer(D, "destination-0", b"v=0 far") in commands
    assert state(driver) is BridgeState.BRIDGED
    assert driver.published("far")[-1] == ("updated", None)
    commands = driver.feed(m.LegHungUp("destination-0"), 10.0)
    assert m.Bye("origin-0") in commands and commands[-1] == m.Release()
    assert m.SetBusy("alice", False) in commands
    records = driver.of(m.WriteRecords)[0]
    assert isinstance(records, m.WriteRecords)
    by_uuid = {r.uuid: r for r in records.records}
    assert by_uuid["alice-1"].hangup == "send_bye,NORMAL_CLEARING"
    assert by_uuid["far"].hangup == "recv_bye,NORMAL_CLEARING"
    assert by_uuid["far"].answered_at == 4.0 + 1_800_000_000.0
    assert by_uuid["bob-1"].disposition == "skipped"
    assert driver.published("alice-1")[-1] == ("removed", "send_bye,NORMAL_CLEARING")


def test_member_timeout_moves_the_hunt_on_and_no_answer_ends_it() -> None:
    driver = Driver.start(call_group())
    assert driver.timers["origin"] == 15
    commands = driver.advance(15.0)
    assert m.Cancel("origin-0") in commands
    assert m.RingMember(ORIGIN, 1, "bob", {"sip:bob@phone": "bob-1"}, None) in commands
    driver.feed(m.LegFailed("origin-0", 487), 15.01)  # the CANCEL's answer changes nothing
    commands = driver.feed(m.LegFailed("origin-1", 486), 16.0)
    outcome = next(c for c in commands if isinstance(c, m.QueueCallback))
    assert outcome.payload["error"] == {"id": "no_answer"}
    assert commands[-1] == m.Release()
    assert driver.published("alice-1")[-1] == ("removed", "send_cancel,NO_ANSWER")
    assert driver.published("bob-1")[-1] == ("removed", "recv_refuse,USER_BUSY")
    assert driver.of(m.WriteRecords)[0].records[-1].role != "destination"


def test_the_answer_timeout_cuts_the_ringing_member_short() -> None:
    plan = call_group(origin=members("alice", "bob", "carol"))
    driver = Driver.start(plan)
    driver.advance(15.0)
    driver.advance(30.0)
    driver.advance(45.0)
    commands = driver.advance(60.0)
    assert commands == [] and driver.machine.ended  # carol's 15 s would end at 60 too
    assert [c.leg for c in driver.of(m.Cancel)] == ["origin-0", "origin-1", "origin-2"]


def test_nobody_available_ends_at_once_with_no_member_available() -> None:
    unavailable = {"alice": Availability.BUSY, "bob": Availability.UNREGISTERED}
    driver = Driver.start(call_group(origin=members("alice", "bob", unavailable=unavailable)))
    assert driver.machine.ended
    outcome = driver.of(m.QueueCallback)[0]
    assert outcome.payload["error"] == {"id": "no_member_available"}
    assert driver.of(m.RingMember) == []
    assert driver.commands[-1] == m.Release()


def test_a_member_with_no_terminal_left_is_passed_over_and_the_next_rings() -> None:
    driver = Driver.start(call_group(), terminals={(ORIGIN, 0): 0})
    assert [c.member for c in driver.of(m.RingMember)] == [0, 1]
    assert driver.published("alice-1") == [
        ("added", None),
        ("removed", "send_refuse,USER_NOT_REGISTERED"),
    ]
    assert attempts(driver)[0].result is Result.UNREGISTERED
    assert attempts(driver)[0].sip_status is None  # nothing was sent


def test_the_first_terminal_to_answer_wins_and_a_second_2xx_gets_bye() -> None:
    driver = Driver.start(call_group(), terminals={(ORIGIN, 0): 2})
    commands = driver.feed(m.LegAnswered("origin-0.1"), 1.0)
    assert m.Cancel("origin-0") in commands
    assert driver.published("alice-new-1")[0] == ("added", None)
    commands = driver.feed(m.LegAnswered("origin-0"), 1.1)  # crossed our CANCEL
    assert commands[0] == m.Bye("origin-0")
    assert driver.published("alice-1")[-1] == ("removed", "send_cancel,LOSE_RACE")
    assert driver.machine.state is BridgeState.CONNECTING


def test_one_terminal_refusing_leaves_its_sibling_ringing() -> None:
    driver = Driver.start(call_group(), terminals={(ORIGIN, 0): 2})
    driver.feed(m.LegFailed("origin-0", 603), 1.0)
    assert driver.published("alice-1")[-1] == ("removed", "recv_refuse,CALL_REJECTED")
    assert attempts(driver)[0].result is None
    driver.feed(m.LegFailed("origin-0.1", 486), 2.0)
    attempt = attempts(driver)[0]
    assert attempt.sip_status == 486  # busy says more than declined


def test_hangup_while_hunting_cancels_and_reports_canceled() -> None:
    driver = Driver.start(call_group())
    commands = driver.feed(m.Hangup("api hangup"), 3.0)
    assert m.Cancel("origin-0") in commands
    outcome = driver.of(m.QueueCallback)[0]
    assert outcome.payload["error"] == {"id": "canceled"}
    assert commands[-1] == m.Release() and driver.timers == {}


def test_hangup_while_connecting_byes_the_member_and_cancels_the_destination() -> None:
    driver = answered_call_group()
    commands = driver.feed(m.Hangup("api hangup"), 5.0)
    assert m.Bye("origin-0") in commands and m.Cancel("destination-0") in commands
    assert driver.published("far")[-1] == ("removed", "send_cancel,ORIGINATOR_CANCEL")


def test_the_member_hanging_up_cancels_the_ringing_destination() -> None:
    driver = answered_call_group()
    commands = driver.feed(m.LegHungUp("origin-0"), 5.0)
    assert m.Cancel("destination-0") in commands and m.Bye("origin-0") not in commands
    assert driver.published("alice-1")[-1] == ("removed", "recv_bye,NORMAL_CLEARING")


def test_a_refusing_destination_ends_the_call_with_its_status() -> None:
    driver = answered_call_group()
    commands = driver.feed(m.LegFailed("destination-0", 486), 5.0)
    assert m.Bye("origin-0") in commands
    records = {r.uuid: r for r in driver.of(m.WriteRecords)[0].records}
    assert records["far"].hangup == "recv_refuse,USER_BUSY"
    assert driver.published("far")[-1] == ("removed", "recv_refuse,USER_BUSY")


def test_glare_member_bye_and_destination_200_cross() -> None:
    driver = answered_call_group()
    driver.feed(m.LegHungUp("origin-0"), 5.0)
    commands = driver.feed(m.LegAnswered("destination-0"), 5.001)
    assert commands == [m.Bye("destination-0")]  # the 2xx crossed our CANCEL (§9.1)
    assert len(driver.of(m.Release)) == 1


def test_early_media_replaces_ringback() -> None:
    driver = answered_call_group()
    commands = driver.feed(m.LegRinging("destination-0", 183, b"v=0 early"), 3.0)
    assert m.AcceptAnswer(D, "destination-0", b"v=0 early") in commands


def test_max_call_seconds_ends_a_bridged_call() -> None:
    driver = Driver.start(call_group(max_call_seconds=10))
    driver.feed(m.LegAnswered("origin-0"), 1.0)
    driver.feed(m.LegAnswered("destination-0"), 2.0)
    commands = driver.advance(11.0)
    assert m.Bye("origin-0") in commands and m.Bye("destination-0") in commands
    assert driver.machine.call.end_reason == "max_call_seconds"


def test_a_group_destination_hunts_by_its_own_settings() -> None:
    driver = answered_call_group("sales")
    rings = [c for c in driver.of(m.RingMember) if c.role is D]
    assert rings[0].user == "erik" and rings[0].channel == "erik-d"
    driver.feed(m.LegAnswered("destination-0"), 5.0)
    assert driver.machine.state is BridgeState.BRIDGED
    assert driver.published("far")[-1][0] == "updated"


def test_a_phone_calls_a_user_and_hears_ringing_then_is_answered() -> None:
    driver = Driver.start(from_phone("bob"))
    assert driver.published("caller-ch")[0] == ("added", None)
    assert driver.of(m.SetBusy) == [m.SetBusy("alice", True)]
    commands = driver.feed(m.LegRinging("destination-0"), 1.0)
    assert m.Progress("caller", 180) in commands
    assert driver.feed(m.LegRinging("destination-0"), 1.5) == []  # one 180 is enough
    commands = driver.feed(m.LegAnswered("destination-0", b"v=0 bob"), 3.0)
    assert commands[:3] == [
        m.AcceptAnswer(D, "destination-0", b"v=0 bob"),
        m.SetBusy("bob", True),
        m.Answer("caller"),
    ]
    commands = driver.feed(m.LegHungUp("caller"), 9.0)
    assert m.Bye("destination-0") in commands and m.Bye("caller") not in commands
    records = {r.role: r for r in driver.of(m.WriteRecords)[0].records}
    assert records["caller"].hangup == "recv_bye,NORMAL_CLEARING"
    assert records["caller"].party == "alice" and records["caller"].group_id is None
    assert records["destination"].hangup == "send_bye,NORMAL_CLEARING"


def test_a_caller_cancelling_ends_everything_without_a_refusal() -> None:
    driver = Driver.start(from_phone("bob"))
    commands = driver.feed(m.LegHungUp("caller"), 2.0)
    assert m.Cancel("destination-0") in commands
    assert driver.of(m.Reject) == []  # the user agent answered the CANCEL's INVITE 487
    assert driver.published("caller-ch")[-1] == ("removed", "recv_cancel,ORIGINATOR_CANCEL")


@pytest.mark.parametrize(
    ("status", "heard"),
    [(486, 486), (600, 486), (603, 603), (404, 404), (408, 480), (503, 503), (500, 503)],
)
def test_a_refusal_reaches_the_caller_as_a_status_saying_why(status: int, heard: int) -> None:
    driver = Driver.start(from_phone("0312341234"))
    commands = driver.feed(m.LegFailed("destination-0", status), 2.0)
    assert m.Reject("caller", heard) in commands
    assert commands[-1] == m.Release()


def test_a_busy_user_is_refused_486_without_ringing() -> None:
    plan = from_phone("bob")
    busy = replace(plan.destination.members[0], availability=Availability.BUSY)
    plan = replace(plan, destination=replace(plan.destination, members=(busy,)))
    driver = Driver.start(plan)
    assert driver.of(m.RingMember) == [] and driver.of(m.Reject) == [m.Reject("caller", 486)]


def test_a_trunk_call_to_a_group_did_hunts_and_says_480_when_nobody_answers() -> None:
    driver = Driver.start(from_phone("sales", kind=Kind.TRUNK))
    assert driver.published("caller-ch")[0] == ("added", None)
    group = driver.machine.call.plan.destination
    for n in range(len(group.members)):
        driver.advance(group.member_timeout * (n + 1))
    assert driver.of(m.Reject) == [m.Reject("caller", 480)]


def _row(key: tuple[BridgeState, type[m.Event]]) -> str:
    return f"{key[0].value}-{key[1].__name__}"


@pytest.mark.parametrize("key", list(TABLE), ids=_row)
def test_every_row_of_the_table_is_handled(key: tuple[BridgeState, type[m.Event]]) -> None:
    """Reach the row's state, feed it an event of the row's kind about a real leg."""
    row_state, kind = key
    driver = reach(row_state)
    event = sample(kind)
    before = driver.machine.state
    commands = driver.feed(event, driver.now + 0.5)
    assert all(type(c).__module__ == m.__name__ for c in commands)
    if before is BridgeState.ENDED:
        assert commands in ([], [m.Bye("destination-0")])


def reach(state: BridgeState) -> Driver:
    driver = Driver.start(call_group())
    if state is BridgeState.HUNTING:
        return driver
    driver.feed(m.LegAnswered("origin-0"), 1.0)
    if state is BridgeState.CONNECTING:
        return driver
    driver.feed(m.LegAnswered("destination-0"), 2.0)
    if state is BridgeState.BRIDGED:
        return driver
    if state is BridgeState.PARKED:
        driver.feed(m.Park("alice-1", 30, None), 3.0)
        assert driver.machine.state is state
        return driver
    driver.feed(m.Hangup("test"), 3.0)
    assert driver.machine.state is state
    return driver


def sample(kind: type[m.Event]) -> m.Event:
    samples: dict[type[m.Event], m.Event] = {
        m.LegRinging: m.LegRinging("destination-0"),
        m.LegAnswered: m.LegAnswered("destination-0"),
        m.LegFailed: m.LegFailed("destination-0", 486),
        m.LegHungUp: m.LegHungUp("destination-0"),
        m.MemberRung: m.MemberRung(D, 0, (("destination-0.9", "far"),)),
        m.Timer: m.Timer("max_call"),
        m.Hangup: m.Hangup("api hangup"),
        m.Transfer: m.Transfer("far", redirect("carol")),
        m.Park: m.Park("alice-1", 30, None),
    }
    return samples[kind]


def removed(driver: Driver, uuid: str) -> str | None:
    return driver.published(uuid)[-1][1]


def last_channel(driver: Driver, uuid: str) -> m.Publish:
    return [c for c in driver.of(m.Publish) if c.channel.uuid == uuid][-1]


def test_the_pstn_is_shown_the_caller_id_the_trunk_is_sent() -> None:
    driver = Driver.start(from_phone("0312341234"))
    far = last_channel(driver, "far").channel
    assert far.calling_number == "0501110001"  # alice's DID, not her extension
    assert far.other_info is not None and far.other_info.address == "101"  # the caller


def test_a_caller_refused_is_one_cause_in_cti_and_records() -> None:
    plan = from_phone("bob")
    busy = replace(plan.destination.members[0], availability=Availability.BUSY)
    driver = Driver.start(replace(plan, destination=replace(plan.destination, members=(busy,))))
    assert removed(driver, "caller-ch") == "send_refuse,USER_BUSY"
    assert removed(driver, "far") == "recv_refuse,USER_BUSY"
    records = {r.role: r for r in driver.of(m.WriteRecords)[0].records}
    assert records["caller"].hangup == "send_refuse,USER_BUSY"
    assert records["destination"].disposition == "refused"


def test_a_group_destination_shows_ringing_and_then_who_answered() -> None:
    driver = Driver.start(from_phone("sales"))
    driver.feed(m.LegRinging("destination-0"), 1.0)
    assert "ringing" in last_channel(driver, "far").channel.tags
    driver.feed(m.LegAnswered("destination-0"), 2.0)
    erik = next(u for u in DOMAIN.users if u.name == "erik")
    far = last_channel(driver, "far").channel
    assert far.user_id == erik.id and far.state is not None and far.state.name == "bridged"
    caller = last_channel(driver, "caller-ch").channel
    assert caller.other_info is not None and caller.other_info.type == "user"
    assert caller.other_info.user_id == erik.id


def test_a_member_record_names_the_terminal_that_answered() -> None:
    driver = Driver.start(call_group(), terminals={(ORIGIN, 0): 2})
    driver.feed(m.LegAnswered("origin-0.1"), 1.0)
    driver.feed(m.Hangup("api hangup"), 2.0)
    records = driver.of(m.WriteRecords)[0].records
    assert records[0].uuid == "alice-new-1" and records[0].disposition == "answered"
