"""Engines and migrations.

The config's ``database`` URL names the backend (``sqlite:///PATH`` or ``postgresql://…``);
the async driver is chosen here (aiosqlite, asyncpg). Migrations run at start-up with
Alembic, inside one connection, so a fresh file or an older schema ends at ``head``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

MIGRATIONS = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return url


def create_engine(url: str) -> AsyncEngine:
    if not async_url(url).startswith("sqlite"):
        return create_async_engine(async_url(url))
    # SQLite takes one writer at a time. With a pool of connections, concurrent writers
    # collide on the file lock and SQLite's busy handler sleeps them (1, 2, 5 … 100 ms):
    # under load that backlog was measured growing without bound (bench.call_group_ladder).
    # One connection queues them in the event loop instead, each taking its turn at once.
    engine = create_async_engine(
        async_url(url), pool_size=1, max_overflow=0, pool_timeout=60, pool_reset_on_return=None
    )
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine.pool, "reset", _rollback_if_open)
    return engine


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE needs it
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
    # In WAL mode NORMAL loses nothing on a process crash, only on power loss, and saves an
    # fsync per REGISTER.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _rollback_if_open(
    dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    # The pool's reset-on-return rolls back every connection it gets back, though nearly
    # all come back committed or rolled back already: on SQLite that was one more trip to
    # the database thread per transaction. Only a connection still in one is rolled back.
    if not state.asyncio_safe or state.transaction_was_reset:
        return  # a connection the collector found is closed, not reset
    driver = dbapi_connection.driver_connection
    if driver is not None and driver.in_transaction:
        dbapi_connection.rollback()


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
