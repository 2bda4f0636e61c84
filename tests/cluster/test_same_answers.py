"""Both states give the same answers to any sequence of reservations (Hypothesis): what
a node alone decided, a cluster decides too."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.cluster.redis_state import RedisState
from switchboard.cluster.state import ChannelLimits, ClusterState, LocalState, TakeResult, Usage
from tests.cluster.redis_server import RedisServer

pytestmark = [pytest.mark.interop, pytest.mark.slow]

Step = tuple[str, int, int, int, int]  # take or give, channels, pstn, channel limit, pstn limit
steps = st.lists(
    st.tuples(
        st.sampled_from(["take", "give"]),
        st.integers(0, 4),
        st.integers(0, 2),
        st.integers(1, 8),
        st.integers(0, 3),
    ),
    max_size=25,
)
_domains = itertools.count()


async def _run(state: ClusterState, domain: str, script: list[Step]) -> list[object]:
    answers: list[object] = []
    for action, channels, pstn, channel_limit, pstn_limit in script:
        if action == "take":
            taken: TakeResult = await state.try_take(
                domain, channels, pstn, ChannelLimits(channel_limit, pstn_limit)
            )
            answers.append((taken.taken, taken.before))
        else:
            await state.give_back(domain, channels, pstn)
        usage: Usage = await state.usage(domain)
        answers.append(usage)
    return answers


async def _compare(url: str, script: list[Step]) -> None:
    local = LocalState()
    await local.join()
    remote = await RedisState.connect(url, "node-a")
    try:
        await remote.join()
        domain = f"d{next(_domains)}.example"  # each example on a fresh domain
        assert await _run(remote, domain, script) == await _run(local, domain, script)
    finally:
        await remote.aclose()


# One Redis for all examples: each runs on its own domain, so none sees another's state.
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=steps)
def test_reservations_answer_alike(redis: RedisServer, script: list[Step]) -> None:
    asyncio.run(_compare(redis.url, script))
