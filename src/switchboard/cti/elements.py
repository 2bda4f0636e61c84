"""The directory elements of CTI (API §4): ``domain``, ``user``, ``group``, ``group_member``,
``terminal``, and the empty ``channel_waiting``.

Basix's client keeps a store per element and fills it from ``initial_info``, keyed by ``id``
(``user``, ``group``, ``group_member``, ``terminal``) or ``uuid`` (the others), then follows
``info_event``s. Rows are positional in each element's ``FIELDS`` order, which ``field_spec``
announces. Values: integers, UTF-8 binaries (the client UTF-8-decodes ``label``), booleans
as atoms, ``undefined`` for what is missing.

Ours, where Basix's documentation is silent: a user's ``presence`` is ``available`` while
one of its terminals is registered (or it has a static one) and ``offline`` otherwise; a
group member's ``priority`` is its place in the hunting order (1 first) and
``login_status`` is 1 (logged in: members are never logged out of a group here); a
terminal is one registration binding or one static contact of the config file, its ``id``
stable for that contact.

Every element has a lossless state (``to_state``, ``element_from_state``): JSON values from
which another node of a cluster re-creates the same element, so its frames are the same
bytes. ``to_json`` is the ``format=json`` wire shape, a client's, and stays as it is.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from switchboard.cti.bert import Term
from switchboard.cti.channels import FIELDS as CHANNEL_FIELDS
from switchboard.cti.channels import Channel, channel_from_state
from switchboard.quick_init import quick_init

GROUP_TYPES = {"ring": 0, "hunt": 1}  # Basix's group ``type``


class _Row:
    """Rows whose wire values are their attributes, in ``FIELDS`` order."""

    __slots__ = ()
    ELEMENT: ClassVar[str]
    FIELDS: ClassVar[tuple[str, ...]]
    KEY: ClassVar[str] = "id"

    @property
    def key(self) -> str | int:
        value: str | int = getattr(self, self.KEY)
        return value

    def to_row(self) -> list[Term]:
        return [getattr(self, name) for name in self.FIELDS]

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def to_state(self) -> dict[str, Any]:
        """Every attribute, ``domain`` included (``element_from_state``)."""
        state: dict[str, Any] = {"element": self.ELEMENT}
        state.update((f.name, getattr(self, f.name)) for f in fields(self))  # type: ignore[arg-type]
        return state


@dataclass(frozen=True, slots=True)
class DomainRow(_Row):
    ELEMENT: ClassVar[str] = "domain"
    FIELDS: ClassVar[tuple[str, ...]] = ("uuid", "name", "channel_limit", "calling_number")
    KEY: ClassVar[str] = "uuid"

    domain: str
    uuid: str
    name: str
    channel_limit: int
    calling_number: str | None


@quick_init
@dataclass(frozen=True, slots=True)
class UserRow(_Row):
    ELEMENT: ClassVar[str] = "user"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "label",
        "main_extension",
        "email",
        "did",
        "presence",
    )

    domain: str
    id: int
    name: str
    label: str | None
    main_extension: str | None
    email: str | None
    did: str | None
    presence: str  # available | offline


@dataclass(frozen=True, slots=True)
class GroupRow(_Row):
    ELEMENT: ClassVar[str] = "group"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "type",
        "main_extension",
        "label",
        "did",
        "answer_timeout",
        "member_answer_timeout",
    )

    domain: str
    id: int
    name: str
    type: int  # 0 ring, 1 hunt
    main_extension: str | None
    label: str | None
    did: str | None
    answer_timeout: int
    member_answer_timeout: int


@quick_init
@dataclass(frozen=True, slots=True)
class GroupMemberRow(_Row):
    ELEMENT: ClassVar[str] = "group_member"
    FIELDS: ClassVar[tuple[str, ...]] = ("id", "group_id", "user_id", "priority", "login_status")

    domain: str
    id: str  # "<group_id>:<user_id>"
    group_id: int
    user_id: int
    priority: int
    login_status: int


@quick_init
@dataclass(frozen=True, slots=True)
class TerminalRow(_Row):
    ELEMENT: ClassVar[str] = "terminal"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "assoc_user_id",
        "type",
        "user_agent",
        "registered",
        "address",
    )

    domain: str
    id: str
    name: str  # the Contact URI
    assoc_user_id: int
    type: str  # sip (registered) | static (from the config file)
    user_agent: str | None
    registered: bool
    address: str | None  # where the REGISTER came from: transport:host:port


@dataclass(frozen=True, slots=True)
class TrunkRow(_Row):
    """A trunk and its health (ours: Basix has no such element; its client keeps no store
    for it and passes its events on to the app)."""

    ELEMENT: ClassVar[str] = "trunk"
    FIELDS: ClassVar[tuple[str, ...]] = ("uuid", "id", "name", "address", "state")
    KEY: ClassVar[str] = "uuid"  # the client keys an element it does not know by uuid

    domain: str
    uuid: str  # stable per domain and trunk name
    id: str  # the trunk's name
    name: str
    address: str
    state: str  # up | down | unknown (not pinged yet, or pings off)


# The elements Basix's client keeps, in the order their field_spec and initial_info go out
# (and ours, ``trunk``, last).
ELEMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "domain": DomainRow.FIELDS,
    "user": UserRow.FIELDS,
    "group": GroupRow.FIELDS,
    "group_member": GroupMemberRow.FIELDS,
    "terminal": TerminalRow.FIELDS,
    "channel": CHANNEL_FIELDS,
    "channel_waiting": CHANNEL_FIELDS,  # calls waiting in a queue: none here (no queues)
    "trunk": TrunkRow.FIELDS,
}


ROWS: dict[str, type[DomainRow | UserRow | GroupRow | GroupMemberRow | TerminalRow | TrunkRow]] = {
    row.ELEMENT: row
    for row in (DomainRow, UserRow, GroupRow, GroupMemberRow, TerminalRow, TrunkRow)
}


def element_from_state(
    state: Mapping[str, Any],
) -> Channel | DomainRow | UserRow | GroupRow | GroupMemberRow | TerminalRow | TrunkRow:
    """The element whose ``to_state()`` this is; ValueError when it is none."""
    element = state.get("element")
    if element == Channel.ELEMENT:
        return channel_from_state(state)
    row = ROWS.get(element) if isinstance(element, str) else None
    if row is None:
        raise ValueError(f"unknown element {element!r:.40}")
    try:
        return row(**{name: value for name, value in state.items() if name != "element"})
    except TypeError as exc:  # a missing or unknown field
        raise ValueError(f"not a {element} row's state: {exc}") from None


def domain_uuid(name: str) -> str:
    """A domain's stable uuid (the client keys the domain element by ``uuid``)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


def trunk_uuid(domain: str, trunk: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{trunk}.trunk.{domain}"))


def terminal_id(domain: str, user: str, contact_key: str) -> str:
    """Stable for one contact of one user, whatever refreshes or restarts happen."""
    digest = hashlib.sha256(f"{domain}\0{user}\0{contact_key}".encode()).hexdigest()
    return digest[:16]
