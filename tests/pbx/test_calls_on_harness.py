"""Whole calls through Switchboard's call core on the in-memory network and virtual time:
scripted phones register and dial, a scripted trunk answers numbers and rings DIDs, and
every timing is exact. The same flows run against real peers in ``tests/interop``."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import pytest

from switchboard.config import Config, load_config
from switchboard.pbx.destinations import resolve
from switchboard.pbx.requests import CallExternalRequest, CallGroupRequest, CallUserRequest
from switchboard.sip import offer_answer
from switchboard.sip.sdp import parse_sdp
from switchboard.sip.session import RemoteOffer
from switchboard.testing import clock
from switchboard.testing.network import Network
from switchboard.testing.pbx import HarnessPbx
from switchboard.testing.phones import (
    Answer,
    CallState,
    Reject,
    Ring,
    ScriptedPhone,
    ScriptedTrunk,
    by_number,
)

CONFIG: Config = load_config(None)
DOMAIN = CONFIG.domains[0]
PASSWORDS = {user.name: user.sip_password or "" for user in DOMAIN.users}
ADDRESSES = {
    "alice": "127.0.0.11",
    "bob": "127.0.0.12",
    "carol": "127.0.0.13",
    "erik": "127.0.0.14",
}
TRUNK = ("127.0.0.9", 5080)  # the default config's trunk


class Scene:
    def __init__(self, network: Network, pbx: HarnessPbx) -> None:
        self.network, self.pbx = network, pbx
        self.phones: dict[str, ScriptedPhone] = {}

    async def phone(self, user: str) -> ScriptedPhone:
        phone = ScriptedPhone(
            self.network,
            user=user,
            domain=DOMAIN.name,
            password=PASSWORDS[user],
            address=(ADDRESSES[user], 5060),
        )
        await phone.start()
        assert await phone.register() == 200
        self.phones[user] = phone
        return phone

    async def idle(self) -> None:
        """Nothing left allocated: no call, channel, busy user or port."""
        await asyncio.sleep(0.001)  # sockets close a loop iteration later, then ports return
        engine = self.pbx.engine
        assert engine.statistics() == {"calls": 0, "channels": 0}
        assert engine.by_uuid == {} and engine.busy_users == set()
        assert self.pbx.media.ports.in_use == 0


def run(test: Callable[[Scene], Awaitable[None]], config: Config = CONFIG) -> Network:
    network = Network()

    async def main() -> None:
        async with HarnessPbx(network, config) as pbx:
            scene = Scene(network, pbx)
            try:
                await test(scene)
            finally:
                for phone in scene.phones.values():
                    await phone.close()

    clock.run(main())
    return network


def test_a_phone_calls_another_by_extension_hears_ringing_and_is_bridged() -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Answer(after=3.0)
        started = alice.now()
        call = await alice.dial("1002")  # bob's extension
        await call.wait(CallState.ANSWERED)
        assert alice.now() - started == pytest.approx(3.0, abs=0.001)
        rung = await bob.wait_call(incoming=True)
        assert rung.request.from_.display_name == "Alice Liddell"  # her label
        assert "<sip:1001@example.com>" in (rung.request.get("From") or "")  # her extension
        statuses = [e for _, e in alice.events if e.startswith("got ") and "(" not in e]
        assert statuses == ["got 100", "got 407", "got 100", "got 180", "got 200"]
        assert s.pbx.engine.statistics() == {"calls": 1, "channels": 2}
        assert ("example.com", "alice") in s.pbx.engine.busy_users
        alice.hang_up(call)
        await rung.wait(CallState.ENDED)
        assert rung.ended_reason == "recv_bye"
        await call.wait(CallState.ENDED)
        await s.idle()
        roles = {r.role: r for r in s.pbx.outputs.records}
        assert roles["caller"].party == "alice" and roles["destination"].party == "bob"
        assert roles["caller"].hangup == "recv_bye,NORMAL_CLEARING"

    run(scene)


def test_a_phone_without_credentials_is_challenged_and_a_stranger_refused() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        stranger = ScriptedPhone(
            s.network, user="alice", domain="example.com", password="x",
            address=("127.0.0.66", 5060),
        )  # fmt: skip
        await stranger.start()
        s.phones["stranger"] = stranger
        call = await stranger.dial("1002")
        await call.wait(CallState.ENDED)
        assert call.final_status == 403
        answers = [e for _, e in stranger.events if e.startswith("got ") and "(" not in e]
        assert answers == ["got 403"]  # stateless: not even a 100 Trying
        wrong = ScriptedPhone(
            s.network, user="alice", domain="example.com", password="wrong",
            address=(ADDRESSES["alice"], 5062),
        )  # fmt: skip
        await wrong.start()
        s.phones["wrong"] = wrong
        call = await wrong.dial("1002")
        await call.wait(CallState.ENDED)
        assert call.final_status == 403  # the 407 was answered with the wrong password
        assert alice.registration is not None

    run(scene)


@pytest.mark.parametrize(
    ("script", "heard"),
    [(Reject(486), 486), (Reject(603), 603), (Reject(500), 503)],
)
def test_a_refusing_callee_is_heard_by_the_caller(script: Reject, heard: int) -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = script
        call = await alice.dial("bob")
        await call.wait(CallState.ENDED)
        assert call.final_status == heard
        await s.idle()

    run(scene)


def test_dialling_an_unregistered_user_says_480_and_an_unknown_one_404() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        call = await alice.dial("carol")
        await call.wait(CallState.ENDED)
        assert call.final_status == 480
        call = await alice.dial("nobody")
        await call.wait(CallState.ENDED)
        assert call.final_status == 404
        await s.idle()

    run(scene)


def test_the_caller_cancelling_stops_the_ringing_callee() -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Ring()
        call = await alice.dial("bob")
        await call.wait(CallState.RINGING)
        rung = await bob.wait_call(incoming=True)
        alice.hang_up(call)
        await rung.wait(CallState.ENDED)
        assert rung.ended_reason == "recv_cancel"
        await call.wait(CallState.ENDED)
        assert call.final_status == 487
        await s.idle()

    run(scene)


def test_a_phone_dials_a_group_extension_and_it_hunts_like_call_group() -> None:
    async def scene(s: Scene) -> None:
        alice, bob, carol = [await s.phone(user) for user in ("alice", "bob", "carol")]
        bob.on_invite = Ring()
        carol.on_invite = Answer(after=1.0)
        erik = await s.phone("erik")
        call = await erik.dial("1111")  # support: alice, bob, carol by hunt, 15 s each
        await call.wait(CallState.ANSWERED)
        to_bob = await bob.wait_call(incoming=True)
        to_carol = await carol.wait_call(incoming=True)
        # alice is the first member: she is rung too, and not answering costs her 15 s
        assert to_bob.started_at == pytest.approx(15.0, abs=0.01)
        assert to_carol.started_at - to_bob.started_at == pytest.approx(15.0, abs=0.001)
        assert to_bob.ended_reason == "recv_cancel"
        _ = alice
        erik.hang_up(call)
        await to_carol.wait(CallState.ENDED)
        await s.idle()

    run(scene)


def test_a_phone_dials_the_pstn_with_its_did_as_caller_id() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        trunk.on_invite = Answer(after=2.0)
        call = await alice.dial("0312341234")
        await call.wait(CallState.ANSWERED)
        outbound = await trunk.wait_call(incoming=True)
        invite = outbound.request
        assert str(invite.uri).startswith("sip:0312341234@127.0.0.9:5080")
        assert "sip:0501110001@example.com" in (invite.get("P-Asserted-Identity") or "")
        alice.hang_up(call)
        await outbound.wait(CallState.ENDED)
        await s.idle()

    run(scene)


def test_the_trunk_rings_a_group_did_and_unknown_dids_get_404() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        alice.on_invite = Answer(after=4.0)
        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        call = await trunk.dial("0501111111", caller="0312345678")  # support's DID
        await call.wait(CallState.ANSWERED)
        rung = await alice.wait_call(incoming=True)
        assert "0312345678" in (rung.request.get("From") or "")
        assert [e for _, e in trunk.events if e.startswith("got 18")] == ["got 180"]
        channels = s.pbx.cti.channels(DOMAIN.name)
        assert {(c.direction, c.peer_location) for c in channels} == {
            ("inbound", "external"),
            ("outbound", "internal"),
        }
        rung_session = rung
        alice.hang_up(rung_session)
        await call.wait(CallState.ENDED)
        await s.idle()
        unknown = await trunk.dial("0509999999")
        await unknown.wait(CallState.ENDED)
        assert unknown.final_status == 404

    run(scene)


def test_call_group_hunts_on_the_harness_to_the_millisecond() -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        alice.on_invite = Ring()
        bob.on_invite = Answer(after=2.0)
        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        trunk.on_invite = by_number({"0312341234": Answer(after=1.0)})
        group = DOMAIN.groups[0]
        live = await s.pbx.engine.call_group(
            CallGroupRequest(DOMAIN, group, resolve("0312341234", DOMAIN), 60, 5, "hunt",
                             callback_url="https://crm.example.com/cb")
        )  # fmt: skip
        assert len(live.uuids) == 2  # alice's and bob's terminals; carol is not registered
        far = await trunk.wait_call(incoming=True)
        await far.wait(CallState.ANSWERED)
        await asyncio.sleep(0.001)  # the 200 reaches the server
        to_bob = await bob.wait_call(incoming=True)
        assert to_bob.started_at == pytest.approx(5.0, abs=0.001)  # member_answer_timeout
        assert far.started_at == pytest.approx(7.0, abs=0.01)
        assert live.bridged
        ((_, url, payload),) = s.pbx.outputs.callbacks
        assert payload["answered_by"] == "bob" and url.endswith("/cb")
        s.pbx.engine.hangup(DOMAIN.name, live.uuids[1])
        await far.wait(CallState.ENDED)
        await s.idle()

    run(scene)


def test_hold_is_relayed_through_the_bridge() -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Answer()
        call = await alice.dial("bob")
        await call.wait(CallState.ANSWERED)
        rung = await bob.wait_call(incoming=True)
        offers: list[RemoteOffer] = []

        def on_offer(offer: RemoteOffer) -> None:
            offers.append(offer)
            answer, _ = offer_answer.answer(parse_sdp(offer.body), ADDRESSES["bob"], 4000, "b")
            offer.accept(bytes(answer))

        rung.session.on_remote_offer = on_offer
        hold = offer_answer.make_offer(
            ADDRESSES["alice"], 4000, "a", version=2, direction="sendonly"
        )
        answered = await call.session.reinvite(bytes(hold))
        assert answered.status == 200
        assert b"a=recvonly" in answered.body  # we stop sending toward alice
        (relayed,) = offers
        assert b"a=sendonly" in relayed.body  # bob hears he is on hold
        alice.hang_up(call)
        await rung.wait(CallState.ENDED)
        await s.idle()

    run(scene)


def test_a_member_dialling_its_own_group_is_passed_over() -> None:
    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        alice.on_invite = Answer()  # would answer herself if she were rung
        bob.on_invite = Answer(after=1.0)
        call = await alice.dial("support")
        await call.wait(CallState.ANSWERED)
        assert [c for c in alice.calls if c.incoming] == []
        to_bob = await bob.wait_call(incoming=True)
        assert to_bob.started_at == pytest.approx(0.0, abs=0.01)  # no 15 s on herself
        alice.hang_up(call)
        await to_bob.wait(CallState.ENDED)
        await s.idle()

    run(scene)


def test_a_finished_call_leaves_no_garbage_for_the_cycle_collector() -> None:
    """A call's objects must die by their reference counts when it ends: ones caught in a
    reference cycle wait for a full collection, which pauses the loop (measured: API p99
    150 ms at 100 call_group/s when every call left ~300 such objects)."""

    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        alice.on_invite = Answer(after=0.5, hang_up_after=1.0)
        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        trunk.on_invite = Answer()
        request = CallGroupRequest(
            DOMAIN, DOMAIN.groups[0], resolve("0312341234", DOMAIN), 60, 15, "hunt"
        )
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                await s.pbx.engine.call_group(request)
                await asyncio.sleep(3.0)
            await asyncio.sleep(40.0)  # every transaction of those calls has ended too
            await s.idle()
            assert gc.collect() == 0
        finally:
            gc.enable()

    run(scene)


def test_call_user_rings_all_terminals_and_the_first_to_answer_is_connected() -> None:
    async def scene(s: Scene) -> None:
        desk = await s.phone("alice")
        mobile = ScriptedPhone(
            s.network, user="alice", domain=DOMAIN.name, password=PASSWORDS["alice"],
            address=("127.0.0.21", 5060),
        )  # fmt: skip
        await mobile.start()
        assert await mobile.register() == 200
        s.phones["mobile"] = mobile
        desk.on_invite = Answer(after=2.0)
        mobile.on_invite = Answer(after=1.0)
        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        trunk.on_invite = Answer()
        alice = next(u for u in DOMAIN.users if u.name == "alice")
        request = CallUserRequest(
            DOMAIN, alice, resolve("0312341234", DOMAIN), auto_answer=True,
            callback_url="https://crm.example.com/cb",
        )  # fmt: skip
        live = await s.pbx.engine.call_user(request)
        assert len(live.uuids) == 2
        to_desk = await desk.wait_call(incoming=True)
        to_mobile = await mobile.wait_call(incoming=True)
        for rung in (to_desk, to_mobile):
            assert rung.request.get("Call-Info") == "<sip:example.com>;answer-after=0"
            assert "info=alert-autoanswer" in (rung.request.get("Alert-Info") or "")
            assert "0312341234" in (rung.request.get("From") or "")  # who she gets
        far = await trunk.wait_call(CallState.ANSWERED, incoming=True)
        assert far.started_at == pytest.approx(1.0, abs=0.01)  # the mobile answered at 1 s
        await to_desk.wait(CallState.ENDED)
        assert to_desk.ended_reason == "recv_cancel"
        ((_, _, payload),) = s.pbx.outputs.callbacks
        assert payload["answered_by"] == "alice" and payload["uuid"] == to_mobile.request.call_id
        mobile.hang_up(to_mobile)
        await far.wait(CallState.ENDED)
        await s.idle()

    run(scene)


def test_call_external_rings_the_number_first_then_connects_it_to_a_user() -> None:
    async def scene(s: Scene) -> None:
        bob = await s.phone("bob")
        bob.on_invite = Answer(after=2.0)
        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        trunk.on_invite = Answer(after=3.0)
        target = resolve("{name=Tim Tyler,calling_number=05068680000}0312341234", DOMAIN)
        request = CallExternalRequest(DOMAIN, target, resolve("bob", DOMAIN))
        live = await s.pbx.engine.call_external(request)
        (ringing,) = live.uuids
        far = await trunk.wait_call(CallState.ANSWERED, incoming=True)
        assert far.request.call_id == ringing
        assert "sip:05068680000@example.com" in (far.request.get("P-Asserted-Identity") or "")
        to_bob = await bob.wait_call(CallState.ANSWERED, incoming=True)
        assert to_bob.started_at == pytest.approx(3.0, abs=0.01)  # once the number answered
        assert to_bob.request.from_.display_name == "Tim Tyler"
        assert "<sip:0312341234@example.com>" in (to_bob.request.get("From") or "")
        await asyncio.sleep(0.001)
        assert live.bridged
        channels = {c.uuid: c for c in s.pbx.cti.channels(DOMAIN.name)}
        external = channels[ringing]
        assert (external.peer_location, external.called_number) == ("external", "0312341234")
        assert external.end_user and external.end_user[0].name == "Tim Tyler"
        bob.hang_up(to_bob)
        await far.wait(CallState.ENDED)
        await s.idle()
        roles = {r.role: r.party for r in s.pbx.outputs.records}
        assert roles == {"member": "0312341234", "destination": "bob"}

    run(scene)


def test_a_call_group_whose_pstn_destination_is_busy_posts_one_end_of_call_event() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        alice.on_invite = Answer(after=1.0)
        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        trunk.on_invite = Reject(486, after=2.0, ring=True)
        request = CallGroupRequest(
            DOMAIN, DOMAIN.groups[0], resolve("0312341234", DOMAIN), 60, 15, "hunt",
            callback_url="https://crm.example.com/cb",
            call_events_url="https://crm.example.com/events",
        )  # fmt: skip
        await s.pbx.engine.call_group(request)
        rung = await alice.wait_call(CallState.ENDED, incoming=True)
        assert rung.ended_reason == "recv_bye"  # the destination refused: she gets BYE
        await s.idle()
        sent = {url: payload for _, url, payload in s.pbx.outputs.callbacks}
        assert set(sent) == {"https://crm.example.com/cb", "https://crm.example.com/events"}
        event = sent["https://crm.example.com/events"]
        (far,) = [leg for leg in event["legs"] if leg["role"] == "destination"]  # type: ignore[attr-defined]
        assert (far["sip_status"], far["hangup"]) == (486, "recv_refuse,USER_BUSY")
        assert sent["https://crm.example.com/cb"]["result_code"] == 0  # the member answered

    run(scene)
