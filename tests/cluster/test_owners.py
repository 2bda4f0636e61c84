"""Which node holds a uuid's call, on both states."""

from __future__ import annotations

import pytest

from switchboard.cluster.errors import LeaseLostError
from tests.cluster.conftest import MakeState


async def test_a_claimed_uuid_names_its_node_until_released(make_state: MakeState) -> None:
    state = await make_state("node-a")
    await state.claim(["uuid-1", "uuid-2"])
    assert await state.owner("uuid-1") == "node-a"
    assert await state.owner("uuid-2") == "node-a"
    assert await state.owner("uuid-3") is None
    await state.release(["uuid-1", "uuid-9"])
    assert await state.owner("uuid-1") is None
    assert await state.owner("uuid-2") == "node-a"


async def test_leaving_releases_every_claim(make_state: MakeState) -> None:
    state = await make_state()
    await state.claim(["uuid-1"])
    await state.leave()
    assert await state.owner("uuid-1") is None
    with pytest.raises(LeaseLostError):
        await state.claim(["uuid-2"])
    assert await state.owner("uuid-2") is None


async def test_nonsense_is_refused(make_state: MakeState) -> None:
    state = await make_state()
    with pytest.raises(ValueError):
        await state.claim([f"uuid-{n}" for n in range(65)])
    with pytest.raises(ValueError):
        await state.claim(["ok", ""])
    with pytest.raises(ValueError):
        await state.owner("u" * 256)
    assert await state.owner("ok") is None
