"""The call engine: the only edge of the call model (DESIGN §6). It owns the live calls,
turns requests (the API's call_group, an INVITE from a phone or a trunk) into call plans,
takes the domain's channels and media ports for them, and gives everything back when the
call is released. Each call runs as a ``live.LiveCall``: the pure ``machine.CallMachine``
driven by SIP outcomes and timers.

A call_group's life (the machine's table has the rules):
1. One channel UUID per terminal of each member, in hunting order (the UUID is the Call-ID
   of the INVITE to that terminal); a media session with leg ``a`` toward the origin and
   ``b`` toward the destination; the hunt starts.
2. Ringing a member INVITEs every terminal of that user at once, with one From tag; the
   member sees ``calling_name`` (default: the group label) from the group.
3. When a member answers, the outcome is queued (callback), the member hears ringback, and
   the destination rings: a PSTN number through the domain's trunk (caller ID in From and
   P-Asserted-Identity, the trunk's digest credentials if it challenges), a user's
   terminals, or a group (its own hunt). A 183 with SDP replaces ringback by the
   destination's early media; a 2xx bridges the two legs.
4. Either side's BYE ends the other; ``max_call_seconds`` and RTP inactivity end all.
A call from a phone or a trunk starts at step 3 with the caller waiting: it hears 180 (or
the destination's early media), is answered when the destination answers, and is refused
with a status saying why when it cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Protocol

from switchboard.cluster.errors import ClusterStateError
from switchboard.cluster.state import Reservations
from switchboard.cluster.values import ChannelLimits
from switchboard.config import DomainConfig, GroupConfig, ServerConfig
from switchboard.cti.hub import CtiHub
from switchboard.media import negotiation
from switchboard.media.ports import PortsExhaustedError
from switchboard.media.relay import MediaRelay
from switchboard.pbx.destinations import (
    Destination,
    GroupTarget,
    PstnTarget,
    UserTarget,
    party,
)
from switchboard.pbx.hunt import Availability
from switchboard.pbx.live import CallbackQueue, CallServices, LiveCall, Presentation, RecordSink
from switchboard.pbx.plan import Caller, CallPlan, HuntPlan, Kind, MemberPlan, Role
from switchboard.pbx.redirect import CallControl, ChannelLimitError, NotBridgedError
from switchboard.pbx.requests import (
    CallExternalRequest,
    CallGroupRequest,
    CallUserRequest,
    IncomingRequest,
)
from switchboard.registrar.location import contact_key
from switchboard.registrar.service import RegistrarService
from switchboard.sip.errors import SipError
from switchboard.sip.headers import Header
from switchboard.sip.ids import IdGenerator
from switchboard.sip.useragent import IncomingCall, UserAgent

log = logging.getLogger("switchboard.pbx")


_IDS = IdGenerator()  # the system's generator


def _new_id() -> str:
    return _IDS.call_id()  # a version 4 UUID, as ``uuid.uuid4`` makes


class Engine(CallControl):
    def __init__(
        self,
        ua: UserAgent,
        registrar: RegistrarService,
        media: MediaRelay,
        callbacks: CallbackQueue,
        server: ServerConfig,
        *,
        records: RecordSink | None = None,
        cti: CtiHub | None = None,
        ids: Callable[[], str] = _new_id,
        trunk_down: Callable[[str, str], str | None] = lambda _domain, _trunk: None,
    ) -> None:
        """``trunk_down``: why a domain's trunk cannot take a call now (trunk health)."""
        self.ua = ua
        self.registrar = registrar
        self.media = media
        self.server = server
        self.services = CallServices(
            ua,
            registrar,
            callbacks,
            server,
            ids,
            cti=cti,
            records=records,
            on_channel=self._channel_seen,
            on_released=self._released,
            trunk_down=trunk_down,
        )
        self.calls: set[LiveCall] = set()
        self.released_listeners: list[Callable[[LiveCall], None]] = []  # metrics
        # a cluster node's bookkeeping of its calls (``switchboard.node_calls``): which
        # node holds each channel, and each call's snapshot for whoever reaps a dead node
        self.watcher: CallWatcher | None = None
        # a cluster's channel counters (docs/cluster-state.md): every node's calls count
        # against the domain's limits. None alone: this node's counters are the limit.
        self.reservations: Reservations | None = None
        self.by_uuid: dict[str, LiveCall] = {}
        self.channels: dict[str, int] = {}
        self.taken: dict[LiveCall, tuple[str, int, bool]] = {}
        self.pstn_legs: dict[str, int] = {}  # calls whose destination is the PSTN, by domain
        self._users: dict[str, tuple[DomainConfig, Mapping[str, int]]] = {}

    @property
    def busy_users(self) -> set[tuple[str, str]]:
        return self.services.busy_users

    @property
    def pending_writes(self) -> set[asyncio.Task[None]]:
        return self.services.tasks

    def channels_in_use(self, domain: str) -> int:
        return self.channels.get(domain, 0)

    # -- starting calls -------------------------------------------------------------------

    async def call_group(self, request: CallGroupRequest) -> LiveCall:
        members = request.group.members
        needed = (len(members) if request.strategy == "ring" else min(len(members), 1)) + 1
        domain = request.domain
        events = _events_url(request.call_events_url, domain)
        plan = self._plan(
            domain,
            Kind.CALL_GROUP,
            HuntPlan(
                tuple(self._member(domain.name, user, planned=True) for user in members),
                request.strategy,
                request.member_answer_timeout,
                request.answer_timeout,
            ),
            request.destination,
            group=request.group,
            calling_name=request.calling_name,
            callback=request.callback_url is not None,
            call_events=events is not None,
        )
        group = request.group
        shown = {
            Role.ORIGIN: Presentation(
                f"sip:{group.name}@{domain.name}",
                request.calling_name or group.label or group.name,
                (
                    Header("Call-Info", f"<sip:{group.name}@{domain.name}>;purpose=info"),
                    Header("X-Switchboard-Group", group.name),
                ),
            ),
            Role.DESTINATION: Presentation(f"sip:{group.name}@{domain.name}"),
        }
        return await self._start(
            domain,
            plan,
            needed,
            shown,
            callback_url=request.callback_url,
            events_url=events,
        )

    async def call_user(self, request: CallUserRequest) -> LiveCall:
        """All of the user's terminals ring at once for ``answer_timeout``; whoever answers
        is connected to the destination, as call_group's member is (API §2c)."""
        domain, user = request.domain, request.user
        events = _events_url(request.call_events_url, domain)
        timeout = request.answer_timeout
        plan = self._plan(
            domain,
            Kind.CALL_USER,
            HuntPlan(
                (self._member(domain.name, user.name, planned=True),), "ring", timeout, timeout
            ),
            request.destination,
            group=request.group,
            calling_name=request.calling_name,
            callback=request.callback_url is not None,
            auto_answer=request.auto_answer,
            call_events=events is not None,
        )
        far = party(request.destination.target)
        own = user.extension or user.name
        extra = _auto_answer(domain.name) if request.auto_answer else ()
        shown = {
            Role.ORIGIN: Presentation(
                f"sip:{far}@{domain.name}", request.calling_name or far, extra
            ),
            Role.DESTINATION: Presentation(f"sip:{own}@{domain.name}", user.label or user.name),
        }
        return await self._start(
            domain,
            plan,
            2,
            shown,
            callback_url=request.callback_url,
            events_url=events,
        )

    async def call_external(self, request: CallExternalRequest) -> LiveCall:
        """The PSTN target rings first, for ``answer_timeout``; when it answers it hears
        ringback while the internal destination rings, then the two are bridged."""
        domain, target = request.domain, request.target
        events = _events_url(request.call_events_url, domain)
        number = party(target.target)
        ringing = self.services.ids()
        timeout = request.answer_timeout
        origin = MemberPlan(None, planned={"pstn": ringing}, number=number)
        plan = self._plan(
            domain,
            Kind.CALL_EXTERNAL,
            HuntPlan((origin,), "ring", timeout, timeout),
            request.destination,
            group=request.group,
            calling_name=request.calling_name,
            callback=request.callback_url is not None,
            origin_target=target,
            call_events=events is not None,
        )
        end_user = target.end_user.name if target.end_user is not None else None
        shown = {
            Role.ORIGIN: Presentation("", request.calling_name),
            Role.DESTINATION: Presentation(f"sip:{number}@{domain.name}", end_user or number),
        }
        return await self._start(
            domain,
            plan,
            2,
            shown,
            callback_url=request.callback_url,
            events_url=events,
        )

    async def incoming(self, call: IncomingCall, request: IncomingRequest) -> LiveCall | None:
        """Place the call an INVITE from a phone or a trunk asks for; refuse it (503) when
        the domain's channels are used up."""
        domain = request.domain
        caller = Caller(
            self.services.ids(),
            self.services.ids(),
            request.number,
            request.name,
            request.user,
        )
        plan = self._plan(
            domain,
            request.kind,
            caller,
            request.destination,
            caller=request.user.name if request.user is not None else None,
            call_events=domain.call_events_url is not None,
        )
        number = request.number or "anonymous"
        shown = {
            Role.DESTINATION: Presentation(f"sip:{number}@{domain.name}", request.name),
            Role.ORIGIN: Presentation(f"sip:{number}@{domain.name}", request.name),
        }
        try:
            events = domain.call_events_url
            return await self._start(domain, plan, 2, shown, caller=call, events_url=events)
        except (ChannelLimitError, PortsExhaustedError) as exc:
            log.info("refusing a call in %s: %s", domain.name, exc)
            call.reject(503)
        except ClusterStateError as exc:  # the cluster's channel counters cannot be reached
            log.warning("refusing a call in %s: %s", domain.name, exc)
            call.reject(503)
        except SipError as exc:
            log.info("refusing a call with an unusable offer: %s", exc)
            call.reject(488)
        return None

    async def _start(
        self,
        domain: DomainConfig,
        plan: CallPlan,
        needed: int,
        shown: dict[Role, Presentation],
        *,
        callback_url: str | None = None,
        events_url: str | None = None,
        caller: IncomingCall | None = None,
    ) -> LiveCall:
        pstn = isinstance(plan.target.target, PstnTarget) or plan.origin_target is not None
        await self._reserve(domain, needed, pstn)
        try:
            session = await self.media.create_session()
            try:
                answer = b""
                if caller is not None:
                    answer = negotiation.answer_offer(
                        session.a, caller.request.body, caller.to_tag, caller.peer.host
                    )
                call = LiveCall(
                    self.services,
                    plan,
                    domain,
                    session,
                    shown,
                    callback_url=callback_url,
                    events_url=events_url,
                    caller=caller,
                    caller_answer=answer,
                )
            except BaseException:
                session.close()
                raise
        except BaseException:  # nothing was sent yet: give back all the call took
            self._give_back(domain.name, needed, pstn)
            raise
        self.calls.add(call)
        self.taken[call] = (domain.name, needed, pstn)
        call.start()
        if self.watcher is not None:
            self.watcher.started(call)
        return call

    async def _reserve(self, domain: DomainConfig, needed: int, pstn: bool) -> None:
        """Take the call's channels: from this node's counters alone, from the cluster's
        (one atomic check across the nodes) when clustered; this node counts its own."""
        if self.reservations is None:
            self._take(domain, needed, pstn)
            return
        limits = ChannelLimits(domain.channel_limit, domain.pstn_channel_limit)
        taken = await self.reservations.try_take(domain.name, needed, int(pstn), limits)
        if not taken:
            used = taken.before
            if used.channels + needed > domain.channel_limit:
                raise ChannelLimitError(
                    f"{used.channels} of {domain.channel_limit} channels in use in the"
                    f" cluster; this call needs {needed}"
                )
            raise ChannelLimitError(
                f"{used.pstn} of {domain.pstn_channel_limit} PSTN channels in use in the"
                " cluster (pstn_channel_limit)"
            )
        self.channels[domain.name] = self.channels_in_use(domain.name) + needed
        self.pstn_legs[domain.name] = self.pstn_legs.get(domain.name, 0) + pstn

    def _take(self, domain: DomainConfig, needed: int, pstn: bool) -> None:
        in_use = self.channels_in_use(domain.name)
        if in_use + needed > domain.channel_limit:
            raise ChannelLimitError(
                f"{in_use} of {domain.channel_limit} channels in use; this call needs {needed}"
            )
        legs = self.pstn_legs.get(domain.name, 0)
        if pstn and legs >= domain.pstn_channel_limit:
            raise ChannelLimitError(
                f"{legs} of {domain.pstn_channel_limit} PSTN channels in use (pstn_channel_limit)"
            )
        self.channels[domain.name] = in_use + needed
        self.pstn_legs[domain.name] = legs + pstn

    def _give_back(self, domain: str, needed: int, pstn: bool) -> None:
        self.channels[domain] = max(0, self.channels_in_use(domain) - needed)
        self.pstn_legs[domain] = max(0, self.pstn_legs.get(domain, 0) - pstn)
        if self.reservations is not None and self.watcher is not None:
            self.watcher.gave_back(domain, needed, int(pstn))  # sent with the call's changes
        elif self.reservations is not None:
            work = self.reservations.give_back(domain, needed, int(pstn))
            task = asyncio.get_running_loop().create_task(work)
            self.pending_writes.add(task)  # awaited at shutdown, before the node leaves
            task.add_done_callback(self._given_back)

    def _given_back(self, task: asyncio.Task[None]) -> None:
        self.pending_writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # the cluster releases a node's reservations with its lease; until then the
            # domain counts these channels as used
            log.warning("giving back channels to the cluster failed: %s", task.exception())

    def _plan(
        self,
        domain: DomainConfig,
        kind: Kind,
        origin: HuntPlan | Caller,
        destination: Destination,
        *,
        caller: str | None = None,
        group: GroupConfig | None = None,
        calling_name: str | None = None,
        callback: bool = False,
        auto_answer: bool = False,
        origin_target: Destination | None = None,
        call_events: bool = False,
    ) -> CallPlan:
        """The plan every kind of call shares: its destination rung as a hunt (DESIGN §5),
        the server's limits, the domain's users and numbers, the wall clock's epoch."""
        channel = self.services.ids()
        return CallPlan(
            domain=domain.name,
            kind=kind,
            origin=origin,
            destination=self._destination_plan(domain, destination, channel, caller),
            target=destination,
            destination_channel=channel,
            max_call_seconds=self.server.max_call_seconds,
            user_ids=self._user_ids(domain),
            calling_number=domain.calling_number,
            epoch=self._epoch(),
            group=group,
            calling_name=calling_name,
            callback=callback,
            auto_answer=auto_answer,
            origin_target=origin_target,
            call_events=call_events,
        )

    def _user_ids(self, domain: DomainConfig) -> Mapping[str, int]:
        """The domain's users by name, built once per domain config, not per call
        (thousands of users made it a measurable part of a call's CPU)."""
        cached = self._users.get(domain.name)
        if cached is None or cached[0] is not domain:
            cached = (domain, {user.name: user.id for user in domain.users})
            self._users[domain.name] = cached
        return cached[1]

    def _epoch(self) -> float:
        return time.time() - asyncio.get_running_loop().time()

    # -- plans ----------------------------------------------------------------------------

    def _member(
        self, domain: str, user: str, *, planned: bool, caller: str | None = None
    ) -> MemberPlan:
        """One uuid per terminal the hunt will ring, allocated now (API §2), for
        call_group's members; any other member's terminals share one channel. The caller
        of a call is on it: a group it dials passes it over as busy."""
        contacts: list[str] = []
        if (domain, user) in self.busy_users or user == caller:
            availability = Availability.BUSY
        else:
            contacts = self.registrar.contacts(domain, user)
            availability = Availability.AVAILABLE if contacts else Availability.UNREGISTERED
        if not planned:
            return MemberPlan(user, availability, channel=self.services.ids())
        ids = {contact_key(contact): self.services.ids() for contact in contacts}
        if not ids:  # nothing to ring: no channel, but the attempt has an id of its own
            return MemberPlan(user, availability, channel=self.services.ids())
        return MemberPlan(user, availability, planned=ids)

    def _destination_plan(
        self,
        domain: DomainConfig,
        destination: Destination,
        channel: str,
        caller: str | None = None,
    ) -> HuntPlan:
        """A user's terminals and a PSTN number ring as the destination's one channel; a
        group's members each have their own."""
        target = destination.target
        ring = float(self.server.ring_timeout)
        if isinstance(target, GroupTarget):
            return _group_plan(
                target.group,
                [
                    self._member(domain.name, user, planned=False, caller=caller)
                    for user in target.group.members
                ],
            )
        if isinstance(target, UserTarget):
            member = self._member(domain.name, target.user.name, planned=False)
            return HuntPlan((replace(member, channel=channel),), "ring", ring, ring)
        return HuntPlan((MemberPlan(None, channel=channel),), "ring", ring, ring)

    # -- the API's handles ----------------------------------------------------------------

    def hangup(self, domain: str, channel: str) -> bool:
        call = self.by_uuid.get(channel)
        if call is None or call.domain.name != domain:
            return False
        call.hang_up("api hangup")
        return True

    def live_call(self, domain: str, channel: str) -> LiveCall | None:
        call = self.by_uuid.get(channel)
        return call if call is not None and call.domain.name == domain else None

    def _channel_seen(self, channel: str, call: LiveCall) -> None:
        if not call.released:
            if self.watcher is not None and channel not in self.by_uuid:
                self.watcher.channel_seen(call, channel)
            self.by_uuid[channel] = call

    def _released(self, call: LiveCall) -> None:
        self.calls.discard(call)
        gone = [c for c in call.machine.call.channels() if self.by_uuid.get(c) is call]
        for channel in gone:
            del self.by_uuid[channel]
        if self.watcher is not None:
            self.watcher.released(call, gone)
        taken = self.taken.pop(call, None)
        if taken is not None:
            self._give_back(*taken)
        for listener in self.released_listeners:
            listener(call)

    def statistics(self) -> dict[str, int]:
        return {"calls": len(self.calls), "channels": sum(self.channels.values())}


class CallWatcher(Protocol):
    """Told of each call's start, of each channel it shows, and of its release (with the
    channels that named it)."""

    def started(self, call: LiveCall) -> None: ...

    def channel_seen(self, call: LiveCall, channel: str) -> None: ...

    def released(self, call: LiveCall, channels: list[str]) -> None: ...

    def gave_back(self, domain: str, channels: int, pstn: int) -> None:
        """A call's reservation, given back to the cluster's counters."""


def _events_url(requested: str | None, domain: DomainConfig) -> str | None:
    """Where the end-of-call event goes: the request's ``call_events_url``, else the
    domain's."""
    return requested or domain.call_events_url


def _auto_answer(domain: str) -> tuple[Header, ...]:
    """Ask a SIP terminal to answer by itself, in the forms phones understand: Call-Info's
    ``answer-after`` (RFC 3261 §20.9 parameters; Polycom, Snom, Grandstream, baresip) and
    Alert-Info's ``info=alert-autoanswer`` (Cisco, Yealink)."""
    return (
        Header("Call-Info", f"<sip:{domain}>;answer-after=0"),
        Header("Alert-Info", "<http://127.0.0.1/>;info=alert-autoanswer;delay=0"),
    )


def _group_plan(group: GroupConfig, members: list[MemberPlan]) -> HuntPlan:
    return HuntPlan(
        tuple(members), group.strategy, group.member_answer_timeout, group.answer_timeout
    )


__all__ = [
    "CallExternalRequest",
    "CallGroupRequest",
    "CallUserRequest",
    "ChannelLimitError",
    "Engine",
    "IncomingRequest",
    "LiveCall",
    "NotBridgedError",
]
