"""A callback stored once per delivery id (pbx/failover.py): the node that reports a dead
node's call and the dead node itself name it alike, and the outbox keeps the first, on
both databases; the one kept is delivered, once."""

from __future__ import annotations

import asyncio
import json

from switchboard.callbacks.delivery import CallbackDelivery
from switchboard.store.database import create_engine, migrate
from switchboard.store.outbox import Outbox, PendingCallback
from tests.callbacks.receiver import callback_receiver


async def test_a_second_callback_of_one_id_is_not_stored(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    outbox = Outbox(engine)
    try:
        first = PendingCallback("call-1.result", "example.com", "http://a/", "{}", 1.0, 0)
        await outbox.add(first, 1.0)  # the live node's own
        again = PendingCallback("call-1.result", "example.com", "http://b/", "{}", 2.0, 0)
        assert await outbox.add_once(again, 2.0) is False
        other = PendingCallback("call-2.result", "example.com", "http://b/", "{}", 2.0, 0)
        assert await outbox.add_once(other, 2.0) is True
        assert await outbox.add_once(other, 3.0) is False
        due = await outbox.claim_due(10.0)
        assert sorted((c.delivery_id, c.url) for c in due) == [
            ("call-1.result", "http://a/"),
            ("call-2.result", "http://b/"),
        ]
    finally:
        await engine.dispose()


async def test_the_callback_kept_is_delivered_once(database_url: str) -> None:
    async with callback_receiver() as receiver:
        engine = create_engine(database_url)
        await migrate(engine)
        delivery = CallbackDelivery(
            Outbox(engine), secret_for=lambda _: None, allow_private=True, key_for=lambda _: None
        )
        await delivery.start()
        try:
            url = receiver.url
            assert await delivery.enqueue_once("example.com", url, {"n": 1}, "call-3.result")
            assert not await delivery.enqueue_once("example.com", url, {"n": 2}, "call-3.result")
            await receiver.wait_for(1)
            await asyncio.sleep(0.3)
            assert [json.loads(r.body) for r in receiver.received] == [{"n": 1}]
            assert receiver.received[0].headers["x-switchboard-delivery"] == "call-3.result"
        finally:
            await delivery.close()
            await engine.dispose()


async def test_a_dead_nodes_claims_are_handed_out_again_at_once(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    a, b = Outbox(engine, node="node-a"), Outbox(engine, node="node-b")
    try:
        for n in (1, 2, 3):  # stored by node-a as it sends them: claimed for a minute
            pending = PendingCallback(f"call-{n}.result", "example.com", "http://a/", "{}", 1.0, 0)
            await a.add(pending, 1.0, lease=60.0)
        await a.delivered("call-3.result", 2.0)
        mine = PendingCallback("call-4.result", "example.com", "http://b/", "{}", 1.0, 0)
        await b.add(mine, 1.0, lease=60.0)  # node-b's own, in flight
        assert await b.claim_due(5.0) == []
        assert await b.release_claims("node-a", 5.0) == 2
        due = await b.claim_due(5.0)
        assert sorted(c.delivery_id for c in due) == ["call-1.result", "call-2.result"]
        assert await b.release_claims("node-a", 6.0) == 0  # now node-b's claims
    finally:
        await engine.dispose()
