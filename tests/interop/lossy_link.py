"""A lossy UDP path between Switchboard and one SIPp peer, for fault tests.

The link listens where Switchboard sends (the peer's configured contact) and relays to the
peer's real port; what the peer answers goes back the same way. It drops the first copy of
each message of the kinds it is told to lose and relays every later copy, so every call
crosses the same losses and can complete only through retransmission (RFC 3261 §17.1.1.2
Timer A, §17.1.2.2 Timer E, §13.3.1.4 for the 2xx, §13.2.2.4 for its ACK). Random loss
(SIPp's ``-lost``) could miss every message whose loss forces a retransmission.

Rules:
- A message's kind is its method for a request, and ``"<status> <CSeq method>"`` for a
  response (``"200 BYE"``); a copy is the same kind, Call-ID and CSeq number.
- In-dialog requests must cross the link too: the peer's Contact names the link's port
  (SIPp ``-key contact_port``), and the peer answers wherever a request came from.
- A datagram that does not parse is relayed as it is.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from switchboard.sip.errors import ParseError
from switchboard.sip.message import Message, Request, parse_message

Address = tuple[str, int]
Copy = tuple[str, str, int]  # kind, Call-ID, CSeq number
HOST = "127.0.0.1"


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    async def bind(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(HOST, port)
        )

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)

    def send(self, data: bytes, addr: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


def kind_of(message: Message) -> str:
    if isinstance(message, Request):
        return message.method
    return f"{message.status} {message.cseq.method}"


class LossyLink:
    """Switchboard sends to ``port``; the peer listens on ``peer_port``."""

    def __init__(self, port: int, peer_port: int, lose: frozenset[str]) -> None:
        self.port = port
        self.peer_port = peer_port
        self.lose = lose
        self.dropped: Counter[str] = Counter()  # by kind
        self.pending: set[Copy] = set()  # lost, and no later copy relayed yet
        self._seen: set[Copy] = set()
        self._changed = asyncio.Event()
        self._server: Address | None = None  # where Switchboard sends from
        self._near = _Socket(self._from_server)
        self._far = _Socket(self._from_peer)

    async def start(self) -> None:
        await self._near.bind(self.port)
        await self._far.bind(0)

    async def recovered(self, kind: str, count: int) -> None:
        """Wait until ``count`` messages of ``kind`` were lost and each got through later."""
        while self.dropped[kind] < count or any(copy[0] == kind for copy in self.pending):
            self._changed.clear()
            await self._changed.wait()

    def close(self) -> None:
        for side in (self._near, self._far):
            if side.transport is not None:
                side.transport.close()

    def _from_server(self, data: bytes, addr: Address) -> None:
        self._server = addr
        if self._passes(data):
            self._far.send(data, (HOST, self.peer_port))

    def _from_peer(self, data: bytes, _addr: Address) -> None:
        if self._server is not None and self._passes(data):
            self._near.send(data, self._server)

    def _passes(self, data: bytes) -> bool:
        try:
            message = parse_message(data)
        except ParseError:
            return True
        kind = kind_of(message)
        copy = (kind, message.call_id, message.cseq.number)
        self._changed.set()
        if kind in self.lose and copy not in self._seen:
            self._seen.add(copy)
            self.pending.add(copy)
            self.dropped[kind] += 1
            return False
        self.pending.discard(copy)
        return True
