"""A wire tap between one scripted peer and the in-memory network.

The peer's endpoint binds through a ``Tap`` instead of the ``Network`` itself, so the peer
sees every datagram it receives (before its endpoint does) and every one it sends, and
may swallow what it sends (a ``Silent`` phone: its transactions run, nothing leaves).
That is how a peer keeps its ``events`` log without any hook in the SIP stack: the log is
what crossed the wire, as a capture on the phone would show it.

``describe`` names a message the way the log does: ``got INVITE from sip:a@b`` and
``sent INVITE to sip:b@c`` for a dialog-creating INVITE, ``got BYE``, ``sent ACK`` for
other requests, ``got 180`` for responses to INVITE, ``sent 200 (BYE)`` for responses to
anything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, cast

from switchboard.datagrams import DatagramNetwork
from switchboard.sip.message import Message, Request

Receiver = Callable[[bytes], None]
Sender = Callable[[bytes], bool]  # False: swallow the datagram


class _Transport(Protocol):
    def sendto(self, data: bytes, address: tuple[Any, ...]) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...

    def close(self) -> None: ...

    def is_closing(self) -> bool: ...


class Tap:
    """A ``DatagramNetwork`` for one peer: ``on_receive`` sees each datagram before the
    bound protocol does, then ``after_receive`` runs; ``on_send`` sees each datagram
    sent, and drops it by returning False."""

    def __init__(
        self,
        network: DatagramNetwork,
        *,
        on_receive: Receiver,
        after_receive: Callable[[], None],
        on_send: Sender,
    ) -> None:
        self.network = network
        self.on_receive = on_receive
        self.after_receive = after_receive
        self.on_send = on_send

    def bind(self, protocol: asyncio.DatagramProtocol, host: str, port: int = 0) -> object:
        return self.network.bind(_TappedProtocol(protocol, self), host, port)


class _TappedProtocol(asyncio.DatagramProtocol):
    def __init__(self, inner: asyncio.DatagramProtocol, tap: Tap) -> None:
        self.inner = inner
        self.tap = tap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(_TappedTransport(cast(_Transport, transport), self.tap))

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.tap.on_receive(data)
        self.inner.datagram_received(data, addr)
        self.tap.after_receive()

    def error_received(self, exc: Exception) -> None:
        self.inner.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)


class _TappedTransport(asyncio.DatagramTransport):
    def __init__(self, transport: _Transport, tap: Tap) -> None:
        super().__init__()
        self.transport = transport
        self.tap = tap

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if self.tap.on_send(bytes(data)):
            self.transport.sendto(bytes(data), addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def close(self) -> None:
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


def describe(message: Message, *, sent: bool) -> str:
    """The ``events`` line for one message (see the module docstring)."""
    verb = "sent" if sent else "got"
    if isinstance(message, Request):
        if message.method == "INVITE" and message.to.tag is None:
            if sent:
                return f"sent INVITE to {message.uri}"
            return f"got INVITE from {message.from_.uri}"
        return f"{verb} {message.method}"
    method = message.cseq.method
    suffix = "" if method == "INVITE" else f" ({method})"
    return f"{verb} {message.status}{suffix}"
