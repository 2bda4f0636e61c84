"""Throttling sources that keep failing authentication (password guessing).

A source that fails ``max_failures`` times within ``window`` seconds is blocked for
``block_seconds``: its requests are refused at once (a REGISTER without a digest challenge, an
API request with HTTP 429), and the block is logged once. Successes do not clear the
count (a scanner may know one password).

``FailureThrottle`` is pure; the table is bounded so a flood of sources cannot grow it
without limit. ``ThrottleSharing`` is its thin async edge in a cluster (DESIGN §7): each
failure is also told to the cluster's throttle of that name (one Redis), and a source
blocked there is blocked here too. Decisions stay local and synchronous, and a success
costs no round trip: a source blocked on another node is blocked on this one at its next
failure here, so a guesser spreading over the nodes gets at most about one more try per
node than on one node. The cluster's throttle being unreachable only loses that sharing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from switchboard.logbudget import LogBudget

log = logging.getLogger("switchboard.throttle")


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    max_failures: int = 5
    window: float = 60.0
    block_seconds: float = 300.0
    max_sources: int = 100_000


class FailureThrottle:
    def __init__(self, settings: ThrottleSettings | None = None) -> None:
        self.settings = settings or ThrottleSettings()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked_until: dict[str, float] = {}
        # told of each failure after it is counted (``ThrottleSharing``); None alone
        self.on_failure: Callable[[str], None] | None = None

    def is_blocked(self, source: str, now: float) -> bool:
        until = self._blocked_until.get(source)
        if until is None:
            return False
        if now >= until:
            del self._blocked_until[source]
            return False
        return True

    def blocked_for(self, source: str, now: float) -> float:
        """Seconds left of the source's block (0 when it is not blocked)."""
        return max(0.0, self._blocked_until.get(source, now) - now)

    def record_failure(self, source: str, now: float) -> bool:
        """Count a failure; True when this failure starts a block."""
        started = self._count(source, now)
        if self.on_failure is not None:
            self.on_failure(source)
        return started

    def _count(self, source: str, now: float) -> bool:
        settings = self.settings
        times = self._failures.get(source)
        if times is None:
            times = self._failures[source] = deque()
        self._failures.move_to_end(source)
        times.append(now)
        while times and times[0] <= now - settings.window:
            times.popleft()
        while len(self._failures) > settings.max_sources:
            self._failures.popitem(last=False)
        if len(times) >= settings.max_failures and not self.is_blocked(source, now):
            self._blocked_until[source] = now + settings.block_seconds
            times.clear()
            return True
        return False

    def block(self, source: str, seconds: float, now: float) -> bool:
        """Block the source for ``seconds`` (decided elsewhere: the cluster's throttle);
        a longer block in force is kept. True when this starts a block."""
        started = not self.is_blocked(source, now)
        until = max(self._blocked_until.get(source, now), now + seconds)
        self._blocked_until[source] = until
        self._failures.pop(source, None)  # as a block counted here: counting starts again
        if len(self._blocked_until) > self.settings.max_sources:
            self._blocked_until = {s: u for s, u in self._blocked_until.items() if u > now}
        return started

    def blocked_sources(self, now: float) -> int:
        return sum(1 for until in self._blocked_until.values() if until > now)


class ClusterThrottle(Protocol):
    """The cluster's throttle of one name (``cluster.state.SharedThrottle``), as seen here."""

    @property
    def settings(self) -> ThrottleSettings: ...

    async def blocked_for(self, source: str) -> float: ...

    async def record_failure(self, source: str) -> bool: ...


MAX_SHARED_NAME = 255  # the cluster state's bound on a source's name


class ThrottleSharing:
    """Tells ``shared`` of each failure ``local`` counts, and blocks in ``local`` what
    ``shared`` says is blocked. At most ``max_pending`` failures are on their way at once:
    past that (a flood, or a slow Redis) a failure is counted here only, so a guesser
    cannot grow the tasks; the local throttle still blocks it on this node."""

    def __init__(
        self,
        local: FailureThrottle,
        shared: ClusterThrottle,
        *,
        what: str,
        clock: Callable[[], float],
        max_pending: int = 100,
    ) -> None:
        if shared.settings != local.settings:
            raise ValueError(f"{what}: the cluster's throttle has other settings")
        self.local, self.shared, self.what = local, shared, what
        self._clock = clock
        self.max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()
        self._log_budget = LogBudget(per_second=5)
        self.counters = dict.fromkeys(
            ("failures_shared", "failures_not_shared", "share_errors", "blocked_by_cluster"), 0
        )
        local.on_failure = self.failed

    def failed(self, source: str) -> None:
        """A failure ``local`` just counted: tell the cluster, without waiting for it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): local only
            loop = None
        if loop is None or len(self._pending) >= self.max_pending:
            self.counters["failures_not_shared"] += 1
            return
        task = loop.create_task(self._share(source))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _share(self, source: str) -> None:
        name = shared_name(source)
        try:
            started = await self.shared.record_failure(name)
            left = self.shared.settings.block_seconds if started else 0.0
            if not started:  # blocked already, by failures on other nodes?
                left = await self.shared.blocked_for(name)
        except Exception as error:  # Redis down or slow: sharing is lost, not throttling
            self.counters["share_errors"] += 1
            self._warn("%s throttle: not shared (%s)", self.what, error)
            return
        self.counters["failures_shared"] += 1
        if left > 0 and self.local.block(source, left, self._clock()):
            self.counters["blocked_by_cluster"] += 1
            message = "%s throttle: %s blocked by the cluster for %.0f s"
            self._warn(message, self.what, source, left)

    def _warn(self, message: str, *args: object) -> None:
        left_out = self._log_budget.take(self._clock())
        if left_out is not None:
            more = f" ({left_out} more not logged)" if left_out else ""
            log.warning(message + "%s", *args, more)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def settle(self) -> None:
        """Wait until every failure on its way is shared (or failed to be)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop sharing: failures are counted here only from now on."""
        if self.local.on_failure == self.failed:
            self.local.on_failure = None
        for task in self._pending:
            task.cancel()
        await self.settle()


def shared_name(source: str) -> str:
    """The source's name in the cluster state: a key longer than the state takes (a long
    user in a per-user key) by its digest, so it is still counted, not refused."""
    if 0 < len(source) <= MAX_SHARED_NAME:
        return source
    return "sha256:" + hashlib.sha256(source.encode()).hexdigest()
