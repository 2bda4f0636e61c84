"""RTP port allocation from ``rtp_ports`` (RFC 3550 §11: RTP on an even port, RTCP on the
next odd one). Pure bookkeeping: the edge binds the sockets and gives a pair back with
``release`` on every path, errors and cancellations included.

Pairs are drawn at random from the free ones (RFC 3550 §8.2 asks for unpredictable ports
where traffic may be hijacked; an attacker who knows the next port can spray it before the
phone's first packet). A released pair rests in a cooling queue, out of the draw while at
least half the range is free, so late packets of an old call fade out before it is reused.
"""

from __future__ import annotations

import random
from collections import deque

from switchboard.sip.ids import BufferedSystemRandom


class PortsExhaustedError(Exception):
    """Every pair of the configured range is in use."""


class PortAllocator:
    def __init__(self, low: int, high: int, *, rng: random.Random | None = None) -> None:
        first = low + (low % 2)
        self._free = list(range(first, high, 2))  # each RTP port has its RTCP port below high
        self._cooling: deque[int] = deque()
        self._in_use: set[int] = set()
        self._rng = rng or BufferedSystemRandom()
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
        index = self._rng.randrange(len(self._free))
        self._free[index], self._free[-1] = self._free[-1], self._free[index]
        port = self._free.pop()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        if port in self._in_use:
            self._in_use.remove(port)
            self._cooling.append(port)
            while self._cooling and len(self._cooling) > self.capacity // 2:
                self._free.append(self._cooling.popleft())

    def unusable(self, port: int) -> None:
        """The OS refused to bind it (someone else has it now): retry it last."""
        self.release(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)
