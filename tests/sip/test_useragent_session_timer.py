"""Session timers between two user agents (RFC 4028): who refreshes, when, and the BYE that
ends a call whose refreshes stopped. Virtual time: every instant is asserted exactly."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.sip.message import Request, Response, headers
from switchboard.sip.session import content_type
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import IncomingCall, OutgoingCall
from switchboard.testing import clock
from switchboard.testing.network import Network
from tests.sip.ua_pair import CALLEE, CALLER, agent, answer, connect, offer, sent, times


def _requests(network: Network, method: str) -> list[Request]:
    return [m for m in sent(network, method) if isinstance(m, Request)]


def test_a_caller_that_refreshes_keeps_the_call_up() -> None:
    """The caller asks for 90 s; the callee names it refresher (§9) and it sends an UPDATE
    every 45 s (§10), each answered and restarting the callee's timer."""
    network = Network()

    async def main() -> tuple[bool, bool, bool]:
        pair = await connect(network, caller={"session_expires": 90}, ring=3.0)
        await asyncio.sleep(300)
        timers = pair.outgoing.session_timer, pair.incoming.session_timer
        assert timers[0] is not None and timers[1] is not None
        return timers[0].we_refresh, timers[1].we_refresh, pair.incoming.ended.done()

    caller_refreshes, callee_refreshes, ended = clock.run(main())
    assert caller_refreshes and not callee_refreshes and not ended
    assert times(network, "UPDATE") == [48.0, 93.0, 138.0, 183.0, 228.0, 273.0]
    invite = _requests(network, "INVITE")[0]
    assert invite.get("Session-Expires") == "90" and invite.get("Supported") == "timer"
    ok = next(r for r in sent(network, "200") if r.cseq.method == "INVITE")
    assert ok.get("Session-Expires") == "90;refresher=uac" and ok.get("Require") == "timer"
    update = _requests(network, "UPDATE")[0]
    assert update.get("Session-Expires") == "90;refresher=uac" and update.body == b""


@pytest.mark.parametrize(("interval", "bye_after"), [(90, 60.0), (1800, 1768.0)])
def test_a_refresh_that_never_comes_ends_the_call_at_the_rfc_time(
    interval: int, bye_after: float
) -> None:
    """The caller goes silent once the call is up (its refreshes are lost): §10, the
    callee sends BYE at interval − min(32, interval/3) after its 2xx, to the millisecond."""
    silent: list[bool] = []
    network = Network(drop=[lambda data, src, dst: bool(silent) and src[0] == CALLER])

    async def main() -> tuple[str, float]:
        pair = await connect(network, caller={"session_expires": interval}, ring=3.0)
        silent.append(True)
        reason = await pair.incoming.ended
        return reason, asyncio.get_running_loop().time()

    reason, ended_at = clock.run(main())
    assert reason == "session_timer" and ended_at == 3.0 + bye_after
    assert times(network, "BYE", CALLEE) == [3.0 + bye_after]
    assert times(network, "UPDATE")[0] == 3.0 + interval / 2  # sent, and lost


def test_as_uac_we_refresh_when_the_2xx_names_us() -> None:
    """We ask for no timer; the callee brings one (§9 "MAY") and names us refresher."""
    network = Network()

    async def main() -> OutgoingCall:
        pair = await connect(network, callee={"session_expires": 120}, ring=1.0)
        await asyncio.sleep(61)
        return pair.outgoing

    call = clock.run(main())
    assert call.state.value == "answered"
    invite = _requests(network, "INVITE")[0]
    assert invite.get("Session-Expires") is None and invite.get("Supported") == "timer"
    assert times(network, "UPDATE") == [61.0]  # answered at 1 s, refreshed at 120 / 2
    update = _requests(network, "UPDATE")[0]
    assert update.get("Session-Expires") == "120;refresher=uac"


def test_a_peer_that_does_not_allow_update_is_refreshed_by_reinvite_with_our_last_sdp() -> None:
    network = Network()

    async def main() -> tuple[bytes, bool]:
        pair = await connect(network, callee={"session_expires": 120})
        pair.outgoing.peer_allows_update = False
        await asyncio.sleep(70)
        return pair.outgoing.negotiation.local_sdp, pair.outgoing.ended.done()

    local, ended = clock.run(main())
    refresh = _requests(network, "INVITE")[-1]
    assert refresh.cseq.number == 2 and refresh.body == local == offer()  # unchanged (§8)
    assert times(network, "INVITE") == [0.0, 60.0] and not ended
    assert times(network, "ACK")[-1] == 60.0


def test_a_too_brief_interval_gets_422_with_min_se_and_the_caller_asks_again() -> None:
    network = Network()
    seen: list[IncomingCall] = []

    async def main() -> Response:
        caller = await agent(network, CALLER, session_expires=90)
        callee = await agent(network, CALLEE, min_se=300)

        def on_invite(call: IncomingCall) -> None:
            seen.append(call)
            call.answer(answer(call.request.body))

        callee.on_invite = on_invite
        target, peer = parse_uri(f"sip:bob@{CALLEE}"), Peer("UDP", CALLEE, 5060)
        return await caller.call(target, peer, from_uri="sip:alice@a", body=offer()).answered

    response = clock.run(main())
    refused = next(r for r in sent(network, "422"))
    assert refused.get("Min-SE") == "300"
    first, second = _requests(network, "INVITE")
    assert first.get("Session-Expires") == "90" and second.get("Session-Expires") == "300"
    assert second.cseq.number == first.cseq.number + 1
    assert response.status == 200 and response.get("Session-Expires") == "300;refresher=uac"
    assert len(seen) == 1  # the engine never saw the too brief INVITE


def test_a_caller_without_timer_support_leaves_the_refreshing_to_us() -> None:
    """A proxy put Session-Expires in an INVITE whose caller does not know timers: the
    callee refreshes (§9: refresher=uas, no Require)."""
    network = Network()

    async def main() -> tuple[OutgoingCall, float]:
        caller, callee = await agent(network, CALLER), await agent(network, CALLEE)
        callee.on_invite = lambda call: call.answer(answer(call.request.body))
        ids = caller.endpoint.ids
        hdrs = headers(
            ("Via", caller.endpoint.via()),
            ("Max-Forwards", "70"),
            ("From", f"<sip:alice@a>;tag={ids.tag()}"),
            ("To", "<sip:bob@b>"),
            ("Call-ID", ids.call_id()),
            ("CSeq", "1 INVITE"),
            ("Contact", caller.endpoint.contact()),
            ("Allow", "INVITE, ACK, BYE, CANCEL, UPDATE"),
            ("Session-Expires", "90"),
        )
        body = offer()
        invite = Request("INVITE", parse_uri(f"sip:bob@{CALLEE}"), hdrs + content_type(body), body)
        call = OutgoingCall(caller, invite, Peer("UDP", CALLEE, 5060))
        caller.endpoint.send_request(invite, call.peer, call.on_response)
        await call.answered
        await asyncio.sleep(100)
        return call, asyncio.get_running_loop().time()

    call, _ = clock.run(main())
    ok = next(r for r in sent(network, "200") if r.cseq.method == "INVITE")
    assert ok.get("Session-Expires") == "90;refresher=uas" and ok.get("Require") is None
    assert times(network, "UPDATE", CALLEE) == [45.0, 90.0]
    assert not call.ended.done()


def test_a_refresher_whose_refresh_gets_no_answer_ends_the_call_at_timer_f() -> None:
    """§10: a refresh that times out (408) ends the dialog with BYE."""
    deaf: list[bool] = []
    network = Network(drop=[lambda data, src, dst: bool(deaf) and src[0] == CALLEE])

    async def main() -> tuple[str, float]:
        pair = await connect(network, caller={"session_expires": 1800})
        deaf.append(True)
        reason = await pair.outgoing.ended
        return reason, asyncio.get_running_loop().time()

    reason, ended_at = clock.run(main())
    assert reason == "dialog_failed,408" and ended_at == 900.0 + 32.0
    assert times(network, "BYE", CALLER) == [932.0]
