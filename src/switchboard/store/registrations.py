"""Registrations (bindings) in the database, so a restart keeps them (RFC 3261 §10.3)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from switchboard.registrar.location import Binding
from switchboard.store.schema import RegistrationRow


class RegistrationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def load(self) -> list[Binding]:
        async with AsyncSession(self.engine) as session:
            rows = (await session.scalars(select(RegistrationRow))).all()
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
            for start in range(0, len(keys), 500):  # stay under bind-parameter limits
                chunk = keys[start : start + 500]
                await session.execute(delete(RegistrationRow).where(key.in_(chunk)))
            session.add_all(_row(b) for b in final.values() if b is not None)

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
