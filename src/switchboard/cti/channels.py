"""The channel element of CTI (API §4): fields, JSON shape and BERT row.

Rows are positional in ``FIELDS`` order (the ``field_spec`` message tells clients the order).
Shapes follow Basix's client library: ``state`` travels as a tuple ``{ts, name, …data}``,
``target`` as ``{type, id, name, address}``, ``end_user`` as ``id*name*organization*avatar*
prefecture`` (each URL-encoded; ``_MANY_:<count>|item|…`` for several), ``tags`` as a
``;``-joined string, missing values as the atom ``undefined``. Timestamps are µs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from switchboard.cti.bert import Atom, Term

FIELDS = (
    "uuid", "direction", "peer_location", "calling_name", "calling_number", "called_number",
    "offer_timestamp", "answer_timestamp", "hangup_timestamp", "other_uuid", "user_id",
    "group_id", "state", "target", "origination", "end_user", "tags", "last_event",
    "last_event_data", "call_id",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EndUserItem:
    id: str | None = None
    name: str | None = None
    organization: str | None = None
    avatar: str | None = None
    prefecture: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelState:
    ts: int
    name: str  # calling | bridged | …
    target_location: str | None = None  # calling: int | ext
    target_type: str | None = None  # calling: user | group | pstn
    target_id: int | None = None
    group_type: str | None = None
    address: str | None = None

    def data(self) -> dict[str, Any]:
        if self.name != "calling":
            return {}
        data: dict[str, Any] = {"target_location": self.target_location,
                                "target_type": self.target_type}  # fmt: skip
        if self.target_type == "user":
            data["user_id"] = self.target_id
        elif self.target_type == "group":
            data.update(group_type=self.group_type, group_id=self.target_id)
        elif self.target_type == "pstn":
            data["address"] = self.address
        return data

    def term(self) -> Term:
        if self.name != "calling":
            return (self.ts, Atom(self.name))
        if self.target_type == "user":
            target_data: Term = (self.target_id,)
        elif self.target_type == "group":
            target_data = (Atom(self.group_type or "hunt"), self.target_id)
        else:
            target_data = (self.address,)
        return (self.ts, Atom("calling"), Atom(self.target_location or "int"),
                Atom(self.target_type or "user"), target_data)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Target:
    type: str  # user | group
    id: int
    name: str
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Channel:
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
    origination: str | None = None
    end_user: tuple[EndUserItem, ...] = ()
    tags: tuple[str, ...] = field(default=())
    last_event: str | None = None
    last_event_data: str | None = None
    call_id: str | None = None

    def with_(self, **changes: Any) -> Channel:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        out["state"] = (
            {"ts": self.state.ts, "name": self.state.name, "data": self.state.data()}
            if self.state else None
        )  # fmt: skip
        out["target"] = (
            {"type": self.target.type, "id": self.target.id, "name": self.target.name,
             "address": self.target.address} if self.target else None
        )  # fmt: skip
        out["end_user"] = (
            {"count": len(self.end_user),
             "items": [{"id": e.id, "name": e.name, "organization": e.organization,
                        "avatar": e.avatar} for e in self.end_user]}
            if self.end_user else None
        )  # fmt: skip
        out["tags"] = list(self.tags)
        return out

    def to_row(self) -> list[Term]:
        values: dict[str, Term] = {name: getattr(self, name) for name in FIELDS}
        values["direction"] = Atom(self.direction)
        values["peer_location"] = Atom(self.peer_location)
        values["state"] = self.state.term() if self.state else None
        values["target"] = (
            (Atom(self.target.type), self.target.id, self.target.name, self.target.address)
            if self.target else None
        )  # fmt: skip
        values["end_user"] = end_user_wire(self.end_user) if self.end_user else None
        values["tags"] = ";".join(self.tags) if self.tags else None
        values["last_event"] = Atom(self.last_event) if self.last_event else None
        return [values[name] for name in FIELDS]


def end_user_wire(items: tuple[EndUserItem, ...]) -> str:
    def one(item: EndUserItem) -> str:
        parts = (item.id, item.name, item.organization, item.avatar, item.prefecture)
        return "*".join(quote(part or "", safe="") for part in parts)

    if len(items) == 1:
        return one(items[0])
    return f"_MANY_:{len(items)}|" + "|".join(one(item) for item in items)
