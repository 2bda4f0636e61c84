"""WebSocket tickets (API §4, ``gen_ws_ticket``): single use, valid 10 s, for one exact URI.

A browser cannot set a Basic header on a WebSocket upgrade without exposing the token to
page code; it asks the server (with the token) for a ticket bound to the URI it will open,
and presents ``ws_ticket:<ticket>`` instead. Pure: times are given.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

TICKET_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Ticket:
    domain: str
    uri: str
    expires_at: float


class TicketBook:
    def __init__(self, *, max_tickets: int = 10_000) -> None:
        self._tickets: dict[str, Ticket] = {}
        self._max = max_tickets

    def issue(self, domain: str, uri: str, now: float) -> str:
        self._expire(now)
        if len(self._tickets) >= self._max:
            self._tickets.pop(next(iter(self._tickets)))
        value = secrets.token_hex(16)
        self._tickets[value] = Ticket(domain, uri, now + TICKET_SECONDS)
        return value

    def redeem(self, value: str, uri: str, now: float) -> str | None:
        """The domain the ticket was issued to, if it is valid for ``uri``; it is used up."""
        ticket = self._tickets.pop(value, None)
        if ticket is None or ticket.expires_at < now or ticket.uri != uri:
            return None
        return ticket.domain

    def _expire(self, now: float) -> None:
        for value in [v for v, t in self._tickets.items() if t.expires_at < now]:
            del self._tickets[value]
