"""Why a side of a call could not be reached, as a SIP status and in words. Pure."""

from __future__ import annotations

from switchboard.pbx.hunt import Result
from switchboard.pbx.legs import Leg, Side


def failure_status(legs: list[Leg]) -> int:
    """A member whose terminals all refused: 486 busy, then 603 declined, then the lowest."""
    statuses = [leg.status for leg in legs if leg.status is not None] or [480]
    return 486 if 486 in statuses else 603 if 603 in statuses else min(statuses)


_CAUSES = {
    403: "forbidden",
    404: "not found",
    484: "address incomplete",
    486: "busy",
    488: "not acceptable here",
    503: "unavailable",
    603: "declined",
}


def destination_cause(side: Side, refuse: int) -> str:
    """Why the destination could not be reached, in words (the end-of-call event's
    ``cause``): what it answered, or that nobody answered in time."""
    if refuse == 480:
        results = {attempt.result for attempt in side.hunt.attempts}
        return "destination no answer" if Result.NO_ANSWER in results else "destination unavailable"
    return f"destination {_CAUSES.get(refuse, 'refused')} ({refuse})"


def last_status(side: Side) -> int | None:
    statuses = [a.sip_status for a in side.hunt.attempts if a.sip_status is not None]
    return statuses[-1] if statuses else None


# What a caller hears when the destination could not be reached (RFC 3261 §21): the
# destination's own refusal where it says something, else 480 (nobody answered).
_RELAYED = frozenset((403, 404, 484, 486, 488, 600, 603))


def refusal(side: Side) -> int:
    results = {attempt.result for attempt in side.hunt.attempts}
    status = last_status(side)
    if status in _RELAYED:
        return 486 if status == 600 else status or 480
    if Result.BUSY in results and Result.NO_ANSWER not in results:
        return 486
    if status is not None and 500 <= status < 600:
        return 503
    return 480
