"""The outcome of a call_group's hunt as its callback's body (API §1, §3). Pure."""

from __future__ import annotations

import datetime
import functools

from switchboard.pbx.hunt import Finished
from switchboard.pbx.legs import Call, Side


def payload(call: Call, finished: Finished) -> dict[str, object]:
    origin = call.origin
    assert origin is not None, "only a hunt of the origin has an outcome"
    plan = call.plan
    body: dict[str, object] = {"result_code": finished.result_code}
    if finished.answered is not None:
        body["uuid"] = _attempt_uuid(call, origin, finished.answered)
        body["answered_by"] = origin.plan.members[finished.answered].user
    else:
        body["error"] = {"id": finished.error_id}
    body["request_uuids"] = [c for member in origin.plan.members for c in member.channels]
    body["group_id"] = plan.group.id if plan.group is not None else None
    body["attempts"] = [
        {
            "uuid": _attempt_uuid(call, origin, index),
            "uuids": _terminals(call, origin, index),
            "user": attempt.user,
            "result": attempt.result.value if attempt.result else None,
            "sip_status": attempt.sip_status,
            "started_at": iso(plan.wall(attempt.started_at)),
            "ended_at": iso(plan.wall(attempt.ended_at)),
        }
        for index, attempt in enumerate(origin.hunt.attempts)
    ]
    return body


def _attempt_uuid(call: Call, side: Side, index: int) -> str:
    """A member's channel in the callback: the terminal that answered, else its first (or,
    with none, the attempt's own id): the uuid of the member's call record."""
    answered = side.answered[index]
    if answered is not None:
        return call.legs[answered].channel
    return side.hunt.attempts[index].uuid


def _terminals(call: Call, side: Side, index: int) -> list[str]:
    """Every terminal channel of the member: planned, then any rung since the request."""
    rung = [call.legs[leg].channel for leg in side.legs[index]]
    return list(dict.fromkeys([*side.plan.members[index].channels, *rung]))


# A call's bodies name the same few moments again and again (every member skipped when
# the hunt ended ends at that moment): about fifty formattings a call_group, 2 µs each.
@functools.lru_cache(maxsize=1024)
def iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    moment = datetime.datetime.fromtimestamp(wall, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
