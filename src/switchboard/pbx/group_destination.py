"""A group as the destination of a call_group: its own hunt, with its own strategy and
timeouts (DESIGN §5), whose answering member becomes the destination leg.

Each of the destination group's members is its own channel (a new UUID, one Call-ID per
member forked to that user's terminals, like the calling group's members). Members already
on a call are passed over as busy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from switchboard.config import GroupConfig
from switchboard.pbx.driver import HuntDriver, Leg
from switchboard.pbx.hunt import Attempt, Finished, Hunt
from switchboard.sip.message import Response
from switchboard.sip.useragent import OutgoingCall

if TYPE_CHECKING:
    from switchboard.pbx.call import CallGroupCall

Answered = Callable[[Leg, OutgoingCall, Response], None]


class DestinationGroupHunt(HuntDriver):
    def __init__(
        self,
        call: CallGroupCall,
        group: GroupConfig,
        body: bytes,
        *,
        on_answer: Answered,
        on_failure: Callable[[str], None],
    ) -> None:
        legs = [Leg(str(uuid.uuid4())) for _ in group.members]
        hunt = Hunt(
            [
                Attempt(leg.uuid, user, call.availability(user))
                for leg, user in zip(legs, group.members, strict=True)
            ],
            strategy=group.strategy,
            member_timeout=group.member_answer_timeout,
            answer_timeout=group.answer_timeout,
        )
        super().__init__(hunt, legs)
        self.call = call
        self.group = group
        self.body = body
        self.on_answer = on_answer
        self.on_failure = on_failure
        self.from_tag = call.engine.ua.endpoint.ids.tag()

    def stop(self) -> None:
        self.stop_hunt()
        for leg in self.legs:
            leg.hang_up()
        self.cancel_hunt_timer()

    def ring(self, index: int) -> list[OutgoingCall]:
        leg = self.legs[index]
        return self.call.ring_terminals(
            self.group.members[index], lambda _contact: leg.uuid, self.from_tag, self.body
        )

    def connected(self, index: int) -> None:
        leg = self.legs[index]
        assert leg.answered is not None and leg.answered.final is not None
        self.on_answer(leg, leg.answered, leg.answered.final)

    def finished(self, outcome: Finished) -> None:
        if outcome.result_code != 0:
            self.on_failure(f"destination group {outcome.error_id}")
