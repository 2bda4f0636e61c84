"""A node's live calls in the shared state (``LiveCalls``): tracked while they run, taken
once by whoever reports the node dead (node_calls.py), on both states."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.cluster.errors import LeaseLostError
from switchboard.cluster.state import LocalState
from switchboard.cluster.values import CallChanges, ChannelLimits, Usage
from tests.cluster.conftest import MakeState


async def test_tracked_calls_are_taken_once_and_untracked_ones_never(
    make_state: MakeState,
) -> None:
    a = await make_state("node-a")
    await a.track("call-1", {"v": 1, "n": 1})
    await a.track("call-2", {"v": 1, "n": 2})
    await a.track("call-2", {"v": 1, "n": 3})  # a transfer's new snapshot replaces it
    await a.untrack("call-1")
    await a.untrack("never-tracked")
    reaper = a if isinstance(a, LocalState) else await make_state("node-b")
    taken = await asyncio.gather(reaper.take_calls_of("node-a"), reaper.take_calls_of("node-a"))
    assert sorted(taken, key=len) == [[], [{"v": 1, "n": 3}]]
    assert await reaper.take_calls_of("node-a") == []


async def test_a_node_alone_has_no_other_node_to_report(make_state: MakeState) -> None:
    a = await make_state("node-a")
    await a.track("call-1", {"v": 1})
    if isinstance(a, LocalState):
        assert await a.take_calls_of("node-b") == []
    assert await a.take_calls_of("node-a") == [{"v": 1}]


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_a_bad_key_or_body_is_refused(make_state: MakeState, key: str) -> None:
    a = await make_state("node-a")
    with pytest.raises(ValueError):
        await a.track(key, {"v": 1})
    with pytest.raises(ValueError):
        await a.track("call-1", ["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await a.take_calls_of("not a node name")


async def test_a_nodes_call_changes_apply_at_once_in_order(make_state: MakeState) -> None:
    a = await make_state("node-a")
    limits = ChannelLimits(10, 10)
    assert await a.try_take("example.com", 3, 1, limits)
    uuids = [f"uuid-{n}" for n in range(100)]  # more than one claim's worth
    await a.update_calls(CallChanges(claim=uuids, track={"call-1": {"v": 1}, "call-2": {"v": 2}}))
    assert await a.owner("uuid-99") == "node-a"
    await a.update_calls(
        CallChanges(give_back=[("example.com", 3, 1)], release=uuids[:50], untrack=["call-1"])
    )
    assert await a.usage("example.com") == Usage(0, 0)
    assert await a.owner("uuid-0") is None and await a.owner("uuid-50") == "node-a"
    assert await a.take_calls_of("node-a") == [{"v": 2}]
    await a.update_calls(CallChanges())  # nothing to say: nothing sent


async def test_bad_call_changes_are_refused_before_any_is_applied(make_state: MakeState) -> None:
    a = await make_state("node-a")
    for bad in (
        CallChanges(claim=["ok"], untrack=[""]),
        CallChanges(claim=["ok"], give_back=[("example.com", -1, 0)]),
        CallChanges(claim=["ok"], track={"call": ["not an object"]}),  # type: ignore[dict-item]
    ):
        with pytest.raises(ValueError):
            await a.update_calls(bad)
    assert await a.owner("ok") is None


async def test_claims_after_the_lease_lapsed_are_refused(make_state: MakeState) -> None:
    a = await make_state("node-a")
    await a.leave()
    with pytest.raises(LeaseLostError):
        await a.update_calls(CallChanges(claim=["uuid-1"]))
