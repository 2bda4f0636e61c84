"""``RedisState``: the state the nodes of a cluster share, in one Redis
(docs/cluster-state.md has the keys, their lifetimes and what happens when a node or Redis
fails).

Rules:
- A check and the write it allows run in one Lua script (``redis_scripts``), so two nodes
  cannot both take the last channel; time is Redis's clock.
- A node holds reservations and uuid claims under its lease: ``join()``, then
  ``heartbeat()`` well within ``lease`` seconds (a third of it). Any node's
  ``reap_dead_nodes()`` releases a lapsed node's holdings and names it, once.
- Everything is bounded: streams by MAXLEN, idempotency keys and throttles by expiry,
  reservations and claims by the live calls and the leases.
- Every call has a deadline: an unreachable Redis is a StateUnavailableError, not a hang.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from switchboard.cluster import redis_scripts
from switchboard.cluster.errors import LeaseLostError
from switchboard.cluster.redis_commands import Mailbox
from switchboard.cluster.redis_events import BLOCK_SECONDS, RedisFeed, last_number, read_range
from switchboard.cluster.redis_keys import Keys
from switchboard.cluster.redis_link import RedisLink, client_for
from switchboard.cluster.state import EventFeed, SharedThrottle
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
from switchboard.throttle import ThrottleSettings

REAP_AT_ONCE = 100  # nodes per reap: a script runs alone, so each does bounded work


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisState:
    def __init__(
        self,
        client: aioredis.Redis,
        node: str,
        *,
        prefix: str = "switchboard",
        lease: float = 15.0,
        timeout: float = 2.0,
        history: int = 2000,
        feed_history: int = 10_000,
        block: float = BLOCK_SECONDS,
    ) -> None:
        """``lease``: seconds a node stays alive without a heartbeat; ``timeout``: the
        deadline of each call to Redis; ``history``: events kept per domain for
        ``since``; ``feed_history``: events of all domains kept for the nodes' feeds."""
        self._node = check_node(node)
        self._link = RedisLink(client, timeout)
        self._keys = Keys(prefix)
        self._lease_ms = _ms(lease)
        self._history = history
        self._feed_history = feed_history
        self._block = block
        script = client.register_script
        self._join, self._heartbeat = script(redis_scripts.JOIN), script(redis_scripts.HEARTBEAT)
        self._reap, self._leave = script(redis_scripts.REAP), script(redis_scripts.LEAVE)
        self._take, self._give_back = script(redis_scripts.TAKE), script(redis_scripts.GIVE_BACK)
        self._claim, self._owner = script(redis_scripts.CLAIM), script(redis_scripts.OWNER)
        self._release, self._publish = script(redis_scripts.RELEASE), script(redis_scripts.PUBLISH)
        self._take_calls = script(redis_scripts.TAKE_CALLS)
        self._publish_many = script(redis_scripts.PUBLISH_MANY)
        self._mailbox = Mailbox(self._link, self._keys, node)
        self._throttles: dict[str, RedisThrottle] = {}

    @classmethod
    async def connect(
        cls,
        url: str,
        node: str,
        *,
        prefix: str = "switchboard",
        lease: float = 15.0,
        timeout: float = 2.0,
        history: int = 2000,
        feed_history: int = 10_000,
        block: float = BLOCK_SECONDS,
    ) -> RedisState:
        """A started state on the Redis at ``url``; StateUnavailableError when it cannot
        be reached within ``timeout`` s."""
        client = client_for(url, timeout=timeout, block=block)
        state = cls(
            client,
            node,
            prefix=prefix,
            lease=lease,
            timeout=timeout,
            history=history,
            feed_history=feed_history,
            block=block,
        )
        try:
            await state.start()
        except BaseException:
            await client.aclose()
            raise
        return state

    async def start(self) -> None:
        await self._link("PING", self._link.client.ping())
        await self._mailbox.start()

    async def aclose(self) -> None:
        await self._mailbox.aclose()
        await self._link.client.aclose()

    @property
    def node(self) -> str:
        return self._node

    # -- leases ----------------------------------------------------------------------------

    async def join(self) -> bool:
        args: list[str | int] = [self._keys.prefix, self._node, self._lease_ms]
        return bool(await self._link("join", self._join(keys=[self._keys.nodes], args=args)))

    async def heartbeat(self) -> None:
        args: list[str | int] = [self._node, self._lease_ms]
        renewed = await self._link("heartbeat", self._heartbeat(keys=[self._keys.nodes], args=args))
        if not renewed:
            raise self._lease_lost()

    async def reap_dead_nodes(self) -> list[str]:
        args: list[str | int] = [self._keys.prefix, REAP_AT_ONCE]
        dead = await self._link("reap", self._reap(keys=[self._keys.nodes], args=args))
        return [str(node) for node in dead]

    async def leave(self) -> None:
        args: list[str | int] = [self._keys.prefix, self._node]
        await self._link("leave", self._leave(keys=[self._keys.nodes], args=args))

    def _lease_lost(self) -> LeaseLostError:
        return LeaseLostError(
            f"node {self._node} holds no lease (it lapsed, or join() was not called):"
            " the cluster released what it held"
        )

    # -- reservations ----------------------------------------------------------------------

    async def try_take(
        self, domain: str, channels: int, pstn: int, limits: ChannelLimits
    ) -> TakeResult:
        check_counts(channels, pstn)
        keys = [self._keys.nodes, self._keys.usage(check_name("domain", domain))]
        keys.append(self._keys.node_domains(self._node))
        args: list[str | int] = [self._node, channels, pstn, limits.channels, limits.pstn]
        status, used, legs = await self._link("take", self._take(keys=keys, args=args))
        if status == -1:
            raise self._lease_lost()
        return TakeResult(status == 1, Usage(int(used), int(legs)))

    async def give_back(self, domain: str, channels: int, pstn: int) -> None:
        check_counts(channels, pstn)
        keys = [self._keys.usage(check_name("domain", domain))]
        keys.append(self._keys.node_domains(self._node))
        await self._link("give back", self._give_back(keys=keys, args=[self._node, channels, pstn]))

    async def usage(self, domain: str) -> Usage:
        key = self._keys.usage(check_name("domain", domain))
        fields = await self._link("usage", self._link.client.hgetall(key))
        channels = sum(int(v) for f, v in fields.items() if str(f).startswith("c:"))
        pstn = sum(int(v) for f, v in fields.items() if str(f).startswith("p:"))
        return Usage(channels, pstn)

    # -- idempotency keys ------------------------------------------------------------------

    async def recall(self, domain: str, key: str) -> JsonObject | None:
        name = self._keys.idempotency(check_name("domain", domain), check_name("key", key))
        text = await self._link("an idempotency key", self._link.client.get(name))
        return None if text is None else decode(str(text))

    async def remember(
        self, domain: str, key: str, response: JsonObject, ttl: float = IDEMPOTENCY_SECONDS
    ) -> JsonObject | None:
        name = self._keys.idempotency(check_name("domain", domain), check_name("key", key))
        text = encode("response", response)
        first = self._link.client.set(name, text, nx=True, get=True, px=_ms(check_ttl(ttl)))
        existing = await self._link("an idempotency key", first)
        return None if existing is None else decode(str(existing))

    # -- uuid owners -----------------------------------------------------------------------

    async def claim(self, uuids: Collection[str]) -> None:
        checked = check_uuids(uuids)
        if not checked:
            return
        keys = [self._keys.nodes, self._keys.owners, self._keys.node_uuids(self._node)]
        if not await self._link("claim", self._claim(keys=keys, args=[self._node, *checked])):
            raise self._lease_lost()

    async def owner(self, uuid: str) -> str | None:
        args: list[str | int] = [check_name("uuid", uuid)]
        keys = [self._keys.nodes, self._keys.owners]
        found = await self._link("owner", self._owner(keys=keys, args=args))
        return None if found is None else str(found)

    async def release(self, uuids: Collection[str]) -> None:
        checked = check_uuids(uuids)
        if checked:
            keys = [self._keys.owners, self._keys.node_uuids(self._node)]
            await self._link("release", self._release(keys=keys, args=[self._node, *checked]))

    # -- the node's live calls, for whoever reaps it -----------------------------------------

    async def update_calls(self, changes: CallChanges) -> None:
        """``claim``, ``track``, ``give_back``, ``release`` and ``untrack`` in one round
        trip (a pipeline; each step is its own script, as when sent alone)."""
        claims = [check_uuids(chunk) for chunk in _chunks(changes.claim)]
        releases = [check_uuids(chunk) for chunk in _chunks(changes.release)]
        tracks: dict[FieldT, EncodableT] = {
            check_name("call", k): encode("snapshot", v) for k, v in changes.track.items()
        }
        untracks = [check_name("call", key) for key in changes.untrack]
        for domain, channels, pstn in changes.give_back:
            check_name("domain", domain)
            check_counts(channels, pstn)
        if not changes:
            return
        keys, node = self._keys, self._node
        pipe = self._link.client.pipeline(transaction=False)  # awaiting a step only queues it
        for chunk in claims:
            claim_keys = [keys.nodes, keys.owners, keys.node_uuids(node)]
            await self._claim(keys=claim_keys, args=[node, *chunk], client=pipe)
        if tracks:
            pipe.hset(keys.node_calls(node), mapping=tracks)
        for domain, channels, pstn in changes.give_back:
            back_keys = [keys.usage(domain), keys.node_domains(node)]
            await self._give_back(keys=back_keys, args=[node, channels, pstn], client=pipe)
        for chunk in releases:
            release_keys = [keys.owners, keys.node_uuids(node)]
            await self._release(keys=release_keys, args=[node, *chunk], client=pipe)
        if untracks:
            pipe.hdel(keys.node_calls(node), *untracks)
        results = await self._link("update calls", pipe.execute())
        if any(not claimed for claimed in results[: len(claims)]):
            raise self._lease_lost()

    async def track(self, key: str, snapshot: JsonObject) -> None:
        name, field = self._keys.node_calls(self._node), check_name("call", key)
        text = encode("snapshot", snapshot)
        await self._link("track a call", self._link.client.hset(name, field, text))

    async def untrack(self, key: str) -> None:
        name, field = self._keys.node_calls(self._node), check_name("call", key)
        await self._link("untrack a call", self._link.client.hdel(name, field))

    async def take_calls_of(self, node: str) -> list[JsonObject]:
        keys = [self._keys.node_calls(check_node(node))]
        snapshots = await self._link("take a node's calls", self._take_calls(keys=keys))
        return [decode(str(text)) for text in snapshots]

    # -- commands --------------------------------------------------------------------------

    def serve_commands(self, handler: CommandHandler | None) -> None:
        self._mailbox.handler = handler

    async def send(
        self, node: str, command: JsonObject, *, timeout: float = COMMAND_TIMEOUT
    ) -> JsonObject:
        return await self._mailbox.send(node, command, timeout)

    # -- CTI events ------------------------------------------------------------------------

    async def publish(self, domain: str, event: JsonObject) -> int:
        keys = [self._keys.events(check_name("domain", domain)), self._keys.all_events]
        args: list[str | int] = [self._history, self._feed_history, domain, encode("event", event)]
        return int(await self._link("publish", self._publish(keys=keys, args=args)))

    async def publish_many(self, events: Sequence[tuple[str, JsonObject]]) -> list[int]:
        if len(events) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} events at once")
        keys = [self._keys.all_events]
        args: list[str | int] = [self._history, self._feed_history]
        for domain, event in events:
            keys.append(self._keys.events(check_name("domain", domain)))
            args += [domain, encode("event", event)]
        if not events:
            return []
        seqs = await self._link("publish", self._publish_many(keys=keys, args=args))
        return [int(seq) for seq in seqs]

    async def subscribe(self, domains: Collection[str] | None = None) -> EventFeed:
        wanted = None if domains is None else frozenset(check_name("domain", d) for d in domains)
        after = await last_number(self._link, self._keys.all_events)
        return RedisFeed(self._link, self._keys.all_events, wanted, after, block=self._block)

    async def since(self, domain: str, seq: int) -> list[CtiEvent] | None:
        if seq < 0:
            raise ValueError("seq counts from 0")
        key = self._keys.events(check_name("domain", domain))
        kept = await read_range(self._link, "history", "XRANGE", key, f"(0-{seq}", "+")
        if kept and kept[0][0] > seq + 1:
            return None  # trimmed: the history no longer reaches back there
        return [CtiEvent(domain, number, decode(fields["e"])) for number, fields in kept]

    # -- throttles -------------------------------------------------------------------------

    def throttle(self, name: str, settings: ThrottleSettings) -> SharedThrottle:
        throttle = self._throttles.setdefault(
            name, RedisThrottle(self._link, self._keys, check_name("throttle", name), settings)
        )
        if throttle.settings != settings:
            raise ValueError(f"throttle {name!r} exists with other settings")
        return throttle


class RedisThrottle:
    """``throttle.FailureThrottle`` across nodes: a source's failures in a sorted set that
    expires with the window, blocked sources in one sorted set by the end of their block."""

    def __init__(self, link: RedisLink, keys: Keys, name: str, settings: ThrottleSettings) -> None:
        self._link = link
        self._keys = keys
        self._name = name
        self._settings = settings
        script = link.client.register_script
        self._record = script(redis_scripts.RECORD_FAILURE)
        self._blocked_for = script(redis_scripts.BLOCKED_FOR)
        self._blocked_sources = script(redis_scripts.BLOCKED_SOURCES)

    @property
    def settings(self) -> ThrottleSettings:
        return self._settings

    async def blocked_for(self, source: str) -> float:
        keys, args = [self._keys.blocked(self._name)], [check_name("source", source)]
        left = await self._link("a throttle", self._blocked_for(keys=keys, args=args))
        return int(left) / 1000

    async def record_failure(self, source: str) -> bool:
        settings = self._settings
        keys = [self._keys.failures(self._name, check_name("source", source))]
        keys.append(self._keys.blocked(self._name))
        args: list[str | int] = [
            source,
            _ms(settings.window),
            settings.max_failures,
            _ms(settings.block_seconds),
            secrets.token_hex(8),  # failures at the same millisecond are each counted
        ]
        return bool(await self._link("a throttle", self._record(keys=keys, args=args)))

    async def blocked_sources(self) -> int:
        keys = [self._keys.blocked(self._name)]
        return int(await self._link("a throttle", self._blocked_sources(keys=keys, args=[])))


def _chunks(uuids: list[str]) -> list[list[str]]:
    return [uuids[i : i + MAX_UUIDS] for i in range(0, len(uuids), MAX_UUIDS)]
