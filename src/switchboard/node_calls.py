"""A cluster node's bookkeeping of its calls in the shared state (issue 16, DESIGN §7).

- Each channel a call shows is claimed for this node (``owner(uuid)`` names it), so a
  command sent to any node reaches this one; released with the call.
- Each call is tracked: a snapshot (``pbx/failover.py``) of where its outcome goes and what
  it shows, removed when the call ends.
- When a node dies, the node that reaps it (``cluster/lease.py``) sends at once the
  callbacks the dead node had claimed in the shared outbox, and takes the dead node's
  snapshots and ends each call for it: the ``node_failed`` callback of a request whose
  hunt had not ended and its end-of-call event (from the durable outbox, at most once per
  delivery id, so never beside the one the dead node stored), a call record per leg, and
  CTI ``removed`` for the channels it showed.

Claims and snapshots of one loop iteration go to the state together (one claim per
tick, not one per channel); they run beside the call, which never waits for Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from switchboard.cluster.state import ClusterState
from switchboard.cluster.values import MAX_UUIDS
from switchboard.cti.channels import Channel
from switchboard.cti.hub import CtiHub
from switchboard.pbx import failover
from switchboard.pbx.live import LiveCall
from switchboard.store.records import CallRecord

log = logging.getLogger("switchboard.cluster")


class Deliveries(Protocol):
    async def enqueue_once(
        self, domain: str, url: str, payload: dict[str, object], delivery_id: str
    ) -> bool: ...

    async def take_over(self, node: str) -> int: ...


class Records(Protocol):
    async def save(self, records: list[CallRecord]) -> None: ...


class NodeCalls:
    def __init__(
        self,
        state: ClusterState,
        deliveries: Deliveries,
        records: Records,
        cti: CtiHub,
        *,
        wall: Callable[[], float] = time.time,
        shown_by: Callable[[str], list[Channel]] = lambda _node: [],
    ) -> None:
        """``shown_by(node)``: the live CTI channels a node published (the shared feed's
        ``channels_of``): those of a dead node that no snapshot names are removed too."""
        self.shown_by = shown_by
        self.state = state
        self.deliveries = deliveries
        self.records = records
        self.cti = cti
        self.wall = wall
        self.tasks: set[asyncio.Future[None]] = set()
        self._claims: list[str] = []
        self._releases: list[str] = []
        self._snapshots: dict[LiveCall, frozenset[str]] = {}  # call -> channels it tracked
        self._dirty: set[LiveCall] = set()
        self._untrack: list[str] = []
        self._flush_armed = False
        self.counters = {"node_failed_calls": 0}

    # -- the engine's watcher ---------------------------------------------------------------

    def started(self, call: LiveCall) -> None:
        self._snapshots[call] = frozenset()
        self._dirty.add(call)
        self._arm()

    def channel_seen(self, call: LiveCall, channel: str) -> None:
        self._claims.append(channel)
        tracked = self._snapshots.get(call)
        if tracked is not None and channel not in tracked:
            self._dirty.add(call)  # a transfer's new channel
        self._arm()

    def released(self, call: LiveCall, channels: list[str]) -> None:
        self._releases.extend(channels)
        if self._snapshots.pop(call, None) is not None:
            self._dirty.discard(call)
            self._untrack.append(call.key)
        self._arm()

    def _arm(self) -> None:
        if not self._flush_armed:
            self._flush_armed = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_armed = False
        claims, self._claims = self._claims, []
        releases, self._releases = self._releases, []
        untrack, self._untrack = self._untrack, []
        for chunk in _chunks(claims):
            self._spawn(self.state.claim(chunk), "claiming channels")
        for call in self._dirty:
            machine = call.machine.call
            snap = failover.snapshot(call.key, machine, call.callback_url, call.events_url)
            self._snapshots[call] = frozenset(snap["channels"])
            self._spawn(self.state.track(call.key, snap), "tracking a call")
        self._dirty.clear()
        for chunk in _chunks(releases):
            self._spawn(self.state.release(chunk), "releasing channels")
        for key in untrack:
            self._spawn(self.state.untrack(key), "untracking a call")

    def _spawn(self, work: Awaitable[None], what: str) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(lambda done: self._done(done, what))

    def _done(self, task: asyncio.Future[None], what: str) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # a node cut off from Redis: its lease lapses and the cluster releases the rest
            log.warning("cluster: %s failed: %s", what, task.exception())

    async def drain(self) -> None:
        """Wait for what was sent to the state (before the node leaves)."""
        if self._flush_armed:
            self._flush()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- a dead node's calls ----------------------------------------------------------------

    async def node_failed(self, node: str) -> int:
        """End every call the dead ``node`` tracked; how many. Each call is ended on its
        own: one bad snapshot or one failed write does not keep the others' outcomes."""
        taken = await self.deliveries.take_over(node)
        if taken:
            log.warning("cluster: sending %d callbacks failed node %s had claimed", taken, node)
        ended = 0
        for snap in await self.state.take_calls_of(node):
            try:
                await self._end(failover.outcomes(snap, node, self.wall()))
            except Exception:
                log.exception("cluster: reporting a call of failed node %s", node)
                continue
            ended += 1
        # channels of the dead node no snapshot named: a call it had untracked when it died
        # but whose last CTI events never left it
        hangup = int(self.wall() * 1_000_000)
        for channel in self.shown_by(node):
            self.cti.publish("removed", _hung_up(channel, hangup))
        self.counters["node_failed_calls"] += ended
        if ended:
            log.warning("cluster: node %s failed; %d calls ended as node_failed", node, ended)
        return ended

    async def _end(self, failed: failover.NodeFailed) -> None:
        for delivery in failed.deliveries:
            await self.deliveries.enqueue_once(
                failed.domain, delivery.url, delivery.payload, delivery.delivery_id
            )
        if failed.records:
            await self.records.save(failed.records)
        hangup = int(self.wall() * 1_000_000)
        for channel in failed.channels:
            shown = self.cti.items.get(failed.domain, {}).get((Channel.ELEMENT, channel))
            if isinstance(shown, Channel):
                self.cti.publish("removed", _hung_up(shown, hangup))


def _hung_up(channel: Channel, at: int) -> Channel:
    return channel.with_(
        hangup_timestamp=at, last_event="CHANNEL_HANGUP", last_event_data=failover.HANGUP
    )


def _chunks(uuids: list[str]) -> list[list[str]]:
    return [uuids[i : i + MAX_UUIDS] for i in range(0, len(uuids), MAX_UUIDS)]
