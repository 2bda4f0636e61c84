"""The CTI hub of a cluster node: every node sees every CTI event of a domain, numbered
once for the cluster by the shared state's event log (issue 16, docs/cluster-state.md).

Rules:
- Started, the feed becomes the hub's ``sink``: ``CtiHub.publish`` hands it each event and
  returns at once. One sender task publishes them, in order, to the state. Its queue is
  bounded: while the state is unreachable, events that do not fit, and events whose
  publish failed, are counted as lost and logged within a budget; memory never grows.
- One reader task takes the state's feed of every domain and ``apply``s each event to the
  hub with the seq the state gave, its own events included: every node's hub holds the
  same elements, seqs, history and so the same frames, whichever node published.
- Before reading, the hub is brought up to what the state still holds of each domain it
  knows (``since(domain, 0)``), so a node that joins sees the calls already live.
- Nothing is skipped silently. A domain whose next event is not the one after the hub's
  seq is filled from the state's history (``since``); when the history no longer reaches
  back (or the feed fell behind, ``EventsLostError``, and then the history does not reach
  back either), the hub ``resync``s the domain: its ``since=`` history is forgotten and its
  subscribers are closed with reason ``resync``, so they reconnect for a fresh snapshot.
  A state that lost its data (its seqs start again at 1) is a resync too.
- Elements travel as ``to_state()`` and are re-created by ``element_from_state``: the same
  element, field for field, so the same BERT and JSON frames on every node. A node's own
  events come back to it too; those it takes from what it sent (the body carries the node
  and its own count, ``n``) instead of re-creating them: re-creating every event on every
  node made each node's CPU per call grow with the number of nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection

from switchboard.cluster.errors import ClusterStateError, EventsLostError
from switchboard.cluster.state import CtiEvent, EventFeed, EventLog, JsonObject
from switchboard.cti.channels import Channel
from switchboard.cti.elements import element_from_state
from switchboard.cti.hub import CtiHub, Element
from switchboard.logbudget import LogBudget

log = logging.getLogger("switchboard.cti")

QUEUE_SIZE = 10_000  # events waiting for the state: seconds of a busy node's events
BATCH = 200  # events published at once (the state takes at most MAX_BATCH)
RETRY_SECONDS = 1.0  # between tries to reach an unreachable state from the reader
DRAIN_SECONDS = 2.0  # what close() waits for queued events to reach the state
STOP_SECONDS = 5.0  # what close() waits for its tasks to end once cancelled
SENT_KEPT = 2 * QUEUE_SIZE  # own events kept until the feed brings them back


class SharedCtiFeed:
    def __init__(
        self,
        hub: CtiHub,
        state: EventLog,
        *,
        domains: Collection[str] = (),
        node: str | None = None,
        queue_size: int = QUEUE_SIZE,
        retry: float = RETRY_SECONDS,
        gather: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``domains``: those to catch up on at start besides the ones the hub holds;
        ``node``: this node's name, sent with its events: a dead node's channels are
        known by it (``channels_of``); ``gather``: seconds the sender waits after an event
        for more to publish with it (``cluster.values.GATHER_SECONDS``)."""
        self.gather = gather
        self.hub = hub
        self.node = node
        # which node published each live channel: the one whose death removes it
        self._shown_by: dict[tuple[str, str], str] = {}
        # what this node published, by its own count, until the feed brings it back: an
        # event the feed never brings back (lost, resynced) is dropped with the oldest
        self._sent: OrderedDict[str, tuple[str, Element]] = OrderedDict()
        self._sent_count = 0
        self._life = secrets.token_hex(4)  # a restarted node counts from 1 again
        self.state = state
        self.domains = frozenset(domains)
        self.retry = retry
        self._clock = clock
        self._queue: asyncio.Queue[tuple[str, Element]] = asyncio.Queue(queue_size)
        self._feed: EventFeed | None = None
        self._in_flight = False  # an event taken from the queue, not yet published
        self._behind = False  # a new feed, and the hub not yet caught up with the history
        self._tasks: list[asyncio.Task[None]] = []
        self._resynced: set[str] = set()  # domains whose next event may skip seqs
        self._log_budget = LogBudget(per_second=1)
        self._unreachable = False
        # Also checked by the tasks: a cancel that a client library turned into a timeout
        # (asyncio.timeout racing the cancel) must still end them.
        self._stopped = False
        self.counters = {
            "cti_events_sent": 0,
            "cti_events_lost": 0,
            "cti_events_applied": 0,
            "cti_resyncs": 0,
        }

    def statistics(self) -> dict[str, int]:
        return {**self.counters, "cti_events_queued": self._queue.qsize()}

    # -- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Take the hub's events from now on, catch up, then read the state's feed.
        ClusterStateError when the state cannot be reached now."""
        self.hub.sink = self._offer  # queued until the sender runs, in publish order
        try:
            self._feed = await self.state.subscribe()
            await self._catch_up(self._known(), since_start=True)
        except BaseException:
            self.hub.sink = None
            if self._feed is not None:
                await self._feed.aclose()
            raise
        self._tasks = [
            asyncio.create_task(self._send_all(), name="cti-feed-sender"),
            asyncio.create_task(self._read_all(), name="cti-feed-reader"),
        ]

    async def close(self, drain: float = DRAIN_SECONDS) -> None:
        """Stop taking events; those queued get ``drain`` seconds to reach the state (a
        stopping node's last removals), then both tasks end."""
        if self.hub.sink == self._offer:
            self.hub.sink = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain):
                while self._tasks and self._sending():
                    await asyncio.sleep(0.01)
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a client library that swallowed the cancel cannot hang us
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            if stuck:
                log.warning("CTI events: %d task(s) did not stop in %g s", len(stuck), STOP_SECONDS)
        if self._feed is not None:
            await self._feed.aclose()

    # -- to the state ----------------------------------------------------------------------

    def _sending(self) -> bool:
        return (not self._queue.empty() or self._in_flight) and not self._tasks[0].done()

    def _offer(self, event: str, item: Element) -> None:
        try:
            self._queue.put_nowait((event, item))
        except asyncio.QueueFull:
            self._lose(item.domain, "the queue to the cluster state is full")

    async def _send_all(self) -> None:
        """Publish what is queued, in order: everything queued at once (up to
        ``BATCH``) in one call to the state, so a busy node's events cost one round trip
        per batch, not per event (measured: one at a time fell behind at ~3000 events/s,
        120 calls/s, and the queue overflowed)."""
        while not self._stopped:
            batch = [await self._queue.get()]
            # in flight from now: close() waits for an event taken while more are gathered
            self._in_flight = True
            if self.gather > 0:
                await asyncio.sleep(self.gather)
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._send(batch)
            finally:
                self._in_flight = False

    async def _send(self, batch: list[tuple[str, Element]]) -> None:
        events: list[tuple[str, JsonObject]] = []
        for event, item in batch:
            body: JsonObject = {"event": event, "item": item.to_state()}
            if self.node is not None:
                self._sent_count += 1
                count = f"{self._life}.{self._sent_count}"
                body["node"], body["n"] = self.node, count
                self._remember(count, event, item)
            events.append((item.domain, body))
        try:
            await self.state.publish_many(events)
        except ValueError:  # one event the state refuses (too large): only it is lost
            for domain, body in events:
                try:
                    await self.state.publish(domain, body)
                except (ClusterStateError, ValueError) as exc:
                    self._lose(domain, str(exc))
                else:
                    self.counters["cti_events_sent"] += 1
        except ClusterStateError as exc:
            for domain, _ in events:
                self._lose(domain, str(exc))
        else:
            self.counters["cti_events_sent"] += len(events)

    def _remember(self, count: str, event: str, item: Element) -> None:
        self._sent[count] = (event, item)
        if len(self._sent) > SENT_KEPT:
            self._sent.popitem(last=False)

    def _own(self, event: CtiEvent) -> tuple[str, Element] | None:
        """What this node sent as ``event``, if it did and still has it."""
        body = event.body
        count = body.get("n")
        if body.get("node") != self.node or self.node is None or not isinstance(count, str):
            return None
        sent = self._sent.pop(count, None)
        if sent is None or sent[1].domain != event.domain:
            return None
        return sent

    def _lose(self, domain: str, why: str) -> None:
        self.counters["cti_events_lost"] += 1
        left_out = self._log_budget.take(self._clock())
        if left_out is not None:
            more = f" ({left_out} more not logged)" if left_out else ""
            log.warning("CTI event of %s lost: %s%s", domain, why, more)

    # -- from the state --------------------------------------------------------------------

    async def _read_all(self) -> None:
        while not self._stopped:
            try:
                if self._feed is None:
                    self._feed = await self.state.subscribe()
                    self._behind = True
                if self._behind:
                    await self._catch_up(self._known(), since_start=False)
                    self._behind = False
                    self._reachable()
                async for event in self._feed:
                    self._reachable()
                    await self._take(event)
            except EventsLostError as exc:
                log.warning("CTI events: the feed fell behind (%s); catching up", exc)
                feed, self._feed = self._feed, None
                if feed is not None:
                    await feed.aclose()
            except ClusterStateError as exc:
                if not self._unreachable:
                    self._unreachable = True
                    log.warning("CTI events: the cluster state is unreachable: %s", exc)
                await asyncio.sleep(self.retry)
            else:
                return  # the feed was closed

    def _reachable(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.warning("CTI events: the cluster state is reachable again")

    async def _take(self, event: CtiEvent) -> None:
        domain, current = event.domain, self.hub.seq.get(event.domain, 0)
        if event.seq <= current:
            return  # applied already, from the history read when catching up
        if event.seq > current + 1 and domain not in self._resynced:
            await self._fill(domain, current)
        if event.seq > self.hub.seq.get(domain, 0):
            self._apply(event)

    async def _fill(self, domain: str, after: int) -> None:
        """Events of the domain after ``after`` from the state's history, or a resync."""
        events = await self.state.since(domain, after)
        if events is None:
            self._resync(domain, None)
        else:
            for event in events:
                self._apply(event)

    def _known(self) -> set[str]:
        return set(self.hub.items) | set(self.hub.seq) | self.domains

    async def _catch_up(self, domains: Collection[str], *, since_start: bool) -> None:
        """Bring the hub up to the state's history of each domain, after a (re)subscribe:
        the feed then gives what comes next, and ``_take`` skips what both gave."""
        for domain in sorted(domains):
            current = self.hub.seq.get(domain, 0)
            if since_start or current == 0:
                await self._fill(domain, current)
                continue
            # The history should still hold the hub's last event, unchanged; if it does
            # not, the state lost its data and numbers from 1 again.
            events = await self.state.since(domain, current - 1)
            if events is None:
                self._resync(domain, None)
            elif events and events[0].seq == current and self._same_as_last(events[0]):
                for event in events[1:]:
                    self._apply(event)
            else:
                log.warning("CTI events of %s: the cluster state numbers anew", domain)
                self._resync(domain, 0)
                await self._fill(domain, 0)

    def _same_as_last(self, event: CtiEvent) -> bool:
        history = self.hub.history.get(event.domain)
        if not history:
            return True  # nothing to compare with: the seq alone says
        decoded = self._own(event) or _decode(event)
        return decoded is not None and (history[-1].event, history[-1].item) == decoded

    def _apply(self, event: CtiEvent) -> None:
        if event.seq <= self.hub.seq.get(event.domain, 0):
            return
        decoded = self._own(event) or _decode(event)
        if decoded is None:  # a node of another version, or a foreign writer
            log.warning("CTI event %s of %s not understood: resync", event.seq, event.domain)
            self._resync(event.domain, event.seq)
            return
        self._resynced.discard(event.domain)
        name, item = decoded
        if isinstance(item, Channel):
            key, node = (item.domain, item.uuid), event.body.get("node")
            if name == "removed" or not isinstance(node, str):
                self._shown_by.pop(key, None)
            else:
                self._shown_by[key] = node
        self.hub.apply(event.seq, name, item)
        self.counters["cti_events_applied"] += 1

    def channels_of(self, node: str) -> list[Channel]:
        """The live channels ``node`` published and nobody removed."""
        shown = []
        for (domain, uuid), by in list(self._shown_by.items()):
            item = self.hub.items.get(domain, {}).get((Channel.ELEMENT, uuid))
            if not isinstance(item, Channel):
                del self._shown_by[(domain, uuid)]  # gone with a resync
            elif by == node:
                shown.append(item)
        return shown

    def _resync(self, domain: str, seq: int | None) -> None:
        self.counters["cti_resyncs"] += 1
        self._resynced.add(domain)
        self.hub.resync(domain, seq)


def _decode(event: CtiEvent) -> tuple[str, Element] | None:
    name, state = event.body.get("event"), event.body.get("item")
    if name not in ("added", "updated", "removed") or not isinstance(state, dict):
        return None
    try:
        item = element_from_state(state)
    except ValueError:
        return None
    return (name, item) if item.domain == event.domain else None
