"""What a call is asked to do, fixed when it starts (DESIGN §6). Pure data.

Every call is an origin and a destination joined by a bridge. Both sides of a call_group
are hunts: the calling group's members, then the destination (a group hunts by its own
settings; a user is one member whose terminals all ring; a PSTN number is one member, the
trunk). A call placed by a phone or a trunk has a caller instead of an origin hunt: the
leg of the INVITE that came in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from switchboard.config import GroupConfig, UserConfig
from switchboard.pbx.destinations import Destination
from switchboard.pbx.hunt import Availability
from switchboard.quick_init import quick_init


class Role(enum.Enum):
    ORIGIN = "origin"
    DESTINATION = "destination"


class Kind(enum.Enum):
    """Who asked for the call: the API, a phone of the domain, or a trunk (a DID)."""

    CALL_GROUP = "call_group"
    CALL_USER = "call_user"
    CALL_EXTERNAL = "call_external"
    PHONE = "phone"
    TRUNK = "trunk"


@quick_init
@dataclass(frozen=True, slots=True)
class MemberPlan:
    """One member of a hunt: a user (its terminals ring as one leg) or the PSTN number."""

    user: str | None  # None: a PSTN number through the trunk
    availability: Availability = Availability.AVAILABLE
    number: str | None = None  # call_external's origin: the number it rings
    # call_group's members: one channel per terminal, allocated before ringing (API §2),
    # keyed by the contact's key; terminals registered since get channels of their own.
    planned: Mapping[str, str] = field(default_factory=dict)
    # Every other member: the one channel all its terminals share.
    channel: str | None = None

    @property
    def channels(self) -> list[str]:
        return list(self.planned.values())


@quick_init
@dataclass(frozen=True, slots=True)
class HuntPlan:
    members: tuple[MemberPlan, ...]
    strategy: str
    member_timeout: float
    answer_timeout: float


@dataclass(frozen=True, slots=True)
class Caller:
    """The leg of an INVITE from a phone or a trunk: already there when the call starts."""

    leg: str  # the machine's id of the leg
    channel: str  # its CTI uuid
    number: str | None  # what the far side is shown
    name: str | None
    user: UserConfig | None = None  # a phone's user


@dataclass(frozen=True, slots=True)
class CallPlan:
    domain: str
    kind: Kind
    origin: HuntPlan | Caller
    destination: HuntPlan
    target: Destination  # what the destination is, for CTI and records
    destination_channel: str
    max_call_seconds: float
    user_ids: Mapping[str, int] = field(default_factory=dict)  # the domain's users
    calling_number: str | None = None  # the domain's own, shown when nothing says better
    group: GroupConfig | None = None  # call_group's calling group, call_user's context
    calling_name: str | None = None
    callback: bool = False  # queue the hunt's outcome (a request with a callback_url)
    auto_answer: bool = False  # call_user asked the user's terminals to answer by themselves
    origin_target: Destination | None = None  # call_external: the PSTN number rung first
    call_events: bool = False  # post an end-of-call event (a call_events_url is set)
    epoch: float = 0.0  # wall-clock seconds are loop seconds plus this

    def wall(self, now: float | None) -> float | None:
        return None if now is None else now + self.epoch

    def pstn_caller_id(self, role: Role = Role.DESTINATION) -> str | None:
        """Caller ID toward the PSTN (DESIGN §5): the request's own choice for that leg,
        else the calling phone user's DID, else the domain's ``calling_number``."""
        if role is Role.ORIGIN and self.origin_target is not None:
            return self.origin_target.calling_number or self.calling_number
        chosen = self.target.calling_number
        if chosen is None and isinstance(self.origin, Caller) and self.origin.user is not None:
            chosen = self.origin.user.did
        return chosen or self.calling_number
