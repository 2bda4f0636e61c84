"""The registrar service: the edge around the pure registrar.

- REGISTERs arrive from the user agent; each decision is stored before it is answered, so
  a 200 always means "this binding survives a restart". A storage failure answers 500.
  Decisions that arrive while a write is in flight are written together in the next
  transaction (group commit): one commit per burst instead of one per REGISTER.
- On start, bindings are loaded from the database; expired ones are deleted, not loaded.
- One timer, armed at the earliest expiry, removes bindings on time (memory and database).
- ``terminals(domain, user)`` is what the PBX rings: live bindings, highest q first, each
  at the address its REGISTER came from, then the static contacts of the config file
  (permanent terminals, at their own address); ``contacts`` lists their URIs.
- ``registered_from(host)`` says in O(1) whether a phone registered from that address:
  every INVITE is screened with it (a phone, a trunk, or a stranger).
- A Contact host that is a name is resolved before the binding is stored (after
  authentication, so strangers cannot make us query DNS); a name that does not resolve
  within ``RESOLVE_TIMEOUT``, or resolves to a trunk, is refused.
- ``on_binding(change, binding)`` hears of every binding ``added``, ``updated`` (a refresh
  that changed its contact, source, q or User-Agent; a bare refresh is not a change) and
  ``removed`` (unregistered or expired), after the change is stored: CTI's ``terminal``.
- Shared bindings (a store other nodes write too: PostgreSQL, ``registrar/shared.py``):
  ``start`` listens to the other nodes' changes before loading, and applies them as they
  come, without telling ``on_binding``. Every node expires every binding on time; the
  node whose DELETE removed the row tells ``removed``, so an expiry is told once in the
  cluster, even when the node that took the REGISTER is gone.
- Shared throttles (a cluster, ``share_throttles``): the registrar's two digest failure
  throttles (per source, per user and source; an INVITE's digest counts in them too) also
  count in the cluster state's, and a source blocked there is blocked here at its next
  failure (``throttle.ThrottleSharing``). The decisions stay the pure registrar's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from switchboard.config import Config
from switchboard.directory import Directory
from switchboard.quick_init import quick_init
from switchboard.registrar.location import Binding, LocationService
from switchboard.registrar.registrar import (
    RegisterDecision,
    Registrar,
    RegistrarSettings,
    apply,
)
from switchboard.registrar.shared import BindingSync, Listener, SharedStore
from switchboard.sip.builders import make_response
from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.message import Request
from switchboard.sip.transaction.base import Peer
from switchboard.sip.transaction.layer import ServerTransaction
from switchboard.sip.uri import SipUri, parse_uri
from switchboard.throttle import ClusterThrottle, ThrottleSharing

if TYPE_CHECKING:
    from switchboard.sip.useragent import UserAgent

log = logging.getLogger("switchboard.registrar")
RESOLVE_TIMEOUT = 2.0


@quick_init
@dataclass(frozen=True, slots=True)
class Terminal:
    contact: str  # the Request-URI of the INVITE
    peer: Peer | None  # where to send it; None: the contact's own host and port
    route: tuple[str, ...] = ()  # its binding's Path (RFC 3327), as the INVITE's Route


class BindingStore(Protocol):
    """Where bindings outlive a restart (``store.registrations.RegistrationStore``)."""

    async def load(self) -> list[Binding]: ...

    async def delete_expired(self, now: float) -> int: ...

    async def save_batch(self, changes: list[tuple[list[Binding], list[Binding]]]) -> None: ...


class RegistrarService:
    def __init__(
        self,
        registrar: Registrar,
        store: BindingStore,
        directory: Directory,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registrar = registrar
        self.location: LocationService = registrar.location
        self.store = store
        self.directory = directory
        self.clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: list[tuple[SipEndpoint, ServerTransaction, RegisterDecision]] = []
        self._writer: asyncio.Task[None] | None = None
        self.counters = {"registered": 0, "challenged": 0, "refused": 0, "expired": 0}
        self.on_binding: Callable[[str, Binding], None] | None = None
        # held while a batch is stored and applied, and while other nodes' changes are
        # reloaded and applied: neither overwrites the other with older rows
        self._lock = asyncio.Lock()
        self.sync: BindingSync | None = None  # set by ``start`` when bindings are shared
        self.listener: Listener | None = None
        self.sharing: list[ThrottleSharing] = []  # set by ``share_throttles`` in a cluster

    @classmethod
    def serve(
        cls,
        ua: UserAgent,
        config: Config,
        directory: Directory,
        store: BindingStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> RegistrarService:
        """The registrar of ``config``'s domains, answering ``ua``'s REGISTERs."""
        registrar = Registrar(
            directory,
            LocationService(),
            digest_key=secrets.token_bytes(32),
            new_tag=ua.endpoint.ids.tag,
            settings=RegistrarSettings.for_config(config),
        )
        service = cls(registrar, store, directory, clock=clock)
        ua.request_handlers["REGISTER"] = service.on_register
        return service

    async def start(self) -> None:
        await self._share()
        async with self._lock:
            now = self.clock()
            dropped = await self.store.delete_expired(now)
            loaded = self.location.load(await self.store.load(), now)
        log.info("registrar: %d binding(s) restored, %d expired one(s) dropped", loaded, dropped)
        self._arm()

    async def _share(self) -> None:
        """Listen to other nodes' binding changes, when the store is shared with them."""
        if not isinstance(self.store, SharedStore):
            return
        sync = BindingSync(self.location, self.store, self._lock, self.clock, self._arm)
        listener = self.store.listen(sync.changed, sync.resync)
        if listener is None:
            return
        await listener.start()
        self.sync, self.listener = sync, listener
        log.info("registrar: bindings shared with the other nodes (database notifications)")

    def share_throttles(self, source: ClusterThrottle, user: ClusterThrottle) -> None:
        """Count digest failures with the other nodes too: ``source`` is the cluster's
        throttle for the registrar's ``throttle``, ``user`` for its ``user_throttle`` (each
        with the same settings)."""
        registrar, clock = self.registrar, self.clock
        self.sharing = [
            ThrottleSharing(registrar.throttle, source, what="SIP source", clock=clock),
            ThrottleSharing(registrar.user_throttle, user, what="SIP user", clock=clock),
        ]

    async def unshare_throttles(self) -> None:
        """Count failures on this node only again (leaving the cluster)."""
        for sharing in self.sharing:
            await sharing.aclose()

    async def close(self) -> None:
        await self.unshare_throttles()
        if self.listener is not None:
            await self.listener.close()
        if self.sync is not None:
            await self.sync.close()
        if self._timer is not None:
            self._timer.cancel()
        while self._writer is not None or self._tasks:
            await asyncio.gather(
                *self._tasks, *filter(None, [self._writer]), return_exceptions=True
            )

    def terminals(self, domain: str, user: str) -> list[Terminal]:
        bindings = self.location.bindings((domain, user), self.clock())
        # a binding with a Path came through the front: its source is the front, and the
        # INVITE carries the Path as Route headers (RFC 3327 §5.3)
        registered = [Terminal(b.contact, b.source, b.path) for b in bindings]
        known = {b.contact for b in bindings}
        static = self.directory.user(domain, user)
        extra = [Terminal(c, None) for c in static.contacts if c not in known] if static else []
        return registered + extra

    def registered_from(self, host: str) -> bool:
        """Whether a live binding was registered from ``host`` (an IP address)."""
        return self.location.registered_from(host)

    def contacts(self, domain: str, user: str) -> list[str]:
        return [terminal.contact for terminal in self.terminals(domain, user)]

    def statistics(self) -> dict[str, int]:
        shared = {
            **(self.listener.counters if self.listener is not None else {}),
            **(self.sync.counters if self.sync is not None else {}),
        }
        for sharing in self.sharing:  # "sip_source_failures_shared"…
            prefix = sharing.what.lower().replace(" ", "_")
            shared.update({f"{prefix}_{k}": v for k, v in sharing.counters.items()})
        return {**self.counters, **shared, "bindings": self.location.count()}

    # -- REGISTER -------------------------------------------------------------------------

    def on_register(
        self, endpoint: SipEndpoint, tx: ServerTransaction, request: Request, peer: Peer
    ) -> None:
        decision = self.registrar.handle(request, peer, self.clock())
        status = decision.response.status
        if decision.warning:
            log.warning("REGISTER %s", decision.log)
        else:
            log.debug("REGISTER %s: %s", status, decision.log)
        if status != 200 or not (decision.upserts or decision.removals):
            self._count(status)
            endpoint.respond(tx, decision.response)
            return
        names = {host for host in map(_contact_host, decision.upserts) if host is not None}
        if names:
            self._spawn(self._resolve_then_store(endpoint, tx, decision, names))
            return
        self._store(endpoint, tx, decision)

    async def _resolve_then_store(
        self,
        endpoint: SipEndpoint,
        tx: ServerTransaction,
        decision: RegisterDecision,
        names: set[tuple[str, int | None]],
    ) -> None:
        loop = asyncio.get_running_loop()
        for name, port in sorted(names, key=str):
            try:
                async with asyncio.timeout(RESOLVE_TIMEOUT):
                    found = await loop.getaddrinfo(name, None, type=socket.SOCK_DGRAM)
            except (OSError, TimeoutError):
                refusal = self.registrar.refuse(tx.request, 400, "Contact host does not resolve")
                log.info("REGISTER refused: Contact host %r does not resolve", name)
                self._count(400)
                endpoint.respond(tx, refusal.response)
                return
            if any(self.registrar.names_trunk(str(info[4][0]), port) for info in found):
                self._count(403)
                endpoint.respond(
                    tx, self.registrar.refuse(tx.request, 403, "Contact names a trunk").response
                )
                return
        self._store(endpoint, tx, decision)

    def _store(
        self, endpoint: SipEndpoint, tx: ServerTransaction, decision: RegisterDecision
    ) -> None:
        self._pending.append((endpoint, tx, decision))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                changes = [(list(d.upserts), list(d.removals)) for _, _, d in batch]
                async with self._lock:
                    try:
                        await self.store.save_batch(changes)
                    except Exception:
                        log.exception("storing %d registration(s) failed", len(batch))
                        for endpoint, tx, _ in batch:
                            response = make_response(tx.request, 500, "Registration not stored")
                            endpoint.respond(tx, response)
                        continue
                    for endpoint, tx, decision in batch:
                        told = list(self._changes(decision))
                        apply(self.location, decision)
                        self._tell(told)
                        self._count(200)
                        endpoint.respond(tx, decision.response)
                self._arm()
        finally:
            self._writer = None

    def _changes(self, decision: RegisterDecision) -> Iterator[tuple[str, Binding]]:
        """What ``decision`` changes, read before it is applied to the location service."""
        upserted = {binding.key for binding in decision.upserts}
        for binding in decision.removals:
            if binding.key not in upserted:
                yield "removed", binding
        for binding in decision.upserts:
            before = self.location.get(binding.aor, binding.contact)
            if before is None:
                yield "added", binding
            elif _seen_differently(before, binding):
                yield "updated", binding

    def _tell(self, changes: list[tuple[str, Binding]]) -> None:
        if self.on_binding is None:
            return
        for change, binding in changes:
            try:
                self.on_binding(change, binding)
            except Exception:
                log.exception("a binding listener failed")

    def _count(self, status: int) -> None:
        key = {200: "registered", 401: "challenged"}.get(status, "refused")
        self.counters[key] += 1

    # -- expiry ---------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.location.next_expiry()
        if deadline is None:
            return
        delay = max(0.0, deadline - self.clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_expiry)

    def _on_expiry(self) -> None:
        self._timer = None
        expired = self.location.expire(self.clock())
        if expired:
            self.counters["expired"] += len(expired)
            for binding in expired:
                log.info("binding expired: %s@%s %s", binding.user, binding.domain, binding.contact)
            if self.sync is None:
                self._tell([("removed", binding) for binding in expired])
            # Delete by expiry time, not by contact: a refresh stored meanwhile must survive.
            self._spawn(self._delete_expired())
        self._arm()

    async def _delete_expired(self) -> None:
        if self.sync is None or not isinstance(self.store, SharedStore):
            await self.store.delete_expired(self.clock())
            return
        # Every node expires the row; the one whose DELETE removed it tells, once.
        self._tell([("removed", b) for b in await self.store.delete_expired_bindings(self.clock())])

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("registrar storage task failed", exc_info=task.exception())


def _contact_host(binding: Binding) -> tuple[str, int | None] | None:
    """The Contact's host and port when the host is a name to resolve (None for an IP)."""
    uri = parse_uri(binding.contact)
    if not isinstance(uri, SipUri):
        return None
    host, port = uri.host_port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.lower(), port
    return None


def _seen_differently(before: Binding, after: Binding) -> bool:
    return (before.contact, before.received, before.q, before.user_agent) != (
        after.contact,
        after.received,
        after.q,
        after.user_agent,
    )
