"""The CTI hub: the live elements of each domain (channels, and the directory's users,
groups, members, terminals) and the subscribers who watch them.

Rules (API §4, issue "Live CTI"):
- A subscriber sees only its own domain. Each event gets the next ``seq`` of that domain.
- Every subscriber has a bounded queue. One that falls behind (queue full) is dropped with
  reason ``too_slow``: publishing never waits, so a slow browser cannot slow call setup.
- At most ``per_app`` connections per (domain, user, app_name); a new one with ``forced``
  replaces the oldest (reason ``connection_replaced``), without it is refused
  (``connection_limit_reached``).
- The last ``history`` events of a domain are kept, so a client reconnecting with
  ``since=<seq>`` gets what it missed; older than the buffer, it gets a fresh snapshot.
- In a cluster (``shared_feed.SharedCtiFeed``) the hub numbers nothing: ``publish`` hands
  the event to the feed (``sink``), which sends it to the cluster state; every node then
  ``apply``s each domain's events with the seq the state gave, in that order. ``publish``
  answers the event with seq 0 then (not numbered yet). When a node lost events it cannot
  replay, ``resync`` forgets the domain's history and closes its subscribers with reason
  ``resync``: they reconnect and take a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from switchboard.cti.channels import Channel
from switchboard.cti.elements import (
    DomainRow,
    GroupMemberRow,
    GroupRow,
    TerminalRow,
    TrunkRow,
    UserRow,
)
from switchboard.quick_init import quick_init

Element = Channel | DomainRow | UserRow | GroupRow | GroupMemberRow | TerminalRow | TrunkRow


@quick_init
@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    event: str  # added | updated | removed
    item: Element
    # Its frames by wire format, made by the first subscriber that sends it
    # (``messages.event_frame``): one encoding per event, not one per subscriber.
    frames: dict[str, bytes | str] = field(default_factory=dict, compare=False, repr=False)


class ConnectionLimitError(Exception):
    pass


@dataclass(eq=False)
class Subscriber:
    domain: str
    user: str
    app_name: str
    queue: asyncio.Queue[Event]
    number: int
    user_id: int | None = None  # only this user's channels (the user_* selectors)
    closed: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def close(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)

    def wants(self, item: Element) -> bool:
        if self.user_id is None or not isinstance(item, Channel):
            return True
        return item.user_id == self.user_id


class CtiHub:
    def __init__(self, *, queue_size: int = 1000, history: int = 2000, per_app: int = 2) -> None:
        self.queue_size = queue_size
        self.history_size = history
        self.per_app = per_app
        self.items: dict[str, dict[tuple[str, str | int], Element]] = {}
        self.seq: dict[str, int] = {}
        self.history: dict[str, deque[Event]] = {}
        self.subscribers: dict[str, list[Subscriber]] = {}
        self._numbers = itertools.count()
        self.counters = {"cti_events": 0, "cti_dropped_subscribers": 0}
        # Set by a cluster's shared feed: where publish() hands events instead of applying.
        self.sink: Callable[[str, Element], None] | None = None

    # -- from the engine ------------------------------------------------------------------

    def seed(self, item: Element) -> None:
        """Set an element's start-up state, which nobody has been told of yet."""
        self.items.setdefault(item.domain, {})[(item.ELEMENT, item.key)] = item

    def publish(self, event: str, item: Element) -> Event:
        """Number and apply an event, or in a cluster hand it to the shared feed (seq 0:
        it is numbered, and applied here too, when the cluster state has it)."""
        if self.sink is not None:
            self.sink(event, item)
            return Event(0, event, item)
        return self.apply(self.seq.get(item.domain, 0) + 1, event, item)

    def apply(self, seq: int, event: str, item: Element) -> Event:
        """The event numbered ``seq`` (above the domain's seq): to the live elements, the
        history and the domain's subscribers."""
        domain = item.domain
        live = self.items.get(domain)
        if live is None:
            live = self.items[domain] = {}
        if event == "removed":
            live.pop((item.ELEMENT, item.key), None)
        else:
            live[(item.ELEMENT, item.key)] = item
        self.seq[domain] = seq
        published = Event(seq, event, item)
        history = self.history.get(domain)
        if history is None:  # not ``setdefault``: it would build a deque for every event
            history = self.history[domain] = deque(maxlen=self.history_size)
        history.append(published)
        self.counters["cti_events"] += 1
        subscribers = self.subscribers.get(domain)
        if subscribers:
            for subscriber in list(subscribers):  # a copy: a slow one is dropped here
                if not subscriber.wants(item):
                    continue
                try:
                    subscriber.queue.put_nowait(published)
                except asyncio.QueueFull:
                    self.counters["cti_dropped_subscribers"] += 1
                    self.unsubscribe(subscriber, "too_slow")
        return published

    def resync(self, domain: str, seq: int | None = None) -> None:
        """The domain's events since its seq cannot be had: its history is forgotten (no
        ``since=`` replays across the gap) and its subscribers are closed (reason
        ``resync``). ``seq``: where the numbering goes on (a cluster state that restarted)."""
        self.history.pop(domain, None)
        if seq is not None:
            self.seq[domain] = seq
        for subscriber in list(self.subscribers.get(domain, ())):
            self.unsubscribe(subscriber, "resync")

    # -- from WebSocket connections -------------------------------------------------------

    def subscribe(
        self, domain: str, user: str, app_name: str, *, forced: bool, user_id: int | None = None
    ) -> Subscriber:
        key = (user, app_name)
        same = [s for s in self.subscribers.get(domain, ()) if (s.user, s.app_name) == key]
        if len(same) >= self.per_app:
            if not forced:
                raise ConnectionLimitError("connection_limit_reached")
            self.unsubscribe(min(same, key=lambda s: s.number), "connection_replaced")
        subscriber = Subscriber(
            domain, user, app_name, asyncio.Queue(self.queue_size), next(self._numbers), user_id
        )
        self.subscribers.setdefault(domain, []).append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber, reason: str = "closed") -> None:
        listed = self.subscribers.get(subscriber.domain, [])
        if subscriber in listed:
            listed.remove(subscriber)
        subscriber.close(reason)

    def snapshot(self, domain: str) -> tuple[dict[str, list[Element]], int]:
        """The live elements by element name, and the seq they are current as of."""
        elements: dict[str, list[Element]] = {}
        for (element, _), item in self.items.get(domain, {}).items():
            elements.setdefault(element, []).append(item)
        return elements, self.seq.get(domain, 0)

    def channels(self, domain: str) -> list[Channel]:
        return [i for i in self.items.get(domain, {}).values() if isinstance(i, Channel)]

    def missed(self, domain: str, since: int) -> list[Event] | None:
        """Events after ``since``, or None when the buffer no longer reaches back there."""
        history = self.history.get(domain, deque())
        if since >= self.seq.get(domain, 0):
            return []
        if not history or history[0].seq > since + 1:
            return None
        return [e for e in history if e.seq > since]
