"""Throttling sources that keep failing authentication (password guessing).

A source that fails ``max_failures`` times within ``window`` seconds is blocked for
``block_seconds``: its requests are refused at once (a REGISTER without a digest challenge, an
API request with HTTP 429), and the block is logged once. Successes do not clear the
count (a scanner may know one password).
Pure; the table is bounded so a flood of sources cannot grow it without limit.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


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

    def blocked_sources(self, now: float) -> int:
        return sum(1 for until in self._blocked_until.values() if until > now)
