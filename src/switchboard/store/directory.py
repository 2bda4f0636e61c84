"""The directory in the database: the provisioned document and its tables.

``directory_state`` holds the whole directory as provisioned (the config file's
``[[domains]]`` tables as JSON), the hash of the config file last applied, and a version
that every change increments: the source of truth at run time, shared by every node.

The tables (``domains``, ``users``, ``groups``, ``trunks``) are a copy for queries, written
in the same transaction, idempotently: rows are matched by name (domains by name; users,
groups and trunks by name within their domain), updated in place when they changed,
created when new, and deleted when the directory no longer has them (with their bindings,
which would point at nobody).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from switchboard.config import Config, DomainConfig, directory_data
from switchboard.store.schema import (
    Base,
    DirectoryStateRow,
    DomainRow,
    GroupRow,
    RegistrationRow,
    TrunkRow,
    UserRow,
)

Row = TypeVar("Row", UserRow, GroupRow, TrunkRow)
_STATE = 1  # the one row of directory_state


@dataclass(frozen=True, slots=True)
class StoredDirectory:
    domains: list[dict[str, Any]]  # TOML-shaped [[domains]] tables
    source_hash: str | None  # of the config file last applied
    version: int


def source_hash(config: Config) -> str:
    """What identifies a config file's directory: edits to ``[server]`` alone do not
    count (they do not revert what the provisioning API changed)."""
    text = json.dumps(directory_data(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def load_directory(engine: AsyncEngine) -> StoredDirectory | None:
    async with AsyncSession(engine) as session:
        row = await session.get(DirectoryStateRow, _STATE)
        if row is None:
            return None
        return StoredDirectory(json.loads(row.document), row.source_hash, row.version)


async def directory_version(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as session:
        version = await session.scalar(
            select(DirectoryStateRow.version).where(DirectoryStateRow.pk == _STATE)
        )
        return version or 0


class DirectoryConflictError(Exception):
    """The stored directory changed since the version a change was made against."""


async def save_directory(
    engine: AsyncEngine,
    config: Config,
    *,
    expected: int | None,
    source_hash: str | None = None,
    keep_source: bool = False,
) -> int:
    """Store ``config``'s directory as the one in force; return its new version.
    ``expected``: the version the change was made against (None: whatever is stored, as
    applying a file does). ``keep_source``: a change through the API keeps the hash of the
    file last applied."""
    async with AsyncSession(engine) as session, session.begin():
        row = await session.get(DirectoryStateRow, _STATE, with_for_update=True)
        if row is None:
            row = DirectoryStateRow(pk=_STATE, version=0, source_hash=None)
            session.add(row)
        if expected is not None and row.version != expected:
            raise DirectoryConflictError(f"stored version {row.version}, expected {expected}")
        row.document = json.dumps(directory_data(config))
        if not keep_source:
            row.source_hash = source_hash
        row.version += 1
        row.updated_at = time.time()
        await _apply(session, config)
        return row.version


async def apply_config(engine: AsyncEngine, config: Config) -> None:
    """Make the tables say what ``config``'s directory says."""
    async with AsyncSession(engine) as session, session.begin():
        await _apply(session, config)


async def _apply(session: AsyncSession, config: Config) -> None:
    existing = {d.name: d for d in (await session.scalars(select(DomainRow))).all()}
    for domain in config.domains:
        row = existing.pop(domain.name, None)
        if row is None:
            row = DomainRow(name=domain.name)
            session.add(row)
        _assign(
            row,
            channel_limit=domain.channel_limit,
            calling_number=domain.calling_number,
            pstn_prefixes=",".join(domain.pstn_prefixes),
        )
        await session.flush()
        await _apply_domain(session, row.pk, domain)
    for stale in existing.values():
        await session.execute(delete(RegistrationRow).where(RegistrationRow.domain == stale.name))
        await session.delete(stale)


async def _apply_domain(session: AsyncSession, domain_pk: int, domain: DomainConfig) -> None:
    users = {
        u.name: {
            "user_id": u.id, "label": u.label, "extension": u.extension, "did": u.did,
            "email": u.email, "static_contacts": "\n".join(u.contacts),
        }
        for u in domain.users
    }  # fmt: skip
    groups = {
        g.name: {
            "group_id": g.id, "label": g.label, "extension": g.extension, "did": g.did,
            "strategy": g.strategy, "answer_timeout": g.answer_timeout,
            "member_answer_timeout": g.member_answer_timeout, "members": ",".join(g.members),
        }
        for g in domain.groups
    }  # fmt: skip
    trunks = {
        t.name: {"address": t.address, "transport": t.transport, "username": t.username}
        for t in domain.trunks
    }
    removed_users = await _sync(session, UserRow, domain_pk, users)
    await _sync(session, GroupRow, domain_pk, groups)
    await _sync(session, TrunkRow, domain_pk, trunks)
    if removed_users:
        await session.execute(
            delete(RegistrationRow).where(
                RegistrationRow.domain == domain.name, RegistrationRow.user.in_(removed_users)
            )
        )


async def _sync(
    session: AsyncSession, model: type[Row], domain_pk: int, wanted: dict[str, dict[str, Any]]
) -> list[str]:
    """Make ``model``'s rows of this domain match ``wanted``; return the names removed."""
    rows = (await session.scalars(select(model).where(model.domain_pk == domain_pk))).all()
    by_name = {row.name: row for row in rows}
    # Free unique ids/extensions of rows that go or change first, then write the new values.
    removed = [name for name in by_name if name not in wanted]
    for name in removed:
        await session.delete(by_name.pop(name))
    id_key = "user_id" if model is UserRow else "group_id" if model is GroupRow else None
    if id_key is not None:
        for name, row in by_name.items():
            if getattr(row, id_key) != wanted[name][id_key]:
                setattr(row, id_key, -row.pk)  # park it: ids may be swapped between rows
    await session.flush()
    for name, values in wanted.items():
        existing = by_name.get(name)
        if existing is None:
            session.add(model(domain_pk=domain_pk, name=name, **values))
        else:
            _assign(existing, **values)
    await session.flush()
    return removed


def _assign(row: Base, **values: Any) -> None:
    for key, value in values.items():
        if getattr(row, key, None) != value:
            setattr(row, key, value)
