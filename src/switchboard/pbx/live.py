"""One live call at the edge: feeds the call machine SIP outcomes, timers and ``now``, and
carries out its commands with the user agent, the media session, CTI, the callback outbox
and the record store. Events caused while commands run are queued and handled after them,
in order, so the machine always sees one event at a time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from switchboard.config import DomainConfig, ServerConfig, split_hostport
from switchboard.cti.hub import CtiHub
from switchboard.media import negotiation
from switchboard.media.relay import Leg as MediaLeg
from switchboard.media.relay import MediaSession
from switchboard.pbx import failover
from switchboard.pbx import messages as m
from switchboard.pbx.destinations import PstnTarget
from switchboard.pbx.legs import BridgeState
from switchboard.pbx.machine import CallMachine
from switchboard.pbx.plan import Caller, CallPlan, HuntPlan, Role
from switchboard.pbx.reoffer import MediaUpdates
from switchboard.quick_init import quick_init
from switchboard.registrar.location import contact_key
from switchboard.registrar.service import RegistrarService, Terminal
from switchboard.sip.errors import SipError
from switchboard.sip.headers import Header
from switchboard.sip.message import Response
from switchboard.sip.sdp import SessionDescription
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import SipUri, parse_uri
from switchboard.sip.useragent import Credentials, IncomingCall, OutgoingCall, UserAgent
from switchboard.store.records import CallRecord

log = logging.getLogger("switchboard.pbx")
_DEAD_DIALOG = ("no_ack", "session_timer", "dialog_failed")


class CallbackQueue(Protocol):
    """Where a call's outcome goes (``callbacks.delivery.CallbackDelivery``)."""

    async def enqueue(
        self, domain: str, url: str, payload: dict[str, object], delivery_id: str | None = None
    ) -> str: ...


class RecordSink(Protocol):
    """Where a finished call's records go (``store.records.CallRecordStore``)."""

    async def save(self, records: list[CallRecord]) -> None: ...


@dataclass(slots=True)
class CallServices:
    """What a live call needs of the engine; the engine owns all of it."""

    ua: UserAgent
    registrar: RegistrarService
    callbacks: CallbackQueue
    server: ServerConfig
    ids: Callable[[], str]
    cti: CtiHub | None = None
    records: RecordSink | None = None
    busy_users: set[tuple[str, str]] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    on_channel: Callable[[str, LiveCall], None] = lambda _uuid, _call: None
    on_released: Callable[[LiveCall], None] = lambda _call: None
    # why a domain's trunk cannot take a call now (``trunks.TrunkMonitor.down``), or None
    trunk_down: Callable[[str, str], str | None] = lambda _domain, _trunk: None


@quick_init
@dataclass(frozen=True, slots=True)
class Presentation:
    """Who the rung phones see calling, per side."""

    from_uri: str
    display: str | None = None
    extra: tuple[Header, ...] = ()


class LiveCall:
    def __init__(
        self,
        services: CallServices,
        plan: CallPlan,
        domain: DomainConfig,
        session: MediaSession,
        presentation: dict[Role, Presentation],
        *,
        callback_url: str | None = None,
        events_url: str | None = None,
        caller: IncomingCall | None = None,
        caller_answer: bytes = b"",
    ) -> None:
        self.services = services
        self.plan = plan
        self.domain = domain
        self.session = session
        self.presentation = presentation
        self.callback_url = callback_url
        self.events_url = events_url
        # names its callback and end-of-call event in the outbox (pbx/failover.py)
        self.key = plan.destination_channel
        self.loop = asyncio.get_running_loop()
        self.machine = CallMachine(plan, self.loop.time())
        self.sip: dict[str, OutgoingCall | IncomingCall] = {}
        self.tags = {role: services.ua.endpoint.ids.tag() for role in Role}
        if caller is not None:  # our answer to the caller used its To tag as o= session id
            self.tags[Role.ORIGIN] = caller.to_tag
        # which media leg faces which side: a transfer that keeps the destination swaps them
        self.media_names = {Role.ORIGIN: "a", Role.DESTINATION: "b"}
        self.offers: dict[Role, SessionDescription] = {}
        if isinstance(plan.origin, HuntPlan):
            self.offers[Role.ORIGIN] = negotiation.make_offer(session.a, self.tags[Role.ORIGIN])
        self.offers[Role.DESTINATION] = negotiation.make_offer(
            session.b, self.tags[Role.DESTINATION]
        )
        self.caller_answer = caller_answer
        self.updates = MediaUpdates()
        if caller is not None and isinstance(plan.origin, Caller):
            self.sip[plan.origin.leg] = caller
            caller.on_remote_offer = functools.partial(self.updates.on_offer, self, plan.origin.leg)
            caller.ended.add_done_callback(functools.partial(self._ended, plan.origin.leg))
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.queue: deque[m.Event] = deque()
        self.running = False
        self.watching = False
        self.released = False

    @property
    def bridged(self) -> bool:
        return self.machine.state is BridgeState.BRIDGED

    @property
    def uuids(self) -> list[str]:
        """The members' terminal channels, in hunting order: call_group's answer."""
        origin = self.machine.call.origin
        if origin is None:
            return []
        return [channel for member in origin.plan.members for channel in member.channels]

    # -- driving --------------------------------------------------------------------------

    def start(self) -> None:
        for channel in self.machine.call.channels():
            self.services.on_channel(channel, self)
        self.running = True
        try:
            self._run(self.machine.start(self.loop.time()))
        finally:
            self.running = False
        self._drain()

    def feed(self, event: m.Event) -> None:
        self.queue.append(event)
        if not self.running:
            self._drain()

    def hang_up(self, reason: str) -> None:
        self.feed(m.Hangup(reason))

    def _drain(self) -> None:
        self.running = True
        try:
            while self.queue:
                event = self.queue.popleft()
                self._run(self.machine.handle(event, self.loop.time()))
        finally:
            self.running = False

    def _run(self, commands: list[m.Command]) -> None:
        for command in commands:
            self._execute(command)

    def _execute(self, command: m.Command) -> None:
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise TypeError(f"no handler for {command!r}")
        handler(self, command)

    # -- SIP legs -------------------------------------------------------------------------

    def role_of(self, leg_id: str) -> Role | None:
        leg = self.machine.call.legs.get(leg_id)
        return None if leg is None else leg.role

    def media_of(self, leg_id: str) -> MediaLeg | None:
        role = self.role_of(leg_id)
        if role is None:
            return None
        return self.session.leg(self.media_names[role])

    def tag_of(self, leg_id: str) -> str:
        return self.tags[self.role_of(leg_id) or Role.ORIGIN]

    def other_leg(self, leg_id: str) -> tuple[str, OutgoingCall | IncomingCall] | None:
        """The answered leg on the other side of the bridge, while the call is bridged."""
        call = self.machine.call
        if not self.bridged:
            return None
        ends = (call.origin_leg(), call.destination_leg())
        for leg in ends:
            if leg is not None and leg.id != leg_id and leg.live:
                session = self.sip.get(leg.id)
                if session is not None:
                    return leg.id, session
        return None

    def _ring_member(self, command: m.Command) -> None:
        assert isinstance(command, m.RingMember)
        rung: list[tuple[str, str]] = []
        failed: m.LegFailed | None = None
        if command.user is None:
            leg, channel, failed = self._ring_trunk(command)
            rung.append((leg, channel))
        else:
            for terminal in self.services.registrar.terminals(self.domain.name, command.user):
                rung.append(self._ring_terminal(command, terminal))
        self.queue.append(m.MemberRung(command.role, command.member, tuple(rung)))
        if failed is not None:  # a leg that could not even be tried fails once it exists
            self.queue.append(failed)

    def _ring_terminal(self, command: m.RingMember, terminal: Terminal) -> tuple[str, str]:
        channel = command.planned.get(contact_key(terminal.contact)) or command.channel
        if channel is None:  # a terminal registered since the request: a channel of its own
            channel = self.services.ids()
            self.services.on_channel(channel, self)
        target, peer = _target(terminal)
        shown = self.presentation[command.role]
        call = self.services.ua.call(
            target,
            peer,
            from_uri=shown.from_uri,
            body=bytes(self.offers[command.role]),
            display_name=shown.display,
            call_id=channel,
            from_tag=self.tags[command.role],
            extra=(*(Header("Route", hop) for hop in terminal.route), *shown.extra),
        )
        return self._watch(command.role, call), channel

    def _ring_trunk(self, command: m.RingMember) -> tuple[str, str, m.LegFailed | None]:
        """A PSTN number through the domain's trunk: the destination's, or call_external's
        origin (``command.number``)."""
        plan = self.machine.call.plan  # a transfer changes the destination
        aimed = plan.origin_target if command.role is Role.ORIGIN else plan.target
        target = aimed.target if aimed is not None else None
        assert isinstance(target, PstnTarget)
        trunk = target.trunk
        down = self.services.trunk_down(self.domain.name, trunk.name)
        if down is not None:  # fail now, not after the INVITE's 32 s
            leg = self.services.ids()
            channel = next(iter(command.planned.values()), None) or command.channel or leg
            log.warning("call %s: %s", channel, down)
            return leg, channel, m.LegFailed(leg, 503, down)
        host, port = split_hostport(trunk.address)
        number = plan.pstn_caller_id(command.role) or "anonymous"
        credentials = Credentials(trunk.username, trunk.password) if trunk.username else None
        planned = next(iter(command.planned.values()), None)
        channel = planned or command.channel or self.services.ids()
        shown = self.presentation[command.role]
        call = self.services.ua.call(
            parse_uri(f"sip:{target.number}@{host}:{port}{_transport_param(trunk.transport)}"),
            Peer(trunk.transport.upper(), host, port),
            from_uri=f"sip:{number}@{self.domain.name}",
            display_name=shown.display,
            body=bytes(self.offers[command.role]),
            call_id=channel,
            extra=(Header("P-Asserted-Identity", f"<sip:{number}@{self.domain.name}>"),),
            credentials=credentials,
        )
        return self._watch(command.role, call), channel, None

    def _watch(self, role: Role, call: OutgoingCall) -> str:
        leg = self.services.ids()
        self.sip[leg] = call
        call.on_provisional = functools.partial(self._provisional, leg)
        call.on_remote_offer = functools.partial(self.updates.on_offer, self, leg)
        call.answered.add_done_callback(functools.partial(self._final, leg))
        call.ended.add_done_callback(functools.partial(self._ended, leg))
        return leg

    def _ended(self, leg: str, future: asyncio.Future[str]) -> None:
        """A leg's dialog ended. The user agent itself ends a dead one (no ACK to our 2xx,
        an expired session timer, 408/481 to a request inside it) with a BYE of its own:
        Switchboard ended the call, not the peer. Anything else the peer did (BYE,
        CANCEL), or the machine already knows (our BYE, a refusal)."""
        reason = future.result()
        if reason.startswith(_DEAD_DIALOG):
            self.feed(m.Hangup(f"{reason} on {leg}"))
        else:
            self.feed(m.LegHungUp(leg))

    def _provisional(self, leg: str, response: Response) -> None:
        if response.status in (180, 183):
            sdp = response.body if response.status == 183 else b""
            self.feed(m.LegRinging(leg, response.status, sdp))

    def _final(self, leg: str, future: asyncio.Future[Response]) -> None:
        response = future.result()
        if 200 <= response.status < 300:
            self.feed(m.LegAnswered(leg, response.body))
        else:
            self.feed(m.LegFailed(leg, response.status))

    def _cancel(self, command: m.Command) -> None:
        assert isinstance(command, m.Cancel)
        call = self.sip.get(command.leg)
        if isinstance(call, OutgoingCall):
            call.cancel()

    def _bye(self, command: m.Command) -> None:
        assert isinstance(command, m.Bye)
        call = self.sip.get(command.leg)
        if call is not None:
            call.bye()

    def _progress(self, command: m.Command) -> None:
        assert isinstance(command, m.Progress)
        call = self.sip.get(command.leg)
        if isinstance(call, IncomingCall):
            body = self.caller_answer if command.status == 183 else b""
            call.ring(command.status, body)

    def _answer(self, command: m.Command) -> None:
        assert isinstance(command, m.Answer)
        call = self.sip.get(command.leg)
        if isinstance(call, IncomingCall):
            call.answer(self.caller_answer)
            self._watch_media()

    def _reject(self, command: m.Command) -> None:
        assert isinstance(command, m.Reject)
        call = self.sip.get(command.leg)
        if isinstance(call, IncomingCall):
            call.reject(command.status)

    # -- media ----------------------------------------------------------------------------

    def _accept_answer(self, command: m.Command) -> None:
        assert isinstance(command, m.AcceptAnswer)
        call = self.sip.get(command.leg)
        leg = self.session.leg(self.media_names[command.role])
        offer = self.offers.get(command.role)
        if not isinstance(call, OutgoingCall) or offer is None:
            return
        try:
            negotiation.accept_answer(leg, offer, command.sdp, call.peer.host)
        except SipError as exc:
            log.warning("leg %s answered without usable SDP (%s)", command.leg, exc)

    def _start_ringback(self, command: m.Command) -> None:
        self.session.start_ringback(self.media_names[Role.ORIGIN])
        self._watch_media()

    def _regroup(self, command: m.Command) -> None:
        """The party that stays is the origin now; the other media leg waits for a peer."""
        assert isinstance(command, m.Regroup)
        if command.swapped:
            origin, destination = Role.ORIGIN, Role.DESTINATION
            names, tags = self.media_names, self.tags
            names[origin], names[destination] = names[destination], names[origin]
            tags[origin], tags[destination] = tags[destination], tags[origin]
            offers = self.offers
            kept = offers.pop(destination, None)
            if origin in offers:
                offers[destination] = offers.pop(origin)
            if kept is not None:
                offers[origin] = kept
        destination_leg = self.media_names[Role.DESTINATION]
        if Role.DESTINATION not in self.offers:  # the origin was a caller: no offer was made
            self.offers[Role.DESTINATION] = negotiation.make_offer(
                self.session.leg(destination_leg), self.tags[Role.DESTINATION]
            )
        self.session.detach(destination_leg)

    def redirect(self, event: m.Transfer | m.Park, shown: Presentation | None) -> None:
        """Feed a transfer or a park; ``shown`` is how the new destination sees the party
        that stays."""
        if shown is not None:
            self.presentation[Role.DESTINATION] = shown
        self.feed(event)

    def _bridge(self, command: m.Command) -> None:
        self.session.bridge()
        self._watch_media()

    def _watch_media(self) -> None:
        if not self.watching:
            self.watching = True
            self.session.watch_inactivity(
                self.services.server.rtp_timeout, lambda: self.hang_up("rtp timeout")
            )

    # -- time, people, outputs ------------------------------------------------------------

    def _set_timer(self, command: m.Command) -> None:
        assert isinstance(command, m.SetTimer)
        handle = self.timers.pop(command.name, None)
        if handle is not None:
            handle.cancel()
        if command.at is not None:
            event = m.Timer(command.name)
            self.timers[command.name] = self.loop.call_at(command.at, self.feed, event)

    def _set_busy(self, command: m.Command) -> None:
        assert isinstance(command, m.SetBusy)
        key = (self.domain.name, command.user)
        if command.busy:
            self.services.busy_users.add(key)
        else:
            self.services.busy_users.discard(key)

    def _publish(self, command: m.Command) -> None:
        assert isinstance(command, m.Publish)
        if command.event == "added":
            self.services.on_channel(command.channel.uuid, self)
        if self.services.cti is not None:
            self.services.cti.publish(command.event, command.channel)

    def _queue_callback(self, command: m.Command) -> None:
        assert isinstance(command, m.QueueCallback)
        if self.callback_url is not None:
            work = self.services.callbacks.enqueue(
                self.domain.name,
                self.callback_url,
                command.payload,
                failover.delivery_id(self.key, "result"),
            )
            self._own(self.loop.create_task(_discard(work)), "queuing a callback")

    def _queue_event(self, command: m.Command) -> None:
        assert isinstance(command, m.QueueEvent)
        if self.events_url is not None:  # signed and durable as callbacks are (API §3b)
            work = self.services.callbacks.enqueue(
                self.domain.name,
                self.events_url,
                command.payload,
                failover.delivery_id(self.key, "ended"),
            )
            self._own(self.loop.create_task(_discard(work)), "queuing an end-of-call event")

    def _write_records(self, command: m.Command) -> None:
        assert isinstance(command, m.WriteRecords)
        store = self.services.records
        if store is not None and command.records:
            self._own(self.loop.create_task(store.save(list(command.records))), "writing records")

    def _own(self, task: asyncio.Task[None], what: str) -> None:
        tasks = self.services.tasks
        tasks.add(task)

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("%s failed", what, exc_info=task.exception())

        task.add_done_callback(done)

    def _release(self, command: m.Command) -> None:
        if self.released:
            return
        self.released = True
        call = self.machine.call
        log.info("call %s ends: %s", call.plan.destination_channel, call.end_reason)
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        self.session.close()
        for session in self.sip.values():  # the hooks close over this call: let it go
            session.on_remote_offer = None
            if isinstance(session, OutgoingCall):
                session.on_provisional = None
        self.services.on_released(self)


async def _discard(work: object) -> None:
    await work  # type: ignore[misc]


def _transport_param(transport: str) -> str:
    return "" if transport == "udp" else f";transport={transport}"


def _target(terminal: Terminal) -> tuple[SipUri, Peer]:
    """The INVITE's Request-URI (the Contact) and where it goes: where the phone registered
    from, else (a static contact) the Contact's own host."""
    uri = parse_uri(terminal.contact)
    if not isinstance(uri, SipUri):
        raise ValueError(f"contact {terminal.contact!r} is not a SIP URI")
    if terminal.peer is not None:
        return uri, terminal.peer
    host, port = uri.host_port
    transport = uri.transport  # its transport parameter, TLS for sips:, else UDP
    return uri, Peer(transport, host, port or (5061 if transport == "TLS" else 5060))


_HANDLERS: dict[type, Callable[[LiveCall, m.Command], None]] = {
    m.RingMember: LiveCall._ring_member,
    m.Cancel: LiveCall._cancel,
    m.Bye: LiveCall._bye,
    m.Progress: LiveCall._progress,
    m.Answer: LiveCall._answer,
    m.Reject: LiveCall._reject,
    m.AcceptAnswer: LiveCall._accept_answer,
    m.StartRingback: LiveCall._start_ringback,
    m.Regroup: LiveCall._regroup,
    m.Bridge: LiveCall._bridge,
    m.SetTimer: LiveCall._set_timer,
    m.SetBusy: LiveCall._set_busy,
    m.Publish: LiveCall._publish,
    m.QueueCallback: LiveCall._queue_callback,
    m.QueueEvent: LiveCall._queue_event,
    m.WriteRecords: LiveCall._write_records,
    m.Release: LiveCall._release,
}
