"""Bindings shared by the nodes of a cluster: another node's changes, applied here.

A REGISTER reaches one node, which stores the binding and notifies the others (on
PostgreSQL, ``store.notify``). Here, for each AoR another node changed, the stored bindings
replace those in memory, so this node rings the phone, screens its INVITEs and expires it
on time as if it had taken the REGISTER.

- Nothing is told to ``on_binding`` for these: the node that took the REGISTER tells it,
  and its CTI event reaches every node through the shared CTI feed.
- Reloads wait for this node's own writes (one lock): a reload that read the rows before
  this node's commit must not overwrite what that commit then put in memory.
- AoRs notified while a reload runs are reloaded together next (one query per burst).
- After a failed reload, everything is reloaded, after a backoff, until one succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from switchboard.registrar.location import Aor, Binding, LocationService

log = logging.getLogger("switchboard.registrar")


class Listener(Protocol):
    counters: dict[str, int]

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class SharedStore(Protocol):
    """A binding store other nodes write too (``store.registrations.RegistrationStore``)."""

    def listen(
        self, on_aors: Callable[[list[Aor]], None], on_resync: Callable[[], None]
    ) -> Listener | None: ...

    async def load(self) -> list[Binding]: ...

    async def load_aors(self, aors: Iterable[Aor]) -> list[Binding]: ...

    async def delete_expired_bindings(self, now: float) -> list[Binding]: ...


class BindingSync:
    """Reloads the AoRs other nodes changed into ``location``; ``on_replaced()`` after
    each reload that changed something (the service re-arms its expiry timer)."""

    def __init__(
        self,
        location: LocationService,
        store: SharedStore,
        lock: asyncio.Lock,
        clock: Callable[[], float],
        on_replaced: Callable[[], None],
        *,
        backoff: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        self.location = location
        self.store = store
        self.lock = lock
        self.clock = clock
        self.on_replaced = on_replaced
        self.backoff = backoff
        self._aors: set[Aor] = set()
        self._everything = False
        self._task: asyncio.Task[None] | None = None
        self.counters = {
            "binding_reloads": 0,
            "binding_reload_changes": 0,
            "binding_reload_failures": 0,
        }

    def changed(self, aors: list[Aor]) -> None:
        self._aors.update(aors)
        self._wake()

    def resync(self) -> None:
        self._everything = True
        self._wake()

    @property
    def idle(self) -> bool:
        return self._task is None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _wake(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        delay, longest = self.backoff
        try:
            while self._everything or self._aors:
                everything, aors = self._everything, self._aors
                self._everything, self._aors = False, set()
                try:
                    await self._reload(everything, aors)
                    delay = self.backoff[0]
                except Exception:
                    self.counters["binding_reload_failures"] += 1
                    log.exception("reloading bindings changed by another node failed")
                    self._everything = True  # what else changed meanwhile is unknown
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, longest)
        finally:
            self._task = None

    async def _reload(self, everything: bool, aors: set[Aor]) -> None:
        async with self.lock:
            if everything:
                stored = await self.store.load()
                aors = self.location.aors() | {binding.aor for binding in stored}
            else:
                stored = await self.store.load_aors(aors)
            by_aor: dict[Aor, list[Binding]] = {aor: [] for aor in aors}
            for binding in stored:
                by_aor.setdefault(binding.aor, []).append(binding)
            now = self.clock()
            changes = sum(self.location.replace(aor, found, now) for aor, found in by_aor.items())
        self.counters["binding_reloads"] += 1
        self.counters["binding_reload_changes"] += changes
        if changes:
            log.debug("bindings: %d change(s) from other nodes over %d AoR(s)", changes, len(aors))
            self.on_replaced()
