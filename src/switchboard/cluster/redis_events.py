"""A node's feed of CTI events from Redis: it reads the stream of every domain's events
(ids ``0-<n>``, one n for all domains) from where it subscribed, with blocking reads.

A feed notices what it missed instead of skipping it: when the next entry's n is not the
last one read plus one (the stream was trimmed past it), or the stream's last n fell below
the feed's (Redis lost its data), it raises EventsLostError; the node then resynchronises.
"""

from __future__ import annotations

import asyncio
from collections import deque

from switchboard.cluster.errors import ClusterStateError, EventsLostError
from switchboard.cluster.redis_link import RedisLink
from switchboard.cluster.values import GATHER_SECONDS, CtiEvent, decode

BLOCK_SECONDS = 1.0
READ_COUNT = 500


Entry = tuple[int, dict[str, str]]  # n of the id 0-<n>, and the fields


def entry_number(entry_id: str) -> int:
    """n of a ``0-<n>`` stream id."""
    return int(entry_id.partition("-")[2])


def entries(reply: object) -> list[Entry]:
    """An XRANGE or XREVRANGE reply (RESP2, decoded): (id, fields) pairs."""
    if not isinstance(reply, list):
        raise ClusterStateError(f"unexpected stream reply {reply!r:.100}")
    return [(entry_number(str(entry_id)), dict(fields or {})) for entry_id, fields in reply]


async def read_range(link: RedisLink, what: str, *command: str | int) -> list[Entry]:
    return entries(await link(what, link.command(*command)))


async def last_number(link: RedisLink, stream: str) -> int:
    newest = await read_range(link, "the last event", "XREVRANGE", stream, "+", "-", "COUNT", 1)
    return newest[0][0] if newest else 0


class RedisFeed:
    def __init__(
        self,
        link: RedisLink,
        stream: str,
        domains: frozenset[str] | None,
        after: int,
        *,
        block: float = BLOCK_SECONDS,
        gather: float = GATHER_SECONDS,
    ) -> None:
        """``gather``: after a read that brought events, wait this long before the next,
        so that the next brings several (a read that brought none blocks for the next)."""
        self._link = link
        self._gather = gather
        self._brought = False
        self._stream = stream
        self.domains = domains
        self._last = after
        self._block = block
        self._ready: deque[CtiEvent] = deque()
        self._gap: str | None = None  # what was missed, once read up to it
        self._closed = False

    def __aiter__(self) -> RedisFeed:
        return self

    async def __anext__(self) -> CtiEvent:
        while not self._ready:
            if self._gap is not None and not self._closed:
                self._closed = True
                raise EventsLostError(f"the feed fell behind: {self._gap}")
            if self._closed:
                raise StopAsyncIteration
            await self._read()
        return self._ready.popleft()

    async def aclose(self) -> None:
        self._closed = True

    async def _read(self) -> None:
        if self._brought and self._gather > 0:
            await asyncio.sleep(self._gather)
        link = self._link
        read = link.command(
            "XREAD", "COUNT", READ_COUNT, "BLOCK", _ms(self._block),
            "STREAMS", self._stream, f"0-{self._last}",
        )  # fmt: skip
        answer = await link("events", read, timeout=link.timeout + self._block)
        # XREAD answers [[stream, entries]], or nothing when the block time passed.
        read_entries = entries(answer[0][1]) if isinstance(answer, list) and answer else []
        self._brought = 0 < len(read_entries) < READ_COUNT  # a full read: more are waiting
        if not read_entries and await last_number(link, self._stream) < self._last:
            self._gap = f"the event stream restarted below {self._last}"
        for number, fields in read_entries:
            if number != self._last + 1:
                self._gap = f"events {self._last + 1} to {number - 1} were trimmed"
                return
            self._last = number
            event = _event(fields)
            if event is not None and (self.domains is None or event.domain in self.domains):
                self._ready.append(event)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _event(fields: dict[str, str]) -> CtiEvent | None:
    try:
        return CtiEvent(str(fields["d"]), int(fields["s"]), decode(fields["e"]))
    except (KeyError, ValueError):
        return None
