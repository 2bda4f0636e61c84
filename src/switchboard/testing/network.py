"""An in-memory datagram network: protocols bind addresses on it, and ``sendto`` hands a
datagram to whoever is bound at the destination, on the next loop iteration (or after
``latency``). A datagram to an address nobody holds is dropped, as UDP to a closed port is;
one to a host name raises ``ValueError`` at once, as production's uvloop does.
``drop`` rules decide losses deterministically (a test names the datagrams it loses), and
every datagram is recorded in ``log``, so a flow can be asserted message by message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Address = tuple[str, int]
DropRule = Callable[[bytes, Address, Address], bool]


@dataclass(frozen=True, slots=True)
class Datagram:
    time: float
    data: bytes
    source: Address
    destination: Address
    dropped: bool


class MemoryDatagramTransport:
    """What a protocol bound on the network holds: the subset of ``DatagramTransport``
    the SIP and RTP edges use."""

    def __init__(self, network: Network, address: Address, protocol: asyncio.DatagramProtocol):
        self.network = network
        self.address = address
        self.protocol: asyncio.DatagramProtocol | None = protocol
        self.closed = False

    def sendto(self, data: bytes, address: tuple[Any, ...]) -> None:
        ipaddress.ip_address(address[0])  # ValueError for a host name, as uvloop raises
        if not self.closed:
            self.network.deliver(bytes(data), self.address, (str(address[0]), int(address[1])))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.address if name == "sockname" else default

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.network.unbind(self.address)
            asyncio.get_running_loop().call_soon(self._lost)

    def _lost(self) -> None:
        # as asyncio's transports do: the protocol is told, then let go (no cycle left)
        protocol, self.protocol = self.protocol, None
        if protocol is not None:
            protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self.closed


@dataclass
class Network:
    latency: float = 0.0
    drop: list[DropRule] = field(default_factory=list)
    log: list[Datagram] = field(default_factory=list)
    _bound: dict[Address, MemoryDatagramTransport] = field(default_factory=dict)
    _ports: itertools.count[int] = field(default_factory=lambda: itertools.count(40000))

    def bind(
        self, protocol: asyncio.DatagramProtocol, host: str, port: int = 0
    ) -> MemoryDatagramTransport:
        """Bind ``protocol`` at (host, port); port 0 picks a free one."""
        while port == 0 or (host, port) in self._bound:
            if port != 0:
                raise OSError(98, f"address {host}:{port} is already bound")
            port = next(self._ports)
        transport = MemoryDatagramTransport(self, (host, port), protocol)
        self._bound[(host, port)] = transport
        protocol.connection_made(transport)  # type: ignore[arg-type]
        return transport

    def unbind(self, address: Address) -> None:
        self._bound.pop(address, None)

    def deliver(self, data: bytes, source: Address, destination: Address) -> None:
        loop = asyncio.get_running_loop()
        dropped = any(rule(data, source, destination) for rule in self.drop)
        self.log.append(Datagram(loop.time(), data, source, destination, dropped))
        if dropped:
            return
        loop.call_later(self.latency, self._arrive, data, source, destination)

    def _arrive(self, data: bytes, source: Address, destination: Address) -> None:
        transport = self._bound.get(destination)
        if transport is not None and not transport.closed and transport.protocol is not None:
            transport.protocol.datagram_received(data, source)

    def first_lines(self, source: Address | None = None) -> list[str]:
        """The first line of each datagram sent (by ``source``), dropped ones included."""
        return [
            d.data.split(b"\r\n", 1)[0].decode(errors="replace")
            for d in self.log
            if source is None or d.source == source
        ]
