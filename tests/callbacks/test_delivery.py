"""Callback delivery to a real HTTP listener: signature, retries, durability."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
from pathlib import Path

import pytest

from switchboard.callbacks import policy
from switchboard.callbacks.delivery import CallbackDelivery
from switchboard.store.database import create_engine, migrate
from switchboard.store.outbox import Outbox
from tests.callbacks.receiver import callback_receiver
from tests.interop.sipp import free_port

SECRET = "a-callback-signing-secret"


async def _delivery(url: str) -> CallbackDelivery:
    engine = create_engine(url)
    await migrate(engine)
    delivery = CallbackDelivery(
        Outbox(engine), secret_for=lambda domain: SECRET, allow_private=True
    )
    await delivery.start()
    return delivery


async def _stop(delivery: CallbackDelivery) -> None:
    await delivery.close()
    await delivery.outbox.engine.dispose()


def test_backoff_doubles_from_one_second_to_five_minutes() -> None:
    assert [policy.next_delay(n) for n in (1, 2, 3, 4, 9, 10, 30)] == [
        1, 2, 4, 8, 256, 300, 300,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://crm.example.com/hook", True),
        ("ftp://crm.example.com/hook", False),
        ("http://127.0.0.1:9000/hook", False),
        ("http://10.1.2.3/hook", False),
        ("http://[::1]/hook", False),
        ("http://169.254.169.254/latest", False),
        ("http://localhost/hook", False),
    ],
)
def test_only_public_http_urls_unless_private_is_allowed(url: str, allowed: bool) -> None:
    if allowed:
        assert policy.check_url(url, allow_private=False) == url
    else:
        with pytest.raises(policy.CallbackUrlError):
            policy.check_url(url, allow_private=False)
    if url.startswith("http"):
        assert policy.check_url(url, allow_private=True) == url


async def test_delivered_signed_once_after_retries(tmp_path: Path) -> None:
    async with callback_receiver() as receiver:
        receiver.statuses = [500, 503]  # down twice, then up
        delivery = await _delivery(f"sqlite:///{tmp_path}/db.sqlite")
        try:
            payload: dict[str, object] = {"result_code": 0, "uuid": "u-1"}
            sent = await delivery.enqueue("example.com", receiver.url, payload)
            received = await receiver.wait_for(3, timeout=10)
            await asyncio.sleep(0.2)
        finally:
            await _stop(delivery)
    assert len(received) == 3
    assert {r.headers["x-switchboard-delivery"] for r in received} == {sent}
    gaps = [b.time - a.time for a, b in itertools.pairwise(received)]
    assert 0.9 <= gaps[0] <= 1.5 and 1.9 <= gaps[1] <= 2.6  # 1 s, then 2 s
    last = received[-1]
    assert json.loads(last.body) == {"result_code": 0, "uuid": "u-1"}
    timestamp, mac = (part.split("=", 1)[1] for part in
                      last.headers["x-switchboard-signature"].split(","))  # fmt: skip
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + last.body, hashlib.sha256)
    assert mac == expected.hexdigest()
    assert delivery.counters["callbacks_delivered"] == 1


async def test_a_pending_callback_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    port = free_port(socket.SOCK_STREAM)
    first = await _delivery(url)
    await first.enqueue("example.com", f"http://127.0.0.1:{port}/hook", {"result_code": 0})
    await asyncio.sleep(0.3)  # the receiver is down: the first try fails
    await _stop(first)
    async with callback_receiver(port) as receiver:
        second = await _delivery(url)  # a new process, the same database
        try:
            (got,) = await receiver.wait_for(1, timeout=10)
        finally:
            await _stop(second)
    assert json.loads(got.body) == {"result_code": 0}


async def test_private_urls_are_refused_when_not_allowed(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    await migrate(engine)
    delivery = CallbackDelivery(Outbox(engine), secret_for=lambda d: None, allow_private=False)
    await delivery.start()
    try:
        async with callback_receiver() as receiver:
            await delivery.enqueue("example.com", receiver.url, {"result_code": 0})
            await asyncio.sleep(0.5)
            assert receiver.received == []
            assert delivery.counters["callbacks_retried"] >= 1
    finally:
        await delivery.close()
        await engine.dispose()


async def test_a_callback_failing_for_24_hours_is_given_up(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    await migrate(engine)
    clock = [1_000_000.0]
    delivery = CallbackDelivery(
        Outbox(engine), secret_for=lambda d: None, allow_private=True, clock=lambda: clock[0]
    )
    dead = f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}/hook"
    await delivery.start()
    try:
        await delivery.enqueue("example.com", dead, {"result_code": 500})  # tried at once
        for _ in range(100):
            if delivery.counters["callbacks_retried"]:
                break
            await asyncio.sleep(0.05)
        clock[0] += policy.GIVE_UP_AFTER + 1  # the next try happens a day later, and fails
        delivery._wake.set()
        for _ in range(100):
            if delivery.counters["callbacks_failed"]:
                break
            await asyncio.sleep(0.05)
        assert delivery.counters["callbacks_failed"] == 1
        assert await delivery.outbox.pending_count() == 0
    finally:
        await delivery.close()
        await engine.dispose()
