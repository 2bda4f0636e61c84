"""SIP over UDP on a socket of Switchboard's own: a busy loop still drains what is queued
at each wake-up, names are never resolved on the way out, and a dual-stack socket reaches
IPv4 peers. Run on both loops: the standard one, and uvloop as ``serve`` runs."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from switchboard.sip.transaction.base import Peer
from switchboard.sip.transport import UdpTransport

Runner = Callable[[Coroutine[Any, Any, Any]], Any]
LOOPS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
QUEUED = 150  # more than uvloop's datagram transport reads in two iterations (32 each)


def _kept(into: list[Any], item: Any) -> bool:
    into.append(item)
    return True


@LOOPS
def test_a_busy_loop_reads_every_queued_datagram_at_its_next_wake_up(run: Runner) -> None:
    async def scenario() -> list[int]:
        got: list[bytes] = []
        udp = UdpTransport(lambda data, _peer: _kept(got, data))
        await udp.open("127.0.0.1", 0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for n in range(QUEUED):
                sender.sendto(b"datagram %d" % n, udp.local_address)
            loop = asyncio.get_running_loop()
            read_by_then: list[int] = []

            def busy(left: int) -> None:  # each loop iteration has 2 ms of other work
                read_by_then.append(len(got))
                time.sleep(0.002)
                if left:
                    loop.call_soon(busy, left - 1)

            loop.call_soon(busy, 5)
            await asyncio.sleep(0.05)
        udp.close()
        assert sorted(got) == sorted(b"datagram %d" % n for n in range(QUEUED))
        return read_by_then

    read_by_then = run(scenario())
    assert max(read_by_then[:3]) == QUEUED  # not 32 (or 1) a loop iteration


@LOOPS
def test_a_host_name_is_refused_without_resolving_it(run: Runner) -> None:
    async def scenario() -> None:
        udp = UdpTransport(lambda _data, _peer: True)
        await udp.open("127.0.0.1", 0)
        with pytest.raises(ValueError, match="not an IP address"):
            udp.send(b"OPTIONS", Peer("UDP", "localhost", 5060))
        udp.close()

    run(scenario())


@LOOPS
def test_a_link_local_peer_is_reached_through_its_zone(run: Runner) -> None:
    """A phone on a link-local address is known by address and zone, as the socket reports
    it (``fe80::1%lo``): that is sent to, not refused as a name; a zone that is not an
    interface name is refused."""

    async def scenario() -> None:
        udp = UdpTransport(lambda _data, _peer: True)
        await udp.open("::", 0)
        udp.send(b"OPTIONS", Peer("UDP", "fe80::1%lo", 5060))
        udp.send(b"OPTIONS", Peer("UDP", f"fe80::1%{socket.if_nametoindex('lo')}", 5060))
        for bad in ("fe80::1%", "fe80::1%example.com/x", "example.com%lo"):
            with pytest.raises(ValueError, match="not an IP"):
                udp.send(b"OPTIONS", Peer("UDP", bad, 5060))
        udp.close()

    run(scenario())


@LOOPS
def test_a_dual_stack_socket_answers_an_ipv4_peer(run: Runner) -> None:
    async def scenario() -> tuple[bytes, Peer]:
        heard: list[Peer] = []
        udp = UdpTransport(lambda _data, peer: _kept(heard, peer))
        await udp.open("::", 0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone:
            phone.bind(("127.0.0.1", 0))
            phone.setblocking(False)
            port = phone.getsockname()[1]
            udp.send(b"OPTIONS", Peer("UDP", "127.0.0.1", port))  # a configured IPv4 peer
            loop = asyncio.get_running_loop()
            data = await asyncio.wait_for(loop.sock_recv(phone, 100), 2)
            phone.sendto(b"200", ("127.0.0.1", udp.local_address[1]))
            while not heard:
                await asyncio.sleep(0.01)
        udp.close()
        return data, heard[0]

    data, peer = run(scenario())
    assert data == b"OPTIONS" and peer.host == "::ffff:127.0.0.1"


@LOOPS
def test_a_socket_closed_by_what_it_received_stops_reading(run: Runner) -> None:
    errors: list[Exception] = []

    class Watched(UdpTransport):
        def error_received(self, exc: Exception) -> None:
            errors.append(exc)

    async def scenario() -> int:
        got: list[bytes] = []

        def receive(data: bytes, _peer: Peer) -> bool:
            got.append(data)
            udp.close()  # as a shutdown started by a message would
            return True

        udp = Watched(receive)
        await udp.open("127.0.0.1", 0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for n in range(5):
                sender.sendto(b"datagram %d" % n, udp.local_address)
            await asyncio.sleep(0.05)
        return len(got)

    assert run(scenario()) == 1 and errors == []  # no read from the closed socket


@LOOPS
def test_a_wildcard_ipv6_socket_is_dual_stack(run: Runner) -> None:
    async def scenario() -> int:
        udp = UdpTransport(lambda _data, _peer: True)
        await udp.open("::", 0)
        assert udp._sock is not None
        v6only = udp._sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        udp.close()
        return v6only

    assert run(scenario()) == 0


def test_the_in_memory_network_refuses_host_names_too() -> None:
    sent: list[object] = []

    class Wire:
        def sendto(self, data: bytes, address: object) -> None:
            sent.append(address)

    udp = UdpTransport(lambda _data, _peer: True)
    udp.connection_made(Wire())  # type: ignore[arg-type]
    udp.send(b"OPTIONS", Peer("UDP", "10.0.0.5", 5060))
    with pytest.raises(ValueError, match="not an IP address"):
        udp.send(b"OPTIONS", Peer("UDP", "pbx.example.com", 5060))
    assert sent == [("10.0.0.5", 5060)]
