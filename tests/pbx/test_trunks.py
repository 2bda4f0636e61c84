"""Trunk health on the in-memory network and virtual time: OPTIONS pings mark a trunk up or
down within its timeout, and a PSTN call toward a trunk that is down fails at once with
that cause in the end-of-call event, instead of ringing for 32 s."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.pbx.destinations import resolve
from switchboard.pbx.requests import CallGroupRequest
from switchboard.testing.phones import Answer, CallState, ScriptedTrunk
from switchboard.trunks import TrunkState, TrunkStatus
from tests.pbx.test_calls_on_harness import DOMAIN, TRUNK, Scene, run


def test_a_trunk_that_answers_options_is_up_and_one_that_does_not_is_down_in_2_s() -> None:
    async def scene(s: Scene) -> None:
        trunks = s.pbx.trunks
        changes: list[TrunkStatus] = []
        trunks.listeners.append(changes.append)
        assert trunks.state(DOMAIN.name, "pstn") is TrunkState.UNKNOWN
        started = asyncio.get_running_loop().time()
        await trunks.ping_all()  # nothing listens at the trunk's address
        assert asyncio.get_running_loop().time() - started == pytest.approx(2.0, abs=0.01)
        assert trunks.state(DOMAIN.name, "pstn") is TrunkState.DOWN
        assert trunks.down(DOMAIN.name, "pstn") == "trunk pstn down (no answer in 2 s)"

        trunk = ScriptedTrunk(s.network, address=TRUNK)
        await trunk.start()
        s.phones["trunk"] = trunk  # type: ignore[assignment]
        await trunks.ping_all()
        assert trunks.state(DOMAIN.name, "pstn") is TrunkState.UP
        assert trunks.down(DOMAIN.name, "pstn") is None
        assert [(c.state, c.detail) for c in changes] == [
            (TrunkState.DOWN, "no answer in 2 s"),
            (TrunkState.UP, "200 OK"),
        ]
        await trunks.ping_all()  # no change, no news
        assert len(changes) == 2

    run(scene)


def test_a_pstn_call_through_a_trunk_that_is_down_fails_as_the_member_answers() -> None:
    async def scene(s: Scene) -> None:
        await s.pbx.trunks.ping_all()  # the trunk is down
        alice = await s.phone("alice")
        alice.on_invite = Answer(after=1.0)
        request = CallGroupRequest(
            DOMAIN, DOMAIN.groups[0], resolve("0312341234", DOMAIN), 60, 15, "hunt",
            callback_url="https://crm.example.com/cb",
            call_events_url="https://crm.example.com/events",
        )  # fmt: skip
        await s.pbx.engine.call_group(request)
        rung = await alice.wait_call(CallState.ANSWERED, incoming=True)
        answered_at = alice.now()
        await rung.wait(CallState.ENDED)
        assert alice.now() - answered_at < 0.1  # at once, not after Timer B's 32 s
        await s.idle()
        events = [p for _, url, p in s.pbx.outputs.callbacks if url.endswith("/events")]
        (event,) = events
        assert event["cause"] == "trunk pstn down (no answer in 2 s)"
        legs = event["legs"]
        assert isinstance(legs, list)
        (far,) = [leg for leg in legs if leg["role"] == "destination"]
        assert (far["disposition"], far["sip_status"]) == ("refused", 503)

    run(scene)
