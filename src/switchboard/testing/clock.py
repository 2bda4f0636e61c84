"""An asyncio event loop on virtual time: when nothing is ready, time jumps to the next
timer instead of waiting for it (trio's ``MockClock(autojump_threshold=0)``, aioquic's
tests). A flow with a 32 s Timer B runs in milliseconds, and every timer fires at exactly
its deadline, so a test can assert times to the microsecond.

Rules:
- ``loop.time()`` starts at 0 and moves only by jumps to the earliest timer.
- Real file descriptors (the loop's own wake-up pipe) are still polled, without blocking.
- A loop with nothing to do and no timer is a test waiting for ever: ``IdleForeverError``
  (after ``IDLE_GRACE`` real seconds, for work handed to a thread).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
IDLE_GRACE = 0.5  # real seconds a loop with no timer waits for a thread before giving up


class IdleForeverError(RuntimeError):
    """Nothing is scheduled and nothing can arrive: the awaited event will never happen."""


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready:
            return ready
        if timeout is None:  # no timer at all: only a thread could still wake us
            ready = super().select(IDLE_GRACE)
            if not ready:
                raise IdleForeverError("nothing is scheduled: the test would wait for ever")
            return ready
        self.now += max(0.0, timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.now


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh virtual-time loop."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
