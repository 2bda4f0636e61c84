"""Delivering callbacks from the outbox (API §3), the edge: httpx POSTs, one worker.

- ``enqueue`` stores the callback before anything is sent, so a crash loses nothing. It is
  stored already claimed (a lease of ``LEASE`` seconds) and sent at once; the worker claims
  what falls due later, retries and what a crashed process left leased, the same way (a
  lease in the database, so nothing is sent twice at once). At most ``concurrency`` POSTs
  are in flight. The worker re-reads the outbox only when its schedule changed (a failed
  try), not after every success: two statements per delivered callback in all.
- A 2xx ends a delivery; anything else (an error status, a refused connection, a timeout)
  schedules a retry by the backoff of ``policy``; after 24 hours it is given up and logged.
- Host names are resolved before sending and refused if they lead to a private address,
  unless the server allows private callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from switchboard.callbacks import policy
from switchboard.store.outbox import LEASE, Outbox, PendingCallback

log = logging.getLogger("switchboard.callbacks")


class CallbackDelivery:
    def __init__(
        self,
        outbox: Outbox,
        *,
        secret_for: Callable[[str], str | None],
        allow_private: bool,
        clock: Callable[[], float] = time.time,
        concurrency: int = 20,
        timeout: float = 10.0,
    ) -> None:
        self.outbox = outbox
        self.secret_for = secret_for
        self.allow_private = allow_private
        self.clock = clock
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(concurrency)
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters = {"callbacks_delivered": 0, "callbacks_retried": 0, "callbacks_failed": 0}

    async def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.outbox.writes.drain()  # results of tries already made are still stored
        await self._client.aclose()

    async def enqueue(self, domain: str, url: str, payload: dict[str, object]) -> str:
        delivery_id = uuid.uuid4().hex
        body = json.dumps(payload, separators=(",", ":"))
        now = self.clock()
        callback = PendingCallback(delivery_id, domain, url, body, now, 0)
        await self.outbox.add(callback, now, lease=LEASE)
        task = asyncio.get_running_loop().create_task(self._deliver(callback))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery_id

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                for callback in await self.outbox.claim_due(self.clock()):
                    task = asyncio.get_running_loop().create_task(self._deliver(callback))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                next_due = await self.outbox.next_due()
            except Exception:
                log.exception("reading the callback outbox failed")
                next_due = self.clock() + 5.0
            delay = 60.0 if next_due is None else max(0.05, next_due - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _deliver(self, callback: PendingCallback) -> None:
        try:
            async with self._limit:
                error = await self._post(callback)
            now = self.clock()
            if error is None:
                await self.outbox.delivered(callback.delivery_id, now)
                self.counters["callbacks_delivered"] += 1
                log.info("callback %s delivered to %s", callback.delivery_id, callback.url)
                return
            attempts, retry_at = await self.outbox.failed(
                callback.delivery_id, error, now, policy.next_delay, policy.GIVE_UP_AFTER
            )
            self._wake.set()  # a retry is scheduled: the worker must look at the outbox again
            if retry_at is None:
                self.counters["callbacks_failed"] += 1
                log.error("callback %s given up after %d tries: %s", callback.delivery_id,
                          attempts, error)  # fmt: skip
            else:
                self.counters["callbacks_retried"] += 1
                log.warning("callback %s to %s failed (%s); retry in %.0f s",
                            callback.delivery_id, callback.url, error, retry_at - now)  # fmt: skip
        except Exception:
            # The row keeps its lease: the worker tries it again when the lease is over.
            log.exception("recording the result of callback %s failed", callback.delivery_id)

    async def _post(self, callback: PendingCallback) -> str | None:
        """None when delivered, else why not."""
        try:
            policy.check_url(callback.url, allow_private=self.allow_private)
            if not self.allow_private:
                await self._check_resolved(callback.url)
        except policy.CallbackUrlError as exc:
            return str(exc)
        body = callback.body.encode()
        headers = policy.headers(
            callback.delivery_id, body, self.secret_for(callback.domain), self.clock()
        )
        try:
            response = await self._client.post(callback.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    async def _check_resolved(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError as exc:
            raise policy.CallbackUrlError(f"cannot resolve {host}: {exc}") from None
        for info in infos:
            if policy.is_private_host(str(info[4][0])):
                raise policy.CallbackUrlError(f"{host} resolves to a private address")
