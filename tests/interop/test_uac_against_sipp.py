"""A UAC built on the endpoint calls SIPp playing the far phone."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.sip import offer_answer
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.sdp import parse_sdp
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import CallState, Credentials, OutgoingCall, UserAgent
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _offer(call_number: int) -> bytes:
    return bytes(offer_answer.make_offer("127.0.0.1", 30000 + 2 * call_number, str(call_number)))


async def _place(ua: UserAgent, peer: Peer, n: int) -> OutgoingCall:
    target = parse_uri(f"sip:service@127.0.0.1:{peer.port}")
    return ua.call(target, peer, from_uri="sip:tester@127.0.0.1", body=_offer(n))


async def _finish(process: asyncio.subprocess.Process) -> str:
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return out.decode(errors="replace")


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_uac_calls_sipp_uas_and_hangs_up(transport: str) -> None:
    sipp_port = free_port()
    calls = 50
    mode = "u1" if transport == "UDP" else "t1"
    process = await start_sipp(
        [
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            str(sipp_port),
            "-t",
            mode,
            "-m",
            str(calls),
            "-nostdin",
        ]
    )
    await asyncio.sleep(0.3)  # let SIPp bind its socket
    endpoint = SipEndpoint("127.0.0.1", free_port())
    await endpoint.start()
    ua = UserAgent(endpoint, transport=transport)
    peer = Peer(transport, "127.0.0.1", sipp_port)
    try:
        placed = [await _place(ua, peer, n) for n in range(calls)]
        finals = await asyncio.wait_for(asyncio.gather(*(c.answered for c in placed)), 30)
        assert [f.status for f in finals] == [200] * calls
        for n, call in enumerate(placed):
            assert call.final is not None
            # SIPp's answer is a valid RFC 3264 answer to our offer
            negotiated = offer_answer.accept_answer(
                parse_sdp(_offer(n)), parse_sdp(call.final.body)
            )
            assert negotiated.codec.name == "PCMU"
            call.bye()
        output = await _finish(process)
    finally:
        await endpoint.close()
    assert process.returncode == 0, output[-3000:]
    assert all(c.state is CallState.ENDED for c in placed)


async def test_uac_cancels_calls_while_sipp_rings() -> None:
    sipp_port = free_port()
    calls = 20
    process = await start_sipp(
        [
            "-sf",
            str(SCENARIOS / "uas_ring_until_cancel.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(sipp_port),
            "-m",
            str(calls),
            "-nostdin",
        ]
    )
    await asyncio.sleep(0.3)
    endpoint = SipEndpoint("127.0.0.1", free_port())
    await endpoint.start()
    ua = UserAgent(endpoint)
    peer = Peer("UDP", "127.0.0.1", sipp_port)
    try:
        placed = [await _place(ua, peer, n) for n in range(calls)]
        # Half are cancelled before any provisional can have arrived: CANCEL must wait
        # for the 180 (§9.1). The rest are cancelled once they ring.
        for call in placed[: calls // 2]:
            call.cancel()
        await asyncio.sleep(0.5)
        assert all(c.state is CallState.RINGING for c in placed[calls // 2 :])
        for call in placed[calls // 2 :]:
            call.cancel()
        finals = await asyncio.wait_for(asyncio.gather(*(c.answered for c in placed)), 30)
        output = await _finish(process)
    finally:
        await endpoint.close()
    assert [f.status for f in finals] == [487] * calls
    assert process.returncode == 0, output[-3000:]


async def test_uac_answers_a_trunk_digest_challenge_and_a_wrong_password_fails() -> None:
    sipp_port = free_port()
    process = await start_sipp(
        ["-sf", str(SCENARIOS / "uas_digest.xml"), "-inf",
         str(SCENARIOS / "trunk_credentials.csv"), "-i", "127.0.0.1", "-p", str(sipp_port),
         "-m", "2", "-nostdin"]
    )  # fmt: skip
    await asyncio.sleep(0.3)
    endpoint = SipEndpoint("127.0.0.1", free_port())
    await endpoint.start()
    ua = UserAgent(endpoint)
    peer = Peer("UDP", "127.0.0.1", sipp_port)
    target = parse_uri(f"sip:0312341234@127.0.0.1:{sipp_port}")
    try:
        good = ua.call(
            target, peer, from_uri="sip:pbx@127.0.0.1", body=_offer(1),
            credentials=Credentials("trunkuser", "trunk-secret"),
        )  # fmt: skip
        answered = await asyncio.wait_for(good.answered, 10)
        assert answered.status == 200
        assert good.invite.get("Authorization") is not None
        assert good.invite.cseq.number == 2  # a new request in the same call (§22.2)
        good.bye()
        wrong = ua.call(
            target, peer, from_uri="sip:pbx@127.0.0.1", body=_offer(2),
            credentials=Credentials("trunkuser", "not-the-password"),
        )  # fmt: skip
        refused = await asyncio.wait_for(wrong.answered, 10)
        output = await _finish(process)
    finally:
        await endpoint.close()
    assert refused.status == 403
    assert process.returncode == 0, output[-3000:]
