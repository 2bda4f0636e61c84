"""What all transactions share: timers, effects, and the table-driven state machine.

Each machine is a table ``(state, input) -> (actions, next state)``. An input that the
table does not list is:
- ignored when it comes from the network or a timer (the peer may retransmit anything at
  any time, and timers are cancelled lazily), and
- a ``LocalProtocolError`` when it comes from the transaction user (TU), because the TU
  asked for something the RFC forbids in that state.

Every entry point takes ``now`` (seconds, any monotonic origin) and returns ``Effect``s.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from switchboard.quick_init import quick_init
from switchboard.sip.errors import LocalProtocolError
from switchboard.sip.message import Message, Request, Response, held_as_wire

log = logging.getLogger("switchboard.sip.transaction")


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """RFC 3261 §17.1.1.1 timer values, in seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0


@quick_init
@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message goes or came from."""

    transport: str  # "UDP" | "TCP" | "TLS" (reliable: every transport but UDP)
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"

    def __str__(self) -> str:
        return f"{self.transport.lower()}:{self.host}:{self.port}"


class Input(enum.Enum):
    # from the network
    REQUEST = "request"  # a retransmission of the request that created a server tx
    ACK = "ack"
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    # from the TU (server side)
    SEND_PROVISIONAL = "send 1xx"
    SEND_SUCCESS = "send 2xx"
    SEND_FAILURE = "send 300-699"
    # from the edge
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"


TU_INPUTS = frozenset((Input.SEND_PROVISIONAL, Input.SEND_SUCCESS, Input.SEND_FAILURE))


def response_input(status: int, *, outgoing: bool) -> Input:
    if status < 200:
        return Input.SEND_PROVISIONAL if outgoing else Input.PROVISIONAL
    if status < 300:
        return Input.SEND_SUCCESS if outgoing else Input.SUCCESS
    return Input.SEND_FAILURE if outgoing else Input.FAILURE


# Effects ---------------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class Send:
    message: Message
    peer: Peer
    retransmission: bool = False  # counted by the endpoint: a sign of loss on the path


@quick_init
@dataclass(frozen=True, slots=True)
class Deliver:
    """A message for the TU: a response on a client tx, an ACK for 2xx on a server tx."""

    transaction: Transaction
    message: Message


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Timer B/F (no final response), or H (no ACK): the TU treats it as 408 (§8.1.3.1)."""

    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransportFailed:
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class Terminated:
    transaction: Transaction


Effect = Send | Deliver | TimedOut | TransportFailed | Terminated
Row = tuple[tuple[str, ...], enum.Enum]


class Transaction:
    """Base of the four machines; subclasses give ``TABLE`` and the action methods."""

    TABLE: ClassVar[Mapping[tuple[enum.Enum, Input], Row]]
    TIMER_INPUTS: ClassVar[Mapping[str, Input]] = {
        name: Input[f"TIMER_{name}"] for name in "ABDEFGHIJKLM"
    }

    def __init__(self, request: Request, peer: Peer, state: enum.Enum, config: TimerConfig):
        self.request = request
        self.peer = peer
        self.state = state
        self.config = config
        self.timers: dict[str, float] = {}
        self.intervals: dict[str, float] = {}
        self.last_response: Response | None = None
        self._effects: list[Effect] = []
        self._now = 0.0
        self._message: Message | None = None
        self.layer_key: tuple[str, ...] = ()  # where the transaction layer files it

    # -- driving --------------------------------------------------------------------------

    def fire(self, event: Input, now: float, message: Message | None = None) -> list[Effect]:
        row = self.TABLE.get((self.state, event))
        if row is None:
            if event in TU_INPUTS:
                raise LocalProtocolError(f"{type(self).__name__}: {event.value} in {self.state}")
            return []
        actions, next_state = row
        self._effects, self._now, self._message = [], now, message
        for action in actions:
            self._action(action)()
        if next_state is not self.state:
            if log.isEnabledFor(logging.DEBUG):  # ``key`` parses the top Via
                log.debug("%s %s: %s -> %s", type(self).__name__, self.key, self.state, next_state)
            self.state = next_state
            if self.terminated:
                self.timers.clear()
                self._effects.append(Terminated(self))
        effects, self._effects, self._message = self._effects, [], None
        return effects

    def on_timer(self, now: float) -> list[Effect]:
        """Fire every timer whose deadline has come, earliest first."""
        effects: list[Effect] = []
        while self.timers:
            name, deadline = min(self.timers.items(), key=lambda item: item[1])
            if deadline > now:
                break
            del self.timers[name]
            effects += self.fire(self.TIMER_INPUTS[name], now)
        return effects

    def deadline(self) -> float | None:
        return min(self.timers.values()) if self.timers else None

    @property
    def terminated(self) -> bool:
        return self.state.name == "TERMINATED"

    @property
    def key(self) -> str:
        return self.request.top_via.branch or self.request.call_id

    def _action(self, name: str) -> Callable[[], None]:
        method: Callable[[], None] = getattr(self, f"_do_{name}")
        return method

    # -- shared actions -------------------------------------------------------------------

    def _start(self, name: str, interval: float) -> None:
        self.intervals[name] = interval
        self.timers[name] = self._now + interval

    def _stop(self, name: str) -> None:
        self.timers.pop(name, None)

    def _send(self, message: Message, *, retransmission: bool = False) -> None:
        self._effects.append(Send(message, self.peer, retransmission))

    def _deliver(self) -> None:
        assert self._message is not None
        self._effects.append(Deliver(self, self._message))

    def _do_deliver(self) -> None:
        self._deliver()

    def _do_hold_as_wire(self) -> None:
        """Entering the state that only absorbs retransmissions until its last timer."""
        self.request = held_as_wire(self.request)
        if self.last_response is not None:
            self.last_response = held_as_wire(self.last_response)

    def _do_timeout(self) -> None:
        self._effects.append(TimedOut(self))

    def _do_transport_failed(self) -> None:
        self._effects.append(TransportFailed(self))

    def _unreliable(self, interval: float) -> float:
        """Timers that only absorb retransmissions are zero over reliable transports."""
        return 0.0 if self.peer.reliable else interval


class ClientTransactionBase(Transaction):
    """What both client machines share: sending the request and reading responses."""

    RETRANSMIT_TIMER: ClassVar[str]  # A or E: only over unreliable transports
    TIMEOUT_TIMER: ClassVar[str]  # B or F: 64·T1 (§17.1.1.2, §17.1.2.2)

    def start(self, now: float) -> list[Effect]:
        self._now, self._effects = now, []
        self._send(self.request)
        if not self.peer.reliable:
            self._start(self.RETRANSMIT_TIMER, self.config.t1)
        self._start(self.TIMEOUT_TIMER, 64 * self.config.t1)
        effects, self._effects = self._effects, []
        return effects

    def on_response(self, response: Response, now: float) -> list[Effect]:
        return self.fire(response_input(response.status, outgoing=False), now, response)

    def _do_stop_retransmit(self) -> None:
        self._stop(self.RETRANSMIT_TIMER)
        self._stop(self.TIMEOUT_TIMER)


class ServerTransactionBase(Transaction):
    """What both server machines share: sending responses and repeating the last one."""

    def respond(self, response: Response, now: float) -> list[Effect]:
        return self.fire(response_input(response.status, outgoing=True), now, response)

    def _do_send_response(self) -> None:
        assert isinstance(self._message, Response)
        self.last_response = self._message
        self._send(self._message)

    def _do_resend_last(self) -> None:
        if self.last_response is not None:
            self._send(self.last_response, retransmission=True)
