"""Applying the config's directory to the database: idempotent, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from switchboard.config import Config, load_config, parse_config
from switchboard.registrar.location import Binding
from switchboard.store.database import create_engine, migrate
from switchboard.store.directory import apply_config
from switchboard.store.registrations import RegistrationStore
from switchboard.store.schema import DomainRow, GroupRow, RegistrationRow, TrunkRow, UserRow

EXAMPLE = load_config(None)


async def _dump(engine: AsyncEngine) -> dict[str, list[tuple[object, ...]]]:
    async with AsyncSession(engine) as session:
        domains = (await session.scalars(select(DomainRow).order_by(DomainRow.name))).all()
        users = (await session.scalars(select(UserRow).order_by(UserRow.name))).all()
        groups = (await session.scalars(select(GroupRow).order_by(GroupRow.name))).all()
        trunks = (await session.scalars(select(TrunkRow).order_by(TrunkRow.name))).all()
        regs = (await session.scalars(select(RegistrationRow))).all()
        return {
            "domains": [(d.name, d.channel_limit, d.pstn_prefixes) for d in domains],
            "users": [(u.user_id, u.name, u.extension, u.static_contacts) for u in users],
            "groups": [(g.group_id, g.name, g.strategy, g.members) for g in groups],
            "trunks": [(t.name, t.address, t.transport) for t in trunks],
            "registrations": [(r.user, r.contact) for r in regs],
        }


async def _engine(url: str) -> AsyncEngine:
    engine = create_engine(url)
    await migrate(engine)
    return engine


async def test_applying_the_config_twice_gives_the_same_tables(database_url: str) -> None:
    engine = await _engine(database_url)
    try:
        await apply_config(engine, EXAMPLE)
        first = await _dump(engine)
        await migrate(engine)  # already at head: nothing to do
        await apply_config(engine, EXAMPLE)
        assert await _dump(engine) == first
        assert [u[1] for u in first["users"]] == ["alice", "bob", "carol", "erik", "lobby"]
        assert first["groups"][1] == (1111, "support", "hunt", "alice,bob,carol")
    finally:
        await engine.dispose()


def _without_bob_and_with_swapped_ids(config: Config) -> Config:
    text = """
[[domains]]
name = "example.com"
api_token = "change-me-example-token"
  [[domains.users]]
  id = 1002
  name = "alice"
  extension = "1001"
  [[domains.users]]
  id = 1001
  name = "carol"
  [[domains.groups]]
  id = 1111
  name = "support"
  members = ["carol", "alice"]
"""
    return parse_config(text)


async def test_the_file_wins_removed_entries_and_their_bindings_go(database_url: str) -> None:
    engine = await _engine(database_url)
    try:
        await apply_config(engine, EXAMPLE)
        bob = Binding("example.com", "bob", "sip:bob@192.0.2.7", 2e9, "c", 1)
        alice = Binding("example.com", "alice", "sip:alice@192.0.2.8", 2e9, "d", 1)
        await RegistrationStore(engine).save([bob, alice], [])
        await apply_config(engine, _without_bob_and_with_swapped_ids(EXAMPLE))
        dump = await _dump(engine)
        assert [(u[0], u[1]) for u in dump["users"]] == [(1002, "alice"), (1001, "carol")]
        assert dump["groups"] == [(1111, "support", "hunt", "carol,alice")]
        assert dump["trunks"] == []
        assert dump["registrations"] == [("alice", "sip:alice@192.0.2.8")]
        await apply_config(engine, parse_config(""))
        assert (await _dump(engine))["domains"] == []
    finally:
        await engine.dispose()
