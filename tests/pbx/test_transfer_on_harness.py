"""Transfer and park through the real call core on the in-memory network and virtual time:
the released phone gets BYE, the new destination an INVITE showing the party that stays,
the relay's legs follow, and nothing stays allocated. Real peers: tests/interop."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.pbx.destinations import resolve
from switchboard.pbx.engine import NotBridgedError
from switchboard.pbx.live import LiveCall
from switchboard.pbx.plan import Role
from switchboard.pbx.requests import CallGroupRequest
from switchboard.testing.calls import ScriptedCall
from switchboard.testing.phones import (
    Answer,
    CallState,
    Reject,
    Ring,
    ScriptedPhone,
    ScriptedTrunk,
    by_number,
)
from tests.pbx.test_calls_on_harness import ADDRESSES, DOMAIN, TRUNK, Scene, run

CUSTOMER = "0312341234"


async def agent_with_customer(s: Scene) -> tuple[LiveCall, ScriptedTrunk]:
    """call_group: alice answers, the customer (the PSTN, through the trunk) answers."""
    alice = await s.phone("alice")
    alice.on_invite = Answer(after=1.0)
    trunk = ScriptedTrunk(s.network, address=TRUNK)
    await trunk.start()
    s.phones["trunk"] = trunk  # type: ignore[assignment]
    trunk.on_invite = by_number({CUSTOMER: Answer(after=1.0)})
    request = CallGroupRequest(
        DOMAIN, DOMAIN.groups[0], resolve(CUSTOMER, DOMAIN), 60, 15, "hunt",
        callback_url="https://crm.example.com/cb",
        call_events_url="https://crm.example.com/events",
    )  # fmt: skip
    live = await s.pbx.engine.call_group(request)
    far = await trunk.wait_call(incoming=True)
    await far.wait(CallState.ANSWERED)
    await asyncio.sleep(0.01)
    assert live.bridged
    return live, trunk


def incoming(phone: ScriptedPhone) -> list[ScriptedCall]:
    return [call for call in phone.calls if call.incoming]


def test_the_agent_transfers_the_customer_to_a_colleague() -> None:
    async def scene(s: Scene) -> None:
        live, trunk = await agent_with_customer(s)
        carol = await s.phone("carol")
        carol.on_invite = Answer(after=2.0)
        alice = s.phones["alice"]
        (to_alice,) = incoming(alice)
        member_channel = live.uuids[0]
        far_channel = live.machine.call.plan.destination_channel
        s.pbx.engine.transfer(live, member_channel, resolve("carol", DOMAIN))
        await to_alice.wait(CallState.ENDED)
        assert to_alice.ended_reason == "recv_bye"
        assert ("example.com", "alice") not in s.pbx.engine.busy_users
        assert member_channel not in s.pbx.engine.by_uuid  # hanging it up: not found

        rung = await carol.wait_call(incoming=True)
        assert f"<sip:{CUSTOMER}@example.com>" in (rung.request.get("From") or "")
        assert live.media_names[Role.ORIGIN] == "b"
        assert live.session.a.media is None  # carol's leg waits for her answer
        await rung.wait(CallState.ANSWERED)
        await asyncio.sleep(0.01)
        assert live.bridged and live.session.bridged
        media = live.session.a.media
        assert media is not None and media.address[0] == ADDRESSES["carol"]

        far = trunk.calls[0]
        trunk.hang_up(far)  # the customer hangs up: carol gets BYE
        await rung.wait(CallState.ENDED)
        await s.idle()
        records = {r.uuid: r for r in s.pbx.outputs.records}
        assert records[member_channel].hangup == "send_bye,BLIND_TRANSFER"
        assert records[far_channel].disposition == "answered"
        sent = [p for _, url, p in s.pbx.outputs.callbacks if url.endswith("/events")]
        (event,) = sent
        legs = event["legs"]
        assert isinstance(legs, list)
        parties = [leg["party"] for leg in legs]
        assert "carol" in parties and "alice" in parties

    run(scene)


def test_a_transfer_of_a_ringing_call_is_refused_and_changes_nothing() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        alice.on_invite = Answer()
        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        trunk.on_invite = Ring()
        request = CallGroupRequest(
            DOMAIN, DOMAIN.groups[0], resolve(CUSTOMER, DOMAIN), 60, 15, "hunt"
        )
        live = await s.pbx.engine.call_group(request)
        await trunk.wait_call(incoming=True)
        with pytest.raises(NotBridgedError):
            s.pbx.engine.transfer(live, live.uuids[0], resolve("carol", DOMAIN))
        with pytest.raises(NotBridgedError):
            s.pbx.engine.park(live, live.uuids[0], 30)
        assert not live.released and live.uuids[0] in s.pbx.engine.by_uuid
        s.pbx.engine.hangup(DOMAIN.name, live.uuids[0])
        await s.idle()

    run(scene)


def test_a_parked_customer_is_rung_back_to_the_parker_at_the_timeout() -> None:
    async def scene(s: Scene) -> None:
        live, trunk = await agent_with_customer(s)
        alice = s.phones["alice"]
        (first,) = incoming(alice)
        parked_at = alice.now()
        s.pbx.engine.park(live, live.uuids[0], 30)
        await first.wait(CallState.ENDED)
        assert ("example.com", "alice") not in s.pbx.engine.busy_users
        alice.on_invite = Answer()
        await alice.changes.until(lambda: len(incoming(alice)) == 2, 60)
        again = incoming(alice)[1]
        assert again.started_at - parked_at == pytest.approx(30.0, abs=0.05)
        assert f"<sip:{CUSTOMER}@example.com>" in (again.request.get("From") or "")
        await again.wait(CallState.ANSWERED)
        await asyncio.sleep(0.01)
        assert live.bridged
        alice.hang_up(again)
        await trunk.calls[0].wait(CallState.ENDED)
        await s.idle()

    run(scene)


def test_a_transfer_to_a_busy_number_ends_the_call_cleanly() -> None:
    async def scene(s: Scene) -> None:
        live, trunk = await agent_with_customer(s)
        trunk.on_invite = by_number({CUSTOMER: Answer(), "0399999999": Reject(486)})
        s.pbx.engine.transfer(live, live.uuids[0], resolve("0399999999", DOMAIN))
        await trunk.calls[0].wait(CallState.ENDED)
        await s.idle()
        assert s.pbx.engine.pstn_legs == {DOMAIN.name: 0}

    run(scene)
