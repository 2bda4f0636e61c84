"""Scripted phones and trunks, phone to phone on the in-memory network: every script, every
way a call ends, and registration against the real registrar core, timed exactly on
virtual time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from switchboard.config import parse_config
from switchboard.directory import Directory
from switchboard.registrar.location import LocationService
from switchboard.registrar.registrar import Registrar, apply
from switchboard.sip import offer_answer
from switchboard.sip.builders import make_cancel, make_response
from switchboard.sip.digest import DigestServer
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.headers import Header
from switchboard.sip.message import Request, Response, headers, parse_message
from switchboard.sip.sdp import parse_sdp
from switchboard.sip.transaction.base import Peer
from switchboard.sip.transaction.layer import ServerTransaction
from switchboard.sip.uri import SipUri
from switchboard.sip.useragent import UserAgent
from switchboard.testing import clock
from switchboard.testing.network import Network
from switchboard.testing.phones import (
    Answer,
    CallState,
    Credentials,
    Reject,
    Ring,
    ScriptedCall,
    ScriptedPhone,
    ScriptedTrunk,
    Silent,
    Trying,
    by_number,
)
from switchboard.testing.registration import answer_with_credentials, register_request
from switchboard.testing.tap import describe

T = TypeVar("T")
ALICE, BOB, SERVER = ("10.0.0.1", 5060), ("10.0.0.2", 5060), ("127.0.0.1", 5060)
TO_BOB = "sip:bob@10.0.0.2"
CONFIG = parse_config("""
[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "alice-secret"
""")


def _phone(network: Network, user: str, address: tuple[str, int]) -> ScriptedPhone:
    return ScriptedPhone(
        network, user=user, domain="example.com", password=f"{user}-secret", address=address
    )


def _run(
    network: Network, scenario: Callable[[ScriptedPhone, ScriptedPhone], Awaitable[T]]
) -> tuple[T, ScriptedPhone, ScriptedPhone]:
    """Run ``scenario(alice, bob)`` on virtual time, then let every transaction end."""
    phones: list[ScriptedPhone] = []

    async def main() -> T:
        alice = await _phone(network, "alice", ALICE).start()
        bob = await _phone(network, "bob", BOB).start()
        phones.extend((alice, bob))
        result = await scenario(alice, bob)
        await asyncio.sleep(64)
        return result

    result = clock.run(main())
    return result, phones[0], phones[1]


def _sent_by(network: Network, address: tuple[str, int], start: bytes) -> list[bytes]:
    return [d.data for d in network.log if d.source == address and d.data.startswith(start)]


# -- answering -----------------------------------------------------------------------------


def test_answer_after_two_seconds_reaches_the_caller_at_exactly_two_seconds() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> tuple[ScriptedCall, float]:
        bob.on_invite = Answer(after=2.0)
        call = await alice.dial_uri(TO_BOB)
        await call.wait(CallState.ANSWERED)
        return call, alice.now()

    (call, answered_at), alice, bob = _run(Network(), scenario)
    assert answered_at == 2.0 and call.final_status == 200
    assert alice.events == [
        (0.0, "sent INVITE to sip:bob@10.0.0.2"),
        (0.0, "got 100"),
        (0.0, "got 180"),
        (2.0, "got 200"),
        (2.0, "sent ACK"),
    ]
    assert bob.events == [
        (0.0, "got INVITE from sip:alice@example.com"),
        (0.0, "sent 100"),
        (0.0, "sent 180"),
        (2.0, "sent 200"),
        (2.0, "got ACK"),
    ]
    (incoming,) = bob.calls
    assert incoming.incoming and incoming.final_status == 200 and incoming.script == Answer(2.0)
    assert incoming.request.call_id == call.request.call_id
    assert call.final is not None
    agreed = offer_answer.accept_answer(parse_sdp(call.request.body), parse_sdp(call.final.body))
    assert (agreed.remote_address, agreed.remote_port, agreed.codec.name) == (
        "10.0.0.2",
        bob.rtp_port,
        "PCMU",
    )


def test_answer_without_ringing_sends_no_180() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> None:
        bob.on_invite = Answer(after=1.0, ring=False)
        await (await alice.dial_uri(TO_BOB)).wait(CallState.ANSWERED)

    _, _, bob = _run(Network(), scenario)
    assert [event for _, event in bob.events if event.startswith("sent")] == [
        "sent 100",
        "sent 200",
    ]


def test_an_invite_without_offer_gets_our_offer_in_the_200() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> ScriptedCall:
        bob.on_invite = Answer()
        return await (await alice.dial_uri(TO_BOB, sdp=False)).wait(CallState.ANSWERED)

    call, _, bob = _run(Network(), scenario)
    assert call.request.body == b"" and call.final is not None
    offer = parse_sdp(call.final.body)
    assert offer.connection == "IN IP4 10.0.0.2" and offer.media[0].port == bob.rtp_port


def test_answer_with_given_sdp_sends_those_bytes() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> ScriptedCall:
        bob.on_invite = Answer(sdp=b"")
        return await (await alice.dial_uri(TO_BOB)).wait(CallState.ANSWERED)

    call, _, _ = _run(Network(), scenario)
    assert call.final is not None and call.final.body == b""


def test_an_offer_nothing_can_be_agreed_with_is_refused_with_488() -> None:
    video = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    video += b"m=video 5000 RTP/AVP 96\r\n"

    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> ScriptedCall:
        bob.on_invite = Answer()
        return await (await alice.dial_uri(TO_BOB, sdp=video)).wait(CallState.ENDED)

    call, _, _ = _run(Network(), scenario)
    assert call.final_status == 488


def test_ring_with_early_media_sends_the_sdp_answer_in_a_183() -> None:
    network = Network()

    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> ScriptedCall:
        bob.on_invite = Ring(183, early_media=True)
        return await (await alice.dial_uri(TO_BOB)).wait(CallState.RINGING)

    call, _, _ = _run(network, scenario)
    (progress,) = _sent_by(network, BOB, b"SIP/2.0 183")
    agreed = offer_answer.accept_answer(
        parse_sdp(call.request.body), parse_sdp(parse_message(progress).body)
    )
    assert agreed.remote_address == "10.0.0.2"


# -- refusing, or saying nothing -----------------------------------------------------------


def test_reject_with_486_after_half_a_second() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> tuple[ScriptedCall, float]:
        bob.on_invite = Reject(486, after=0.5)
        call = await (await alice.dial_uri(TO_BOB)).wait(CallState.ENDED)
        return call, alice.now()

    (call, ended_at), _, bob = _run(Network(), scenario)
    assert ended_at == 0.5 and call.final_status == 486
    assert call.ended_reason == "recv_refuse,486"
    assert bob.events == [
        (0.0, "got INVITE from sip:alice@example.com"),
        (0.0, "sent 100"),
        (0.5, "sent 486"),
        (0.5, "got ACK"),
    ]
    assert bob.calls[0].final_status == 486 and bob.calls[0].ended_reason == "send_refuse,486"


def test_reject_after_ringing_like_a_user_who_declines() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> None:
        bob.on_invite = Reject(603, after=5.0, ring=True)
        await (await alice.dial_uri(TO_BOB)).wait(CallState.ENDED)

    _, alice, _ = _run(Network(), scenario)
    assert [e for e in alice.events if e[1].startswith("got")] == [
        (0.0, "got 100"),
        (0.0, "got 180"),
        (5.0, "got 603"),
    ]


def test_silent_phone_sends_nothing_and_the_caller_gets_408_at_timer_b() -> None:
    """RFC 3261 §17.1.1.2: Timer B = 64·T1 = 32 s, with no provisional to stop it."""
    network = Network()

    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> tuple[ScriptedCall, float]:
        bob.on_invite = Silent()
        call = await (await alice.dial_uri(TO_BOB)).wait(CallState.ENDED)
        return call, alice.now()

    (call, ended_at), _, bob = _run(network, scenario)
    assert ended_at == 32.0 and call.final_status == 408
    assert _sent_by(network, BOB, b"") == []
    assert len(_sent_by(network, ALICE, b"INVITE ")) == 7  # Timer A's retransmissions
    assert bob.events == [(0.0, "got INVITE from sip:alice@example.com")]  # each one once
    assert bob.calls[0].state is CallState.CALLING and bob.calls[0].final is None


def test_a_silent_phone_does_not_answer_a_cancel_either() -> None:
    network = Network()

    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> None:
        bob.on_invite = Silent()
        call = await alice.dial_uri(TO_BOB)
        await asyncio.sleep(1)
        # The caller's user agent CANCELs only after a provisional (§9.1): send one anyway.
        alice.endpoint.send_request(make_cancel(call.request), Peer("UDP", *BOB), lambda _: None)

    _, _, bob = _run(network, scenario)
    assert _sent_by(network, BOB, b"") == []
    assert [e for e in bob.events if e[0] > 0] == [(1.0, "got CANCEL")]


def test_trying_only_leaves_the_caller_waiting_with_no_timer_of_its_own() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> tuple[CallState, float]:
        bob.on_invite = Trying()
        call = await alice.dial_uri(TO_BOB)
        await asyncio.sleep(100)
        state = call.state
        alice.hang_up(call)
        await call.wait(CallState.ENDED)
        return state, alice.now()

    (state, ended_at), alice, bob = _run(Network(), scenario)
    assert state is CallState.CALLING and ended_at == 100.0
    assert alice.calls[0].final_status == 487
    assert [event for _, event in bob.events] == [
        "got INVITE from sip:alice@example.com",
        "sent 100",
        "got CANCEL",
        "sent 200 (CANCEL)",
        "sent 487",
        "got ACK",
    ]


# -- ending calls --------------------------------------------------------------------------


def test_cancel_while_ringing_ends_both_sides_with_487() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> ScriptedCall:
        bob.on_invite = Ring()
        call = await alice.dial_uri(TO_BOB)
        await asyncio.sleep(3)
        alice.hang_up()
        return await call.wait(CallState.ENDED)

    call, alice, bob = _run(Network(), scenario)
    assert call.final_status == 487 and bob.calls[0].ended_reason == "recv_cancel"
    assert alice.events == [
        (0.0, "sent INVITE to sip:bob@10.0.0.2"),
        (0.0, "got 100"),
        (0.0, "got 180"),
        (3.0, "sent CANCEL"),
        (3.0, "got 200 (CANCEL)"),
        (3.0, "got 487"),
        (3.0, "sent ACK"),
    ]
    assert bob.calls[0].final_status == 487


def test_a_cancel_before_the_scheduled_answer_stops_it() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> None:
        bob.on_invite = Answer(after=5.0)
        call = await alice.dial_uri(TO_BOB)
        await asyncio.sleep(2)
        alice.hang_up(call)
        await asyncio.sleep(10)

    _, _, bob = _run(Network(), scenario)
    assert "sent 200" not in [event for _, event in bob.events]
    assert bob.calls[0].final_status == 487


def test_a_cancel_that_crosses_the_200_ends_the_call_with_bye() -> None:
    """RFC 3261 §9.1: the 2xx wins over a CANCEL already sent; the caller then hangs up."""

    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> None:
        bob.on_invite = Answer(after=3.0)
        call = await alice.dial_uri(TO_BOB)
        await asyncio.sleep(3.015)  # bob answered at 3.01; his 200 lands at 3.02
        alice.hang_up(call)
        await call.wait(CallState.ENDED)

    _, alice, bob = _run(Network(latency=0.010), scenario)
    late = [(time, event) for time, event in alice.events if time > 3.0]
    assert [event for _, event in late] == [
        "sent CANCEL",
        "got 200",
        "sent ACK",
        "sent BYE",
        "got 200 (CANCEL)",
        "got 200 (BYE)",
    ]
    assert [time for time, _ in late] == pytest.approx([3.015, 3.02, 3.02, 3.02, 3.035, 3.04])
    assert alice.calls[0].ended_reason == "send_bye" and bob.calls[0].ended_reason == "recv_bye"


@pytest.mark.parametrize("who", ["caller", "callee"])
def test_bye_from_either_side_ends_the_other_at_that_instant(who: str) -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> float:
        bob.on_invite = Answer(after=1.0)
        call = await (await alice.dial_uri(TO_BOB)).wait(CallState.ANSWERED)
        await asyncio.sleep(4)
        hanging_up, other = (alice, bob) if who == "caller" else (bob, alice)
        hanging_up.hang_up()
        await other.wait_call(CallState.ENDED)
        assert call.state is CallState.ENDED
        return other.now()

    ended_at, alice, bob = _run(Network(), scenario)
    assert ended_at == 5.0
    reasons = [alice.calls[0].ended_reason, bob.calls[0].ended_reason]
    assert reasons == (["send_bye", "recv_bye"] if who == "caller" else ["recv_bye", "send_bye"])
    hanging_up = alice if who == "caller" else bob
    assert hanging_up.events[-2:] == [(5.0, "sent BYE"), (5.0, "got 200 (BYE)")]


def test_answer_then_hang_up_after_a_while() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> float:
        bob.on_invite = Answer(after=1.0, hang_up_after=4.0)
        await (await alice.dial_uri(TO_BOB)).wait(CallState.ENDED)
        return alice.now()

    ended_at, alice, _ = _run(Network(), scenario)
    assert ended_at == 5.0 and alice.calls[0].ended_reason == "recv_bye"


def test_both_sides_hanging_up_at_once_end_both_calls() -> None:
    """BYE glare: each BYE reaches a dialog its receiver already ended, and draws 481."""

    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> None:
        bob.on_invite = Answer()
        await (await alice.dial_uri(TO_BOB)).wait(CallState.ANSWERED)
        alice.hang_up()
        bob.hang_up()

    _, alice, bob = _run(Network(), scenario)
    for phone in (alice, bob):
        assert phone.calls[0].ended_reason == "send_bye"
        assert [e for _, e in phone.events if "BYE" in e] == [
            "sent BYE",
            "got BYE",
            "sent 481 (BYE)",
            "got 481 (BYE)",
        ]


def test_hanging_up_a_ringing_incoming_call_declines_it() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> ScriptedCall:
        bob.on_invite = Ring()
        call = await alice.dial_uri(TO_BOB)
        await bob.wait_call(CallState.RINGING)
        bob.hang_up()
        return await call.wait(CallState.ENDED)

    call, _, _ = _run(Network(), scenario)
    assert call.final_status == 603


def test_hanging_up_with_no_call_is_a_mistake() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> None:
        with pytest.raises(LookupError):
            alice.hang_up()

    _run(Network(), scenario)


# -- scripts per call, waiting -------------------------------------------------------------


def test_the_script_can_change_between_calls() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> list[int | None]:
        bob.on_invite = Reject(486)
        first = await (await alice.dial_uri(TO_BOB)).wait(CallState.ENDED)
        bob.on_invite = Answer()
        second = await (await alice.dial_uri(TO_BOB)).wait(CallState.ANSWERED)
        return [first.final_status, second.final_status]

    statuses, _, bob = _run(Network(), scenario)
    assert statuses == [486, 200]
    assert [c.script for c in bob.calls] == [Reject(486), Answer()]


def test_waiting_for_what_never_comes_times_out_exactly() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> float:
        with pytest.raises(TimeoutError):
            await bob.wait_call(timeout=5.0)
        return bob.now()

    waited_until, _, _ = _run(Network(), scenario)
    assert waited_until == 5.0


def test_wait_call_picks_by_state_and_direction() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> list[ScriptedCall]:
        alice.on_invite = bob.on_invite = Ring()
        placed = await alice.dial_uri(TO_BOB)
        await bob.wait_call(CallState.RINGING)
        await bob.dial_uri("sip:alice@10.0.0.1")
        received = await alice.wait_call(incoming=True)
        assert await alice.wait_call(CallState.RINGING) is placed  # the first one ringing
        return [placed, received]

    (placed, received), alice, _ = _run(Network(), scenario)
    assert alice.calls == [placed, received]
    assert not placed.incoming and received.incoming


def test_a_closed_phone_is_off_the_network() -> None:
    network = Network()

    async def main() -> int | None:
        async with _phone(network, "bob", BOB) as bob:
            bob.on_invite = Answer()
        alice = await _phone(network, "alice", ALICE).start()
        call = await (await alice.dial_uri(TO_BOB)).wait(CallState.ENDED)
        async with _phone(network, "bob", BOB):  # its address is free again
            pass
        return call.final_status

    assert clock.run(main()) == 408


# -- registration, calls through a server, trunks -----------------------------------------


def _registrar(network: Network) -> tuple[SipEndpoint, Registrar]:
    tags = (f"n{n}" for n in itertools.count())
    registrar = Registrar(
        Directory(CONFIG), LocationService(), digest_key=b"k" * 32, new_tag=lambda: next(tags)
    )
    endpoint = SipEndpoint(*SERVER, network=network)

    def on_register(
        endpoint: SipEndpoint, tx: ServerTransaction, request: Request, peer: Peer
    ) -> None:
        decision = registrar.handle(request, peer, endpoint.now())
        apply(registrar.location, decision)
        endpoint.respond(tx, decision.response)

    UserAgent(endpoint).request_handlers["REGISTER"] = on_register
    return endpoint, registrar


def test_register_answers_the_registrars_challenge_with_qop_auth() -> None:
    network = Network()

    async def main() -> tuple[int, int, int, ScriptedPhone, Registrar]:
        server, registrar = _registrar(network)
        await server.start()
        phone = await _phone(network, "alice", ALICE).start()
        registered = await phone.register(expires=600)
        bindings = registrar.location.bindings(("example.com", "alice"), phone.now())
        assert [(b.contact, b.received) for b in bindings] == [
            ("sip:alice@10.0.0.1:5060", "UDP:10.0.0.1:5060")
        ]
        unregistered = await phone.unregister()
        assert registrar.location.bindings(("example.com", "alice"), phone.now()) == []
        phone.password = "guess"
        refused = await phone.register()
        return registered, unregistered, refused, phone, registrar

    registered, unregistered, refused, phone, _ = clock.run(main())
    assert (registered, unregistered, refused) == (200, 200, 403)
    assert [event for _, event in phone.events[:4]] == [
        "sent REGISTER",
        "got 401 (REGISTER)",
        "sent REGISTER",
        "got 200 (REGISTER)",
    ]
    answered = parse_message(_sent_by(network, ALICE, b"REGISTER ")[1])
    authorization = answered.get("Authorization") or ""
    assert "qop=auth" in authorization and 'username="alice"' in authorization
    assert answered.get("Expires") == "600"
    cseqs = [parse_message(r).cseq.number for r in _sent_by(network, ALICE, b"REGISTER ")]
    assert cseqs == [1, 2, 3, 4, 5, 6]  # one Call-ID, CSeq growing (RFC 3261 §10.2)


def test_dial_goes_through_the_server_and_answers_its_407() -> None:
    network = Network()

    async def main() -> tuple[ScriptedCall, ScriptedTrunk]:
        server = await ScriptedTrunk(
            network, address=SERVER, auth=Credentials("alice", "alice-secret")
        ).start()
        server.on_invite = Answer()
        phone = await _phone(network, "alice", ALICE).start()
        call = await (await phone.dial("bob")).wait(CallState.ANSWERED)
        return call, server

    call, server = clock.run(main())
    assert call.final_status == 200
    assert [event for _, event in server.events] == [
        "got INVITE from sip:alice@example.com",
        "sent 407",
        "got ACK",
        "got INVITE from sip:alice@example.com",
        "sent 100",
        "sent 180",
        "sent 200",
        "got ACK",
    ]
    invite = server.calls[0].request
    assert str(invite.uri) == "sip:bob@example.com"
    authorization = invite.get("Proxy-Authorization") or ""
    assert 'username="alice"' in authorization and "qop=auth" in authorization


def test_a_trunk_refuses_wrong_credentials_with_407_again() -> None:
    network = Network()

    async def main() -> ScriptedCall:
        trunk = await ScriptedTrunk(network, auth=Credentials("pbx", "right")).start()
        trunk.on_invite = Answer()
        phone = await _phone(network, "alice", ALICE).start()
        call = await phone.dial_uri(
            "sip:0311112222@127.0.0.20", credentials=Credentials("pbx", "wrong")
        )
        return await call.wait(CallState.ENDED)

    call = clock.run(main())
    assert call.final_status == 407 and len(_sent_by(network, ALICE, b"INVITE ")) == 2


def test_a_trunk_dials_a_did_with_the_caller_in_from_and_p_asserted_identity() -> None:
    network = Network()

    async def main() -> ScriptedCall:
        pbx = await _phone(network, "pbx", SERVER).start()
        pbx.on_invite = Answer()
        trunk = await ScriptedTrunk(network).start()
        await (await trunk.dial("0501110001", caller="0312345678")).wait(CallState.ANSWERED)
        return pbx.calls[0]

    incoming = clock.run(main())
    invite = incoming.request
    assert str(invite.uri) == "sip:0501110001@127.0.0.1:5060"
    assert isinstance(invite.from_.uri, SipUri) and invite.from_.uri.user == "0312345678"
    assert invite.get("P-Asserted-Identity") == "<sip:0312345678@127.0.0.20>"


def test_a_trunk_answers_by_called_number() -> None:
    network = Network()

    async def main() -> list[int | None]:
        trunk = await ScriptedTrunk(network).start()
        trunk.on_invite = by_number({"0311112222": Answer(after=1.0)})
        phone = await _phone(network, "pbx", SERVER).start()
        answered = await phone.dial_uri("sip:0311112222@127.0.0.20")
        refused = await phone.dial_uri("sip:0399999999@127.0.0.20")
        await answered.wait(CallState.ANSWERED)
        await refused.wait(CallState.ENDED)
        return [answered.final_status, refused.final_status]

    assert clock.run(main()) == [200, 404]


def test_a_trunk_challenges_an_answer_to_an_expired_nonce_as_stale() -> None:
    """RFC 7616 §3.3: the password was right, only the nonce is old: stale=true."""
    network = Network()

    async def main() -> Response:
        await ScriptedTrunk(network, auth=Credentials("pbx", "right")).start()
        phone = await _phone(network, "pbx", SERVER).start()
        call = await (await phone.dial_uri("sip:0311112222@127.0.0.20")).wait(CallState.ENDED)
        assert call.final is not None and call.final_status == 407
        await asyncio.sleep(400)  # longer than the nonce lives
        late = answer_with_credentials(
            call.request,
            call.final,
            username="pbx",
            password="right",
            cnonce="c",
            via=phone.endpoint.via(),
        )
        assert late is not None
        responses: list[Response] = []
        phone.endpoint.send_request(late, Peer("UDP", "127.0.0.20", 5060), responses.append)
        await asyncio.sleep(1)
        return responses[-1]

    challenge = clock.run(main())
    assert challenge.status == 407
    assert "stale=true" in (challenge.get("Proxy-Authenticate") or "")


def _challenging_registrar(network: Network, *, stale: bool) -> SipEndpoint:
    """A registrar that challenges the phone's first answer again, as stale or not."""
    salts = (f"s{n}" for n in itertools.count())
    digest = DigestServer("example.com", b"k" * 32, nonce_salt=lambda: next(salts))
    answers: list[str] = []
    endpoint = SipEndpoint(*SERVER, network=network)

    def on_register(
        endpoint: SipEndpoint, tx: ServerTransaction, request: Request, peer: Peer
    ) -> None:
        now, authorization = endpoint.now(), request.get("Authorization")
        if authorization is None or not answers:
            answers.extend([authorization] if authorization else [])
            challenges = digest.challenges(now, peer.host, stale=stale and bool(answers))
            extra = tuple(Header("WWW-Authenticate", c) for c in challenges[:1])
            endpoint.respond(tx, make_response(request, 401, to_tag="r", extra=extra))
            return
        verdict = digest.verify(authorization, "REGISTER", "alice-secret", now, peer.host)
        endpoint.respond(tx, make_response(request, 200 if verdict.ok else 403, to_tag="r"))

    UserAgent(endpoint).request_handlers["REGISTER"] = on_register
    return endpoint


@pytest.mark.parametrize(("stale", "status", "sent"), [(True, 200, 3), (False, 401, 2)])
def test_register_answers_a_second_challenge_only_when_it_says_stale(
    stale: bool, status: int, sent: int
) -> None:
    network = Network()

    async def main() -> int:
        await _challenging_registrar(network, stale=stale).start()
        phone = await _phone(network, "alice", ALICE).start()
        return await phone.register()

    assert clock.run(main()) == status
    assert len(_sent_by(network, ALICE, b"REGISTER ")) == sent


# -- the pieces ----------------------------------------------------------------------------


def test_a_rule_can_pick_the_script_from_the_invite() -> None:
    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> list[int | None]:
        bob.on_invite = lambda invite: Reject(433) if "anonymous" in str(invite.from_) else Answer()
        hidden = await alice.dial_uri(TO_BOB, from_uri="sip:anonymous@anonymous.invalid")
        shown = await alice.dial_uri(TO_BOB)
        await hidden.wait(CallState.ENDED)
        await shown.wait(CallState.ANSWERED)
        return [hidden.final_status, shown.final_status]

    statuses, _, _ = _run(Network(), scenario)
    assert statuses == [433, 200]


def test_a_lost_ack_shows_as_retransmitted_200s_on_the_wire_and_one_event() -> None:
    """RFC 3261 §13.3.1.4: the UAS resends its 2xx at T1, 2·T1… until the ACK comes."""
    lost: list[bytes] = []

    def lose_first_ack(data: bytes, source: object, destination: object) -> bool:
        if data.startswith(b"ACK ") and not lost:
            lost.append(data)
            return True
        return False

    network = Network(drop=[lose_first_ack])

    async def scenario(alice: ScriptedPhone, bob: ScriptedPhone) -> ScriptedCall:
        bob.on_invite = Answer(after=1.0)
        await (await alice.dial_uri(TO_BOB)).wait(CallState.ANSWERED)
        return bob.calls[0]

    incoming, _, bob = _run(network, scenario)
    assert [d.time for d in network.log if d.data.startswith(b"SIP/2.0 200")] == [1.0, 1.5]
    assert [e for e in bob.events if e[0] >= 1.0] == [(1.0, "sent 200"), (1.5, "got ACK")]
    assert incoming.state is CallState.ANSWERED


def _message(first_line: str, method: str, to_tag: str = "") -> bytes:
    to = f"<sip:b@h>;tag={to_tag}" if to_tag else "<sip:b@h>"
    return (
        f"{first_line}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: {to}\r\n"
        f"From: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("data", "sent", "line"),
    [
        (_message("INVITE sip:b@h SIP/2.0", "INVITE"), False, "got INVITE from sip:a@h"),
        (_message("INVITE sip:b@h SIP/2.0", "INVITE"), True, "sent INVITE to sip:b@h"),
        (_message("INVITE sip:b@h SIP/2.0", "INVITE", "2"), True, "sent INVITE"),
        (_message("BYE sip:b@h SIP/2.0", "BYE", "2"), False, "got BYE"),
        (_message("SIP/2.0 180 Ringing", "INVITE", "2"), False, "got 180"),
        (_message("SIP/2.0 200 OK", "BYE", "2"), True, "sent 200 (BYE)"),
    ],
)
def test_events_name_messages_by_direction_method_and_status(
    data: bytes, sent: bool, line: str
) -> None:
    assert describe(parse_message(data), sent=sent) == line


def test_a_challenge_is_answered_in_the_header_its_status_names() -> None:
    request = register_request(
        user="alice",
        domain="example.com",
        contact="<sip:alice@10.0.0.1>",
        via="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1",
        call_id="c",
        from_tag="f",
        cseq=7,
        expires=60,
    )
    challenge = 'Digest realm="r", nonce="n", algorithm=MD5, qop="auth"'
    for status, asked, answered in [
        (401, "WWW-Authenticate", "Authorization"),
        (407, "Proxy-Authenticate", "Proxy-Authorization"),
    ]:
        refusal = make_response(request, status, extra=headers((asked, challenge)))
        again = answer_with_credentials(
            request, refusal, username="alice", password="pw", cnonce="x", via="SIP/2.0/UDP v"
        )
        assert again is not None and again.cseq.number == 8 and again.get("Via") == "SIP/2.0/UDP v"
        assert "qop=auth" in (again.get(answered) or "") and again.get("Expires") == "60"
    unknown = make_response(
        request, 401, extra=headers(("WWW-Authenticate", 'Digest realm="r", algorithm=MD4'))
    )
    answered_unknown = answer_with_credentials(
        request, unknown, username="alice", password="pw", cnonce="x", via="v"
    )
    assert answered_unknown is None
