"""The harness itself: SIP endpoints on an in-memory network and virtual time. Whole
exchanges with their RFC 3261 timers run in milliseconds, and every time is exact."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.sip import offer_answer
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.message import Response
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import OutgoingCall, UserAgent
from switchboard.testing import clock
from switchboard.testing.autoanswer import auto_answer
from switchboard.testing.network import Network

CALLER, CALLEE = "10.0.0.1", "10.0.0.2"


async def _user_agent(network: Network, host: str) -> UserAgent:
    endpoint = SipEndpoint(host, 5060, network=network)
    ua = UserAgent(endpoint)
    await endpoint.start()
    return ua


def _call(ua: UserAgent, host: str = CALLEE) -> OutgoingCall:
    offer = bytes(offer_answer.make_offer(CALLER, 4000, "s1"))
    return ua.call(
        parse_uri(f"sip:bob@{host}"), Peer("UDP", host, 5060), from_uri="sip:alice@a", body=offer
    )


def _invites(network: Network) -> list[float]:
    return [d.time for d in network.log if d.data.startswith(b"INVITE ")]


def test_a_call_rings_for_three_seconds_is_answered_and_hung_up() -> None:
    network = Network()

    async def main() -> tuple[Response, float, str]:
        caller, callee = await _user_agent(network, CALLER), await _user_agent(network, CALLEE)
        auto_answer(callee, ring_seconds=3.0)
        call = _call(caller)
        answer = await call.answered
        answered_at = asyncio.get_running_loop().time()
        call.bye()
        reason = await call.ended
        await asyncio.sleep(40)  # every transaction ends; nothing is retransmitted
        return answer, answered_at, reason

    answer, answered_at, reason = clock.run(main())
    assert answer.status == 200 and answered_at == 3.0 and reason == "send_bye"
    assert [line.split(" sip:")[0] for line in network.first_lines()] == [
        "INVITE",
        "SIP/2.0 100 Trying",
        "SIP/2.0 180 Ringing",
        "SIP/2.0 200 OK",
        "ACK",
        "BYE",
        "SIP/2.0 200 OK",
    ]


def test_an_invite_nobody_answers_is_retransmitted_by_timer_a_until_timer_b() -> None:
    """RFC 3261 §17.1.1.2: A doubles from T1 (0.5 s); B = 64·T1 ends it as 408."""
    network = Network()

    async def main() -> tuple[Response, float]:
        caller = await _user_agent(network, CALLER)
        call = _call(caller, "10.0.0.99")  # nobody is bound there
        answer = await call.answered
        return answer, asyncio.get_running_loop().time()

    answer, at = clock.run(main())
    assert answer.status == 408 and at == 32.0
    assert _invites(network) == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]


def test_a_lost_invite_is_answered_after_its_first_retransmission() -> None:
    lost: list[bytes] = []

    def lose_first_invite(data: bytes, source: object, destination: object) -> bool:
        if data.startswith(b"INVITE ") and not lost:
            lost.append(data)
            return True
        return False

    network = Network(drop=[lose_first_invite])

    async def main() -> float:
        caller, callee = await _user_agent(network, CALLER), await _user_agent(network, CALLEE)
        auto_answer(callee, ring_seconds=3.0)
        await _call(caller).answered
        return asyncio.get_running_loop().time()

    assert clock.run(main()) == 3.5  # T1, then three seconds of ringing
    assert [d.dropped for d in network.log if d.data.startswith(b"INVITE ")] == [True, False]


def test_a_peer_we_cannot_send_to_fails_its_transaction_with_503_at_once() -> None:
    """RFC 3261 §8.1.3.1: a transport error is a 503 to the TU, not an exception."""
    network = Network()

    async def main() -> tuple[Response, float]:
        caller = await _user_agent(network, CALLER)
        call = _call(caller, "phone.invalid")  # a host name: the send raises
        answer = await call.answered
        return answer, asyncio.get_running_loop().time()

    answer, at = clock.run(main())
    assert answer.status == 503 and at == 0.0 and network.log == []


def test_latency_is_added_to_every_hop() -> None:
    network = Network(latency=0.040)

    async def main() -> float:
        caller, callee = await _user_agent(network, CALLER), await _user_agent(network, CALLEE)
        auto_answer(callee)
        await _call(caller).answered
        return asyncio.get_running_loop().time()

    assert clock.run(main()) == pytest.approx(0.080)  # INVITE there, 200 back


def test_waiting_for_something_that_can_never_happen_fails_at_once() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(clock.IdleForeverError):
        clock.run(main())
