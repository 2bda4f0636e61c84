"""CTI events of a node alone: ``CtiHub``'s per-domain seq and bounded history, and feeds.

A feed has a bounded queue. Publishing never waits: a feed whose queue is full stops
receiving, and its reader, once it has read what was queued, gets EventsLostError (the
hub then resynchronises, as a reconnecting client with ``since=`` does).
"""

from __future__ import annotations

import asyncio
from collections import deque

from switchboard.cluster.errors import EventsLostError
from switchboard.cluster.values import CtiEvent, decode


class LocalFeed:
    def __init__(self, log: LocalEventLog, domains: frozenset[str] | None, size: int) -> None:
        self._log = log
        self.domains = domains
        self._size = size
        # Unbounded as a type, bounded by offer(): the closing sentinel must always fit.
        self._queue: asyncio.Queue[CtiEvent | None] = asyncio.Queue()
        self._lost = False
        self._closed = False

    def wants(self, domain: str) -> bool:
        return self.domains is None or domain in self.domains

    def offer(self, event: CtiEvent) -> None:
        if self._lost or self._closed:
            return
        if self._queue.qsize() >= self._size:
            self._lost = True
            self._queue.put_nowait(None)  # wakes a reader waiting on an empty queue
            return
        self._queue.put_nowait(event)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)
            self._log.forget(self)

    def __aiter__(self) -> LocalFeed:
        return self

    async def __anext__(self) -> CtiEvent:
        event = await self._queue.get()
        if event is not None:
            return event
        if self._lost and not self._closed:
            self.close()
            raise EventsLostError("the feed fell behind: its queue was full")
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.close()


class LocalEventLog:
    def __init__(self, *, history: int, feed_size: int) -> None:
        self._history_size = history
        self._feed_size = feed_size
        self._seq: dict[str, int] = {}
        self._history: dict[str, deque[tuple[int, str]]] = {}
        self._feeds: list[LocalFeed] = []

    def publish(self, domain: str, text: str) -> int:
        seq = self._seq.get(domain, 0) + 1
        self._seq[domain] = seq
        history = self._history.setdefault(domain, deque(maxlen=self._history_size))
        history.append((seq, text))
        for feed in self._feeds:
            if feed.wants(domain):
                feed.offer(CtiEvent(domain, seq, decode(text)))
        return seq

    def subscribe(self, domains: frozenset[str] | None) -> LocalFeed:
        feed = LocalFeed(self, domains, self._feed_size)
        self._feeds.append(feed)
        return feed

    def forget(self, feed: LocalFeed) -> None:
        if feed in self._feeds:
            self._feeds.remove(feed)

    def since(self, domain: str, seq: int) -> list[CtiEvent] | None:
        if seq >= self._seq.get(domain, 0):
            return []
        history = self._history.get(domain)
        if not history or history[0][0] > seq + 1:
            return None
        return [CtiEvent(domain, s, decode(text)) for s, text in history if s > seq]

    def close(self) -> None:
        for feed in list(self._feeds):
            feed.close()
