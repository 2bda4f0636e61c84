"""What starts a call: the API's call_group, or an INVITE from a phone or a trunk once it
was routed (``routing``). Pure data, validated before it gets here."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.config import DomainConfig, GroupConfig, UserConfig
from switchboard.pbx.destinations import Destination
from switchboard.pbx.plan import Kind


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
    call_events_url: str | None = None  # overrides the domain's (API §3b)


@dataclass(frozen=True, slots=True)
class CallUserRequest:
    """call_user (API §2c): all of ``user``'s terminals ring at once; whoever answers is
    connected to ``destination``."""

    domain: DomainConfig
    user: UserConfig
    destination: Destination
    answer_timeout: int = 180
    calling_name: str | None = None
    callback_url: str | None = None
    call_events_url: str | None = None  # overrides the domain's (API §3b)
    auto_answer: bool = False
    group: GroupConfig | None = None  # the group context (the channel's group_id)


@dataclass(frozen=True, slots=True)
class CallExternalRequest:
    """call_external (API §2c): the PSTN ``target`` rings first; when it answers it is
    connected to an internal ``destination`` (a user, group or extension)."""

    domain: DomainConfig
    target: Destination  # a PstnTarget, with its calling_number and end_user
    destination: Destination
    answer_timeout: int = 180
    calling_name: str | None = None
    callback_url: str | None = None
    call_events_url: str | None = None  # overrides the domain's (API §3b)
    group: GroupConfig | None = None


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    domain: DomainConfig
    kind: Kind  # PHONE or TRUNK
    destination: Destination
    number: str | None  # the caller's number, shown to the destination
    name: str | None = None
    user: UserConfig | None = None  # the calling phone's user
