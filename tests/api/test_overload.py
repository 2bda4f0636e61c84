"""Overload protection: the loop-lag monitor, and call_group refused while it says so."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from switchboard.api.overload import LoopLagMonitor
from tests.interop.call_group_harness import AUTH, Phones, config_for, post, serving
from tests.interop.sipp import free_port


async def test_a_blocked_loop_is_seen_as_overload_and_recovery_clears_it() -> None:
    monitor = LoopLagMonitor(limit=0.05, tick=0.02)
    monitor.start()
    try:
        await asyncio.sleep(0.2)
        assert not monitor.overloaded and monitor.lag < 0.01
        for _ in range(10):  # the loop keeps running 100 ms late, as under too much load
            time.sleep(0.1)
            await asyncio.sleep(0)
        assert monitor.overloaded, monitor.lag
        await asyncio.sleep(0.6)  # on time again: the average falls back under the limit
        assert not monitor.overloaded, monitor.lag
    finally:
        await monitor.stop()


async def test_call_group_is_refused_with_503_while_overloaded_but_hangup_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (server, client):
        await server.overload.stop()  # nothing updates the lag now but the test
        monkeypatch.setattr(server.overload, "lag", 0.4)
        answer = await client.post(
            "/basix/api/call_group",
            json={"group_name": "support", "destination": "0312341234"},
            headers={"Authorization": AUTH},
        )
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["id"] == "overloaded"
        assert server.engine.statistics() == {"calls": 0, "channels": 0}  # nothing started
        hangup = await post(client, "hangup", {"uuid": "whatever"})
        assert hangup["error"]["id"] == "channel_not_found"  # type: ignore[index]
        assert server.statistics()["calls_refused_overloaded"] == 1
