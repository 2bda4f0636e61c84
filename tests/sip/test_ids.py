"""Identifiers come from the injected random source (reproducible in tests)."""

from __future__ import annotations

import random
import uuid

from switchboard.sip.ids import IdGenerator


def test_seeded_source_gives_the_same_identifiers() -> None:
    first, second = IdGenerator(random.Random(7)), IdGenerator(random.Random(7))
    assert [first.branch(), first.tag(), first.call_id()] == [
        second.branch(),
        second.tag(),
        second.call_id(),
    ]


def test_shapes_of_identifiers() -> None:
    ids = IdGenerator(random.Random(1))
    assert ids.branch().startswith("z9hG4bK") and len(ids.branch()) == 7 + 16
    assert len(ids.tag()) == 12
    assert uuid.UUID(ids.call_id()).version == 4
