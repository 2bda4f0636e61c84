"""How many HTTP connections the API holds open, in all and per source address.

Every open TCP connection costs a file descriptor; a process has a fixed number of them
(``ulimit -n``). Without a cap, one client that opens connections and never sends a request
uses them all, and ``accept`` fails for everybody else. So the listener asks ``admit`` for
each new connection and gives the slot back with ``release`` when the connection is gone:
at most ``max_total`` connections in all (``server.http_max_connections``) and at most
``per_source`` from one address (``server.http_connections_per_source``), so that a single
source can fill at most its share and another source is still answered. A WebSocket keeps
the slot of the connection it was upgraded from. Pure: no sockets, no clock.
"""

from __future__ import annotations

from enum import Enum


class Refusal(Enum):
    """Which cap a refused connection ran into (named after its config key)."""

    TOTAL = "http_max_connections"
    PER_SOURCE = "http_connections_per_source"


class ConnectionLimits:
    def __init__(self, max_total: int, per_source: int) -> None:
        self.max_total = max_total
        self.per_source = per_source
        self.open = 0
        self._by_source: dict[str, int] = {}
        self.counters = {
            "http_connections_refused_total": 0,
            "http_connections_refused_per_source": 0,
            "http_requests_timed_out": 0,
        }

    def admit(self, source: str) -> Refusal | None:
        """Take a slot for a new connection from ``source``; the refusal if there is none."""
        held = self._by_source.get(source, 0)
        if self.open >= self.max_total:
            self.counters["http_connections_refused_total"] += 1
            return Refusal.TOTAL
        if held >= self.per_source:
            self.counters["http_connections_refused_per_source"] += 1
            return Refusal.PER_SOURCE
        self._by_source[source] = held + 1
        self.open += 1
        return None

    def release(self, source: str) -> None:
        """Give back the slot of an admitted connection that has closed."""
        held = self._by_source.get(source, 0)
        if held <= 0:
            return
        if held == 1:
            del self._by_source[source]  # no entry kept per address that has gone
        else:
            self._by_source[source] = held - 1
        self.open -= 1

    def held_by(self, source: str) -> int:
        return self._by_source.get(source, 0)

    def statistics(self) -> dict[str, int]:
        return {**self.counters, "http_connections_open": self.open}
