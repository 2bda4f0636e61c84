"""Our INVITE's progress as a table (RFC 3261 §9.1, §13.2.2): every state × input pair is
listed, and the CANCEL rules hold on the wire."""

from __future__ import annotations

import asyncio
import gc
import itertools
import weakref

from switchboard.sip.message import Response
from switchboard.sip.outgoing_call import INVITE_TABLE, InviteInput
from switchboard.sip.session import RemoteOffer
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import IncomingCall, InviteState, OutgoingCall
from switchboard.testing import clock
from switchboard.testing.network import Network
from tests.sip.ua_pair import CALLEE, CALLER, agent, answer, connect, lines, offer

_FINAL = (InviteState.ACCEPTED, InviteState.REFUSED)


def test_every_state_and_input_is_listed_except_a_resend_after_cancel_or_final() -> None:
    for state, event in itertools.product(InviteState, InviteInput):
        resend_too_late = event is InviteInput.RESENT and state not in (
            InviteState.CALLING,
            InviteState.PROCEEDING,
        )
        assert ((state, event) in INVITE_TABLE) is not resend_too_late, (state, event)


def test_final_states_are_never_left() -> None:
    for (state, _), (_, new) in INVITE_TABLE.items():
        if state in _FINAL:
            assert new is state


async def _call(network: Network, on_invite: object) -> OutgoingCall:
    caller, callee = await agent(network, CALLER), await agent(network, CALLEE)
    callee.on_invite = on_invite  # type: ignore[assignment]
    target, peer = parse_uri(f"sip:bob@{CALLEE}"), Peer("UDP", CALLEE, 5060)
    return caller.call(target, peer, from_uri="sip:alice@a", body=offer())


def test_a_cancel_asked_before_any_provisional_goes_once_with_the_first() -> None:
    network = Network()

    def ring_twice(call: IncomingCall) -> None:
        call.ring()
        call.ring(183)

    async def main() -> tuple[Response, str, InviteState]:
        call = await _call(network, ring_twice)
        call.cancel()
        assert call.invite_state is InviteState.CANCEL_WAITING and not call.provisional_seen
        assert call.cancel_requested
        response = await call.answered
        return response, await call.ended, call.invite_state

    response, reason, state = clock.run(main())
    assert response.status == 487 and reason == "recv_refuse,487"
    assert state is InviteState.REFUSED
    assert lines(network).count("CANCEL") == 1  # not one per provisional (100, 180, 183)


def test_a_2xx_that_crosses_our_cancel_is_acked_and_the_call_ended_with_bye() -> None:
    network = Network()

    def ring_then_answer(call: IncomingCall) -> None:
        call.ring()
        asyncio.get_running_loop().call_later(1.0, call.answer, answer(call.request.body))

    async def main() -> tuple[Response, str]:
        call = await _call(network, ring_then_answer)
        asyncio.get_running_loop().call_later(1.0, call.cancel)
        response = await call.answered
        return response, await call.ended

    response, reason = clock.run(main())
    assert response.status == 200 and reason == "send_bye"
    flow = lines(network)
    assert flow.index("CANCEL") < flow.index("ACK") < flow.index("BYE")


def test_an_ended_call_still_acks_a_retransmitted_2xx_and_is_not_kept_for_it() -> None:
    """RFC 6026 keeps our INVITE transaction 32 s after its 2xx, and §13.2.2.4 ACKs every
    2xx retransmission; the call that ended is not kept alive that long for it (its whole
    graph was, which the collector then scanned)."""
    network = Network()

    async def main() -> tuple[bool, list[str]]:
        pair = await connect(network)
        ok = next(d for d in network.log if d.data.startswith(b"SIP/2.0 200"))
        pair.outgoing.bye()
        await pair.outgoing.ended
        await asyncio.sleep(10)  # the BYE's transaction is over (Timer K); Timer M is not
        call = weakref.ref(pair.outgoing)
        del pair
        gc.collect()
        mark = len(network.log)
        network.deliver(ok.data, ok.source, ok.destination)  # the 2xx, again
        await asyncio.sleep(0.1)
        return call() is None, [d.data.split(b" ", 1)[0].decode() for d in network.log[mark:]]

    released, sent = clock.run(main())
    assert sent == ["SIP/2.0", "ACK"]  # the 2xx we replayed, and our ACK to it
    assert released


def test_an_ended_call_acks_a_retransmitted_2xx_of_its_reinvite_and_is_not_kept_for_it() -> None:
    """The same for a re-INVITE of ours (a session refresh, a hold): its transaction too
    is kept 32 s after its 2xx."""
    network = Network()

    async def main() -> tuple[bool, list[str]]:
        pair = await connect(network)

        def accept(remote: RemoteOffer) -> None:
            remote.accept(answer(remote.body))

        pair.incoming.on_remote_offer = accept
        reinvited = await pair.outgoing.reinvite(offer(version=2, direction="sendonly"))
        assert reinvited.status == 200
        ok = [d for d in network.log if d.data.startswith(b"SIP/2.0 200")][-1]
        assert b"CSeq: 2 INVITE" in ok.data
        pair.outgoing.bye()
        await pair.outgoing.ended
        await asyncio.sleep(10)  # the BYE's transaction is over; the re-INVITE's is not
        call = weakref.ref(pair.outgoing)
        del pair
        gc.collect()
        mark = len(network.log)
        network.deliver(ok.data, ok.source, ok.destination)  # the re-INVITE's 2xx, again
        await asyncio.sleep(0.1)
        acks = [d.data for d in network.log[mark:] if d.data.startswith(b"ACK")]
        assert len(acks) == 1 and b"CSeq: 2 ACK" in acks[0]
        return call() is None, [d.data.split(b" ", 1)[0].decode() for d in network.log[mark:]]

    released, sent = clock.run(main())
    assert sent == ["SIP/2.0", "ACK"]
    assert released
