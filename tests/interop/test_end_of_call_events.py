"""End-of-call events end to end (API §3b), on the real server process: a call_group whose
member (a SIPp phone that registered) answers and whose PSTN destination (a SIPp trunk)
answers 486 posts one ``call_ended`` event saying so, signed; and one refused by its
receiver stays in the outbox through a SIGKILL and is delivered once after the restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.store.outbox import LEASE
from tests.callbacks.receiver import CallbackReceiver, Received, callback_receiver
from tests.interop.call_group_harness import finish, start_call_group, uas
from tests.interop.serve_process import start_serve, stop_serve
from tests.interop.servers import injection_file
from tests.interop.sipp import SCENARIOS, free_port, run_sipp, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SECRET = "a-secret-that-signs-the-events"
DESTINATION = "0312341234"
NO_MORE = 2.0  # seconds a delivered event is watched for a second delivery


@dataclass
class Switchboard:
    """A server's config on free ports, its database, and where its SIPp peers listen."""

    config: Path
    database: Path
    base_url: str
    sip_port: int
    phone_port: int
    trunk_port: int
    log: Path


def _switchboard(tmp_path: Path) -> Switchboard:
    sip, http = free_port(), free_port(socket.SOCK_STREAM)
    phone, trunk = free_port(), free_port()
    database = tmp_path / "db.sqlite"
    config = tmp_path / "switchboard.toml"
    config.write_text(f"""
[server]
sip_listen = "127.0.0.1:{sip}"
http_listen = "127.0.0.1:{http}"
database = "sqlite:///{database}"
callback_allow_private = true
trunk_ping_seconds = 0

[[domains]]
name = "example.com"
api_token = "token-for-tests"
callback_secret = "{SECRET}"
calling_number = "0506868000"
  [[domains.users]]
  id = 1
  name = "alice"
  sip_password = "pw-alice"
  [[domains.groups]]
  id = 1111
  name = "support"
  members = ["alice"]
  [[domains.trunks]]
  name = "pstn"
  address = "127.0.0.1:{trunk}"
""")
    return Switchboard(
        config, database, f"http://127.0.0.1:{http}", sip, phone, trunk, tmp_path / "server.log"
    )


def _log_tail(switchboard: Switchboard) -> str:
    return switchboard.log.read_text(errors="replace")[-3000:] if switchboard.log.exists() else ""


@dataclass(frozen=True)
class Row:
    delivery_id: str
    url: str
    body: str
    attempts: int
    next_attempt_at: float
    delivered_at: float | None
    given_up_at: float | None


def _outbox(database: Path) -> list[Row]:
    with closing(sqlite3.connect(database, timeout=5)) as db:
        rows = db.execute(
            "SELECT delivery_id, url, body, attempts, next_attempt_at, delivered_at, given_up_at"
            " FROM callbacks ORDER BY pk"
        ).fetchall()
    return [Row(str(r[0]), str(r[1]), str(r[2]), int(r[3]), float(r[4]), r[5], r[6]) for r in rows]


async def _outbox_until(
    database: Path, ready: Callable[[list[Row]], object], what: str, timeout: float = 10.0
) -> list[Row]:
    """Poll the outbox until ``ready(rows)``; the rows then."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _outbox(database)
        if ready(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"the outbox never showed {what}: {rows}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def _busy_call(
    switchboard: Switchboard, tmp_path: Path, events_url: str
) -> AsyncIterator[list[str]]:
    """alice registers from a SIPp phone that then answers; the call_group's PSTN
    destination, a SIPp trunk, answers 486 and alice gets a BYE. Yields the request's
    uuids once the call is placed; on leaving, both peers must have played their part
    (alice's SIPp lingers 4 s after the BYE: the test waits for its event meanwhile)."""
    users = injection_file(tmp_path / "users.csv", ["alice"])
    registered = await run_sipp(
        ["-sf", str(SCENARIOS / "uac_register.xml"), "-inf", str(users),
         f"127.0.0.1:{switchboard.sip_port}", "-i", "127.0.0.1",
         "-p", str(switchboard.phone_port), "-m", "1", "-nostdin", "-timeout", "20"],
        25,
    )  # fmt: skip
    assert registered.returncode == 0, registered.output[-2000:]
    alice = await start_sipp(uas(switchboard.phone_port))  # answers, then expects our BYE
    trunk = await start_sipp(uas(switchboard.trunk_port, SCENARIOS / "uas_busy.xml"))
    try:
        async with httpx.AsyncClient(base_url=switchboard.base_url) as client:
            body: dict[str, object] = {
                "group_name": "support",
                "destination": DESTINATION,
                "call_events_url": events_url,
            }
            uuids = await start_call_group(client, body)
        assert len(uuids) == 1  # one member: alice
        yield uuids
        await finish(alice, trunk)
    finally:
        for process in (alice, trunk):
            if process.returncode is None:
                process.kill()
                await process.wait()


def _verify_signature(received: Received) -> None:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`` over the bytes received."""
    fields = dict(
        part.split("=", 1) for part in received.headers["x-switchboard-signature"].split(",")
    )
    assert set(fields) == {"t", "v1"}, fields
    expected = hmac.new(
        SECRET.encode(), fields["t"].encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected), "the signature does not verify"
    assert abs(time.time() - int(fields["t"])) < 60  # signed when sent, not when queued


def _assert_says_486(received: Received, uuids: list[str]) -> None:
    event: dict[str, Any] = json.loads(received.body)
    assert (event["event"], event["kind"], event["domain"]) == (
        "call_ended",
        "call_group",
        "example.com",
    ), event
    assert event["request_uuids"] == uuids
    assert (event["ended_by"], event["cause"]) == ("destination", "destination busy (486)")
    legs = {leg["role"]: leg for leg in event["legs"]}
    assert len(event["legs"]) == 2 and set(legs) == {"member", "destination"}, event
    member, destination = legs["member"], legs["destination"]
    assert (member["uuid"], member["party"], member["disposition"], member["sip_status"]) == (
        uuids[0],
        "alice",
        "answered",
        200,
    ), member
    assert (destination["party"], destination["disposition"], destination["sip_status"]) == (
        DESTINATION,
        "refused",
        486,
    ), destination
    assert destination["hangup"] == "recv_refuse,USER_BUSY", destination
    assert destination["answered_at"] is None and destination["talk_seconds"] is None
    assert destination["uuid"] not in uuids  # the trunk's own channel


async def _arrived(receiver: CallbackReceiver, count: int, switchboard: Switchboard) -> None:
    try:
        await receiver.wait_for(count, timeout=10)
    except TimeoutError:
        raise AssertionError(
            f"{len(receiver.received)} POSTs, not {count}:\n{_log_tail(switchboard)}"
        ) from None


async def _no_more_than(receiver: CallbackReceiver, count: int) -> None:
    await asyncio.sleep(NO_MORE)  # a second delivery would come within this
    assert len(receiver.received) == count, [r.headers for r in receiver.received]


async def test_a_busy_pstn_destination_is_one_signed_end_of_call_event(tmp_path: Path) -> None:
    switchboard = _switchboard(tmp_path)
    async with callback_receiver() as receiver:
        server = await start_serve(switchboard.config, switchboard.base_url, switchboard.log)
        try:
            async with _busy_call(switchboard, tmp_path, receiver.url) as uuids:
                await _arrived(receiver, 1, switchboard)
                (row,) = await _outbox_until(
                    switchboard.database, lambda rows: rows and rows[0].delivered_at, "a delivery"
                )
                await _no_more_than(receiver, 1)
        finally:
            await stop_serve(server, signal.SIGTERM)
    (event,) = receiver.received
    assert event.headers["x-switchboard-delivery"] == row.delivery_id
    assert event.headers["content-type"] == "application/json"
    _verify_signature(event)
    _assert_says_486(event, uuids)
    assert event.body == row.body.encode()  # the stored bytes, as signed
    assert row.attempts == 0 and row.url == receiver.url  # the first try, no retry
    assert len(_outbox(switchboard.database)) == 1, _log_tail(switchboard)


def _refused_and_waiting(rows: list[Row]) -> bool:
    """One event, refused at least once, its next try well ahead but not leased: no try is
    in flight, and a restart sends it within seconds (a lease would hold it ``LEASE`` s)."""
    if len(rows) != 1:
        return False
    (row,) = rows
    ahead = row.next_attempt_at - time.time()
    return row.attempts >= 1 and row.delivered_at is None and 0.3 < ahead < LEASE / 2


async def test_a_refused_end_of_call_event_survives_a_sigkill_in_the_outbox(
    tmp_path: Path,
) -> None:
    switchboard = _switchboard(tmp_path)
    async with callback_receiver() as receiver:
        receiver.statuses.extend([503] * 1000)  # refused until the restart
        first = await start_serve(switchboard.config, switchboard.base_url, switchboard.log)
        try:
            async with _busy_call(switchboard, tmp_path, receiver.url) as uuids:
                await _arrived(receiver, 1, switchboard)
                (waiting,) = await _outbox_until(
                    switchboard.database, _refused_and_waiting, "a refused event waiting"
                )
                await stop_serve(first, signal.SIGKILL)  # at once, before it is due; no shutdown
        finally:
            await stop_serve(first, signal.SIGKILL)
        (stored,) = _outbox(switchboard.database)
        assert stored.delivered_at is None and stored.given_up_at is None
        assert stored.next_attempt_at < time.time() + LEASE / 2  # not leased: due soon
        refused = list(receiver.received)
        assert len(refused) == stored.attempts == waiting.attempts  # each try seen, refused
        for attempt in refused:
            assert attempt.headers["x-switchboard-delivery"] == stored.delivery_id
            assert attempt.body == stored.body.encode()
            _verify_signature(attempt)
        _assert_says_486(refused[0], uuids)

        receiver.statuses.clear()  # accepted from now on
        second = await start_serve(switchboard.config, switchboard.base_url, switchboard.log)
        try:
            await _arrived(receiver, len(refused) + 1, switchboard)
            (row,) = await _outbox_until(
                switchboard.database, lambda rows: rows and rows[0].delivered_at, "a delivery"
            )
            await _no_more_than(receiver, len(refused) + 1)
        finally:
            await stop_serve(second, signal.SIGTERM)
    delivered = receiver.received[-1]
    assert delivered.headers["x-switchboard-delivery"] == stored.delivery_id == row.delivery_id
    assert delivered.body == stored.body.encode()  # the same event, byte for byte
    _verify_signature(delivered)  # signed again by the restarted server
    _assert_says_486(delivered, uuids)
    assert row.attempts == stored.attempts  # a success is not counted as a failed try
    assert len(_outbox(switchboard.database)) == 1, _log_tail(switchboard)
