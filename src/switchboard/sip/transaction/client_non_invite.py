"""Non-INVITE client transaction (RFC 3261 §17.1.2).

- Timer E retransmits over UDP: T1, doubling up to T2; once a 1xx arrived, every T2.
- Timer F (64·T1) gives up: ``TimedOut``.
- Timer K (T4 over UDP, 0 over TCP) absorbs retransmitted finals after Completed.
"""

from __future__ import annotations

import enum

from switchboard.sip.message import Request
from switchboard.sip.transaction.base import (
    ClientTransactionBase,
    Input,
    Peer,
    Row,
    TimerConfig,
)


class State(enum.Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


S = State
_FINAL: Row = (("stop_retransmit", "deliver", "start_k", "hold_as_wire"), S.COMPLETED)

TABLE: dict[tuple[enum.Enum, Input], Row] = {
    (S.TRYING, Input.TIMER_E): (("retransmit",), S.TRYING),
    (S.TRYING, Input.TIMER_F): (("timeout",), S.TERMINATED),
    (S.TRYING, Input.PROVISIONAL): (("deliver",), S.PROCEEDING),
    (S.TRYING, Input.SUCCESS): _FINAL,
    (S.TRYING, Input.FAILURE): _FINAL,
    (S.TRYING, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
    (S.PROCEEDING, Input.TIMER_E): (("retransmit_t2",), S.PROCEEDING),
    (S.PROCEEDING, Input.TIMER_F): (("timeout",), S.TERMINATED),
    (S.PROCEEDING, Input.PROVISIONAL): (("deliver",), S.PROCEEDING),
    (S.PROCEEDING, Input.SUCCESS): _FINAL,
    (S.PROCEEDING, Input.FAILURE): _FINAL,
    (S.PROCEEDING, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
    (S.COMPLETED, Input.TIMER_K): ((), S.TERMINATED),
}


class ClientNonInviteTransaction(ClientTransactionBase):
    TABLE = TABLE
    RETRANSMIT_TIMER = "E"
    TIMEOUT_TIMER = "F"

    def __init__(self, request: Request, peer: Peer, config: TimerConfig) -> None:
        super().__init__(request, peer, State.TRYING, config)

    def _do_retransmit(self) -> None:
        self._send(self.request, retransmission=True)
        self._start("E", min(self.intervals.get("E", self.config.t1) * 2, self.config.t2))

    def _do_retransmit_t2(self) -> None:
        self._send(self.request, retransmission=True)
        self._start("E", self.config.t2)

    def _do_start_k(self) -> None:
        self._start("K", self._unreliable(self.config.t4))
