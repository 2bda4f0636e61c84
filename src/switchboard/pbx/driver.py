"""Running a hunt over SIP legs, shared by the calling group's members and by a group that
is the destination: the hunt decides (pure), the driver rings, cancels and keeps time.

A leg is one member (or destination user) forked to every terminal of that user, with one
From tag. A member's terminals are channels of their own (API §2: one uuid per terminal,
the Call-ID of its INVITE, allocated when the request came: ``planned``); a destination
user's terminals share the leg's Call-ID. A leg with no terminal left to ring has failed
at once (480). Its terminals settle it: the first 2xx answers it (the other terminals are
cancelled, and a late 2xx from one of them is hung up); when every terminal has refused,
the leg failed with the most telling status (486 busy, then 603 declined, then the lowest).
"""

from __future__ import annotations

import asyncio
import enum
import functools
from dataclasses import dataclass, field

from switchboard.pbx.hunt import Cancel, Command, Connect, Finished, Hangup, Hunt, Ring
from switchboard.sip.message import Response
from switchboard.sip.useragent import CallState, OutgoingCall


class Settled(enum.Enum):
    ANSWERED = "answered"
    EXTRA = "extra"  # another terminal of an answered leg answered too: hang it up
    FAILED = "failed"
    PENDING = "pending"


@dataclass(slots=True)
class Leg:
    uuid: str
    calls: list[OutgoingCall] = field(default_factory=list)
    answered: OutgoingCall | None = None
    planned: dict[str, str] = field(default_factory=dict)  # contact key → terminal uuid

    def cancel(self) -> None:
        for call in self.calls:
            if call is not self.answered:
                call.cancel()

    def hang_up(self) -> None:
        if self.answered is not None and self.answered.state is CallState.ANSWERED:
            self.answered.bye()
        self.cancel()

    def settle(self, call: OutgoingCall, response: Response, *, open_: bool) -> Settled:
        """What ``call``'s final ``response`` means for the leg (``open_``: still wanted)."""
        if 200 <= response.status < 300:
            if self.answered is None and open_:
                self.answered = call
                self.cancel()
                return Settled.ANSWERED
            return Settled.ANSWERED if self.answered is call else Settled.EXTRA
        if all(c.final is not None and c.final.status >= 300 for c in self.calls):
            return Settled.FAILED
        return Settled.PENDING

    def failure_status(self) -> int:
        statuses = [c.final.status for c in self.calls if c.final is not None] or [480]
        return 486 if 486 in statuses else 603 if 603 in statuses else min(statuses)


class HuntDriver:
    """Carries out a ``Hunt``'s commands on ``legs``; subclasses say how to ring a leg and
    what an answer and the end mean."""

    def __init__(self, hunt: Hunt, legs: list[Leg]) -> None:
        self.hunt = hunt
        self.legs = legs
        self.loop = asyncio.get_running_loop()
        self._hunt_timer: asyncio.TimerHandle | None = None

    # -- what subclasses provide ----------------------------------------------------------

    def ring(self, index: int) -> list[OutgoingCall]:
        raise NotImplementedError

    def connected(self, index: int) -> None:
        raise NotImplementedError

    def finished(self, outcome: Finished) -> None:
        raise NotImplementedError

    def answered_terminal(self, index: int, call: OutgoingCall) -> None:
        """The first 2xx of a leg (before the hunt is told)."""

    def terminal_refused(self, index: int, call: OutgoingCall) -> None:
        """One terminal refused while the leg's other terminals still ring (no hunt step)."""

    # -- driving --------------------------------------------------------------------------

    def start_hunt(self) -> None:
        self.apply(self.hunt.start(self.loop.time()))

    def stop_hunt(self) -> None:
        self.apply(self.hunt.stop(self.loop.time()))

    def cancel_hunt_timer(self) -> None:
        if self._hunt_timer is not None:
            self._hunt_timer.cancel()
            self._hunt_timer = None

    def apply(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, Ring):
                leg = self.legs[command.index]
                calls = self.ring(command.index)
                for call in calls:
                    leg.calls.append(call)
                    call.answered.add_done_callback(
                        functools.partial(self._final, command.index, call)
                    )
                if not calls:  # every terminal went away since the request
                    self.apply(self.hunt.failed(command.index, 480, self.loop.time()))
            elif isinstance(command, Cancel):
                self.legs[command.index].cancel()
            elif isinstance(command, Hangup):
                self.legs[command.index].hang_up()
            elif isinstance(command, Connect):
                self.connected(command.index)
            elif isinstance(command, Finished):
                self.finished(command)
        self.cancel_hunt_timer()
        deadline = self.hunt.deadline()
        if deadline is not None:
            self._hunt_timer = self.loop.call_at(deadline, self._on_hunt_timer)

    def _on_hunt_timer(self) -> None:
        self._hunt_timer = None
        self.apply(self.hunt.on_timer(self.loop.time()))

    def _final(self, index: int, call: OutgoingCall, future: asyncio.Future[Response]) -> None:
        leg = self.legs[index]
        now = self.loop.time()
        settled = leg.settle(call, future.result(), open_=not self.hunt.finished)
        if settled is Settled.ANSWERED:
            if leg.answered is call:
                self.answered_terminal(index, call)
            self.apply(self.hunt.answered(index, now))
        elif settled is Settled.EXTRA:
            call.bye()
        elif settled is Settled.FAILED:
            self.apply(self.hunt.failed(index, leg.failure_status(), now))
        else:
            self.terminal_refused(index, call)
