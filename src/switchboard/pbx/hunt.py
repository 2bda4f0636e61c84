"""Ringing a group's members (DESIGN §1 step 2): the hunt, pure, driven by ``now``.

Strategy ``hunt`` rings members one at a time in order; ``ring`` rings them all at once.
Rules:
- A member that is unregistered or already on a call is passed over at once (result
  ``unregistered`` / ``busy``, no SIP sent); so is one whose terminals have all gone by
  its turn (``unavailable``).
- A member rings for at most ``member_timeout``; the whole hunt ends at ``answer_timeout``,
  which cuts the ring of the member then ringing short. Each member is tried once.
- 486 and 600 make a member ``busy``, 603 ``refused``, any other failure (408 from Timer B
  included) ``no_answer``; the hunt moves on at once.
- The first answer wins: that member is connected, every other ringing member is
  cancelled, the rest are ``skipped``. An answer arriving after its member was cancelled or
  the hunt ended (a 2xx crossing our CANCEL) must be hung up: ``Hangup``.
- Exactly one ``Finished`` is ever emitted: result code 0 with the answering member, or
  500 with ``no_answer`` (somebody rang unanswered), ``no_member_available`` (every member
  was unregistered, busy or refused) or ``canceled`` (``stop``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from switchboard.quick_init import quick_init


class Result(enum.Enum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REFUSED = "refused"
    UNREGISTERED = "unregistered"
    CANCELED = "canceled"
    SKIPPED = "skipped"


class Availability(enum.Enum):
    AVAILABLE = "available"
    UNREGISTERED = "unregistered"
    BUSY = "busy"


@dataclass(slots=True)
class Attempt:
    uuid: str
    user: str
    availability: Availability = Availability.AVAILABLE
    result: Result | None = None
    sip_status: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    deadline: float | None = None  # while ringing

    @property
    def ringing(self) -> bool:
        return self.started_at is not None and self.result is None


@quick_init
@dataclass(frozen=True, slots=True)
class Ring:
    index: int


@dataclass(frozen=True, slots=True)
class Cancel:
    index: int


@dataclass(frozen=True, slots=True)
class Hangup:
    index: int


@dataclass(frozen=True, slots=True)
class Connect:
    index: int


@dataclass(frozen=True, slots=True)
class Finished:
    result_code: int
    error_id: str | None = None
    answered: int | None = None


Command = Ring | Cancel | Hangup | Connect | Finished


class Hunt:
    def __init__(
        self,
        attempts: list[Attempt],
        *,
        strategy: str,
        member_timeout: float,
        answer_timeout: float,
    ) -> None:
        if strategy not in ("hunt", "ring"):
            raise ValueError(f"unknown strategy {strategy!r}")
        self.attempts = attempts
        self.strategy = strategy
        self.member_timeout = member_timeout
        self.answer_timeout = answer_timeout
        self.answer_deadline: float | None = None
        self.outcome: Finished | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    # -- inputs ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Command]:
        self.answer_deadline = now + self.answer_timeout
        for attempt in self.attempts:
            if attempt.availability is not Availability.AVAILABLE:
                attempt.result = Result(attempt.availability.value)
                attempt.started_at = attempt.ended_at = now
        if self.strategy == "ring":
            commands: list[Command] = [self._ring(i, now) for i in self._pending()]
            return commands or self._finish(now)
        return self._advance(now)

    def answered(self, index: int, now: float) -> list[Command]:
        attempt = self.attempts[index]
        if self.finished or not attempt.ringing:
            return [Hangup(index)]
        attempt.result, attempt.sip_status, attempt.ended_at = Result.ANSWERED, 200, now
        commands: list[Command] = [Connect(index)]
        commands += self._end_ringing(now, Result.CANCELED)
        self._skip_pending(now)
        self.outcome = Finished(0, None, index)
        return [*commands, self.outcome]

    def failed(self, index: int, status: int, now: float) -> list[Command]:
        attempt = self.attempts[index]
        if self.finished or not attempt.ringing:
            return []
        if status in (486, 600):
            attempt.result = Result.BUSY
        elif status == 603:
            attempt.result = Result.REFUSED
        else:
            attempt.result = Result.NO_ANSWER
        attempt.sip_status, attempt.ended_at, attempt.deadline = status, now, None
        return self._next(now)

    def unavailable(self, index: int, now: float) -> list[Command]:
        """The member's turn came but it had no terminal left to ring (all unregistered
        since the request): passed over as ``unregistered``, no SIP sent."""
        attempt = self.attempts[index]
        if self.finished or not attempt.ringing:
            return []
        attempt.result, attempt.ended_at, attempt.deadline = Result.UNREGISTERED, now, None
        return self._next(now)

    def on_timer(self, now: float) -> list[Command]:
        if self.finished:
            return []
        assert self.answer_deadline is not None
        if now >= self.answer_deadline:
            commands = self._end_ringing(now, Result.NO_ANSWER)
            self._skip_pending(now)
            return commands + self._finish(now)
        commands = []
        for index, attempt in enumerate(self.attempts):
            if attempt.ringing and attempt.deadline is not None and attempt.deadline <= now:
                attempt.result, attempt.ended_at, attempt.deadline = Result.NO_ANSWER, now, None
                commands.append(Cancel(index))
        if not commands:
            return []
        return commands + self._next(now)

    def stop(self, now: float) -> list[Command]:
        """The hunt was hung up through the API: cancel everything, report ``canceled``."""
        if self.finished:
            return []
        commands = self._end_ringing(now, Result.CANCELED)
        self._skip_pending(now)
        self.outcome = Finished(500, "canceled")
        return [*commands, self.outcome]

    def deadline(self) -> float | None:
        if self.finished or self.answer_deadline is None:
            return None
        deadlines = [a.deadline for a in self.attempts if a.ringing and a.deadline is not None]
        return min([self.answer_deadline, *deadlines])

    # -- internals ------------------------------------------------------------------------

    def _pending(self) -> list[int]:
        return [i for i, a in enumerate(self.attempts) if a.started_at is None]

    def _ring(self, index: int, now: float) -> Ring:
        attempt = self.attempts[index]
        assert self.answer_deadline is not None
        attempt.started_at = now
        attempt.deadline = min(now + self.member_timeout, self.answer_deadline)
        return Ring(index)

    def _next(self, now: float) -> list[Command]:
        if self.strategy == "hunt":
            return self._advance(now)
        if any(a.ringing for a in self.attempts):
            return []
        return self._finish(now)

    def _advance(self, now: float) -> list[Command]:
        pending = self._pending()
        if not pending:
            return self._finish(now)
        return [self._ring(pending[0], now)]

    def _end_ringing(self, now: float, result: Result) -> list[Command]:
        commands: list[Command] = []
        for index, attempt in enumerate(self.attempts):
            if attempt.ringing:
                attempt.result, attempt.ended_at, attempt.deadline = result, now, None
                commands.append(Cancel(index))
        return commands

    def _skip_pending(self, now: float) -> None:
        for attempt in self.attempts:
            if attempt.started_at is None:
                attempt.result, attempt.started_at, attempt.ended_at = Result.SKIPPED, now, now

    def _finish(self, now: float) -> list[Command]:
        # API §1: no_member_available when nobody could ring (unregistered, busy, refused);
        # no_answer when somebody rang and nobody picked up.
        rang = any(a.result is Result.NO_ANSWER for a in self.attempts)
        self.outcome = Finished(500, "no_answer" if rang else "no_member_available")
        return [self.outcome]
