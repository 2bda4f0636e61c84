"""Registrations survive in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from switchboard.registrar.location import Binding
from switchboard.store.database import create_engine, migrate
from switchboard.store.registrations import RegistrationStore


async def test_save_load_replace_and_delete_expired(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    store = RegistrationStore(engine)
    try:
        first = Binding("example.com", "alice", "sip:alice@192.0.2.1", 100.0, "c1", 1, "0.5")
        other = Binding("example.com", "alice", "sip:alice@192.0.2.2", 500.0, "c2", 1)
        await store.save([first, other], [])
        refreshed = Binding("example.com", "alice", "sip:alice@192.0.2.1", 900.0, "c1", 2, "0.5")
        await store.save([refreshed], [])
        loaded = sorted(await store.load(), key=lambda b: b.contact)
        assert loaded == [refreshed, other]
        assert await store.delete_expired(600.0) == 1
        assert await store.load() == [refreshed]
        await store.remove([refreshed])
        assert await store.load() == []
    finally:
        await engine.dispose()


async def test_a_bindings_path_survives(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    store = RegistrationStore(engine)
    try:
        path = ("<sip:192.0.2.1:5060;lr;received=sip:198.51.100.7:40000>", "<sip:10.0.0.1;lr>")
        binding = Binding("example.com", "alice", "sip:alice@10.0.0.7", 100.0, "c1", 1, path=path)
        await store.save([binding], [])
        assert await store.load() == [binding]
    finally:
        await engine.dispose()
