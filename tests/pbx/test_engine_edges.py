"""The engine's edges on the harness (virtual time, exact timings): limits that refuse a
call with 503 and leave nothing taken, an INVITE without an offer, the ring, call and RTP
timers, the API's hangup by either channel, the callee hanging up first, and a trunk
ringing a user's DID."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchboard.config import Config
from switchboard.pbx.destinations import UserTarget
from switchboard.pbx.live import LiveCall
from switchboard.pbx.plan import Caller
from switchboard.testing.phones import (
    Answer,
    CallState,
    Ring,
    ScriptedCall,
    ScriptedPeer,
    ScriptedTrunk,
)
from tests.pbx.test_calls_on_harness import CONFIG, DOMAIN, TRUNK, Scene, run

ALICE, BOB = (DOMAIN.name, "alice"), (DOMAIN.name, "bob")


def configured(*, server: dict[str, Any] | None = None, **domain: Any) -> Config:
    """The bundled config with some server and domain settings changed."""
    return CONFIG.model_copy(
        update={
            "server": CONFIG.server.model_copy(update=server or {}),
            "domains": [DOMAIN.model_copy(update=domain)],
        }
    )


async def trunk_of(s: Scene) -> ScriptedTrunk:
    trunk = ScriptedTrunk(s.network, address=TRUNK)
    await trunk.start()
    s.phones["trunk"] = trunk  # type: ignore[assignment]
    return trunk


def the_call(s: Scene) -> LiveCall:
    (call,) = s.pbx.engine.calls
    return call


def invites(peer: ScriptedPeer) -> list[str]:
    return [e for _, e in peer.events if e.startswith("got INVITE from")]


def taken(s: Scene) -> tuple[dict[str, int], int, set[tuple[str, str]], int]:
    """What the engine holds: statistics, channel handles, busy users, RTP port pairs."""
    engine, ports = s.pbx.engine, s.pbx.media.ports
    return engine.statistics(), len(engine.by_uuid), set(engine.busy_users), ports.in_use


async def answered_call(s: Scene, caller: str, callee: str) -> tuple[ScriptedCall, ScriptedCall]:
    """``caller`` dials ``callee`` (already scripted to answer); both ends, once answered."""
    call = await s.phones[caller].dial(callee)
    await call.wait(CallState.ANSWERED)
    return call, await s.phones[callee].wait_call(CallState.ANSWERED, incoming=True)


async def refused(s: Scene, caller: str, callee: str) -> int | None:
    call = await s.phones[caller].dial(callee)
    await call.wait(CallState.ENDED)
    await asyncio.sleep(0.001)  # ports of a half-built media session return a loop later
    return call.final_status


def test_a_call_beyond_the_channel_limit_gets_503_and_takes_nothing() -> None:
    async def scene(s: Scene) -> None:
        for user in ("alice", "bob", "carol", "erik"):
            (await s.phone(user)).on_invite = Answer()
        first, _ = await answered_call(s, "alice", "bob")
        before = taken(s)
        assert before == ({"calls": 1, "channels": 2}, 2, {ALICE, BOB}, 2)
        assert await refused(s, "carol", "erik") == 503  # 2 more would make 4 of 2
        assert taken(s) == before
        assert invites(s.phones["erik"]) == []
        s.phones["alice"].hang_up(first)
        await first.wait(CallState.ENDED)
        await s.idle()
        assert {r.party for r in s.pbx.outputs.records} == {"alice", "bob"}  # none for carol

    run(scene, configured(channel_limit=2))


def test_the_pstn_channel_limit_refuses_a_second_pstn_call_but_not_internal_ones() -> None:
    async def scene(s: Scene) -> None:
        for user in ("alice", "bob", "carol", "erik"):
            (await s.phone(user)).on_invite = Answer()
        trunk = await trunk_of(s)
        trunk.on_invite = Answer()
        outside = await s.phones["alice"].dial("0312341234")
        await outside.wait(CallState.ANSWERED)
        assert await refused(s, "bob", "0312345678") == 503
        assert len(invites(trunk)) == 1
        assert s.pbx.engine.pstn_legs == {DOMAIN.name: 1}
        inside, rung = await answered_call(s, "carol", "erik")
        assert s.pbx.engine.statistics() == {"calls": 2, "channels": 4}
        for call in (outside, inside):
            s.phones["alice" if call is outside else "carol"].hang_up(call)
            await call.wait(CallState.ENDED)
        await rung.wait(CallState.ENDED)
        await s.idle()
        assert s.pbx.engine.pstn_legs == {DOMAIN.name: 0}

    run(scene, configured(pstn_channel_limit=1))


def test_rtp_ports_used_up_refuse_with_503_until_a_call_ends() -> None:
    async def scene(s: Scene) -> None:
        for user in ("alice", "bob", "carol", "erik"):
            (await s.phone(user)).on_invite = Answer()
        first, _ = await answered_call(s, "alice", "bob")
        before = taken(s)
        assert before[3] == 2  # the range's only two pairs
        assert await refused(s, "carol", "erik") == 503
        assert taken(s) == before
        assert invites(s.phones["erik"]) == []
        s.phones["alice"].hang_up(first)
        await first.wait(CallState.ENDED)
        await s.idle()
        again, rung = await answered_call(s, "carol", "erik")
        s.phones["carol"].hang_up(again)
        await rung.wait(CallState.ENDED)
        await s.idle()

    run(scene, configured(server={"rtp_ports": (20000, 20003)}))


def test_an_invite_without_an_offer_gets_488_and_takes_nothing() -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Answer()
        call = await alice.dial("bob", sdp=False)
        await call.wait(CallState.ENDED)
        assert call.final_status == 488
        assert invites(bob) == []
        await s.idle()
        assert s.pbx.outputs.records == []

    run(scene)


def test_a_user_who_never_answers_is_cancelled_at_ring_timeout_and_the_caller_hears_480() -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Ring()
        started = alice.now()
        call = await alice.dial("bob")
        await call.wait(CallState.ENDED)
        assert call.final_status == 480
        assert alice.now() - started == pytest.approx(5.0, abs=0.001)
        rung = await bob.wait_call(incoming=True)
        assert rung.ended_reason == "recv_cancel"
        ((cancelled, _),) = [e for e in bob.events if e[1] == "got CANCEL"]
        assert cancelled - started == pytest.approx(5.0, abs=0.001)
        await s.idle()
        caller = next(r for r in s.pbx.outputs.records if r.role == "caller")
        assert caller.hangup == "send_refuse,NO_USER_RESPONSE"

    run(scene, configured(server={"ring_timeout": 5}))


def test_max_call_seconds_ends_a_bridged_call_counted_from_the_callers_arrival() -> None:
    """A phone's call counts from its INVITE (docs/call-model.md: ``max_call`` is set when
    the caller arrives); the callee answering 2 s later leaves 28 s of talk."""

    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Answer(after=2.0)
        started = alice.now()
        call, rung = await answered_call(s, "alice", "bob")
        answered = alice.now()
        assert answered - started == pytest.approx(2.0, abs=0.001)
        await call.wait(CallState.ENDED)
        await rung.wait(CallState.ENDED)
        assert call.ended_reason == rung.ended_reason == "recv_bye"
        for peer in (alice, bob):
            ((at, _),) = [e for e in peer.events if e[1] == "got BYE"]
            assert at - started == pytest.approx(30.0, abs=0.001)
        await s.idle()

    run(scene, configured(server={"max_call_seconds": 30}))


def test_a_bridged_call_without_rtp_is_released_after_rtp_timeout() -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Answer(after=1.0)
        call, rung = await answered_call(s, "alice", "bob")
        answered = alice.now()
        await call.wait(CallState.ENDED)
        await rung.wait(CallState.ENDED)
        for peer in (alice, bob):
            ((at, _),) = [e for e in peer.events if e[1] == "got BYE"]
            assert at - answered == pytest.approx(10.0, abs=0.001)
        await s.idle()
        assert {r.hangup for r in s.pbx.outputs.records} == {"send_bye,NORMAL_CLEARING"}

    run(scene, configured(server={"rtp_timeout": 10}))


@pytest.mark.parametrize("which", ["caller", "destination"])
def test_the_apis_hangup_ends_the_call_by_either_channel(which: str) -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Answer()
        call, rung = await answered_call(s, "alice", "bob")
        live = the_call(s)
        assert isinstance(live.plan.origin, Caller)
        channels = {c.uuid for c in s.pbx.cti.channels(DOMAIN.name)}
        by_role = {"caller": live.plan.origin.channel, "destination": live.plan.destination_channel}
        assert channels == set(by_role.values())
        engine = s.pbx.engine
        assert not engine.hangup("other.example", by_role[which])  # not this domain's
        assert not engine.hangup(DOMAIN.name, "no-such-uuid")
        await asyncio.sleep(1.0)
        assert call.state is rung.state is CallState.ANSWERED
        hung_up = alice.now()
        assert engine.hangup(DOMAIN.name, by_role[which])
        await call.wait(CallState.ENDED)
        await rung.wait(CallState.ENDED)
        assert alice.now() == pytest.approx(hung_up, abs=0.001)
        assert call.ended_reason == rung.ended_reason == "recv_bye"
        await s.idle()
        assert not engine.hangup(DOMAIN.name, by_role[which])  # gone with its call

    run(scene)


def test_the_callee_hanging_up_first_ends_the_caller_and_clears_everything() -> None:
    async def scene(s: Scene) -> None:
        await s.phone("alice")
        bob = await s.phone("bob")
        bob.on_invite = Answer()
        call, rung = await answered_call(s, "alice", "bob")
        assert len(s.pbx.cti.channels(DOMAIN.name)) == 2
        bob.hang_up(rung)
        await call.wait(CallState.ENDED)
        assert call.ended_reason == "recv_bye"
        await s.idle()
        assert s.pbx.cti.channels(DOMAIN.name) == []
        records = {r.role: r for r in s.pbx.outputs.records}
        assert set(records) == {"caller", "destination"}
        assert (records["caller"].party, records["destination"].party) == ("alice", "bob")
        assert records["caller"].hangup == "send_bye,NORMAL_CLEARING"
        assert records["destination"].hangup == "recv_bye,NORMAL_CLEARING"
        assert records["caller"].disposition == records["destination"].disposition == "answered"

    run(scene)


def test_the_trunk_rings_a_users_did_with_the_callers_number() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        alice.on_invite = Answer(after=2.0)
        trunk = await trunk_of(s)
        call = await trunk.dial("0501110001", caller="0312345678")  # alice's DID
        await call.wait(CallState.ANSWERED)
        rung = await alice.wait_call(incoming=True)
        assert "<sip:0312345678@example.com>" in (rung.request.get("From") or "")
        assert rung.started_at == pytest.approx(0.0, abs=0.001)
        assert trunk.now() == pytest.approx(2.0, abs=0.001)
        target = the_call(s).plan.target.target
        assert isinstance(target, UserTarget) and target.user.name == "alice"
        trunk.hang_up(call)
        await rung.wait(CallState.ENDED)
        await s.idle()

    run(scene)
