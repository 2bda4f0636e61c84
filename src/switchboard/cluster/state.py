"""The state the nodes of a cluster share, as interfaces, and ``LocalState``: the same
interfaces for a node alone, in this process (docs/cluster-state.md).

Rules (issue 16, DESIGN §7):
- One node with no Redis keeps today's behaviour: the same counters, checks and bounds as
  the engine's channel counters, ``CtiHub``'s seq and history, the API's idempotency cache
  and ``throttle.FailureThrottle``. ``RedisState`` gives the same answers across nodes.
- Everything a node holds (channel reservations, uuid claims) is held under its lease:
  ``join()`` starts it, ``heartbeat()`` renews it, and a node whose lease lapsed is dead to
  the cluster: what it held is released and it must join again.
- Every method is a coroutine, so callers need not know which state they talk to. Bodies
  (events, responses, commands) are JSON objects of at most ``MAX_BODY_BYTES``; names
  (domains, keys, uuids, sources, nodes) at most ``MAX_NAME_LENGTH`` characters.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from typing import Protocol

from switchboard.cluster.errors import (
    CommandFailedError,
    CommandTimeoutError,
    LeaseLostError,
    UndeliverableError,
)
from switchboard.cluster.local_events import LocalEventLog
from switchboard.cluster.values import (
    COMMAND_TIMEOUT,
    IDEMPOTENCY_SECONDS,
    MAX_BATCH,
    MAX_UUIDS,
    CallChanges,
    ChannelLimits,
    CommandHandler,
    CtiEvent,
    JsonObject,
    TakeResult,
    Usage,
    check_counts,
    check_name,
    check_node,
    check_ttl,
    check_uuids,
    decode,
    encode,
)
from switchboard.throttle import FailureThrottle, ThrottleSettings

__all__ = [
    "COMMAND_TIMEOUT",
    "IDEMPOTENCY_SECONDS",
    "CallOwners",
    "ChannelLimits",
    "ClusterState",
    "CommandHandler",
    "Commands",
    "CtiEvent",
    "EventFeed",
    "EventLog",
    "IdempotencyKeys",
    "JsonObject",
    "Leases",
    "LocalState",
    "Reservations",
    "SharedThrottle",
    "TakeResult",
    "Throttles",
    "Usage",
]

# -- the interfaces -----------------------------------------------------------------------


class Leases(Protocol):
    @property
    def node(self) -> str: ...

    async def join(self) -> bool:
        """Start this node's lease, first releasing what an earlier life of the same node
        held; True when such a life was still registered (its holdings are released now:
        its calls are over)."""

    async def heartbeat(self) -> None:
        """Renew the lease; LeaseLostError when it lapsed (it is not renewed then)."""

    async def reap_dead_nodes(self) -> list[str]:
        """Release what nodes whose lease lapsed held; their names, each told once."""
        ...

    async def leave(self) -> None:
        """Release everything this node holds and end its lease."""


class Reservations(Protocol):
    async def try_take(
        self, domain: str, channels: int, pstn: int, limits: ChannelLimits
    ) -> TakeResult:
        """Reserve ``channels`` and ``pstn`` legs unless that passes a limit (each is checked
        only when asked for); LeaseLostError without a lease."""
        ...

    async def give_back(self, domain: str, channels: int, pstn: int) -> None: ...

    async def usage(self, domain: str) -> Usage: ...


class IdempotencyKeys(Protocol):
    async def recall(self, domain: str, key: str) -> JsonObject | None: ...

    async def remember(
        self, domain: str, key: str, response: JsonObject, ttl: float = IDEMPOTENCY_SECONDS
    ) -> JsonObject | None:
        """Keep ``response`` for ``ttl`` s unless one is kept already: the kept one then, or
        None (the first writer wins)."""
        ...


class CallOwners(Protocol):
    async def claim(self, uuids: Collection[str]) -> None:
        """This node holds these uuids' call; LeaseLostError without a lease."""

    async def owner(self, uuid: str) -> str | None:
        """The live node holding the uuid's call, or None."""
        ...

    async def release(self, uuids: Collection[str]) -> None: ...


class LiveCalls(Protocol):
    async def track(self, key: str, snapshot: JsonObject) -> None:
        """Keep a snapshot of this node's live call ``key`` (``pbx/failover.py``), so the
        node that reaps this one can report the call."""

    async def untrack(self, key: str) -> None: ...

    async def take_calls_of(self, node: str) -> list[JsonObject]:
        """``node``'s tracked calls, removed: of nodes asking at once, one gets them."""

    async def update_calls(self, changes: CallChanges) -> None:
        """``claim``, ``track``, ``give_back``, ``release``, ``untrack`` of ``changes``,
        in that order, at once (one round trip); LeaseLostError when the claim is refused
        (the rest is applied)."""


class Commands(Protocol):
    def serve_commands(self, handler: CommandHandler | None) -> None:
        """Answer the commands sent to this node with ``handler`` (None: refuse them)."""

    async def send(
        self, node: str, command: JsonObject, *, timeout: float = COMMAND_TIMEOUT
    ) -> JsonObject:
        """``node``'s handler's answer to ``command``, or a CommandError."""
        ...


class EventFeed(Protocol):
    """Every event of the domains asked for, from the moment of subscribing, in each
    domain's seq order. Raises EventsLostError when it fell behind what is kept."""

    def __aiter__(self) -> AsyncIterator[CtiEvent]: ...

    async def __anext__(self) -> CtiEvent: ...

    async def aclose(self) -> None: ...


class EventLog(Protocol):
    async def publish(self, domain: str, event: JsonObject) -> int:
        """The event's seq: one increasing sequence per domain."""
        ...

    async def publish_many(self, events: Sequence[tuple[str, JsonObject]]) -> list[int]:
        """``publish`` for each (domain, event), in order, at once (at most
        ``MAX_BATCH``): their seqs."""
        ...

    async def subscribe(self, domains: Collection[str] | None = None) -> EventFeed:
        """A feed of the domains' events (None: every domain)."""
        ...

    async def since(self, domain: str, seq: int) -> list[CtiEvent] | None:
        """The events after ``seq``, or None when the kept history no longer reaches back
        there (``CtiHub.missed``)."""
        ...


class SharedThrottle(Protocol):
    """``throttle.FailureThrottle``, its clock the state's."""

    @property
    def settings(self) -> ThrottleSettings: ...

    async def blocked_for(self, source: str) -> float:
        """Seconds left of the source's block, 0 when it is not blocked."""
        ...

    async def record_failure(self, source: str) -> bool:
        """Count a failure; True when this failure starts a block."""
        ...

    async def blocked_sources(self) -> int: ...


class Throttles(Protocol):
    def throttle(self, name: str, settings: ThrottleSettings) -> SharedThrottle:
        """The throttle of that name (``api``, ``sip``…), the same one on every node."""
        ...


class ClusterState(
    Leases,
    Reservations,
    IdempotencyKeys,
    CallOwners,
    LiveCalls,
    Commands,
    EventLog,
    Throttles,
    Protocol,
):
    async def aclose(self) -> None: ...


# -- a node alone -------------------------------------------------------------------------


class LocalState:
    """The shared state of a node alone: in this process, lost on restart as today.
    Bodies are kept as JSON text, so nobody shares a mutable dict with the store."""

    def __init__(
        self,
        node: str = "node-1",
        *,
        history: int = 2000,
        feed_size: int = 10_000,
        idempotency_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._node = check_node(node)
        self._clock = clock
        self._joined = False
        self._channels: dict[str, int] = {}
        self._pstn: dict[str, int] = {}
        self._owned: set[str] = set()
        self._calls: dict[str, str] = {}
        self._idempotency: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._idempotency_size = idempotency_size
        self._events = LocalEventLog(history=history, feed_size=feed_size)
        self._handler: CommandHandler | None = None
        self._throttles: dict[str, LocalThrottle] = {}

    @property
    def node(self) -> str:
        return self._node

    # -- leases: a node alone is never declared dead ---------------------------------------

    async def join(self) -> bool:
        self._release_all()
        self._joined = True
        return False

    async def heartbeat(self) -> None:
        self._check_joined()

    async def reap_dead_nodes(self) -> list[str]:
        return []

    async def leave(self) -> None:
        self._release_all()
        self._joined = False

    def _check_joined(self) -> None:
        if not self._joined:
            raise LeaseLostError(f"node {self._node} holds no lease: join() first")

    def _release_all(self) -> None:
        self._channels.clear()
        self._pstn.clear()
        self._owned.clear()

    # -- reservations (the engine's _take and _give_back) ----------------------------------

    async def try_take(
        self, domain: str, channels: int, pstn: int, limits: ChannelLimits
    ) -> TakeResult:
        check_name("domain", domain)
        check_counts(channels, pstn)
        self._check_joined()
        before = await self.usage(domain)
        if (channels and before.channels + channels > limits.channels) or (
            pstn and before.pstn + pstn > limits.pstn
        ):
            return TakeResult(False, before)
        self._channels[domain] = before.channels + channels
        self._pstn[domain] = before.pstn + pstn
        return TakeResult(True, before)

    async def give_back(self, domain: str, channels: int, pstn: int) -> None:
        check_name("domain", domain)
        check_counts(channels, pstn)
        self._channels[domain] = max(0, self._channels.get(domain, 0) - channels)
        self._pstn[domain] = max(0, self._pstn.get(domain, 0) - pstn)

    async def usage(self, domain: str) -> Usage:
        check_name("domain", domain)
        return Usage(self._channels.get(domain, 0), self._pstn.get(domain, 0))

    # -- idempotency keys: bounded, oldest dropped first -----------------------------------

    async def recall(self, domain: str, key: str) -> JsonObject | None:
        entry = self._idempotency.get((check_name("domain", domain), check_name("key", key)))
        if entry is None or self._clock() >= entry[0]:
            return None
        return decode(entry[1])

    async def remember(
        self, domain: str, key: str, response: JsonObject, ttl: float = IDEMPOTENCY_SECONDS
    ) -> JsonObject | None:
        text = encode("response", response)
        check_ttl(ttl)
        existing = await self.recall(domain, key)
        if existing is not None:
            return existing
        entries = self._idempotency
        entries[(domain, key)] = (self._clock() + ttl, text)
        entries.move_to_end((domain, key))
        while len(entries) > self._idempotency_size:
            entries.popitem(last=False)
        return None

    # -- uuid owners -----------------------------------------------------------------------

    async def claim(self, uuids: Collection[str]) -> None:
        checked = check_uuids(uuids)
        self._check_joined()
        self._owned.update(checked)

    async def owner(self, uuid: str) -> str | None:
        return self._node if check_name("uuid", uuid) in self._owned else None

    async def release(self, uuids: Collection[str]) -> None:
        self._owned.difference_update(check_uuids(uuids))

    # -- live calls: a node alone is never reaped, only restarted (and then lost) -----------

    async def track(self, key: str, snapshot: JsonObject) -> None:
        self._calls[check_name("call", key)] = encode("snapshot", snapshot)

    async def untrack(self, key: str) -> None:
        self._calls.pop(check_name("call", key), None)

    async def take_calls_of(self, node: str) -> list[JsonObject]:
        if check_node(node) != self._node:
            return []
        calls, self._calls = self._calls, {}
        return [decode(text) for text in calls.values()]

    async def update_calls(self, changes: CallChanges) -> None:
        for chunk in range(0, len(changes.claim), MAX_UUIDS):
            check_uuids(changes.claim[chunk : chunk + MAX_UUIDS])
        tracks = {check_name("call", k): encode("snapshot", v) for k, v in changes.track.items()}
        for domain, channels, pstn in changes.give_back:
            check_name("domain", domain)
            check_counts(channels, pstn)
        for key in changes.untrack:
            check_name("call", key)
        if changes.claim:
            self._check_joined()
            self._owned.update(changes.claim)
        self._calls.update(tracks)
        for domain, channels, pstn in changes.give_back:
            await self.give_back(domain, channels, pstn)
        self._owned.difference_update(changes.release)
        for key in changes.untrack:
            self._calls.pop(key, None)

    # -- commands: only to this node itself ------------------------------------------------

    def serve_commands(self, handler: CommandHandler | None) -> None:
        self._handler = handler

    async def send(
        self, node: str, command: JsonObject, *, timeout: float = COMMAND_TIMEOUT
    ) -> JsonObject:
        check_node(node)
        body = decode(encode("command", command))  # as a remote node would receive it
        handler = self._handler
        if node != self._node or not self._joined or handler is None:
            raise UndeliverableError(f"no live node {node!r} takes commands")
        try:
            async with asyncio.timeout(timeout):
                answer = await handler(body)
        except TimeoutError:
            raise CommandTimeoutError(f"node {node} did not answer in {timeout:g} s") from None
        except Exception as exc:  # the handler's failure is the sender's to report
            raise CommandFailedError(f"node {node}: {exc!s:.500}") from exc
        return decode(encode("answer", answer))

    # -- CTI events ------------------------------------------------------------------------

    async def publish(self, domain: str, event: JsonObject) -> int:
        return self._events.publish(check_name("domain", domain), encode("event", event))

    async def publish_many(self, events: Sequence[tuple[str, JsonObject]]) -> list[int]:
        if len(events) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} events at once")
        texts = [(check_name("domain", d), encode("event", e)) for d, e in events]
        return [self._events.publish(domain, text) for domain, text in texts]

    async def subscribe(self, domains: Collection[str] | None = None) -> EventFeed:
        return self._events.subscribe(None if domains is None else _domains(domains))

    async def since(self, domain: str, seq: int) -> list[CtiEvent] | None:
        if seq < 0:
            raise ValueError("seq counts from 0")
        return self._events.since(check_name("domain", domain), seq)

    # -- throttles -------------------------------------------------------------------------

    def throttle(self, name: str, settings: ThrottleSettings) -> SharedThrottle:
        throttle = self._throttles.setdefault(name, LocalThrottle(settings, self._clock))
        if throttle.settings != settings:
            raise ValueError(f"throttle {name!r} exists with other settings")
        return throttle

    async def aclose(self) -> None:
        self._events.close()


def _domains(domains: Iterable[str]) -> frozenset[str]:
    return frozenset(check_name("domain", domain) for domain in domains)


class LocalThrottle:
    def __init__(self, settings: ThrottleSettings, clock: Callable[[], float]) -> None:
        self._throttle = FailureThrottle(settings)
        self._clock = clock

    @property
    def settings(self) -> ThrottleSettings:
        return self._throttle.settings

    async def blocked_for(self, source: str) -> float:
        now = self._clock()
        if not self._throttle.is_blocked(source, now):  # also forgets an ended block
            return 0.0
        return self._throttle.blocked_for(source, now)

    async def record_failure(self, source: str) -> bool:
        return self._throttle.record_failure(check_name("source", source), self._clock())

    async def blocked_sources(self) -> int:
        return self._throttle.blocked_sources(self._clock())
