"""INVITE server transaction (RFC 3261 §17.2.1, RFC 6026) driven by a fake clock."""

from __future__ import annotations

import pytest

from switchboard.sip.errors import LocalProtocolError
from switchboard.sip.message import Response
from switchboard.sip.transaction.base import Deliver, Send, Terminated, TimedOut, TimerConfig
from switchboard.sip.transaction.server_invite import ServerInviteTransaction, State
from tests.sip.factories import TCP_PEER, UDP_PEER, request, response
from tests.sip.transaction.clock import run_timers

CONFIG = TimerConfig()


def _start(reliable: bool = False) -> ServerInviteTransaction:
    tx = ServerInviteTransaction(request(), TCP_PEER if reliable else UDP_PEER, CONFIG)
    effects = tx.start(0.0)
    assert [type(e) for e in effects] == [Send]
    trying = effects[0].message  # type: ignore[union-attr]
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to.tag is None  # §8.2.6.2: no tag on 100
    return tx


def test_retransmitted_invite_gets_the_last_provisional_again() -> None:
    tx = _start()
    ringing = response(tx.request, 180)
    tx.respond(ringing, 0.1)
    effects = tx.on_request(tx.request, 0.6)
    assert [e.message for e in effects if isinstance(e, Send)] == [ringing]


def test_failure_is_retransmitted_by_timer_g_until_timer_h() -> None:
    tx = _start()
    tx.respond(response(tx.request, 486), 0.0)
    assert tx.state is State.COMPLETED
    events = run_timers(tx, until=40.0)
    sends = [t for t, e in events if isinstance(e, Send)]
    assert sends == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, type(e)) for t, e in events if not isinstance(e, Send)] == [
        (32.0, TimedOut),
        (32.0, Terminated),
    ]


def test_ack_confirms_and_timer_i_absorbs_further_acks() -> None:
    tx = _start()
    tx.respond(response(tx.request, 486), 0.0)
    ack = request("ACK", to_tag="callee-tag")
    assert tx.on_request(ack, 0.7) == []
    assert tx.state is State.CONFIRMED
    assert tx.on_request(ack, 0.8) == []
    assert [(t, type(e)) for t, e in run_timers(tx, until=60.0)] == [(5.7, Terminated)]


def test_over_tcp_failure_is_not_retransmitted_and_timer_i_is_zero() -> None:
    tx = _start(reliable=True)
    tx.respond(response(tx.request, 603), 0.0)
    tx.on_request(request("ACK", to_tag="callee-tag", transport="TCP"), 0.2)
    assert [(t, type(e)) for t, e in run_timers(tx, until=60.0)] == [(0.2, Terminated)]


def test_2xx_moves_to_accepted_where_invites_are_absorbed_and_acks_delivered() -> None:
    tx = _start()
    ok = response(tx.request, 200)
    assert [type(e) for e in tx.respond(ok, 1.0)] == [Send]
    assert tx.state is State.ACCEPTED
    assert tx.on_request(tx.request, 1.2) == []  # RFC 6026 §7.1
    assert [type(e) for e in tx.respond(ok, 1.5)] == [Send]  # TU retransmits its 2xx
    ack = request("ACK", to_tag="callee-tag")
    assert [type(e) for e in tx.on_request(ack, 1.6)] == [Deliver]
    assert [(t, type(e)) for t, e in run_timers(tx, until=60.0)] == [(33.0, Terminated)]


def test_a_second_final_response_is_a_local_error() -> None:
    tx = _start()
    tx.respond(response(tx.request, 486), 0.0)
    with pytest.raises(LocalProtocolError):
        tx.respond(response(tx.request, 200), 0.1)
    assert tx.state is State.COMPLETED
