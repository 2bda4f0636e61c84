"""Registrations (bindings) in the database, so a restart keeps them (RFC 3261 §10.3).

On PostgreSQL the nodes of a cluster share them: each transaction that changes bindings
also notifies the AoRs it changed (``store.notify``), and ``listen`` gives the listener
that hears the other nodes' notifications. SQLite serves one node: nothing is notified.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from switchboard.registrar.location import Aor, Binding
from switchboard.store import notify
from switchboard.store.schema import RegistrationRow

CHUNK = 500  # keys per statement: stays under bind-parameter limits


class RegistrationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.shared = engine.dialect.name == "postgresql"
        self.origin = secrets.token_hex(8)  # names this store's notifications

    def listen(
        self, on_aors: Callable[[list[Aor]], None], on_resync: Callable[[], None]
    ) -> notify.BindingListener | None:
        """The listener to other nodes' changes (not started), or None when not shared."""
        if not self.shared:
            return None
        connect = notify.connector(self.engine)
        return notify.BindingListener(connect, self.origin, on_aors, on_resync)

    async def load(self) -> list[Binding]:
        async with AsyncSession(self.engine) as session:
            rows = (await session.scalars(select(RegistrationRow))).all()
            return [_binding(row) for row in rows]

    async def load_aors(self, aors: Iterable[Aor]) -> list[Binding]:
        """The stored bindings of ``aors``."""
        wanted = sorted(set(aors))
        aor = tuple_(RegistrationRow.domain, RegistrationRow.user)
        found: list[Binding] = []
        async with AsyncSession(self.engine) as session:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                rows = await session.scalars(select(RegistrationRow).where(aor.in_(chunk)))
                found += [_binding(row) for row in rows]
        return found

    async def delete_expired_bindings(self, now: float) -> list[Binding]:
        """Delete the expired bindings and return those this call deleted: when several
        nodes expire the same row, one of them gets it."""
        async with AsyncSession(self.engine) as session, session.begin():
            rows = await session.scalars(
                delete(RegistrationRow)
                .where(RegistrationRow.expires_at <= now)
                .returning(RegistrationRow)
            )
            return [_binding(row) for row in rows]

    async def delete_expired(self, now: float) -> int:
        async with AsyncSession(self.engine) as session, session.begin():
            result = await session.execute(
                delete(RegistrationRow).where(RegistrationRow.expires_at <= now)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def save(self, upserts: Iterable[Binding], removals: Iterable[Binding]) -> None:
        """Store one REGISTER's outcome in one transaction."""
        await self.save_batch([(list(upserts), list(removals))])

    async def save_batch(self, changes: list[tuple[list[Binding], list[Binding]]]) -> None:
        """Store several REGISTERs' outcomes, in order, in one transaction (group commit)."""
        final: dict[tuple[str, str, str], Binding | None] = {}
        for upserts, removals in changes:
            for binding in removals:
                final[(binding.domain, binding.user, binding.contact)] = None
            for binding in upserts:
                final[(binding.domain, binding.user, binding.contact)] = binding
        if not final:
            return
        key = tuple_(RegistrationRow.domain, RegistrationRow.user, RegistrationRow.contact)
        keys = list(final)
        async with AsyncSession(self.engine) as session, session.begin():
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                await session.execute(delete(RegistrationRow).where(key.in_(chunk)))
            session.add_all(_row(b) for b in final.values() if b is not None)
            if self.shared:
                # Sent in the transaction: delivered on commit, after the rows are there.
                for payload in notify.payloads(self.origin, [(d, u) for d, u, _ in keys]):
                    await session.execute(select(func.pg_notify(notify.CHANNEL, payload)))

    async def remove(self, bindings: Iterable[Binding]) -> None:
        await self.save((), bindings)


def _row(binding: Binding) -> RegistrationRow:
    return RegistrationRow(
        domain=binding.domain,
        user=binding.user,
        contact=binding.contact,
        q=binding.q,
        expires_at=binding.expires_at,
        call_id=binding.call_id,
        cseq=binding.cseq,
        received=binding.received,
        user_agent=binding.user_agent,
        path="\n".join(binding.path),
    )


def _binding(row: RegistrationRow) -> Binding:
    return Binding(
        domain=row.domain,
        user=row.user,
        contact=row.contact,
        expires_at=row.expires_at,
        call_id=row.call_id,
        cseq=row.cseq,
        q=row.q,
        received=row.received,
        user_agent=row.user_agent,
        path=tuple(filter(None, (row.path or "").split("\n"))),
    )
