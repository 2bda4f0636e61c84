"""Branches, tags and Call-IDs from an injected random source.

The core never touches the global ``random``: tests pass a seeded ``random.Random`` and get
reproducible identifiers; production uses the operating system's generator (``SystemBits``:
unpredictable tags and Call-IDs matter, they are part of what makes a dialog hard to
hijack, §19.3).
"""

from __future__ import annotations

import os
import random
import uuid
from typing import NoReturn, Protocol

from switchboard.sip.via import MAGIC_COOKIE

_FETCH = 4096  # octets of the system generator read at a time


class RandomSource(Protocol):
    def getrandbits(self, k: int, /) -> int: ...


class SystemBits:
    """``getrandbits`` from ``os.urandom`` (what ``random.SystemRandom`` and ``secrets``
    read), fetched 4 KiB at a time: a call takes some thirty identifiers (tags, branches,
    Call-IDs, channel uuids), and a system call for each showed in the profile at 150
    calls/s (128 bits: 1.05 -> 0.56 µs on an idle machine). A forked child starts afresh,
    so it never repeats its parent's bits."""

    __slots__ = ("_octets", "_used")

    def __init__(self) -> None:
        self._octets = b""
        self._used = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._octets, self._used = b"", 0

    def getrandbits(self, k: int, /) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        size = (k + 7) // 8
        start = self._used
        if start + size > len(self._octets):
            self._octets, start = os.urandom(max(_FETCH, size)), 0
        self._used = start + size
        return int.from_bytes(self._octets[start : start + size], "big") >> (size * 8 - k)


SYSTEM_BITS = SystemBits()


class BufferedSystemRandom(random.Random):
    """``random.SystemRandom`` over ``SYSTEM_BITS``: the same unpredictable draws (RTP ports,
    SSRCs, RFC 3550 §8.2), without a system call for each (a call draws its ports and its
    ringback's SSRC, sequence and timestamp: ~6 ``getrandom`` calls a call before)."""

    def random(self) -> float:
        return self.getrandbits(53) * 2.0**-53  # as SystemRandom: 53 bits, in [0, 1)

    def getrandbits(self, k: int, /) -> int:
        return SYSTEM_BITS.getrandbits(k)

    def seed(self, *args: object, **kwargs: object) -> None:
        """Nothing to seed: the bits come from the operating system."""

    def getstate(self) -> NoReturn:
        raise NotImplementedError("the system generator has no state to save")

    def setstate(self, state: object) -> NoReturn:
        raise NotImplementedError("the system generator has no state to restore")


class IdGenerator:
    def __init__(self, source: RandomSource | None = None) -> None:
        self._source: RandomSource = source if source is not None else SYSTEM_BITS

    def _hex(self, bits: int) -> str:
        return f"{self._source.getrandbits(bits):0{bits // 4}x}"

    def branch(self) -> str:
        """A branch unique in space and time, with the RFC 3261 magic cookie (§8.1.1.7)."""
        return MAGIC_COOKIE + self._hex(64)

    def tag(self) -> str:
        """At least 32 bits of randomness (§19.3)."""
        return self._hex(48)

    def call_id(self) -> str:
        """A UUID string: the channel UUID of a leg is its Call-ID (API contract)."""
        return str(uuid.UUID(int=self._source.getrandbits(128), version=4))
