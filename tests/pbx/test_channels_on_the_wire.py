"""Every channel each kind of call publishes, as Basix's own client reads it: calls from a
phone, from a trunk and call_group's, driven through the call machine and each published
row decoded by the strict model of the client (``tests/cti/basix_client.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from switchboard.cti import messages
from switchboard.cti.elements import ELEMENT_FIELDS
from switchboard.pbx import messages as m
from switchboard.pbx.plan import CallPlan, Kind
from tests.cti.basix_client import BasixClient
from tests.pbx.calls import Driver, call_group, call_user, from_phone

FLOWS: dict[str, Callable[[], CallPlan]] = {
    "phone→user": lambda: from_phone("bob"),
    "phone→group": lambda: from_phone("sales"),
    "phone→pstn": lambda: from_phone("0312341234"),
    "trunk→group": lambda: from_phone("support", kind=Kind.TRUNK),
    "call_group→pstn": lambda: call_group("0312341234"),
    "call_group→user": lambda: call_group("carol"),
    "call_user→pstn": lambda: call_user("0312341234"),
}


def _client() -> BasixClient:
    client = BasixClient()
    for element in ELEMENT_FIELDS:
        client.feed(messages.field_spec_bert(element))
    return client


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_every_channel_of_every_call_kind_reads_in_the_basix_client(flow: str) -> None:
    plan = FLOWS[flow]()
    far = "destination-0"
    driver = Driver.start(plan)
    if plan.kind in (Kind.CALL_GROUP, Kind.CALL_USER):
        driver.feed(m.LegRinging("origin-0"), 0.5)
        driver.feed(m.LegAnswered("origin-0"), 1.0)
    driver.feed(m.LegRinging(far), 1.5)
    driver.feed(m.LegAnswered(far), 2.0)
    driver.feed(m.LegHungUp(far), 9.0)
    client = _client()
    for publish in driver.of(m.Publish):
        client.feed(messages.info_event_bert(publish.event, publish.channel))
    assert client.store["channel"] == {}  # every channel added was removed
    seen = {c.channel.uuid for c in driver.of(m.Publish)}
    assert {plan.destination_channel} <= seen
    states = [
        message.info["state"]["name"]
        for message in client.messages
        if message.info.get("uuid") == plan.destination_channel
    ]
    assert states[0] == "calling" and "bridged" in states
    bridged = [
        message.info
        for message in client.messages
        if message.event == "updated" and message.info["state"]["name"] == "bridged"
    ]
    assert len(bridged) == 2  # both sides, each naming the other
    assert {info["other_uuid"] for info in bridged} == {info["uuid"] for info in bridged}
