"""Call records of a finished call_group: one per channel, with the disposition and the
hangup direction and cause in API §4's form (``send_cancel,NO_ANSWER``,
``recv_refuse,USER_BUSY``, ``recv_bye,NORMAL_CLEARING`` …). Pure."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

from switchboard.pbx.destinations import Destination, PstnTarget, UserTarget
from switchboard.pbx.hunt import Attempt, Result
from switchboard.store.records import CallRecord

_REFUSAL_CAUSES = {
    486: "USER_BUSY", 600: "USER_BUSY", 603: "CALL_REJECTED", 404: "UNALLOCATED_NUMBER",
    408: "NO_ANSWER", 480: "NO_USER_RESPONSE", 487: "ORIGINATOR_CANCEL",
}  # fmt: skip
_BY_RESULT = {
    Result.BUSY: "recv_refuse,USER_BUSY",
    Result.REFUSED: "recv_refuse,CALL_REJECTED",
    Result.CANCELED: "send_cancel,ORIGINATOR_CANCEL",
    Result.UNREGISTERED: "send_refuse,USER_NOT_REGISTERED",
    Result.SKIPPED: "send_refuse,ORIGINATOR_CANCEL",
}


def refusal(status: int) -> str:
    return f"recv_refuse,{_REFUSAL_CAUSES.get(status, 'NORMAL_TEMPORARY_FAILURE')}"


def member_hangup(attempt: Attempt, ended_by: str) -> str:
    """``ended_by``: "member", "destination" or "switchboard" (API, timers, shutdown)."""
    if attempt.result is Result.ANSWERED:
        return "recv_bye,NORMAL_CLEARING" if ended_by == "member" else "send_bye,NORMAL_CLEARING"
    if attempt.result is Result.NO_ANSWER:
        if attempt.sip_status is not None:
            return refusal(attempt.sip_status)
        return "send_cancel,NO_ANSWER"
    return _BY_RESULT.get(attempt.result or Result.SKIPPED, "send_refuse,NORMAL_CLEARING")


def build(
    *,
    domain: str,
    group_id: int,
    attempts: list[Attempt],
    destination: Destination,
    destination_uuid: str | None,
    destination_status: int | None,
    destination_answered_at: float | None,
    offered_destination_at: float | None,
    ended_at: float,
    ended_by: str,
    wall: Callable[[float | None], float | None],
) -> list[CallRecord]:
    """``wall`` turns the loop times kept by the hunt into epoch seconds."""
    answered = next((a for a in attempts if a.result is Result.ANSWERED), None)
    records = []
    for attempt in attempts:
        is_answered = attempt is answered
        records.append(CallRecord(
            uuid=attempt.uuid, domain=domain, role="member", party=attempt.user,
            group_id=group_id, other_uuid=destination_uuid if is_answered else None,
            offered_at=wall(attempt.started_at),
            answered_at=wall(attempt.ended_at) if is_answered else None,
            ended_at=wall(ended_at) if is_answered else wall(attempt.ended_at),
            disposition=attempt.result.value if attempt.result else "skipped",
            hangup=member_hangup(attempt, ended_by),
        ))  # fmt: skip
    if destination_uuid is not None and answered is not None:
        target = destination.target
        party = (
            target.number if isinstance(target, PstnTarget)
            else target.user.name if isinstance(target, UserTarget) else target.group.name
        )  # fmt: skip
        if destination_answered_at is not None:
            disposition = "answered"
            hangup = (
                "recv_bye,NORMAL_CLEARING" if ended_by == "destination"
                else "send_bye,NORMAL_CLEARING"
            )  # fmt: skip
        elif destination_status is not None:
            disposition, hangup = "refused", refusal(destination_status)
        else:
            disposition, hangup = "canceled", "send_cancel,ORIGINATOR_CANCEL"
        end_user = destination.end_user
        records.append(CallRecord(
            uuid=destination_uuid, domain=domain, role="destination", party=party,
            group_id=group_id, other_uuid=answered.uuid,
            offered_at=wall(offered_destination_at), answered_at=wall(destination_answered_at),
            ended_at=wall(ended_at), disposition=disposition, hangup=hangup,
            end_user=json.dumps(asdict(end_user)) if end_user else None,
        ))  # fmt: skip
    return records
