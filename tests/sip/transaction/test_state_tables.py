"""Every input thrown at every state of every transaction machine (STYLE §12).

For each (state, input): a table row moves to its declared state; a network or timer input
without a row is ignored (no effect, same state); a TU input without a row raises
``LocalProtocolError`` and leaves the state alone. A Hypothesis random walk then checks
that no sequence of inputs raises anything else, and that terminated machines hold no timers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.sip.errors import LocalProtocolError
from switchboard.sip.message import Message
from switchboard.sip.transaction.base import TU_INPUTS, Input, TimerConfig, Transaction
from switchboard.sip.transaction.client_invite import ClientInviteTransaction
from switchboard.sip.transaction.client_non_invite import ClientNonInviteTransaction
from switchboard.sip.transaction.server_invite import ServerInviteTransaction
from switchboard.sip.transaction.server_non_invite import ServerNonInviteTransaction
from tests.sip.factories import UDP_PEER, request, response

CONFIG = TimerConfig()
STATUS = {
    Input.PROVISIONAL: 180, Input.SUCCESS: 200, Input.FAILURE: 486,
    Input.SEND_PROVISIONAL: 180, Input.SEND_SUCCESS: 200, Input.SEND_FAILURE: 486,
}  # fmt: skip


def _client_invite() -> Transaction:
    tx = ClientInviteTransaction(request(), UDP_PEER, CONFIG)
    tx.start(0.0)
    return tx


def _client_non_invite() -> Transaction:
    tx = ClientNonInviteTransaction(request("BYE"), UDP_PEER, CONFIG)
    tx.start(0.0)
    return tx


def _server_invite() -> Transaction:
    tx = ServerInviteTransaction(request(), UDP_PEER, CONFIG)
    tx.start(0.0)
    return tx


def _server_non_invite() -> Transaction:
    return ServerNonInviteTransaction(request("BYE"), UDP_PEER, CONFIG)


MACHINES: dict[str, Callable[[], Transaction]] = {
    "client_invite": _client_invite,
    "client_non_invite": _client_non_invite,
    "server_invite": _server_invite,
    "server_non_invite": _server_non_invite,
}


def _message_for(tx: Transaction, event: Input) -> Message | None:
    if event in STATUS:
        return response(tx.request, STATUS[event])
    if event is Input.ACK:
        return request("ACK", to_tag="callee-tag")
    if event is Input.REQUEST:
        return tx.request
    return None


def _cases() -> list[tuple[str, enum.Enum, Input]]:
    cases = []
    for name, make in MACHINES.items():
        states = type(make().state)
        cases += [(name, state, event) for state in states for event in Input]
    return cases


@pytest.mark.parametrize(("machine", "state", "event"), _cases())
def test_every_input_in_every_state_follows_the_table(
    machine: str, state: enum.Enum, event: Input
) -> None:
    tx = MACHINES[machine]()
    tx.state = state
    row = tx.TABLE.get((state, event))
    message = _message_for(tx, event)
    if row is None and event in TU_INPUTS:
        with pytest.raises(LocalProtocolError):
            tx.fire(event, 1.0, message)
        assert tx.state is state
        return
    effects = tx.fire(event, 1.0, message)
    if row is None:
        assert effects == []
        assert tx.state is state
    else:
        assert tx.state is row[1]


@settings(max_examples=300, deadline=None)
@given(
    machine=st.sampled_from(sorted(MACHINES)),
    steps=st.lists(st.tuples(st.sampled_from(list(Input)), st.floats(0, 5)), max_size=30),
)
def test_random_input_sequences_never_break_a_machine(
    machine: str, steps: list[tuple[Input, float]]
) -> None:
    tx = MACHINES[machine]()
    now = 0.0
    for event, delay in steps:
        now += delay
        try:
            tx.fire(event, now, _message_for(tx, event))
        except LocalProtocolError:
            assert event in TU_INPUTS
        tx.on_timer(now)
        if tx.terminated:
            assert tx.deadline() is None
