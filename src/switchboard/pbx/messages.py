"""What goes into the call machine (events) and what comes out (commands), DESIGN §6.

Events name legs by the ids the engine gave them; commands tell the engine what to do with
SIP legs, the media session, CTI, callbacks, records and timers. Both are plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.cti.channels import Channel
from switchboard.pbx.destinations import Destination
from switchboard.pbx.plan import Caller, HuntPlan, Role
from switchboard.quick_init import quick_init
from switchboard.store.records import CallRecord

# -- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegRinging:
    """A provisional response (180/183) on a leg we called; ``sdp`` if it carried one."""

    leg: str
    status: int = 180
    sdp: bytes = b""


@dataclass(frozen=True, slots=True)
class LegAnswered:
    leg: str
    sdp: bytes = b""


@dataclass(frozen=True, slots=True)
class LegFailed:
    """A final response of 300 or more (408 when Timer B fired, 487 after our CANCEL), or
    a leg that could not be tried (``reason`` says why: a trunk that is down)."""

    leg: str
    status: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LegHungUp:
    """The peer ended the leg: BYE on an answered leg, CANCEL from a caller still ringing."""

    leg: str


@quick_init
@dataclass(frozen=True, slots=True)
class MemberRung:
    """The engine's answer to ``RingMember``: the legs it started, ``(leg id, channel)``;
    none when the member has no terminal left."""

    role: Role
    member: int
    legs: tuple[tuple[str, str], ...]


@quick_init
@dataclass(frozen=True, slots=True)
class Timer:
    name: str  # origin | destination (the hunts) | max_call


@dataclass(frozen=True, slots=True)
class Hangup:
    """The API, a CTI client, dead media or shutdown ends the call."""

    reason: str


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where the party that stays goes next: a new destination, rung as a hunt. The
    engine plans it; ``caller`` is that party as the new destination is shown it."""

    caller: Caller
    destination: HuntPlan
    target: Destination
    channel: str  # the new destination's channel


@dataclass(frozen=True, slots=True)
class Transfer:
    """Blind transfer (API §4's socket command, and REST): the peer of ``channel`` is
    connected to a new destination and ``channel`` is released; a parked channel itself
    is connected (that is how a parked call is picked up)."""

    channel: str
    to: Redirect


@dataclass(frozen=True, slots=True)
class Park:
    """The peer of ``channel`` waits alone, hearing a tone, and ``channel`` is released;
    after ``timeout`` seconds the call rings ``back`` (the parker), or ends."""

    channel: str
    timeout: float
    back: Redirect | None


Event = (
    LegRinging | LegAnswered | LegFailed | LegHungUp | MemberRung | Timer | Hangup | Transfer | Park
)
EVENT_TYPES: tuple[type[Event], ...] = (
    LegRinging,
    LegAnswered,
    LegFailed,
    LegHungUp,
    MemberRung,
    Timer,
    Hangup,
    Transfer,
    Park,
)

# -- commands -----------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class RingMember:
    """INVITE every terminal of ``user`` (or, ``user`` None, the PSTN number) as one leg
    each, with the side's SDP offer; answer with ``MemberRung``."""

    role: Role
    member: int
    user: str | None
    planned: Mapping[str, str] = field(default_factory=dict)
    channel: str | None = None
    number: str | None = None  # with ``user`` None: the number to ring (else the target's)


@dataclass(frozen=True, slots=True)
class Cancel:
    leg: str


@dataclass(frozen=True, slots=True)
class Bye:
    leg: str


@dataclass(frozen=True, slots=True)
class Progress:
    """Tell the caller its call progresses: 180, or 183 with our early-media answer."""

    leg: str
    status: int


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the caller with our SDP answer to its offer."""

    leg: str


@dataclass(frozen=True, slots=True)
class Reject:
    leg: str
    status: int


@dataclass(frozen=True, slots=True)
class AcceptAnswer:
    """Negotiate the side's media with the SDP answer ``sdp`` that ``leg`` sent."""

    role: Role
    leg: str
    sdp: bytes


@dataclass(frozen=True, slots=True)
class StartRingback:
    """The origin's answered leg (a member, or the party that stays after a transfer or a
    park) hears ringback while the destination rings."""


@dataclass(frozen=True, slots=True)
class Regroup:
    """A transfer or a park: the party that stays is the origin from now on (``swapped``:
    it was the destination, so the sides' media legs change places), and the media leg
    toward the destination has no peer until a new one answers."""

    swapped: bool


@dataclass(frozen=True, slots=True)
class Bridge:
    pass


@quick_init
@dataclass(frozen=True, slots=True)
class SetTimer:
    name: str
    at: float | None  # None clears it


@dataclass(frozen=True, slots=True)
class SetBusy:
    user: str
    busy: bool


@quick_init
@dataclass(frozen=True, slots=True)
class Publish:
    event: str  # added | updated | removed
    channel: Channel


@dataclass(frozen=True, slots=True)
class QueueCallback:
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """The end-of-call event, for the call's ``call_events_url`` (API §3b)."""

    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WriteRecords:
    records: tuple[CallRecord, ...]


@dataclass(frozen=True, slots=True)
class Release:
    """The call is over: close its media and give back what it took. Always the last."""


Command = (
    RingMember
    | Cancel
    | Bye
    | Progress
    | Answer
    | Reject
    | AcceptAnswer
    | StartRingback
    | Regroup
    | Bridge
    | SetTimer
    | SetBusy
    | Publish
    | QueueCallback
    | QueueEvent
    | WriteRecords
    | Release
)
