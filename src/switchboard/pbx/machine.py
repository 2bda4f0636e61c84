"""The call machine (DESIGN §6): events and ``now`` in, commands out. Pure: it imports no
asyncio, clock or uuid; the engine gives it ids and time and carries out its commands.

The bridge's states are ``hunting`` (call_group: the calling group's members ring) →
``connecting`` (the origin is up, or a caller waits; the destination rings) → ``bridged``
→ ``ended``. ``TABLE`` lists what every event does in every state; nothing else happens.

Rules the table's handlers keep:
- A member's first 2xx answers it: its other terminals are cancelled; a 2xx from a leg we
  no longer want (a sibling's, one crossing our CANCEL, one after the call ended) gets BYE.
- A member whose terminals all refused failed with the most telling status (486, then
  603, then the lowest); one with no terminal left to ring is passed over as unregistered.
- The origin answering (call_group) queues the outcome, plays ringback and rings the
  destination; the destination answering bridges (and answers a caller). The destination
  failing ends the call: BYE to the member, or the caller refused with a status saying why.
- Either answered side hanging up ends the other; a caller's CANCEL ends everything.
- ``max_call_seconds`` from the origin's answer (a caller's arrival) ends the call.
- A transfer or a park (bridged calls only; a parked call can be transferred) releases
  the named leg; the party that stays becomes the call's caller (the origin), and either
  waits alone hearing a tone (``parked``) or hears ringback while a new destination rings
  (``connecting`` again). A park's timeout rings the parker, or ends the call.
- The end releases everything exactly once: timers cleared, busy users freed, channels
  removed, records written, then ``Release``.
"""

from __future__ import annotations

from collections.abc import Callable

from switchboard.pbx import outcome as outcomes
from switchboard.pbx.channels import ChannelBook
from switchboard.pbx.events import end_of_call
from switchboard.pbx.hunt import Cancel as CancelMember
from switchboard.pbx.hunt import Command as HuntCommand
from switchboard.pbx.hunt import Connect, Finished, Hangup, Ring
from switchboard.pbx.legs import BridgeState, Call, Leg, LegState, Side
from switchboard.pbx.messages import (
    AcceptAnswer,
    Answer,
    Bridge,
    Bye,
    Cancel,
    Command,
    Event,
    LegAnswered,
    LegFailed,
    LegHungUp,
    LegRinging,
    MemberRung,
    Park,
    Progress,
    QueueCallback,
    QueueEvent,
    Reject,
    Release,
    RingMember,
    SetBusy,
    SetTimer,
    StartRingback,
    Timer,
    Transfer,
    WriteRecords,
)
from switchboard.pbx.messages import Hangup as HangupCall
from switchboard.pbx.plan import Caller, CallPlan, Role
from switchboard.pbx.records import build as build_records
from switchboard.pbx.refusals import destination_cause, failure_status, last_status, refusal
from switchboard.pbx.transfer import PARK, TransferSteps

MAX_CALL = "max_call"

Handler = Callable[["CallMachine", Event, float], None]


class CallMachine(TransferSteps):
    def __init__(self, plan: CallPlan, now: float) -> None:
        self.call = Call.of(plan, now)
        self.channels = ChannelBook(self.call)
        self.outcome: dict[str, object] | None = None
        self._out: list[Command] = []

    @property
    def state(self) -> BridgeState:
        return self.call.state

    @property
    def ended(self) -> bool:
        return self.call.state is BridgeState.ENDED

    # -- inputs ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Command]:
        self._out = []
        call = self.call
        if call.origin is not None:
            self._apply(call.origin, call.origin.hunt.start(now), now)
        else:
            self._emit(SetTimer(MAX_CALL, now + call.plan.max_call_seconds))
            self._start_destination(now)
        return self._take()

    def handle(self, event: Event, now: float) -> list[Command]:
        self._out = []
        TABLE[(self.call.state, type(event))](self, event, now)
        return self._take()

    def _take(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    def _emit(self, *commands: Command) -> None:
        self._out.extend(commands)

    # -- leg events -----------------------------------------------------------------------

    def _leg_ringing(self, event: Event, now: float) -> None:
        assert isinstance(event, LegRinging)
        leg = self._outgoing(event.leg)
        if leg is None or leg.state not in (LegState.CALLING, LegState.EARLY):
            return
        if self.call.side_of(leg) in self.call.earlier:
            return  # rung before a transfer, cancelled since
        leg.state = LegState.EARLY
        self._out += self.channels.ringing(leg.channel, now)
        if leg.role is Role.DESTINATION and leg.channel != self.call.plan.destination_channel:
            # a destination group's member rings: the group's channel says so
            self._out += self.channels.ringing(self.call.plan.destination_channel, now)
        if leg.role is not Role.DESTINATION or leg.closing:
            return
        caller = self.call.caller
        if event.sdp and self.call.destination_answered_at is None:
            # early media (RFC 3960): the destination's own tones replace ringback
            self._emit(AcceptAnswer(Role.DESTINATION, leg.id, event.sdp))
        if caller is not None and caller.state is LegState.CALLING:
            caller.state = LegState.EARLY
            self._emit(Progress(caller.id, 183 if event.sdp else 180))

    def _leg_answered(self, event: Event, now: float) -> None:
        assert isinstance(event, LegAnswered)
        leg = self._outgoing(event.leg)
        if leg is None or leg.state is LegState.ANSWERED:
            return
        side = self.call.side_of(leg)
        if side is None or side in self.call.earlier:  # rung before a transfer: not wanted
            leg.state = LegState.ANSWERED
            self._bye(leg)
            return
        wanted = (
            not leg.closing
            and leg.state is not LegState.ENDED
            and side.answered[leg.member] is None
            and not side.hunt.finished
        )
        leg.state = LegState.ANSWERED
        leg.answer = event.sdp
        if not wanted:
            self._bye(leg)
            self._sync(side, now)
            return
        side.answered[leg.member] = leg.id
        for sibling in self.call.member_legs(side, leg.member):
            if sibling is not leg:
                self._cancel(sibling)
        self._apply(side, side.hunt.answered(leg.member, now), now)

    def _leg_failed(self, event: Event, now: float) -> None:
        assert isinstance(event, LegFailed)
        leg = self._outgoing(event.leg)
        if leg is None or leg.state in (LegState.ANSWERED, LegState.ENDED):
            return
        leg.state, leg.status = LegState.ENDED, event.status
        if event.reason is not None:
            self.call.failure = event.reason
        side = self.call.side_of(leg)
        if side is None or side in self.call.earlier:
            return
        legs = self.call.member_legs(side, leg.member)
        if side.answered[leg.member] is None and all(not other.live for other in legs):
            self._apply(side, side.hunt.failed(leg.member, failure_status(legs), now), now)
        else:
            self._sync(side, now)

    def _leg_hung_up(self, event: Event, now: float) -> None:
        assert isinstance(event, LegHungUp)
        leg = self.call.legs.get(event.leg)
        if leg is None or not leg.live:
            return
        if leg.incoming:  # the caller: BYE once answered, CANCEL before
            leg.state, leg.peer_hung_up = LegState.ENDED, True
            self._end("caller hung up", now, by=Role.ORIGIN)
            return
        if leg.state is not LegState.ANSWERED:
            return  # only an answered dialog can be hung up by its peer
        leg.state, leg.peer_hung_up = LegState.ENDED, True
        if leg is self.call.origin_leg():
            self._end("member hung up", now, by=Role.ORIGIN)
        elif leg is self.call.destination_leg():
            self._end("destination hung up", now, by=Role.DESTINATION)

    def _late_answer(self, event: Event, now: float) -> None:
        """After the end, a 2xx that crossed our CANCEL is hung up (§9.1)."""
        assert isinstance(event, LegAnswered)
        leg = self._outgoing(event.leg)
        if leg is not None and leg.state is not LegState.ANSWERED:
            leg.state = LegState.ANSWERED
            self._bye(leg)

    def _member_rung(self, event: Event, now: float) -> None:
        assert isinstance(event, MemberRung)
        side = self.call.side(event.role)
        assert side is not None
        side.rung[event.member] = True
        for leg_id, channel in event.legs:
            self.call.legs[leg_id] = Leg(leg_id, event.role, event.member, channel)
            side.legs[event.member].append(leg_id)
        if not event.legs:  # every terminal went away since the request: nothing was sent
            self._apply(side, side.hunt.unavailable(event.member, now), now)
        else:
            self._sync(side, now)

    def _timer(self, event: Event, now: float) -> None:
        assert isinstance(event, Timer)
        if event.name == MAX_CALL:
            self._end("max_call_seconds", now)
            return
        if event.name == PARK:
            if self.call.state is not BridgeState.PARKED:
                return
            if self.call.park_back is None:
                self._end("park timeout", now)
            else:  # the parker's phone rings again (API §4's park)
                self._redirect(self.call.park_back, now)
            return
        side = self.call.origin if event.name == Role.ORIGIN.value else self.call.destination
        if side is not None and side.hunt.answer_deadline is not None:  # a hunt that started
            self._apply(side, side.hunt.on_timer(now), now)

    def _hangup(self, event: Event, now: float) -> None:
        assert isinstance(event, HangupCall)
        self._end(event.reason, now)

    def _ignore(self, event: Event, now: float) -> None:
        """Listed in the table as nothing to do: the event came after it could matter."""

    # -- the hunts ------------------------------------------------------------------------

    def _apply(self, side: Side, commands: list[HuntCommand], now: float) -> None:
        for command in commands:
            if isinstance(command, Ring):
                member = side.plan.members[command.index]
                self._emit(
                    RingMember(
                        side.role,
                        command.index,
                        member.user,
                        member.planned,
                        member.channel,
                        member.number,
                    )
                )
            elif isinstance(command, CancelMember):
                for leg in self.call.member_legs(side, command.index):
                    self._cancel(leg)
            elif isinstance(command, Hangup):
                for leg in self.call.member_legs(side, command.index):
                    self._bye(leg) if leg.state is LegState.ANSWERED else self._cancel(leg)
            elif isinstance(command, Connect):
                self._connected(side, command.index, now)
            elif isinstance(command, Finished):
                self._finished(side, command, now)
        if not self.ended:
            self._emit(SetTimer(side.timer, side.hunt.deadline()))
        self._sync(side, now)

    def _sync(self, side: Side, now: float) -> None:
        if side.role is Role.ORIGIN and not self.ended:
            self._out += self.channels.sync_members(now)  # CTI follows each step

    def _connected(self, side: Side, index: int, now: float) -> None:
        leg_id = side.answered[index]
        assert leg_id is not None
        leg = self.call.legs[leg_id]
        self._emit(AcceptAnswer(side.role, leg.id, leg.answer))
        user = side.plan.members[index].user
        if user is not None:
            self._busy(user)
        if side.role is Role.ORIGIN:
            self.call.state = BridgeState.CONNECTING
            self._emit(StartRingback(), SetTimer(MAX_CALL, now + self.call.plan.max_call_seconds))
            self._start_destination(now)
            return
        self.call.state = BridgeState.BRIDGED
        self.call.destination_answered_at = now
        caller = self.call.caller
        if caller is not None and caller.state is not LegState.ANSWERED:
            caller.state = LegState.ANSWERED
            self.call.caller_answered_at = now
            self._emit(Answer(caller.id))
        self._emit(Bridge())
        self._out += self.channels.bridged(now)

    def _start_destination(self, now: float) -> None:
        call = self.call
        call.destination_offered_at = now
        caller = call.plan.origin
        if isinstance(caller, Caller) and caller.user is not None:
            self._busy(caller.user.name)
        self._out += self.channels.destination_dialed(now)
        self._apply(call.destination, call.destination.hunt.start(now), now)

    def _finished(self, side: Side, finished: Finished, now: float) -> None:
        if side.role is Role.ORIGIN:
            self.outcome = outcomes.payload(self.call, finished)
            if self.call.plan.callback:
                self._emit(QueueCallback(self.outcome))
            if finished.result_code != 0:
                self.call.end_reason = self.call.end_reason or f"hunt {finished.error_id}"
                self._close(now)
            return
        if finished.result_code != 0 and not self.ended:
            refuse = refusal(side)
            status = last_status(side)
            # a destination nobody could ring (busy, unregistered) refused as it would have
            self.call.destination_status = status or refuse
            # a status the destination sent ends the call by its doing; our timeout, not
            by = Role.DESTINATION if status is not None and status not in (408, 487) else None
            cause = self.call.failure or destination_cause(side, refuse)
            self._end(cause, now, by=None if self.call.failure else by, refuse=refuse)

    # -- the end --------------------------------------------------------------------------

    def _end(self, reason: str, now: float, *, by: Role | None = None, refuse: int = 480) -> None:
        call = self.call
        if self.ended:
            return
        if by is not None:
            call.ended_by = by.value
        call.end_reason = call.end_reason or reason
        origin = call.origin
        if origin is not None and not origin.hunt.finished:
            self._apply(origin, origin.hunt.stop(now), now)  # Finished ends the call
            return
        for leg in call.legs.values():
            if leg.incoming:
                if leg.live and leg.state is LegState.ANSWERED:
                    self._bye(leg)
                elif leg.live:
                    leg.state, leg.closing = LegState.ENDED, True
                    call.refused_with = refuse
                    self._emit(Reject(leg.id, refuse))
            elif leg.state is LegState.ANSWERED:
                self._bye(leg)
            else:
                self._cancel(leg)
        call.destination.hunt.stop(now)  # its cancels were sent above
        self._close(now)

    def _close(self, now: float) -> None:
        call = self.call
        call.state = BridgeState.ENDED
        call.ended_at = now
        for name in (Role.ORIGIN.value, Role.DESTINATION.value, MAX_CALL, PARK):
            self._emit(SetTimer(name, None))
        for user in call.busy:
            self._emit(SetBusy(user, False))
        self._out += self.channels.ended(now)
        records = [*call.earlier_records, *build_records(call)]
        self._emit(WriteRecords(tuple(records)))
        if call.plan.call_events:
            self._emit(QueueEvent(end_of_call(call, records)))
        self._emit(Release())

    # -- small steps ----------------------------------------------------------------------

    def _outgoing(self, leg_id: str) -> Leg | None:
        leg = self.call.legs.get(leg_id)
        return None if leg is None or leg.incoming else leg

    def _cancel(self, leg: Leg) -> None:
        if leg.state in (LegState.CALLING, LegState.EARLY) and not leg.closing:
            leg.closing = True
            self._emit(Cancel(leg.id))

    def _bye(self, leg: Leg) -> None:
        if leg.state is LegState.ANSWERED and not leg.peer_hung_up:
            leg.state = LegState.ENDED
            self._emit(Bye(leg.id))

    def _busy(self, user: str) -> None:
        if user not in self.call.busy:
            self.call.busy.append(user)
            self._emit(SetBusy(user, True))


_LEG_EVENTS: dict[type[Event], Handler] = {
    LegRinging: CallMachine._leg_ringing,
    LegAnswered: CallMachine._leg_answered,
    LegFailed: CallMachine._leg_failed,
    LegHungUp: CallMachine._leg_hung_up,
    MemberRung: CallMachine._member_rung,
    Timer: CallMachine._timer,
    HangupCall: CallMachine._hangup,
}
_LIVE = (BridgeState.HUNTING, BridgeState.CONNECTING, BridgeState.BRIDGED, BridgeState.PARKED)

# Every (state, event) pair, listed. While the call lives every leg event is handled on
# its merits (the handlers look at the leg's state); a transfer needs an answered pair (or
# a parked call), a park an answered pair; once ended, only a late 2xx still needs an
# action (BYE) and everything else is ignored.
TABLE: dict[tuple[BridgeState, type[Event]], Handler] = {
    **{(state, kind): handler for state in _LIVE for kind, handler in _LEG_EVENTS.items()},
    **{(state, Transfer): CallMachine._ignore for state in _LIVE},
    **{(state, Park): CallMachine._ignore for state in _LIVE},
    (BridgeState.BRIDGED, Transfer): CallMachine._transfer,
    (BridgeState.PARKED, Transfer): CallMachine._transfer,
    (BridgeState.BRIDGED, Park): CallMachine._park,
    **{(BridgeState.ENDED, kind): CallMachine._ignore for kind in (*_LEG_EVENTS, Transfer, Park)},
    (BridgeState.ENDED, LegAnswered): CallMachine._late_answer,
}
