"""A call's legs as CTI channels (API §4): added when offered, updated on answer and
bridge, removed at hangup with the disposition in ``last_event_data``.

The member channels follow the hunt's attempts; the destination channel follows the
destination leg. ``end_user`` rides on the destination's channel.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from switchboard.cti.channels import Channel, ChannelState, EndUserItem, Target
from switchboard.pbx.destinations import PstnTarget, UserTarget
from switchboard.pbx.hunt import Attempt, Result
from switchboard.pbx.records import member_hangup, refusal

if TYPE_CHECKING:
    from switchboard.cti.hub import CtiHub
    from switchboard.pbx.call import CallGroupCall


def _us(wall: float | None) -> int | None:
    return None if wall is None else int(wall * 1_000_000)


def _now_us() -> int:
    return int(time.time() * 1_000_000)


class CallChannels:
    def __init__(self, hub: CtiHub | None, call: CallGroupCall) -> None:
        self.hub = hub
        self.call = call
        self.published: dict[str, Channel] = {}
        self.destination_uuid: str | None = None

    def _publish(self, event: str, channel: Channel) -> None:
        if self.hub is None:
            return
        if event == "removed":
            self.published.pop(channel.uuid, None)
        else:
            self.published[channel.uuid] = channel
        self.hub.publish(event, channel)

    def _member(self, attempt: Attempt) -> Channel:
        call = self.call
        request = call.request
        user = next((u for u in request.domain.users if u.name == attempt.user), None)
        ts = _us(call.wall(attempt.started_at)) or 0
        user_id = user.id if user else None
        return Channel(
            uuid=attempt.uuid, domain=request.domain.name,
            calling_name=request.calling_name or request.group.label or request.group.name,
            calling_number=request.group.extension or request.group.name,
            called_number=attempt.user, offer_timestamp=ts,
            user_id=user_id, group_id=request.group.id,
            state=ChannelState(ts, "calling", "int", "user", user_id),
            target=Target("user", user_id or 0, attempt.user),
            origination=f"call_group*{request.group.name}", last_event="STATE_CHANGE",
            call_id=attempt.uuid,
        )  # fmt: skip

    def sync_members(self) -> None:
        """Publish what changed in the attempts since the last call."""
        for attempt in self.call.hunt.attempts:
            published = self.published.get(attempt.uuid)
            if attempt.ringing and published is None:
                self._publish("added", self._member(attempt))
            elif published is None:
                continue  # never rung (busy, unregistered, skipped) or already removed
            elif attempt.result is Result.ANSWERED:
                if published.answer_timestamp is None:
                    answered = published.with_(answer_timestamp=_now_us(),
                                               last_event="CHANNEL_ANSWER")  # fmt: skip
                    self._publish("updated", answered)
            elif attempt.result is not None:
                self._remove(published, member_hangup(attempt, "switchboard"))

    def ringing(self, uuid: str) -> None:
        """A 180/183 from a leg's phone: its state becomes ``ringing`` (once)."""
        channel = self.published.get(uuid)
        if channel is None or channel.state is None or channel.state.name != "calling":
            return
        state = replace(channel.state, ts=_now_us(), name="ringing")
        self._publish("updated", channel.with_(state=state, last_event="CHANNEL_PROGRESS"))

    def destination_dialed(self, uuid: str) -> None:
        call = self.call
        request = call.request
        destination = request.destination
        target = destination.target
        member = self._answered_member()
        now = _now_us()
        self.destination_uuid = uuid
        call.engine.by_uuid[uuid] = call  # so a CTI or API hangup can name it
        if isinstance(target, PstnTarget):
            state = ChannelState(now, "calling", "ext", "pstn", address=target.number)
            called, peer = target.number, "external"
        elif isinstance(target, UserTarget):
            state = ChannelState(now, "calling", "int", "user", target.user.id)
            called, peer = target.user.name, "internal"
        else:
            state = ChannelState(now, "calling", "int", "group", target.group.id,
                                 group_type=target.group.strategy)  # fmt: skip
            called, peer = target.group.name, "internal"
        end_user = destination.end_user
        items = (
            (EndUserItem(end_user.id, end_user.name, end_user.organization, end_user.avatar),)
            if end_user else ()
        )  # fmt: skip
        self._publish("added", Channel(
            uuid=uuid, domain=request.domain.name, peer_location=peer,
            calling_number=destination.calling_number or request.domain.calling_number,
            called_number=called, offer_timestamp=now, other_uuid=member,
            group_id=request.group.id, state=state, end_user=items,
            origination=f"call_group*{request.group.name}", last_event="STATE_CHANGE",
            call_id=uuid,
        ))  # fmt: skip

    def bridged(self) -> None:
        now = _now_us()
        member = self._answered_member()
        destination = self.destination_uuid
        for uuid, other in ((destination, member), (member, destination)):
            channel = self.published.get(uuid or "")
            if channel is not None:
                answered = channel.answer_timestamp or now
                self._publish("updated", channel.with_(
                    answer_timestamp=answered, other_uuid=other,
                    state=ChannelState(now, "bridged"), last_event="CHANNEL_ANSWER",
                ))  # fmt: skip

    def ended(self, ended_by: str) -> None:
        """Remove what is left: the answered member and the destination."""
        self.sync_members()
        status = self.call.destination_status
        for channel in list(self.published.values()):
            if channel.uuid == self._answered_member():
                data = f"{'recv' if ended_by == 'member' else 'send'}_bye,NORMAL_CLEARING"
            elif channel.answer_timestamp is not None:
                data = f"{'recv' if ended_by == 'destination' else 'send'}_bye,NORMAL_CLEARING"
            elif status is not None:
                data = refusal(status)
            else:
                data = "send_cancel,ORIGINATOR_CANCEL"
            self._remove(channel, data)

    def _remove(self, channel: Channel, data: str) -> None:
        self._publish("removed", channel.with_(
            hangup_timestamp=_now_us(), last_event="CHANNEL_HANGUP", last_event_data=data,
        ))  # fmt: skip

    def _answered_member(self) -> str | None:
        index = self.call.answered_index
        return None if index is None else self.call.hunt.attempts[index].uuid
