"""Identifiers come from the injected random source (reproducible in tests)."""

from __future__ import annotations

import os
import random
import uuid

import pytest

from switchboard.media.ports import PortAllocator
from switchboard.sip.ids import BufferedSystemRandom, IdGenerator, SystemBits


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


def test_system_bits_stay_in_range_and_use_every_bit() -> None:
    bits = SystemBits()
    for k in (0, 1, 7, 8, 13, 48, 64, 128, 200):
        draws = [bits.getrandbits(k) for _ in range(400)]
        assert all(0 <= d < 2**k for d in draws)
        if k:  # the top bit is as often set as not: the shift keeps the high bits
            assert 100 < sum(d >> (k - 1) for d in draws) < 300
    with pytest.raises(ValueError):
        bits.getrandbits(-1)


def test_system_bits_across_fetches_never_repeat() -> None:
    bits = SystemBits()
    draws = [bits.getrandbits(128) for _ in range(3 * 4096 // 16 + 5)]  # three fetches
    assert len(set(draws)) == len(draws)


def test_a_forked_child_does_not_repeat_its_parents_bits() -> None:
    bits = SystemBits()
    bits.getrandbits(64)  # the parent holds fetched octets
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(writer, bits.getrandbits(128).to_bytes(16, "big"))
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    from_child = int.from_bytes(os.read(reader, 16), "big")
    os.close(reader)
    assert from_child != bits.getrandbits(128)


def test_production_ids_are_version_4_uuids_from_the_system() -> None:
    ids = IdGenerator()
    made = {ids.call_id() for _ in range(1000)}
    assert len(made) == 1000
    assert all(uuid.UUID(m).version == 4 and uuid.UUID(m).variant == uuid.RFC_4122 for m in made)


def test_buffered_system_random_draws_as_system_random_does() -> None:
    rng = BufferedSystemRandom()
    floats = [rng.random() for _ in range(2000)]
    assert all(0.0 <= f < 1.0 for f in floats)
    assert 0.4 < sum(floats) / len(floats) < 0.6
    assert len(set(floats)) == len(floats)
    picks = [rng.randrange(10) for _ in range(2000)]  # randrange goes through getrandbits
    assert set(picks) == set(range(10))
    rng.seed(1)  # nothing to seed: draws stay unpredictable
    assert BufferedSystemRandom().getrandbits(128) != rng.getrandbits(128)
    with pytest.raises(NotImplementedError):
        rng.getstate()


def test_media_draws_from_the_buffered_system_generator() -> None:
    assert isinstance(PortAllocator(20000, 20100)._rng, BufferedSystemRandom)
