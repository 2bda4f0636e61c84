"""A fake clock for transactions: fire their timers in order, with no sleeping."""

from __future__ import annotations

from switchboard.sip.transaction.base import Effect, Transaction


def run_timers(tx: Transaction, *, until: float) -> list[tuple[float, Effect]]:
    """Advance time to each deadline up to ``until``; return (time, effect) pairs."""
    out: list[tuple[float, Effect]] = []
    while (deadline := tx.deadline()) is not None and deadline <= until:
        out += [(deadline, effect) for effect in tx.on_timer(deadline)]
    return out
