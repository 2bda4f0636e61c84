"""Delivering callbacks from the outbox (API §3), the edge: the worker and its limits.

- ``enqueue`` stores the callback before anything is sent, so a crash loses nothing. It is
  stored already claimed (a lease of ``LEASE`` seconds) and sent at once; the worker claims
  what falls due later, retries and what a crashed process left leased, the same way (a
  lease in the database, so nothing is sent twice at once). The worker re-reads the outbox
  only when its schedule changed (a failed try), not after every success: two statements
  per delivered callback in all.
- A callback already being sent (or waiting for its domain's turn) by this process is not
  started twice when the worker claims it again: the claim only renews its lease.
- At most ``per_domain`` tries of one domain are in flight, each with its own deadline
  (``attempt``): a domain whose receiver stalls waits for its own turns, and another
  domain's callbacks go out at once. There is no shared cap to exhaust.
- A 2xx ends a delivery; anything else (an error status, a refused connection, a deadline,
  an address that is not public) schedules a retry by the backoff of ``policy``; after 24
  hours it is given up and logged.
- A URL's credentials are stored sealed (``credentials``) under the domain's key and are
  shown in no log line (``policy.redact``). One whose seal no longer opens (the key
  changed) is given up at once: it could not be sent as the caller meant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from urllib.parse import unquote

import httpx

from switchboard.callbacks import credentials, policy
from switchboard.callbacks.attempt import Attempts
from switchboard.callbacks.connect import Resolver, system_resolver
from switchboard.store.outbox import LEASE, Outbox, PendingCallback

log = logging.getLogger("switchboard.callbacks")


class CallbackDelivery:
    def __init__(
        self,
        outbox: Outbox,
        *,
        secret_for: Callable[[str], str | None],
        allow_private: bool,
        key_for: Callable[[str], str | None] = lambda domain: None,
        clock: Callable[[], float] = time.time,
        per_domain: int = 4,
        max_response: int = 65536,
        deadline: float = 10.0,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``secret_for``: a domain's signing secret; ``key_for``: the material its stored
        credentials are sealed with (its api_token)."""
        self.outbox = outbox
        self.secret_for = secret_for
        self.key_for = key_for
        self.clock = clock
        self.per_domain = per_domain
        self.attempts = Attempts(
            allow_private=allow_private,
            max_response=max_response,
            deadline=deadline,
            resolver=resolver,
            transport=transport,
        )
        self._wake = asyncio.Event()
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks: dict[str, asyncio.Task[None]] = {}  # by delivery id
        self.counters = {"callbacks_delivered": 0, "callbacks_retried": 0, "callbacks_failed": 0}

    async def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._worker is not None:
            # Stopped between two reads of the outbox, not cancelled in one: a query
            # cancelled mid-way leaves its pooled connection to be reset by the collector.
            self._closing = True
            self._wake.set()
            await asyncio.gather(self._worker, return_exceptions=True)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.outbox.writes.drain()  # results of tries already made are still stored
        await self.attempts.aclose()

    async def enqueue(
        self, domain: str, url: str, payload: dict[str, object], delivery_id: str | None = None
    ) -> str:
        """Store the callback (credentials sealed) and start sending it; its delivery id
        (``delivery_id`` when given: a second callback of that id is refused by the outbox).
        """
        delivery_id = delivery_id or uuid.uuid4().hex
        body = json.dumps(payload, separators=(",", ":"))
        now = self.clock()
        stored = self._seal(domain, url)
        callback = PendingCallback(delivery_id, domain, stored, body, now, 0)
        await self.outbox.add(callback, now, lease=LEASE)
        self._spawn(callback)
        return delivery_id

    async def enqueue_once(
        self, domain: str, url: str, payload: dict[str, object], delivery_id: str
    ) -> bool:
        """Store and send the callback unless one of that id is already stored (another
        node's): a dead node's call is reported once (pbx/failover.py). True when stored."""
        body = json.dumps(payload, separators=(",", ":"))
        now = self.clock()
        callback = PendingCallback(delivery_id, domain, self._seal(domain, url), body, now, 0)
        if not await self.outbox.add_once(callback, now, lease=LEASE):
            return False
        self._spawn(callback)
        return True

    async def take_over(self, node: str) -> int:
        """Send the callbacks the dead ``node`` had claimed now, not after their lease."""
        released = await self.outbox.release_claims(node, self.clock())
        if released:
            self._wake.set()
        return released

    def _seal(self, domain: str, url: str) -> str:
        if credentials.split_userinfo(url)[1] is None:
            return url
        material = self.key_for(domain)
        if not material:
            raise policy.CallbackUrlError(f"no key to seal the credentials of {domain}'s URL")
        return credentials.seal(url, credentials.derive_key(domain, material))

    def _spawn(self, callback: PendingCallback) -> None:
        if callback.delivery_id in self._tasks:
            return  # still waiting for its domain's turn or being sent: the claim renewed it
        task = asyncio.get_running_loop().create_task(self._deliver(callback))
        self._tasks[callback.delivery_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(callback.delivery_id, None))

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                for callback in await self.outbox.claim_due(self.clock()):
                    self._spawn(callback)
                next_due = await self.outbox.next_due()
            except Exception:
                log.exception("reading the callback outbox failed")
                next_due = self.clock() + 5.0
            delay = 60.0 if next_due is None else max(0.05, next_due - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _limit(self, domain: str) -> asyncio.Semaphore:
        limit = self._limits.get(domain)
        if limit is None:
            limit = self._limits[domain] = asyncio.Semaphore(self.per_domain)
        return limit

    async def _deliver(self, callback: PendingCallback) -> None:
        shown = policy.redact(callback.url)
        try:
            try:
                url = self._open(callback)
            except credentials.SealError as exc:
                await self._failed(callback, shown, str(exc), give_up=True)
                return
            async with self._limit(callback.domain):
                error = await self._post(callback, url)
            if error is None:
                await self.outbox.delivered(callback.delivery_id, self.clock())
                self.counters["callbacks_delivered"] += 1
                log.info("callback %s delivered to %s", callback.delivery_id, shown)
                return
            await self._failed(callback, shown, error, give_up=False)
        except Exception:
            # The row keeps its lease: the worker tries it again when the lease is over.
            log.exception("recording the result of callback %s failed", callback.delivery_id)

    def _open(self, callback: PendingCallback) -> str:
        if not credentials.is_sealed(callback.url):
            return callback.url
        material = self.key_for(callback.domain)
        if not material:
            raise credentials.SealError(f"no key for {callback.domain} to open the credentials")
        key = credentials.derive_key(callback.domain, material)
        return credentials.open_sealed(callback.url, key)

    async def _post(self, callback: PendingCallback, url: str) -> str | None:
        """None when delivered, else why not (with no credential in it)."""
        body = callback.body.encode()
        headers = policy.headers(
            callback.delivery_id, body, self.secret_for(callback.domain), self.clock()
        )
        error = await self.attempts.post(url, body, headers)
        return None if error is None else _scrub(error, url)

    async def _failed(
        self, callback: PendingCallback, shown: str, error: str, *, give_up: bool
    ) -> None:
        now = self.clock()
        attempts, retry_at = await self.outbox.failed(
            callback.delivery_id,
            error,
            now,
            policy.next_delay,
            0.0 if give_up else policy.GIVE_UP_AFTER,
        )
        self._wake.set()  # a retry is scheduled: the worker must look at the outbox again
        if retry_at is None:
            self.counters["callbacks_failed"] += 1
            log.error(
                "callback %s to %s given up after %d tries: %s",
                callback.delivery_id,
                shown,
                attempts,
                error,
            )
        else:
            self.counters["callbacks_retried"] += 1
            log.warning(
                "callback %s to %s failed (%s); retry in %.0f s",
                callback.delivery_id,
                shown,
                error,
                retry_at - now,
            )


def _scrub(error: str, url: str) -> str:
    """``error`` without the URL's userinfo, should any library have quoted it."""
    userinfo = credentials.split_userinfo(url)[1]
    if not userinfo:
        return error
    password = userinfo.partition(":")[2]
    for secret in sorted({userinfo, password, unquote(password)} - {""}, key=len, reverse=True):
        error = error.replace(secret, "***")
    return error
