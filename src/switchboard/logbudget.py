"""A budget for log lines about junk from the network.

A scanner or a broken peer can send thousands of unparseable messages a second; one
warning per message would flood the log and cost more than refusing the message. The
budget allows ``per_second`` lines in each one-second window and counts the rest; the
first line of the next window says how many were left out. Pure: the caller gives ``now``.
"""

from __future__ import annotations


class LogBudget:
    def __init__(self, per_second: int = 20) -> None:
        self.per_second = per_second
        self._window = -1.0
        self._used = 0
        self._suppressed = 0

    def take(self, now: float) -> int | None:
        """None: do not log. Otherwise log, and mention this many lines left out before."""
        window = float(int(now))
        if window != self._window:
            self._window, self._used = window, 0
        if self._used >= self.per_second:
            self._suppressed += 1
            return None
        self._used += 1
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed
