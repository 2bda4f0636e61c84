"""Binding changes told between the nodes sharing one PostgreSQL database (LISTEN/NOTIFY).

- A node that stores binding changes sends ``NOTIFY switchboard_bindings`` in the same
  transaction: PostgreSQL delivers a notification only once its transaction commits, so a
  node that hears of an AoR reads rows that are already there.
- The payload names the sender (a random id per store, so a node skips its own) and the
  AoRs changed, never the bindings: the listener reloads the AoRs' rows. If an AoR changes
  again before that reload, the reload reads the newer rows, and the newer notification
  reloads them once more: every node converges on what is stored.
- A payload stays under PostgreSQL's limit (8000 bytes): the AoRs are split over several
  notifications; an AoR too long to fit alone asks every node to reload everything.
- Each node listens on a connection of its own, not one of the pool's (a pooled connection
  serves other work between uses, and its LISTEN would go with it). When that connection
  drops, or does not answer the periodic check, the listener connects again with backoff,
  then asks for a reload of everything: what changed while it was deaf was told to nobody.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard.registrar.location import Aor

log = logging.getLogger("switchboard.store.notify")

CHANNEL = "switchboard_bindings"
MAX_PAYLOAD = 7900  # PostgreSQL refuses 8000 bytes or more; ASCII JSON: bytes == characters

Connect = Callable[[], Awaitable[Any]]  # opens an asyncpg connection


def payloads(origin: str, aors: Iterable[Aor]) -> list[str]:
    """The notifications telling that ``aors`` changed, each under ``MAX_PAYLOAD``."""
    unique = sorted(set(aors))
    everything = json.dumps({"o": origin, "all": True})
    found: list[str] = []
    chunk: list[Aor] = []
    for aor in unique:
        if len(_payload(origin, [aor])) > MAX_PAYLOAD:
            return [everything]
        if len(_payload(origin, [*chunk, aor])) > MAX_PAYLOAD:
            found.append(_payload(origin, chunk))
            chunk = []
        chunk.append(aor)
    if chunk:
        found.append(_payload(origin, chunk))
    return found


def _payload(origin: str, aors: list[Aor]) -> str:
    return json.dumps({"o": origin, "a": [list(aor) for aor in aors]}, separators=(",", ":"))


def parse(payload: str) -> tuple[str, list[Aor] | None]:
    """(sender, AoRs changed), AoRs None when everything should be reloaded.
    Raises ``ValueError`` for a payload that is not ours."""
    data = json.loads(payload)
    if not isinstance(data, dict) or not isinstance(data.get("o"), str):
        raise ValueError("not a binding notification")
    if data.get("all") is True:
        return data["o"], None
    aors = data.get("a")
    if not isinstance(aors, list) or not all(_is_aor(item) for item in aors):
        raise ValueError("not a binding notification")
    return data["o"], [(domain, user) for domain, user in aors]


def _is_aor(item: object) -> bool:
    return isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)


def connector(engine: AsyncEngine, timeout: float = 5.0) -> Connect:
    """Opens asyncpg connections to the engine's database, with the engine's settings."""
    _, params = engine.dialect.create_connect_args(engine.url)

    async def connect() -> Any:
        return await asyncpg.connect(**params, timeout=timeout)

    return connect


class BindingListener:
    """Hears other nodes' binding changes: ``on_aors(aors)`` for AoRs changed,
    ``on_resync()`` when everything should be reloaded (after being deaf)."""

    def __init__(
        self,
        connect: Connect,
        origin: str,
        on_aors: Callable[[list[Aor]], None],
        on_resync: Callable[[], None],
        *,
        check_every: float = 10.0,
        check_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        self._connect = connect
        self.origin = origin
        self._on_aors = on_aors
        self._on_resync = on_resync
        self.check_every = check_every
        self.check_timeout = check_timeout
        self.backoff = backoff  # first delay before connecting again, and the longest
        self._connection: Any = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.counters = {"binding_notifications": 0, "binding_listener_lost": 0}

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._lost.is_set()

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend listening (for operators, and tests that cut it)."""
        return int(self._connection.get_server_pid()) if self.connected else None

    async def start(self) -> None:
        """Listen now (raises if the database cannot be reached), then keep listening.
        Start before loading the bindings, so no change falls between the two."""
        await self._listen()
        self._task = asyncio.get_running_loop().create_task(self._keep_listening())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drop()

    async def _listen(self) -> None:
        connection = await self._connect()
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(CHANNEL, self._notified)
        except BaseException:
            connection.terminate()
            raise
        self._connection, self._lost = connection, lost

    async def _keep_listening(self) -> None:
        while True:
            await self._until_lost()
            self.counters["binding_listener_lost"] += 1
            log.warning("binding notifications: connection lost; reconnecting")
            await self._drop()
            await self._reconnect()
            log.warning("binding notifications: listening again; reloading every binding")
            self._on_resync()

    async def _until_lost(self) -> None:
        """Returns when the connection closed, or failed its periodic check (a silent
        network drops no connection by itself)."""
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), self.check_every)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.wait_for(self._connection.fetchval("SELECT 1"), self.check_timeout)
            except Exception:  # any failure: the connection is not to be trusted
                return

    async def _reconnect(self) -> None:
        delay, longest = self.backoff
        while True:
            await asyncio.sleep(delay)
            try:
                await self._listen()
                return
            except Exception as error:  # OSError, asyncpg's errors, timeouts
                log.debug("binding notifications: connecting failed: %s", error)
            delay = min(delay * 2, longest)

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._lost.set()
            connection.terminate()  # no goodbye: it may be dead already

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            origin, aors = parse(payload)
        except ValueError:
            log.warning("binding notifications: unreadable payload %.100r", payload)
            self._on_resync()
            return
        if origin == self.origin:
            return  # this node applied its own changes when it stored them
        self.counters["binding_notifications"] += 1
        if aors is None:
            self._on_resync()
        else:
            self._on_aors(aors)
