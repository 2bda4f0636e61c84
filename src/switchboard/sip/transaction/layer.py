"""The transaction layer: creates transactions, matches messages to them, runs their timers.

Matching:
- Responses to client transactions by top-Via branch and CSeq method (§17.1.3).
- Requests to server transactions by branch, sent-by and method, with ACK matching its
  INVITE (§17.2.3); requests from RFC 2543 peers (no ``z9hG4bK`` cookie) by Call-ID,
  From tag, CSeq number and sent-by.
- CANCEL gets its own server transaction; ``find_invite`` finds the INVITE it cancels by
  the same rules with the method INVITE (§9.2).

What matches nothing goes to the TU: new requests (ACK for a 2xx among them, since that
ACK is a separate transaction, §17.1.1.3) and stray responses (2xx retransmitted after the
INVITE transaction ended, which the TU must ACK again, §13.2.2.4).

A new INVITE gets no server transaction of its own accord: it is reported as ``NewInvite``
and the TU either takes it (``open_invite``: 100 Trying, then the usual transaction) or
answers it statelessly (§8.2.7). An INVITE server transaction retransmits its final
response for 32 s (Timer G) and keeps state as long, which a stranger must not be able to
obtain for the price of one datagram. Other requests cost one response per request
received, so they keep their transaction.

Timers: one heap of (deadline, transaction) for all transactions, so the edge arms a
single timer at ``next_deadline()``. Stale heap entries are skipped lazily.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from switchboard.sip.message import Message, Request, Response
from switchboard.sip.transaction.base import (
    Effect,
    Peer,
    Terminated,
    TimerConfig,
    Transaction,
    TransportFailed,
)
from switchboard.sip.transaction.base import Input as TxInput
from switchboard.sip.transaction.client_invite import ClientInviteTransaction
from switchboard.sip.transaction.client_non_invite import ClientNonInviteTransaction
from switchboard.sip.transaction.server_invite import ServerInviteTransaction
from switchboard.sip.transaction.server_non_invite import ServerNonInviteTransaction

ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
ServerKey = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A request that matched no transaction. ``transaction`` is None for ACK."""

    transaction: ServerTransaction | None
    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class StrayResponse:
    response: Response
    peer: Peer


@dataclass(frozen=True, slots=True)
class NewInvite:
    """An INVITE that matched no transaction; none exists for it until ``open_invite``."""

    request: Request
    peer: Peer


LayerEvent = Effect | NewRequest | NewInvite | StrayResponse


def server_key(request: Request, method: str | None = None) -> ServerKey:
    via = request.top_via
    host, port = via.sent_by
    wanted = method or ("INVITE" if request.method == "ACK" else request.method)
    branch = via.branch
    if branch is not None and via.is_rfc3261:
        return (branch, host, str(port), wanted)
    return (request.call_id, request.from_.tag or "", str(request.cseq.number), host, wanted)


def client_key(message: Message) -> tuple[str, str]:
    return (message.top_via.branch or "", message.cseq.method)


class TransactionLayer:
    def __init__(self, config: TimerConfig | None = None) -> None:
        self.config = config or TimerConfig()
        self.clients: dict[tuple[str, ...], ClientTransaction] = {}
        self.servers: dict[ServerKey, ServerTransaction] = {}
        self._heap: list[tuple[float, int, Transaction]] = []
        self._counter = itertools.count()

    # -- from the TU ----------------------------------------------------------------------

    def send_request(
        self, request: Request, peer: Peer, now: float
    ) -> tuple[ClientTransaction, list[Effect]]:
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = ClientInviteTransaction(request, peer, self.config)
        else:
            tx = ClientNonInviteTransaction(request, peer, self.config)
        self.clients[self._filed(tx, client_key(request))] = tx
        return tx, self._track(tx, tx.start(now))

    def respond(self, tx: ServerTransaction, response: Response, now: float) -> list[Effect]:
        return self._track(tx, tx.respond(response, now))

    def transport_error(self, tx: Transaction, now: float) -> list[Effect]:
        return self._track(tx, tx.fire(TxInput.TRANSPORT_ERROR, now))

    def open_invite(
        self, invite: Request, peer: Peer, now: float
    ) -> tuple[ServerInviteTransaction, list[Effect]]:
        """Take a ``NewInvite``: its server transaction starts (100 Trying, §17.2.1)."""
        tx = ServerInviteTransaction(invite, peer, self.config)
        self.servers[self._filed(tx, server_key(invite))] = tx
        return tx, self._track(tx, tx.start(now))

    def find_invite(self, cancel: Request) -> ServerInviteTransaction | None:
        tx = self.servers.get(server_key(cancel, "INVITE"))
        return tx if isinstance(tx, ServerInviteTransaction) else None

    # -- from the network -----------------------------------------------------------------

    def receive(self, message: Message, peer: Peer, now: float) -> list[LayerEvent]:
        if isinstance(message, Response):
            client = self.clients.get(client_key(message))
            if client is None:
                return [StrayResponse(message, peer)]
            return list(self._track(client, client.on_response(message, now)))
        key = server_key(message)
        server = self.servers.get(key)
        if server is not None:
            return list(self._track(server, server.on_request(message, now)))
        if message.method == "ACK":
            return [NewRequest(None, message, peer)]
        if message.method == "INVITE":
            return [NewInvite(message, peer)]
        tx = ServerNonInviteTransaction(message, peer, self.config)
        self.servers[self._filed(tx, key)] = tx
        return [NewRequest(tx, message, peer)]

    # -- from the clock -------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, tx = heap[0]
            if tx.terminated or tx.deadline() != deadline:
                heapq.heappop(heap)
                continue
            return deadline
        return None

    def on_timer(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, tx = heapq.heappop(heap)
            if not tx.terminated:
                effects += self._track(tx, tx.on_timer(now))
        return effects

    def statistics(self) -> dict[str, int]:
        return {"client_transactions": len(self.clients), "server_transactions": len(self.servers)}

    # -- bookkeeping ----------------------------------------------------------------------

    def _track(self, tx: Transaction, effects: list[Effect]) -> list[Effect]:
        for effect in effects:
            if isinstance(effect, Terminated | TransportFailed) and tx.terminated:
                self._forget(tx)
        deadline = tx.deadline()
        if deadline is not None and not tx.terminated:
            heapq.heappush(self._heap, (deadline, next(self._counter), tx))
        return effects

    @staticmethod
    def _filed(tx: Transaction, key: tuple[str, ...]) -> tuple[str, ...]:
        """Kept on the transaction, so that forgetting it reads nothing of its request (held
        as octets by then, ``held_as_wire``)."""
        tx.layer_key = key
        return key

    def _forget(self, tx: Transaction) -> None:
        if isinstance(tx, ClientInviteTransaction | ClientNonInviteTransaction):
            self.clients.pop(tx.layer_key, None)
        elif isinstance(tx, ServerInviteTransaction | ServerNonInviteTransaction):
            self.servers.pop(tx.layer_key, None)
