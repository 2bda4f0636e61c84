"""Call records of a finished call: one per channel, with the disposition and the hangup
direction and cause in API §4's form (``send_cancel,NO_ANSWER``, ``recv_refuse,USER_BUSY``,
``recv_bye,NORMAL_CLEARING`` …). Pure: built from the call's state when it ends.

A call_group writes one record per member (role ``member``) and one for the destination;
a call from a phone or a trunk one for the caller (role ``caller``) and one for the
destination. ``ended_by`` is ``origin`` (the member or the caller), ``destination`` or
``switchboard`` (the API, timers, shutdown).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from switchboard.pbx.destinations import GroupTarget, party
from switchboard.pbx.hunt import Attempt, Result
from switchboard.pbx.legs import Call
from switchboard.pbx.plan import Caller
from switchboard.store.records import CallRecord

_REFUSAL_CAUSES = {
    486: "USER_BUSY",
    503: "NORMAL_TEMPORARY_FAILURE",
    600: "USER_BUSY",
    603: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER",
    408: "NO_ANSWER",
    480: "NO_USER_RESPONSE",
    487: "ORIGINATOR_CANCEL",
}
_BY_RESULT = {
    Result.BUSY: "recv_refuse,USER_BUSY",
    Result.REFUSED: "recv_refuse,CALL_REJECTED",
    Result.CANCELED: "send_cancel,ORIGINATOR_CANCEL",
    Result.UNREGISTERED: "send_refuse,USER_NOT_REGISTERED",
    Result.SKIPPED: "send_refuse,ORIGINATOR_CANCEL",
}


def cause(status: int) -> str:
    return _REFUSAL_CAUSES.get(status, "NORMAL_TEMPORARY_FAILURE")


def refusal(status: int) -> str:
    """A leg refused us with ``status``."""
    return f"recv_refuse,{cause(status)}"


def refused(status: int) -> str:
    """We refused a caller with ``status``."""
    return f"send_refuse,{cause(status)}"


def clearing(hung_up_by_peer: bool) -> str:
    return f"{'recv' if hung_up_by_peer else 'send'}_bye,NORMAL_CLEARING"


def member_hangup(attempt: Attempt, ended_by: str) -> str:
    """``ended_by``: "origin", "destination" or "switchboard" (API, timers, shutdown)."""
    if attempt.result is Result.ANSWERED:
        return clearing(ended_by == "origin")
    if attempt.result is Result.BUSY and attempt.sip_status is None:
        return "send_refuse,USER_BUSY"  # already on a call: passed over, no SIP sent
    if attempt.result is Result.NO_ANSWER:
        if attempt.sip_status is not None:
            return refusal(attempt.sip_status)
        return "send_cancel,NO_ANSWER"
    return _BY_RESULT.get(attempt.result or Result.SKIPPED, "send_refuse,NORMAL_CLEARING")


def target_party(call: Call) -> str:
    return party(call.plan.target.target)


def group_id(call: Call) -> int | None:
    """The calling group of a call_group, else the group a call was made to."""
    if call.plan.group is not None:
        return call.plan.group.id
    target = call.plan.target.target
    return target.group.id if isinstance(target, GroupTarget) else None


def build(call: Call, *, ended_at: float | None = None) -> list[CallRecord]:
    """The records of the call as it stands, as if it ended ``ended_at`` (default: when it
    did; a transfer closes the records of the legs it releases)."""
    end = call.ended_at if ended_at is None else ended_at
    records = _members(call, end) + _caller(call, end)
    origin_up = call.caller is not None or (
        call.origin is not None and call.origin.winner() is not None
    )
    if origin_up and call.destination_offered_at is not None:
        records.append(_destination(call, end))
    return records


def _members(call: Call, end: float | None) -> list[CallRecord]:
    if call.origin is None:
        return []
    wall = call.plan.wall
    winner = call.origin.winner()
    domain, group, destination = call.plan.domain, group_id(call), call.plan.destination_channel
    records = []
    for index, attempt in enumerate(call.origin.hunt.attempts):
        answered = winner is not None and winner[0] == index
        records.append(
            CallRecord(
                # the terminal that answered, else the member's first (as the callback)
                uuid=call.legs[winner[1]].channel if winner and answered else attempt.uuid,
                domain=domain,
                role="member",
                party=attempt.user,
                group_id=group,
                other_uuid=destination if answered else None,
                offered_at=wall(attempt.started_at),
                answered_at=wall(attempt.ended_at) if answered else None,
                ended_at=wall(end if answered else attempt.ended_at),
                disposition=attempt.result.value if attempt.result else "skipped",
                hangup=member_hangup(attempt, call.ended_by),
            )
        )
    return records


def _caller(call: Call, end: float | None) -> list[CallRecord]:
    """A phone's or a trunk's caller, or the party that stayed after a transfer."""
    caller = call.caller
    plan = call.plan
    origin = plan.origin
    if caller is None or not isinstance(origin, Caller):
        return []
    party = origin.user.name if origin.user is not None else origin.number or "anonymous"
    if call.caller_answered_at is not None:
        disposition, hangup = "answered", clearing(call.ended_by == "origin")
    elif caller.peer_hung_up:
        disposition, hangup = "canceled", "recv_cancel,ORIGINATOR_CANCEL"
    else:
        disposition, hangup = "refused", refused(call.refused_with or 480)
    return [
        CallRecord(
            uuid=caller.channel,
            domain=plan.domain,
            role="caller",
            party=party,
            group_id=group_id(call),
            other_uuid=plan.destination_channel,
            offered_at=plan.wall(call.started_at),
            answered_at=plan.wall(call.caller_answered_at),
            ended_at=plan.wall(end),
            disposition=disposition,
            hangup=hangup,
        )
    ]


def _destination(call: Call, end: float | None) -> CallRecord:
    plan = call.plan
    if call.destination_answered_at is not None:
        disposition, hangup = "answered", clearing(call.ended_by == "destination")
    elif call.destination_status is not None:
        disposition, hangup = "refused", refusal(call.destination_status)
    else:
        disposition, hangup = "canceled", "send_cancel,ORIGINATOR_CANCEL"
    origin = call.origin_leg()
    end_user = plan.target.end_user
    return CallRecord(
        uuid=plan.destination_channel,
        domain=plan.domain,
        role="destination",
        party=target_party(call),
        group_id=group_id(call),
        other_uuid=origin.channel if origin is not None else None,
        offered_at=plan.wall(call.destination_offered_at),
        answered_at=plan.wall(call.destination_answered_at),
        ended_at=plan.wall(end),
        disposition=disposition,
        hangup=hangup,
        end_user=json.dumps(asdict(end_user)) if end_user else None,
    )
