"""RTP port allocation from ``rtp_ports`` (RFC 3550 §11: RTP on an even port, RTCP on the
next odd one). Pure bookkeeping: the edge binds the sockets and gives a pair back with
``release`` on every path, errors and cancellations included.
"""

from __future__ import annotations


class PortsExhaustedError(Exception):
    """Every pair of the configured range is in use."""


class PortAllocator:
    def __init__(self, low: int, high: int) -> None:
        first = low + (low % 2)
        self._free = list(range(first, high, 2))  # each RTP port has its RTCP port below high
        self._free.reverse()  # pop() hands out the lowest first
        self._in_use: set[int] = set()
        self.capacity = len(self._free)

    def allocate(self) -> int:
        """An even RTP port whose odd neighbour is free too."""
        if not self._free:
            raise PortsExhaustedError(
                f"all {self.capacity} RTP port pairs are in use; widen server.rtp_ports"
            )
        port = self._free.pop()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        if port in self._in_use:
            self._in_use.remove(port)
            self._free.insert(0, port)  # reused last: late packets of old calls fade out

    def unusable(self, port: int) -> None:
        """The OS refused to bind it (someone else has it now): retry it last."""
        self.release(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)
