"""CTI channels of every call kind, pinned field by field (API §4; docs/call-model.md, "CTI
channels"): what each call adds, how ringing, answer and bridge update it, and the cause
each channel is removed with.

Calls run on the machine alone (``tests.pbx.calls``). Times are loop seconds; the plan's
epoch makes them wall-clock µs (``us``). Users: alice 1001 (extension 101 in the test
plans, DID 0501110001), bob 1002, carol 1003, erik 1010; groups support 1111 (hunt:
alice, bob, carol) and sales 1112 (ring: erik, alice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest

from switchboard.cti.channels import (
    CallGroup,
    CallSummary,
    Channel,
    ChannelState,
    EndUserItem,
    OtherInfo,
    Target,
)
from switchboard.pbx import messages as m
from switchboard.pbx.destinations import resolve
from switchboard.pbx.hunt import Availability
from switchboard.pbx.plan import CallPlan, HuntPlan, Kind, MemberPlan, Role
from tests.pbx.calls import DOMAIN as DOMAIN_CONFIG
from tests.pbx.calls import Driver, call_group, call_user, from_phone, members, redirect

EPOCH_US = 1_800_000_000_000_000
DOMAIN = "example.com"
ALICE, BOB, CAROL, ERIK = 1001, 1002, 1003, 1010
SUPPORT, SALES = 1111, 1112
PSTN = "0312341234"
TRUNK_CALLER = "0312345678"
ORIGIN = Role.ORIGIN

# A step of a call: a time to advance the clock to (firing timers), or an event at a time.
Step = float | tuple[float, m.Event]


def us(t: float) -> int:
    return EPOCH_US + round(t * 1_000_000)


def run(
    plan: CallPlan, *steps: Step, terminals: dict[tuple[Role, int], int] | None = None
) -> Driver:
    driver = Driver.start(plan, terminals=terminals or {})
    for step in steps:
        if isinstance(step, tuple):
            driver.feed(step[1], step[0])
        else:
            driver.advance(step)
    return driver


def published(driver: Driver, uuid: str) -> list[m.Publish]:
    return [c for c in driver.of(m.Publish) if c.channel.uuid == uuid]


def added(driver: Driver, uuid: str) -> Channel:
    first = published(driver, uuid)[0]
    assert first.event == "added"
    return first.channel


def last(driver: Driver, uuid: str) -> Channel:
    return published(driver, uuid)[-1].channel


def removed(driver: Driver, uuid: str) -> Channel:
    """The channel's removal: exactly one, and the last thing published of it."""
    publishes = published(driver, uuid)
    assert [p.event for p in publishes].count("removed") == 1
    assert publishes[-1].event == "removed"
    return publishes[-1].channel


def cause(driver: Driver, uuid: str) -> str | None:
    return removed(driver, uuid).last_event_data


# -- plans ----------------------------------------------------------------------------------


def phone(destination: str, user: str = "alice") -> CallPlan:
    plan = from_phone(destination, user=user)
    return replace(plan, max_call_seconds=7200)  # ring timeouts fire before max_call


def trunk(destination: str) -> CallPlan:
    return replace(from_phone(destination, kind=Kind.TRUNK), max_call_seconds=7200)


def with_destination(plan: CallPlan, availability: Availability) -> CallPlan:
    """The destination's members passed over (busy or unregistered) without ringing."""
    members_ = tuple(
        replace(member, availability=availability) for member in plan.destination.members
    )
    return replace(plan, destination=replace(plan.destination, members=members_))


def ring_strategy(plan: CallPlan) -> CallPlan:
    origin = plan.origin
    assert isinstance(origin, HuntPlan)
    return replace(plan, origin=replace(origin, strategy="ring"))


# A call_group's member (alice, leg origin-0) rings at 1 s and answers at 2 s.
MEMBER_UP: tuple[Step, ...] = ((1.0, m.LegRinging("origin-0")), (2.0, m.LegAnswered("origin-0")))


def calling(
    t: float,
    kind: str,
    target: int | None = None,
    *,
    group_type: str | None = None,
    address: str | None = None,
) -> ChannelState:
    """The ``calling`` state toward a target (``_calling_state``)."""
    location = "ext" if kind == "pstn" else "int"
    return ChannelState(
        us(t), "calling", location, kind, target, group_type=group_type, address=address
    )


# -- a call_group's member terminals -------------------------------------------------------


def support_call(strategy: str = "hunt") -> CallSummary:
    """What a call_group of support to the PSTN number is, on its members' channels."""
    return CallSummary("pstn", PSTN, (), CallGroup(SUPPORT, "support", strategy))


def member_channel(
    uuid: str, user: str, user_id: int, t: float, name: str = "Support", *, strategy: str = "hunt"
) -> Channel:
    return Channel(
        uuid=uuid,
        domain=DOMAIN,
        calling_name=name,
        calling_number="1111",  # the group's extension
        called_number=user,
        offer_timestamp=us(t),
        user_id=user_id,
        group_id=SUPPORT,
        state=calling(t, "user", user_id),
        target=Target("user", user_id, user),
        origination=("call_group", "support"),
        last_event="STATE_CHANGE",
        call_id=uuid,
        call=support_call(strategy),
    )


@pytest.mark.parametrize(
    ("plan", "steps", "uuid", "expected"),
    [
        pytest.param(call_group(), (), "alice-1", member_channel("alice-1", "alice", ALICE, 0)),
        pytest.param(
            replace(call_group(), calling_name="Erik Lehnsherr"),
            (),
            "alice-1",
            member_channel("alice-1", "alice", ALICE, 0, name="Erik Lehnsherr"),
            id="calling_name",
        ),
        pytest.param(
            call_group(), (15.0,), "bob-1", member_channel("bob-1", "bob", BOB, 15), id="next"
        ),
        pytest.param(
            ring_strategy(call_group()),
            (),
            "bob-1",
            member_channel("bob-1", "bob", BOB, 0, strategy="ring"),
            id="ring",
        ),
    ],
)
def test_a_member_terminal_channel_is_outbound_from_the_group(
    plan: CallPlan, steps: tuple[Step, ...], uuid: str, expected: Channel
) -> None:
    assert added(run(plan, *steps), uuid) == expected


def test_a_terminal_registered_since_the_request_rings_on_a_channel_of_its_own() -> None:
    driver = run(call_group(), terminals={(ORIGIN, 0): 2})
    assert added(driver, "alice-new-1") == member_channel("alice-new-1", "alice", ALICE, 0)


# -- the caller's channel -------------------------------------------------------------------


def caller_channel(kind: Kind, called: str, state: ChannelState, group: int | None) -> Channel:
    # where the call goes, as the state names it: no calling group on a phone's or trunk's call
    summary = CallSummary(state.target_type or "", called)
    if kind is Kind.PHONE:
        return Channel(
            uuid="caller-ch",
            domain=DOMAIN,
            direction="inbound",
            peer_location="internal",
            calling_name="Alice",
            calling_number="101",
            called_number=called,
            offer_timestamp=us(0),
            user_id=ALICE,
            group_id=group,
            state=state,
            target=Target("user", ALICE, "alice"),
            origination=("phone", "alice"),
            last_event="STATE_CHANGE",
            call_id="caller-ch",
            call=summary,
        )
    return Channel(
        uuid="caller-ch",
        domain=DOMAIN,
        direction="inbound",
        peer_location="external",
        calling_name="Alice",
        calling_number=TRUNK_CALLER,
        called_number=called,
        offer_timestamp=us(0),
        group_id=group,
        state=state,
        origination=("trunk", TRUNK_CALLER),
        last_event="STATE_CHANGE",
        call_id="caller-ch",
        call=summary,
    )


CALLERS: dict[str, tuple[Callable[[], CallPlan], str, ChannelState, int | None]] = {
    # flow: (plan, called_number, state when added, group_id)
    "phone→user": (lambda: phone("bob"), "bob", calling(0, "user", BOB), None),
    "phone→user by extension": (lambda: phone("1003"), "carol", calling(0, "user", CAROL), None),
    "phone→hunt group": (
        lambda: phone("support"),
        "support",
        calling(0, "group", SUPPORT, group_type="hunt"),
        SUPPORT,
    ),
    "phone→ring group": (
        lambda: phone("1112"),
        "sales",
        calling(0, "group", SALES, group_type="ring"),
        SALES,
    ),
    "phone→pstn": (lambda: phone(PSTN), PSTN, calling(0, "pstn", address=PSTN), None),
    "trunk→user DID": (lambda: trunk("0501110001"), "alice", calling(0, "user", ALICE), None),
    "trunk→group DID": (
        lambda: trunk("0501111111"),
        "support",
        calling(0, "group", SUPPORT, group_type="hunt"),
        SUPPORT,
    ),
    "trunk→ring group": (
        lambda: trunk("sales"),
        "sales",
        calling(0, "group", SALES, group_type="ring"),
        SALES,
    ),
}


@pytest.mark.parametrize("flow", list(CALLERS))
def test_the_caller_channel_is_inbound_and_calls_the_target(flow: str) -> None:
    make, called, state, group = CALLERS[flow]
    plan = make()
    driver = run(plan)
    assert added(driver, "caller-ch") == caller_channel(plan.kind, called, state, group)


def test_the_caller_channel_is_added_before_the_destination_channel() -> None:
    driver = run(phone("bob"))
    assert [(p.event, p.channel.uuid) for p in driver.of(m.Publish)] == [
        ("added", "caller-ch"),
        ("added", "far"),
    ]


# -- the destination's channel --------------------------------------------------------------


def _as_user(direction: str, address: str, t: float, user: int, group: int | None) -> OtherInfo:
    return OtherInfo("user", direction, "internal", address, us(t), user_id=user, group_id=group)


PHONE_ALICE = _as_user("inbound", "101", 0, ALICE, None)
MEMBER_ALICE = _as_user("outbound", "alice", 0, ALICE, SUPPORT)
TRUNK_INFO = OtherInfo("end_user", "inbound", "external", TRUNK_CALLER, us(0))
HUDSON = EndUserItem("7", "James Hudson", "ACME", None, "Tokyo")


def far(**fields: object) -> Channel:
    """A destination channel with what every flow shares."""
    base = Channel(
        uuid="far",
        domain=DOMAIN,
        direction="outbound",
        last_event="STATE_CHANGE",
        call_id="far",
    )
    return base.with_(**fields)


def _phone_far(called: str, state: ChannelState, **fields: object) -> Channel:
    common: dict[str, object] = {
        "calling_name": "Alice",
        "calling_number": "101",
        "offer_timestamp": us(0),
        "other_uuid": "caller-ch",
        "origination": ("phone", "alice"),
        "other_info": PHONE_ALICE,
    }
    return far(called_number=called, state=state, **{**common, **fields})


def _trunk_far(called: str, state: ChannelState, **fields: object) -> Channel:
    common: dict[str, object] = {
        "calling_name": "Alice",
        "calling_number": TRUNK_CALLER,
        "offer_timestamp": us(0),
        "other_uuid": "caller-ch",
        "origination": ("trunk", TRUNK_CALLER),
        "other_info": TRUNK_INFO,
    }
    return far(called_number=called, state=state, **{**common, **fields})


def _group_far(called: str, state: ChannelState, **fields: object) -> Channel:
    """call_group's destination, offered when alice answered (2 s)."""
    common: dict[str, object] = {
        "calling_number": "0506868000",  # the domain's: call_group shows no member's number
        "offer_timestamp": us(2),
        "other_uuid": "alice-1",
        "group_id": SUPPORT,  # the calling group
        "origination": ("call_group", "support"),
        "other_info": MEMBER_ALICE,
    }
    return far(called_number=called, state=state, **{**common, **fields})


DESTINATIONS: dict[str, tuple[Callable[[], CallPlan], Channel]] = {
    "phone→user": (
        lambda: phone("bob"),
        _phone_far("bob", calling(0, "user", BOB), user_id=BOB),
    ),
    "phone→group": (
        lambda: phone("sales"),
        _phone_far(
            "sales",
            calling(0, "group", SALES, group_type="ring"),
            group_id=SALES,
            other_info=replace(PHONE_ALICE, group_id=SALES),
        ),
    ),
    "phone→pstn shows the user's DID": (
        lambda: phone(PSTN),
        _phone_far(
            PSTN,
            calling(0, "pstn", address=PSTN),
            peer_location="external",
            calling_number="0501110001",
        ),
    ),
    "phone→pstn without a DID shows the domain's number": (
        lambda: phone(PSTN, user="bob"),
        _phone_far(
            PSTN,
            calling(0, "pstn", address=PSTN),
            peer_location="external",
            calling_number="0506868000",
            origination=("phone", "bob"),
            other_info=replace(PHONE_ALICE, user_id=BOB),
        ),
    ),
    "trunk→user": (
        lambda: trunk("carol"),
        _trunk_far("carol", calling(0, "user", CAROL), user_id=CAROL),
    ),
    "trunk→group": (
        lambda: trunk("support"),
        _trunk_far("support", calling(0, "group", SUPPORT, group_type="hunt"), group_id=SUPPORT),
    ),
    "call_group→pstn": (
        lambda: call_group(PSTN),
        _group_far(PSTN, calling(2, "pstn", address=PSTN), peer_location="external"),
    ),
    "call_group→pstn with an end user and a caller ID": (
        lambda: call_group(
            "{id=7,name=James Hudson,organization=ACME,prefecture=Tokyo,"
            "calling_number=0506868002}0312341234"
        ),
        _group_far(
            PSTN,
            calling(2, "pstn", address=PSTN),
            peer_location="external",
            calling_number="0506868002",
            end_user=(HUDSON,),
        ),
    ),
    "call_group→user": (
        lambda: call_group("carol"),
        _group_far("carol", calling(2, "user", CAROL), user_id=CAROL),
    ),
    "call_group→group": (
        lambda: call_group("sales"),
        _group_far("sales", calling(2, "group", SALES, group_type="ring")),
    ),
}


def _offered(plan: CallPlan) -> Driver:
    return run(plan, *MEMBER_UP) if plan.kind is Kind.CALL_GROUP else run(plan)


@pytest.mark.parametrize("flow", list(DESTINATIONS))
def test_the_destination_channel_per_target_kind(flow: str) -> None:
    make, expected = DESTINATIONS[flow]
    assert added(_offered(make()), "far") == expected


def test_a_call_group_destination_is_offered_only_once_a_member_answered() -> None:
    driver = run(call_group(), (1.0, m.LegRinging("origin-0")))
    assert published(driver, "far") == []
    driver.feed(m.LegAnswered("origin-0"), 2.0)
    assert [p.event for p in published(driver, "far")] == ["added"]


# -- what the call is, on its calling side (``call``, JSON only) -------------------------------


def external(destination: str) -> CallPlan:
    """call_external: the PSTN number (James Hudson) rings first, then ``destination``."""
    plan = call_user(destination)
    origin = MemberPlan(None, planned={"pstn": "ext-1"}, number=PSTN)
    return replace(
        plan,
        kind=Kind.CALL_EXTERNAL,
        origin=HuntPlan((origin,), "ring", 60, 60),
        origin_target=resolve(f"{{name=James Hudson}}{PSTN}", DOMAIN_CONFIG),
    )


SUPPORT_HUNT = CallGroup(SUPPORT, "support", "hunt")
SUPPORT_CONTEXT = CallGroup(SUPPORT, "support")  # call_user's and call_external's group

SUMMARIES: dict[str, tuple[Callable[[], CallPlan], str, CallSummary]] = {
    # flow: (plan, the calling-side channel, what it says of the call when added)
    "call_group→pstn with an end user": (
        lambda: call_group("{id=7,name=James Hudson,organization=ACME,prefecture=Tokyo}" + PSTN),
        "alice-1",
        CallSummary("pstn", PSTN, (HUDSON,), SUPPORT_HUNT),
    ),
    "call_group→user": (
        lambda: call_group("carol"),
        "alice-1",
        CallSummary("user", "carol", (), SUPPORT_HUNT),
    ),
    "call_group→group, ringing its members": (
        lambda: ring_strategy(call_group("sales")),
        "alice-1",
        CallSummary("group", "sales", (), CallGroup(SUPPORT, "support", "ring")),
    ),
    "call_user→pstn": (
        lambda: call_user(PSTN),
        "alice-1",
        CallSummary("pstn", PSTN, (), SUPPORT_CONTEXT),
    ),
    "call_external→user": (
        lambda: external("carol"),
        "ext-1",
        CallSummary("user", "carol", (), SUPPORT_CONTEXT),
    ),
}


@pytest.mark.parametrize("flow", list(SUMMARIES))
def test_a_member_channel_says_where_its_call_goes_before_the_destination_exists(
    flow: str,
) -> None:
    make, uuid, expected = SUMMARIES[flow]
    driver = run(make(), (1.0, m.LegRinging("origin-0")))
    assert published(driver, "far") == [], "no destination channel while the member rings"
    assert added(driver, uuid).call == expected
    assert last(driver, uuid).tags[-1] == "ringing"
    assert last(driver, uuid).call == expected


def test_every_publish_of_a_member_channel_carries_its_call() -> None:
    driver = run(call_group(), *BRIDGE, at(9, HANGUP))
    assert [p.event for p in published(driver, "alice-1")] == [
        "added",
        "updated",  # ringing
        "updated",  # answered
        "updated",  # bridged
        "removed",
    ]
    assert {p.channel.call for p in published(driver, "alice-1")} == {support_call()}
    assert {p.channel.call for p in published(driver, "far")} == {None}, "the destination's own"


def test_the_party_that_stays_after_a_transfer_says_where_the_call_goes_now() -> None:
    driver = run(call_group(), *BRIDGE)
    driver.feed(m.Transfer("alice-1", redirect("carol")), 10.0)
    customer = last(driver, "far")  # the PSTN party, now calling carol
    assert (customer.other_uuid, customer.call) == (
        "next",
        CallSummary("user", "carol", (), SUPPORT_HUNT),  # still support's call
    )


# -- ringing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "leg", "uuid"),
    [
        pytest.param(phone("bob"), "destination-0", "far", id="phone→user"),
        pytest.param(phone("sales"), "destination-1", "far", id="phone→group, a member rings"),
        pytest.param(call_group(), "origin-0", "alice-1", id="call_group's member"),
    ],
)
def test_ringing_tags_the_channel_once_and_keeps_its_state(
    plan: CallPlan, leg: str, uuid: str
) -> None:
    driver = run(plan)
    before = last(driver, uuid)
    driver.feed(m.LegRinging(leg, 180), 1.0)
    driver.feed(m.LegRinging(leg, 183, b"v=0 early"), 1.5)
    driver.feed(m.LegRinging(leg, 180), 2.0)
    updates = [p.channel for p in published(driver, uuid) if p.event == "updated"]
    assert updates == [before.with_(tags=("ringing",), last_event="STATE_CHANGE")]


def test_a_ring_group_whose_members_both_ring_tags_its_channel_once() -> None:
    driver = run(phone("sales"), (1.0, m.LegRinging("destination-0")))
    driver.feed(m.LegRinging("destination-1"), 1.5)
    assert [p.event for p in published(driver, "far")] == ["added", "updated"]
    assert published(driver, "erik-d") == published(driver, "alice-d") == []


@pytest.mark.parametrize(
    "plan", [pytest.param(phone("bob"), id="phone"), pytest.param(trunk("support"), id="trunk")]
)
def test_a_caller_channel_is_never_tagged_ringing(plan: CallPlan) -> None:
    driver = run(plan, (1.0, m.LegRinging("destination-0")), (2.0, m.LegAnswered("destination-0")))
    assert all(p.channel.tags == () for p in published(driver, "caller-ch"))


def test_a_ringing_member_removed_later_carries_its_tag() -> None:
    driver = run(call_group(), (1.0, m.LegRinging("origin-0")), 15.0)
    gone = removed(driver, "alice-1")
    assert (gone.tags, gone.last_event_data) == (("ringing",), "send_cancel,NO_ANSWER")


# -- answer and bridge ----------------------------------------------------------------------


def test_a_member_answering_is_a_channel_answer_before_the_bridge() -> None:
    driver = run(call_group(), *MEMBER_UP)
    alice = last(driver, "alice-1")
    assert (alice.answer_timestamp, alice.last_event, alice.other_uuid) == (
        us(2),
        "CHANNEL_ANSWER",
        None,
    )
    assert alice.state == calling(0, "user", ALICE)  # still calling until the bridge


BRIDGES: dict[str, tuple[CallPlan, str, OtherInfo, OtherInfo, int | None, int | None]] = {
    # flow: (plan, origin channel, origin's other_info, destination's other_info,
    #        destination user_id once bridged, origin user_id)
    "phone→user": (
        phone("bob"),
        "caller-ch",
        _as_user("outbound", "bob", 0, BOB, None),
        PHONE_ALICE,
        BOB,
        ALICE,
    ),
    "phone→group (erik answers)": (
        phone("sales"),
        "caller-ch",
        _as_user("outbound", "sales", 0, ERIK, SALES),
        replace(PHONE_ALICE, group_id=SALES),
        ERIK,
        ALICE,
    ),
    "phone→pstn": (
        phone(PSTN),
        "caller-ch",
        OtherInfo("end_user", "outbound", "external", PSTN, us(0)),
        PHONE_ALICE,
        None,
        ALICE,
    ),
    "trunk→user": (
        trunk("carol"),
        "caller-ch",
        _as_user("outbound", "carol", 0, CAROL, None),
        TRUNK_INFO,
        CAROL,
        None,
    ),
    "trunk→group (erik answers)": (
        trunk("sales"),
        "caller-ch",
        _as_user("outbound", "sales", 0, ERIK, SALES),
        TRUNK_INFO,
        ERIK,
        None,
    ),
    "call_group→pstn with an end user": (
        call_group("{id=7,name=James Hudson,organization=ACME,prefecture=Tokyo}0312341234"),
        "alice-1",
        OtherInfo("end_user", "outbound", "external", PSTN, us(2), end_user=(HUDSON,)),
        MEMBER_ALICE,
        None,
        ALICE,
    ),
    "call_group→user": (
        call_group("carol"),
        "alice-1",
        _as_user("outbound", "carol", 2, CAROL, SUPPORT),
        MEMBER_ALICE,
        CAROL,
        ALICE,
    ),
    "call_group→group (erik answers)": (
        call_group("sales"),
        "alice-1",
        _as_user("outbound", "sales", 2, ERIK, SUPPORT),
        MEMBER_ALICE,
        ERIK,
        ALICE,
    ),
}


def _bridged(plan: CallPlan) -> Driver:
    driver = _offered(plan)
    driver.feed(m.LegRinging("destination-0"), 3.0)
    driver.feed(m.LegAnswered("destination-0"), 4.0)
    return driver


@pytest.mark.parametrize("flow", list(BRIDGES))
def test_the_bridge_links_both_channels_and_describes_each_to_the_other(flow: str) -> None:
    plan, origin, origin_info, far_info, far_user, origin_user = BRIDGES[flow]
    driver = _bridged(plan)
    answered_at = us(2) if plan.kind is Kind.CALL_GROUP else us(4)  # a member answered first
    before = published(driver, origin)[-2].channel  # as it was just before the bridge
    assert last(driver, origin) == before.with_(
        answer_timestamp=answered_at,
        other_uuid="far",
        state=ChannelState(us(4), "bridged"),
        last_event="CHANNEL_ANSWER",
        other_info=origin_info,
        last_bridged_user_id=far_user,
    )
    destination = last(driver, "far")
    assert destination == added(driver, "far").with_(
        tags=("ringing",),
        answer_timestamp=us(4),
        user_id=far_user,
        state=ChannelState(us(4), "bridged"),
        last_event="CHANNEL_ANSWER",
        other_info=far_info,
        other_uuid=origin,
        last_bridged_user_id=origin_user,
    )


def test_a_hunt_group_destination_takes_the_user_of_the_member_that_answered() -> None:
    driver = run(phone("support"), 15.0, 30.0, (31.0, m.LegAnswered("destination-2")))
    assert (last(driver, "far").user_id, last(driver, "far").last_bridged_user_id) == (
        CAROL,
        ALICE,
    )
    info = last(driver, "caller-ch").other_info
    assert info == _as_user("outbound", "support", 0, CAROL, SUPPORT)
    assert last(driver, "caller-ch").last_bridged_user_id == CAROL


# -- the life of a channel: last_event and timestamps ---------------------------------------


@pytest.mark.parametrize("flow", list(BRIDGES))
def test_each_channel_goes_state_change_then_channel_answer_then_channel_hangup(
    flow: str,
) -> None:
    plan, origin, *_ = BRIDGES[flow]
    driver = _bridged(plan)
    driver.feed(m.LegHungUp("destination-0"), 9.0)
    far_events = [(p.event, p.channel.last_event) for p in published(driver, "far")]
    assert far_events == [
        ("added", "STATE_CHANGE"),
        ("updated", "STATE_CHANGE"),  # ringing
        ("updated", "CHANNEL_ANSWER"),  # bridged
        ("removed", "CHANNEL_HANGUP"),
    ]
    origin_events = [(p.event, p.channel.last_event) for p in published(driver, origin)]
    if plan.kind is Kind.CALL_GROUP:
        assert origin_events == [
            ("added", "STATE_CHANGE"),
            ("updated", "STATE_CHANGE"),  # ringing
            ("updated", "CHANNEL_ANSWER"),  # the member answered
            ("updated", "CHANNEL_ANSWER"),  # bridged
            ("removed", "CHANNEL_HANGUP"),
        ]
    else:
        assert origin_events == [
            ("added", "STATE_CHANGE"),
            ("updated", "CHANNEL_ANSWER"),
            ("removed", "CHANNEL_HANGUP"),
        ]
    for uuid in (origin, "far"):
        gone = removed(driver, uuid)
        assert gone.hangup_timestamp == us(9)
        assert gone.offer_timestamp == added(driver, uuid).offer_timestamp


def test_timestamps_are_wall_clock_microseconds_from_the_plans_epoch() -> None:
    wall = 1_700_000_000_500_000
    plan = replace(call_group("carol"), epoch=wall / 1_000_000)
    driver = run(
        plan,
        15.0,  # alice times out, bob rings
        (16.5, m.LegAnswered("origin-1")),
        (17.75, m.LegAnswered("destination-0")),
        (20.125, m.Hangup("api hangup")),
    )

    def wall_us(t: float) -> int:
        return wall + round(t * 1_000_000)

    times = {
        uuid: (c.offer_timestamp, c.answer_timestamp, c.hangup_timestamp)
        for uuid in ("alice-1", "bob-1", "far")
        for c in [removed(driver, uuid)]
    }
    assert times == {
        "alice-1": (wall_us(0), None, wall_us(15)),
        "bob-1": (wall_us(15), wall_us(16.5), wall_us(20.125)),
        "far": (wall_us(16.5), wall_us(17.75), wall_us(20.125)),
    }
    assert removed(driver, "bob-1").state == ChannelState(wall_us(17.75), "bridged")
    assert added(driver, "bob-1").state == ChannelState(wall_us(15), "calling", "int", "user", BOB)


# -- removal causes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """A call played on the machine: its plan, then its steps."""

    name: str
    plan: Callable[[], CallPlan]
    steps: tuple[Step, ...]
    terminals: Mapping[tuple[Role, int], int] = field(default_factory=dict)

    def run(self) -> Driver:
        return run(self.plan(), *self.steps, terminals=dict(self.terminals))


def names(rows: Sequence[tuple[Case, *tuple[object, ...]]]) -> list[str]:
    """A table's test ids: its cases' names."""
    return [row[0].name for row in rows]


TWO_TERMINALS = {(ORIGIN, 0): 2}  # alice rings on alice-1 (planned) and alice-new-1
GONE = {(ORIGIN, 0): 0}  # alice's terminal unregistered since the request
BRIDGE: tuple[Step, ...] = (*MEMBER_UP, (4.0, m.LegAnswered("destination-0")))


def at(t: float, event: m.Event) -> tuple[float, m.Event]:
    return (t, event)


def fails(t: float, status: int, leg: str = "origin-0") -> tuple[float, m.Event]:
    return (t, m.LegFailed(leg, status))


HANGUP = m.Hangup("api hangup")


def member(
    name: str,
    steps: tuple[Step, ...],
    uuid: str,
    expected: str,
    ended: float,
    *,
    plan: Callable[[], CallPlan] = call_group,
    terminals: Mapping[tuple[Role, int], int] | None = None,
) -> tuple[Case, str, str, float]:
    """A member terminal's cause: the call, the channel, its cause, when it was removed."""
    return (Case(name, plan, steps, terminals or {}), uuid, expected, ended)


MEMBER_CAUSES = [
    member("no answer by member timeout", (15.0,), "alice-1", "send_cancel,NO_ANSWER", 15),
    member(
        "no answer, then the 487 of our CANCEL",
        (15.0, fails(15.25, 487)),
        "alice-1",
        "send_cancel,NO_ANSWER",
        15,
    ),
    member(
        "no answer, cut short by the answer timeout",
        (10.0,),
        "alice-1",
        "send_cancel,NO_ANSWER",
        10,
        plan=lambda: call_group(origin=replace(members("alice", "bob"), answer_timeout=10)),
    ),
    member("no answer, 408", (fails(3, 408),), "alice-1", "recv_refuse,NO_ANSWER", 3),
    member("no answer, 480", (fails(3, 480),), "alice-1", "recv_refuse,NO_USER_RESPONSE", 3),
    member("no answer, 404", (fails(3, 404),), "alice-1", "recv_refuse,UNALLOCATED_NUMBER", 3),
    member("no answer, 487", (fails(3, 487),), "alice-1", "recv_refuse,ORIGINATOR_CANCEL", 3),
    member(
        "no answer, 500", (fails(3, 500),), "alice-1", "recv_refuse,NORMAL_TEMPORARY_FAILURE", 3
    ),
    member(
        "no answer, 503", (fails(3, 503),), "alice-1", "recv_refuse,NORMAL_TEMPORARY_FAILURE", 3
    ),
    member("busy, 486", (fails(3, 486),), "alice-1", "recv_refuse,USER_BUSY", 3),
    member("busy, 600", (fails(3, 600),), "alice-1", "recv_refuse,USER_BUSY", 3),
    member("declined, 603", (fails(3, 603),), "alice-1", "recv_refuse,CALL_REJECTED", 3),
    member(
        "unregistered since the request, never rung",
        (at(3, HANGUP),),
        "alice-1",
        "send_refuse,USER_NOT_REGISTERED",
        0,
        terminals=GONE,
    ),
    member("skipped: alice answered", MEMBER_UP, "bob-1", "send_refuse,ORIGINATOR_CANCEL", 2),
    member(
        "skipped: the API hung up", (at(3, HANGUP),), "bob-1", "send_refuse,ORIGINATOR_CANCEL", 3
    ),
    member(
        "ringing when the API hung up",
        (at(1, m.LegRinging("origin-0")), at(3, HANGUP)),
        "alice-1",
        "send_cancel,ORIGINATOR_CANCEL",
        3,
    ),
    member(
        "ringing when another member answered (ring)",
        (at(2, m.LegAnswered("origin-0")),),
        "bob-1",
        "send_cancel,ORIGINATOR_CANCEL",
        2,
        plan=lambda: ring_strategy(call_group()),
    ),
    member(
        "lost the race to its sibling",
        (at(2, m.LegAnswered("origin-0.1")),),
        "alice-1",
        "send_cancel,LOSE_RACE",
        2,
        terminals=TWO_TERMINALS,
    ),
    member(
        "lost the race, its 2xx crossing our CANCEL",
        (at(2, m.LegAnswered("origin-0.1")), at(2.25, m.LegAnswered("origin-0"))),
        "alice-1",
        "send_cancel,LOSE_RACE",
        2,
        terminals=TWO_TERMINALS,
    ),
    member(
        "refused while its sibling rang on",
        (fails(3, 603), 15.0),
        "alice-1",
        "recv_refuse,CALL_REJECTED",
        3,
        terminals=TWO_TERMINALS,
    ),
    member(
        "its sibling refused, then the member timed out",
        (fails(3, 603), 15.0),
        "alice-new-1",
        "send_cancel,NO_ANSWER",
        15,
        terminals=TWO_TERMINALS,
    ),
    member(
        "won the race, then hung up",
        (at(2, m.LegAnswered("origin-0.1")), at(9, m.LegHungUp("origin-0.1"))),
        "alice-new-1",
        "recv_bye,NORMAL_CLEARING",
        9,
        terminals=TWO_TERMINALS,
    ),
    member(
        "answered, then hung up while the destination rang",
        (*MEMBER_UP, at(9, m.LegHungUp("origin-0"))),
        "alice-1",
        "recv_bye,NORMAL_CLEARING",
        9,
    ),
    member(
        "bridged, then hung up",
        (*BRIDGE, at(9, m.LegHungUp("origin-0"))),
        "alice-1",
        "recv_bye,NORMAL_CLEARING",
        9,
    ),
    member(
        "bridged, then the destination hung up",
        (*BRIDGE, at(9, m.LegHungUp("destination-0"))),
        "alice-1",
        "send_bye,NORMAL_CLEARING",
        9,
    ),
    member(
        "answered, then the destination refused",
        (*MEMBER_UP, fails(4, 486, "destination-0")),
        "alice-1",
        "send_bye,NORMAL_CLEARING",
        4,
    ),
    member(
        "answered, then the API hung up",
        (*MEMBER_UP, at(5, HANGUP)),
        "alice-1",
        "send_bye,NORMAL_CLEARING",
        5,
    ),
    member(
        "bridged, then max_call_seconds",
        (*BRIDGE, 20.0),
        "alice-1",
        "send_bye,NORMAL_CLEARING",
        12,
        plan=lambda: call_group(max_call_seconds=10),
    ),
]


@pytest.mark.parametrize(
    ("case", "uuid", "expected", "ended"), MEMBER_CAUSES, ids=names(MEMBER_CAUSES)
)
def test_member_channel_removal_causes(case: Case, uuid: str, expected: str, ended: float) -> None:
    gone = removed(case.run(), uuid)
    assert (gone.last_event, gone.last_event_data, gone.hangup_timestamp) == (
        "CHANNEL_HANGUP",
        expected,
        us(ended),
    )


def test_a_member_passed_over_without_terminals_has_no_channel() -> None:
    unavailable = {"alice": Availability.BUSY, "bob": Availability.UNREGISTERED}
    driver = run(call_group(origin=members("alice", "bob", "carol", unavailable=unavailable)))
    assert {p.channel.uuid for p in driver.of(m.Publish)} == {"carol-1"}


def test_every_planned_uuid_is_added_then_removed_even_when_never_reached() -> None:
    driver = run(call_group(origin=members("alice", "bob", "carol")), at(1, HANGUP))
    assert [(p.event, p.channel.uuid) for p in driver.of(m.Publish)] == [
        ("added", "alice-1"),
        ("removed", "alice-1"),
        ("added", "bob-1"),
        ("removed", "bob-1"),
        ("added", "carol-1"),
        ("removed", "carol-1"),
    ]


PHONE_BRIDGED: tuple[Step, ...] = (
    at(1, m.LegRinging("destination-0")),
    at(2, m.LegAnswered("destination-0")),
)


def caller(
    name: str,
    plan: Callable[[], CallPlan],
    steps: tuple[Step, ...],
    expected: tuple[str, str],
    ended: float,
) -> tuple[Case, tuple[str, str], float]:
    """The caller's and the destination's causes, one call."""
    return (Case(name, plan, steps), expected, ended)


def refusing(status: int, heard: str, received: str) -> tuple[Case, tuple[str, str], float]:
    return caller(
        f"the PSTN refused {status}",
        lambda: phone(PSTN),
        (fails(3, status, "destination-0"),),
        (f"send_refuse,{heard}", f"recv_refuse,{received}"),
        3,
    )


BYE, CANCEL = "_bye,NORMAL_CLEARING", "_cancel,ORIGINATOR_CANCEL"
CALLER_CAUSES = [
    caller(
        "bridged, the caller hung up",
        lambda: phone("bob"),
        (*PHONE_BRIDGED, at(9, m.LegHungUp("caller"))),
        ("recv" + BYE, "send" + BYE),
        9,
    ),
    caller(
        "bridged, the destination hung up",
        lambda: phone("bob"),
        (*PHONE_BRIDGED, at(9, m.LegHungUp("destination-0"))),
        ("send" + BYE, "recv" + BYE),
        9,
    ),
    caller(
        "bridged, a trunk caller hung up",
        lambda: trunk("support"),
        (*PHONE_BRIDGED, at(9, m.LegHungUp("caller"))),
        ("recv" + BYE, "send" + BYE),
        9,
    ),
    caller(
        "bridged, the API hung up",
        lambda: phone(PSTN),
        (*PHONE_BRIDGED, at(9, HANGUP)),
        ("send" + BYE, "send" + BYE),
        9,
    ),
    caller(
        "bridged, max_call_seconds",
        lambda: replace(phone("bob"), max_call_seconds=30),
        (*PHONE_BRIDGED, 40.0),
        ("send" + BYE, "send" + BYE),
        30,
    ),
    caller(
        "ringing, the caller cancelled",
        lambda: phone("bob"),
        (at(1, m.LegRinging("destination-0")), at(3, m.LegHungUp("caller"))),
        ("recv" + CANCEL, "send" + CANCEL),
        3,
    ),
    caller(
        "a group ringing, the trunk cancelled",
        lambda: trunk("sales"),
        (at(3, m.LegHungUp("caller")),),
        ("recv" + CANCEL, "send" + CANCEL),
        3,
    ),
    caller(
        "ringing, the API hung up: the caller hears 480",
        lambda: phone("bob"),
        (at(3, HANGUP),),
        ("send_refuse,NO_USER_RESPONSE", "send" + CANCEL),
        3,
    ),
    caller(
        "ringing, max_call_seconds",
        lambda: replace(phone("bob"), max_call_seconds=30),
        (40.0,),
        ("send_refuse,NO_USER_RESPONSE", "send" + CANCEL),
        30,
    ),
    refusing(486, "USER_BUSY", "USER_BUSY"),
    refusing(600, "USER_BUSY", "USER_BUSY"),  # heard as 486
    refusing(603, "CALL_REJECTED", "CALL_REJECTED"),
    refusing(404, "UNALLOCATED_NUMBER", "UNALLOCATED_NUMBER"),
    refusing(408, "NO_USER_RESPONSE", "NO_ANSWER"),  # heard as 480
    refusing(480, "NO_USER_RESPONSE", "NO_USER_RESPONSE"),
    refusing(500, "NORMAL_TEMPORARY_FAILURE", "NORMAL_TEMPORARY_FAILURE"),  # heard as 503
    refusing(503, "NORMAL_TEMPORARY_FAILURE", "NORMAL_TEMPORARY_FAILURE"),
    caller(
        "a busy user, never rung",
        lambda: with_destination(phone("bob"), Availability.BUSY),
        (),
        ("send_refuse,USER_BUSY", "recv_refuse,USER_BUSY"),
        0,
    ),
    caller(
        "an unregistered user, never rung",
        lambda: with_destination(phone("bob"), Availability.UNREGISTERED),
        (),
        ("send_refuse,NO_USER_RESPONSE", "recv_refuse,NO_USER_RESPONSE"),
        0,
    ),
    caller(
        "a group whose members are all busy",
        lambda: with_destination(trunk("support"), Availability.BUSY),
        (),
        ("send_refuse,USER_BUSY", "recv_refuse,USER_BUSY"),
        0,
    ),
    caller(
        "a user ringing until the ring timeout",
        lambda: phone("bob"),
        (3600.0,),
        ("send_refuse,NO_USER_RESPONSE", "recv_refuse,NO_USER_RESPONSE"),
        3600,
    ),
    caller(
        "a hunt group nobody answered",
        lambda: trunk("support"),
        (15.0, 30.0, 45.0),
        ("send_refuse,NO_USER_RESPONSE", "recv_refuse,NO_USER_RESPONSE"),
        45,
    ),
    caller(
        "a ring group whose members both declined",
        lambda: phone("sales"),
        (fails(3, 603, "destination-1"), fails(4, 603, "destination-0")),
        ("send_refuse,CALL_REJECTED", "recv_refuse,CALL_REJECTED"),
        4,
    ),
]


@pytest.mark.parametrize(("case", "expected", "ended"), CALLER_CAUSES, ids=names(CALLER_CAUSES))
def test_caller_and_destination_removal_causes(
    case: Case, expected: tuple[str, str], ended: float
) -> None:
    driver = case.run()
    assert (cause(driver, "caller-ch"), cause(driver, "far")) == expected
    assert removed(driver, "caller-ch").hangup_timestamp == us(ended)
    assert removed(driver, "far").hangup_timestamp == us(ended)


def destination(
    name: str, target: str, steps: tuple[Step, ...], expected: str, ended: float
) -> tuple[Case, str, float]:
    """A call_group's destination, offered when alice answered."""
    return (Case(name, lambda: call_group(target), (*MEMBER_UP, *steps)), expected, ended)


DESTINATION_CAUSES = [
    destination(
        "answered, the member hung up",
        PSTN,
        (BRIDGE[-1], at(9, m.LegHungUp("origin-0"))),
        "send" + BYE,
        9,
    ),
    destination(
        "answered, the destination hung up",
        "carol",
        (BRIDGE[-1], at(9, m.LegHungUp("destination-0"))),
        "recv" + BYE,
        9,
    ),
    destination("answered, the API hung up", "sales", (BRIDGE[-1], at(9, HANGUP)), "send" + BYE, 9),
    destination(
        "ringing, the member hung up",
        PSTN,
        (at(3, m.LegRinging("destination-0")), at(5, m.LegHungUp("origin-0"))),
        "send" + CANCEL,
        5,
    ),
    destination("ringing, the API hung up", "carol", (at(5, HANGUP),), "send" + CANCEL, 5),
    destination("refused 486", PSTN, (fails(5, 486, "destination-0"),), "recv_refuse,USER_BUSY", 5),
    destination(
        "refused 603", "carol", (fails(5, 603, "destination-0"),), "recv_refuse,CALL_REJECTED", 5
    ),
    destination(
        "refused 404", PSTN, (fails(5, 404, "destination-0"),), "recv_refuse,UNALLOCATED_NUMBER", 5
    ),
    destination(
        "refused 503",
        PSTN,
        (fails(5, 503, "destination-0"),),
        "recv_refuse,NORMAL_TEMPORARY_FAILURE",
        5,
    ),
    destination("a group nobody answered", "sales", (32.0,), "recv_refuse,NO_USER_RESPONSE", 32),
]


@pytest.mark.parametrize(
    ("case", "expected", "ended"), DESTINATION_CAUSES, ids=names(DESTINATION_CAUSES)
)
def test_call_group_destination_removal_causes(case: Case, expected: str, ended: float) -> None:
    gone = removed(case.run(), "far")
    assert (gone.last_event_data, gone.hangup_timestamp) == (expected, us(ended))


ALL_CASES: list[Case] = [
    *(row[0] for row in MEMBER_CAUSES),
    *(row[0] for row in CALLER_CAUSES),
    *(row[0] for row in DESTINATION_CAUSES),
]


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_every_channel_added_is_removed_once_and_last(case: Case) -> None:
    driver = case.run()
    if not driver.machine.ended:
        driver.feed(HANGUP, driver.now + 1)
    assert driver.machine.ended
    for uuid in {p.channel.uuid for p in driver.of(m.Publish)}:
        events = [p.event for p in published(driver, uuid)]
        assert events.count("added") == 1 and events[0] == "added"
        assert events.count("removed") == 1 and events[-1] == "removed"
        gone = removed(driver, uuid)
        assert gone.last_event == "CHANNEL_HANGUP" and gone.hangup_timestamp is not None
        assert gone.last_event_data is not None
