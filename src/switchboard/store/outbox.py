"""The callback outbox in the database: nothing pending is lost by a restart or a crash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from switchboard.store.schema import CallbackRow
from switchboard.store.writes import WriteQueue

LEASE = 60.0  # seconds a claimed callback is not handed out again
_INSERT = insert(CallbackRow)
_DELIVERED = (
    update(CallbackRow)
    .where(CallbackRow.delivery_id == bindparam("id"))
    .values(delivered_at=bindparam("at"), last_error=None)
)


@dataclass(frozen=True, slots=True)
class PendingCallback:
    delivery_id: str
    domain: str
    url: str
    body: str
    created_at: float
    attempts: int


class Outbox:
    def __init__(
        self, engine: AsyncEngine, writes: WriteQueue | None = None, node: str = ""
    ) -> None:
        """``node``: this node's name, kept with what it claims (a cluster's nodes share
        the outbox, and a dead node's claims are handed out again: ``release_claims``)."""
        self.engine = engine
        self.writes = writes or WriteQueue(engine)
        self.node = node

    async def add(self, callback: PendingCallback, now: float, lease: float = 0.0) -> None:
        """Store a new callback, due at ``now``; with a ``lease``, claimed by the caller at
        once (it is sending it now) and due again only if that try never reports back."""
        row = {
            "delivery_id": callback.delivery_id, "domain": callback.domain, "url": callback.url,
            "body": callback.body, "created_at": callback.created_at,
            "next_attempt_at": now + lease, "attempts": 0, "claimed_by": self.node,
        }  # fmt: skip
        await self.writes.run(_INSERT, [row])  # committed before the caller sends it

    async def add_once(self, callback: PendingCallback, now: float, lease: float = 0.0) -> bool:
        """``add`` unless a callback of the same delivery id is stored; True when added.
        (Not through the write queue: a conflict must not fail the batch it rides in.)"""
        row = {
            "delivery_id": callback.delivery_id, "domain": callback.domain, "url": callback.url,
            "body": callback.body, "created_at": callback.created_at,
            "next_attempt_at": now + lease, "attempts": 0, "claimed_by": self.node,
        }  # fmt: skip
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(CallbackRow).values(row).on_conflict_do_nothing()
        async with self.engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def claim_due(
        self, now: float, lease: float = LEASE, limit: int = 100
    ) -> list[PendingCallback]:
        """Take what is due and push its next try ``lease`` seconds away, in one
        transaction: a claimed callback is not handed out again while it is being sent,
        and is tried again after the lease if the process dies meanwhile."""
        async with AsyncSession(self.engine) as session, session.begin():
            rows = (
                await session.scalars(
                    select(CallbackRow)
                    .where(
                        CallbackRow.delivered_at.is_(None),
                        CallbackRow.given_up_at.is_(None),
                        CallbackRow.next_attempt_at <= now,
                    )
                    .order_by(CallbackRow.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            claimed = [_pending(row) for row in rows]
            for row in rows:
                row.next_attempt_at = now + lease
                row.claimed_by = self.node
            return claimed

    async def release_claims(self, node: str, now: float) -> int:
        """The dead ``node``'s claims are due now (it will never report them); how many."""
        statement = (
            update(CallbackRow)
            .where(
                CallbackRow.claimed_by == node,
                CallbackRow.delivered_at.is_(None),
                CallbackRow.given_up_at.is_(None),
                CallbackRow.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        async with self.engine.begin() as connection:
            result = await connection.execute(statement)
        return int(result.rowcount)

    async def next_due(self) -> float | None:
        async with AsyncSession(self.engine) as session:
            row = await session.scalar(
                select(CallbackRow.next_attempt_at)
                .where(CallbackRow.delivered_at.is_(None), CallbackRow.given_up_at.is_(None))
                .order_by(CallbackRow.next_attempt_at)
                .limit(1)
            )
            return None if row is None else float(row)

    async def delivered(self, delivery_id: str, now: float) -> None:
        await self.writes.run(_DELIVERED, [{"id": delivery_id, "at": now}])

    async def failed(
        self,
        delivery_id: str,
        error: str,
        now: float,
        delay: Callable[[int], float],
        give_up_after: float,
    ) -> tuple[int, float | None]:
        """Count a failed try on the stored row itself (not on a copy read earlier), and
        schedule the next one; returns (tries so far, next try time or None if given up)."""
        async with AsyncSession(self.engine) as session, session.begin():
            row = await session.scalar(
                select(CallbackRow).where(CallbackRow.delivery_id == delivery_id)
            )
            if row is None:
                return 0, None
            row.attempts += 1
            row.last_error = error[:500]
            if now - row.created_at >= give_up_after:
                row.given_up_at = now
                return row.attempts, None
            row.next_attempt_at = now + delay(row.attempts)
            return row.attempts, row.next_attempt_at

    async def pending_count(self) -> int:
        async with AsyncSession(self.engine) as session:
            rows = await session.scalars(
                select(CallbackRow.pk).where(
                    CallbackRow.delivered_at.is_(None), CallbackRow.given_up_at.is_(None)
                )
            )
            return len(rows.all())

    async def backlog(self) -> tuple[int, float | None]:
        """How many deliveries are pending, and when the oldest was queued (metrics)."""
        async with AsyncSession(self.engine) as session:
            count, oldest = (
                await session.execute(
                    select(func.count(CallbackRow.pk), func.min(CallbackRow.created_at)).where(
                        CallbackRow.delivered_at.is_(None), CallbackRow.given_up_at.is_(None)
                    )
                )
            ).one()
            return int(count), oldest


def _pending(row: CallbackRow) -> PendingCallback:
    return PendingCallback(
        row.delivery_id, row.domain, row.url, row.body, row.created_at, row.attempts
    )
