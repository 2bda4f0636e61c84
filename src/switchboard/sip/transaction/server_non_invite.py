"""Non-INVITE server transaction (RFC 3261 §17.2.2).

- Retransmitted requests are absorbed in Trying and answered with the last response after.
- Timer J (64·T1 over UDP, 0 over TCP) keeps the final response for retransmissions.
"""

from __future__ import annotations

import enum

from switchboard.sip.message import Request
from switchboard.sip.transaction.base import (
    Effect,
    Input,
    Peer,
    Row,
    ServerTransactionBase,
    TimerConfig,
)


class State(enum.Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


S = State
_FINAL: Row = (("send_response", "start_j", "hold_as_wire"), S.COMPLETED)

TABLE: dict[tuple[enum.Enum, Input], Row] = {
    (S.TRYING, Input.REQUEST): ((), S.TRYING),
    (S.TRYING, Input.SEND_PROVISIONAL): (("send_response",), S.PROCEEDING),
    (S.TRYING, Input.SEND_SUCCESS): _FINAL,
    (S.TRYING, Input.SEND_FAILURE): _FINAL,
    (S.PROCEEDING, Input.REQUEST): (("resend_last",), S.PROCEEDING),
    (S.PROCEEDING, Input.SEND_PROVISIONAL): (("send_response",), S.PROCEEDING),
    (S.PROCEEDING, Input.SEND_SUCCESS): _FINAL,
    (S.PROCEEDING, Input.SEND_FAILURE): _FINAL,
    (S.PROCEEDING, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
    (S.COMPLETED, Input.REQUEST): (("resend_last",), S.COMPLETED),
    (S.COMPLETED, Input.TIMER_J): ((), S.TERMINATED),
    (S.COMPLETED, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
}


class ServerNonInviteTransaction(ServerTransactionBase):
    TABLE = TABLE

    def __init__(self, request: Request, peer: Peer, config: TimerConfig) -> None:
        super().__init__(request, peer, State.TRYING, config)

    def on_request(self, request: Request, now: float) -> list[Effect]:
        return self.fire(Input.REQUEST, now, request)

    def _do_start_j(self) -> None:
        self._start("J", self._unreliable(64 * self.config.t1))
