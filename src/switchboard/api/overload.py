"""Overload protection: refuse new calls while the event loop runs late.

Every timer in Switchboard (member_answer_timeout, answer_timeout, retransmissions, RTP
pacing) runs on the one event loop. When more calls arrive than the process can carry, the
loop falls behind, every timer fires late and every call suffers; measured in
``bench.call_group_ladder`` at 400 call_group/s offered (about 2.5 times the ceiling), the
backlog took a minute to drain and trunk calls failed. A PBX sheds load at the door
instead, as a SIP server answers 503 with Retry-After (RFC 3261 §21.5.4).

``LoopLagMonitor`` wakes every ``TICK`` seconds and measures how late it woke; the lag is a
moving average over about half a second. While it is above ``LIMIT``, new call_group
requests are refused with ``overloaded`` (HTTP 503, ``Retry-After: 1``); calls already
running, hangups and CTI are never refused.
"""

from __future__ import annotations

import asyncio
import contextlib

from switchboard.api.errors import ApiError

TICK = 0.02  # seconds between measurements
LIMIT = 0.05  # seconds of average lag above which new calls are refused (the timer promise)
WEIGHT = 0.1  # moving average weight of the newest sample: about 10 ticks, ~0.2–0.5 s


class LoopLagMonitor:
    def __init__(self, limit: float = LIMIT, tick: float = TICK) -> None:
        self.limit = limit
        self.tick = tick
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None
        self.counters = {"calls_refused_overloaded": 0}

    @property
    def overloaded(self) -> bool:
        return self.lag > self.limit

    def admit(self) -> None:
        """Raise ``overloaded`` (HTTP 503, Retry-After) while the loop runs late."""
        if self.overloaded:
            self.counters["calls_refused_overloaded"] += 1
            behind = f"the server is behind by {self.lag * 1000:.0f} ms; retry in a second"
            raise ApiError("overloaded", behind, http_status=503, headers={"Retry-After": "1"})

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.tick
            await asyncio.sleep(self.tick)
            late = max(0.0, loop.time() - expected)
            self.lag += WEIGHT * (late - self.lag)
