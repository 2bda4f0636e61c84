"""Idempotency keys on both states: the first response kept for a key is the answer to
every retry, for the key's lifetime."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import MakeState
from tests.cluster.polling import until

FIRST = {"result_code": 0, "uuids": ["a1", "b2"]}
SECOND = {"result_code": 0, "uuids": ["c3"]}


async def test_the_first_response_wins(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.recall("example.com", "key-1") is None
    assert await state.remember("example.com", "key-1", FIRST) is None
    assert await state.remember("example.com", "key-1", SECOND) == FIRST
    assert await state.recall("example.com", "key-1") == FIRST


async def test_keys_belong_to_their_domain(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.remember("a.example", "key-1", FIRST) is None
    assert await state.remember("b.example", "key-1", SECOND) is None
    assert await state.recall("b.example", "key-1") == SECOND
    # A separator in a name cannot make two (domain, key) pairs one.
    assert await state.remember("a.example:key", "1", SECOND) is None
    assert await state.recall("a.example", "key:1") is None


async def test_a_key_is_forgotten_after_its_lifetime(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.remember("example.com", "key-1", FIRST, ttl=0.3) is None
    assert await state.recall("example.com", "key-1") == FIRST

    async def forgotten() -> bool:
        return await state.recall("example.com", "key-1") is None

    await until(forgotten)
    assert await state.remember("example.com", "key-1", SECOND) is None
    assert await state.recall("example.com", "key-1") == SECOND


async def test_a_kept_response_is_a_copy(make_state: MakeState) -> None:
    state = await make_state()
    response = {"uuids": ["a1"]}
    await state.remember("example.com", "key-1", response)
    response["uuids"].append("changed")
    recalled = await state.recall("example.com", "key-1")
    assert recalled == {"uuids": ["a1"]}


async def test_a_lifetime_must_be_positive(make_state: MakeState) -> None:
    state = await make_state()
    with pytest.raises(ValueError):
        await state.remember("example.com", "key-1", FIRST, ttl=0)
    assert await state.recall("example.com", "key-1") is None


@pytest.mark.parametrize(
    ("key", "response"),
    [
        ("", FIRST),
        ("k" * 256, FIRST),
        ("key", {"big": "x" * 70_000}),
        ("key", ["not", "an", "object"]),
    ],
)
async def test_nonsense_is_refused(make_state: MakeState, key: str, response: object) -> None:
    state = await make_state()
    with pytest.raises(ValueError):
        await state.remember("example.com", key, response)  # type: ignore[arg-type]
    assert await state.recall("example.com", "key") is None
