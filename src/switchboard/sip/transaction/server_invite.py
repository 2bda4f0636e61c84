"""INVITE server transaction (RFC 3261 §17.2.1, with RFC 6026 §7.1's Accepted state).

- A 100 Trying goes out as soon as the transaction exists (§17.2.1 allows it at once and
  it stops the client's Timer A); a retransmitted INVITE gets the last provisional again.
- A 2xx moves to Accepted: the TU retransmits the 2xx itself until the ACK (§13.3.1.4),
  retransmitted INVITEs are absorbed, and ACKs are handed to the TU. Timer L (64·T1) ends.
- A 300-699 moves to Completed: Timer G retransmits it over UDP (T1 doubling to T2)
  until the ACK; Timer H (64·T1) gives up (``TimedOut``). The ACK moves to Confirmed,
  where Timer I (T4 over UDP, 0 over TCP) absorbs further ACKs.
"""

from __future__ import annotations

import enum

from switchboard.sip.builders import make_response
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
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


S = State

TABLE: dict[tuple[enum.Enum, Input], Row] = {
    (S.PROCEEDING, Input.REQUEST): (("resend_last",), S.PROCEEDING),
    (S.PROCEEDING, Input.SEND_PROVISIONAL): (("send_response",), S.PROCEEDING),
    (S.PROCEEDING, Input.SEND_SUCCESS): (("send_response", "start_l", "hold_as_wire"), S.ACCEPTED),
    (S.PROCEEDING, Input.SEND_FAILURE): (
        ("send_response", "start_g_h", "hold_as_wire"),
        S.COMPLETED,
    ),
    (S.PROCEEDING, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
    (S.ACCEPTED, Input.REQUEST): ((), S.ACCEPTED),
    (S.ACCEPTED, Input.ACK): (("deliver",), S.ACCEPTED),
    (S.ACCEPTED, Input.SEND_SUCCESS): (("send_response", "hold_as_wire"), S.ACCEPTED),
    (S.ACCEPTED, Input.TIMER_L): ((), S.TERMINATED),
    (S.COMPLETED, Input.REQUEST): (("resend_last",), S.COMPLETED),
    (S.COMPLETED, Input.TIMER_G): (("retransmit_final",), S.COMPLETED),
    (S.COMPLETED, Input.TIMER_H): (("timeout",), S.TERMINATED),
    (S.COMPLETED, Input.ACK): (("stop_g_h", "start_i"), S.CONFIRMED),
    (S.COMPLETED, Input.TRANSPORT_ERROR): (("transport_failed",), S.TERMINATED),
    (S.CONFIRMED, Input.ACK): ((), S.CONFIRMED),
    (S.CONFIRMED, Input.TIMER_I): ((), S.TERMINATED),
}


class ServerInviteTransaction(ServerTransactionBase):
    TABLE = TABLE

    def __init__(self, request: Request, peer: Peer, config: TimerConfig) -> None:
        super().__init__(request, peer, State.PROCEEDING, config)

    def start(self, now: float) -> list[Effect]:
        return self.respond(make_response(self.request, 100), now)

    def on_request(self, request: Request, now: float) -> list[Effect]:
        event = Input.ACK if request.method == "ACK" else Input.REQUEST
        return self.fire(event, now, request)

    def _do_start_l(self) -> None:
        self._start("L", 64 * self.config.t1)

    def _do_start_g_h(self) -> None:
        if not self.peer.reliable:
            self._start("G", self.config.t1)
        self._start("H", 64 * self.config.t1)

    def _do_retransmit_final(self) -> None:
        self._do_resend_last()
        self._start("G", min(self.intervals.get("G", self.config.t1) * 2, self.config.t2))

    def _do_stop_g_h(self) -> None:
        self._stop("G")
        self._stop("H")

    def _do_start_i(self) -> None:
        self._start("I", self._unreliable(self.config.t4))
