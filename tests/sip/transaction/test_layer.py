"""Matching messages to transactions (RFC 3261 §17.1.3, §17.2.3, §9.2)."""

from __future__ import annotations

from switchboard.sip.builders import make_cancel
from switchboard.sip.message import Response
from switchboard.sip.transaction.base import Deliver, Send
from switchboard.sip.transaction.layer import (
    NewInvite,
    NewRequest,
    StrayResponse,
    TransactionLayer,
)
from switchboard.sip.transaction.server_invite import ServerInviteTransaction
from tests.sip.factories import UDP_PEER, request, response


def test_responses_match_client_transactions_by_branch_and_method() -> None:
    layer = TransactionLayer()
    invite = request(branch="z9hG4bK-a")
    layer.send_request(invite, UDP_PEER, 0.0)
    events = layer.receive(response(invite, 180), UDP_PEER, 0.1)
    assert [type(e) for e in events] == [Deliver]
    other = request(branch="z9hG4bK-b")
    assert [type(e) for e in layer.receive(response(other, 180), UDP_PEER, 0.1)] == [StrayResponse]


def test_new_invite_gets_no_transaction_until_the_tu_opens_one() -> None:
    layer = TransactionLayer()
    invite = request()
    assert layer.receive(invite, UDP_PEER, 0.0) == [NewInvite(invite, UDP_PEER)]
    assert layer.servers == {} and layer.next_deadline() is None  # nothing kept (§8.2.7)
    assert layer.receive(invite, UDP_PEER, 0.3) == [NewInvite(invite, UDP_PEER)]


def test_retransmitted_request_matches_its_server_transaction() -> None:
    layer = TransactionLayer()
    invite = request()
    _, started = layer.open_invite(invite, UDP_PEER, 0.0)
    assert [type(e) for e in started] == [Send]  # 100 Trying
    again = layer.receive(invite, UDP_PEER, 0.3)
    assert [type(e) for e in again] == [Send]  # 100 again, TU not bothered
    assert len(layer.servers) == 1


def test_ack_for_a_stateless_refusal_matches_nothing_and_goes_to_the_tu() -> None:
    layer = TransactionLayer()
    invite = request()
    layer.receive(invite, UDP_PEER, 0.0)  # refused statelessly by the TU: no transaction
    ack = request("ACK", to_tag="stateless-tag")  # same branch, as §17.1.1.3 builds it
    assert layer.receive(ack, UDP_PEER, 0.1) == [NewRequest(None, ack, UDP_PEER)]
    assert layer.servers == {}


def test_cancel_gets_its_own_transaction_and_finds_the_invite() -> None:
    layer = TransactionLayer()
    invite = request()
    layer.open_invite(invite, UDP_PEER, 0.0)
    cancel = make_cancel(invite)
    events = layer.receive(cancel, UDP_PEER, 0.5)
    assert [type(e) for e in events] == [NewRequest]
    assert isinstance(layer.find_invite(cancel), ServerInviteTransaction)
    assert len(layer.servers) == 2


def test_ack_for_failure_matches_the_invite_transaction_and_ack_for_2xx_does_not() -> None:
    layer = TransactionLayer()
    invite = request()
    tx, _ = layer.open_invite(invite, UDP_PEER, 0.0)
    layer.respond(tx, response(invite, 486), 0.1)
    ack = request("ACK", to_tag="callee-tag")
    assert layer.receive(ack, UDP_PEER, 0.2) == []  # absorbed by the transaction
    ack_2xx = request("ACK", branch="z9hG4bK-other", to_tag="callee-tag")
    (event,) = layer.receive(ack_2xx, UDP_PEER, 0.2)
    assert isinstance(event, NewRequest) and event.transaction is None


def test_rfc2543_requests_without_magic_cookie_still_match() -> None:
    layer = TransactionLayer()
    invite = request(branch="old-style-1")
    layer.open_invite(invite, UDP_PEER, 0.0)
    assert [type(e) for e in layer.receive(invite, UDP_PEER, 0.4)] == [Send]


def test_timers_of_all_transactions_share_one_deadline_and_terminated_ones_are_forgotten() -> None:
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS", branch="z9hG4bK-1"), UDP_PEER, 0.0)
    layer.send_request(request("OPTIONS", branch="z9hG4bK-2"), UDP_PEER, 0.2)
    assert layer.next_deadline() == 0.5
    now = 0.0
    while (deadline := layer.next_deadline()) is not None:
        now = deadline
        layer.on_timer(now)
    assert now == 32.2
    assert layer.clients == {}


def test_stray_2xx_is_handed_to_the_tu() -> None:
    layer = TransactionLayer()
    ok = Response(200, "OK", response(request(), 200).headers)
    assert [type(e) for e in layer.receive(ok, UDP_PEER, 0.0)] == [StrayResponse]
