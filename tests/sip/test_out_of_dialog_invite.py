"""INVITEs nobody takes are answered once and statelessly (RFC 3261 §8.2.7).

A server transaction would send 100 Trying, then retransmit its final answer on Timer G
for 32 s: eleven datagrams for one, to whatever address the INVITE claimed to come from.
The endpoint runs with a short T1 here, so a retransmission would show within a few tens
of milliseconds; each exchange listens for ``QUIET`` seconds after the answer.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.message import Request, Response, parse_message
from switchboard.sip.transaction.base import Peer, TimerConfig
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import UserAgent
from switchboard.testing.autoanswer import auto_answer
from tests.interop.sipp import free_port
from tests.sip.factories import request

FAST = TimerConfig(t1=0.02, t2=0.08, t4=0.1)
QUIET = 0.25  # > T1 · 2⁳: Timer G would have fired three times by then


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint("127.0.0.1", free_port(), timers=FAST)
    await ep.start()
    yield ep
    await ep.close()


class Phone:
    """A UDP socket that sends requests and collects every datagram that comes back."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.server = ("127.0.0.1", endpoint.listen_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def send(self, message: Request) -> None:
        self.sock.sendto(bytes(message), self.server)

    async def replies(self, quiet: float = QUIET) -> list[Response]:
        """Every datagram until none has come for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        out: list[Response] = []
        while True:
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), quiet)
            except TimeoutError:
                return out
            response = parse_message(data)
            assert isinstance(response, Response)
            out.append(response)

    async def call(self, invite: Request) -> list[int]:
        """Send ``invite``; the statuses up to the 200, which is then ACKed."""
        loop = asyncio.get_running_loop()
        self.send(invite)
        statuses: list[int] = []
        while 200 not in statuses:
            response = parse_message(await asyncio.wait_for(loop.sock_recv(self.sock, 65535), 2))
            assert isinstance(response, Response)
            statuses.append(response.status)
        ack = request(
            "ACK",
            branch="z9hG4bK-ack-" + invite.call_id,
            call_id=invite.call_id,
            to_tag=response.to.tag,
            sent_by=f"127.0.0.1:{self.port}",
        )
        self.send(ack)
        return statuses

    def close(self) -> None:
        self.sock.close()


def _invite(
    phone: Phone, *, call_id: str = "call-1@test", to_tag: str | None = None, body: bytes = b""
) -> Request:
    sent_by = f"127.0.0.1:{phone.port}"
    return request("INVITE", sent_by=sent_by, call_id=call_id, to_tag=to_tag, body=body)


async def test_an_invite_nobody_takes_draws_one_480_and_leaves_no_transaction(
    endpoint: SipEndpoint,
) -> None:
    UserAgent(endpoint)  # no on_invite: the PBX today
    phone = Phone(endpoint)
    try:
        invite = _invite(phone)
        phone.send(invite)
        (answer,) = await phone.replies()
        assert answer.status == 480 and answer.to.tag  # no 100 Trying before it (§8.2.7)
        stats = endpoint.statistics()
        assert stats["server_transactions"] == 0 and stats["stateless_responses"] == 1
        assert stats["retransmitted"] == 0
        phone.send(invite)  # a retransmission gets the very same answer, once
        (again,) = await phone.replies()
        assert bytes(again) == bytes(answer)
        ack = request(
            "ACK", sent_by=f"127.0.0.1:{phone.port}", to_tag=answer.to.tag or ""
        )  # the ACK for a non-2xx carries the INVITE's branch (§17.1.1.3)
        phone.send(ack)
        assert await phone.replies() == []  # ignored, as §8.2.7 says
        assert endpoint.statistics()["server_transactions"] == 0
    finally:
        phone.close()


async def test_an_invite_inside_an_unknown_dialog_draws_one_481(endpoint: SipEndpoint) -> None:
    UserAgent(endpoint)
    phone = Phone(endpoint)
    try:
        phone.send(_invite(phone, to_tag="no-such-dialog"))
        (answer,) = await phone.replies()
        assert answer.status == 481 and answer.to.tag == "no-such-dialog"
        assert endpoint.statistics()["server_transactions"] == 0
    finally:
        phone.close()


async def test_an_invite_for_a_tel_uri_draws_one_416(endpoint: SipEndpoint) -> None:
    UserAgent(endpoint)
    phone = Phone(endpoint)
    try:
        invite = _invite(phone)
        phone.send(Request("INVITE", parse_uri("tel:+81312341234"), invite.headers))
        (answer,) = await phone.replies()
        assert answer.status == 416
    finally:
        phone.close()


async def test_an_endpoint_without_a_user_refuses_an_invite_once_with_501(
    endpoint: SipEndpoint,
) -> None:
    phone = Phone(endpoint)
    try:
        phone.send(_invite(phone))
        (answer,) = await phone.replies()
        assert answer.status == 501 and answer.to.tag
        assert endpoint.statistics()["server_transactions"] == 0
    finally:
        phone.close()


async def test_admit_invite_lets_known_peers_call_and_refuses_the_others(
    endpoint: SipEndpoint,
) -> None:
    ua = UserAgent(endpoint)
    auto_answer(ua)
    known = Phone(endpoint)
    stranger = Phone(endpoint)
    seen: list[Peer] = []

    def admit(invite: Request, peer: Peer) -> bool:
        seen.append(peer)
        return peer.port == known.port

    ua.admit_invite = admit
    try:
        stranger.send(_invite(stranger, call_id="stranger"))
        assert [r.status for r in await stranger.replies()] == [480]
        # Taken: a transaction (100 Trying), then on_invite.
        assert await known.call(_invite(known, call_id="known", body=_OFFER)) == [100, 180, 200]
        assert [peer.port for peer in seen] == [stranger.port, known.port]
    finally:
        known.close()
        stranger.close()


async def test_with_on_invite_set_every_invite_is_taken_as_before(endpoint: SipEndpoint) -> None:
    auto_answer(UserAgent(endpoint))
    phone = Phone(endpoint)
    try:
        assert await phone.call(_invite(phone, body=_OFFER)) == [100, 180, 200]
        assert endpoint.statistics()["stateless_responses"] == 0
    finally:
        phone.close()


_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\n"
)
