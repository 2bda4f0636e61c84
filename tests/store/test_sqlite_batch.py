"""Writes handed straight to SQLite's driver bind rows as SQLAlchemy would, in few trips."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from switchboard.store.database import create_engine, migrate
from switchboard.store.outbox import _DELIVERED
from switchboard.store.schema import CallbackRow
from switchboard.store.writes import WriteQueue


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    await migrate(engine)
    yield engine
    await engine.dispose()


def _row(n: int) -> dict[str, object]:
    return {
        "delivery_id": f"d{n}",
        "domain": "example.com",
        "url": "http://x/",
        "body": "{}",
        "created_at": 1,
        "next_attempt_at": 2,
        "attempts": 0,
    }


async def test_a_write_is_one_trip_to_the_database_thread_per_statement_and_one_to_commit(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = WriteQueue(engine)
    await queue.run(insert(CallbackRow), [_row(0)])  # the pool's connection is open
    trips: list[str] = []
    real: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    await queue.run(insert(CallbackRow), [_row(1), _row(2)])
    assert trips == ["executemany", "commit"]  # no cursor, no close, no reset on return
    monkeypatch.undo()
    await queue.drain()


async def test_rows_are_bound_as_sqlalchemy_binds_them(engine: AsyncEngine) -> None:
    queue = WriteQueue(engine)
    await queue.run(insert(CallbackRow), [_row(1)])  # claimed_by left to its default ""
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE callbacks SET last_error = 'refused'"))
    await queue.run(_DELIVERED, [{"id": "d1", "at": 5}])  # sets last_error = NULL itself
    async with engine.connect() as connection:
        query = "SELECT claimed_by, typeof(created_at), delivered_at, last_error FROM callbacks"
        row = (await connection.execute(text(query))).one()
    # Integers for Float columns are stored as REAL, as SQLAlchemy's Float binds them.
    assert tuple(row) == ("", "real", 5.0, None)
    await queue.drain()


class Shouted(TypeDecorator[str]):
    impl = String(8)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else value.upper()


async def test_a_types_bind_processing_is_applied(engine: AsyncEngine) -> None:
    table = Table(
        "shouts", MetaData(), Column("pk", Integer, primary_key=True), Column("word", Shouted)
    )
    async with engine.begin() as connection:
        await connection.run_sync(table.metadata.create_all)
    queue = WriteQueue(engine)
    await queue.run(insert(table), [{"word": "hello"}, {"word": None}])
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT word FROM shouts ORDER BY pk"))).all()
    assert [tuple(r) for r in rows] == [("HELLO",), (None,)]
    await queue.drain()


async def test_a_column_default_computed_in_python_is_left_to_sqlalchemy(
    engine: AsyncEngine,
) -> None:
    counter = itertools.count(7)
    table = Table(
        "numbered",
        MetaData(),
        Column("pk", Integer, primary_key=True),
        Column("name", String(8)),
        Column("number", Integer, nullable=False, default=lambda: next(counter)),
    )
    async with engine.begin() as connection:
        await connection.run_sync(table.metadata.create_all)
    queue = WriteQueue(engine)
    statement = insert(table)
    await queue.run(statement, [{"name": "a"}, {"name": "b"}])
    async with engine.connect() as connection:
        rows = (await connection.execute(select(table.c.name, table.c.number))).all()
    assert [tuple(r) for r in rows] == [("a", 7), ("b", 8)]
    await queue.drain()


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(
    engine: AsyncEngine,
) -> None:
    """The pool resets only connections still in a transaction; those it must reset."""
    async with engine.connect() as connection:
        driver: Any = (await connection.get_raw_connection()).driver_connection
        await driver.execute(
            "INSERT INTO callbacks (delivery_id, domain, url, body, created_at, "
            "next_attempt_at, attempts, claimed_by) VALUES ('x', 'd', 'u', '{}', 1, 1, 0, '')"
        )
        assert driver.in_transaction
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert not driver.in_transaction
        count = (await connection.execute(text("SELECT count(*) FROM callbacks"))).scalar()
    assert count == 0
