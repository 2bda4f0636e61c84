"""RTP port allocation from ``rtp_ports`` (RFC 3550 §11: RTP on an even port, RTCP on the
next odd one). Pure bookkeeping: the edge binds the sockets and gives a pair back with
``release`` on every path, errors and cancellations included.

Pairs are drawn at random from the free ones (RFC 3550 §8.2 asks for unpredictable ports
where traffic may be hijacked; an attacker who knows the next port can spray it before the
phone's first packet). A released pair rests in a cooling queue, out of the draw while at
least half the range is free, so late packets of an old call fade out before it is reused.

The relay's pool of pre-bound pairs (``media.pool``) is part of the range: ``reserve``
draws a pair for it from the free ones only (never a cooling one), ``claim`` hands a pooled
pair to a call, ``unreserve`` gives back one no call used. ``in_use`` counts the pairs of
calls only; ``pooled`` the pairs bound ahead of need.
"""

from __future__ import annotations

import random
from collections import deque


class PortsExhaustedError(Exception):
    """Every pair of the configured range is in use."""


class PortAllocator:
    def __init__(self, low: int, high: int, *, rng: random.Random | None = None) -> None:
        first = low + (low % 2)
        self._free = list(range(first, high, 2))  # each RTP port has its RTCP port below high
        self._cooling: deque[int] = deque()
        self._in_use: set[int] = set()
        self._pooled: set[int] = set()
        self._rng = rng or random.SystemRandom()
        self.capacity = len(self._free)

    def allocate(self) -> int:
        """An even RTP port whose odd neighbour is free too, drawn at random."""
        if not self._free:
            self._free.extend(self._cooling)
            self._cooling.clear()
        if not self._free:
            raise PortsExhaustedError(
                f"all {self.capacity} RTP port pairs are in use; widen server.rtp_ports"
            )
        port = self._draw()
        self._in_use.add(port)
        return port

    def reserve(self) -> int | None:
        """A free pair for the pool, drawn as ``allocate`` draws; None when no pair is free
        (cooling pairs stay cooling: only a call's need draws them early)."""
        if not self._free:
            return None
        port = self._draw()
        self._pooled.add(port)
        return port

    def claim(self, port: int) -> None:
        """A pooled pair becomes a call's."""
        self._pooled.remove(port)
        self._in_use.add(port)

    def unreserve(self, port: int) -> None:
        """A pooled pair no call used goes back to the draw at once: nothing was sent to it."""
        if port in self._pooled:
            self._pooled.remove(port)
            self._free.append(port)

    def _draw(self) -> int:
        index = self._rng.randrange(len(self._free))
        self._free[index], self._free[-1] = self._free[-1], self._free[index]
        return self._free.pop()

    def release(self, port: int) -> None:
        if port in self._in_use or port in self._pooled:
            self._in_use.discard(port)
            self._pooled.discard(port)
            self._cooling.append(port)
            while self._cooling and len(self._cooling) > self.capacity // 2:
                self._free.append(self._cooling.popleft())

    def unusable(self, port: int) -> None:
        """The OS refused to bind it (someone else has it now): retry it last."""
        self.release(port)

    @property
    def in_use(self) -> int:
        """Pairs held by calls (a pooled pair counts once a call takes it)."""
        return len(self._in_use)

    @property
    def pooled(self) -> int:
        """Pairs bound ahead of need, no call's yet."""
        return len(self._pooled)
