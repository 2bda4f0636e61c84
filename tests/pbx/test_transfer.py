"""Blind transfer and park on the call machine (API §4's socket commands, DESIGN §6): the
named channel is released, the party that stays becomes the call's caller and either
hears ringback while a new destination rings or waits parked, hearing a tone."""

from __future__ import annotations

from switchboard.pbx import messages as m
from switchboard.pbx.legs import BridgeState
from switchboard.pbx.plan import Role
from switchboard.pbx.transfer import BLIND_TRANSFER
from tests.pbx.calls import Driver, call_group, from_phone, redirect

D = Role.DESTINATION


def bridged(destination: str = "0312341234") -> Driver:
    """alice (call_group's first member) answered and talks to ``destination``."""
    driver = Driver.start(call_group(destination))
    driver.feed(m.LegAnswered("origin-0", b""), 1.0)
    driver.feed(m.LegAnswered("destination-0", b""), 2.0)
    assert state(driver) is BridgeState.BRIDGED
    return driver


def state(driver: Driver) -> BridgeState:
    return driver.machine.state


def last(driver: Driver, uuid: str) -> m.Publish:
    return [c for c in driver.of(m.Publish) if c.channel.uuid == uuid][-1]


def test_the_agent_transfers_the_customer_to_a_colleague() -> None:
    driver = bridged()
    assert driver.machine.staying("alice-1") is driver.machine.call.legs["destination-0"]
    commands = driver.feed(m.Transfer("alice-1", redirect("carol")), 10.0)
    assert commands[0] == m.Bye("origin-0")
    assert m.Regroup(swapped=True) in commands and m.StartRingback() in commands
    assert m.SetBusy("alice", False) in commands
    ring = driver.of(m.RingMember)[-1]
    assert (ring.role, ring.user, ring.channel) == (D, "carol", "next")
    assert state(driver) is BridgeState.CONNECTING
    assert driver.published("alice-1")[-1] == ("removed", BLIND_TRANSFER)
    assert last(driver, "far").channel.other_uuid == "next"  # the customer now calls carol
    added = last(driver, "next")
    assert added.event == "added" and added.channel.other_uuid == "far"

    new_leg = ring_legs(driver)[-1]
    commands = driver.feed(m.LegAnswered(new_leg, b""), 14.0)
    assert m.Bridge() in commands and m.Answer("destination-0") not in commands
    assert state(driver) is BridgeState.BRIDGED
    assert last(driver, "far").channel.other_uuid == "next"
    talking = last(driver, "next").channel.state
    assert talking is not None and talking.name == "bridged"

    commands = driver.feed(m.LegHungUp("destination-0"), 20.0)  # the customer hangs up
    assert m.Bye(new_leg) in commands and commands[-1] == m.Release()
    records = {r.uuid: r for r in driver.of(m.WriteRecords)[0].records}
    assert records["alice-1"].hangup == BLIND_TRANSFER
    alice = records["alice-1"]
    assert alice.offered_at is not None and alice.ended_at == alice.offered_at + 10.0
    assert records["far"].role == "caller" and records["far"].disposition == "answered"
    assert records["next"].party == "carol" and records["next"].disposition == "answered"
    assert len(driver.of(m.QueueCallback)) == 1  # the hunt's outcome, once
    assert len(driver.of(m.Release)) == 1


def test_transferring_the_far_end_rings_the_new_destination_for_the_agent() -> None:
    driver = bridged()
    commands = driver.feed(m.Transfer("far", redirect("bob", stays="origin-0", row="alice-1")))
    assert m.Bye("destination-0") in commands and m.Regroup(swapped=False) in commands
    assert driver.published("far")[-1] == ("removed", BLIND_TRANSFER)
    assert driver.machine.call.caller is driver.machine.call.legs["origin-0"]
    assert driver.of(m.RingMember)[-1].user == "bob"


def test_a_transfer_nobody_answers_ends_the_call() -> None:
    driver = bridged()
    driver.feed(m.Transfer("alice-1", redirect("carol")), 10.0)
    commands = driver.feed(m.LegFailed(ring_legs(driver)[-1], 486), 12.0)
    assert m.Bye("destination-0") in commands and commands[-1] == m.Release()
    assert driver.published("next")[-1] == ("removed", "recv_refuse,USER_BUSY")
    assert driver.published("far")[-1][0] == "removed"
    assert driver.machine.channels.published == {}


def test_only_an_answered_pair_can_be_transferred() -> None:
    driver = Driver.start(call_group("0312341234"))
    driver.feed(m.LegAnswered("origin-0", b""), 1.0)  # the destination still rings
    assert driver.machine.staying("alice-1") is None
    assert driver.feed(m.Transfer("alice-1", redirect("carol"))) == []
    assert driver.feed(m.Park("alice-1", 30, None)) == []
    assert state(driver) is BridgeState.CONNECTING


def test_a_phone_caller_is_transferred_by_the_user_it_called() -> None:
    driver = Driver.start(from_phone("bob"))
    driver.feed(m.LegAnswered("destination-0", b""), 1.0)
    assert driver.machine.staying("far") is driver.machine.call.legs["caller"]
    transfer = m.Transfer("far", redirect("carol", stays="caller", row="caller-ch"))
    commands = driver.feed(transfer, 5.0)
    assert m.Bye("destination-0") in commands and m.Regroup(swapped=False) in commands
    commands = driver.feed(m.LegAnswered(ring_legs(driver)[-1], b""), 6.0)
    assert m.Bridge() in commands and not driver.of(m.Answer)[1:]  # answered once, at first


def test_park_waits_then_rings_the_parker_back() -> None:
    driver = bridged()
    back = redirect("alice")
    commands = driver.feed(m.Park("alice-1", 30, back), 10.0)
    assert m.Bye("origin-0") in commands and m.StartRingback() in commands
    assert m.SetTimer("park", 40.0) in commands
    assert state(driver) is BridgeState.PARKED
    parked = last(driver, "far").channel.state
    assert parked is not None and parked.name == "park"
    assert driver.machine.staying("far") is driver.machine.call.legs["destination-0"]

    driver.advance(40.0)
    assert state(driver) is BridgeState.CONNECTING
    assert driver.of(m.RingMember)[-1].user == "alice"
    driver.feed(m.LegAnswered(ring_legs(driver)[-1], b""), 45.0)
    assert state(driver) is BridgeState.BRIDGED


def test_park_with_nobody_to_ring_back_ends_at_its_timeout() -> None:
    driver = bridged()
    driver.feed(m.Park("alice-1", 30, None), 10.0)
    commands = driver.advance(40.0)
    assert m.Bye("destination-0") in commands and commands[-1] == m.Release()
    assert driver.machine.call.end_reason == "park timeout"


def test_a_parked_call_is_picked_up_by_transferring_it() -> None:
    driver = bridged()
    driver.feed(m.Park("alice-1", 30, redirect("alice")), 10.0)
    commands = driver.feed(m.Transfer("far", redirect("bob", channel="pickup")), 15.0)
    assert m.SetTimer("park", None) in commands
    assert driver.of(m.RingMember)[-1].user == "bob"
    driver.advance(60.0)  # the park's timeout no longer fires
    assert driver.of(m.RingMember)[-1].user == "bob"


def test_the_parked_party_hanging_up_ends_the_call() -> None:
    driver = bridged()
    driver.feed(m.Park("alice-1", 30, None), 10.0)
    commands = driver.feed(m.LegHungUp("destination-0"), 12.0)
    assert commands[-1] == m.Release() and driver.timers == {}
    assert driver.machine.call.ended_by == "origin"


def ring_legs(driver: Driver) -> list[str]:
    """The legs the driver rang for the current destination."""
    return [leg for legs in driver.machine.call.destination.legs for leg in legs]
