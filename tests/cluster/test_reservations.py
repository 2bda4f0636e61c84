"""Channel reservations (the engine's channel_limit and pstn_channel_limit), on both
states: the same answers as the engine's counters gave."""

from __future__ import annotations

import pytest

from switchboard.cluster.errors import LeaseLostError
from switchboard.cluster.state import ChannelLimits, Usage
from tests.cluster.conftest import MakeState

LIMITS = ChannelLimits(channels=5, pstn=2)


async def test_a_take_within_the_limit_is_counted_and_given_back(make_state: MakeState) -> None:
    state = await make_state()
    taken = await state.try_take("example.com", 3, 1, LIMITS)
    assert taken
    assert taken.before == Usage(0, 0)
    assert await state.usage("example.com") == Usage(3, 1)
    await state.give_back("example.com", 3, 1)
    assert await state.usage("example.com") == Usage(0, 0)


async def test_a_take_past_the_channel_limit_is_refused_and_takes_nothing(
    make_state: MakeState,
) -> None:
    state = await make_state()
    assert await state.try_take("example.com", 4, 0, LIMITS)
    refused = await state.try_take("example.com", 2, 1, LIMITS)
    assert not refused
    assert refused.before == Usage(4, 0)  # what the refusal's message reports
    assert await state.usage("example.com") == Usage(4, 0)
    assert await state.try_take("example.com", 1, 0, LIMITS)  # exactly the limit


async def test_a_pstn_leg_past_the_pstn_limit_is_refused(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.try_take("example.com", 1, 1, LIMITS)
    assert await state.try_take("example.com", 1, 1, LIMITS)
    refused = await state.try_take("example.com", 1, 1, LIMITS)
    assert not refused
    assert refused.before == Usage(2, 2)
    assert await state.try_take("example.com", 1, 0, LIMITS)  # no PSTN leg: not checked
    assert await state.usage("example.com") == Usage(3, 2)


async def test_only_what_is_asked_for_is_checked(make_state: MakeState) -> None:
    """A transfer to the PSTN takes a PSTN leg and no channel: a domain over its channel
    limit (the limit was lowered) may still transfer, as the engine's _take_pstn let it."""
    state = await make_state()
    assert await state.try_take("example.com", 5, 0, LIMITS)
    lowered = ChannelLimits(channels=3, pstn=2)
    assert not await state.try_take("example.com", 1, 0, lowered)
    assert await state.try_take("example.com", 0, 1, lowered)
    assert await state.usage("example.com") == Usage(5, 1)


async def test_giving_back_more_than_was_taken_stops_at_zero(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.try_take("example.com", 2, 1, LIMITS)
    await state.give_back("example.com", 5, 1)
    await state.give_back("example.com", 0, 1)
    assert await state.usage("example.com") == Usage(0, 0)
    assert await state.try_take("example.com", 5, 2, LIMITS)  # nothing owed


async def test_domains_count_apart(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.try_take("a.example", 5, 2, LIMITS)
    assert await state.try_take("b.example", 5, 2, LIMITS)
    assert await state.usage("a.example") == Usage(5, 2)
    assert await state.usage("c.example") == Usage(0, 0)


async def test_a_node_that_left_holds_nothing_and_takes_nothing(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.try_take("example.com", 3, 1, LIMITS)
    await state.leave()
    assert await state.usage("example.com") == Usage(0, 0)
    with pytest.raises(LeaseLostError):
        await state.try_take("example.com", 1, 0, LIMITS)
    with pytest.raises(LeaseLostError):
        await state.heartbeat()
    await state.join()
    assert await state.try_take("example.com", 1, 0, LIMITS)


async def test_joining_again_releases_what_the_earlier_life_held(make_state: MakeState) -> None:
    state = await make_state()
    assert await state.try_take("example.com", 3, 1, LIMITS)
    await state.join()
    assert await state.usage("example.com") == Usage(0, 0)


@pytest.mark.parametrize(
    ("domain", "channels", "pstn"),
    [("", 1, 0), ("x" * 256, 1, 0), ("example.com", -1, 0), ("example.com", 1, -1)],
)
async def test_nonsense_is_refused_before_anything_is_taken(
    make_state: MakeState, domain: str, channels: int, pstn: int
) -> None:
    state = await make_state()
    with pytest.raises(ValueError):
        await state.try_take(domain, channels, pstn, LIMITS)
    with pytest.raises(ValueError):
        await state.give_back(domain, channels, pstn)
    assert await state.usage("example.com") == Usage(0, 0)
