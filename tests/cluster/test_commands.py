"""Commands to the node holding a call, on both states (to the node itself here; between
nodes in test_redis_nodes)."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.cluster.errors import (
    CommandFailedError,
    CommandTimeoutError,
    UndeliverableError,
)
from switchboard.cluster.values import JsonObject
from tests.cluster.conftest import MakeState


async def test_a_command_gets_its_handlers_answer(make_state: MakeState) -> None:
    state = await make_state("node-a")
    received: list[JsonObject] = []

    async def handler(command: JsonObject) -> JsonObject:
        received.append(command)
        return {"hung_up": command["uuid"]}

    state.serve_commands(handler)
    answer = await state.send("node-a", {"op": "hangup", "uuid": "u-1"})
    assert answer == {"hung_up": "u-1"}
    assert received == [{"op": "hangup", "uuid": "u-1"}]


async def test_a_failing_handler_is_reported_to_the_sender(make_state: MakeState) -> None:
    state = await make_state("node-a")

    async def handler(command: JsonObject) -> JsonObject:
        raise RuntimeError("no such call")

    state.serve_commands(handler)
    with pytest.raises(CommandFailedError, match="node-a: no such call"):
        await state.send("node-a", {"op": "hangup"})


async def test_a_command_nobody_takes_is_undeliverable(make_state: MakeState) -> None:
    state = await make_state("node-a")
    with pytest.raises(UndeliverableError):
        await state.send("node-a", {"op": "hangup"})  # no handler
    state.serve_commands(lambda command: _answer({}))
    with pytest.raises(UndeliverableError):
        await state.send("node-z", {"op": "hangup"})  # no such node
    await state.leave()
    with pytest.raises(UndeliverableError):
        await state.send("node-a", {"op": "hangup"})  # no lease


async def test_an_unanswered_command_times_out(make_state: MakeState) -> None:
    state = await make_state("node-a")
    never = asyncio.Event()

    async def handler(command: JsonObject) -> JsonObject:
        await never.wait()
        return {}

    state.serve_commands(handler)
    with pytest.raises(CommandTimeoutError):
        await state.send("node-a", {"op": "hangup"}, timeout=0.3)


async def test_nonsense_is_refused(make_state: MakeState) -> None:
    state = await make_state("node-a")
    state.serve_commands(lambda command: _answer({}))
    with pytest.raises(ValueError):
        await state.send("node a", {"op": "hangup"})
    with pytest.raises(ValueError):
        await state.send("node-a", {"blob": "x" * 70_000})


async def _answer(answer: JsonObject) -> JsonObject:
    return answer
