"""Two user agents on the in-memory network and virtual time, with a call between them:
what the in-dialog and session-timer tests start from."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from switchboard.sip import offer_answer
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.headers import Header
from switchboard.sip.message import Request, Response, parse_message
from switchboard.sip.sdp import parse_sdp
from switchboard.sip.session import content_type
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import parse_uri
from switchboard.sip.useragent import IncomingCall, OutgoingCall, Session, UserAgent
from switchboard.testing.network import Network

CALLER, CALLEE = "10.0.0.1", "10.0.0.2"


def offer(host: str = CALLER, *, version: int = 1, direction: str = "sendrecv") -> bytes:
    description = offer_answer.make_offer(
        host, 4000, f"s-{host}", version=version, direction=direction
    )
    return bytes(description)


def answer(
    offered: bytes, host: str = CALLEE, *, supported: tuple[str, ...] = ("PCMU", "PCMA")
) -> bytes:
    description, _ = offer_answer.answer(
        parse_sdp(offered), host, 5000, f"s-{host}", supported=supported
    )
    return bytes(description)


async def agent(network: Network, host: str, **options: Any) -> UserAgent:
    endpoint = SipEndpoint(host, 5060, network=network)
    ua = UserAgent(endpoint, **options)
    await endpoint.start()
    return ua


@dataclass
class Pair:
    network: Network
    caller: UserAgent
    callee: UserAgent
    outgoing: OutgoingCall
    incoming: IncomingCall
    answered_at: float
    mark: int  # datagrams sent until then

    def lines(self) -> list[str]:
        """Method or status of every datagram sent since the call was set up."""
        return [_name(d.data) for d in self.network.log[self.mark :]]


async def connect(
    network: Network,
    *,
    caller: dict[str, Any] | None = None,
    callee: dict[str, Any] | None = None,
    ring: float = 0.0,
    supported: tuple[str, ...] = ("PCMU", "PCMA"),
) -> Pair:
    """A call from CALLER to CALLEE, answered after ``ring`` seconds and ACKed."""
    caller_ua = await agent(network, CALLER, **(caller or {}))
    callee_ua = await agent(network, CALLEE, **(callee or {}))
    received: list[IncomingCall] = []

    def on_invite(call: IncomingCall) -> None:
        received.append(call)
        body = answer(call.request.body, supported=supported)
        asyncio.get_running_loop().call_later(ring, call.answer, body)

    callee_ua.on_invite = on_invite
    target, peer = parse_uri(f"sip:bob@{CALLEE}"), Peer("UDP", CALLEE, 5060)
    call = caller_ua.call(target, peer, from_uri="sip:alice@a", body=offer())
    await call.answered
    await received[0].acked
    now = asyncio.get_running_loop().time()
    return Pair(network, caller_ua, callee_ua, call, received[0], now, len(network.log))


def send_in_dialog(
    session: Session,
    method: str,
    body: bytes = b"",
    *,
    extra: tuple[Header, ...] = (),
    ack_body: bytes = b"",
) -> asyncio.Future[Response]:
    """Send a request in ``session``'s dialog the way a peer might, past the session's own
    rules (an offerless re-INVITE, a second re-INVITE); a 2xx to INVITE is ACKed with
    ``ack_body``."""
    ua, dialog = session.ua, session.dialog
    assert dialog is not None
    contact = (Header("Contact", ua.endpoint.contact()),)
    request = dialog.create_request(
        method, ua.endpoint.via(), extra=contact + extra + content_type(body), body=body
    )
    future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
    callback = functools.partial(_final, session, request, future, ack_body)
    ua.endpoint.send_request(request, session.peer, callback)
    return future


def _final(
    session: Session,
    request: Request,
    future: asyncio.Future[Response],
    ack_body: bytes,
    response: Response,
) -> None:
    if response.status < 200 or future.done():
        return
    if request.method == "INVITE" and response.status < 300:
        assert session.dialog is not None
        ack = session.dialog.create_request(
            "ACK", session.ua.endpoint.via(), extra=content_type(ack_body), body=ack_body
        )
        session.ua.endpoint.send_stateless(ack, session.peer)
    future.set_result(response)


def lines(network: Network) -> list[str]:
    """Method or status of every datagram sent."""
    return [_name(d.data) for d in network.log]


def times(network: Network, name: str, source: str | None = None) -> list[float]:
    return [
        d.time
        for d in network.log
        if _name(d.data) == name and (source is None or d.source[0] == source)
    ]


def sent(network: Network, name: str) -> list[Request | Response]:
    return [parse_message(d.data) for d in network.log if _name(d.data) == name]


def _name(data: bytes) -> str:
    first = data.split(b"\r\n", 1)[0].decode()
    return first.split(" ")[1] if first.startswith("SIP/2.0") else first.split(" ")[0]


def later(delay: float, action: Callable[..., object], *args: object) -> None:
    asyncio.get_running_loop().call_later(delay, action, *args)
