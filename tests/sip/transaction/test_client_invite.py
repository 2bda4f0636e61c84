"""INVITE client transaction (RFC 3261 §17.1.1, RFC 6026) driven by a fake clock."""

from __future__ import annotations

from switchboard.sip.message import Request
from switchboard.sip.transaction.base import Deliver, Send, Terminated, TimedOut, TimerConfig
from switchboard.sip.transaction.client_invite import ClientInviteTransaction, State
from tests.sip.factories import TCP_PEER, UDP_PEER, request, response
from tests.sip.transaction.clock import run_timers

CONFIG = TimerConfig()


def _start(reliable: bool = False) -> tuple[ClientInviteTransaction, list[object]]:
    tx = ClientInviteTransaction(request(), TCP_PEER if reliable else UDP_PEER, CONFIG)
    return tx, list(tx.start(0.0))


def test_timer_a_doubles_from_t1_until_timer_b_gives_up_at_64_t1() -> None:
    tx, first = _start()
    assert [type(e) for e in first] == [Send]
    events = run_timers(tx, until=40.0)
    sends = [t for t, e in events if isinstance(e, Send)]
    assert sends == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [(t, type(e)) for t, e in events if not isinstance(e, Send)] == [
        (32.0, TimedOut),
        (32.0, Terminated),
    ]
    assert tx.state is State.TERMINATED


def test_no_retransmission_over_tcp_and_timer_b_still_applies() -> None:
    tx, _ = _start(reliable=True)
    events = run_timers(tx, until=40.0)
    assert [(t, type(e)) for t, e in events] == [(32.0, TimedOut), (32.0, Terminated)]


def test_provisional_stops_retransmission_and_timer_b() -> None:
    tx, _ = _start()
    effects = tx.on_response(response(tx.request, 180), 0.2)
    assert [type(e) for e in effects] == [Deliver]
    assert tx.state is State.PROCEEDING
    assert run_timers(tx, until=100.0) == []


def test_failure_is_acked_by_the_transaction_and_timer_d_absorbs_retransmissions() -> None:
    tx, _ = _start()
    busy = response(tx.request, 486)
    effects = tx.on_response(busy, 1.0)
    assert [type(e) for e in effects] == [Send, Deliver]
    ack = effects[0].message  # type: ignore[union-attr]
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.cseq.number == tx.request.cseq.number and ack.cseq.method == "ACK"
    assert ack.top_via.branch == tx.request.top_via.branch  # §17.1.1.3
    assert ack.to.tag == "callee-tag"
    again = tx.on_response(busy, 2.0)
    assert [type(e) for e in again] == [Send]  # ACK again, not passed up
    events = run_timers(tx, until=100.0)
    assert [(t, type(e)) for t, e in events] == [(33.0, Terminated)]  # Timer D = 32 s


def test_timer_d_is_zero_over_tcp() -> None:
    tx, _ = _start(reliable=True)
    tx.on_response(response(tx.request, 603), 1.0)
    assert [(t, type(e)) for t, e in run_timers(tx, until=5.0)] == [(1.0, Terminated)]


def test_2xx_moves_to_accepted_and_later_2xx_still_reach_the_tu() -> None:
    tx, _ = _start()
    ok = response(tx.request, 200)
    assert [type(e) for e in tx.on_response(ok, 1.0)] == [Deliver]
    assert tx.state is State.ACCEPTED
    assert [type(e) for e in tx.on_response(ok, 1.5)] == [Deliver]  # RFC 6026 §7.2
    events = run_timers(tx, until=100.0)
    assert [(t, type(e)) for t, e in events] == [(33.0, Terminated)]  # Timer M = 64·T1
