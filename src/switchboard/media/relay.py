"""The RTP relay: every call's media anchored on Switchboard's own ports.

A ``MediaSession`` has two legs, ``a`` (the member's phone) and ``b`` (the destination).
Each leg owns an RTP and an RTCP socket on an even/odd port pair from ``rtp_ports``.

Rules:
- Latching (symmetric RTP, RFC 4961; the NAT allowance of RFC 3550 §8.2 practice): a leg
  accepts media only from its peer. Until the peer's SDP is known, nothing is accepted.
  Then the first packet from the SDP's exact address, or, within ``LATCH_WINDOW`` seconds
  of that SDP, from another port of the SDP's IP or of the IP its signalling came from
  (phones behind NAT send from elsewhere than their SDP says), fixes where the peer really
  is; from then on packets from any other source are counted as ``rejected`` and dropped,
  with one exception: within the window, a latch taken elsewhere yields to the SDP's own
  port (its exact address, or its port on an allowed IP). A forked call's losing
  terminal, whose 2xx crossed our CANCEL, may stream a few packets from the same IP before
  our BYE lands; the answering terminal's media must not be locked out by them.
  A stranger's address is never latched, and a new SDP (re-INVITE) opens a new window only
  to the addresses it names. Before anything was received, packets go to the SDP address.
- Relay: a packet from one leg goes to the other unchanged when both legs agreed the same
  codec (SSRC, sequence, timestamp pass through). PCMU ⇄ PCMA are converted with G.711's
  tables and the payload type rewritten; telephone-event (RFC 4733) is mapped to the other
  leg's payload number, or dropped if that leg did not negotiate it. RTCP is relayed as is.
- Ringback: ``start_ringback(leg)`` sends a tone toward that leg, frames of the leg's ptime
  (20 ms by default) paced on an absolute schedule (no drift), in the leg's codec, with its
  own SSRC. It stops when the
  other leg's media starts flowing (early media, RFC 3960 style) or on ``bridge()``; the
  first relayed packet then carries the marker bit (RFC 3550 §5.1: a new talkspurt).
- Media toward a leg flows only once the session is bridged, or the other leg sends early
  media while this one hears ringback; before that, packets are counted and dropped.
- Inactivity, per leg as a PBX's RTP timeout is (a phone that vanishes without BYE leaves
  its leg silent while the far end still talks): ``idle_for(now)`` is the longest silence,
  RTP or RTCP, of a leg that should be sending: leg a from the start of the watch, leg b
  from the bridge, and neither when we told it not to send (sendonly/inactive toward it).
- A transfer or a park ``detach``es the leg whose peer left: its SDP and latch are
  forgotten (the old peer's stray packets are refused), nothing flows until the next
  ``bridge()``, and its silence is not watched meanwhile.
- ``close()`` releases the ports on every path; it is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket as stdsocket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from switchboard.datagrams import DatagramNetwork
from switchboard.media import g711, rtp, tones
from switchboard.media.ports import PortAllocator, PortsExhaustedError
from switchboard.media.stats import LegStats
from switchboard.sip.ids import BufferedSystemRandom
from switchboard.sip.offer_answer import NegotiatedAudio

log = logging.getLogger("switchboard.media")
Address = tuple[str, int]
# Seconds after a peer's SDP during which its media may still come from another port (NAT).
LATCH_WINDOW = 10.0


@dataclass(frozen=True, slots=True)
class LegMedia:
    """What a leg's peer agreed to, as far as the relay cares (from ``NegotiatedAudio``).

    ``direction`` is Switchboard's own direction on that leg (RFC 3264 §6.1): on hold the
    phone says ``sendonly`` and we are ``recvonly``, so nothing is sent toward it.
    """

    address: Address
    codec: str  # "PCMU" | "PCMA"
    payload_type: int
    telephone_event: int | None = None
    direction: str = "sendrecv"
    ptime: int = 20  # ms of audio per packet the peer asked for (a=ptime)

    @classmethod
    def from_negotiated(cls, negotiated: NegotiatedAudio) -> LegMedia:
        event = negotiated.telephone_event
        return cls(
            (negotiated.remote_address, negotiated.remote_port),
            negotiated.codec.name.upper(),
            negotiated.codec.payload_type,
            event.payload_type if event else None,
            negotiated.direction,
            negotiated.ptime if 10 <= negotiated.ptime <= 60 else 20,
        )

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


def _drop(_data: bytes, _source: Address) -> None:
    """A closed leg's socket ignores what still arrives before it really closes."""


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, Address], None]) -> None:
        self.on_packet = on_packet
        self.transport: Any = None  # uvloop's UDP transport is not a DatagramTransport
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # the socket really closes a loop iteration later
        elif not self.closed.done():
            self.closed.set_result(None)  # never opened

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on_packet(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("rtp socket error: %s", exc)  # ICMP port unreachable from a gone peer

    def send(self, data: bytes, address: Address) -> None:
        if self.transport is not None:
            self.transport.sendto(data, address)


class LegSnapshot(NamedTuple):
    media: LegMedia | None
    latched: Address | None
    latched_rtcp: Address | None
    peer_hosts: frozenset[str]
    latch_until: float


class Leg:
    def __init__(self, name: str, port: int, host: str, clock: Callable[[], float]) -> None:
        self.name = name
        self.port = port
        self.host = host
        self.clock = clock
        self.media: LegMedia | None = None
        self.latched: Address | None = None
        self.latched_rtcp: Address | None = None
        self.peer_hosts: frozenset[str] = frozenset()  # IPs allowed to latch this leg
        self.latch_until = 0.0
        self.stats = LegStats()
        self.counted = False  # its stats joined the relay's totals (it was closed)
        self.rtp = _Socket(lambda data, source: None)
        self.rtcp = _Socket(lambda data, source: None)

    @property
    def local(self) -> Address:
        return (self.host, self.port)

    @property
    def destination(self) -> Address | None:
        if self.latched is not None:
            return self.latched
        return self.media.address if self.media else None

    def set_media(self, media: LegMedia, signalling_host: str | None = None) -> None:
        """The peer's (new) SDP, and the IP its signalling came from: a new address means
        the latch must be learnt again, from the addresses this SDP allows only."""
        if self.media is None or self.media.address != media.address:
            self.latched = self.latched_rtcp = None
        if self.latched is None:  # the window runs from the latest SDP (183, then 200)
            self.latch_until = self.clock() + LATCH_WINDOW
        self.peer_hosts = frozenset(filter(None, (media.address[0], signalling_host)))
        self.media = media

    def snapshot(self) -> LegSnapshot:
        """What ``set_media`` changes, to put back if a new offer is refused."""
        return LegSnapshot(
            self.media, self.latched, self.latched_rtcp, self.peer_hosts, self.latch_until
        )

    def restore(self, snapshot: LegSnapshot) -> None:
        self.media = snapshot.media
        self.latched, self.latched_rtcp = snapshot.latched, snapshot.latched_rtcp
        self.peer_hosts, self.latch_until = snapshot.peer_hosts, snapshot.latch_until

    def is_sdp_port(self, source: Address, rtcp: bool) -> bool:
        """Whether ``source`` is where the SDP said the peer is: its exact address, or,
        within the window, its port on an allowed IP (the peer's NAT kept the port)."""
        if self.media is None:
            return False
        host, port = self.media.address
        port = port + 1 if rtcp else port
        if source == (host, port):
            return True
        return source[1] == port and source[0] in self.peer_hosts and self.in_window()

    def in_window(self) -> bool:
        return self.clock() <= self.latch_until

    def may_latch(self, source: Address, rtcp: bool) -> bool:
        """Whether an unlatched leg may take ``source`` as its peer (see the module rules)."""
        if self.media is None:
            return False
        host, port = self.media.address
        if source == (host, port + 1 if rtcp else port):
            return True
        return source[0] in self.peer_hosts and self.in_window()

    def send_rtp(self, packet: bytes) -> None:
        destination = self.destination
        if destination is not None and (self.media is None or self.media.sends):
            self.rtp.send(packet, destination)
            self.stats.packets_out += 1
            self.stats.bytes_out += len(packet)

    def send_rtcp(self, packet: bytes) -> None:
        destination = self.latched_rtcp
        if destination is None and self.destination is not None:
            host, port = self.destination
            destination = (host, port + 1)
        if destination is not None:
            self.rtcp.send(packet, destination)
            self.stats.rtcp_out += 1


class _Ringback:
    """Paced tone toward one leg: frame n leaves at start + n·ptime, in the leg's ptime."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, leg: Leg, tone: str, rng: random.Random
    ) -> None:
        assert leg.media is not None
        self.loop, self.leg = loop, leg
        self.ptime = leg.media.ptime
        self.frames = tones.frames(tone, leg.media.codec, self.ptime)
        self.samples = tones.SAMPLE_RATE * self.ptime // 1000
        self.payload_type = leg.media.payload_type
        self.ssrc = rng.getrandbits(32)  # RFC 3550 §5.1: random initial values
        self.sequence = rng.getrandbits(16)
        self.timestamp = rng.getrandbits(32)
        self.index = 0
        self.start = loop.time()
        self.handle: asyncio.TimerHandle | None = loop.call_at(self.start, self._tick)

    def _tick(self) -> None:
        header = rtp.RtpHeader(
            self.payload_type, self.sequence, self.timestamp, self.ssrc, marker=self.index == 0
        )
        self.leg.send_rtp(header.pack() + self.frames[self.index % len(self.frames)])
        self.index += 1
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + self.samples) & 0xFFFFFFFF
        self.handle = self.loop.call_at(self.start + self.index * self.ptime / 1000, self._tick)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


class MediaSession:
    def __init__(self, relay: MediaRelay, a: Leg, b: Leg) -> None:
        self.relay = relay
        self.a, self.b = a, b
        self.bridged = False
        self.closed = False
        self._ringback: dict[str, _Ringback] = {}
        self._flowing: set[str] = set()  # legs media is being relayed toward
        self._mark_next: set[str] = set()  # legs whose next relayed packet gets a marker
        self._inactivity: asyncio.TimerHandle | None = None
        self._heard_from: dict[str, float] = {}  # leg → when its silence started to count
        for leg in (a, b):
            other = b if leg is a else a
            leg.rtp.on_packet = self._rtp_handler(leg, other)
            leg.rtcp.on_packet = self._rtcp_handler(leg, other)

    def leg(self, name: str) -> Leg:
        return self.a if name == "a" else self.b

    # -- control --------------------------------------------------------------------------

    def start_ringback(self, leg_name: str, tone: str | None = None) -> None:
        leg = self.leg(leg_name)
        if self.closed or leg.media is None or leg_name in self._ringback:
            return
        tone = tone or self.relay.tone
        self._ringback[leg_name] = _Ringback(self.relay.loop, leg, tone, self.relay.rng)

    def stop_ringback(self, leg_name: str) -> None:
        ringback = self._ringback.pop(leg_name, None)
        if ringback is not None:
            ringback.stop()
            self._mark_next.add(leg_name)

    def bridge(self) -> None:
        """Both ways from now on (the destination answered)."""
        for name in ("a", "b"):
            self.stop_ringback(name)
            self._flowing.add(name)
        self.bridged = True
        now = self.relay.loop.time()
        self._heard_from.setdefault("a", now)
        self._heard_from.setdefault("b", now)

    def detach(self, leg_name: str) -> None:
        """The leg's peer left (a transfer or a park): forget its SDP and latch, so its
        stray packets are refused and a new peer's SDP latches afresh; nothing flows
        either way and its silence is not watched until the next ``bridge``."""
        leg = self.leg(leg_name)
        leg.media = None
        leg.latched = leg.latched_rtcp = None
        leg.peer_hosts = frozenset()
        self.stop_ringback(leg_name)
        self._flowing.clear()
        self.bridged = False
        self._heard_from.pop(leg_name, None)

    def idle_for(self, now: float) -> float:
        """The longest silence of a leg that should be sending (0 if none is watched)."""
        silences = [0.0]
        for name, since in self._heard_from.items():
            leg = self.leg(name)
            if leg.media is not None and not leg.media.receives:
                continue  # we asked it not to send
            heard = [t for t in (since, leg.stats.last_in, leg.stats.last_rtcp_in) if t is not None]
            silences.append(now - max(heard))
        return max(silences)

    def watch_inactivity(self, timeout: float, on_inactive: Callable[[], None]) -> None:
        """Call ``on_inactive`` once a leg that should send has been silent ``timeout`` s.

        Leg a is watched from now; leg b from the bridge (or now, if already bridged)."""
        loop = self.relay.loop
        self._heard_from["a"] = loop.time()
        if self.bridged:
            self._heard_from["b"] = loop.time()

        self._cancel_inactivity()
        self._inactivity = loop.call_later(timeout, self._check_inactivity, timeout, on_inactive)

    def _check_inactivity(self, timeout: float, on_inactive: Callable[[], None]) -> None:
        # a method re-armed with its arguments, not a closure naming itself: no reference
        # cycle keeps an ended call's objects for a full collection
        if self.closed:
            return
        loop = self.relay.loop
        idle = self.idle_for(loop.time())
        if idle >= timeout:
            on_inactive()
        else:
            self._inactivity = loop.call_later(
                timeout - idle, self._check_inactivity, timeout, on_inactive
            )

    def _cancel_inactivity(self) -> None:
        if self._inactivity is not None:
            self._inactivity.cancel()
            self._inactivity = None

    def statistics(self) -> dict[str, dict[str, float | int | None]]:
        return {"a": self.a.stats.snapshot(), "b": self.b.stats.snapshot()}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._cancel_inactivity()
        for ringback in self._ringback.values():
            ringback.stop()
        self._ringback.clear()
        for leg in (self.a, self.b):
            self.relay.close_leg(leg)
            # the handlers close over this session: drop them so the session dies by its
            # reference count, not in a full collection that pauses the loop
            leg.rtp.on_packet = leg.rtcp.on_packet = _drop
        self.relay.sessions.discard(self)

    # -- packets --------------------------------------------------------------------------

    def _accept(self, leg: Leg, source: Address, rtcp: bool) -> bool:
        latched = leg.latched_rtcp if rtcp else leg.latched
        if latched == source:
            return True
        if latched is not None:
            # only the SDP's own port, within the window, takes over a latch learnt
            # elsewhere (module rules); after the window a latch is final
            taking_over = leg.in_window() and leg.is_sdp_port(source, rtcp)
            if not taking_over or leg.is_sdp_port(latched, rtcp):
                return False
        elif not leg.may_latch(source, rtcp):
            return False
        if rtcp:
            leg.latched_rtcp = source
        else:
            leg.latched = source
            if leg.media is not None and source != leg.media.address:
                log.info("leg %s latched to %s (SDP said %s)", leg.name, source, leg.media.address)
        return True

    def _rtp_handler(self, leg: Leg, other: Leg) -> Callable[[bytes, Address], None]:
        loop = self.relay.loop

        def on_rtp(packet: bytes, source: Address) -> None:
            if not rtp.is_rtp(packet) or not self._accept(leg, source, rtcp=False):
                leg.stats.rejected += 1
                return
            leg.stats.received(rtp.sequence(packet), len(packet), loop.time())
            if leg.media is not None and not leg.media.receives:
                return  # we said sendonly/inactive on this leg: its media is not wanted
            name = other.name
            if name in self._ringback:
                self.stop_ringback(name)  # early media from the far end replaces ringback
                self._flowing.add(name)
            if name not in self._flowing:
                return
            out = self._translate(packet, leg, other)
            if out is None:
                return
            if name in self._mark_next:
                self._mark_next.discard(name)
                out = out[:1] + bytes((out[1] | 0x80,)) + out[2:]
            other.send_rtp(out)

        return on_rtp

    def _rtcp_handler(self, leg: Leg, other: Leg) -> Callable[[bytes, Address], None]:
        def on_rtcp(packet: bytes, source: Address) -> None:
            if not self._accept(leg, source, rtcp=True):
                leg.stats.rejected += 1
                return
            leg.stats.rtcp_in += 1
            leg.stats.last_rtcp_in = self.relay.loop.time()
            if other.name in self._flowing:
                other.send_rtcp(packet)

        return on_rtcp

    @staticmethod
    def _translate(packet: bytes, source: Leg, target: Leg) -> bytes | None:
        src, dst = source.media, target.media
        if src is None or dst is None:
            return packet
        pt = packet[1] & 0x7F
        if pt == src.payload_type:
            if src.codec == dst.codec:
                if pt == dst.payload_type:
                    return packet  # the common case: untouched
                return packet[:1] + bytes(((packet[1] & 0x80) | dst.payload_type,)) + packet[2:]
            table = g711.ULAW_TO_ALAW if src.codec == "PCMU" else g711.ALAW_TO_ULAW
            offset = rtp.payload_offset(packet)
            head = packet[:1] + bytes(((packet[1] & 0x80) | dst.payload_type,)) + packet[2:offset]
            return head + packet[offset:].translate(table)
        if src.telephone_event is not None and pt == src.telephone_event:
            if dst.telephone_event is None:
                return None
            return packet[:1] + bytes(((packet[1] & 0x80) | dst.telephone_event,)) + packet[2:]
        if pt == 13:  # comfort noise (RFC 3389) is codec-independent
            return packet
        return None


def _factory(socket: _Socket) -> Callable[[], _Socket]:
    return lambda: socket


class MediaRelay:
    def __init__(
        self,
        host: str,
        advertised_host: str,
        ports: PortAllocator,
        *,
        tone: str = "jp",
        rng: random.Random | None = None,
        network: DatagramNetwork | None = None,
    ) -> None:
        """``network``: bind the legs on it instead of sockets (``switchboard.testing``)."""
        self.network = network
        self.rng = rng or BufferedSystemRandom()
        self.host = host
        self.advertised_host = advertised_host
        self.ports = ports
        self.tone = tone
        self.sessions: set[MediaSession] = set()
        self.totals = dict.fromkeys(
            ("packets_in", "packets_out", "packets_lost", "packets_rejected"), 0
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bind_address: tuple[int, tuple[Any, ...]] | None = None  # family, sockaddr

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def create_session(self) -> MediaSession:
        """Two legs with bound sockets; raises ``PortsExhaustedError`` when none are left."""
        a = await self._bind_leg("a")
        try:
            b = await self._bind_leg("b")
        except BaseException:
            self.close_leg(a)
            raise
        session = MediaSession(self, a, b)
        self.sessions.add(session)
        return session

    async def _bind_leg(self, name: str) -> Leg:
        for _ in range(self.ports.capacity):
            port = self.ports.allocate()  # may be exhausted
            leg = Leg(name, port, self.advertised_host, self.loop.time)
            if await self._bind(leg):
                return leg
        raise PortsExhaustedError("no RTP port pair of server.rtp_ports could be bound")

    async def _bind(self, leg: Leg) -> bool:
        try:
            for socket, port in ((leg.rtp, leg.port), (leg.rtcp, leg.port + 1)):
                if self.network is not None:
                    self.network.bind(socket, self.host, port)
                else:
                    await self._open(socket, port)
        except OSError:
            log.info("rtp port %d is taken by another process; skipping it", leg.port)
            self.close_leg(leg)  # try the next pair; this one is retried last
            return False
        except BaseException:
            self.close_leg(leg)
            raise
        return True

    async def _open(self, socket: _Socket, port: int) -> None:
        """Bind a socket of our own and hand it to the loop: given an address instead, the
        loop resolves it again for every socket, through its resolver thread and back (62
        against 24 µs of CPU a socket, 46 of them on the loop's thread; four a call). The
        host is resolved once."""
        if self._bind_address is None:
            found = await self.loop.getaddrinfo(self.host, 0, type=stdsocket.SOCK_DGRAM)
            self._bind_address = found[0][0], found[0][4]
        family, sockaddr = self._bind_address
        sock = stdsocket.socket(family, stdsocket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((sockaddr[0], port, *sockaddr[2:]))  # an IPv6 scope kept
            await self.loop.create_datagram_endpoint(_factory(socket), sock=sock)
        except BaseException:
            sock.close()
            raise

    def close_leg(self, leg: Leg) -> None:
        """Close both sockets; the port pair returns to the pool once they are closed. Its
        packet counts join the relay's totals (metrics)."""
        if not leg.counted:  # once, even if closed again
            leg.counted = True
            stats, totals = leg.stats, self.totals
            totals["packets_in"] += stats.packets_in
            totals["packets_out"] += stats.packets_out
            totals["packets_lost"] += stats.lost
            totals["packets_rejected"] += stats.rejected
        leg.rtp.close()
        leg.rtcp.close()
        done = asyncio.gather(leg.rtp.closed, leg.rtcp.closed)
        done.add_done_callback(lambda _: self.ports.release(leg.port))

    def statistics(self) -> dict[str, int]:
        return {"media_sessions": len(self.sessions), "rtp_port_pairs_in_use": self.ports.in_use}

    def packet_counts(self) -> dict[str, int]:
        """RTP packets in, out, lost (sequence gaps) and rejected (strangers), of every leg
        closed so far and every leg open now."""
        counts = dict(self.totals)
        for session in self.sessions:
            for leg in (session.a, session.b):
                if leg.counted:
                    continue
                counts["packets_in"] += leg.stats.packets_in
                counts["packets_out"] += leg.stats.packets_out
                counts["packets_lost"] += leg.stats.lost
                counts["packets_rejected"] += leg.stats.rejected
        return counts


__all__ = ["LegMedia", "MediaRelay", "MediaSession", "PortsExhaustedError"]
