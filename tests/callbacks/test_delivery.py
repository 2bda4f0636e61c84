"""Callback delivery to a real HTTP listener: signature, retries, durability."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from switchboard.callbacks import policy
from switchboard.callbacks.delivery import CallbackDelivery
from switchboard.store.database import create_engine, migrate
from switchboard.store.outbox import LEASE, Outbox
from tests.callbacks.receiver import callback_receiver
from tests.interop.sipp import free_port

SECRET = "a-callback-signing-secret"


async def _delivery(
    url: str, key_for: Callable[[str], str | None] = lambda domain: None
) -> CallbackDelivery:
    engine = create_engine(url)
    await migrate(engine)
    delivery = CallbackDelivery(
        Outbox(engine), secret_for=lambda domain: SECRET, allow_private=True, key_for=key_for
    )
    await delivery.start()
    return delivery


async def _stop(delivery: CallbackDelivery) -> None:
    await delivery.close()
    await delivery.outbox.engine.dispose()


def test_backoff_doubles_from_one_second_to_five_minutes() -> None:
    assert [policy.next_delay(n) for n in (1, 2, 3, 4, 9, 10, 30)] == [
        1,
        2,
        4,
        8,
        256,
        300,
        300,
    ]


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
    timestamp, mac = (
        part.split("=", 1)[1] for part in last.headers["x-switchboard-signature"].split(",")
    )
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


async def test_one_domains_stalled_receiver_delays_only_that_domain(tmp_path: Path) -> None:
    release, other_done, all_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    in_flight = {"stalled.example": 0, "other.example": 0}
    most = dict(in_flight)
    delivered: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        domain = request.url.path.strip("/")
        in_flight[domain] += 1
        most[domain] = max(most[domain], in_flight[domain])
        if domain == "stalled.example":
            await release.wait()
        in_flight[domain] -= 1
        delivered.append(domain)
        if domain == "other.example":
            other_done.set()
        if len(delivered) == 31:
            all_done.set()
        return httpx.Response(200)

    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    await migrate(engine)
    delivery = CallbackDelivery(
        Outbox(engine),
        secret_for=lambda d: None,
        allow_private=False,
        per_domain=4,
        transport=httpx.MockTransport(handler),
    )
    await delivery.start()
    try:
        for _ in range(30):
            await delivery.enqueue("stalled.example", "http://8.8.8.8/stalled.example", {})
        await delivery.enqueue("other.example", "http://8.8.4.4/other.example", {})
        async with asyncio.timeout(2):
            await other_done.wait()
        assert in_flight["stalled.example"] == 4  # its own four turns, all held
        release.set()
        async with asyncio.timeout(5):
            await all_done.wait()
    finally:
        release.set()
        await _stop(delivery)
    assert most == {"stalled.example": 4, "other.example": 1}


async def test_a_callback_claimed_again_while_it_waits_for_its_turn_is_sent_once(
    tmp_path: Path,
) -> None:
    release = asyncio.Event()
    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["x-switchboard-delivery"])
        await release.wait()
        return httpx.Response(200)

    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    await migrate(engine)
    clock = [1_000_000.0]
    delivery = CallbackDelivery(
        Outbox(engine),
        secret_for=lambda d: None,
        allow_private=False,
        clock=lambda: clock[0],
        per_domain=1,
        transport=httpx.MockTransport(handler),
    )
    await delivery.start()
    try:
        first = await delivery.enqueue("example.com", "http://8.8.8.8/hook", {})
        second = await delivery.enqueue("example.com", "http://8.8.8.8/hook", {})
        async with asyncio.timeout(2):
            while not sent:
                await asyncio.sleep(0.01)
        clock[0] += LEASE + 1  # both leases run out while one is sent and one waits
        delivery._wake.set()
        async with asyncio.timeout(2):
            while await delivery.outbox.next_due() != clock[0] + LEASE:
                await asyncio.sleep(0.01)  # the worker claimed both again
        release.set()
        async with asyncio.timeout(5):
            while delivery.counters["callbacks_delivered"] < 2:
                await asyncio.sleep(0.01)
    finally:
        release.set()
        await _stop(delivery)
    assert sorted(sent) == sorted([first, second])


async def test_url_credentials_are_sealed_at_rest_and_sent_after_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path}/db.sqlite"
    port = free_port(socket.SOCK_STREAM)
    keys = {"example.com": "token-for-tests"}
    first = await _delivery(url, key_for=keys.get)
    hook = f"http://hook-user:s3cret-pass@127.0.0.1:{port}/hook"
    await first.enqueue("example.com", hook, {"result_code": 0})
    async with asyncio.timeout(5):
        while not first.counters["callbacks_retried"]:
            await asyncio.sleep(0.02)  # the receiver is down: the first try fails
    await _stop(first)
    rows = _rows(tmp_path / "db.sqlite")
    assert len(rows) == 1 and "sealed.v1." in rows[0]
    assert not any(secret in row for row in rows for secret in ("s3cret", "hook-user"))
    async with callback_receiver(port) as receiver:
        second = await _delivery(url, key_for=keys.get)
        try:
            (got,) = await receiver.wait_for(1, timeout=10)
        finally:
            await _stop(second)
    assert (
        got.headers["authorization"]
        == "Basic " + base64.b64encode(b"hook-user:s3cret-pass").decode()
    )
    assert "s3cret" not in caplog.text and "hook-user" not in caplog.text
    assert f"***@127.0.0.1:{port}/hook" in caplog.text


async def test_credentials_whose_key_changed_are_given_up_not_sent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    port = free_port(socket.SOCK_STREAM)
    first = await _delivery(url, key_for={"example.com": "token-before"}.get)
    await first.enqueue("example.com", f"http://u:p@127.0.0.1:{port}/hook", {})
    async with asyncio.timeout(5):
        while not first.counters["callbacks_retried"]:
            await asyncio.sleep(0.02)
    await _stop(first)
    async with callback_receiver(port) as receiver:
        second = await _delivery(url, key_for={"example.com": "token-rotated"}.get)
        second._wake.set()
        try:
            async with asyncio.timeout(10):
                while not second.counters["callbacks_failed"]:
                    await asyncio.sleep(0.02)
            assert await second.outbox.pending_count() == 0
        finally:
            await _stop(second)
    assert receiver.received == []


async def test_credentials_with_no_key_to_seal_them_are_refused(tmp_path: Path) -> None:
    delivery = await _delivery(f"sqlite:///{tmp_path}/db.sqlite")
    try:
        with pytest.raises(policy.CallbackUrlError, match="no key"):
            await delivery.enqueue("example.com", "https://u:p@crm.example.com/hook", {})
        assert await delivery.outbox.pending_count() == 0
    finally:
        await _stop(delivery)


def _rows(path: Path) -> list[str]:
    """Every text column of the outbox, as stored."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT url, body, coalesce(last_error, '') FROM callbacks").fetchall()
    return [" ".join(row) for row in rows]
