"""A call's state: its legs, the hunts of its two sides and its bridge (DESIGN §6). Pure
data the machine changes and the projections (CTI channels, records, the callback) read.

A leg is one SIP dialog: an INVITE we sent to one terminal, or the one a caller sent us.
Its states are ``calling`` → ``early`` (18x) → ``answered`` → ``ended``; an INVITE we
cancel stays ``calling``/``early`` (``closing``) until its final response ends it. A
member of a hunt rings as one or more legs (its terminals, forked); the first to answer
answers the member.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from switchboard.pbx.hunt import Attempt, Hunt
from switchboard.pbx.plan import Caller, CallPlan, HuntPlan, MemberPlan, Role
from switchboard.store.records import CallRecord

if TYPE_CHECKING:
    from switchboard.pbx.messages import Redirect


class LegState(enum.Enum):
    CALLING = "calling"
    EARLY = "early"
    ANSWERED = "answered"
    ENDED = "ended"


class BridgeState(enum.Enum):
    HUNTING = "hunting"  # the origin's members ring (call_group)
    CONNECTING = "connecting"  # the origin is up (or waiting, a caller); the destination rings
    BRIDGED = "bridged"
    PARKED = "parked"  # the party that stays hears a tone, alone, until retrieved or timed out
    ENDED = "ended"


@dataclass(slots=True)
class Leg:
    id: str
    role: Role
    member: int
    channel: str  # the CTI uuid (several forks of one member may share one)
    incoming: bool = False
    state: LegState = LegState.CALLING
    closing: bool = False  # we cancelled or refused it; its end is on its way
    status: int | None = None  # its final failure status
    ringing: bool = False
    answer: bytes = b""  # the SDP of its 2xx (or a caller's offer)
    peer_hung_up: bool = False

    @property
    def live(self) -> bool:
        return self.state is not LegState.ENDED


@dataclass(slots=True)
class Side:
    """A hunt over members, each rung as the legs of its terminals."""

    role: Role
    plan: HuntPlan
    hunt: Hunt
    legs: list[list[str]]  # per member, the legs rung
    answered: list[str | None]  # per member, the leg that answered it
    rung: list[bool]  # per member, whether the engine said which legs it rang

    @classmethod
    def of(cls, role: Role, plan: HuntPlan) -> Side:
        attempts = [
            Attempt(_first_channel(member), member.user or member.number or "", member.availability)
            for member in plan.members
        ]
        hunt = Hunt(
            attempts,
            strategy=plan.strategy,
            member_timeout=plan.member_timeout,
            answer_timeout=plan.answer_timeout,
        )
        count = len(plan.members)
        return cls(role, plan, hunt, [[] for _ in range(count)], [None] * count, [False] * count)

    @property
    def timer(self) -> str:
        return self.role.value

    def winner(self) -> tuple[int, str] | None:
        """The member that answered and its leg, once the hunt connected one."""
        outcome = self.hunt.outcome
        if outcome is None or outcome.answered is None:
            return None
        leg = self.answered[outcome.answered]
        return None if leg is None else (outcome.answered, leg)


def _first_channel(member: MemberPlan) -> str:
    return member.channel or next(iter(member.planned.values()), "")


@dataclass(slots=True)
class Call:
    plan: CallPlan
    origin: Side | None
    destination: Side
    caller: Leg | None
    state: BridgeState
    legs: dict[str, Leg] = field(default_factory=dict)
    ended_by: str = "switchboard"  # origin | destination | switchboard
    started_at: float = 0.0
    destination_offered_at: float | None = None
    destination_answered_at: float | None = None
    destination_status: int | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    refused_with: int | None = None  # what a caller was refused with
    failure: str | None = None  # why a leg could not be tried (a trunk down)
    caller_answered_at: float | None = None
    busy: list[str] = field(default_factory=list)  # users this call made busy
    # A transfer or a park makes the party that stays the call's caller: the sides before
    # it, the channels they had and their finished records are kept here.
    earlier: list[Side] = field(default_factory=list)
    earlier_channels: list[str] = field(default_factory=list)
    earlier_records: list[CallRecord] = field(default_factory=list)
    park_back: Redirect | None = None  # a parked call: where its timeout rings

    @classmethod
    def of(cls, plan: CallPlan, now: float) -> Call:
        caller = None
        origin = None
        if isinstance(plan.origin, Caller):
            caller = Leg(plan.origin.leg, Role.ORIGIN, 0, plan.origin.channel, incoming=True)
            state = BridgeState.CONNECTING
        else:
            origin = Side.of(Role.ORIGIN, plan.origin)
            state = BridgeState.HUNTING
        call = cls(plan, origin, Side.of(Role.DESTINATION, plan.destination), caller, state)
        call.started_at = now
        if caller is not None:
            call.legs[caller.id] = caller
        return call

    def side(self, role: Role) -> Side | None:
        return self.origin if role is Role.ORIGIN else self.destination

    def member_legs(self, side: Side, member: int) -> list[Leg]:
        return [self.legs[leg] for leg in side.legs[member]]

    def origin_leg(self) -> Leg | None:
        """The origin's answered leg: the caller, or the member that answered."""
        if self.caller is not None:
            return self.caller
        winner = self.origin.winner() if self.origin is not None else None
        return self.legs[winner[1]] if winner is not None else None

    def destination_leg(self) -> Leg | None:
        winner = self.destination.winner()
        return self.legs[winner[1]] if winner is not None else None

    def side_of(self, leg: Leg) -> Side | None:
        """The side a leg was rung for: the current one of its role, or one from before a
        transfer (whose events no longer move anything)."""
        current = self.side(leg.role)
        if current is not None and leg.id in _member_of(current, leg.member):
            return current
        return next((side for side in self.earlier if leg.id in _member_of(side, leg.member)), None)

    def row_of(self, leg: Leg) -> str:
        """The CTI channel a leg is shown as: the destination's channel for the destination
        (a group's member answers on it), else the leg's own."""
        if leg.role is Role.DESTINATION and not leg.incoming:
            return self.plan.destination_channel
        return leg.channel

    def channels(self) -> list[str]:
        """Every channel uuid a hangup may name: planned, rung since, and the destination."""
        planned = [
            channel
            for side in (self.origin, self.destination, *self.earlier)
            if side is not None
            for member in side.plan.members
            for channel in member.channels
        ]
        rung = [leg.channel for leg in self.legs.values()]
        destinations = [*self.earlier_channels, self.plan.destination_channel]
        return list(dict.fromkeys([*planned, *rung, *destinations]))


def _member_of(side: Side, member: int) -> list[str]:
    return side.legs[member] if member < len(side.legs) else []
