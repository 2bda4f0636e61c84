"""A raw SIP peer on a UDP socket for attack tests: it writes requests by hand (so it can
send what a real phone never would) and records every message that reaches it."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from switchboard.sip.digest import answer_challenge
from switchboard.sip.message import Message, Request, Response, parse_message

_counter = itertools.count(1)


class RawSipPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.received: list[Message] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        message = parse_message(data)
        self.received.append(message)
        self.messages.put_nowait(message)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        self.transport.sendto(data, to)

    async def response(self, timeout: float = 3.0) -> Response:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.messages.get()
                if isinstance(message, Response) and message.status >= 200:
                    return message

    def requests(self, method: str) -> list[Request]:
        return [m for m in self.received if isinstance(m, Request) and m.method == method]

    def close(self) -> None:
        self.transport.close()


async def raw_peer(host: str = "127.0.0.1") -> RawSipPeer:
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_datagram_endpoint(RawSipPeer, local_addr=(host, 0))
    return peer


def register_request(
    peer: RawSipPeer,
    user: str,
    contacts: list[str],
    *,
    domain: str = "example.com",
    call_id: str = "reg-attack",
    authorization: str | None = None,
    expires: int = 600,
) -> bytes:
    host, port = peer.address
    lines = [
        f"REGISTER sip:{domain} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK{next(_counter)}",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{domain}>;tag=attacker",
        f"To: <sip:{user}@{domain}>",
        f"Call-ID: {call_id}",
        f"CSeq: {next(_counter)} REGISTER",
        *[f"Contact: {contact}" for contact in contacts],
        f"Expires: {expires}",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()


async def register(
    peer: RawSipPeer,
    server: tuple[str, int],
    user: str,
    password: str,
    contacts: list[str],
    **kw: Any,
) -> Response:
    """REGISTER ``contacts``, answering the digest challenge; the final response."""
    peer.send(register_request(peer, user, contacts, **kw), server)
    challenge = await peer.response()
    if challenge.status != 401:
        return challenge
    authorization = answer_challenge(
        challenge.get_all("WWW-Authenticate")[0],
        method="REGISTER",
        uri=f"sip:{kw.get('domain', 'example.com')}",
        username=user,
        password=password,
        cnonce="c0ffee",
    )
    peer.send(register_request(peer, user, contacts, authorization=authorization, **kw), server)
    return await peer.response()
