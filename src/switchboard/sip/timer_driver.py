"""The asyncio edge of one session's timer (RFC 4028): ``session_timer`` decides, this arms.

Rules:
- One ``call_at`` handle per session, re-armed at the timer's next deadline after every
  change and cancelled by ``stop`` (the session stops it when it ends): no task, nothing
  left behind.
- A handle that fires early (a real loop runs handles within its clock resolution) finds
  nothing due and arms again, so nothing is lost and nothing happens before its time.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from switchboard.sip.session_timer import Due, SessionTimer


class TimerDriver:
    def __init__(
        self,
        now: Callable[[], float],
        on_refresh: Callable[[], None],
        on_expire: Callable[[], None],
    ) -> None:
        self.now = now
        # The session owns its driver: holding its methods weakly keeps the pair out of a
        # reference cycle, so an ended session is freed at once, not by a full collection.
        self._on_refresh = weakref.WeakMethod(on_refresh)
        self._on_expire = weakref.WeakMethod(on_expire)
        self.timer: SessionTimer | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self, interval: int, we_refresh: bool) -> None:
        """Start, or restart after a 2xx to a refresh (§10)."""
        if self.timer is None:
            self.timer = SessionTimer.start(interval, we_refresh, self.now())
        else:
            self.timer.restart(interval, we_refresh, self.now())
        self._arm()

    def stop(self) -> None:
        self.timer = None
        self._arm()

    def retry_later(self, min_se: int | None = None) -> None:
        """Our refresh failed (or could not go): again in a while, at least ``min_se`` long
        if a 422 asked for that (§7.4)."""
        if self.timer is not None:
            if min_se is not None:
                self.timer.interval = max(self.timer.interval, min_se)
            self.timer.refresh_failed(self.now())
            self._arm()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        deadline = self.timer.deadline() if self.timer is not None else None
        if deadline is not None:
            self._handle = asyncio.get_running_loop().call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if self.timer is None:
            return
        due = self.timer.due(self.now())
        if due is Due.EXPIRE:
            self.stop()
            _call(self._on_expire)
            return
        if due is Due.REFRESH:
            _call(self._on_refresh)
        self._arm()


def _call(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    callback = method()
    if callback is not None:  # its session is gone: nothing is left to refresh or end
        callback()
