"""INVITE client transaction (RFC 3261 §17.1.1, with RFC 6026 §7.2's Accepted state).

- Timer A retransmits the INVITE over UDP, starting at T1 and doubling (§17.1.1.2).
- Timer B (64·T1) gives up in Calling: the TU sees ``TimedOut`` (a 408).
- A 1xx stops retransmission; the TU owns ring time from then on.
- A 300-699 is ACKed by the transaction itself (§17.1.1.3); Timer D (32 s over UDP, 0
  over TCP) absorbs retransmitted finals with another ACK.
- A 2xx moves to Accepted (RFC 6026): further 2xx (retransmissions, or forks) still go to
  the TU, which ACKs them; Timer M (64·T1) ends the transaction.
"""

from __future__ import annotations

import enum

from switchboard.sip.builders import make_non_2xx_ack
from switchboard.sip.message import Request, Response, held_as_wire
from switchboard.sip.transaction.base import (
    ClientTransactionBase,
    Input,
    Peer,
    Row,
    TimerConfig,
)


class State(enum.Enum):
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


S = State
_TO_COMPLETED: Row = (
    ("stop_retransmit", "send_ack", "deliver", "start_d", "hold_as_wire"),
    S.COMPLETED,
)
_TO_ACCEPTED: Row = (("stop_retransmit", "deliver", "start_m", "hold_as_wire"), S.ACCEPTED)

TABLE: dict[tuple[enum.Enum, Input], Row] = {
    (S.CALLING, Input.TIMER_A): (("retransmit",), S.CALLING),
    (S.CALLING, Input.TIMER_B): (("timeout",), S.TERMINATED),
    (S.CALLING, Input.PROVISIONAL): (("stop_retransmit", "deliver"), S.PROCEEDING),
    (S.CALLING, Input.SUCCESS): _TO_ACCEPTED,
    (S.CALLING, Input.FAILURE): _TO_COMPLETED,
    (S.CALLING, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
    (S.PROCEEDING, Input.PROVISIONAL): (("deliver",), S.PROCEEDING),
    (S.PROCEEDING, Input.SUCCESS): _TO_ACCEPTED,
    (S.PROCEEDING, Input.FAILURE): _TO_COMPLETED,
    (S.PROCEEDING, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
    (S.ACCEPTED, Input.SUCCESS): (("deliver",), S.ACCEPTED),
    (S.ACCEPTED, Input.TIMER_M): ((), S.TERMINATED),
    (S.COMPLETED, Input.FAILURE): (("send_ack",), S.COMPLETED),
    (S.COMPLETED, Input.TIMER_D): ((), S.TERMINATED),
    (S.COMPLETED, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
}


class ClientInviteTransaction(ClientTransactionBase):
    TABLE = TABLE
    RETRANSMIT_TIMER = "A"
    TIMEOUT_TIMER = "B"

    def __init__(self, request: Request, peer: Peer, config: TimerConfig) -> None:
        super().__init__(request, peer, State.CALLING, config)
        self._ack: Request | None = None

    def _do_retransmit(self) -> None:
        self._send(self.request, retransmission=True)
        self._start("A", self.intervals.get("A", self.config.t1) * 2)

    def _do_send_ack(self) -> None:
        if self._ack is None:
            assert isinstance(self._message, Response)
            self._ack = make_non_2xx_ack(self.request, self._message)
        self._send(self._ack)

    def _do_hold_as_wire(self) -> None:
        super()._do_hold_as_wire()
        if self._ack is not None:
            self._ack = held_as_wire(self._ack)

    def _do_start_d(self) -> None:
        self._start("D", self._unreliable(32.0))

    def _do_start_m(self) -> None:
        self._start("M", 64 * self.config.t1)
