"""A call's last word when its node dies (issue 16, DESIGN §7). Pure.

A node of a cluster keeps, in the shared state, a snapshot of each of its live calls:
where its outcome goes, the channels it shows, the parties of its legs. When the node
dies, the node that reaps it turns each snapshot into what the dead node can no longer
say: the ``node_failed`` callback of a request whose hunt had not ended, the end-of-call
event, a call record per leg and the CTI channels to remove.

Exactly one callback per request, even when the node died after queuing its own: the
live node and the reaper store a call's callback under the same delivery id
(``delivery_id``), and the outbox keeps only the first (a unique column).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchboard.pbx.destinations import party
from switchboard.pbx.legs import Call
from switchboard.pbx.outcome import iso
from switchboard.pbx.plan import Caller
from switchboard.store.records import CallRecord

CAUSE = "node_failed"
HANGUP = "send_bye,NODE_FAILED"  # the CTI and records' cause form (API §4)
VERSION = 1


def delivery_id(key: str, what: str) -> str:
    """The outbox id of a call's ``result`` (the callback) or ``ended`` (its event)."""
    return f"{key}.{what}"


def snapshot(
    key: str, call: Call, callback_url: str | None, events_url: str | None
) -> dict[str, Any]:
    """What another node needs to end the call for its dead node, as JSON."""
    plan = call.plan
    legs: list[dict[str, Any]] = []
    members = call.origin.plan.members if call.origin is not None else ()
    for member in members:
        if member.channels:  # the member's record is its first terminal's (records.py)
            legs.append({"uuid": member.channels[0], "role": "member", "party": member.user})
    origin = plan.origin
    if isinstance(origin, Caller) and call.caller is not None:
        who = origin.user.name if origin.user is not None else origin.number or "anonymous"
        legs.append({"uuid": call.caller.channel, "role": "caller", "party": who})
    destination = party(plan.target.target)
    legs.append({"uuid": plan.destination_channel, "role": "destination", "party": destination})
    group = plan.group.id if plan.group is not None else None
    return {
        "v": VERSION,
        "key": key,
        "domain": plan.domain,
        "kind": plan.kind.value,
        "group_id": group,
        "callback_url": callback_url if plan.callback else None,
        "events_url": events_url if plan.call_events else None,
        "request_uuids": [channel for member in members for channel in member.channels],
        "channels": call.channels(),
        "legs": legs,
        "started_at": plan.wall(call.started_at),
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    url: str
    payload: dict[str, object]


@dataclass(frozen=True, slots=True)
class NodeFailed:
    """What the reaper says for one call of a dead node."""

    domain: str
    deliveries: list[Delivery]
    records: list[CallRecord]
    channels: list[str]  # to remove from CTI


def outcomes(snap: dict[str, Any], node: str, now: float) -> NodeFailed:
    """The dead ``node``'s call ``snap`` ended at wall time ``now``. A snapshot that is
    not ours (another version, a malformed body) raises ``ValueError``."""
    if snap.get("v") != VERSION:
        raise ValueError(f"a call snapshot of version {snap.get('v')!r}")
    try:
        key, domain = str(snap["key"]), str(snap["domain"])
        group = snap.get("group_id")
        started = snap.get("started_at")
        legs = [(str(leg["uuid"]), str(leg["role"]), str(leg["party"])) for leg in snap["legs"]]
        request_uuids = [str(uuid) for uuid in snap["request_uuids"]]
        channels = [str(uuid) for uuid in snap["channels"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a malformed call snapshot: {exc!r}") from None
    records = [
        CallRecord(
            uuid=uuid,
            domain=domain,
            role=role,
            party=who,
            group_id=group if isinstance(group, int) else None,
            other_uuid=None,
            offered_at=started if isinstance(started, float | int) else None,
            answered_at=None,
            ended_at=now,
            disposition=CAUSE,
            hangup=HANGUP,
        )
        for uuid, role, who in legs
    ]
    deliveries = []
    if isinstance(url := snap.get("callback_url"), str):
        callback: dict[str, object] = {
            "result_code": 500,
            "error": {"id": CAUSE, "description": f"node {node} failed during the hunt"},
            "request_uuids": request_uuids,
            "group_id": group,
            "attempts": [],
        }
        deliveries.append(Delivery(delivery_id(key, "result"), url, callback))
    if isinstance(url := snap.get("events_url"), str):
        event: dict[str, object] = {
            "event": "call_ended",
            "kind": snap.get("kind"),
            "domain": domain,
            "request_uuids": request_uuids,
            "ended_by": "switchboard",
            "cause": CAUSE,
            "started_at": iso(started if isinstance(started, float | int) else None),
            "ended_at": iso(now),
            "legs": [_leg(record) for record in records],
        }
        deliveries.append(Delivery(delivery_id(key, "ended"), url, event))
    return NodeFailed(domain, deliveries, records, channels)


def _leg(record: CallRecord) -> dict[str, object]:
    return {
        "uuid": record.uuid,
        "role": record.role,
        "party": record.party,
        "disposition": record.disposition,
        "hangup": record.hangup,
        "sip_status": None,
        "offered_at": iso(record.offered_at),
        "answered_at": None,
        "ended_at": iso(record.ended_at),
        "ring_seconds": None,
        "talk_seconds": None,
    }
