"""Branches, tags and Call-IDs from an injected random source.

The core never touches the global ``random``: tests pass a seeded ``random.Random`` and get
reproducible identifiers; production passes ``random.SystemRandom`` (unpredictable tags and
Call-IDs matter: they are part of what makes a dialog hard to hijack, §19.3).
"""

from __future__ import annotations

import random
import uuid
from typing import Protocol

from switchboard.sip.via import MAGIC_COOKIE


class RandomSource(Protocol):
    def getrandbits(self, k: int, /) -> int: ...


class IdGenerator:
    def __init__(self, source: RandomSource | None = None) -> None:
        self._source: RandomSource = source if source is not None else random.SystemRandom()

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
