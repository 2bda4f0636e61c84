"""Every CTI element survives its lossless state as JSON text (as the cluster state carries
it): re-created equal, with the same BERT and JSON frames, for arbitrary elements of every
kind and for every channel the call machine and whole calls publish."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import switchboard.testing.pbx
from switchboard.cti import messages
from switchboard.cti.channels import (
    STATE_NAMES,
    CallGroup,
    CallSummary,
    Channel,
    ChannelState,
    EndUserItem,
    OtherInfo,
    Target,
)
from switchboard.cti.elements import (
    DomainRow,
    GroupMemberRow,
    GroupRow,
    TerminalRow,
    TrunkRow,
    UserRow,
    element_from_state,
)
from switchboard.cti.hub import CtiHub, Element, Event
from switchboard.pbx import messages as m
from switchboard.pbx.plan import CallPlan, Kind, Role
from tests.pbx import test_calls_on_harness, test_transfer_on_harness
from tests.pbx.calls import Driver
from tests.pbx.test_machine_properties import PLANS, steps, transfer_steps

texts = st.one_of(st.none(), st.text(max_size=12))
ints = st.one_of(st.none(), st.integers(-(2**63), 2**63))
end_users = st.lists(st.builds(EndUserItem, texts, texts, texts, texts, texts), max_size=3).map(
    tuple
)
states = st.builds(
    ChannelState,
    st.integers(0, 2**62),
    st.sampled_from(sorted(STATE_NAMES)),
    st.sampled_from([None, "int", "ext"]),  # atoms on the wire, as the others sampled
    st.sampled_from([None, "user", "group", "pstn"]),
    ints,
    st.sampled_from([None, "hunt", "ring"]),
    texts,
    texts,
    ints,
    ints,
    texts,
)
channels = st.builds(
    Channel,
    uuid=st.text(min_size=1, max_size=12),
    domain=st.text(min_size=1, max_size=12),
    direction=st.sampled_from(["inbound", "outbound"]),
    peer_location=st.sampled_from(["internal", "external"]),
    calling_name=texts,
    calling_number=texts,
    called_number=texts,
    offer_timestamp=ints,
    answer_timestamp=ints,
    hangup_timestamp=ints,
    other_uuid=texts,
    user_id=ints,
    group_id=ints,
    state=st.one_of(st.none(), states),
    target=st.one_of(
        st.none(), st.builds(Target, st.sampled_from(["user", "group"]), st.integers(), st.text())
    ),
    origination=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    end_user=end_users,
    tags=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    last_event=st.sampled_from([None, "STATE_CHANGE", "CHANNEL_ANSWER", "CHANNEL_HANGUP"]),
    last_event_data=texts,
    call_id=texts,
    other_info=st.one_of(
        st.none(),
        st.builds(
            OtherInfo,
            st.sampled_from(["user", "end_user"]),
            st.sampled_from(["inbound", "outbound"]),
            st.sampled_from(["internal", "external"]),
            texts,
            ints,
            ints,
            ints,
            end_users,
        ),
    ),
    last_bridged_user_id=ints,
    call=st.one_of(
        st.none(),
        st.builds(
            CallSummary,
            st.sampled_from(["user", "group", "pstn"]),
            st.text(max_size=8),
            end_users,
            st.one_of(
                st.none(),
                st.builds(
                    CallGroup, st.integers(), st.text(), st.sampled_from([None, "hunt", "ring"])
                ),
            ),
        ),
    ),
)
names = st.text(min_size=1, max_size=12)
rows = st.one_of(
    st.builds(DomainRow, names, names, st.text(), st.integers(), texts),
    st.builds(
        UserRow, names, st.integers(), st.text(), texts, texts, texts, texts,
        st.sampled_from(["available", "offline"]),
    ),
    st.builds(
        GroupRow, names, st.integers(), st.text(), st.sampled_from([0, 1]), texts, texts, texts,
        st.integers(), st.integers(),
    ),
    st.builds(
        GroupMemberRow, names, names, st.integers(), st.integers(), st.integers(), st.integers(),
    ),
    st.builds(
        TerminalRow, names, names, st.text(), st.integers(), st.sampled_from(["sip", "static"]),
        texts, st.booleans(), texts,
    ),
    st.builds(TrunkRow, names, names, names, st.text(), st.text(), st.sampled_from(["up", "down"])),
)  # fmt: skip


def carried(item: Element) -> Element:
    """The element another node re-creates from the event the state carried as JSON text."""
    return element_from_state(json.loads(json.dumps(item.to_state())))


def assert_same_on_the_wire(item: Element) -> None:
    again = carried(item)
    assert again == item
    assert type(again) is type(item)
    for event in ("added", "updated", "removed"):
        assert messages.info_event_bert(event, again) == messages.info_event_bert(event, item)
        assert messages.info_event_json(event, again, 7) == messages.info_event_json(event, item, 7)
    assert messages.initial_info_bert(item.ELEMENT, [again]) == messages.initial_info_bert(
        item.ELEMENT, [item]
    )


@settings(max_examples=500, deadline=None)
@given(item=st.one_of(channels, rows))
def test_any_element_comes_back_equal_with_the_same_frames(item: Element) -> None:
    assert_same_on_the_wire(item)


@pytest.mark.parametrize(
    "state",
    [
        {"element": "queue", "id": 1},
        {"id": 1},
        {"element": "user", "domain": "example.com", "id": 1},  # fields missing
        {"element": "channel", "uuid": "a", "domain": "d", "colour": "red"},  # unknown field
        {"element": "channel", "uuid": "a", "domain": "d", "state": {"ts": 1, "name": "dancing"}},
        {"element": "channel", "uuid": "a", "domain": "d", "target": "bob"},
    ],
)
def test_what_is_no_elements_state_is_a_value_error(state: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        element_from_state(state)


def _every_channel(driver: Driver) -> None:
    publishes = driver.of(m.Publish)
    assert publishes
    for publish in publishes:
        assert_same_on_the_wire(publish.channel)


@settings(max_examples=300, deadline=None)
@given(plan_name=st.sampled_from(sorted(PLANS)), two_terminals=st.booleans(), script=steps)
def test_every_channel_the_call_machine_publishes_comes_back_the_same(
    plan_name: str, two_terminals: bool, script: list[tuple[str, m.Event | None, float]]
) -> None:
    plan: CallPlan = PLANS[plan_name]()
    driver = Driver.start(plan, terminals={(Role.ORIGIN, 0): 2} if two_terminals else {})
    _play(driver, script)
    _every_channel(driver)


@settings(max_examples=200, deadline=None)
@given(plan_name=st.sampled_from(sorted(PLANS)), script=transfer_steps)
def test_every_channel_of_transfers_and_parks_comes_back_the_same(
    plan_name: str, script: list[tuple[str, m.Event | None, float]]
) -> None:
    plan: CallPlan = PLANS[plan_name]()
    driver = Driver.start(plan)
    if plan.kind is not Kind.PHONE and plan.kind is not Kind.TRUNK:
        driver.feed(m.LegAnswered("origin-0", b""), 1.0)
    driver.feed(m.LegAnswered("destination-0", b""), 2.0)
    first = driver.machine.call.origin_leg()
    assert first is not None
    driver.feed(m.Park(first.channel, 30.0, None), 3.0)  # a parked channel, then anything
    _play(driver, script)
    _every_channel(driver)


def _play(driver: Driver, script: list[tuple[str, m.Event | None, float]]) -> None:
    for kind, event, delta in script:
        if kind == "advance":
            driver.advance(driver.now + delta)
        elif event is not None:
            driver.feed(event, driver.now + delta)
    if not driver.machine.ended:
        driver.feed(m.Hangup("api hangup"), driver.now + 1)


class RecordingHub(CtiHub):
    """The harness's hub, keeping every element published."""

    published: ClassVar[list[Element]] = []

    def publish(self, event: str, item: Element) -> Event:
        RecordingHub.published.append(item)
        return super().publish(event, item)


def _harness_tests() -> list[tuple[str, Callable[..., None], tuple[Any, ...]]]:
    """Every whole-call test of the harness, with each of its parameters."""
    found: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = []
    for module in (test_calls_on_harness, test_transfer_on_harness):
        for name, test in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_") or test.__module__ != module.__name__:
                continue
            marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
            if not marks:
                found.append((name, test, ()))
                continue
            for value in marks[0].args[1]:
                values = value.values if hasattr(value, "values") else value
                found.append((name, test, values if isinstance(values, tuple) else (values,)))
    return found


def test_every_element_whole_calls_publish_comes_back_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(switchboard.testing.pbx, "CtiHub", RecordingHub)
    RecordingHub.published = []
    tests = _harness_tests()
    assert len(tests) > 15
    for _, test, args in tests:
        test(*args)
    seen = RecordingHub.published
    states = {i.state.name for i in seen if isinstance(i, Channel) and i.state}
    assert {"calling", "bridged", "park"} <= states  # the calls reached each state
    assert len(seen) > 100
    for item in seen:
        assert_same_on_the_wire(item)
