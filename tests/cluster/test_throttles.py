"""Auth failure throttles on both states: throttle.FailureThrottle's rules."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.throttle import ThrottleSettings
from tests.cluster.conftest import MakeState
from tests.cluster.polling import until

SETTINGS = ThrottleSettings(max_failures=3, window=60.0, block_seconds=0.5)


async def test_a_source_failing_too_often_is_blocked_for_a_while(make_state: MakeState) -> None:
    throttle = (await make_state()).throttle("api", SETTINGS)
    assert not await throttle.record_failure("192.0.2.1")
    assert not await throttle.record_failure("192.0.2.1")
    assert await throttle.blocked_for("192.0.2.1") == 0
    assert await throttle.record_failure("192.0.2.1")  # this one starts the block
    assert 0 < await throttle.blocked_for("192.0.2.1") <= 0.5
    assert await throttle.blocked_for("192.0.2.2") == 0
    assert await throttle.blocked_sources() == 1

    async def unblocked() -> bool:
        return await throttle.blocked_for("192.0.2.1") == 0

    await until(unblocked)
    assert await throttle.blocked_sources() == 0
    assert not await throttle.record_failure("192.0.2.1")  # counting starts again


async def test_failures_older_than_the_window_do_not_count(make_state: MakeState) -> None:
    settings = ThrottleSettings(max_failures=2, window=0.3, block_seconds=60.0)
    throttle = (await make_state()).throttle("api", settings)
    assert not await throttle.record_failure("192.0.2.1")
    await asyncio.sleep(0.4)  # past the window: a lower bound, not a guess
    assert not await throttle.record_failure("192.0.2.1")
    assert await throttle.blocked_for("192.0.2.1") == 0
    assert await throttle.record_failure("192.0.2.1")


async def test_throttles_of_other_names_count_apart(make_state: MakeState) -> None:
    state = await make_state()
    api, sip = state.throttle("api", SETTINGS), state.throttle("sip", SETTINGS)
    for _ in range(3):
        await api.record_failure("192.0.2.1")
    assert await api.blocked_for("192.0.2.1") > 0
    assert await sip.blocked_for("192.0.2.1") == 0
    assert state.throttle("api", SETTINGS) is api
    with pytest.raises(ValueError):
        state.throttle("api", ThrottleSettings(max_failures=9))


async def test_a_source_too_long_is_refused(make_state: MakeState) -> None:
    throttle = (await make_state()).throttle("api", SETTINGS)
    with pytest.raises(ValueError):
        await throttle.record_failure("x" * 256)
