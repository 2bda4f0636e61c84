"""A call's legs as CTI channels (API §4), projected from the call's state: added when
offered, updated on ringing, answer and bridge, removed at hangup with the disposition in
``last_event_data``. Pure: each step returns the ``Publish`` commands it makes.

A member's channel is one terminal (API §2): its uuid was allocated when the request came
(``MemberPlan.planned``) and is the Call-ID of the INVITE to that terminal. Every planned
uuid is published, added then removed with its cause, even when the hunt ended before its
turn (``send_refuse,ORIGINATOR_CANCEL``) or the terminal had gone by then
(``send_refuse,USER_NOT_REGISTERED``); a terminal that lost the race to another terminal of
the same member is removed with ``send_cancel,LOSE_RACE``. A caller (a phone or a trunk)
is an ``inbound`` channel. The destination channel follows the destination; ``end_user``
rides on it, and each side's ``other_info`` describes the other.

Every calling-side channel (a member's terminal, call_external's PSTN origin, a caller, the
party that stays after a transfer) carries ``call`` from the moment it is added (JSON only):
the destination with its ``end_user`` and the calling group with the call's strategy.
"""

from __future__ import annotations

from switchboard.cti.channels import (
    CallGroup,
    CallSummary,
    Channel,
    ChannelState,
    EndUserItem,
    OtherInfo,
    Target,
)
from switchboard.pbx.destinations import Destination, GroupTarget, PstnTarget, UserTarget, party
from switchboard.pbx.hunt import Attempt, Result
from switchboard.pbx.legs import Call, Leg, Side
from switchboard.pbx.messages import Publish
from switchboard.pbx.plan import Caller, CallPlan, HuntPlan, Kind, MemberPlan, Role
from switchboard.pbx.records import group_id, member_hangup, refusal, refused, target_party


def _us(wall: float | None) -> int | None:
    return None if wall is None else int(wall * 1_000_000)


def end_user_items(destination: Destination) -> tuple[EndUserItem, ...]:
    end_user = destination.end_user
    if end_user is None:
        return ()
    return (
        EndUserItem(
            end_user.id,
            end_user.name,
            end_user.organization,
            end_user.avatar,
            end_user.prefecture,
        ),
    )


class ChannelBook:
    """What was published of one call, so each step publishes only what changed."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.published: dict[str, Channel] = {}
        self.removed: set[str] = set()
        self._out: list[Publish] = []
        # fixed at the start: a transfer changes where the call goes, not who it was for
        self._group = _calling_group(call.plan)
        # members whose channels are all removed: index -> how many legs it had rung then
        self._settled: dict[int, int] = {}
        self._settled_side: Side | None = None
        self._summary_made: tuple[CallPlan, CallSummary] | None = None
        self._origination_made: tuple[CallPlan, tuple[str, ...]] | None = None

    def _take(self) -> list[Publish]:
        out, self._out = self._out, []
        return out

    def _publish(self, event: str, channel: Channel) -> None:
        if event == "removed":
            self.published.pop(channel.uuid, None)
            self.removed.add(channel.uuid)
        else:
            self.published[channel.uuid] = channel
        self._out.append(Publish(event, channel))

    def _now(self, now: float) -> int:
        return _us(self.call.plan.wall(now)) or 0

    def _summary(self) -> CallSummary:
        """Where the call goes now and for which group (``call``, JSON only): the same for
        every channel until a transfer gives the call a new plan, so made once per plan."""
        plan = self.call.plan
        made = self._summary_made
        if made is None or made[0] is not plan:
            destination = plan.target
            summary = CallSummary(
                _target_type(destination.target),
                party(destination.target),
                end_user_items(destination),
                self._group,
            )
            made = self._summary_made = (plan, summary)
        return made[1]

    # -- the calling group's members --------------------------------------------------------

    def sync_members(self, now: float) -> list[Publish]:
        """Publish what changed in the members' terminals since the last step."""
        self._sync_all(now)
        return self._take()

    def _sync_all(self, now: float) -> None:
        """Each step looks at every member (a call_group of ten: forty looks a call), so
        the members with nothing to show are passed over without building anything."""
        origin = self.call.origin
        if origin is None:
            return
        if origin is not self._settled_side:
            self._settled_side, self._settled = origin, {}
        settled = self._settled
        for index, attempt in enumerate(origin.hunt.attempts):
            leg_ids = origin.legs[index]
            if not leg_ids and attempt.result is None and attempt.started_at is None:
                continue  # not its turn yet: nothing of it is shown
            if settled.get(index) == len(leg_ids):
                continue  # every channel of it removed, and no leg rung since
            legs = [self.call.legs[leg] for leg in leg_ids]
            if self._sync_member(attempt, origin.plan.members[index], legs, index, now):
                settled[index] = len(leg_ids)

    def _sync_member(
        self, attempt: Attempt, member: MemberPlan, legs: list[Leg], index: int, now: float
    ) -> bool:
        """Publish what changed of one member; True when all its channels are removed (a
        channel removed stays so: only a leg rung later can show something new)."""
        origin = self.call.origin
        assert origin is not None
        if attempt.ringing and not origin.rung[index]:
            return False  # its terminals are being rung: the engine says which next
        rung = {leg.channel: leg for leg in legs}
        planned = member.channels
        uuids = [*planned, *(c for c in rung if c not in planned)]
        for uuid in uuids:
            if uuid in self.removed:
                continue
            leg = rung.get(uuid)
            if leg is None:  # never rung: its terminal had gone, or the hunt ended first
                if attempt.result is None and attempt.started_at is None:
                    continue
                cause = (
                    "send_refuse,USER_NOT_REGISTERED"
                    if attempt.started_at is not None
                    and attempt.result not in (Result.SKIPPED, Result.UNREGISTERED)
                    else member_hangup(attempt, "switchboard")
                )
                self._remove(self._added(attempt, uuid), cause, now)
                continue
            channel = self._added(attempt, uuid)
            if leg.id == origin.answered[index]:
                if attempt.result is Result.ANSWERED and channel.answer_timestamp is None:
                    answered = channel.with_(
                        answer_timestamp=self._now(now), last_event="CHANNEL_ANSWER"
                    )
                    self._publish("updated", answered)
            elif leg.status is not None:
                self._remove(channel, refusal(leg.status), now)
            elif attempt.result is Result.ANSWERED:
                self._remove(channel, "send_cancel,LOSE_RACE", now)
            elif attempt.result is not None:
                self._remove(channel, member_hangup(attempt, "switchboard"), now)
        return all(uuid in self.removed for uuid in uuids)

    def _added(self, attempt: Attempt, uuid: str) -> Channel:
        channel = self.published.get(uuid)
        if channel is None:
            channel = self._member(attempt, uuid)
            self._publish("added", channel)
        return channel

    def _member(self, attempt: Attempt, uuid: str) -> Channel:
        """A terminal of a call_group member or of call_user's user: it is shown the group
        (call_group), else who it will be connected to (call_user)."""
        plan = self.call.plan
        group = plan.group
        user_id = plan.user_ids.get(attempt.user)
        ts = _us(plan.wall(attempt.started_at)) or 0
        if plan.origin_target is not None:
            return self._external(attempt, uuid, ts)
        if plan.kind is Kind.CALL_GROUP and group is not None:
            name, number = group.label or group.name, group.extension or group.name
        else:
            name = number = target_party(self.call)
        return Channel(
            uuid=uuid,
            domain=plan.domain,
            calling_name=plan.calling_name or name,
            calling_number=number,
            called_number=attempt.user,
            offer_timestamp=ts,
            user_id=user_id,
            group_id=group.id if group is not None else None,
            state=ChannelState(ts, "calling", "int", "user", user_id),
            target=Target("user", user_id or 0, attempt.user),
            origination=self._origination(),
            tags=("auto_answer",) if plan.auto_answer else (),
            last_event="STATE_CHANGE",
            call_id=uuid,
            call=self._summary(),
        )

    def _external(self, attempt: Attempt, uuid: str, ts: int) -> Channel:
        """call_external's origin: a PSTN number rung through the trunk."""
        plan = self.call.plan
        assert plan.origin_target is not None
        return Channel(
            uuid=uuid,
            domain=plan.domain,
            peer_location="external",
            calling_name=plan.calling_name,
            calling_number=plan.pstn_caller_id(Role.ORIGIN),
            called_number=attempt.user,
            offer_timestamp=ts,
            group_id=plan.group.id if plan.group is not None else None,
            state=ChannelState(ts, "calling", "ext", "pstn", address=attempt.user),
            end_user=end_user_items(plan.origin_target),
            origination=self._origination(),
            last_event="STATE_CHANGE",
            call_id=uuid,
            call=self._summary(),
        )

    # -- every call -------------------------------------------------------------------------

    def ringing(self, uuid: str, now: float) -> list[Publish]:
        """A 180/183 from a leg's phone: tagged ``ringing`` (once); the state stays."""
        channel = self.published.get(uuid)
        if channel is not None and "ringing" not in channel.tags:
            ringing = channel.tagged("ringing").with_(last_event="STATE_CHANGE")
            self._publish("updated", ringing)
        return self._take()

    def destination_dialed(self, now: float) -> list[Publish]:
        """The destination is offered the call (and a caller's own channel appears)."""
        plan = self.call.plan
        ts = self._now(now)
        state = self._calling_state(ts)
        caller = plan.origin
        if isinstance(caller, Caller):
            shown = self.published.get(caller.channel)
            if shown is None:
                self._publish("added", self._caller(caller, state, ts))
            else:  # the party that stays after a transfer now calls the new destination
                calling = shown.with_(
                    other_uuid=plan.destination_channel,
                    state=state,
                    last_event="STATE_CHANGE",
                    call=self._summary(),
                )
                self._publish("updated", calling)
        target = plan.target.target
        user_id = target.user.id if isinstance(target, UserTarget) else None
        origin = self.published.get(self._origin_channel() or "")
        self._publish(
            "added",
            Channel(
                uuid=plan.destination_channel,
                domain=plan.domain,
                peer_location="external" if isinstance(target, PstnTarget) else "internal",
                calling_name=caller.name if isinstance(caller, Caller) else None,
                calling_number=self._presented_number(),
                called_number=target_party(self.call),
                offer_timestamp=ts,
                other_uuid=origin.uuid if origin else None,
                user_id=user_id,
                group_id=group_id(self.call),
                state=state,
                end_user=end_user_items(plan.target),
                origination=self._origination(),
                last_event="STATE_CHANGE",
                call_id=plan.destination_channel,
                other_info=_user_info(origin) if origin else None,
            ),
        )
        return self._take()

    def _calling_state(self, ts: int) -> ChannelState:
        target = self.call.plan.target.target
        if isinstance(target, PstnTarget):
            return ChannelState(ts, "calling", "ext", "pstn", address=target.number)
        if isinstance(target, UserTarget):
            return ChannelState(ts, "calling", "int", "user", target.user.id)
        group = target.group
        return ChannelState(ts, "calling", "int", "group", group.id, group_type=group.strategy)

    def _caller(self, caller: Caller, state: ChannelState, ts: int) -> Channel:
        user = caller.user
        phone = self.call.plan.kind is Kind.PHONE
        return Channel(
            uuid=caller.channel,
            domain=self.call.plan.domain,
            direction="inbound",
            peer_location="internal" if phone else "external",
            calling_name=caller.name,
            calling_number=caller.number,
            called_number=target_party(self.call),
            offer_timestamp=ts,
            user_id=user.id if user else None,
            group_id=group_id(self.call),
            state=state,
            target=Target("user", user.id, user.name) if user else None,
            origination=self._origination(),
            last_event="STATE_CHANGE",
            call_id=caller.channel,
            call=self._summary(),
        )

    def _presented_number(self) -> str | None:
        """The number the destination is shown: toward the PSTN the caller ID the trunk
        is sent; inside the PBX the caller's own number (a call_group's chosen one)."""
        plan = self.call.plan
        if isinstance(plan.target.target, PstnTarget):
            return plan.pstn_caller_id()
        if isinstance(plan.origin, Caller):
            return plan.origin.number
        if plan.origin_target is not None:  # call_external: the number that was rung first
            return party(plan.origin_target.target)
        return plan.target.calling_number or plan.calling_number

    def _origination(self) -> tuple[str, ...]:
        plan = self.call.plan
        made = self._origination_made
        if made is None or made[0] is not plan:  # one per plan, as ``_summary``
            made = self._origination_made = (plan, _origination(plan))
        return made[1]

    def bridged(self, now: float) -> list[Publish]:
        ts = self._now(now)
        origin = self.published.get(self._origin_channel() or "")
        destination = self.published.get(self.call.plan.destination_channel)
        if origin is None or destination is None:
            return self._take()
        answering = self._answering_user()
        if answering is not None:  # a group's member took the call: the channel is theirs
            destination = destination.with_(user_id=answering)
        pairs = (
            (destination, origin, _user_info(origin)),
            (origin, destination, _peer_info(destination)),
        )
        for channel, other, info in pairs:
            self._publish(
                "updated",
                channel.with_(
                    answer_timestamp=channel.answer_timestamp or ts,
                    other_uuid=other.uuid,
                    state=ChannelState(ts, "bridged"),
                    last_event="CHANNEL_ANSWER",
                    other_info=info,
                    last_bridged_user_id=other.user_id,
                ),
            )
        return self._take()

    def ended(self, now: float) -> list[Publish]:
        """Remove what is left: the answered member or caller, and the destination."""
        self._sync_all(now)
        call = self.call
        status = call.destination_status
        origin = self._origin_channel()
        caller = call.caller
        for channel in list(self.published.values()):
            if channel.uuid == origin:
                if caller is not None and caller.peer_hung_up and channel.answer_timestamp is None:
                    data = "recv_cancel,ORIGINATOR_CANCEL"
                elif caller is not None and channel.answer_timestamp is None:
                    data = refused(call.refused_with or 480)
                else:
                    data = f"{'recv' if call.ended_by == 'origin' else 'send'}_bye,NORMAL_CLEARING"
            elif channel.answer_timestamp is not None:
                data = f"{'recv' if call.ended_by == 'destination' else 'send'}_bye,NORMAL_CLEARING"
            elif status is not None:
                data = refusal(status)
            else:
                data = "send_cancel,ORIGINATOR_CANCEL"
            self._remove(channel, data, now)
        return self._take()

    def released(self, uuid: str, data: str, now: float) -> list[Publish]:
        """A transfer or a park released this channel; the call goes on without it."""
        channel = self.published.get(uuid)
        if channel is not None:
            self._remove(channel, data, now)
        return self._take()

    def parked(self, now: float, timeout: float, parker: str | None) -> list[Publish]:
        """The party that stays waits alone (Basix's ``park`` state); its own channel is
        the slot a transfer picks it up from."""
        leg = self.call.caller
        channel = self.published.get(leg.channel) if leg is not None else None
        if channel is not None:
            state = ChannelState(
                self._now(now),
                "park",
                slot=channel.uuid,
                timeout=int(timeout),
                parker_id=self.call.plan.user_ids.get(parker or ""),
                parker_name=parker,
            )
            parked = channel.with_(
                other_uuid=None, other_info=None, state=state, last_event="STATE_CHANGE"
            )
            self._publish("updated", parked)
        return self._take()

    def party(self, uuid: str) -> tuple[str | None, str | None, int | None]:
        """Who a published channel's party is: number, display name and user id."""
        channel = self.published.get(uuid)
        if channel is None:
            return None, None, None
        name = channel.calling_name if channel.direction == "inbound" else None
        if channel.end_user:
            name = name or channel.end_user[0].name
        return _address(channel), name, channel.user_id

    def _remove(self, channel: Channel, data: str, now: float) -> None:
        self._publish(
            "removed",
            channel.with_(
                hangup_timestamp=self._now(now),
                last_event="CHANNEL_HANGUP",
                last_event_data=data,
            ),
        )

    def _answering_user(self) -> int | None:
        """The user id of a destination group's member that answered."""
        if not isinstance(self.call.plan.target.target, GroupTarget):
            return None
        winner = self.call.destination.winner()
        if winner is None:
            return None
        user = self.call.destination.plan.members[winner[0]].user
        return self.call.plan.user_ids.get(user or "")

    def _origin_channel(self) -> str | None:
        leg = self.call.origin_leg()
        return leg.channel if leg is not None else None


def _calling_group(plan: CallPlan) -> CallGroup | None:
    """call_group's group rings its members by the request's strategy; call_user's and
    call_external's group is context only."""
    group = plan.group
    if group is None:
        return None
    origin = plan.origin
    if plan.kind is Kind.CALL_GROUP and isinstance(origin, HuntPlan):
        return CallGroup(group.id, group.name, origin.strategy)
    return CallGroup(group.id, group.name)


def _origination(plan: CallPlan) -> tuple[str, ...]:
    if plan.group is not None:
        return (plan.kind.value, plan.group.name)
    if isinstance(plan.origin, HuntPlan):  # call_user or call_external, no group context
        member = plan.origin.members[0]
        return (plan.kind.value, member.user or member.number or "")
    caller = plan.origin
    assert isinstance(caller, Caller)
    return (plan.kind.value, caller.user.name if caller.user else caller.number or "")


def _target_type(target: UserTarget | GroupTarget | PstnTarget) -> str:
    if isinstance(target, PstnTarget):
        return "pstn"
    return "user" if isinstance(target, UserTarget) else "group"


def _user_info(channel: Channel) -> OtherInfo:
    """A member's (or phone's) channel as its peer sees it: a user of the PBX."""
    if channel.user_id is None and channel.peer_location == "external":
        return _peer_info(channel)
    return OtherInfo(
        "user",
        channel.direction,
        channel.peer_location,
        _address(channel),
        channel.offer_timestamp,
        user_id=channel.user_id,
        group_id=channel.group_id,
    )


def _address(channel: Channel) -> str | None:
    """Who the channel's party is: the called party of a call we placed, the caller of one
    that came in."""
    return channel.called_number if channel.direction == "outbound" else channel.calling_number


def _peer_info(channel: Channel) -> OtherInfo:
    """The far channel as the near one sees it: an end user, or a user of the PBX."""
    if channel.user_id is not None:
        return _user_info(channel)
    return OtherInfo(
        "end_user",
        channel.direction,
        channel.peer_location,
        _address(channel),
        channel.offer_timestamp,
        end_user=channel.end_user,
    )
