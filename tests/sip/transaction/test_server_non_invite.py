"""Non-INVITE server transaction (RFC 3261 §17.2.2) driven by a fake clock."""

from __future__ import annotations

from switchboard.sip.transaction.base import Send, Terminated, TimerConfig
from switchboard.sip.transaction.server_non_invite import ServerNonInviteTransaction, State
from tests.sip.factories import TCP_PEER, UDP_PEER, request, response
from tests.sip.transaction.clock import run_timers

CONFIG = TimerConfig()


def test_retransmissions_are_absorbed_in_trying_and_answered_once_completed() -> None:
    tx = ServerNonInviteTransaction(request("OPTIONS"), UDP_PEER, CONFIG)
    assert tx.on_request(tx.request, 0.1) == []
    ok = response(tx.request, 200)
    assert [type(e) for e in tx.respond(ok, 0.2)] == [Send]
    assert tx.state is State.COMPLETED
    resent = [bytes(e.message) for e in tx.on_request(tx.request, 0.3) if isinstance(e, Send)]
    assert resent == [bytes(ok)]  # the same octets (held as octets once Completed)
    assert [(t, type(e)) for t, e in run_timers(tx, until=60.0)] == [(32.2, Terminated)]


def test_provisional_then_final_over_tcp_and_timer_j_is_zero() -> None:
    tx = ServerNonInviteTransaction(request("BYE", transport="TCP"), TCP_PEER, CONFIG)
    tx.respond(response(tx.request, 100), 0.0)
    assert tx.state is State.PROCEEDING
    tx.respond(response(tx.request, 200), 0.5)
    assert [(t, type(e)) for t, e in run_timers(tx, until=60.0)] == [(0.5, Terminated)]
