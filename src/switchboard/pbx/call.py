"""One live call_group call: the hunt's commands carried out with SIP legs, the media
session and the callback outbox (see ``engine`` for the life of a call)."""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard.config import DomainConfig, GroupConfig, split_hostport
from switchboard.media import negotiation
from switchboard.media.relay import MediaSession
from switchboard.pbx.channels import CallChannels
from switchboard.pbx.destinations import Destination, PstnTarget, UserTarget
from switchboard.pbx.driver import HuntDriver, Leg
from switchboard.pbx.group_destination import DestinationGroupHunt
from switchboard.pbx.hunt import (
    Attempt,
    Availability,
    Command,
    Finished,
    Hunt,
)
from switchboard.pbx.records import build as build_records
from switchboard.registrar.location import contact_key
from switchboard.registrar.service import Terminal
from switchboard.sip.errors import SipError
from switchboard.sip.headers import Header
from switchboard.sip.message import Response
from switchboard.sip.sdp import SessionDescription
from switchboard.sip.transaction.base import Peer
from switchboard.sip.uri import SipUri, parse_uri
from switchboard.sip.useragent import Credentials, OutgoingCall

log = logging.getLogger("switchboard.pbx")


if TYPE_CHECKING:
    from switchboard.pbx.engine import Engine


@dataclass(frozen=True, slots=True)
class CallGroupRequest:
    domain: DomainConfig
    group: GroupConfig
    destination: Destination
    answer_timeout: int
    member_answer_timeout: int
    strategy: str
    calling_name: str | None = None
    callback_url: str | None = None


class CallGroupCall(HuntDriver):
    def __init__(
        self, engine: Engine, request: CallGroupRequest, session: MediaSession, channels: int
    ) -> None:
        self.engine = engine
        self.request = request
        self.session = session
        self.channels = channels
        domain = request.domain.name
        self.members: list[Leg] = []
        attempts: list[Attempt] = []
        for user in request.group.members:
            availability = self.availability(user)
            leg = self._member_leg(user, availability)
            self.members.append(leg)
            attempts.append(Attempt(leg.uuid, user, availability))
        super().__init__(
            Hunt(
                attempts,
                strategy=request.strategy,
                member_timeout=request.member_answer_timeout,
                answer_timeout=request.answer_timeout,
            ),
            self.members,
        )
        self.from_tag = engine.ua.endpoint.ids.tag()
        self.member_offer: SessionDescription = negotiation.make_offer(session.a, self.from_tag)
        self.destination: Leg | None = None
        self.destination_group: DestinationGroupHunt | None = None
        self.destination_offer: SessionDescription | None = None
        self.answered_index: int | None = None
        self.bridged = False
        self.ended = False
        self.ended_by = "switchboard"
        self.destination_offered_at: float | None = None
        self.destination_answered_at: float | None = None
        self.destination_status: int | None = None
        self._cap: asyncio.TimerHandle | None = None
        self._busy: tuple[str, str] | None = None
        self.cti = CallChannels(engine.cti, self)
        log.info(
            "call_group %s@%s: %d member(s), destination %s",
            request.group.name,
            domain,
            len(self.members),
            type(request.destination.target).__name__,
        )

    def _member_leg(self, user: str, availability: Availability) -> Leg:
        """One uuid per terminal the hunt will ring, allocated now (API §2)."""
        contacts = []
        if availability is Availability.AVAILABLE:
            contacts = self.engine.registrar.contacts(self.request.domain.name, user)
        planned = {contact_key(contact): str(uuid.uuid4()) for contact in contacts}
        first = next(iter(planned.values()), None)
        return Leg(first or str(uuid.uuid4()), planned=planned)

    @property
    def uuids(self) -> list[str]:
        """The members' terminal channels, in hunting order: the API's answer."""
        return [channel for leg in self.members for channel in leg.planned.values()]

    @property
    def channel_uuids(self) -> list[str]:
        """Every uuid a hangup may name: planned, rung since, and the destination's."""
        rung = [call.call_id for leg in self.members for call in leg.calls]
        destination = [self.cti.destination_uuid] if self.cti.destination_uuid else []
        return list(dict.fromkeys([*self.uuids, *rung, *destination]))

    def availability(self, user: str) -> Availability:
        domain = self.request.domain.name
        if (domain, user) in self.engine.busy_users:
            return Availability.BUSY
        if not self.engine.registrar.contacts(domain, user):
            return Availability.UNREGISTERED
        return Availability.AVAILABLE

    # -- the hunt -------------------------------------------------------------------------

    def start(self) -> None:
        self.start_hunt()

    def apply(self, commands: list[Command]) -> None:
        super().apply(commands)
        self.cti.sync_members()  # CTI follows each step of the hunt

    def ring_terminals(
        self,
        user: str,
        call_id_for: Callable[[str], str],
        from_tag: str,
        body: bytes,
        *,
        member: bool = False,
    ) -> list[OutgoingCall]:
        """INVITE every terminal of ``user`` as one leg (one From tag); ``call_id_for``
        gives each contact's Call-ID."""
        request = self.request
        domain = request.domain.name
        group = request.group.name
        extra: tuple[Header, ...] = ()
        display = None
        if member:  # the member sees who is calling: the group (or calling_name)
            display = request.calling_name or request.group.label or group
            extra = (
                Header("Call-Info", f"<sip:{group}@{domain}>;purpose=info"),
                Header("X-Switchboard-Group", group),
            )
        calls = []
        for terminal in self.engine.registrar.terminals(domain, user):
            target, peer = _target(terminal)
            calls.append(
                self.engine.ua.call(
                    target,
                    peer,
                    from_uri=f"sip:{group}@{domain}",
                    body=body,
                    display_name=display,
                    call_id=call_id_for(terminal.contact),
                    from_tag=from_tag,
                    extra=extra,
                )
            )
        return calls

    def ring(self, index: int) -> list[OutgoingCall]:
        leg = self.members[index]
        user = self.request.group.members[index]

        def terminal_uuid(contact: str) -> str:
            # a terminal registered since the request gets a channel of its own too
            planned = leg.planned.get(contact_key(contact))
            if planned is None:
                planned = str(uuid.uuid4())
                self.engine.by_uuid[planned] = self
            return planned

        calls = self.ring_terminals(
            user, terminal_uuid, self.from_tag, bytes(self.member_offer), member=True
        )
        for call in calls:
            call.on_provisional = functools.partial(self._member_progress, call.call_id)
        return calls

    def terminal_refused(self, index: int, call: OutgoingCall) -> None:
        self.cti.sync_members()  # its channel leaves while its siblings ring on

    def _member_progress(self, uuid: str, response: Response) -> None:
        if response.status in (180, 183):
            self.cti.ringing(uuid)

    def answered_terminal(self, index: int, call: OutgoingCall) -> None:
        call.ended.add_done_callback(lambda _f: self._member_ended())

    def connected(self, index: int) -> None:
        self.answered_index = index
        leg = self.members[index]
        answer = leg.answered.final if leg.answered is not None else None
        try:
            assert answer is not None and leg.answered is not None
            host = leg.answered.peer.host
            negotiation.accept_answer(self.session.a, self.member_offer, answer.body, host)
        except (SipError, AssertionError) as exc:
            log.warning("member %s answered without usable SDP (%s)", leg.uuid, exc)
        self._busy = (self.request.domain.name, self.request.group.members[index])
        self.engine.busy_users.add(self._busy)
        self.session.start_ringback("a")
        self._cap = self.loop.call_later(
            self.engine.server.max_call_seconds, self.hang_up, "max_call_seconds"
        )
        self.session.watch_inactivity(
            self.engine.server.rtp_timeout, lambda: self.hang_up("rtp timeout")
        )
        self._call_destination()

    def finished(self, outcome: Finished) -> None:
        payload: dict[str, object] = {"result_code": outcome.result_code}
        if outcome.answered is not None:
            answered = self.members[outcome.answered].answered
            payload["uuid"] = answered.call_id if answered else self.members[outcome.answered].uuid
            payload["answered_by"] = self.request.group.members[outcome.answered]
        else:
            payload["error"] = {"id": outcome.error_id}
        payload["request_uuids"] = self.uuids
        payload["group_id"] = self.request.group.id
        payload["attempts"] = [
            {
                "uuid": _attempt_uuid(leg),
                "uuids": list(leg.planned.values()),
                "user": a.user,
                "result": a.result.value if a.result else None,
                "sip_status": a.sip_status,
                "started_at": self._iso(a.started_at),
                "ended_at": self._iso(a.ended_at),
            }
            for a, leg in zip(self.hunt.attempts, self.members, strict=True)
        ]
        self.outcome = payload
        if self.request.callback_url:
            task = self.loop.create_task(
                self.engine.callbacks.enqueue(
                    self.request.domain.name, self.request.callback_url, payload
                )
            )
            task.add_done_callback(_log_failure)
        if outcome.result_code != 0:
            self._end()

    def wall(self, loop_time: float | None) -> float | None:
        """Epoch seconds of a loop time (the hunt keeps monotonic loop times)."""
        if loop_time is None:
            return None
        return time.time() - (self.loop.time() - loop_time)

    def _iso(self, loop_time: float | None) -> str | None:
        wall = self.wall(loop_time)
        if wall is None:
            return None
        return (
            datetime.datetime.fromtimestamp(wall, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    # -- the destination ------------------------------------------------------------------

    def _call_destination(self) -> None:
        request = self.request
        destination = request.destination
        domain = request.domain
        self.destination = leg = Leg(str(uuid.uuid4()))
        self.destination_offered_at = self.loop.time()
        self.destination_offer = negotiation.make_offer(self.session.b, leg.uuid)
        body = bytes(self.destination_offer)
        target = destination.target
        if isinstance(target, PstnTarget):
            trunk = target.trunk
            host, port = split_hostport(trunk.address)
            number = destination.calling_number or domain.calling_number or "anonymous"
            identity = f"<sip:{number}@{domain.name}>"
            credentials = Credentials(trunk.username, trunk.password) if trunk.username else None
            call = self.engine.ua.call(
                parse_uri(f"sip:{target.number}@{host}:{port}"),
                Peer(trunk.transport.upper(), host, port),
                from_uri=f"sip:{number}@{domain.name}",
                body=body,
                call_id=leg.uuid,
                extra=(Header("P-Asserted-Identity", identity),),
                credentials=credentials,
            )
            leg.calls.append(call)
            self.cti.destination_dialed(leg.uuid)
        elif isinstance(target, UserTarget):
            tag = self.engine.ua.endpoint.ids.tag()
            leg.calls += self.ring_terminals(target.user.name, lambda _c: leg.uuid, tag, body)
            if not leg.calls:
                log.info("destination user %s is not registered", target.user.name)
                self.hang_up("destination unavailable")
                return
            self.cti.destination_dialed(leg.uuid)
        else:
            self.destination = None  # the answering member of the group becomes it
            self.destination_group = DestinationGroupHunt(
                self,
                target.group,
                body,
                on_answer=self._destination_answered,
                on_failure=self.hang_up,
            )
            self.cti.destination_dialed(str(uuid.uuid4()))  # the offer to the group
            self.destination_group.start_hunt()
            return
        for call in leg.calls:
            call.on_provisional = functools.partial(self._destination_progress, leg.uuid, call)
            call.answered.add_done_callback(functools.partial(self._destination_future, call))

    def _destination_answered(self, leg: Leg, call: OutgoingCall, response: Response) -> None:
        """The destination (a number, a user's terminal, a group's member) answered."""
        self.destination = leg
        self.destination_answered_at = self.loop.time()
        try:
            assert self.destination_offer is not None
            offer = self.destination_offer
            negotiation.accept_answer(self.session.b, offer, response.body, call.peer.host)
        except (SipError, AssertionError) as exc:
            log.warning("destination answered without usable SDP: %s", exc)
        self.session.bridge()
        self.bridged = True
        self.cti.bridged()
        call.ended.add_done_callback(lambda _f: self._destination_ended())
        log.info("call %s bridged", self.members[self.answered_index or 0].uuid)

    def _destination_progress(self, uuid: str, call: OutgoingCall, response: Response) -> None:
        if response.status in (180, 183):
            self.cti.ringing(uuid)
        offer = self.destination_offer
        if response.body and offer is not None and self.session.b.media is None:
            try:  # a 183 with SDP: early media will replace our ringback (RFC 3960)
                negotiation.accept_answer(self.session.b, offer, response.body, call.peer.host)
            except SipError as exc:
                log.info("ignoring unusable early media SDP: %s", exc)

    def _destination_future(self, call: OutgoingCall, future: asyncio.Future[Response]) -> None:
        self._destination_final(call, future.result())

    def _destination_final(self, call: OutgoingCall, response: Response) -> None:
        leg = self.destination
        if leg is None or self.ended:
            if 200 <= response.status < 300:
                call.bye()
            return
        if 200 <= response.status < 300:
            if leg.answered is not None:
                call.bye()
                return
            leg.answered = call
            leg.cancel()
            self._destination_answered(leg, call, response)
            return
        if all(c.final is not None and c.final.status >= 300 for c in leg.calls):
            log.info("destination refused with %d", response.status)
            self.destination_status = response.status
            self.hang_up(f"destination {response.status}")

    # -- teardown -------------------------------------------------------------------------

    def _member_ended(self) -> None:
        if not self.ended:
            self.ended_by = "member"
        self.hang_up("member hung up")

    def _destination_ended(self) -> None:
        if not self.ended:
            self.ended_by = "destination"
        self.hang_up("destination hung up")

    def hang_up(self, reason: str) -> None:
        if self.ended:
            return
        if not self.hunt.finished:
            self.stop_hunt()
            return  # finished() ends the call
        log.info("call %s ends: %s", self.uuids[0] if self.uuids else "?", reason)
        for leg in self.members:
            leg.hang_up()
        if self.destination is not None:
            self.destination.hang_up()
        if self.destination_group is not None:
            self.destination_group.stop()
        self._end()

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.cancel_hunt_timer()
        for handle in (self._cap,):
            if handle is not None:
                handle.cancel()
        if self._busy is not None:
            self.engine.busy_users.discard(self._busy)
        self.session.close()
        self.cti.ended(self.ended_by)
        self.engine.finished(self)
        self._write_records()

    def _write_records(self) -> None:
        store = self.engine.records
        if store is None:
            return
        records = build_records(
            domain=self.request.domain.name,
            group_id=self.request.group.id,
            attempts=self.hunt.attempts,
            destination=self.request.destination,
            destination_uuid=self.destination.uuid if self.destination else None,
            destination_status=self.destination_status,
            destination_answered_at=self.destination_answered_at,
            offered_destination_at=self.destination_offered_at,
            ended_at=self.loop.time(),
            ended_by=self.ended_by,
            wall=self.wall,
        )
        task = self.loop.create_task(store.save(records))
        self.engine.pending_writes.add(task)
        task.add_done_callback(self.engine.write_done)


def _attempt_uuid(leg: Leg) -> str | None:
    """A member's channel in the callback: the terminal that answered, else its first."""
    if leg.answered is not None:
        return leg.answered.call_id
    return next(iter(leg.planned.values()), None)


def _target(terminal: Terminal) -> tuple[SipUri, Peer]:
    """The INVITE's Request-URI (the Contact) and where it goes: where the phone registered
    from, else (a static contact) the Contact's own host."""
    uri = parse_uri(terminal.contact)
    if not isinstance(uri, SipUri):
        raise ValueError(f"contact {terminal.contact!r} is not a SIP URI")
    if terminal.peer is not None:
        return uri, terminal.peer
    host, port = uri.host_port
    transport = (uri.params.get("transport") or "udp").upper()
    return uri, Peer(transport, host, port or 5060)


def _log_failure(task: asyncio.Task[str]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("queuing a callback failed", exc_info=task.exception())
