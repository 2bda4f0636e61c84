"""The channel element of CTI (API §4): fields, JSON shape and BERT row.

Rows are positional in ``FIELDS`` order (the ``field_spec`` message tells clients the order).
Shapes follow what Basix's client library decodes:
- ``state`` is a tuple ``{ts, name, …data}`` with a Basix state name only; ``calling``
  carries ``{location, type, target_data}`` (``{user_id}``, ``{group_type, group_id}`` or
  ``{address}``). Progress within a state (the phone is ringing) is the tag ``ringing``,
  never a new state name: the client knows only Basix's names.
- ``target`` is ``{type, id, name, address}``; ``other_info`` (a summary of the peer
  channel) is ``{type, user_id | end_user, direction, peer_location, address,
  offer_timestamp, group_id}`` with type ``user`` or ``end_user``.
- ``end_user`` is ``id*name*organization*avatar*prefecture`` (each URL-encoded;
  ``_MANY_:<count>|item|…`` for several), ``origination`` a ``*``-joined string of URL-encoded
  tokens, ``tags`` a ``;``-joined string; missing values are the atom ``undefined``.
- ``last_event`` is ``STATE_CHANGE``, ``CHANNEL_ANSWER`` or ``CHANNEL_HANGUP``.
Timestamps are µs since the epoch. The JSON variant carries the same values as objects, the
shapes the client library builds from the row.

A channel also has a lossless state (``to_state``/``channel_from_state``): JSON values
from which another node re-creates the same channel, field for field, so its rows are the
same bytes. It is not the ``format=json`` shape (``to_json``), which is a client's.

Ours, in JSON only: ``call`` (``CallSummary``), where the call of a calling-side channel goes
and for which group, from the moment the channel is added. Basix's row has no field for it
and its client reads rows by position, so the BERT row never carries it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from switchboard.cti.bert import Atom, Term
from switchboard.quick_init import quick_init

FIELDS = (
    "uuid",
    "direction",
    "peer_location",
    "calling_name",
    "calling_number",
    "called_number",
    "offer_timestamp",
    "answer_timestamp",
    "hangup_timestamp",
    "other_uuid",
    "user_id",
    "group_id",
    "state",
    "target",
    "origination",
    "end_user",
    "tags",
    "last_event",
    "last_event_data",
    "call_id",
    "other_info",
    "last_bridged_user_id",
)

# Basix's state names (its client's translate_state knows these and nothing else).
STATE_NAMES = frozenset(
    (
        "calling",
        "bridged",
        "voicemail",
        "checking_voicemail",
        "calling_siptermination",
        "ivr",
        "system_operation",
        "conference",
        "xml_ivr",
        "park",
        "eavesdrop",
    )
)
LAST_EVENTS = frozenset(("STATE_CHANGE", "CHANNEL_ANSWER", "CHANNEL_HANGUP"))


@dataclass(frozen=True, slots=True)
class EndUserItem:
    id: str | None = None
    name: str | None = None
    organization: str | None = None
    avatar: str | None = None
    prefecture: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "name": self.name,
            "organization": self.organization,
            "avatar": self.avatar,
            "prefecture": self.prefecture,
        }


@quick_init
@dataclass(frozen=True, slots=True)
class ChannelState:
    ts: int
    name: str  # a Basix state name: calling | bridged | …
    target_location: str | None = None  # calling: int | ext
    target_type: str | None = None  # calling: user | group | pstn
    target_id: int | None = None
    group_type: str | None = None  # calling a group: hunt | ring
    address: str | None = None
    # park: where the call waits (its channel: a transfer of it picks it up), for how
    # long, and who parked it (Basix's client reads positions 2, 4 and 5)
    slot: str | None = None
    timeout: int | None = None
    parker_id: int | None = None
    parker_name: str | None = None

    def __post_init__(self) -> None:
        if self.name not in STATE_NAMES:
            raise ValueError(f"{self.name!r} is not a Basix channel state")

    def data(self) -> dict[str, Any]:
        if self.name == "park":
            return {"slot": self.slot, "parker_id": self.parker_id, "parker_name": self.parker_name}
        if self.name != "calling":
            return {}
        data: dict[str, Any] = {
            "target_location": self.target_location,
            "target_type": self.target_type,
        }
        if self.target_type == "user":
            data["user_id"] = self.target_id
        elif self.target_type == "group":
            data.update(group_type=self.group_type, group_id=self.target_id)
        elif self.target_type == "pstn":
            data["address"] = self.address
        return data

    def term(self) -> Term:
        if self.name == "park":
            return (
                self.ts,
                Atom("park"),
                self.slot,
                self.timeout,
                self.parker_id,
                self.parker_name,
            )
        if self.name != "calling":
            return (self.ts, Atom(self.name))
        if self.target_type == "user":
            target_data: Term = (self.target_id,)
        elif self.target_type == "group" and self.group_type == "ring":
            # the client reads a ring group's queue id at position 4: none here
            target_data = (Atom("ring"), self.target_id, None, None, None)
        elif self.target_type == "group":
            target_data = (Atom(self.group_type or "hunt"), self.target_id)
        else:
            target_data = (self.address,)
        return (
            self.ts,
            Atom("calling"),
            Atom(self.target_location or "int"),
            Atom(self.target_type or "user"),
            target_data,
        )


@quick_init
@dataclass(frozen=True, slots=True)
class Target:
    type: str  # user | group
    id: int
    name: str
    address: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class OtherInfo:
    """The peer channel as this channel's user sees it: a user of the PBX or an end user."""

    type: str  # user | end_user
    direction: str
    peer_location: str
    address: str | None = None
    offer_timestamp: int | None = None
    user_id: int | None = None
    group_id: int | None = None
    end_user: tuple[EndUserItem, ...] = ()

    def term(self) -> Term:
        who: Term = self.user_id if self.type == "user" else end_user_wire(self.end_user)
        return (
            Atom(self.type),
            who,
            Atom(self.direction),
            Atom(self.peer_location),
            self.address,
            self.offer_timestamp,
            self.group_id,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "direction": self.direction,
            "peer_location": self.peer_location,
            "address": self.address,
            "offer_timestamp": self.offer_timestamp,
        }
        if self.type == "user":
            out.update(user_id=self.user_id, group_id=self.group_id)
        else:
            out["end_user"] = end_user_json(self.end_user)
        return out


@dataclass(frozen=True, slots=True)
class CallGroup:
    """The group a call is made for: call_group's calling group, call_user's context."""

    id: int
    name: str
    strategy: str | None = None  # hunt | ring: how the call rings its members; None: context

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "strategy": self.strategy}


@dataclass(frozen=True, slots=True)
class CallSummary:
    """Ours, JSON only: what a member's channel is rung for. The destination channel
    appears only once a member answered; a board shows this while the member rings."""

    destination_type: str  # user | group | pstn
    destination: str  # the party: the PSTN number, the user's or the group's name
    end_user: tuple[EndUserItem, ...] = ()
    group: CallGroup | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "destination": {
                "type": self.destination_type,
                "party": self.destination,
                "end_user": end_user_json(self.end_user),
            },
            "group": self.group.to_json() if self.group else None,
        }


@quick_init
@dataclass(frozen=True, slots=True)
class Channel:
    ELEMENT: ClassVar[str] = "channel"

    uuid: str
    domain: str
    direction: str = "outbound"
    peer_location: str = "internal"
    calling_name: str | None = None
    calling_number: str | None = None
    called_number: str | None = None
    offer_timestamp: int | None = None
    answer_timestamp: int | None = None
    hangup_timestamp: int | None = None
    other_uuid: str | None = None
    user_id: int | None = None
    group_id: int | None = None
    state: ChannelState | None = None
    target: Target | None = None
    origination: tuple[str, ...] = ()
    end_user: tuple[EndUserItem, ...] = ()
    tags: tuple[str, ...] = field(default=())
    last_event: str | None = None
    last_event_data: str | None = None
    call_id: str | None = None
    other_info: OtherInfo | None = None
    last_bridged_user_id: int | None = None
    call: CallSummary | None = None  # JSON only: not in FIELDS, so never in a BERT row

    def __post_init__(self) -> None:
        if self.last_event is not None and self.last_event not in LAST_EVENTS:
            raise ValueError(f"{self.last_event!r} is not a Basix last_event")

    @property
    def key(self) -> str:
        return self.uuid

    def with_(self, **changes: Any) -> Channel:
        """A copy with ``changes``, as ``dataclasses.replace`` makes it, without its
        per-call field introspection and keyword ``__init__``: a call_group makes about
        twenty (5.7 -> 2.7 µs each)."""
        new = object.__new__(Channel)
        for set_slot, value in zip(_SLOT_SETTERS, _all_fields(self), strict=True):
            set_slot(new, value)
        for name, value in changes.items():
            setter = _SLOT_SETTER.get(name)
            if setter is None:
                raise TypeError(f"Channel has no field {name!r}")
            setter(new, value)
        if "last_event" in changes:
            new.__post_init__()
        return new

    def tagged(self, tag: str) -> Channel:
        return self if tag in self.tags else self.with_(tags=(*self.tags, tag))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        out["state"] = (
            {"ts": self.state.ts, "name": self.state.name, "data": self.state.data()}
            if self.state
            else None
        )
        out["target"] = (
            {
                "type": self.target.type,
                "id": self.target.id,
                "name": self.target.name,
                "address": self.target.address,
            }
            if self.target
            else None
        )
        out["origination"] = list(self.origination) or None
        out["end_user"] = end_user_json(self.end_user)
        out["tags"] = list(self.tags)
        out["other_info"] = self.other_info.to_json() if self.other_info else None
        out["call"] = self.call.to_json() if self.call else None
        return out

    def to_state(self) -> dict[str, Any]:
        """Every field, nested ones included, as JSON values (``channel_from_state``)."""
        state: dict[str, Any] = {"element": self.ELEMENT}
        state.update(plain(self))
        return state

    def to_row(self) -> list[Term]:
        values: dict[str, Term] = {name: getattr(self, name) for name in FIELDS}
        values["direction"] = Atom(self.direction)
        values["peer_location"] = Atom(self.peer_location)
        values["state"] = self.state.term() if self.state else None
        values["target"] = (
            (Atom(self.target.type), self.target.id, self.target.name, self.target.address)
            if self.target
            else None
        )
        values["origination"] = (
            "*".join(quote(token, safe="") for token in self.origination)
            if self.origination
            else None
        )
        values["end_user"] = end_user_wire(self.end_user)
        values["tags"] = ";".join(self.tags) if self.tags else None
        values["last_event"] = Atom(self.last_event) if self.last_event else None
        values["other_info"] = self.other_info.term() if self.other_info else None
        return [values[name] for name in FIELDS]


_CHANNEL_FIELDS = tuple(f.name for f in fields(Channel))
_all_fields = operator.attrgetter(*_CHANNEL_FIELDS)
# The slots' own setters: a frozen dataclass refuses ``setattr``, its slots do not.
_SLOT_SETTER: dict[str, Callable[[Channel, Any], None]] = {
    name: getattr(Channel, name).__set__ for name in _CHANNEL_FIELDS
}
_SLOT_SETTERS = tuple(_SLOT_SETTER.values())


def end_user_wire(items: tuple[EndUserItem, ...]) -> str | None:
    if not items:
        return None

    def one(item: EndUserItem) -> str:
        parts = (item.id, item.name, item.organization, item.avatar, item.prefecture)
        return "*".join(quote(part or "", safe="") for part in parts)

    if len(items) == 1:
        return one(items[0])
    return f"_MANY_:{len(items)}|" + "|".join(one(item) for item in items)


def end_user_json(items: tuple[EndUserItem, ...]) -> dict[str, Any] | None:
    if not items:
        return None
    return {"count": len(items), "items": [item.to_json() for item in items]}


# -- the lossless state -------------------------------------------------------------------

D = TypeVar("D")


_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # a dataclass's fields, looked up once


def plain(value: Any) -> Any:
    """A dataclass as JSON values: a dict per dataclass, a list per tuple. (Every CTI event
    of a cluster node goes through it: scalars first, field names looked up once per class;
    measured 35 -> 9 µs for a ringing channel.)"""
    kind = type(value)
    if kind in _SCALARS:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if not is_dataclass(value) or isinstance(value, type):
            if isinstance(value, tuple | list):
                return [plain(item) for item in value]
            return value
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    return {name: plain(getattr(value, name)) for name in names}


def channel_from_state(state: Mapping[str, Any]) -> Channel:
    """The channel ``Channel.to_state`` gave; ValueError when ``state`` is not one."""
    try:
        values = {name: value for name, value in state.items() if name != "element"}
        values["state"] = _optional(ChannelState, values.get("state"))
        values["target"] = _optional(Target, values.get("target"))
        values["origination"] = tuple(values.get("origination", ()))
        values["end_user"] = _end_users(values.get("end_user", ()))
        values["tags"] = tuple(values.get("tags", ()))
        other = values.get("other_info")
        values["other_info"] = (
            None
            if other is None
            else OtherInfo(**{**other, "end_user": _end_users(other.get("end_user", ()))})
        )
        call = values.get("call")
        values["call"] = (
            None
            if call is None
            else CallSummary(
                **{
                    **call,
                    "end_user": _end_users(call.get("end_user", ())),
                    "group": _optional(CallGroup, call.get("group")),
                }
            )
        )
        return Channel(**values)
    except (TypeError, AttributeError) as exc:  # a missing, unknown or mistyped field
        raise ValueError(f"not a channel's state: {exc}") from None


def _optional(cls: type[D], value: Mapping[str, Any] | None) -> D | None:
    return None if value is None else cls(**value)


def _end_users(items: list[Mapping[str, Any]]) -> tuple[EndUserItem, ...]:
    return tuple(EndUserItem(**item) for item in items)
