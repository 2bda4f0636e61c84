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
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from switchboard.cluster.state import ClusterState
from switchboard.cluster.values import CallChanges
from switchboard.cti.channels import Channel
from switchboard.cti.hub import CtiHub
from switchboard.logbudget import LogBudget
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
        self._pending = CallChanges()
        self._snapshots: dict[LiveCall, frozenset[str]] = {}  # call -> channels it tracked
        self._dirty: set[LiveCall] = set()
        self._wake = asyncio.Event()
        self._sending = False
        self._sender: asyncio.Task[None] | None = None
        self._log_budget = LogBudget(per_second=1)
        self.counters = {"node_failed_calls": 0, "call_updates_failed": 0}

    # -- the engine's watcher ---------------------------------------------------------------

    def started(self, call: LiveCall) -> None:
        self._snapshots[call] = frozenset()
        self._dirty.add(call)
        self._arm()

    def channel_seen(self, call: LiveCall, channel: str) -> None:
        self._pending.claim.append(channel)
        tracked = self._snapshots.get(call)
        if tracked is not None and channel not in tracked:
            self._dirty.add(call)  # a transfer's new channel
        self._arm()

    def released(self, call: LiveCall, channels: list[str]) -> None:
        self._pending.release.extend(channels)
        if self._snapshots.pop(call, None) is not None:
            self._dirty.discard(call)
            self._pending.track.pop(call.key, None)
            self._pending.untrack.append(call.key)
        self._arm()

    def gave_back(self, domain: str, channels: int, pstn: int) -> None:
        """The engine gave a call's channels back: to the cluster's counters too."""
        self._pending.give_back.append((domain, channels, pstn))
        self._arm()

    def _arm(self) -> None:
        """One sender sends what changed, in order, a batch at a time: what happens while
        a batch is on its way goes in the next (under load, one round trip carries many
        calls' changes; measured: a task per change opened hundreds of Redis commands at
        once)."""
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_all())
        self._wake.set()

    def _take_pending(self) -> CallChanges:
        for call in self._dirty:
            machine = call.machine.call
            snap = failover.snapshot(call.key, machine, call.callback_url, call.events_url)
            self._snapshots[call] = frozenset(snap["channels"])
            self._pending.track[call.key] = snap
        self._dirty.clear()
        changes, self._pending = self._pending, CallChanges()
        return changes

    async def _send_all(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # this loop iteration's other changes join the batch
            changes = self._take_pending()
            if not changes:
                continue
            self._sending = True
            try:
                await self.state.update_calls(changes)
            except Exception as exc:
                # cut off from Redis: the lease lapses and the cluster releases the rest
                self.counters["call_updates_failed"] += 1
                left_out = self._log_budget.take(time.monotonic())
                if left_out is not None:
                    more = f" ({left_out} more not logged)" if left_out else ""
                    log.warning("cluster: recording the calls failed: %s%s", exc, more)
            finally:
                self._sending = False

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until what changed reached the state (before the node leaves), then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._sender is not None and (self._sending or self._wake.is_set()):
                    await asyncio.sleep(0.01)
                if self._sender is not None and (self._pending or self._dirty):
                    await self.state.update_calls(self._take_pending())
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None

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
