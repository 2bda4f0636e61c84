"""Media changes inside a call on the harness (RFC 3264 §8, RFC 3311, RFC 3261 §14): a
phone's re-INVITE or UPDATE is relayed through the bridge to the other phone, whose answer
completes it; refusals travel back and leave the call as it was; before the bridge, and for
an offer we cannot use, Switchboard answers alone."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.pbx.destinations import resolve
from switchboard.pbx.live import LiveCall
from switchboard.pbx.requests import CallGroupRequest
from switchboard.sip import offer_answer
from switchboard.sip.message import Request, Response, headers
from switchboard.sip.offer_answer import Codec
from switchboard.sip.sdp import Origin, parse_sdp
from switchboard.sip.session import RemoteOffer
from switchboard.testing.phones import Answer, CallState, ScriptedCall, ScriptedPhone
from tests.pbx.test_calls_on_harness import ADDRESSES, DOMAIN, Scene, run
from tests.pbx.test_engine_edges import answered_call, the_call, trunk_of


class Answering:
    """A phone's ``on_remote_offer``: answer each offer from ``port`` (or refuse it with
    ``refuse``), keeping the offers."""

    def __init__(self, user: str, port: int = 4000, refuse: int | None = None) -> None:
        self.host, self.port, self.refuse = ADDRESSES[user], port, refuse
        self.offers: list[RemoteOffer] = []

    def __call__(self, offer: RemoteOffer) -> None:
        self.offers.append(offer)
        if self.refuse is not None:
            offer.reject(self.refuse)
            return
        answer, _ = offer_answer.answer(parse_sdp(offer.body), self.host, self.port, "phone")
        offer.accept(bytes(answer))


def offer(user: str, version: int, *, direction: str = "sendrecv", port: int = 4000) -> bytes:
    description = offer_answer.make_offer(
        ADDRESSES[user], port, user, version=version, direction=direction
    )
    return bytes(description)


def direction(sdp: bytes) -> str:
    (media,) = parse_sdp(sdp).media
    return media.direction


def origin(sdp: bytes) -> Origin:
    return parse_sdp(sdp).origin


async def bridged(s: Scene) -> tuple[ScriptedCall, ScriptedCall, Answering, Answering]:
    """alice calls bob, who answers; both phones answer offers inside the call."""
    await s.phone("alice")
    bob = await s.phone("bob")
    bob.on_invite = Answer()
    call, rung = await answered_call(s, "alice", "bob")
    at_alice, at_bob = Answering("alice"), Answering("bob")
    call.session.on_remote_offer, rung.session.on_remote_offer = at_alice, at_bob
    return call, rung, at_alice, at_bob


def media_of(live: LiveCall) -> tuple[object, object]:
    return live.session.a.media, live.session.b.media


def in_dialog_invites(phone: ScriptedPhone) -> int:
    return sum(1 for _, e in phone.events if e == "got INVITE")


async def hang_up(s: Scene, call: ScriptedCall, rung: ScriptedCall) -> None:
    s.phones["alice"].hang_up(call)
    await rung.wait(CallState.ENDED)
    await s.idle()


def test_hold_and_resume_are_relayed_and_each_leg_hears_its_direction() -> None:
    async def scene(s: Scene) -> None:
        call, rung, _, at_bob = await bridged(s)
        live = the_call(s)
        held = await call.session.reinvite(offer("alice", 2, direction="sendonly"))
        assert held.status == 200 and direction(held.body) == "recvonly"
        assert live.session.a.media is not None and live.session.a.media.direction == "recvonly"
        resumed = await call.session.reinvite(offer("alice", 3))
        assert resumed.status == 200 and direction(resumed.body) == "sendrecv"
        assert live.session.a.media.direction == "sendrecv"
        assert [(o.method, direction(o.body)) for o in at_bob.offers] == [
            ("INVITE", "sendonly"),
            ("INVITE", "sendrecv"),
        ]
        assert call.state is rung.state is CallState.ANSWERED
        await hang_up(s, call, rung)

    run(scene)


def test_the_relayed_offers_count_the_far_legs_versions_by_one() -> None:
    async def scene(s: Scene) -> None:
        call, rung, _, at_bob = await bridged(s)
        for version, way in ((2, "sendonly"), (3, "sendrecv")):
            await call.session.reinvite(offer("alice", version, direction=way))
        sent = [origin(rung.request.body), *(origin(o.body) for o in at_bob.offers)]
        assert len({o.session_id for o in sent}) == 1
        assert [o.session_version for o in sent] == [1, 2, 3]
        await hang_up(s, call, rung)

    run(scene)


def test_the_callers_answers_keep_their_origin_line() -> None:
    async def scene(s: Scene) -> None:
        call, rung, _, _ = await bridged(s)
        sent = [origin(call.session.answered.result().body)]
        for version, way in ((2, "sendonly"), (3, "sendrecv")):
            answered = await call.session.reinvite(offer("alice", version, direction=way))
            sent.append(origin(answered.body))
        assert len({(o.username, o.session_id, o.address) for o in sent}) == 1
        await hang_up(s, call, rung)

    run(scene)


def test_an_update_from_the_callee_is_relayed_as_a_reinvite_and_answered() -> None:
    async def scene(s: Scene) -> None:
        call, rung, at_alice, _ = await bridged(s)
        live = the_call(s)
        moved = offer("bob", 2, port=4010)
        answered = await rung.session.offer(moved, "UPDATE")
        assert answered.status == 200 and answered.cseq.method == "UPDATE"
        assert direction(answered.body) == "sendrecv"
        (relayed,) = at_alice.offers
        assert relayed.method == "INVITE" and direction(relayed.body) == "sendrecv"
        assert origin(relayed.body).address == live.session.a.host  # the relay, not bob
        assert live.session.b.media is not None
        assert live.session.b.media.address == (ADDRESSES["bob"], 4010)
        await hang_up(s, call, rung)

    run(scene)


def test_an_offerless_reinvite_gets_our_offer_and_the_acks_answer_is_applied() -> None:
    async def scene(s: Scene) -> None:
        call, rung, _, _ = await bridged(s)
        alice, bob = s.phones["alice"], s.phones["bob"]
        live = the_call(s)
        dialog, endpoint = call.session.dialog, alice.endpoint
        assert dialog is not None
        peer = dialog.next_hop(call.session.peer)
        reinvite = dialog.create_request(
            "INVITE", endpoint.via(), extra=headers(("Contact", endpoint.contact(user="alice")))
        )
        final: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def on_response(response: Response) -> None:
            if response.status >= 200 and not final.done():
                final.set_result(response)

        endpoint.send_request(reinvite, peer, on_response)
        ours = await final
        assert ours.status == 200 and origin(ours.body).address == live.session.a.host
        assert parse_sdp(ours.body).media[0].port == live.session.a.port
        answer, _ = offer_answer.answer(parse_sdp(ours.body), ADDRESSES["alice"], 4010, "a")
        sdp = headers(("Content-Type", "application/sdp"))
        ack: Request = dialog.create_request("ACK", endpoint.via(), extra=sdp, body=bytes(answer))
        endpoint.send_stateless(ack, peer)
        await asyncio.sleep(0.001)
        assert live.session.a.media is not None
        assert live.session.a.media.address == (ADDRESSES["alice"], 4010)
        await asyncio.sleep(40.0)  # past Timer H: our 200 was ACKed, no BYE for want of one
        assert [e for _, e in alice.events].count("got 200") == 2  # the call's and ours, once
        assert call.state is rung.state is CallState.ANSWERED
        assert in_dialog_invites(bob) == 0  # the relay absorbs alice's new port
        await hang_up(s, call, rung)

    run(scene)


def test_a_refusal_of_the_relayed_offer_is_passed_back_and_the_call_goes_on() -> None:
    async def scene(s: Scene) -> None:
        call, rung, _, at_bob = await bridged(s)
        at_bob.refuse = 488
        refused = await call.session.reinvite(offer("alice", 2, direction="sendonly"))
        assert refused.status == 488
        assert len(at_bob.offers) == 1
        await asyncio.sleep(1.0)
        assert call.state is rung.state is CallState.ANSWERED
        assert s.pbx.engine.statistics() == {"calls": 1, "channels": 2}
        at_bob.refuse = None
        held = await call.session.reinvite(offer("alice", 3, direction="sendonly"))
        assert held.status == 200 and direction(at_bob.offers[-1].body) == "sendonly"
        await hang_up(s, call, rung)

    run(scene)


def test_a_refused_media_change_leaves_the_audio_path_as_it_was() -> None:
    async def scene(s: Scene) -> None:
        call, rung, _, at_bob = await bridged(s)
        live = the_call(s)
        before = media_of(live)
        at_bob.refuse = 488
        refused = await call.session.reinvite(offer("alice", 2, port=4010))
        assert refused.status == 488
        assert media_of(live) == before
        await hang_up(s, call, rung)

    run(scene)


def test_reinvites_crossing_from_both_phones_get_491_and_the_call_survives() -> None:
    """Each side's relay finds the other leg busy (§14.1): ours toward alice is refused
    before it leaves (her re-INVITE is pending), bob refuses ours (his is pending)."""

    async def scene(s: Scene) -> None:
        call, rung, at_alice, at_bob = await bridged(s)
        both = await asyncio.gather(
            call.session.reinvite(offer("alice", 2, direction="sendonly")),
            rung.session.reinvite(offer("bob", 2, direction="sendonly")),
        )
        assert [response.status for response in both] == [491, 491]
        assert at_alice.offers == at_bob.offers == []  # neither phone was asked anything
        await asyncio.sleep(2.0)  # §14.1: try again after a while
        assert call.state is rung.state is CallState.ANSWERED
        held = await call.session.reinvite(offer("alice", 3, direction="sendonly"))
        assert held.status == 200 and direction(held.body) == "recvonly"
        assert direction(at_bob.offers[-1].body) == "sendonly"
        resumed = await rung.session.reinvite(offer("bob", 3))
        assert resumed.status == 200 and direction(at_alice.offers[-1].body) == "sendrecv"
        await hang_up(s, call, rung)

    run(scene)


def test_a_reinvite_before_the_bridge_is_answered_without_reinviting_the_destination() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        alice.on_invite = Answer()
        trunk = await trunk_of(s)
        trunk.on_invite = Answer(after=30.0)  # the destination rings 30 s
        group = DOMAIN.groups[0]
        request = CallGroupRequest(DOMAIN, group, resolve("0312341234", DOMAIN), 60, 15, "hunt")
        live = await s.pbx.engine.call_group(request)
        member = await alice.wait_call(CallState.ANSWERED, incoming=True)
        await trunk.wait_call(incoming=True)
        assert not live.bridged
        held = await member.session.reinvite(offer("alice", 2, direction="sendonly"))
        assert held.status == 200 and direction(held.body) == "recvonly"
        assert live.session.a.media is not None and live.session.a.media.direction == "recvonly"
        assert [e for _, e in trunk.events if "INVITE" in e] == [
            "got INVITE from sip:0506868000@example.com"
        ]
        far = await trunk.wait_call(CallState.ANSWERED, incoming=True)
        await asyncio.sleep(0.001)  # the 200 reaches the server
        assert live.bridged and far.session.request.body != b""
        s.pbx.engine.hangup(DOMAIN.name, live.uuids[0])
        await far.wait(CallState.ENDED)
        await s.idle()

    run(scene)


def test_a_reinvite_with_no_common_codec_gets_488_and_the_call_goes_on() -> None:
    async def scene(s: Scene) -> None:
        call, rung, _, at_bob = await bridged(s)
        live = the_call(s)
        before = media_of(live)
        g729 = offer_answer.make_offer(
            ADDRESSES["alice"],
            4010,
            "alice",
            version=2,
            codecs=(Codec(18, "G729"),),
            telephone_event=None,
        )
        refused = await call.session.reinvite(bytes(g729))
        assert refused.status == 488
        assert at_bob.offers == [] and in_dialog_invites(s.phones["bob"]) == 0
        assert media_of(live) == before
        await asyncio.sleep(1.0)
        held = await call.session.reinvite(offer("alice", 3, direction="sendonly"))
        assert held.status == 200 and len(at_bob.offers) == 1
        assert call.state is rung.state is CallState.ANSWERED
        await hang_up(s, call, rung)

    run(scene)


def test_a_far_leg_gone_silent_ends_the_call_as_switchboard_not_as_the_peer() -> None:
    """bob vanishes; alice's hold is relayed to him and never answered: Timer B (32 s)
    makes the re-INVITE 408, the user agent ends bob's dead dialog with BYE (RFC 3261
    §12.2.1.2), and the call ends: alice's pending re-INVITE gets 487 and she gets BYE. Switchboard
    ended it, so both records say send_bye, not that a peer hung up."""

    async def scene(s: Scene) -> None:
        alice, bob = await s.phone("alice"), await s.phone("bob")
        bob.on_invite = Answer()
        call = await alice.dial("bob")
        await call.wait(CallState.ANSWERED)
        await bob.wait_call(CallState.ANSWERED, incoming=True)
        s.network.drop.append(lambda _data, _source, destination: destination == bob.address)
        sent_at = alice.now()
        answer = await call.session.reinvite(offer("alice", 2, direction="sendonly"))
        assert answer.status == 487  # the dialog ended under it (§15.1.2)
        await call.wait(CallState.ENDED)
        assert call.ended_reason == "recv_bye"
        assert alice.now() - sent_at == pytest.approx(32.0, abs=0.01)
        await s.idle()
        hangups = {r.role: r.hangup for r in s.pbx.outputs.records}
        assert hangups == {
            "caller": "send_bye,NORMAL_CLEARING",
            "destination": "send_bye,NORMAL_CLEARING",
        }

    run(scene)
