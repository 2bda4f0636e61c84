"""The end-of-call event (API §3b, ours): one body per call, when the whole call has
ended, built from its records: each leg's outcome, SIP status, who hung up, the cause, and
how long it rang and talked. Pure."""

from __future__ import annotations

from switchboard.pbx.legs import Call
from switchboard.pbx.outcome import iso
from switchboard.pbx.plan import Role
from switchboard.store.records import CallRecord


def end_of_call(call: Call, records: list[CallRecord]) -> dict[str, object]:
    plan = call.plan
    return {
        "event": "call_ended",
        "kind": plan.kind.value,
        "domain": plan.domain,
        "request_uuids": _request_uuids(call),
        "ended_by": call.ended_by,
        "cause": call.end_reason,
        "started_at": iso(plan.wall(call.started_at)),
        "ended_at": iso(plan.wall(call.ended_at)),
        "legs": [_leg(call, record) for record in records],
    }


def _request_uuids(call: Call) -> list[str]:
    """What the API method answered (its originating legs' channels); none for a call
    from a phone or a trunk. A transfer keeps the first origin among the earlier sides."""
    for side in (*call.earlier, call.origin):
        if side is not None and side.role is Role.ORIGIN:
            return [channel for member in side.plan.members for channel in member.channels]
    return []


def _leg(call: Call, record: CallRecord) -> dict[str, object]:
    offered, answered, ended = record.offered_at, record.answered_at, record.ended_at
    rang = (answered or ended or 0.0) - offered if offered is not None else None
    talked = (ended or answered) - answered if answered is not None and ended else None
    return {
        "uuid": record.uuid,
        "role": record.role,
        "party": record.party,
        "disposition": record.disposition,
        "hangup": record.hangup,
        "sip_status": _sip_status(call, record),
        "offered_at": iso(offered),
        "answered_at": iso(answered),
        "ended_at": iso(ended),
        "ring_seconds": round(rang, 3) if rang is not None else None,
        "talk_seconds": round(talked, 3) if talked is not None else None,
    }


def _sip_status(call: Call, record: CallRecord) -> int | None:
    """The final SIP status that settled the leg: 200 answered, else the refusal."""
    if record.answered_at is not None:
        return 200
    if record.role == "destination":
        return call.destination_status
    if record.role == "caller":
        return call.refused_with
    for side in (call.origin, *call.earlier):
        if side is not None and side.role is Role.ORIGIN:
            for attempt in side.hunt.attempts:
                if attempt.uuid == record.uuid:
                    return attempt.sip_status
    return None
