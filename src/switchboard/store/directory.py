"""Copying the directory from the config file into the database, idempotently.

The config file is the source: every start makes the tables say exactly what the file says.
Rows are matched by name (domains by name; users, groups and trunks by name within their
domain), updated in place when they changed, created when new, and deleted when the file
no longer has them (with their bindings, which would point at nobody).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from switchboard.config import Config, DomainConfig
from switchboard.store.schema import Base, DomainRow, GroupRow, RegistrationRow, TrunkRow, UserRow

Row = TypeVar("Row", UserRow, GroupRow, TrunkRow)


async def apply_config(engine: AsyncEngine, config: Config) -> None:
    async with AsyncSession(engine) as session, session.begin():
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
            await session.execute(
                delete(RegistrationRow).where(RegistrationRow.domain == stale.name)
            )
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
