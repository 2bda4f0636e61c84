"""WriteQueue: group commit on a real SQLite database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from switchboard.store.database import create_engine, migrate
from switchboard.store.schema import CallbackRow
from switchboard.store.writes import WriteQueue

INSERT = insert(CallbackRow)


def _row(n: int, delivery_id: str | None = None) -> dict[str, object]:
    return {"delivery_id": delivery_id or f"d{n}", "domain": "example.com", "url": "http://x/",
            "body": "{}", "created_at": 1.0, "next_attempt_at": 1.0, "attempts": 0}  # fmt: skip


async def _ids(queue: WriteQueue) -> list[str]:
    async with queue.engine.connect() as connection:
        rows = await connection.execute(select(CallbackRow.delivery_id).order_by(CallbackRow.pk))
        return [str(r[0]) for r in rows]


async def test_writes_queued_together_share_one_commit(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    await migrate(engine)
    queue = WriteQueue(engine)
    try:
        await queue.run(INSERT, [_row(0)])  # alone: committed at once
        await asyncio.gather(*(queue.run(INSERT, [_row(n)]) for n in range(1, 51)))
        assert await _ids(queue) == [f"d{n}" for n in range(51)]
        # The first went alone; the fifty were queued while the loop never yielded, so the
        # first of them started a transaction and the rest went into at most one more.
        assert queue.counters["db_writes"] == 51
        assert queue.counters["db_write_batches"] <= 3
    finally:
        await queue.drain()
        await engine.dispose()


async def test_a_bad_write_fails_only_its_own_caller(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    await migrate(engine)
    queue = WriteQueue(engine)
    try:
        await queue.run(INSERT, [_row(0, "taken")])
        results = await asyncio.gather(
            queue.run(INSERT, [_row(1)]),
            queue.run(INSERT, [_row(2, "taken")]),  # unique delivery_id: refused
            queue.run(INSERT, [_row(3)]),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], IntegrityError)
        assert sorted(await _ids(queue)) == ["d1", "d3", "taken"]
    finally:
        await queue.drain()
        await engine.dispose()


async def test_drain_waits_for_what_is_queued(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    await migrate(engine)
    queue = WriteQueue(engine)
    tasks = [asyncio.create_task(queue.run(INSERT, [_row(n)])) for n in range(20)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()  # the callers give up; their rows are still written
    await queue.drain()
    assert len(await _ids(queue)) == 20
    await engine.dispose()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]


async def _queue(url: str, spacing: float) -> WriteQueue:
    engine = create_engine(url)
    await migrate(engine)
    return WriteQueue(engine, spacing=spacing)


async def test_transactions_start_at_most_one_per_spacing(database_url: str) -> None:
    queue = await _queue(database_url, spacing=0.5)
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        await queue.run(INSERT, [_row(1)])  # idle: at once
        first = loop.time() - start
        second = asyncio.create_task(queue.run(INSERT, [_row(2)]))
        third = asyncio.create_task(queue.run(INSERT, [_row(3)]))
        await asyncio.gather(second, third)
        assert first < 0.5 <= loop.time() - start  # the two waited for the rest of it
        assert queue.counters["db_write_batches"] == 2  # and shared a commit
    finally:
        await queue.drain()
        await queue.engine.dispose()


async def test_drain_commits_what_waits_for_its_turn_at_once(database_url: str) -> None:
    queue = await _queue(database_url, spacing=60.0)
    try:
        await queue.run(INSERT, [_row(1)])
        waiting = asyncio.create_task(queue.run(INSERT, [_row(2)]))  # a minute from now
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await asyncio.wait_for(asyncio.gather(queue.drain(), queue.drain()), 5)
        assert waiting.done() and await _ids(queue) == ["d1", "d2"]
    finally:
        await queue.engine.dispose()


def test_a_wait_under_half_a_millisecond_on_uvloop(tmp_path: Path) -> None:
    """uvloop gives a plain Handle (no ``when()``) for a timer due in under 0.5 ms; a write
    queued while one is set must still be queued, not fail its caller."""

    async def scenario() -> list[str]:
        queue = await _queue(f"sqlite:///{tmp_path}/switchboard.db", spacing=0.0003)
        try:
            queue._started = asyncio.get_running_loop().time()  # a transaction just began
            await asyncio.gather(queue.run(INSERT, [_row(1)]), queue.run(INSERT, [_row(2)]))
            return await _ids(queue)
        finally:
            await queue.drain()
            await queue.engine.dispose()

    assert uvloop.run(scenario()) == ["d1", "d2"]


def test_a_spaced_write_wakes_the_queue_once_on_uvloop(tmp_path: Path) -> None:
    """uvloop runs a timer due within its millisecond tick at once, early: re-armed each
    time, the queue spun until the tick (270 wake-ups for these five). A write due within
    a tick starts then."""

    async def scenario() -> int:
        queue = await _queue(f"sqlite:///{tmp_path}/switchboard.db", spacing=0.05)
        wakes = 0
        wake = queue._wake

        def counted(loop: asyncio.AbstractEventLoop) -> None:
            nonlocal wakes
            wakes += 1
            wake(loop)

        queue._wake = counted  # type: ignore[method-assign]
        try:
            for n in range(0, 10, 2):
                await queue.run(INSERT, [_row(n)])  # at once, or after the last one's spacing
                await queue.run(INSERT, [_row(n + 1)])  # waits for the rest of the spacing
            assert len(await _ids(queue)) == 10
            return wakes
        finally:
            await queue.drain()
            await queue.engine.dispose()

    assert uvloop.run(scenario()) <= 10  # one a spaced write (or two: the timer, then due)
