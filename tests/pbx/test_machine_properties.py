"""Every event in every state (DESIGN §6): Hypothesis drives calls of each kind through
random sequences of leg events, timers and hangups, and checks what must always hold.

- The machine never raises, whatever arrives and in whatever order.
- A call ends at most once: ``Release`` comes once and last; afterwards only BYEs for
  2xx that crossed our CANCEL.
- Exactly one outcome: once ended, one set of records, and for a call_group one callback.
- Nothing stays allocated: once ended, no timer set, every user made busy freed, every
  channel published removed, and every leg still up (answered or ringing) sent BYE or
  CANCEL.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.pbx import messages as m
from switchboard.pbx.legs import BridgeState, LegState
from switchboard.pbx.plan import CallPlan, Kind, Role
from tests.pbx.calls import Driver, call_group, call_user, from_phone, redirect

PLANS = {
    "group→pstn": lambda: call_group("0312341234"),
    "group→user": lambda: call_group("carol"),
    "group→group": lambda: call_group("sales"),
    "phone→user": lambda: from_phone("bob"),
    "phone→group": lambda: from_phone("support"),
    "trunk→group": lambda: from_phone("sales", kind=Kind.TRUNK),
    "user→pstn": lambda: call_user("0312341234"),
    "user→group": lambda: call_user("sales"),
}
LEGS = [
    "origin-0",
    "origin-0.1",
    "origin-1",
    "destination-0",
    "destination-1",
    "destination-0~1",
    "caller",
    "x",
]
CHANNELS = ["alice-1", "alice-2", "bob-1", "far", "next", "caller-ch", "x"]
STATUSES = [180, 183, 404, 408, 480, 486, 487, 500, 503, 600, 603]

leg_events = st.one_of(
    st.builds(m.LegRinging, st.sampled_from(LEGS), st.sampled_from([180, 183]), st.just(b"")),
    st.builds(m.LegAnswered, st.sampled_from(LEGS), st.just(b"v=0")),
    st.builds(m.LegFailed, st.sampled_from(LEGS), st.sampled_from(STATUSES[2:])),
    st.builds(m.LegHungUp, st.sampled_from(LEGS)),
    st.builds(m.Hangup, st.just("api hangup")),
    st.builds(m.Timer, st.sampled_from(["origin", "destination", "max_call", "park"])),
    st.builds(
        m.Transfer,
        st.sampled_from(CHANNELS),
        st.sampled_from(["carol", "sales", "0312340000"]).map(redirect),
    ),
    st.builds(
        m.Park,
        st.sampled_from(CHANNELS),
        st.sampled_from([5.0, 30.0]),
        st.one_of(st.none(), st.just("alice").map(redirect)),
    ),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("event"), leg_events, st.floats(0, 5)),
        st.tuples(st.just("advance"), st.none(), st.floats(0, 120)),
    ),
    max_size=40,
)


@settings(max_examples=1000, deadline=None)
@given(
    plan_name=st.sampled_from(sorted(PLANS)),
    two_terminals=st.booleans(),
    script=steps,
)
def test_every_event_in_every_state_keeps_the_call_whole(
    plan_name: str, two_terminals: bool, script: list[tuple[str, m.Event | None, float]]
) -> None:
    plan: CallPlan = PLANS[plan_name]()
    terminals = {(Role.ORIGIN, 0): 2} if two_terminals else {}
    driver = Driver.start(plan, terminals=terminals)
    _play(driver, plan, script)


def _play(driver: Driver, plan: CallPlan, script: list[tuple[str, m.Event | None, float]]) -> None:
    """Run ``script``, check what must hold, then check an API hangup still ends it."""
    released_at: int | None = _release_index(driver.commands)
    for kind, event, delta in script:
        if kind == "advance":
            driver.advance(driver.now + delta)
        else:
            assert event is not None
            driver.feed(event, driver.now + delta)
        if released_at is None:
            released_at = _release_index(driver.commands)
    _check(driver, plan, released_at)
    if not driver.machine.ended:  # whatever happened, an API hangup still ends it cleanly
        driver.feed(m.Hangup("api hangup"), driver.now + 1)
        released_at = _release_index(driver.commands)
        assert released_at is not None
        _check(driver, plan, released_at)


NEW_LEGS = ["destination-0~1", "destination-0~2", "destination-1~1", "destination-0", "origin-0"]
TRANSFERRED = ["far", "next", "alice-1", "caller-ch"]
transfer_events = st.one_of(
    leg_events,
    st.builds(m.LegAnswered, st.sampled_from(NEW_LEGS), st.just(b"v=0")),
    st.builds(m.LegHungUp, st.sampled_from(NEW_LEGS)),
    st.builds(m.LegFailed, st.sampled_from(NEW_LEGS), st.sampled_from([486, 603])),
    st.builds(
        m.Transfer,
        st.sampled_from(TRANSFERRED),
        st.sampled_from(["carol", "sales", "0312340000"]).map(redirect),
    ),
    st.builds(
        m.Park,
        st.sampled_from(TRANSFERRED),
        st.sampled_from([5.0, 30.0]),
        st.one_of(st.none(), st.just("alice").map(redirect)),
    ),
    st.builds(m.Timer, st.just("park")),
)
transfer_steps = st.lists(
    st.one_of(
        st.tuples(st.just("event"), transfer_events, st.floats(0, 5)),
        st.tuples(st.just("advance"), st.none(), st.floats(0, 60)),
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(plan_name=st.sampled_from(sorted(PLANS)), script=transfer_steps)
def test_transfers_and_parks_of_a_bridged_call_keep_it_whole(
    plan_name: str, script: list[tuple[str, m.Event | None, float]]
) -> None:
    """The same checks from a bridged call, where transfers and parks do something."""
    plan: CallPlan = PLANS[plan_name]()
    driver = Driver.start(plan)
    if plan.kind is not Kind.PHONE and plan.kind is not Kind.TRUNK:
        driver.feed(m.LegAnswered("origin-0", b""), 1.0)
    driver.feed(m.LegAnswered("destination-0", b""), 2.0)
    assert driver.machine.state is BridgeState.BRIDGED
    first = driver.machine.call.origin_leg()
    assert first is not None
    driver.feed(m.Transfer(first.channel, redirect("carol")), 3.0)
    assert driver.of(m.Regroup), "a bridged call is transferred"
    _play(driver, plan, script)


def _release_index(commands: list[m.Command]) -> int | None:
    indexes = [i for i, c in enumerate(commands) if isinstance(c, m.Release)]
    assert len(indexes) <= 1, "released twice"
    return indexes[0] if indexes else None


def _check(driver: Driver, plan: CallPlan, released_at: int | None) -> None:
    commands = driver.commands
    assert len(driver.of(m.Release)) <= 1
    assert len(driver.of(m.QueueCallback)) <= 1
    assert len(driver.of(m.Bridge)) <= 1 + len(driver.of(m.Regroup))
    if released_at is None:
        assert not driver.machine.ended and not driver.of(m.WriteRecords)
        return
    assert driver.machine.ended
    after = commands[released_at + 1 :]
    assert all(isinstance(c, m.Bye) for c in after), after
    assert len(driver.of(m.WriteRecords)) == 1
    if plan.kind in (Kind.CALL_GROUP, Kind.CALL_USER):
        assert len(driver.of(m.QueueCallback)) == 1
    assert driver.timers == {}
    busy: dict[str, bool] = {}
    for command in driver.of(m.SetBusy):
        busy[command.user] = command.busy
    assert not any(busy.values()), busy
    assert driver.machine.channels.published == {}
    ended = {c.leg for c in driver.commands if isinstance(c, m.Bye | m.Cancel | m.Reject)}
    for leg in driver.machine.call.legs.values():
        if leg.incoming or leg.peer_hung_up or leg.status is not None:
            continue
        if leg.state is LegState.ANSWERED or leg.state in (LegState.CALLING, LegState.EARLY):
            assert leg.id in ended, f"{leg.id} left {leg.state.value}"
