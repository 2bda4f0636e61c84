"""A group as the destination of a call_group: its own hunt, with its own strategy and
timeouts (DESIGN §5), whose answering member becomes the destination leg.

Each of the destination group's members is its own channel (a new UUID, one Call-ID per
member forked to that user's terminals, like the calling group's members). Members already
on a call are passed over as busy.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from switchboard.config import GroupConfig
from switchboard.pbx.hunt import (
    Attempt,
    Availability,
    Cancel,
    Command,
    Connect,
    Finished,
    Hangup,
    Hunt,
    Ring,
)
from switchboard.sip.message import Response
from switchboard.sip.useragent import OutgoingCall

if TYPE_CHECKING:
    from switchboard.pbx.call import CallGroupCall, Leg

Answered = Callable[["Leg", OutgoingCall, Response], None]


class DestinationGroupHunt:
    def __init__(
        self,
        call: CallGroupCall,
        group: GroupConfig,
        body: bytes,
        *,
        on_answer: Answered,
        on_failure: Callable[[str], None],
    ) -> None:
        from switchboard.pbx.call import Leg  # noqa: PLC0415 - the two modules refer to each other

        self.call = call
        self.group = group
        self.body = body
        self.on_answer = on_answer
        self.on_failure = on_failure
        self.loop = asyncio.get_running_loop()
        self.legs = [Leg(str(uuid.uuid4())) for _ in group.members]
        self.hunt = Hunt(
            [Attempt(leg.uuid, user, call.availability(user))
             for leg, user in zip(self.legs, group.members, strict=True)],
            strategy=group.strategy,
            member_timeout=group.member_answer_timeout,
            answer_timeout=group.answer_timeout,
        )  # fmt: skip
        self.from_tag = call.engine.ua.endpoint.ids.tag()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._apply(self.hunt.start(self.loop.time()))

    def stop(self) -> None:
        self._apply(self.hunt.stop(self.loop.time()))
        for leg in self.legs:
            leg.hang_up()
        if self._timer is not None:
            self._timer.cancel()

    def _apply(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, Ring):
                self._ring(command.index)
            elif isinstance(command, Cancel):
                self.legs[command.index].cancel()
            elif isinstance(command, Hangup):
                self.legs[command.index].hang_up()
            elif isinstance(command, Connect):
                leg = self.legs[command.index]
                assert leg.answered is not None and leg.answered.final is not None
                self.on_answer(leg, leg.answered, leg.answered.final)
            elif isinstance(command, Finished) and command.result_code != 0:
                self.on_failure(f"destination group {command.error_id}")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.hunt.deadline()
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._apply(self.hunt.on_timer(self.loop.time()))

    def _ring(self, index: int) -> None:
        leg = self.legs[index]
        user = self.group.members[index]
        for call in self.call.ring_terminals(user, leg.uuid, self.from_tag, self.body):
            leg.calls.append(call)
            call.answered.add_done_callback(functools.partial(self._final, index, call))

    def _final(self, index: int, call: OutgoingCall, future: asyncio.Future[Response]) -> None:
        response = future.result()
        leg = self.legs[index]
        now = self.loop.time()
        if 200 <= response.status < 300:
            if leg.answered is None and not self.hunt.finished:
                leg.answered = call
                leg.cancel()
            elif leg.answered is not call:
                call.bye()
                return
            self._apply(self.hunt.answered(index, now))
        elif all(c.final is not None and c.final.status >= 300 for c in leg.calls):
            self._apply(self.hunt.failed(index, response.status, now))


__all__ = ["Availability", "DestinationGroupHunt"]
