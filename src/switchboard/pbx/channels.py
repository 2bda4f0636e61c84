"""A call's legs as CTI channels (API §4): added when offered, updated on ringing, answer
and bridge, removed at hangup with the disposition in ``last_event_data``.

A member's channel is one terminal (API §2): its uuid was allocated when the request came
(``Leg.planned``) and is the Call-ID of the INVITE to that terminal. Every planned uuid is
published, added then removed with its cause, even when the hunt ended before its turn
(``send_refuse,ORIGINATOR_CANCEL``) or the terminal had gone by then
(``send_refuse,USER_NOT_REGISTERED``); a terminal that lost the race to another terminal of
the same member is removed with ``send_cancel,LOSE_RACE``. The destination channel follows
the destination leg; ``end_user`` rides on it, and each side's ``other_info`` describes the
other.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from switchboard.cti.channels import Channel, ChannelState, EndUserItem, OtherInfo, Target
from switchboard.pbx.destinations import Destination, PstnTarget, UserTarget
from switchboard.pbx.hunt import Attempt, Result
from switchboard.pbx.records import member_hangup, refusal

if TYPE_CHECKING:
    from switchboard.cti.hub import CtiHub
    from switchboard.pbx.call import CallGroupCall
    from switchboard.pbx.driver import Leg


def _us(wall: float | None) -> int | None:
    return None if wall is None else int(wall * 1_000_000)


def _now_us() -> int:
    return int(time.time() * 1_000_000)


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


class CallChannels:
    def __init__(self, hub: CtiHub | None, call: CallGroupCall) -> None:
        self.hub = hub
        self.call = call
        self.published: dict[str, Channel] = {}
        self.removed: set[str] = set()
        self.destination_uuid: str | None = None

    def _publish(self, event: str, channel: Channel) -> None:
        if event == "removed":
            self.published.pop(channel.uuid, None)
            self.removed.add(channel.uuid)
        else:
            self.published[channel.uuid] = channel
        if self.hub is not None:
            self.hub.publish(event, channel)

    def _member(self, attempt: Attempt, uuid: str) -> Channel:
        call = self.call
        request = call.request
        user = next((u for u in request.domain.users if u.name == attempt.user), None)
        ts = _us(call.wall(attempt.started_at)) or _now_us()
        user_id = user.id if user else None
        return Channel(
            uuid=uuid,
            domain=request.domain.name,
            calling_name=request.calling_name or request.group.label or request.group.name,
            calling_number=request.group.extension or request.group.name,
            called_number=attempt.user,
            offer_timestamp=ts,
            user_id=user_id,
            group_id=request.group.id,
            state=ChannelState(ts, "calling", "int", "user", user_id),
            target=Target("user", user_id or 0, attempt.user),
            origination=("call_group", request.group.name),
            last_event="STATE_CHANGE",
            call_id=uuid,
        )

    def sync_members(self) -> None:
        """Publish what changed in the members' terminals since the last call."""
        for attempt, leg in zip(self.call.hunt.attempts, self.call.members, strict=True):
            self._sync_leg(attempt, leg)

    def _sync_leg(self, attempt: Attempt, leg: Leg) -> None:
        rung = {call.call_id: call for call in leg.calls}
        for uuid in [*leg.planned.values(), *(u for u in rung if u not in leg.planned.values())]:
            if uuid in self.removed:
                continue
            call = rung.get(uuid)
            if call is None:  # never rung: its terminal had gone, or the hunt ended first
                if attempt.result is None and attempt.started_at is None:
                    continue
                cause = (
                    "send_refuse,USER_NOT_REGISTERED"
                    if attempt.started_at is not None
                    and attempt.result is not Result.SKIPPED
                    and attempt.result is not Result.UNREGISTERED
                    else member_hangup(attempt, "switchboard")
                )
                self._remove(self._added(attempt, uuid), cause)
                continue
            channel = self._added(attempt, uuid)
            if call is leg.answered:
                if attempt.result is Result.ANSWERED and channel.answer_timestamp is None:
                    answered = channel.with_(
                        answer_timestamp=_now_us(), last_event="CHANNEL_ANSWER"
                    )
                    self._publish("updated", answered)
            elif call.final is not None and call.final.status >= 300:
                self._remove(channel, refusal(call.final.status))
            elif attempt.result is Result.ANSWERED:
                self._remove(channel, "send_cancel,LOSE_RACE")
            elif attempt.result is not None:
                self._remove(channel, member_hangup(attempt, "switchboard"))

    def _added(self, attempt: Attempt, uuid: str) -> Channel:
        channel = self.published.get(uuid)
        if channel is None:
            channel = self._member(attempt, uuid)
            self._publish("added", channel)
        return channel

    def ringing(self, uuid: str) -> None:
        """A 180/183 from a leg's phone: tagged ``ringing`` (once); the state stays."""
        channel = self.published.get(uuid)
        if channel is None or "ringing" in channel.tags:
            return
        self._publish("updated", channel.tagged("ringing").with_(last_event="STATE_CHANGE"))

    def destination_dialed(self, uuid: str) -> None:
        call = self.call
        request = call.request
        destination = request.destination
        target = destination.target
        now = _now_us()
        self.destination_uuid = uuid
        call.engine.by_uuid[uuid] = call  # so a CTI or API hangup can name it
        user_id = None
        if isinstance(target, PstnTarget):
            state = ChannelState(now, "calling", "ext", "pstn", address=target.number)
            called, peer = target.number, "external"
        elif isinstance(target, UserTarget):
            user_id = target.user.id
            state = ChannelState(now, "calling", "int", "user", user_id)
            called, peer = target.user.name, "internal"
        else:
            state = ChannelState(
                now, "calling", "int", "group", target.group.id, group_type=target.group.strategy
            )
            called, peer = target.group.name, "internal"
        member = self.published.get(self._answered_member() or "")
        self._publish(
            "added",
            Channel(
                uuid=uuid,
                domain=request.domain.name,
                peer_location=peer,
                calling_number=destination.calling_number or request.domain.calling_number,
                called_number=called,
                offer_timestamp=now,
                other_uuid=member.uuid if member else None,
                user_id=user_id,
                group_id=request.group.id,
                state=state,
                end_user=end_user_items(destination),
                origination=("call_group", request.group.name),
                last_event="STATE_CHANGE",
                call_id=uuid,
                other_info=_user_info(member) if member else None,
            ),
        )

    def bridged(self) -> None:
        now = _now_us()
        member = self.published.get(self._answered_member() or "")
        destination = self.published.get(self.destination_uuid or "")
        if member is None or destination is None:
            return
        pairs = (
            (destination, member, _user_info(member)),
            (member, destination, _peer_info(destination)),
        )
        for channel, other, info in pairs:
            self._publish(
                "updated",
                channel.with_(
                    answer_timestamp=channel.answer_timestamp or now,
                    other_uuid=other.uuid,
                    state=ChannelState(now, "bridged"),
                    last_event="CHANNEL_ANSWER",
                    other_info=info,
                    last_bridged_user_id=other.user_id,
                ),
            )

    def ended(self, ended_by: str) -> None:
        """Remove what is left: the answered member and the destination."""
        self.sync_members()
        status = self.call.destination_status
        answered_member = self._answered_member()
        for channel in list(self.published.values()):
            if channel.uuid == answered_member:
                data = f"{'recv' if ended_by == 'member' else 'send'}_bye,NORMAL_CLEARING"
            elif channel.answer_timestamp is not None:
                data = f"{'recv' if ended_by == 'destination' else 'send'}_bye,NORMAL_CLEARING"
            elif status is not None:
                data = refusal(status)
            else:
                data = "send_cancel,ORIGINATOR_CANCEL"
            self._remove(channel, data)

    def _remove(self, channel: Channel, data: str) -> None:
        self._publish(
            "removed",
            channel.with_(
                hangup_timestamp=_now_us(),
                last_event="CHANNEL_HANGUP",
                last_event_data=data,
            ),
        )

    def _answered_member(self) -> str | None:
        index = self.call.answered_index
        if index is None:
            return None
        answered = self.call.members[index].answered
        return answered.call_id if answered is not None else None


def _user_info(channel: Channel) -> OtherInfo:
    """A member's channel as its peer sees it: a user of the PBX."""
    return OtherInfo(
        "user",
        channel.direction,
        channel.peer_location,
        channel.called_number,
        channel.offer_timestamp,
        user_id=channel.user_id,
        group_id=channel.group_id,
    )


def _peer_info(channel: Channel) -> OtherInfo:
    """The destination's channel as the member sees it: an end user, or a user of the PBX."""
    if channel.user_id is not None:
        return _user_info(channel)
    return OtherInfo(
        "end_user",
        channel.direction,
        channel.peer_location,
        channel.called_number,
        channel.offer_timestamp,
        end_user=channel.end_user,
    )
