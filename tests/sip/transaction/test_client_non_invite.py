"""Non-INVITE client transaction (RFC 3261 §17.1.2) driven by a fake clock."""

from __future__ import annotations

from switchboard.sip.transaction.base import Deliver, Send, Terminated, TimedOut, TimerConfig
from switchboard.sip.transaction.client_non_invite import ClientNonInviteTransaction, State
from tests.sip.factories import TCP_PEER, UDP_PEER, request, response
from tests.sip.transaction.clock import run_timers

CONFIG = TimerConfig()


def _start(reliable: bool = False) -> ClientNonInviteTransaction:
    tx = ClientNonInviteTransaction(request("BYE"), TCP_PEER if reliable else UDP_PEER, CONFIG)
    assert [type(e) for e in tx.start(0.0)] == [Send]
    return tx


def test_timer_e_doubles_up_to_t2_then_timer_f_gives_up() -> None:
    tx = _start()
    events = run_timers(tx, until=40.0)
    sends = [t for t, e in events if isinstance(e, Send)]
    # T1, 2·T1, 4·T1, then capped at T2 = 4 s until F = 64·T1 = 32 s
    assert sends == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, type(e)) for t, e in events if not isinstance(e, Send)] == [
        (32.0, TimedOut),
        (32.0, Terminated),
    ]


def test_after_a_provisional_retransmissions_come_every_t2() -> None:
    tx = _start()
    run_timers(tx, until=0.5)  # first retransmission at 0.5, next due at 1.5
    assert [type(e) for e in tx.on_response(response(tx.request, 100), 0.6)] == [Deliver]
    assert tx.state is State.PROCEEDING
    sends = [t for t, e in run_timers(tx, until=12.0) if isinstance(e, Send)]
    assert sends == [1.5, 5.5, 9.5]


def test_final_response_completes_and_timer_k_is_t4_over_udp() -> None:
    tx = _start()
    assert [type(e) for e in tx.on_response(response(tx.request, 200), 0.1)] == [Deliver]
    assert tx.on_response(response(tx.request, 200), 0.2) == []  # absorbed
    assert [(t, type(e)) for t, e in run_timers(tx, until=60.0)] == [(5.1, Terminated)]


def test_timer_k_is_zero_over_tcp() -> None:
    tx = _start(reliable=True)
    tx.on_response(response(tx.request, 404), 0.1)
    assert [(t, type(e)) for t, e in run_timers(tx, until=1.0)] == [(0.1, Terminated)]
