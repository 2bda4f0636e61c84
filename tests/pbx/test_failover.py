"""A dead node's call, reported by another (pbx/failover.py): the snapshot a live call
leaves in the shared state, and what it turns into: the node_failed callback under the
same delivery id the live call uses, the end-of-call event, a record per leg, the CTI
channels to remove. On the harness: a real call_group, ringing or bridged."""

from __future__ import annotations

import asyncio
import json

import pytest

from switchboard.pbx import failover
from switchboard.pbx.destinations import resolve
from switchboard.pbx.requests import CallGroupRequest
from switchboard.testing.phones import Answer, Ring
from tests.pbx.test_calls_on_harness import DOMAIN, Scene, run
from tests.pbx.test_transfer_on_harness import CUSTOMER, agent_with_customer

CALLBACK = "https://crm.example.com/cb"
EVENTS = "https://crm.example.com/events"
NOW = 1_800_000_000.0


def test_a_ringing_call_group_fails_with_one_callback_an_event_and_its_records() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        alice.on_invite = Ring()  # rings on: the hunt has not ended when the node dies
        request = CallGroupRequest(
            DOMAIN, DOMAIN.groups[0], resolve(CUSTOMER, DOMAIN), 60, 15, "hunt",
            callback_url=CALLBACK, call_events_url=EVENTS,
        )  # fmt: skip
        live = await s.pbx.engine.call_group(request)
        await alice.wait_call(incoming=True)
        snap = failover.snapshot(live.key, live.machine.call, CALLBACK, EVENTS)
        snap = json.loads(json.dumps(snap))  # it travels as JSON

        failed = failover.outcomes(snap, "node-a", NOW)

        assert failed.domain == DOMAIN.name
        callback, event = failed.deliveries
        assert callback.delivery_id == failover.delivery_id(live.key, "result")
        assert callback.url == CALLBACK
        assert callback.payload["error"] == {
            "id": "node_failed",
            "description": "node node-a failed during the hunt",
        }
        assert callback.payload["result_code"] == 500
        assert callback.payload["request_uuids"] == live.uuids
        assert callback.payload["group_id"] == DOMAIN.groups[0].id
        assert event.delivery_id == failover.delivery_id(live.key, "ended")
        assert event.payload["event"] == "call_ended"
        assert event.payload["cause"] == "node_failed"
        assert event.payload["request_uuids"] == live.uuids
        roles = {record.uuid: record.role for record in failed.records}
        assert roles[live.uuids[0]] == "member"
        assert roles[live.machine.call.plan.destination_channel] == "destination"
        assert {r.disposition for r in failed.records} == {"node_failed"}
        assert {r.hangup for r in failed.records} == {"send_bye,NODE_FAILED"}
        assert all(r.ended_at == NOW for r in failed.records)
        assert set(live.uuids) <= set(failed.channels)
        live.hang_up("test over")

    run(scene)


def test_the_live_call_queues_its_callback_under_the_id_the_reaper_would_use() -> None:
    async def scene(s: Scene) -> None:
        live, _ = await agent_with_customer(s)
        sent = s.pbx.outputs.callbacks
        assert [url for _, url, _ in sent] == [CALLBACK]
        ids = s.pbx.outputs.delivery_ids
        assert ids == [failover.delivery_id(live.key, "result")]
        live.hang_up("test over")
        await asyncio.sleep(0.5)
        assert ids == [
            failover.delivery_id(live.key, "result"),
            failover.delivery_id(live.key, "ended"),
        ]

    run(scene)


def test_a_request_without_urls_fails_with_records_only() -> None:
    async def scene(s: Scene) -> None:
        alice = await s.phone("alice")
        alice.on_invite = Answer(after=30.0)
        request = CallGroupRequest(
            DOMAIN, DOMAIN.groups[0], resolve(CUSTOMER, DOMAIN), 60, 15, "hunt"
        )
        live = await s.pbx.engine.call_group(request)
        snap = failover.snapshot(live.key, live.machine.call, None, None)
        failed = failover.outcomes(snap, "node-a", NOW)
        assert failed.deliveries == [] and failed.records
        live.hang_up("test over")

    run(scene)


@pytest.mark.parametrize(
    "snap",
    [{}, {"v": 2}, {"v": 1, "key": "k"}, {"v": 1, "key": "k", "domain": "d", "legs": 3}],
)
def test_a_snapshot_that_is_not_ours_is_refused(snap: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        failover.outcomes(snap, "node-a", NOW)
