"""Requests inside an established dialog (RFC 3261 §12.2, §14; RFC 3311): re-INVITE and
UPDATE handed to the session's hook, glare, refreshes answered by the user agent, OPTIONS.
Two user agents on the in-memory network, on virtual time: every time is exact."""

from __future__ import annotations

import asyncio

from switchboard.sip.headers import Header
from switchboard.sip.in_dialog import Negotiation
from switchboard.sip.message import Response
from switchboard.sip.sdp import parse_sdp
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import CallState, IncomingCall, RemoteOffer
from switchboard.testing import clock
from switchboard.testing.network import Network
from tests.sip.ua_pair import (
    CALLEE,
    CALLER,
    agent,
    answer,
    connect,
    later,
    lines,
    offer,
    send_in_dialog,
    sent,
    times,
)

HOLD = offer(version=2, direction="sendonly")


def _collect(offers: list[RemoteOffer], *, reply: bool = True) -> object:
    """A hook that records each offer and, with ``reply``, answers it at once."""

    def hook(remote: RemoteOffer) -> None:
        offers.append(remote)
        if reply:
            remote.accept(answer(remote.body))

    return hook


def test_a_hold_reinvite_reaches_the_hook_and_its_answer_goes_back() -> None:
    network = Network()
    offers: list[RemoteOffer] = []

    async def main() -> tuple[Response, bytes, list[str]]:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers)  # type: ignore[assignment]
        response = await pair.outgoing.reinvite(HOLD)
        acked = await offers[0].acked
        assert pair.outgoing.negotiation.state is Negotiation.STABLE
        assert pair.incoming.negotiation.state is Negotiation.STABLE
        assert pair.outgoing.negotiation.local_sdp == HOLD
        assert pair.incoming.negotiation.remote_sdp == HOLD
        assert pair.outgoing.state is pair.incoming.state is CallState.ANSWERED
        return response, acked, pair.lines()

    response, acked, flow = clock.run(main())
    (remote,) = offers
    assert remote.method == "INVITE" and b"a=sendonly" in remote.body
    assert response.status == 200 and b"a=recvonly" in response.body
    assert response.get("Supported") == "timer" and response.get("Contact")
    assert "UPDATE" in response.get_all("Allow")
    assert acked == b""  # the ACK of a re-INVITE that carried the offer has no body
    assert flow == ["INVITE", "100", "200", "ACK"]
    reinvite = sent(network, "INVITE")[-1]
    assert reinvite.cseq.number == 2 and reinvite.get("Supported") == "timer"


def test_an_update_reaches_the_hook_likewise_and_needs_no_ack() -> None:
    network = Network()
    offers: list[RemoteOffer] = []

    async def main() -> tuple[Response, bytes, list[str]]:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers)  # type: ignore[assignment]
        response = await pair.outgoing.offer(HOLD, "UPDATE")
        return response, await offers[0].acked, pair.lines()

    response, acked, flow = clock.run(main())
    assert offers[0].method == "UPDATE" and b"a=sendonly" in offers[0].body
    assert response.status == 200 and b"a=recvonly" in response.body and acked == b""
    assert flow == ["UPDATE", "200"]


def test_the_hook_may_answer_later_and_the_reinvite_is_trying_meanwhile() -> None:
    network = Network()

    def hook(remote: RemoteOffer) -> None:
        later(2.0, remote.accept, answer(remote.body))

    async def main() -> tuple[Response, float, float]:
        pair = await connect(network, ring=1.0)
        pair.incoming.on_remote_offer = hook
        response = await pair.outgoing.reinvite(HOLD)
        return response, pair.answered_at, asyncio.get_running_loop().time()

    response, answered_at, at = clock.run(main())
    assert response.status == 200 and at == answered_at + 2.0
    assert times(network, "100") == [0.0, answered_at]  # the INVITE's, the re-INVITE's at once
    assert times(network, "INVITE") == [0.0, answered_at]  # Trying stopped Timer A


def test_without_a_hook_a_change_of_media_gets_488_and_the_call_goes_on() -> None:
    network = Network()

    async def main() -> tuple[Response, str]:
        pair = await connect(network)
        response = await pair.outgoing.reinvite(HOLD)
        assert pair.outgoing.state is CallState.ANSWERED
        assert pair.outgoing.negotiation.local_sdp == offer()  # the old session stands
        pair.outgoing.bye()
        return response, await pair.incoming.ended

    response, reason = clock.run(main())
    assert response.status == 488 and reason == "recv_bye"


def test_reinvites_that_cross_both_get_491() -> None:
    """§14.2: each side sees the other's re-INVITE while its own is pending."""
    network = Network()
    offers: list[RemoteOffer] = []

    async def main() -> tuple[Response, Response]:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers)  # type: ignore[assignment]
        pair.outgoing.on_remote_offer = _collect(offers)  # type: ignore[assignment]
        ours = pair.outgoing.reinvite(HOLD)
        theirs = pair.incoming.reinvite(offer(CALLEE, version=2, direction="sendonly"))
        results = await ours, await theirs
        for session in (pair.outgoing, pair.incoming):
            assert session.negotiation.state is Negotiation.STABLE
            assert session.state is CallState.ANSWERED
        return results

    ours, theirs = clock.run(main())
    assert ours.status == theirs.status == 491 and offers == []


def test_an_offer_while_ours_is_outstanding_is_refused_without_sending() -> None:
    network = Network()

    async def main() -> tuple[Response, Response, Response]:
        pair = await connect(network)
        first = pair.outgoing.reinvite(HOLD)
        second = pair.outgoing.reinvite(offer(version=3))
        update = pair.outgoing.offer(offer(version=3), "UPDATE")
        assert second.done() and update.done()
        return await first, second.result(), update.result()

    first, second, update = clock.run(main())
    assert first.status == 488 and second.status == update.status == 491
    assert len(sent(network, "INVITE")) == 2 and sent(network, "UPDATE") == []


def test_an_update_carrying_an_offer_while_ours_is_outstanding_gets_491() -> None:
    """RFC 3311 §5.2."""
    network = Network()

    async def main() -> Response:
        pair = await connect(network)
        network.drop.append(lambda data, src, dst: data.startswith(b"INVITE "))
        pair.outgoing.reinvite(HOLD)  # lost: our offer stays outstanding
        return await send_in_dialog(pair.incoming, "UPDATE", offer(CALLEE, version=2))

    assert clock.run(main()).status == 491


def test_a_second_reinvite_while_the_hook_holds_the_first_gets_500_with_retry_after() -> None:
    network = Network()
    offers: list[RemoteOffer] = []

    async def main() -> Response:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers, reply=False)  # type: ignore[assignment]
        send_in_dialog(pair.outgoing, "INVITE", HOLD)
        await asyncio.sleep(0.01)
        return await send_in_dialog(pair.outgoing, "INVITE", offer(version=3))

    response = clock.run(main())
    retry_after = response.get("Retry-After")
    assert response.status == 500 and retry_after is not None and 0 <= int(retry_after) <= 10
    assert len(offers) == 1


def test_an_update_without_an_offer_is_answered_by_the_user_agent() -> None:
    network = Network()
    offers: list[RemoteOffer] = []

    async def main() -> Response:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers)  # type: ignore[assignment]
        return await pair.outgoing.offer(b"", "UPDATE")

    response = clock.run(main())
    assert response.status == 200 and response.body == b"" and offers == []


def test_an_offerless_reinvite_without_a_hook_gets_our_last_description() -> None:
    """§14.2: the 200 carries an offer, the ACK the answer."""
    network = Network()

    async def main() -> tuple[Response, bytes, bytes]:
        pair = await connect(network)
        ours = pair.incoming.negotiation.local_sdp
        response = await send_in_dialog(pair.outgoing, "INVITE", ack_body=offer(version=2))
        await asyncio.sleep(0.01)
        assert pair.incoming.negotiation.state is Negotiation.STABLE
        return response, ours, pair.incoming.negotiation.remote_sdp

    response, ours, remote = clock.run(main())
    assert response.status == 200 and response.body == ours and remote == offer(version=2)


def test_an_offerless_reinvite_goes_to_the_hook_which_offers_and_gets_the_ack_answer() -> None:
    network = Network()
    offers: list[RemoteOffer] = []
    fresh = offer(CALLEE, version=7)

    def hook(remote: RemoteOffer) -> None:
        offers.append(remote)
        remote.accept(fresh)

    async def main() -> tuple[Response, bytes]:
        pair = await connect(network)
        pair.incoming.on_remote_offer = hook
        response = await send_in_dialog(pair.outgoing, "INVITE", ack_body=answer(fresh, CALLER))
        return response, await offers[0].acked

    response, acked = clock.run(main())
    assert offers[0].body == b"" and response.status == 200 and response.body == fresh
    assert acked == answer(fresh, CALLER)


def test_an_unchanged_offer_is_a_refresh_answered_without_the_hook() -> None:
    """RFC 3264 §8: the same o= version means the same session."""
    network = Network()
    offers: list[RemoteOffer] = []

    async def main() -> tuple[Response, bytes]:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers)  # type: ignore[assignment]
        return await pair.outgoing.reinvite(offer()), pair.incoming.negotiation.local_sdp

    response, ours = clock.run(main())
    assert response.status == 200 and response.body == ours and offers == []


def test_an_unchanged_offer_is_answered_with_only_the_formats_it_lists() -> None:
    """The caller offered PCMU and PCMA, the callee answered PCMU alone; its refresh offers
    that answer again, and ours may list only what it offers (RFC 3264 §6.1)."""
    network = Network()

    async def main() -> Response:
        pair = await connect(network, supported=("PCMU",))
        return await pair.incoming.reinvite(pair.incoming.negotiation.local_sdp)

    response = clock.run(main())
    description = parse_sdp(response.body)
    assert description.media[0].formats == ("0", "101")
    assert description.origin.session_version == 2  # changed from our offer: a new version


def test_options_inside_a_dialog_are_answered_with_our_capabilities() -> None:
    network = Network()

    async def main() -> Response:
        pair = await connect(network)
        return await send_in_dialog(pair.outgoing, "OPTIONS")

    response = clock.run(main())
    assert response.status == 200 and response.to.tag
    assert "UPDATE" in response.get_all("Allow") and response.get("Supported") == "timer"
    assert response.get("Accept") == "application/sdp"


def test_a_reinvite_answered_481_ends_the_dialog_with_bye() -> None:
    """§12.2.1.2: the peer lost the dialog (a reboot, say)."""
    network = Network()

    async def main() -> tuple[Response, str, list[str]]:
        pair = await connect(network)
        pair.callee.dialogs.clear()
        response = await pair.outgoing.reinvite(HOLD)
        reason = await pair.outgoing.ended
        await asyncio.sleep(1)
        return response, reason, pair.lines()

    response, reason, flow = clock.run(main())
    assert response.status == 481 and reason == "dialog_failed,481"
    assert flow == ["INVITE", "481", "ACK", "BYE", "481"]  # stateless answers (§8.2.7)


def test_a_reinvite_nobody_answers_ends_the_dialog_at_timer_b() -> None:
    network = Network()

    async def main() -> tuple[Response, str, float, float]:
        pair = await connect(network)
        network.drop.append(lambda data, src, dst: dst[0] == CALLEE)
        response = await pair.outgoing.reinvite(HOLD)
        now = asyncio.get_running_loop().time()
        return response, await pair.outgoing.ended, now, pair.answered_at

    response, reason, at, answered_at = clock.run(main())
    assert response.status == 408 and reason == "dialog_failed,408"
    assert at == answered_at + 32.0  # 64·T1


def test_a_bye_while_the_hook_holds_a_reinvite_answers_it_487() -> None:
    """§15.1.2: a session that ends answers its pending requests 487."""
    network = Network()
    offers: list[RemoteOffer] = []

    async def main() -> tuple[Response, bytes]:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers, reply=False)  # type: ignore[assignment]
        future = pair.outgoing.reinvite(HOLD)
        await asyncio.sleep(0.01)
        pair.incoming.bye()
        response = await future
        offers[0].accept(answer(HOLD))  # too late: nothing is sent
        return response, await offers[0].acked

    response, acked = clock.run(main())
    assert response.status == 487 and acked == b""
    assert lines(network)[-4:] == ["BYE", "487", "200", "ACK"]


def test_the_2xx_to_a_reinvite_is_sent_again_until_its_ack() -> None:
    """§13.3.1.4 for a re-INVITE: the first ACK is lost, the 200 comes again after T1."""
    network = Network()
    offers: list[RemoteOffer] = []
    acks: list[bytes] = []

    def lose_first_reinvite_ack(data: bytes, source: object, destination: object) -> bool:
        if data.startswith(b"ACK ") and b"CSeq: 2 ACK" in data and not acks:
            acks.append(data)
            return True
        return False

    async def main() -> float:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers)  # type: ignore[assignment]
        network.drop.append(lose_first_reinvite_ack)
        await pair.outgoing.reinvite(HOLD)
        await offers[0].acked
        await asyncio.sleep(10)
        return pair.answered_at

    at = clock.run(main())
    assert times(network, "200", CALLEE)[-2:] == [at, at + 0.5]
    assert times(network, "ACK", CALLER)[-2:] == [at, at + 0.5]
    assert len(sent(network, "200")) == 3  # to the INVITE, to the re-INVITE and once more


def test_reject_carries_extra_headers_such_as_a_challenge() -> None:
    network = Network()
    challenge = Header("Proxy-Authenticate", 'Digest realm="example.com", nonce="abc"')

    async def main() -> Response:
        caller, callee = await agent(network, CALLER), await agent(network, CALLEE)

        def on_invite(call: IncomingCall) -> None:
            call.reject(407, extra=(challenge,))

        callee.on_invite = on_invite
        target, peer = parse_uri(f"sip:bob@{CALLEE}"), Peer("UDP", CALLEE, 5060)
        return await caller.call(target, peer, from_uri="sip:alice@a", body=offer()).answered

    response = clock.run(main())
    assert response.status == 407 and response.get("Proxy-Authenticate") == challenge.value


def test_an_offer_before_the_answer_or_after_the_end_is_refused_without_sending() -> None:
    """§14.1: no re-INVITE while the INVITE is in progress; none in a dialog that is gone."""
    network = Network()

    async def main() -> tuple[Response, Response, Response]:
        caller, callee = await agent(network, CALLER), await agent(network, CALLEE)
        ringing: list[IncomingCall] = []

        def on_invite(call: IncomingCall) -> None:
            ringing.append(call)
            call.ring()

        callee.on_invite = on_invite
        target, peer = parse_uri(f"sip:bob@{CALLEE}"), Peer("UDP", CALLEE, 5060)
        call = caller.call(target, peer, from_uri="sip:alice@a", body=offer())
        await asyncio.sleep(1)
        early = ringing[0].offer(offer(CALLEE), "UPDATE")
        ringing[0].answer(answer(call.invite.body))
        await call.answered
        call.bye()
        await ringing[0].ended
        return early.result(), call.reinvite(HOLD).result(), ringing[0].reinvite(HOLD).result()

    early, ours, theirs = clock.run(main())
    assert early.status == 491 and ours.status == theirs.status == 481
    assert sent(network, "UPDATE") == [] and len(sent(network, "INVITE")) == 1


def test_an_offerless_reinvite_that_refreshes_the_timer_is_answered_without_the_hook() -> None:
    """RFC 4028 §7.4: a re-INVITE carrying Session-Expires and no offer is a refresh."""
    network = Network()
    offers: list[RemoteOffer] = []

    async def main() -> tuple[Response, bytes]:
        pair = await connect(network)
        pair.incoming.on_remote_offer = _collect(offers)  # type: ignore[assignment]
        refresh = (Header("Session-Expires", "1800;refresher=uac"), Header("Supported", "timer"))
        response = await send_in_dialog(
            pair.outgoing, "INVITE", extra=refresh, ack_body=pair.outgoing.negotiation.local_sdp
        )
        return response, pair.incoming.negotiation.local_sdp

    response, ours = clock.run(main())
    assert response.status == 200 and response.body == ours and offers == []
    assert response.get("Session-Expires") == "1800;refresher=uac"
